//! `stellar cleanup --provider P --older-than AGE [--dry-run]`: with no results directory left,
//! the functions stellar created are found through the adapter's `list-apis` (stellar's names,
//! `st-<run id>-NN-PP`, the `stellar-run` label, the reported creation time) and only those old
//! enough are removed; everything else is left alone.
//!
//! Against the local provider: functions of the embedded runtime end with their run, so an
//! orphan there lives in a standalone `stellar local serve`, which this test starts. Against
//! AWS: moto (the Lambda control plane), as in `aws.rs`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::aws::{Moto, base64, write_zip};

/// A `stellar local serve`, killed on drop (also used by `shards.rs`).
pub(crate) struct Serve {
    child: Child,
    control_port: u16,
    pub(crate) token: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    pub(crate) fn start(work_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stellar"))
            .args(["local", "serve", "--work-dir"])
            .arg(work_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut control, mut token) = (None, None);
        while control.is_none() || token.is_none() {
            let line = lines.next().unwrap().unwrap();
            let line = line.trim();
            if let Some(url) = line.strip_prefix("control:") {
                control = url.trim().rsplit(':').next().map(|p| p.parse().unwrap());
            } else if let Some(t) = line.strip_prefix("token:") {
                token = Some(t.trim().to_owned());
            }
        }
        Self {
            child,
            control_port: control.unwrap(),
            token: token.unwrap(),
        }
    }

    pub(crate) fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.control_port)
    }

    /// One control-API call; the status and the body.
    fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.control_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.token,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
        let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (status, body)
    }

    fn create(&self, name: &str, sha: &str, run_tag: Option<&str>) {
        let mut spec = serde_json::json!({"artifact_sha256": sha});
        if let Some(tag) = run_tag {
            spec["tags"] = serde_json::json!({"stellar-run": tag});
        }
        let (status, body) = self.call(
            "PUT",
            &format!("/v1/functions/{name}"),
            spec.to_string().as_bytes(),
        );
        assert_eq!(status, 201, "{body}");
    }

    fn names(&self) -> Vec<String> {
        let (status, body) = self.call("GET", "/v1/functions", b"");
        assert_eq!(status, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut names: Vec<String> = list["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }
}

fn cleanup(args: &[&str], envs: &[(&str, &str)], cache: &Path) -> (Output, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stellar"));
    cmd.arg("cleanup")
        .args(args)
        .env("STELLAR_CACHE_DIR", cache)
        .env("HOME", cache)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

#[test]
fn cleanup_by_age_and_name_on_a_running_local_provider() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("runtime"));
    let script = b"#!/bin/sh\nexit 0\n";
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(script))
    };
    let (status, body) = serve.call("PUT", &format!("/v1/artifacts/{sha}"), script);
    assert_eq!(status, 201, "{body}");
    // Old: stellar's, someone else's, and one whose label contradicts its name.
    serve.create("st-0a0a0a-00-00", &sha, Some("0a0a0a"));
    serve.create("st-0b0b0b-01-02", &sha, None);
    serve.create("my-service", &sha, None);
    serve.create("st-0c0c0c-00-00", &sha, Some("ffffff"));
    std::thread::sleep(Duration::from_secs(4));
    // Young: stellar's, but created just now.
    serve.create("st-0d0d0d-00-00", &sha, Some("0d0d0d"));
    let all = serve.names();
    assert_eq!(all.len(), 5);

    let cache = dir.path().join("cache");
    let url = serve.control_url();
    let token = serve.token.clone();
    let envs = [("STELLAR_LOCAL_TOKEN", token.as_str())];
    let args = [
        "--provider",
        "local",
        "--older-than",
        "3s",
        "--local-control-url",
        url.as_str(),
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let (output, text) = cleanup(&dry, &envs, &cache);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("2 function(s) stellar created at least 3s ago (dry run"),
        "{text}"
    );
    assert!(text.contains("st-0a0a0a-00-00  run 0a0a0a"), "{text}");
    assert!(text.contains("would remove"), "{text}");
    assert!(text.contains("st-0d0d0d-00-00  run 0d0d0d"), "{text}");
    assert!(text.contains("kept (younger than 3s"), "{text}");
    assert!(
        text.contains("2 other function(s) not created by stellar"),
        "{text}"
    );
    assert_eq!(serve.names(), all, "a dry run removed something");

    let (output, text) = cleanup(&args, &envs, &cache);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("removed"), "{text}");
    assert_eq!(
        serve.names(),
        ["my-service", "st-0c0c0c-00-00", "st-0d0d0d-00-00"],
        "{text}"
    );

    // Without a running runtime to ask, an embedded one holds nothing: say so.
    let (output, text) = cleanup(&["--provider", "local", "--older-than", "1s"], &[], &cache);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("0 function(s)"), "{text}");
    assert!(
        text.contains("note: `local` functions run in the runtime"),
        "{text}"
    );

    // Without the token the listing is refused (the control API answers 401).
    let (output, text) = cleanup(&args, &[("STELLAR_LOCAL_TOKEN", "wrong")], &cache);
    assert!(!output.status.success(), "{text}");
    assert!(text.to_lowercase().contains("unauthorized"), "{text}");
}

