//! The `aliyun` adapter (Alibaba Cloud Function Compute 3.0) without an Alibaba account: the
//! real adapter component in stellar's plugin host, talking to a loopback fake of the FC 3.0
//! control plane (`fake_fc.py`) that recomputes every request's ACS3-HMAC-SHA256 signature
//! with Alibaba's own SDK (`alibabacloud_openapi_util` `get_authorization`) and parses every
//! body with the vendor's API model (PyPI `alibabacloud_fc20230330`: `client.py` for routes and
//! actions, `models/_create_function_input.py`, `_update_function_input.py`,
//! `_create_trigger_input.py`, `_function.py`, `_trigger.py`, `_httptrigger.py`,
//! `_list_functions_output.py`, `_list_triggers_output.py`). The timed requests of
//! `stellar run` go to the real measurement function started the way FC starts a custom
//! runtime: `bootstrap` unpacked from the zip `stellar build --provider aliyun` made, run from
//! its `/code`-style directory with `FC_SERVER_PORT` and `FC_INSTANCE_ID`, listening on
//! 0.0.0.0.
//!
//! Needs python3 with `alibabacloud_fc20230330` and `alibabacloud_openapi_util` (the README's
//! test command installs them).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, meta, pairs, provider_error, repo};
use serde_json::{Value, json};
use stellar::plugin::{
    ArtifactKind, Credential, CredentialKind, DeployRequest, PluginError, PluginInstance,
    PluginRuntime, ProviderError, SandboxLimits,
};
use stellar_config::Architecture;
use stellar_results::read_latencies;

const REGION: &str = "cn-hangzhou";
const KEY_ID: &str = "LTAI5tStellarE2eKey";
const SECRET: &str = "stellar-e2e-secret-value";
const TOKEN: &str = "CAIS-stellar-e2e-sts-token";

/// One HTTP/1.1 request to 127.0.0.1:`port`; the status and the body parsed as JSON.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\
         content-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = &raw[split + 4..];
    (status, serde_json::from_slice(body).unwrap_or(Value::Null))
}

/// `fake_fc.py` on 127.0.0.1:<free port>, killed on drop.
pub(crate) struct FakeFc {
    child: Child,
    port: u16,
}

