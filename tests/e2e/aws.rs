//! The `aws` adapter through stellar's real plugin host against moto (a local AWS emulator):
//! the Lambda REST calls, SigV4 from inside the sandbox, artifact streaming under a small
//! memory cap, error mapping and the allow-list. moto covers the control plane only; it does
//! not serve function URLs.
//!
//! Needs `moto_server` on PATH (`pip install 'moto[server]'`); each test starts its own on a
//! free loopback port and kills it when done.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{meta, pairs, provider_error};
use serde_json::Value;
use sha2::Digest as _;
use stellar::plugin::{
    ArtifactKind, Credential, CredentialKind, DeployRequest, Endpoint, PluginError, PluginInstance,
    PluginRuntime, ProviderError, SandboxLimits,
};

const REGION: &str = "us-east-1";
/// moto accepts any keys (it does not check signatures).
const KEY: &str = "testing";

/// A `moto_server` on 127.0.0.1:<free port>, killed on drop.
pub(crate) struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    pub(crate) fn start() -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`moto_server` is not on PATH; the aws adapter tests need it: \
                 pip install 'moto[server]'"
            ),
            Err(e) => panic!("starting moto_server: {e}"),
        };
        // moto (werkzeug) announces "Running on http://127.0.0.1:<port>" on stderr once it
        // listens; keep draining stderr afterwards so the pipe never fills.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(sender) = &tx
                    && line.contains("Running on")
                {
                    let _ = sender.send(line);
                    tx = None;
                }
            }
        });
        let mut moto = Moto { child, port };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let status = moto.child.try_wait().ok().flatten();
            panic!("moto_server on port {port} did not start (exit status: {status:?})");
        }
        moto
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.1 request with an (unverified) SigV4-style authorization for `service`,
    /// which is how moto routes requests.
    pub(crate) fn call(
        &self,
        service: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\
             content-type: {content_type}\r\ncontent-length: {len}\r\nx-amz-date: 20250101T000000Z\r\n\
             authorization: AWS4-HMAC-SHA256 Credential={KEY}/20250101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={sig}\r\n\r\n",
            port = self.port,
            len = body.len(),
            sig = "0".repeat(64),
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        parse_response(&raw)
    }

    /// `GET` on the Lambda API, decoded as JSON.
    pub(crate) fn lambda_get(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.call("lambda", "GET", path, "application/json", b"");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// IAM CreateRole (Query API) trusting lambda.amazonaws.com; returns the role ARN.
    pub(crate) fn create_role(&self, name: &str) -> String {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let form = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            form_encode(name),
            form_encode(trust)
        );
        let (status, body) = self.call(
            "iam",
            "POST",
            "/",
            "application/x-www-form-urlencoded",
            form.as_bytes(),
        );
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "CreateRole: {text}");
        let arn = text
            .split("<Arn>")
            .nth(1)
            .and_then(|rest| rest.split("</Arn>").next())
            .unwrap_or_else(|| panic!("no <Arn> in CreateRole's answer: {text}"));
        arn.to_string()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and body of a raw HTTP/1.1 response (content-length or chunked).
fn parse_response(raw: &[u8]) -> (u16, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..line_end])
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = decoded;
    }
    (status, body)
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Writes `<dir>/<file>`: a zip holding `content` as the executable `bootstrap`, made by
/// stellar's own Lambda packager. Returns its path and bytes.
pub(crate) fn write_zip(dir: &Path, file: &str, content: &[u8]) -> (PathBuf, Vec<u8>) {
    let bootstrap = dir.join(format!("{file}.bootstrap"));
    fs_err::write(&bootstrap, content).unwrap();
    let path = dir.join(file);
    stellar::package::lambda_zip::lambda_zip(&bootstrap, &path, None, 0).unwrap();
    let zip = fs_err::read(&path).unwrap();
    (path, zip)
}

/// Incompressible filler of `len` bytes (a shell script header keeps it "executable").
fn filler(len: usize, seed: u32) -> Vec<u8> {
    let mut data = b"#!/bin/sh\necho stellar\nexit 0\n".to_vec();
    let mut x = seed | 1;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push(x as u8);
    }
    data.truncate(len);
    data
}