#[test]
fn cleanup_by_age_and_name_against_moto() {
    let moto = Moto::start();
    let role = moto.create_role("stellar-orphans");
    let dir = tempfile::tempdir().unwrap();
    let (_, zip) = write_zip(dir.path(), "f.zip", b"#!/bin/sh\n");
    let create = |name: &str| {
        let body = serde_json::json!({
            "FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
            "Role": role, "Code": {"ZipFile": base64(&zip)}, "Tags": {"stellar-run": "e2e"}
        });
        let (status, body) = moto.call(
            "lambda",
            "POST",
            "/2015-03-31/functions",
            "application/json",
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        // The adapter lists functions that have a function URL (what stellar deploys).
        let (status, body) = moto.call(
            "lambda",
            "POST",
            &format!("/2021-10-31/functions/{name}/url"),
            "application/json",
            br#"{"AuthType":"NONE"}"#,
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    };
    create("st-1a2b3c-00-00");
    create("st-1a2b3c-00-01");
    create("st-other-00-00");
    create("production-api");
    let names = |moto: &Moto| {
        let (status, body) = moto.lambda_get("/2015-03-31/functions/");
        assert_eq!(status, 200, "{body}");
        let mut names: Vec<String> = body["Functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["FunctionName"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&moto).len(), 4);

    let cache = dir.path().join("cache");
    let endpoint = format!("endpoint={}", moto.url());
    let role_setting = format!("role-arn={role}");
    let envs = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing-secret-value"),
    ];
    let base = [
        "--provider",
        "aws",
        "--setting",
        "region=us-east-1",
        "--setting",
        endpoint.as_str(),
        "--setting",
        role_setting.as_str(),
    ];
    // Everything here is minutes old at most: a 1h threshold keeps it all.
    let mut young = base.to_vec();
    young.extend(["--older-than", "1h"]);
    let (output, text) = cleanup(&young, &envs, &cache);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("0 function(s) stellar created at least 1h ago"),
        "{text}"
    );
    assert!(text.contains("st-1a2b3c-00-00  run 1a2b3c"), "{text}");
    assert_eq!(names(&moto).len(), 4);

    let mut dry = base.to_vec();
    dry.extend(["--older-than", "0s", "--dry-run"]);
    let (output, text) = cleanup(&dry, &envs, &cache);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("2 function(s) stellar created at least 0s ago (dry run"),
        "{text}"
    );
    assert_eq!(names(&moto).len(), 4, "a dry run removed something");

    let mut all = base.to_vec();
    all.extend(["--older-than", "0s"]);
    let (output, text) = cleanup(&all, &envs, &cache);
    assert!(output.status.success(), "{text}");
    assert_eq!(names(&moto), ["production-api", "st-other-00-00"], "{text}");
}
