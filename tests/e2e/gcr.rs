//! The `gcr` adapter (Google Cloud Run) without a Google account: the `stellar` binary with the
//! real adapter component, a real registry (Debian's `docker-registry`, [`RunningRegistry`])
//! the adapter pushes the OCI image stellar built to, and a loopback fake of the Cloud Run
//! Admin API v2, the Artifact Registry repositories API and the OAuth token endpoint
//! (`fake_gcr.py`) that verifies the JWT assertion's RS256 signature with PyPI `cryptography`,
//! parses every body with Google's published protos (PyPI `google-cloud-run`,
//! `google-cloud-artifact-registry`, `googleapis-common-protos`, `grpc-google-iam-v1`) and
//! really runs each service: it pulls the pushed image from the registry, unpacks it and starts
//! the entrypoint with `PORT`, `K_SERVICE` and `GCE_METADATA_HOST` pointing at a per-instance
//! fake metadata server, so the timed requests reach the measurement function from the pushed
//! image and its instance ids come from the metadata server.
//!
//! The fake is itself checked against Google's own clients (`fake_gcr_sdk_check.py`).
//! The service-account key is generated per test by PyPI `cryptography` (nothing secret is
//! committed). Needs python3 with `cryptography google-cloud-run google-cloud-artifact-registry`
//! and `docker-registry skopeo apache2-utils` (the README's test command installs them).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stellar::plugin::{
    ArtifactKind, Credential, CredentialKind, DeployRequest, PluginRuntime, ProviderError,
    SandboxLimits,
};
use stellar_config::Architecture;
use stellar_results::read_latencies;

use crate::registry::RunningRegistry;
use crate::support::{meta, pairs, repo};

const PROJECT: &str = "stellar-e2e-proj";
const REGION: &str = "us-central1";

/// One HTTP/1.1 request to 127.0.0.1:`port`; the status and the body parsed as JSON.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let status = String::from_utf8_lossy(&raw[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (
        status,
        serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null),
    )
}

/// Writes a service-account key file around a fresh RSA key made by PyPI `cryptography`.
fn write_key(dir: &Path, name: &str, project: Option<&str>) -> PathBuf {
    let path = dir.join(name);
    let script = r#"
import json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()
info = {"type": "service_account", "private_key_id": "e2e0123456789", "private_key": pem,
        "client_email": "stellar-e2e@stellar-e2e-proj.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}
if sys.argv[2] != "-":
    info["project_id"] = sys.argv[2]
open(sys.argv[1], "w").write(json.dumps(info))
"#;
    let status = Command::new("python3")
        .args(["-c", script, path.to_str().unwrap(), project.unwrap_or("-")])
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "making a key needs `python3 -m pip install cryptography`"
    );
    path
}

/// `fake_gcr.py` on loopback, killed on drop (its service instances exit with it).
struct FakeGcr {
    child: Child,
    port: u16,
    front: u16,
}