fn settings(moto: &Moto, role_arn: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut items = vec![
        ("region", REGION),
        ("role-arn", role_arn),
        ("poll-interval-ms", "50"),
    ];
    let url = moto.url();
    items.push(("endpoint", &url));
    items.extend_from_slice(extra);
    pairs(&items)
}

/// The `aws` credential the host would hand over (moto accepts any keys).
fn credentials() -> Vec<Credential> {
    vec![Credential {
        kind: CredentialKind::Aws,
        values: pairs(&[("access-key-id", KEY), ("secret-access-key", KEY)]),
    }]
}

fn request(name: &str, memory_mb: u32, artifact: Option<PathBuf>) -> DeployRequest {
    DeployRequest {
        name: name.into(),
        memory_mb,
        timeout_s: 10,
        arm64: false,
        env: pairs(&[("STELLAR_MODE", "http")]),
        tags: pairs(&[("stellar-run", "e2e")]),
        instance_concurrency: 0,
        options: vec![],
        artifact: artifact.map(|p| (p, ArtifactKind::LambdaZip)),
    }
}

async fn aws_instance(
    limits: SandboxLimits,
    cache: &tempfile::TempDir,
    extra_hosts: &[String],
) -> (PluginRuntime, PluginInstance) {
    let rt = PluginRuntime::with_cache_dir(limits, Some(cache.path().to_owned())).unwrap();
    let plugin = rt
        .load(stellar::embedded::plugin_for("aws").unwrap())
        .await
        .unwrap();
    let info = plugin.info();
    assert_eq!(info.name, "aws");
    assert_eq!(info.allowed_hosts, vec!["*.amazonaws.com".to_string()]);
    assert_eq!(info.artifacts, vec![ArtifactKind::LambdaZip]);
    assert!(matches!(info.credentials.as_slice(), [CredentialKind::Aws]));
    assert_eq!(
        info.endpoint_hosts,
        vec!["*.lambda-url.*.on.aws".to_string()]
    );
    assert_eq!(info.instance_concurrency, 1);
    let inst = rt.instantiate(&plugin, extra_hosts).await.unwrap();
    (rt, inst)
}

/// An endpoint's id, URL and meta, comparable.
type Summary = (String, String, Vec<(String, String)>);

fn summary(endpoints: &[Endpoint]) -> Vec<Summary> {
    endpoints
        .iter()
        .map(|e| (e.id.clone(), e.url.clone(), e.meta.clone()))
        .collect()
}

fn configuration(moto: &Moto, name: &str) -> Value {
    let (status, got) = moto.lambda_get(&format!("/2015-03-31/functions/{name}"));
    assert_eq!(status, 200, "GetFunction {name}: {got}");
    got
}

