//! The OCI image stellar builds, pushed by a real wasm component (the `oci-push-probe`
//! fixture, which uses `plugins/oci-push` through the artifact resource) to a real registry
//! (Debian's `docker-registry`, see `registry.rs`), then checked with an independent client:
//! `skopeo inspect` and `skopeo copy docker://… oci:DIR` (manifest digest, entrypoint,
//! platform), and the binary pulled back out of the layer must answer a measurement request
//! when started with `PORT` set. A second push skips every blob; a wrong password is a clear
//! `unauthorized` error and leaves nothing in the registry.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use stellar::plugin::{
    ArtifactKind, DeployRequest, PluginError, PluginRuntime, PluginSource, SandboxLimits,
};

use crate::registry::{RunningRegistry, require};
use crate::support::{free_port, meta, pairs};

/// Pad the image to this size, so the filler layer (several artifact reads) is exercised.
const IMAGE_SIZE_MB: &str = "8";

fn probe() -> PluginSource {
    PluginSource::File(PathBuf::from(env!("STELLAR_PLUGIN_OCI_PUSH_PROBE_WASM")))
}

/// The image built by `stellar build --plugin probe -o <dir>/image.tar` (built once per test
/// binary): the archive, its layout directory and the manifest digest of `index.json`.
struct Built {
    archive: PathBuf,
    layout: PathBuf,
    manifest_digest: String,
    _dir: tempfile::TempDir,
}

fn stellar_build(out: &Path) -> (Duration, String) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .args([
            "build",
            "--plugin",
            env!("STELLAR_PLUGIN_OCI_PUSH_PROBE_WASM"),
        ])
        .args(["--image-size-mb", IMAGE_SIZE_MB, "--seed", "11", "-o"])
        .arg(out)
        .output()
        .expect("run stellar build");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "stellar build failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (
        elapsed,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn manifest_digest_of(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&fs_err::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("image.tar");
        let (first, stdout) = stellar_build(&archive);
        eprintln!("stellar build (oci-image, {IMAGE_SIZE_MB} MB): {first:?}\n{stdout}");
        let layout = dir.path().join("image.tar.layout");
        let manifest_digest = manifest_digest_of(&layout);
        // A second build, into a layout directory: same digest (reproducible image).
        let again = dir.path().join("again");
        let (second, _) = stellar_build(&again);
        assert_eq!(
            manifest_digest_of(&again),
            manifest_digest,
            "two builds, two digests"
        );
        eprintln!(
            "second build (cargo up to date): {second:?}, same manifest digest {manifest_digest}"
        );
        Built {
            archive,
            layout,
            manifest_digest,
            _dir: dir,
        }
    })
}

fn request(name: &str, archive: &Path) -> DeployRequest {
    DeployRequest {
        name: name.into(),
        memory_mb: 512,
        timeout_s: 60,
        arm64: false,
        env: vec![],
        tags: vec![],
        instance_concurrency: 0,
        options: vec![],
        artifact: Some((archive.to_owned(), ArtifactKind::OciImage)),
    }
}

fn skopeo(args: &[&str], creds: &[String]) -> std::process::Output {
    require("skopeo");
    let (verb, rest) = args.split_first().unwrap();
    Command::new("skopeo")
        .arg(verb)
        .args(creds)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo")
}