impl FakeFc {
    fn start(secret: &str, token: Option<&str>) -> Self {
        let script = repo().join("tests/e2e/fake_fc.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args([KEY_ID, secret, token.unwrap_or("-"), REGION])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("FAKE-FC-READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "fake_fc.py did not start ({line:?}); it needs \
                     `python3 -m pip install alibabacloud_fc20230330 alibabacloud_openapi_util`"
                )
            });
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn state(&self) -> Value {
        let (status, state) = http(self.port, "GET", "/__fake/state", &[], b"");
        assert_eq!(status, 200, "{state}");
        state
    }

    fn control(&self, path: &str, doc: &Value) {
        let (status, answer) = http(self.port, "POST", path, &[], doc.to_string().as_bytes());
        assert_eq!(status, 200, "{answer}");
    }

    fn function_names(&self) -> Vec<String> {
        let state = self.state();
        let mut names: Vec<String> = state["functions"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// The actions the fake answered, in order.
    fn actions(&self) -> Vec<String> {
        self.state()["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[0].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for FakeFc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings(fake: &FakeFc, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let url = fake.url();
    let mut items = vec![
        ("region", REGION),
        ("endpoint", url.as_str()),
        ("poll-interval-ms", "20"),
    ];
    items.extend_from_slice(extra);
    pairs(&items)
}

fn credentials(secret: &str, token: Option<&str>) -> Vec<Credential> {
    let mut values = vec![("access-key-id", KEY_ID), ("access-key-secret", secret)];
    if let Some(token) = token {
        values.push(("security-token", token));
    }
    vec![Credential {
        kind: CredentialKind::Alibaba,
        values: pairs(&values),
    }]
}

/// The real code zip (the embedded measurement function as `bootstrap`), padded to `pad`.
fn code_zip(dir: &Path, file: &str, pad: Option<u64>) -> (PathBuf, u64) {
    let path = dir.join(file);
    let zip = stellar::package::fc_custom_zip::build(Architecture::X86_64, pad, 0, &path).unwrap();
    (path, zip.size)
}

fn request(name: &str, memory_mb: u32, artifact: Option<PathBuf>) -> DeployRequest {
    DeployRequest {
        name: name.into(),
        memory_mb,
        timeout_s: 10,
        arm64: false,
        env: pairs(&[("STELLAR_PROVIDER", "aliyun")]),
        tags: pairs(&[("stellar-run", "e2e")]),
        instance_concurrency: 0,
        options: vec![],
        artifact: artifact.map(|p| (p, ArtifactKind::FcCustomZip)),
    }
}

async fn aliyun_instance(
    cache: &tempfile::TempDir,
    extra_hosts: &[String],
) -> (PluginRuntime, PluginInstance) {
    let rt = PluginRuntime::with_cache_dir(SandboxLimits::default(), Some(cache.path().to_owned()))
        .unwrap();
    let plugin = rt
        .load(stellar::embedded::plugin_for("aliyun").unwrap())
        .await
        .unwrap();
    let info = plugin.info();
    assert_eq!(info.name, "aliyun");
    assert_eq!(info.allowed_hosts, vec!["*.aliyuncs.com".to_string()]);
    assert_eq!(info.endpoint_hosts, vec!["*.fcapp.run".to_string()]);
    assert_eq!(info.artifacts, vec![ArtifactKind::FcCustomZip]);
    assert!(matches!(
        info.credentials.as_slice(),
        [CredentialKind::Alibaba]
    ));
    let inst = rt.instantiate(&plugin, extra_hosts).await.unwrap();
    (rt, inst)
}

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

/// The fake itself against the vendor's FC 3.0 client (`fake_fc_sdk_check.py`): what the
/// adapter is tested against is what Alibaba's SDK speaks.
#[test]
fn the_fake_fc_serves_alibabas_own_client() {
    let output = Command::new("python3")
        .arg(repo().join("tests/e2e/fake_fc_sdk_check.py"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("SDK-CHECK-OK"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn aliyun_adapter_deploys_updates_lists_and_removes_on_the_fake_fc() {
    let fake = FakeFc::start(SECRET, Some(TOKEN));
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_rt, mut inst) = aliyun_instance(&cache, &[fake.host()]).await;
    inst.configure(&settings(&fake, &[]), &credentials(SECRET, Some(TOKEN)))
        .await
        .unwrap();

    // Deploy: create, wait through Pending, trigger.
    let (zip, zip_size) = code_zip(work.path(), "code.zip", None);
    let started = Instant::now();
    let endpoint = inst
        .deploy_function(&request("st-e2e-00-00", 512, Some(zip.clone())))
        .await
        .unwrap();
    let deploy_time = started.elapsed();
    assert_eq!(endpoint.id, "st-e2e-00-00");
    let trigger_id = endpoint
        .url
        .strip_prefix("https://st-e2e-00-00-")
        .and_then(|rest| rest.strip_suffix(".cn-hangzhou.fcapp.run"))
        .unwrap_or_else(|| panic!("not an HTTP trigger URL: {}", endpoint.url));
    assert_eq!(trigger_id.len(), 10, "{}", endpoint.url);
    assert_eq!(meta(&endpoint, "region"), REGION);
    assert_eq!(meta(&endpoint, "runtime"), "custom.debian12");
    assert_eq!(meta(&endpoint, "memory-mb"), "512");
    assert_eq!(meta(&endpoint, "cpu"), "0.35");
    assert_eq!(meta(&endpoint, "url-source"), "http-trigger");

    let state = fake.state();
    let f = &state["functions"]["st-e2e-00-00"];
    assert_eq!(f["runtime"], "custom.debian12");
    assert_eq!(
        f["customRuntimeConfig"],
        json!({"command": ["/code/bootstrap"], "port": 9000})
    );
    assert_eq!(f["memorySize"], 512);
    assert_eq!(f["cpu"], 0.35);
    assert_eq!(f["diskSize"], 512);
    assert_eq!(f["timeout"], 10);
    assert_eq!(f["instanceConcurrency"], 1);
    assert_eq!(
        f["environmentVariables"],
        json!({"STELLAR_PROVIDER": "aliyun"})
    );
    assert_eq!(f["tags"], json!([{"Key": "stellar-run", "Value": "e2e"}]));
    assert_eq!(f["codeSize"], zip_size);
    assert_eq!(f["_bootstrap_mode"], "0o755");
    let trigger = &state["triggers"]["st-e2e-00-00"]["stellar-http"];
    assert_eq!(trigger["triggerType"], "http");
    let trigger_config: Value =
        serde_json::from_str(trigger["triggerConfig"].as_str().unwrap()).unwrap();
    assert_eq!(trigger_config["authType"], "anonymous");
    let actions = fake.actions();
    assert_eq!(
        actions,
        // The create answer and the first poll say Pending, the second Active.
        [
            "CreateFunction",
            "GetFunction",
            "GetFunction",
            "CreateTrigger"
        ]
    );

    // A function outside stellar's naming is not listed.
    fake.control(
        "/__fake/functions",
        &json!({"functionName": "other-fn", "runtime": "python3.10"}),
    );
    let listed = inst.list_apis().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0].id, &listed[0].url),
        (&endpoint.id, &endpoint.url)
    );

    // Update: only what changed goes to FC, then a wait for lastUpdateStatus.
    let started = Instant::now();
    let updated = inst
        .update_function(&endpoint.id, &request("st-e2e-00-00", 1024, None))
        .await
        .unwrap();
    let update_time = started.elapsed();
    assert_eq!(updated.url, endpoint.url);
    assert_eq!(meta(&updated, "memory-mb"), "1024");
    let f = fake.state()["functions"]["st-e2e-00-00"].clone();
    assert_eq!(f["_updates"], json!([["cpu", "memorySize"]]));
    assert_eq!(f["cpu"], 0.7);
    let before = count(&fake.actions(), "UpdateFunction");
    inst.update_function(&endpoint.id, &request("st-e2e-00-00", 1024, None))
        .await
        .unwrap();
    assert_eq!(
        count(&fake.actions(), "UpdateFunction"),
        before,
        "nothing changed"
    );
    inst.update_function(&endpoint.id, &request("st-e2e-00-00", 1024, Some(zip)))
        .await
        .unwrap();
    let f = fake.state()["functions"]["st-e2e-00-00"].clone();
    assert_eq!(f["_updates"][1], json!(["code"]));

    // Remove: triggers first, then the function; again is not found.
    let started = Instant::now();
    inst.remove_function(&endpoint.id).await.unwrap();
    let remove_time = started.elapsed();
    let actions = fake.actions();
    assert_eq!(
        actions[actions.len() - 4..],
        [
            "GetFunction",
            "ListTriggers",
            "DeleteTrigger",
            "DeleteFunction"
        ]
    );
    assert_eq!(fake.function_names(), ["other-fn"]);
    let err = inst.remove_function(&endpoint.id).await.unwrap_err();
    assert!(
        matches!(provider_error(&err), ProviderError::NotFound(m) if m.contains("FunctionNotFound")),
        "{err}"
    );

    // Every request was signed as Alibaba's SDK signs it, STS token included.
    let state = fake.state();
    let answered = state["log"].as_array().unwrap().len() as u64;
    assert_eq!(state["signatures_checked"].as_u64(), Some(answered));
    assert_eq!(state["signatures_rejected"], 0);
    eprintln!(
        "aliyun adapter on the fake FC ({answered} signed requests, zip {zip_size} bytes): \
         deploy {deploy_time:?}, update {update_time:?}, remove {remove_time:?}"
    );
}

#[tokio::test]
async fn aliyun_bad_inputs_are_named_and_leave_nothing_behind() {
    let fake = FakeFc::start(SECRET, None);
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (zip, _) = code_zip(work.path(), "code.zip", None);
    let (_rt, mut inst) = aliyun_instance(&cache, &[fake.host()]).await;

    // Unknown region: refused in configure, before any request.
    let err = inst
        .configure(
            &settings(&fake, &[("region", "xx-nowhere-1")]),
            &credentials(SECRET, None),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(provider_error(&err),
            ProviderError::Invalid(m) if m.contains("\"xx-nowhere-1\"") && m.contains("cn-hangzhou")),
        "{err}"
    );

    // Wrong secret: the fake's SDK check refuses the signature; nothing is created.
    inst.configure(&settings(&fake, &[]), &credentials("not-the-secret", None))
        .await
        .unwrap();
    let err = inst
        .deploy_function(&request("st-bad-00-00", 512, Some(zip.clone())))
        .await
        .unwrap_err();
    assert!(
        matches!(provider_error(&err),
            ProviderError::Unauthorized(m) if m.contains("SignatureNotMatch") && !m.contains("not-the-secret")),
        "{err}"
    );
    assert!(fake.state()["signatures_rejected"].as_u64().unwrap() >= 1);
    assert!(fake.function_names().is_empty());

    inst.configure(&settings(&fake, &[]), &credentials(SECRET, None))
        .await
        .unwrap();

    // Quota: FC refuses another function.
    fake.control("/__fake/config", &json!({"max_functions": 0}));
    let err = inst
        .deploy_function(&request("st-bad-00-01", 512, Some(zip.clone())))
        .await
        .unwrap_err();
    assert!(
        matches!(provider_error(&err), ProviderError::Quota(m) if m.contains("ResourceExhausted")),
        "{err}"
    );
    assert!(fake.function_names().is_empty());
    fake.control("/__fake/config", &json!({"max_functions": 100}));

    // Name taken by a function stellar did not create: deploy refuses, remove leaves it.
    fake.control(
        "/__fake/functions",
        &json!({"functionName": "st-taken-00-00", "runtime": "custom.debian12"}),
    );
    let err = inst
        .deploy_function(&request("st-taken-00-00", 512, Some(zip.clone())))
        .await
        .unwrap_err();
    assert!(
        matches!(provider_error(&err),
            ProviderError::Invalid(m) if m.contains("already exists") && m.contains("leaves it alone")),
        "{err}"
    );
    let err = inst.remove_function("st-taken-00-00").await.unwrap_err();
    assert!(
        matches!(provider_error(&err), ProviderError::Invalid(m) if m.contains("left alone")),
        "{err}"
    );
    assert_eq!(fake.function_names(), ["st-taken-00-00"]);

    // A zip over the inline limit: named before any upload.
    inst.configure(
        &settings(&fake, &[("max-inline-zip-mb", "1")]),
        &credentials(SECRET, None),
    )
    .await
    .unwrap();
    let (big, big_size) = code_zip(work.path(), "big.zip", Some(2 << 20));
    let creates = count(&fake.actions(), "CreateFunction");
    let err = inst
        .deploy_function(&request("st-bad-00-02", 512, Some(big)))
        .await
        .unwrap_err();
    assert!(
        matches!(provider_error(&err),
            ProviderError::Invalid(m) if m.contains("max-inline-zip-mb") && m.contains(&big_size.to_string())),
        "{err}"
    );
    assert_eq!(count(&fake.actions(), "CreateFunction"), creates);
    assert_eq!(fake.function_names(), ["st-taken-00-00"]);

    // The sandbox refuses the fake's host when it is not granted (no api-url option given).
    let (_rt, mut denied) = aliyun_instance(&cache, &[]).await;
    denied
        .configure(&settings(&fake, &[]), &credentials(SECRET, None))
        .await
        .unwrap();
    let err = denied.list_apis().await.unwrap_err();
    assert!(matches!(err, PluginError::UndeclaredHost { .. }), "{err}");
}

/// The measurement function as FC runs a custom runtime: `bootstrap` from the code zip, in its
/// own `code` directory, with `FC_SERVER_PORT` and `FC_INSTANCE_ID`; killed on drop.
struct CustomRuntime {
    child: Child,
    port: u16,
}

impl CustomRuntime {
    fn start(code_zip: &Path, code_dir: &Path, instance_id: &str) -> Self {
        fs_err::create_dir_all(code_dir).unwrap();
        let mut archive = zip::ZipArchive::new(fs_err::File::open(code_zip).unwrap()).unwrap();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).unwrap();
            let out = code_dir.join(entry.name().unwrap().as_ref());
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            fs_err::write(&out, bytes).unwrap();
            if let Some(mode) = entry.unix_mode() {
                fs_err::set_permissions(&out, std::fs::Permissions::from_mode(mode & 0o7777))
                    .unwrap();
            }
        }
        let bootstrap = code_dir.join("bootstrap");
        let mode = fs_err::metadata(&bootstrap).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "bootstrap must be executable as unpacked");
        let port = free_port();
        let mut child = Command::new(&bootstrap)
            .current_dir(code_dir)
            .env("FC_SERVER_PORT", port.to_string())
            .env("FC_INSTANCE_ID", instance_id)
            .env("FC_FUNCTION_NAME", "st-fc-function")
            .env("FC_REGION", REGION)
            .env_remove("PORT")
            .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
            .env_remove("STELLAR_LISTEN_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready = stellar_measure::ReadySignal::parse_line(&line).unwrap();
        assert_eq!(ready.port, port, "the port comes from FC_SERVER_PORT");
        Self { child, port }
    }

    /// Whether something listens on 0.0.0.0:`port` (as FC requires), from /proc/net/tcp.
    fn listens_on_all_addresses(&self) -> bool {
        let table = fs_err::read_to_string("/proc/net/tcp").unwrap();
        let want = format!("00000000:{:04X}", self.port);
        table.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.get(1) == Some(&want.as_str()) && cols.get(3) == Some(&"0A")
        })
    }
}