#[tokio::test]
async fn aws_adapter_deploys_updates_lists_and_removes_on_moto() {
    let moto = Moto::start();
    let role = moto.create_role("stellar-e2e");
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_rt, mut inst) = aws_instance(SandboxLimits::default(), &cache, &[moto.host()]).await;
    inst.configure(&settings(&moto, &role, &[]), &credentials())
        .await
        .unwrap();

    // Deploy.
    let (zip_path, zip) = write_zip(work.path(), "bootstrap.zip", &filler(4000, 7));
    let started = Instant::now();
    let endpoint = inst
        .deploy_function(&request("st-e2e-f0", 256, Some(zip_path)))
        .await
        .unwrap();
    let deploy_time = started.elapsed();
    assert_eq!(endpoint.id, "st-e2e-f0");
    let url_id = endpoint
        .url
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_suffix(".lambda-url.us-east-1.on.aws/"))
        .unwrap_or_else(|| panic!("not a function URL: {}", endpoint.url));
    assert!(
        !url_id.is_empty() && url_id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{}",
        endpoint.url
    );
    assert!(meta(&endpoint, "function-arn").ends_with(":function:st-e2e-f0"));
    assert_eq!(meta(&endpoint, "region"), REGION);
    assert_eq!(meta(&endpoint, "architecture"), "x86_64");
    assert_eq!(meta(&endpoint, "memory-mb"), "256");
    assert_eq!(meta(&endpoint, "url-source"), "function-url");
    assert_eq!(
        meta(&endpoint, "code-sha256"),
        base64(&sha2::Sha256::digest(&zip))
    );

    // What moto holds: the function as specified, and both public-URL permissions.
    let got = configuration(&moto, "st-e2e-f0");
    let config = &got["Configuration"];
    assert_eq!(config["Runtime"], "provided.al2023");
    assert_eq!(config["Handler"], "bootstrap");
    assert_eq!(config["MemorySize"], 256);
    assert_eq!(config["Timeout"], 10);
    assert_eq!(config["CodeSize"], zip.len());
    assert_eq!(config["Role"], role.as_str());
    assert_eq!(config["Architectures"][0], "x86_64");
    assert_eq!(config["Environment"]["Variables"]["STELLAR_MODE"], "http");
    assert_eq!(got["Tags"]["stellar-run"], "e2e");
    let (status, policy) = moto.lambda_get("/2015-03-31/functions/st-e2e-f0/policy");
    assert_eq!(status, 200, "{policy}");
    let policy: Value = serde_json::from_str(policy["Policy"].as_str().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let action_of = |sid: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .map(|s| s["Action"].clone())
            .unwrap_or_else(|| panic!("no statement {sid} in {policy}"))
    };
    assert_eq!(action_of("stellar-url-public"), "lambda:InvokeFunctionUrl");
    assert_eq!(action_of("stellar-url-invoke"), "lambda:InvokeFunction");

    // A function outside stellar's naming is not listed.
    let (other_zip, _) = write_zip(work.path(), "other.zip", &filler(100, 9));
    inst.deploy_function(&request("other-fn", 128, Some(other_zip)))
        .await
        .unwrap();
    let listed = inst.list_apis().await.unwrap();
    assert_eq!(summary(&listed), summary(std::slice::from_ref(&endpoint)));

    // Update code and configuration.
    let (new_zip_path, new_zip) = write_zip(work.path(), "bootstrap2.zip", &filler(6000, 11));
    let mut update = request("st-e2e-f0", 512, Some(new_zip_path));
    update.timeout_s = 20;
    update.env = pairs(&[("STELLAR_MODE", "spin")]);
    let started = Instant::now();
    let updated = inst.update_function(&endpoint.id, &update).await.unwrap();
    let update_time = started.elapsed();
    assert_eq!(updated.url, endpoint.url);
    assert_eq!(meta(&updated, "memory-mb"), "512");
    assert_eq!(
        meta(&updated, "code-sha256"),
        base64(&sha2::Sha256::digest(&new_zip))
    );
    let config = configuration(&moto, "st-e2e-f0")["Configuration"].clone();
    assert_eq!(config["MemorySize"], 512);
    assert_eq!(config["Timeout"], 20);
    assert_eq!(config["CodeSize"], new_zip.len());
    assert_eq!(config["Environment"]["Variables"]["STELLAR_MODE"], "spin");

    // Configuration only (no artifact): the code stays.
    let updated = inst
        .update_function(&endpoint.id, &request("st-e2e-f0", 1024, None))
        .await
        .unwrap();
    assert_eq!(meta(&updated, "memory-mb"), "1024");
    let config = configuration(&moto, "st-e2e-f0")["Configuration"].clone();
    assert_eq!(config["MemorySize"], 1024);
    assert_eq!(config["CodeSize"], new_zip.len());

    // Remove, then remove again: not found.
    let started = Instant::now();
    inst.remove_function(&endpoint.id).await.unwrap();
    let remove_time = started.elapsed();
    let (status, _) = moto.lambda_get("/2015-03-31/functions/st-e2e-f0");
    assert_eq!(status, 404);
    let err = inst.remove_function(&endpoint.id).await.unwrap_err();
    assert!(
        matches!(provider_error(&err), ProviderError::NotFound(m) if m.contains("st-e2e-f0")),
        "{err}"
    );
    assert!(inst.list_apis().await.unwrap().is_empty());
    eprintln!(
        "aws adapter on moto: deploy {deploy_time:?}, update (code+config) {update_time:?}, \
         remove {remove_time:?}"
    );
}