/// `(name, data, mode)` of the files of an uncompressed tar.
fn tar_files(bytes: &[u8]) -> Vec<(String, Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|&b| b != 0) {
        let h = &bytes[at..at + 512];
        let text = |r: std::ops::Range<usize>| {
            String::from_utf8_lossy(&h[r])
                .trim_matches(['\0', ' '])
                .to_string()
        };
        let size = usize::from_str_radix(&text(124..136), 8).unwrap();
        let mode = u32::from_str_radix(&text(100..108), 8).unwrap();
        out.push((
            text(0..100),
            bytes[at + 512..at + 512 + size].to_vec(),
            mode,
        ));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// Pulls `reference` with skopeo into an OCI layout and checks manifest digest, platform and
/// entrypoint; returns the entrypoint binary extracted from the pulled layer.
fn pull_and_check(reference: &str, digest: &str, creds: &[String], work: &Path) -> PathBuf {
    let inspect = skopeo(
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
        creds,
    );
    assert!(
        inspect.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        seen["Digest"], digest,
        "skopeo sees another manifest digest"
    );
    assert_eq!(seen["Architecture"], "amd64");
    assert_eq!(seen["Os"], "linux");
    let config = skopeo(
        &[
            "inspect",
            "--tls-verify=false",
            "--config",
            &format!("docker://{reference}"),
        ],
        creds,
    );
    assert!(
        config.status.success(),
        "{}",
        String::from_utf8_lossy(&config.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/stellar-measure-http"])
    );
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );

    let pulled = work.join("pulled");
    let copy = skopeo(
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{}:pulled", pulled.display()),
        ],
        &creds
            .iter()
            .map(|c| c.replace("--creds", "--src-creds"))
            .collect::<Vec<_>>(),
    );
    assert!(
        copy.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs_err::read(pulled.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(
        manifest_digest, digest,
        "skopeo copied the manifest unchanged"
    );
    let blob = |d: &str| {
        pulled
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs_err::read(blob(manifest_digest)).unwrap()).unwrap();
    let layer = fs_err::read(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(layer.as_slice())
        .read_to_end(&mut tar)
        .unwrap();
    let files = tar_files(&tar);
    let (name, data, mode) = files.first().expect("a file in the first layer");
    assert_eq!((name.as_str(), *mode), ("stellar-measure-http", 0o755));
    let binary = work.join("stellar-measure-http");
    fs_err::write(&binary, data).unwrap();
    fs_err::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    binary
}

/// Starts `binary` with only `PORT` set (as a container runtime would) and sends one
/// measurement request.
fn binary_answers_a_measurement(binary: &Path) -> serde_json::Value {
    let port = free_port();
    let mut child = Command::new(binary)
        .env_clear()
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the pulled binary");
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let attempt = (|| -> std::io::Result<String> {
            use std::io::Write as _;
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
            write!(
                stream,
                "GET /?SpinMs=1&RequestID=oci-e2e HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            )?;
            let mut text = String::new();
            stream.read_to_string(&mut text)?;
            Ok(text)
        })();
        match attempt {
            Ok(text) => break text,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                panic!("the pulled binary did not answer on PORT={port}: {e}");
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn a_component_pushes_the_image_skopeo_pulls_it_and_its_binary_answers() {
    let built = built();
    let registry = RunningRegistry::start(false);
    let cache = tempfile::tempdir().unwrap();
    let rt = PluginRuntime::with_cache_dir(SandboxLimits::default(), Some(cache.path().to_owned()))
        .unwrap();
    let plugin = rt.load(probe()).await.unwrap();
    let mut inst = rt
        .instantiate(&plugin, &[registry.authority().to_string()])
        .await
        .unwrap();
    inst.configure(
        &pairs(&[
            ("registry", &registry.url),
            ("repository", "stellar/measure"),
            ("tag", "e2e"),
        ]),
        &[],
    )
    .await
    .unwrap();

    let started = Instant::now();
    let first = inst
        .deploy_function(&request("f", &built.archive))
        .await
        .unwrap();
    let first_time = started.elapsed();
    let archive_bytes = fs_err::metadata(&built.archive).unwrap().len();
    let digest = meta(&first, "digest").to_string();
    assert_eq!(
        digest, built.manifest_digest,
        "the registry got the image stellar built"
    );
    let reference = meta(&first, "reference").to_string();
    assert_eq!(
        reference,
        format!("{}/stellar/measure@{digest}", registry.authority())
    );
    let uploaded: u64 = meta(&first, "bytes-uploaded").parse().unwrap();
    assert!(
        uploaded > 8 << 20 && uploaded < archive_bytes,
        "uploaded {uploaded} of a {archive_bytes}-byte archive"
    );
    assert_eq!(meta(&first, "blobs-skipped"), "0");

    // Push again: every blob is already there.
    let started = Instant::now();
    let second = inst
        .update_function("f", &request("f", &built.archive))
        .await
        .unwrap();
    let second_time = started.elapsed();
    assert_eq!(meta(&second, "digest"), digest);
    assert_eq!(meta(&second, "bytes-uploaded"), "0");
    assert_eq!(
        meta(&second, "blobs-skipped"),
        "3",
        "config and both layers skipped"
    );
    eprintln!(
        "push of a {archive_bytes}-byte oci-archive to the local registry: first {first_time:?} \
         ({uploaded} bytes uploaded), again {second_time:?} (3 blobs skipped)"
    );

    // The independent oracle: skopeo, by tag and by digest.
    let work = tempfile::tempdir().unwrap();
    let by_tag = format!("{}/stellar/measure:e2e", registry.authority());
    let binary = pull_and_check(&by_tag, &digest, &[], work.path());
    assert!(
        built.layout.join("oci-layout").is_file(),
        "the build also wrote the layout"
    );
    let reply = binary_answers_a_measurement(&binary);
    assert_eq!(reply["RequestID"], "oci-e2e", "{reply}");
    assert_eq!(reply["cold"], true, "{reply}");
    let by_digest = skopeo(
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
        &[],
    );
    assert!(
        by_digest.status.success(),
        "{}",
        String::from_utf8_lossy(&by_digest.stderr)
    );
}

#[tokio::test]
async fn basic_auth_push_works_and_a_wrong_password_is_refused_leaving_nothing() {
    let built = built();
    let registry = RunningRegistry::start(true);
    let cache = tempfile::tempdir().unwrap();
    let rt = PluginRuntime::with_cache_dir(SandboxLimits::default(), Some(cache.path().to_owned()))
        .unwrap();
    let plugin = rt.load(probe()).await.unwrap();
    let user = registry.user.clone().unwrap();

    // Wrong password first, on an empty registry.
    let mut inst = rt
        .instantiate(&plugin, &[registry.authority().to_string()])
        .await
        .unwrap();
    inst.configure(
        &pairs(&[
            ("registry", &registry.url),
            ("tag", "e2e"),
            ("user", &user),
            ("password", "wrong"),
        ]),
        &[],
    )
    .await
    .unwrap();
    let err = inst
        .deploy_function(&request("f", &built.archive))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PluginError::Provider { .. }), "{err:?}");
    assert!(text.contains("unauthorized"), "{text}");
    assert!(
        text.contains(&format!(
            "registry {} refused the credentials of user \"stellar\"",
            registry.authority()
        )),
        "{text}"
    );
    assert!(
        !text.contains("wrong\""),
        "the password is not echoed: {text}"
    );
    assert_eq!(
        registry.stored_files(),
        Vec::<PathBuf>::new(),
        "a refused push leaves nothing behind"
    );

    // The right password.
    let mut inst = rt
        .instantiate(&plugin, &[registry.authority().to_string()])
        .await
        .unwrap();
    let password = registry.password.clone().unwrap();
    inst.configure(
        &pairs(&[
            ("registry", &registry.url),
            ("tag", "e2e"),
            ("user", &user),
            ("password", &password),
        ]),
        &[],
    )
    .await
    .unwrap();
    let pushed = inst
        .deploy_function(&request("f", &built.archive))
        .await
        .unwrap();
    assert_eq!(meta(&pushed, "digest"), built.manifest_digest);
    let work = tempfile::tempdir().unwrap();
    let reference = format!("{}/stellar/measure:e2e", registry.authority());
    // Without credentials skopeo is refused; with them it pulls the same image.
    let anonymous = skopeo(
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
        &[],
    );
    assert!(!anonymous.status.success(), "the registry requires auth");
    let binary = pull_and_check(
        &reference,
        &built.manifest_digest,
        &registry.skopeo_creds(),
        work.path(),
    );
    assert!(binary.is_file());
}