impl Drop for CustomRuntime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stellar(args: &[&str], dir: &Path, secret: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stellar"))
        .current_dir(dir)
        .args(args)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .env("HOME", dir)
        .env("STELLAR_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap()
}

#[test]
fn stellar_run_on_aliyun_against_the_fake_fc_and_the_custom_runtime() {
    let dir = tempfile::tempdir().unwrap();

    // `stellar build --provider aliyun` picks the fc-custom-zip kind the adapter declares.
    let zip_path = dir.path().join("code.zip");
    let output = stellar(
        &[
            "build",
            "--provider",
            "aliyun",
            "--image-size-mb",
            "3",
            "-o",
            zip_path.to_str().unwrap(),
        ],
        dir.path(),
        SECRET,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let zip_size = fs_err::metadata(&zip_path).unwrap().len();
    assert!(
        (3 << 20..=(3 << 20) + 1024).contains(&zip_size),
        "{zip_size}"
    );

    // The function, started as FC starts a custom runtime.
    let runtime = CustomRuntime::start(&zip_path, &dir.path().join("code"), "c-e2e-instance-1");
    assert!(runtime.listens_on_all_addresses(), "not bound to 0.0.0.0");
    let (status, reply) = http(
        runtime.port,
        "GET",
        "/?SpinMs=1",
        &[("x-fc-request-id", "fc-req-0001")],
        b"",
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["RequestID"], "fc-req-0001");
    assert_eq!(reply["instance_id"], "c-e2e-instance-1");
    assert_eq!(reply["cold"], true);
    let (status, reply) = http(
        runtime.port,
        "POST",
        "/invoke",
        &[
            ("x-fc-request-id", "fc-event-0002"),
            ("content-type", "application/json"),
        ],
        br#"{"IncrementLimit": 7}"#,
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        (reply["increments"].as_u64(), reply["RequestID"].as_str()),
        (Some(7), Some("fc-event-0002"))
    );
    let (status, reply) = http(runtime.port, "POST", "/invoke", &[], b"[1]");
    assert_eq!(status, 400, "{reply}");

    // STeLLAR's aliyun experiment shape, pointed at the fake and the custom runtime.
    let fake = FakeFc::start(SECRET, None);
    let experiment = json!({
        "Sequential": false,
        "Provider": "aliyun",
        "Runtime": "python3.9",
        "Stellar": {
            "Seed": 5,
            "ProviderSettings": {
                "region": REGION,
                "endpoint": fake.url(),
                "function-url-override": format!("http://127.0.0.1:{}/{{name}}", runtime.port),
                "poll-interval-ms": "20",
            }
        },
        "SubExperiments": [{
            "Title": "parallelism1",
            "Function": "hellopy",
            "Handler": "main.main",
            "PackageType": "Zip",
            "PackagePattern": "main.py",
            "Bursts": 4,
            "BurstSizes": [2],
            "IATSeconds": 0.2,
            "IATType": "deterministic",
            "DesiredServiceTimes": ["5ms"],
            "FunctionImageSizeMB": 3
        }]
    });
    let file = dir.path().join("aliyun.json");
    fs_err::write(&file, serde_json::to_string_pretty(&experiment).unwrap()).unwrap();
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
        SECRET,
    );
    let run_time = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the secret leaked"
    );
    let analysis: Value = serde_json::from_str(&stdout).unwrap();
    let run_dir = Path::new(analysis["run_dir"].as_str().unwrap()).to_owned();

    let rows = read_latencies(run_dir.join("00-parallelism1/latencies.csv")).unwrap();
    assert_eq!(rows.len(), 8);
    for row in &rows {
        assert!(row.is_ok(), "{row:?}");
        assert_eq!(row.instance_id, "c-e2e-instance-1", "{row:?}");
        assert!(row.function_spin_ms.unwrap() >= 5.0, "{row:?}");
    }
    let mut latencies: Vec<f64> = rows.iter().filter_map(|r| r.client_latency_ms).collect();
    latencies.sort_by(f64::total_cmp);

    // Deployed through the fake (signed as the SDK signs), removed at the end.
    let journal = fs_err::read_to_string(run_dir.join("resources.jsonl")).unwrap();
    for event in ["\"creating\"", "\"created\"", "\"removed\""] {
        assert!(journal.contains(event), "{journal}");
    }
    let state = fake.state();
    assert!(fake.function_names().is_empty(), "{state}");
    let actions = fake.actions();
    for action in [
        "CreateFunction",
        "CreateTrigger",
        "DeleteTrigger",
        "DeleteFunction",
    ] {
        assert_eq!(count(&actions, action), 1, "{action}: {actions:?}");
    }
    assert_eq!(state["signatures_rejected"], 0);
    for entry in fs_err::read_dir(&run_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&fs_err::read(&path).unwrap()).into_owned();
            assert!(!text.contains(SECRET), "{}", path.display());
        }
    }
    let log = fs_err::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(
        log.contains("packaged the Function Compute code zip"),
        "{log}"
    );
    for ignored in ["Handler", "PackagePattern"] {
        assert!(
            log.contains(ignored),
            "{ignored} not listed as ignored: {log}"
        );
    }

    // A crashed run's leftovers: one journaled function that exists, one that never did.
    fake.control(
        "/__fake/functions",
        &json!({"functionName": "st-orphan-00-00", "runtime": "custom.debian12",
                "tags": [{"Key": "stellar-run", "Value": "orphan"}]}),
    );
    let mut journal = fs_err::OpenOptions::new()
        .append(true)
        .open(run_dir.join("resources.jsonl"))
        .unwrap();
    for name in ["st-orphan-00-00", "st-ghost-00-00"] {
        writeln!(
            journal,
            r#"{{"unix_ms":1,"event":"creating","provider":"aliyun","function":"{name}"}}"#
        )
        .unwrap();
    }
    drop(journal);
    let output = stellar(&["cleanup", run_dir.to_str().unwrap()], dir.path(), SECRET);
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
    assert!(fake.function_names().is_empty());

    // A wrong secret stops the run before anything exists, naming the signature error.
    let output = stellar(
        &["run", file.to_str().unwrap(), "-o", out.to_str().unwrap()],
        dir.path(),
        "wrong-secret",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SignatureNotMatch"), "{stderr}");
    assert!(fake.function_names().is_empty());

    eprintln!(
        "aliyun end to end: zip {zip_size} bytes, run {run_time:?}, client latency against the \
         custom runtime p50 {:.2} ms max {:.2} ms",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}