#[tokio::test]
async fn aws_adapter_names_bad_settings_roles_and_hosts() {
    let moto = Moto::start();
    let role = moto.create_role("stellar-e2e-errors");
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (zip_path, _) = write_zip(work.path(), "bootstrap.zip", &filler(1000, 3));

    // Without the moto host allowed, the sandbox refuses the request.
    let (_rt, mut denied) = aws_instance(SandboxLimits::default(), &cache, &[]).await;
    denied
        .configure(&settings(&moto, &role, &[]), &credentials())
        .await
        .unwrap();
    let err = denied.list_apis().await.unwrap_err();
    assert!(matches!(err, PluginError::UndeclaredHost { .. }), "{err}");
    assert!(err.to_string().contains(&moto.host()), "{err}");

    let (_rt, mut inst) = aws_instance(SandboxLimits::default(), &cache, &[moto.host()]).await;

    // A missing region is named.
    let mut no_region = settings(&moto, &role, &[]);
    no_region.retain(|(k, _)| k != "region");
    let err = inst
        .configure(&no_region, &credentials())
        .await
        .unwrap_err();
    assert!(
        matches!(provider_error(&err), ProviderError::Invalid(m) if m.contains("`region`")),
        "{err}"
    );

    // A role that does not exist: retried briefly (bounded by wait-timeout-s), then named.
    let missing = "arn:aws:iam::123456789012:role/stellar-no-such-role";
    inst.configure(
        &settings(&moto, missing, &[("wait-timeout-s", "2")]),
        &credentials(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let err = inst
        .deploy_function(&request("st-e2e-norole", 128, Some(zip_path.clone())))
        .await
        .unwrap_err();
    assert!(
        matches!(provider_error(&err),
            ProviderError::Invalid(m) if m.contains(missing) && m.contains("cannot be assumed")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // No artifact: invalid before any call.
    inst.configure(&settings(&moto, &role, &[]), &credentials())
        .await
        .unwrap();
    let err = inst
        .deploy_function(&request("st-e2e-noart", 128, None))
        .await
        .unwrap_err();
    assert!(
        matches!(provider_error(&err), ProviderError::Invalid(m) if m.contains("artifact")),
        "{err}"
    );

    // With a function-url-override, the host gets the override (e.g. a local emulator).
    inst.configure(
        &settings(
            &moto,
            &role,
            &[(
                "function-url-override",
                "http://127.0.0.1:9000/lambda-url/{name}/",
            )],
        ),
        &credentials(),
    )
    .await
    .unwrap();
    let endpoint = inst
        .deploy_function(&request("st-e2e-override", 128, Some(zip_path)))
        .await
        .unwrap();
    assert_eq!(
        endpoint.url,
        "http://127.0.0.1:9000/lambda-url/st-e2e-override/"
    );
    assert_eq!(meta(&endpoint, "url-source"), "override");
    let listed = inst.list_apis().await.unwrap();
    assert_eq!(summary(&listed), summary(&[endpoint]));
}

#[tokio::test]
async fn aws_adapter_streams_a_3_mib_zip_under_a_small_memory_cap() {
    let moto = Moto::start();
    let role = moto.create_role("stellar-e2e-big");
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // 3 MiB zip = 4 MiB of base64: holding both would not fit in the cap.
    let limits = SandboxLimits {
        memory_bytes: 6 << 20,
        ..SandboxLimits::default()
    };
    let (_rt, mut inst) = aws_instance(limits, &cache, &[moto.host()]).await;
    inst.configure(&settings(&moto, &role, &[]), &credentials())
        .await
        .unwrap();
    let (zip_path, zip) = write_zip(work.path(), "bootstrap.zip", &filler(3 << 20, 5));
    assert!(zip.len() > 3 << 20);
    let started = Instant::now();
    let endpoint = inst
        .deploy_function(&request("st-e2e-big", 128, Some(zip_path)))
        .await
        .unwrap();
    eprintln!(
        "aws adapter on moto: deploy of a {} byte zip under a 6 MiB cap took {:?}",
        zip.len(),
        started.elapsed()
    );
    let config = configuration(&moto, "st-e2e-big")["Configuration"].clone();
    assert_eq!(config["CodeSize"], zip.len());
    assert_eq!(
        config["CodeSha256"],
        base64(&sha2::Sha256::digest(&zip)).as_str()
    );
    assert_eq!(
        meta(&endpoint, "code-sha256"),
        config["CodeSha256"].as_str().unwrap()
    );
}