impl FakeGcr {
    fn start(key: &Path, work: &Path) -> Self {
        let mut child = Command::new("python3")
            .arg(repo().join("tests/e2e/fake_gcr.py"))
            .args([
                key.to_str().unwrap(),
                PROJECT,
                REGION,
                work.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Vec<u16> = line
            .strip_prefix("FAKE-GCR-READY ")
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            ports.len(),
            2,
            "fake_gcr.py did not start ({line:?}); it needs `python3 -m pip install \
             cryptography google-cloud-run google-cloud-artifact-registry`"
        );
        Self {
            child,
            port: ports[0],
            front: ports[1],
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn state(&self) -> Value {
        let (status, state) = http(self.port, "GET", "/__fake/state", b"");
        assert_eq!(status, 200, "{state}");
        state
    }

    fn control(&self, path: &str, doc: &Value) {
        let (status, answer) = http(self.port, "POST", path, doc.to_string().as_bytes());
        assert_eq!(status, 200, "{answer}");
    }

    fn service_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.state()["services"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// `[method, path, status]` of every API request, in order.
    fn log(&self) -> Vec<(String, String, u64)> {
        self.state()["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e[0].as_str().unwrap().to_owned(),
                    e[1].as_str().unwrap().to_owned(),
                    e[2].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for FakeGcr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stellar(args: &[&str], dir: &Path, key: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stellar"))
        .current_dir(dir)
        .args(args)
        .env("GOOGLE_APPLICATION_CREDENTIALS", key)
        .env("HOME", dir)
        .env("STELLAR_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap()
}

/// STeLLAR's gcr experiment shape pointed at the fakes.
fn experiment(fake: &FakeGcr, registry_url: &str, extra: &[(&str, &str)]) -> Value {
    let mut settings = json!({
        "region": REGION,
        "api-endpoint": fake.url(),
        "artifact-registry-endpoint": fake.url(),
        "registry-endpoint": registry_url,
        "oauth-endpoint": format!("{}/token", fake.url()),
        "service-url-host": format!("http://127.0.0.1:{}", fake.front),
        "poll-interval-ms": "20",
    });
    for (k, v) in extra {
        settings[*k] = Value::from(*v);
    }
    json!({
        "Sequential": false,
        "Provider": "gcr",
        "Runtime": "rust",
        "Stellar": {"Seed": 11, "ProviderSettings": settings},
        "SubExperiments": [{
            "Title": "hellorust",
            "Function": "hellorust",
            "Handler": "Dockerfile",
            "PackageType": "Container",
            "CPUBoostEnabled": true,
            "Bursts": 4,
            "BurstSizes": [2],
            "IATSeconds": 0.2,
            "IATType": "deterministic",
            "DesiredServiceTimes": ["5ms"]
        }]
    })
}

fn write_experiment(dir: &Path, name: &str, doc: &Value) -> PathBuf {
    let file = dir.join(name);
    fs_err::write(&file, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    file
}

/// The fake itself against Google's own clients (`fake_gcr_sdk_check.py`: google-auth's token
/// request, the official Cloud Run v2 and Artifact Registry REST clients): what the adapter is
/// tested against is what Google's clients speak.
#[test]
fn the_fake_cloud_run_serves_googles_own_clients() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "key.json", Some(PROJECT));
    let output = Command::new("python3")
        .arg(repo().join("tests/e2e/fake_gcr_sdk_check.py"))
        .arg(&key)
        .arg(dir.path().join("work"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("SDK-CHECK-OK"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn stellar_run_on_gcr_pushes_the_image_deploys_through_the_fake_and_measures_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "key.json", Some(PROJECT));
    let registry = RunningRegistry::start(false);
    let fake = FakeGcr::start(&key, &dir.path().join("fake"));
    // An operation that takes several polls, and a 429 on the first API call.
    fake.control(
        "/__fake/config",
        &json!({"pending_polls": 3, "throttle_next": 1}),
    );

    let file = write_experiment(
        dir.path(),
        "gcr.json",
        &experiment(&fake, &registry.url, &[]),
    );
    let out = dir.path().join("results");
    let started = Instant::now();
    let output = stellar(
        &[
            "run",
            file.to_str().unwrap(),
            "--json",
            "-o",
            out.to_str().unwrap(),
        ],
        dir.path(),
        &key,
    );
    let run_time = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let analysis: Value = serde_json::from_str(&stdout).unwrap();
    let run_dir = Path::new(analysis["run_dir"].as_str().unwrap()).to_owned();

    // The timed requests reached the measurement function from the pushed image; its
    // instance ids are the metadata server's.
    let state = fake.state();
    let instance_ids: Vec<&str> = state["instance_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let rows = read_latencies(run_dir.join("00-hellorust/latencies.csv")).unwrap();
    assert_eq!(rows.len(), 8);
    for row in &rows {
        assert!(row.is_ok(), "{row:?}");
        assert!(
            instance_ids.contains(&row.instance_id.as_str()),
            "{} is not a metadata-server id {instance_ids:?}",
            row.instance_id
        );
        assert!(row.function_spin_ms.unwrap() >= 5.0, "{row:?}");
    }
    let mut latencies: Vec<f64> = rows.iter().filter_map(|r| r.client_latency_ms).collect();
    latencies.sort_by(f64::total_cmp);

    // Deployed through the fake, made public, removed at the end; nothing keeps running.
    assert!(fake.service_names().is_empty(), "{state}");
    assert_eq!(state["running"], 0, "{state}");
    assert_eq!(state["repositories"], json!(["stellar"]));
    let log = fake.log();
    let has = |method: &str, suffix: &str, status: u64| {
        log.iter()
            .any(|(m, p, s)| m == method && p.ends_with(suffix) && *s == status)
    };
    assert!(log.iter().any(|(_, _, s)| *s == 429), "{log:?}");
    assert!(has("POST", "/repositories", 200), "{log:?}");
    assert!(has("POST", "/services", 200), "{log:?}");
    assert!(has("POST", ":setIamPolicy", 200), "{log:?}");
    assert!(has("DELETE", "-00-00", 200), "{log:?}");
    let operation_polls = log
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.contains("/operations/"))
        .count();
    assert!(operation_polls >= 6, "{log:?}");
    let service = state["iam"].as_object().unwrap().values().next().unwrap();
    assert_eq!(
        service["bindings"],
        json!([{"role": "roles/run.invoker", "members": ["allUsers"]}])
    );
    let body = &state["bodies"][0][2];
    let template = &body["template"];
    assert_eq!(template["maxInstanceRequestConcurrency"], 1, "{body}");
    assert_eq!(
        template["containers"][0]["resources"]["startupCpuBoost"], true,
        "{body}"
    );
    assert_eq!(
        template["containers"][0]["env"],
        json!([{"name": "STELLAR_PROVIDER", "value": "gcr"}])
    );
    assert!(body["labels"]["stellar-run"].is_string(), "{body}");
    let image = template["containers"][0]["image"].as_str().unwrap();
    assert!(
        image.starts_with(&format!(
            "{}/{PROJECT}/stellar/stellar-measure@sha256:",
            registry.authority()
        )),
        "{image}"
    );
    assert_eq!(state["images_pulled"][0], image);
    assert!(state["tokens_issued"].as_u64().unwrap() >= 1);
    assert_eq!(state["assertions_rejected"], 0);

    // skopeo, an independent client, reads the pushed image: linux/amd64, our entrypoint.
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--config"])
        .arg(format!("docker://{image}"))
        .output()
        .expect("skopeo runs");
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    assert_eq!(config["config"]["Entrypoint"][0], "/stellar-measure-http");

    // The run log names what STeLLAR's file carries that Cloud Run does not use; the key's
    // private key appears in no output or result file.
    let run_log = fs_err::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(run_log.contains("Handler"), "{run_log}");
    let private_key: Value = serde_json::from_str(&fs_err::read_to_string(&key).unwrap()).unwrap();
    let secret_line = private_key["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(!stdout.contains(&secret_line) && !stderr.contains(&secret_line));
    for entry in fs_err::read_dir(&run_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&fs_err::read(&path).unwrap()).into_owned();
            assert!(!text.contains(&secret_line), "{}", path.display());
            assert!(!text.contains("ya29.fake-"), "{}", path.display());
        }
    }

    // A crashed run's leftovers: one journaled service that exists, one that never did.
    fake.control(
        "/__fake/services",
        &json!({
            "name": format!("projects/{PROJECT}/locations/{REGION}/services/st-orphan-00-00"),
            "uri": format!("http://127.0.0.1:{}/s/st-orphan-00-00/", fake.front),
            "labels": {"stellar-run": "orphan"},
            "createTime": "2024-01-01T00:00:00Z",
            "template": {"containers": [{"image": image}]}
        }),
    );
    let mut journal = fs_err::OpenOptions::new()
        .append(true)
        .open(run_dir.join("resources.jsonl"))
        .unwrap();
    for name in ["st-orphan-00-00", "st-ghost-00-00"] {
        writeln!(
            journal,
            r#"{{"unix_ms":1,"event":"creating","provider":"gcr","function":"{name}"}}"#
        )
        .unwrap();
    }
    drop(journal);
    let output = stellar(&["cleanup", run_dir.to_str().unwrap()], dir.path(), &key);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("1 removed, 1 already gone, 0 failed"),
        "{text}"
    );
    assert!(fake.service_names().is_empty());

    eprintln!(
        "gcr end to end: run {run_time:?} (image build, push, deploy with 3-poll operations, \
         8 requests, delete); client latency via the fake front end p50 {:.2} ms max {:.2} ms; \
         {} instances started",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        instance_ids.len()
    );
}

fn request(memory_mb: u32, artifact: Option<&Path>) -> DeployRequest {
    DeployRequest {
        name: "st-e2e000-00-00".into(),
        memory_mb,
        timeout_s: 10,
        arm64: false,
        env: pairs(&[("STELLAR_PROVIDER", "gcr")]),
        tags: pairs(&[("stellar-run", "e2e000")]),
        instance_concurrency: 0,
        options: vec![],
        artifact: artifact.map(|p| (p.to_owned(), ArtifactKind::OciImage)),
    }
}

/// The adapter in stellar's plugin host: deploy (repository created, image pushed, 3-poll
/// operation, public), list, update without and with a new image (PATCH, a new revision),
/// remove; then a missing service is `not-found`.
#[tokio::test]
async fn gcr_adapter_deploys_updates_lists_and_removes_on_the_fake() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "key.json", Some(PROJECT));
    let registry = RunningRegistry::start(false);
    let fake = FakeGcr::start(&key, &dir.path().join("fake"));
    fake.control("/__fake/config", &json!({"pending_polls": 3}));
    let binary = stellar::package::oci_image::build_for_arch(Architecture::X86_64).unwrap();
    let image = dir.path().join("image.tar");
    let (built, archive) =
        stellar::package::oci_image::oci_archive(&binary, &image, None, 0).unwrap();

    let rt =
        PluginRuntime::with_cache_dir(SandboxLimits::default(), Some(dir.path().join("cache")))
            .unwrap();
    let plugin = rt
        .load(stellar::embedded::plugin_for("gcr").unwrap())
        .await
        .unwrap();
    assert_eq!(plugin.info().artifacts, vec![ArtifactKind::OciImage]);
    let hosts = vec![
        format!("127.0.0.1:{}", fake.port),
        registry.authority().to_string(),
    ];
    let mut inst = rt.instantiate(&plugin, &hosts).await.unwrap();
    let settings = pairs(&[
        ("region", REGION),
        ("api-endpoint", &fake.url()),
        ("artifact-registry-endpoint", &fake.url()),
        ("registry-endpoint", &registry.url),
        ("oauth-endpoint", &format!("{}/token", fake.url())),
        ("poll-interval-ms", "20"),
    ]);
    let credentials = vec![Credential {
        kind: CredentialKind::Gcp,
        values: pairs(&[(
            "service-account-json",
            &fs_err::read_to_string(&key).unwrap(),
        )]),
    }];
    inst.configure(&settings, &credentials).await.unwrap();

    let started = Instant::now();
    let endpoint = inst
        .deploy_function(&request(512, Some(&image)))
        .await
        .unwrap();
    let deploy_time = started.elapsed();
    assert_eq!(endpoint.id, "st-e2e000-00-00");
    assert_eq!(
        endpoint.url,
        format!("http://127.0.0.1:{}/s/st-e2e000-00-00/", fake.front)
    );
    assert_eq!(meta(&endpoint, "stellar-run"), "e2e000");
    assert!(
        meta(&endpoint, "image").ends_with(&built.manifest.digest),
        "{endpoint:?}"
    );
    // The service answers from the pushed image, with the metadata server's instance id.
    let (status, reply) = http(fake.front, "GET", "/s/st-e2e000-00-00/?SpinMs=1", b"");
    assert_eq!(status, 200, "{reply}");
    let first_instance = reply["instance_id"].as_str().unwrap().to_owned();
    assert!(
        fake.state()["instance_ids"]
            .as_array()
            .unwrap()
            .contains(&Value::from(first_instance.as_str())),
        "{reply}"
    );
    assert_eq!(reply["runtime"]["provider"], "gcr");

    let listed = inst.list_apis().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0].id, &listed[0].url),
        (&endpoint.id, &endpoint.url)
    );
    assert!(meta(&listed[0], "created-unix-ms").parse::<u64>().is_ok());

    // Update without an artifact: the same image, more memory, a new revision.
    let started = Instant::now();
    let updated = inst
        .update_function(&endpoint.id, &request(1024, None))
        .await
        .unwrap();
    let update_time = started.elapsed();
    assert_eq!(updated.url, endpoint.url);
    let bodies = fake.state()["bodies"].clone();
    let patch = &bodies[1];
    assert_eq!(patch[0], "PATCH");
    assert_eq!(
        patch[2]["template"]["containers"][0]["resources"]["limits"]["memory"],
        "1024Mi"
    );
    assert_eq!(
        patch[2]["template"]["containers"][0]["image"],
        bodies[0][2]["template"]["containers"][0]["image"]
    );
    let (status, reply) = http(fake.front, "GET", "/s/st-e2e000-00-00/", b"");
    assert_eq!(status, 200, "{reply}");
    assert_ne!(
        reply["instance_id"],
        first_instance.as_str(),
        "a new revision, new instances"
    );
    // With the image again: the registry already has every blob.
    let started = Instant::now();
    inst.update_function(&endpoint.id, &request(1024, Some(&image)))
        .await
        .unwrap();
    let repush_time = started.elapsed();

    let started = Instant::now();
    inst.remove_function(&endpoint.id).await.unwrap();
    let remove_time = started.elapsed();
    assert!(fake.service_names().is_empty());
    assert_eq!(fake.state()["running"], 0);
    let err = inst.remove_function(&endpoint.id).await.unwrap_err();
    assert!(
        matches!(err.provider_error(), Some(ProviderError::NotFound(m)) if m.contains("NOT_FOUND")),
        "{err}"
    );
    eprintln!(
        "gcr adapter against the fake: image {} bytes (manifest {}); deploy (repository, push, \
         create with 3 polls, IAM) {deploy_time:?}, update {update_time:?}, update with the \
         same image (blobs skipped) {repush_time:?}, remove {remove_time:?}",
        archive.size, built.manifest.digest
    );
}

/// Runs `stellar run` expecting exit code 1; returns stderr.
fn run_fails(dir: &Path, key: &Path, doc: &Value, name: &str) -> String {
    let file = write_experiment(dir, &format!("experiment-{name}"), doc);
    let out = dir.join("results");
    let output = stellar(
        &["run", file.to_str().unwrap(), "-o", out.to_str().unwrap()],
        dir,
        key,
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
    stderr
}

#[test]
fn bad_input_on_gcr_gives_clear_errors_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "key.json", Some(PROJECT));
    let registry = RunningRegistry::start(false);
    let fake = FakeGcr::start(&key, &dir.path().join("fake"));
    let good = experiment(&fake, &registry.url, &[]);

    // A key file that is not a service-account key.
    let bad_key = dir.path().join("bad-key.json");
    fs_err::write(&bad_key, r#"{"type": "authorized_user", "client_id": "x"}"#).unwrap();
    let stderr = run_fails(dir.path(), &bad_key, &good, "bad-key.json");
    assert!(
        stderr.contains("GOOGLE_APPLICATION_CREDENTIALS") && stderr.contains("service_account"),
        "{stderr}"
    );

    // No project in the key and none in the settings.
    let no_project = write_key(dir.path(), "no-project.json", None);
    let stderr = run_fails(dir.path(), &no_project, &good, "no-project.json");
    assert!(stderr.contains("no Google Cloud project"), "{stderr}");

    // A region without Cloud Run: the API's own error, nothing created.
    let moon = experiment(&fake, &registry.url, &[("region", "moon-central1")]);
    let stderr = run_fails(dir.path(), &key, &moon, "moon.json");
    assert!(
        stderr.contains("NOT_FOUND") && stderr.contains("moon-central1"),
        "{stderr}"
    );

    // A registry that refuses the access token (401).
    let locked = RunningRegistry::start(true);
    let denied = experiment(&fake, &locked.url, &[]);
    let stderr = run_fails(dir.path(), &key, &denied, "denied.json");
    assert!(
        stderr.contains("401") || stderr.to_lowercase().contains("unauthorized"),
        "{stderr}"
    );
    assert!(
        locked
            .stored_files()
            .iter()
            .all(|p| !p.to_string_lossy().contains("manifests/tags"))
    );

    // A revision that fails to start: the service is deleted again.
    fake.control("/__fake/config", &json!({"fail_next_revision": true}));
    let stderr = run_fails(dir.path(), &key, &good, "failing.json");
    assert!(
        stderr.contains("FAILED_PRECONDITION") && stderr.contains("is not ready"),
        "{stderr}"
    );

    let state = fake.state();
    assert!(fake.service_names().is_empty(), "{state}");
    assert_eq!(state["running"], 0, "{state}");
    let log = fake.log();
    assert!(
        log.iter()
            .any(|(m, p, s)| m == "DELETE" && p.contains("/services/") && *s == 200),
        "the failed service was not deleted: {log:?}"
    );
    for name in ["bad-key.json", "no-project.json"] {
        assert!(
            !stderr.contains("PRIVATE KEY"),
            "{name}: the key leaked into an error"
        );
    }
}

/// STeLLAR's own gcr experiment files plan with this adapter once a region is given: the
/// adapter loads, its options and the `gcp` credential are checked, nothing is deployed.
#[test]
fn stellars_gcr_experiment_files_plan_with_the_gcr_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "key.json", Some(PROJECT));
    for name in ["gcr-tests-hellorust.json", "gcr-cold-hellogo-boosted.json"] {
        let text =
            fs_err::read_to_string(repo().join("experiments/stellar-compat").join(name)).unwrap();
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        doc["Stellar"] = json!({"ProviderSettings": {"region": REGION}});
        let file = write_experiment(dir.path(), name, &doc);
        let output = stellar(
            &["run", file.to_str().unwrap(), "--dry-run"],
            dir.path(),
            &key,
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{name}: stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stdout.contains("Runtime") || stderr.contains("Runtime"),
            "{name}: Runtime is not listed as ignored:\n{stdout}\n{stderr}"
        );
    }
}
