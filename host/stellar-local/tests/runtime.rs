//! End-to-end tests of the local runtime: real instance processes (the `stellar-measure-http`
//! measurement function), real HTTP on loopback, ephemeral ports.
//!
//! Waiting is done by bounded polling of the instance records (the runtime's ground truth),
//! never by sleeping for a guessed duration.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stellar_local::{
    COLD_START_HEADER, ErrorBody, ErrorKind, FunctionInfo, FunctionList, INIT_MS_HEADER,
    INSTANCE_ID_HEADER, InstanceList, InstanceOrigin, InstanceRecord, LocalRuntime,
    LocalRuntimeConfig, START_LABEL_HEADER, StopReason,
};

// ---- support ---------------------------------------------------------------------------------

/// The real measurement function binary, built once if the target dir does not have it yet.
///
/// The target dir is derived from this test binary (`<target>/<profile>/deps/runtime-*`), so
/// the build uses the same `CARGO_TARGET_DIR` as the test run. `STELLAR_MEASURE_HTTP_BIN`
/// overrides the lookup.
fn measure_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("STELLAR_MEASURE_HTTP_BIN") {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("path of the test binary");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in <target>/<profile>/deps")
            .to_owned();
        let bin = profile_dir.join("stellar-measure-http");
        if !bin.is_file() {
            let target_dir = profile_dir.parent().expect("<target>/<profile>");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "-p",
                "stellar-measure",
                "--bin",
                "stellar-measure-http",
            ])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo build");
            assert!(status.success(), "building stellar-measure-http: {status}");
            assert!(bin.is_file(), "{} missing after the build", bin.display());
        }
        bin
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    elapsed: Duration,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn error_kind(&self) -> ErrorKind {
        serde_json::from_slice::<ErrorBody>(&self.body)
            .unwrap_or_else(|e| panic!("not an error body ({e}): {:?}", self.body))
            .error
            .kind
    }

    fn instance_id(&self) -> String {
        let id = self.header(INSTANCE_ID_HEADER).expect("instance id header");
        assert_eq!(self.json()["instance_id"], id, "header and body agree");
        id.to_owned()
    }

    fn start_label(&self) -> &str {
        self.header(START_LABEL_HEADER).expect("start label header")
    }

    fn cold(&self) -> bool {
        match self.header(COLD_START_HEADER) {
            Some("true") => true,
            Some("false") => false,
            other => panic!("bad cold-start header {other:?}"),
        }
    }
}

/// A runtime with the measurement function uploaded, plus a client.
struct Env {
    rt: LocalRuntime,
    client: Client<HttpConnector, Full<Bytes>>,
    sha: String,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut LocalRuntimeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = LocalRuntimeConfig::new(dir.path());
        tweak(&mut cfg);
        let rt = LocalRuntime::start(cfg).await.unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http();
        let mut env = Self {
            rt,
            client,
            sha: String::new(),
            _dir: dir,
        };
        let bytes = fs_err::read(measure_bin()).unwrap();
        env.sha = env.upload(&bytes).await;
        env
    }

    async fn upload(&self, bytes: &[u8]) -> String {
        let sha = sha256_hex(bytes);
        let reply = self
            .control(Method::PUT, &format!("/v1/artifacts/{sha}"), bytes.to_vec())
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        sha
    }

    async fn send(&self, method: Method, url: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req = Request::builder().method(method).uri(url);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let start = Instant::now();
        let res = self.client.request(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
            elapsed: start.elapsed(),
        }
    }

    async fn control(&self, method: Method, path: &str, body: Vec<u8>) -> Reply {
        let url = format!("{}{path}", self.rt.control_url());
        self.send(method, &url, Some(self.rt.token()), body).await
    }

    async fn deploy(&self, name: &str, extra: Value) -> FunctionInfo {
        let mut spec = json!({ "artifact_sha256": self.sha });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let reply = self
            .control(
                Method::PUT,
                &format!("/v1/functions/{name}"),
                serde_json::to_vec(&spec).unwrap(),
            )
            .await;
        assert!(reply.status.is_success(), "{:?}", reply.body);
        serde_json::from_slice(&reply.body).unwrap()
    }

    async fn invoke(&self, path_and_query: &str) -> Reply {
        let url = format!("{}{path_and_query}", self.rt.gateway_url());
        self.send(Method::GET, &url, None, Vec::new()).await
    }

    async fn records(&self, name: &str) -> Vec<InstanceRecord> {
        let reply = self
            .control(
                Method::GET,
                &format!("/v1/functions/{name}/instances"),
                Vec::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let list: InstanceList = serde_json::from_slice(&reply.body).unwrap();
        list.instances
    }
}

/// Polls `check` every 20 ms for at most 10 s.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn all_dead(pids: &[u32]) {
    let pids = pids.to_vec();
    eventually("instance processes to exit", async || {
        pids.iter().all(|&p| !pid_alive(p)).then_some(())
    })
    .await;
}

fn record_for<'a>(records: &'a [InstanceRecord], id: &str) -> &'a InstanceRecord {
    records
        .iter()
        .find(|r| r.instance_id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no record for instance {id}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---- control API -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_requires_the_token_and_verifies_artifacts() {
    let env = Env::start().await;
    let url = format!("{}/v1/functions", env.rt.control_url());
    for token in [None, Some("wrong")] {
        let reply = env.send(Method::GET, &url, token, Vec::new()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.error_kind(), ErrorKind::Unauthorized);
    }

    let bytes = fs_err::read(measure_bin()).unwrap();
    let wrong = sha256_hex(b"something else");
    let reply = env
        .control(
            Method::PUT,
            &format!("/v1/artifacts/{wrong}"),
            bytes.clone(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_kind(), ErrorKind::Invalid);
    // Uploading the right one again is idempotent.
    let reply = env
        .control(
            Method::PUT,
            &format!("/v1/artifacts/{}", env.sha),
            bytes.clone(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["size"], bytes.len());
    assert_eq!(reply.json()["sha256"], env.sha.as_str());

    let unknown = json!({ "artifact_sha256": wrong }).to_string().into_bytes();
    let reply = env.control(Method::PUT, "/v1/functions/f", unknown).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let spec = json!({ "artifact_sha256": env.sha })
        .to_string()
        .into_bytes();
    let reply = env
        .control(Method::PUT, "/v1/functions/bad_name", spec.clone())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let typo = json!({ "artifact_sha256": env.sha, "keepalive_ms": 1 })
        .to_string()
        .into_bytes();
    let reply = env.control(Method::PUT, "/v1/functions/f", typo).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let reply = env
        .control(Method::PUT, "/v1/functions/f", spec.clone())
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let info: FunctionInfo = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(info.url, format!("{}/f", env.rt.gateway_url()));
    assert_eq!((info.memory_mb, info.instance_concurrency), (128, 1));
    let reply = env.control(Method::PUT, "/v1/functions/f", spec).await;
    assert_eq!(reply.status, StatusCode::OK, "an update");
    let reply = env.control(Method::GET, "/v1/functions", Vec::new()).await;
    let list: FunctionList = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(list.functions, vec![info.clone()]);
    let reply = env
        .control(Method::GET, "/v1/functions/f", Vec::new())
        .await;
    assert_eq!(
        serde_json::from_slice::<FunctionInfo>(&reply.body).unwrap(),
        info
    );
    let reply = env
        .control(Method::GET, "/v1/functions/g", Vec::new())
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_kind(), ErrorKind::NotFound);
    let reply = env
        .control(Method::DELETE, "/v1/functions/f", Vec::new())
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = env
        .control(Method::DELETE, "/v1/functions/f", Vec::new())
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = env.invoke("/f").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    env.rt.shutdown().await;
}

// ---- gateway ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::print_stderr, reason = "reports timings with --nocapture")]
async fn first_request_is_cold_then_warm_on_the_same_instance() {
    let env = Env::start().await;
    env.deploy("hello", json!({})).await;

    let first = env.invoke("/hello/some/path?RequestID=r1").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert!(first.cold());
    assert_eq!(first.json()["cold"], true);
    assert_eq!(first.json()["runtime"]["provider"], "local");
    let init_ms: f64 = first.header(INIT_MS_HEADER).unwrap().parse().unwrap();
    let id = first.instance_id();

    let mut warm_ms = Vec::new();
    for _ in 0..20 {
        let warm = env.invoke("/hello").await;
        assert_eq!(warm.status, StatusCode::OK);
        assert!(!warm.cold());
        assert!(warm.header(INIT_MS_HEADER).is_none());
        assert_eq!(warm.json()["cold"], false);
        assert_eq!(warm.instance_id(), id);
        warm_ms.push(warm.elapsed.as_secs_f64() * 1000.0);
    }

    let records = env.records("hello").await;
    // Nothing is running now, so the Rust handle sees the same snapshot.
    assert_eq!(env.rt.instances("hello").as_ref(), Some(&records));
    assert_eq!(env.rt.instances("never-deployed"), None);
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.instance_id.as_deref(), Some(id.as_str()));
    assert_eq!(record.requests_served, 21);
    assert_eq!(record.in_flight, 0);
    assert!(record.stopped_at_unix_ns.is_none() && record.stop_reason.is_none());
    let exec_to_ready = record.exec_to_ready_ms.unwrap();
    assert!((exec_to_ready - init_ms).abs() < 0.01);
    assert!(record.ready_at_unix_ns.unwrap() >= record.spawned_at_unix_ns);
    assert!(pid_alive(record.pid.unwrap()));
    eprintln!(
        "local runtime timings: exec-to-ready {exec_to_ready:.2} ms, cold request {:.2} ms, \
         warm request median {:.3} ms (max {:.3} ms)",
        first.elapsed.as_secs_f64() * 1000.0,
        median(warm_ms.clone()),
        warm_ms.iter().copied().fold(0.0, f64::max),
    );
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_beyond_instance_concurrency_start_new_instances() {
    let env = Env::start().await;
    env.deploy("par", json!({ "instance_concurrency": 1 }))
        .await;
    let replies = futures_join_all((0..5).map(|_| env.invoke("/par?SpinMs=200")).collect()).await;
    let mut ids = Vec::new();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert!(reply.cold(), "each request needed its own instance");
        assert_eq!(reply.json()["cold"], true);
        ids.push(reply.instance_id());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "5 distinct instances");
    let records = env.records("par").await;
    assert_eq!(records.len(), 5);
    for id in &ids {
        let record = record_for(&records, id);
        assert_eq!(record.requests_served, 1);
        assert!(record.exec_to_ready_ms.is_some());
    }
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_stop_after_keep_alive_and_the_next_request_is_cold() {
    let env = Env::start().await;
    env.deploy("ka", json!({ "keep_alive_ms": 300 })).await;
    let first = env.invoke("/ka").await;
    assert!(first.cold());
    let id = first.instance_id();
    let record = eventually("the keep-alive stop", async || {
        let records = env.records("ka").await;
        let record = record_for(&records, &id).clone();
        record.stopped_at_unix_ns.is_some().then_some(record)
    })
    .await;
    assert_eq!(record.stop_reason, Some(StopReason::KeepAlive));
    let idle_ns = record.stopped_at_unix_ns.unwrap() - record.ready_at_unix_ns.unwrap();
    assert!(
        idle_ns >= 300_000_000,
        "stopped after {idle_ns} ns, before keep-alive"
    );
    all_dead(&[record.pid.unwrap()]).await;

    let again = env.invoke("/ka").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.cold());
    assert_ne!(again.instance_id(), id);
    assert_eq!(env.records("ka").await.len(), 2);
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_instances_caps_scale_out_with_429() {
    let env = Env::start().await;
    env.deploy("one", json!({ "max_instances": 1 })).await;
    let replies = futures_join_all(vec![
        env.invoke("/one?SpinMs=300"),
        env.invoke("/one?SpinMs=300"),
    ])
    .await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429]);
    let refused = replies
        .iter()
        .find(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .unwrap();
    assert_eq!(refused.error_kind(), ErrorKind::Quota);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(env.records("one").await.len(), 1);
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_drains_old_instances_and_new_requests_get_new_ones() {
    let env = Env::start().await;
    env.deploy("up", json!({})).await;
    let old_id = env.invoke("/up").await.instance_id();

    // A slow request is in flight on the old instance while the function is updated.
    let slow = env.invoke("/up?SpinMs=400");
    let update = async {
        eventually("the slow request to be admitted", async || {
            (env.records("up").await[0].in_flight == 1).then_some(())
        })
        .await;
        let info = env.deploy("up", json!({ "memory_mb": 256 })).await;
        assert_eq!(info.memory_mb, 256);
        let old = env.records("up").await[0].clone();
        assert!(
            old.stopped_at_unix_ns.is_none(),
            "busy instances drain first"
        );
        // New requests do not go to the draining instance.
        let fresh = env.invoke("/up").await;
        assert!(fresh.cold());
        assert_eq!(
            fresh.json()["runtime"]["memory_mb"],
            256,
            "new spec applies"
        );
        fresh.instance_id()
    };
    let (slow, new_id) = tokio::join!(slow, update);
    assert_eq!(slow.status, StatusCode::OK);
    assert_eq!(
        slow.instance_id(),
        old_id,
        "in-flight request finished on the old instance"
    );
    assert_ne!(new_id, old_id);

    let old = eventually("the drained instance to stop", async || {
        let records = env.records("up").await;
        let old = record_for(&records, &old_id).clone();
        old.stopped_at_unix_ns.is_some().then_some(old)
    })
    .await;
    assert_eq!(old.stop_reason, Some(StopReason::Updated));
    assert_eq!(old.requests_served, 2);
    all_dead(&[old.pid.unwrap()]).await;
    let warm = env.invoke("/up").await;
    assert!(!warm.cold());
    assert_eq!(warm.instance_id(), new_id);
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_kills_the_instances() {
    let env = Env::start().await;
    env.deploy("del", json!({})).await;
    let replies = futures_join_all(vec![
        env.invoke("/del?SpinMs=150"),
        env.invoke("/del?SpinMs=150"),
    ])
    .await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    let records = env.records("del").await;
    assert_eq!(records.len(), 2);
    let pids: Vec<u32> = records.iter().map(|r| r.pid.unwrap()).collect();
    assert!(pids.iter().all(|&p| pid_alive(p)));

    let reply = env
        .control(Method::DELETE, "/v1/functions/del", Vec::new())
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    all_dead(&pids).await;
    let records = eventually("the records to close", async || {
        let records = env.records("del").await;
        records
            .iter()
            .all(|r| r.stopped_at_unix_ns.is_some())
            .then_some(records)
    })
    .await;
    assert!(
        records
            .iter()
            .all(|r| r.stop_reason == Some(StopReason::Deleted))
    );
    assert_eq!(env.invoke("/del").await.status, StatusCode::NOT_FOUND);
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_instance_is_recorded_and_replaced() {
    let env = Env::start().await;
    env.deploy("crash", json!({})).await;
    let id = env.invoke("/crash").await.instance_id();
    let pid = env.records("crash").await[0].pid.unwrap();
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let record = eventually("the crash to be noticed", async || {
        let records = env.records("crash").await;
        let record = record_for(&records, &id).clone();
        record.stopped_at_unix_ns.is_some().then_some(record)
    })
    .await;
    assert_eq!(record.stop_reason, Some(StopReason::Crashed));
    let next = env.invoke("/crash").await;
    assert_eq!(next.status, StatusCode::OK);
    assert!(next.cold());
    assert_ne!(next.instance_id(), id);
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_cold_starts_answer_502_and_are_recorded() {
    let env = Env::start_with(|cfg| cfg.ready_timeout = Duration::from_millis(300)).await;
    // Exits before printing READY.
    let exits = env.upload(b"#!/bin/sh\necho starting\nexit 3\n").await;
    // Never prints READY.
    let hangs = env.upload(b"#!/bin/sh\nexec sleep 30\n").await;
    for (name, sha, expected) in [
        ("exits", exits, "before a READY line"),
        ("hangs", hangs, "no READY line within 300 ms"),
    ] {
        let spec = json!({ "artifact_sha256": sha }).to_string().into_bytes();
        let reply = env
            .control(Method::PUT, &format!("/v1/functions/{name}"), spec)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let reply = env.invoke(&format!("/{name}")).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        assert_eq!(reply.error_kind(), ErrorKind::Other);
        let records = env.records(name).await;
        assert_eq!(records.len(), 1);
        let error = records[0].spawn_error.as_deref().unwrap();
        assert!(error.contains(expected), "{error}");
        assert!(records[0].stopped_at_unix_ns.is_some());
        assert!(records[0].instance_id.is_none());
        all_dead(&[records[0].pid.unwrap()]).await;
    }
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_no_instance_alive() {
    let env = Env::start().await;
    env.deploy("a", json!({})).await;
    env.deploy("b", json!({})).await;
    let replies = futures_join_all(vec![
        env.invoke("/a?SpinMs=100"),
        env.invoke("/a?SpinMs=100"),
        env.invoke("/b"),
    ])
    .await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    let mut records = env.records("a").await;
    records.extend(env.records("b").await);
    let pids: Vec<u32> = records.iter().map(|r| r.pid.unwrap()).collect();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&p| pid_alive(p)));
    let Env { rt, _dir, .. } = env;
    rt.shutdown().await;
    // `shutdown` returns only after every process has been reaped: no polling needed.
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} survived shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_serves_up_to_instance_concurrency_requests_at_once() {
    let env = Env::start().await;
    env.deploy("shared", json!({ "instance_concurrency": 2 }))
        .await;
    // Warm one instance first, so both concurrent requests find it free.
    let id = env.invoke("/shared").await.instance_id();
    let replies = futures_join_all(vec![
        env.invoke("/shared?SpinMs=150"),
        env.invoke("/shared?SpinMs=150"),
    ])
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK);
        assert!(!reply.cold());
        assert_eq!(reply.instance_id(), id);
    }
    assert_eq!(env.records("shared").await.len(), 1);
    env.rt.shutdown().await;
}

// ---- platform-like behaviours ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_instances_start_ahead_of_requests_and_stay_when_idle() {
    let env = Env::start().await;
    let info = env
        .deploy("pre", json!({ "min_instances": 2, "keep_alive_ms": 100 }))
        .await;
    assert_eq!((info.min_instances, info.live_instances), (2, 2));
    let records = eventually("both always-ready instances to be ready", async || {
        let records = env.records("pre").await;
        records
            .iter()
            .all(|r| r.ready_at_unix_ns.is_some())
            .then_some(records)
    })
    .await;
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.origin == InstanceOrigin::Prestarted)
    );
    // Well past the keep-alive, they are still there, and take requests first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = env.invoke("/pre").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.cold(), "no process was started for it");
    assert_eq!(first.start_label(), "prewarmed");
    assert_eq!(first.json()["cold"], true, "the process's first request");
    let gap = first.json()["handler_received_unix_ns"].as_u64().unwrap()
        - first.json()["ready_unix_ns"].as_u64().unwrap();
    assert!(gap > 300_000_000, "ready {gap} ns before the request");
    assert_eq!(env.invoke("/pre").await.start_label(), "warm");
    let records = env.records("pre").await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.stopped_at_unix_ns.is_none()));
    let slot = &record_for(&records, &first.instance_id()).slot;
    assert_eq!(first.json()["platform_instance_id"], slot.as_str());
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queue_behind_a_starting_instance_up_to_its_concurrency() {
    let env = Env::start().await;
    env.deploy("q", json!({ "instance_concurrency": 3 })).await;
    let replies = futures_join_all((0..3).map(|_| env.invoke("/q?SpinMs=150")).collect()).await;
    let mut labels: Vec<&str> = replies.iter().map(Reply::start_label).collect();
    labels.sort_unstable();
    assert_eq!(labels, ["cold-natural", "cold-queued", "cold-queued"]);
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.json();
        // The request that started the instance reached it first; the others arrived while
        // it was still running.
        let started_it = reply.start_label() == "cold-natural";
        assert_eq!(body["cold"], started_it, "{body}");
        assert_eq!(body["first_in_flight"], !started_it, "{body}");
    }
    let ids: std::collections::BTreeSet<String> = replies.iter().map(Reply::instance_id).collect();
    assert_eq!(ids.len(), 1, "one instance for all three");
    assert_eq!(env.records("q").await.len(), 1);
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_process_is_restarted_in_its_slot_when_asked() {
    let env = Env::start().await;
    env.deploy("rs", json!({ "restart_on_crash": true })).await;
    let first = env.invoke("/rs").await;
    assert_eq!(first.start_label(), "cold-natural");
    let records = env.records("rs").await;
    let pid = records[0].pid.unwrap();
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let records = eventually("the restarted process to be ready", async || {
        let records = env.records("rs").await;
        (records.len() == 2 && records[1].ready_at_unix_ns.is_some()).then_some(records)
    })
    .await;
    assert_eq!(records[0].stop_reason, Some(StopReason::Crashed));
    assert_eq!(records[1].origin, InstanceOrigin::Restarted);
    assert_eq!(records[0].slot, records[1].slot);
    let next = env.invoke("/rs").await;
    assert_eq!(next.status, StatusCode::OK);
    assert_eq!(next.start_label(), "process-restart");
    assert_eq!(next.json()["cold"], true);
    assert_eq!(
        next.json()["platform_instance_id"],
        first.json()["platform_instance_id"]
    );
    assert_ne!(next.instance_id(), first.instance_id());
    assert_eq!(env.invoke("/rs").await.start_label(), "warm");
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_timeout_gets_504_and_its_instance_is_stopped() {
    let env = Env::start().await;
    env.deploy("slow", json!({ "timeout_s": 1 })).await;
    let reply = env.invoke("/slow?SpinMs=3000").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.error_kind(), ErrorKind::Other);
    let record = eventually("the timed-out instance to stop", async || {
        let record = env.records("slow").await[0].clone();
        record.stopped_at_unix_ns.is_some().then_some(record)
    })
    .await;
    assert_eq!(record.stop_reason, Some(StopReason::Timeout));
    all_dead(&[record.pid.unwrap()]).await;
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_runtime_without_shutdown_still_kills_instances() {
    let env = Env::start().await;
    env.deploy("d", json!({})).await;
    assert_eq!(env.invoke("/d").await.status, StatusCode::OK);
    let pid = env.records("d").await[0].pid.unwrap();
    assert!(pid_alive(pid));
    drop(env);
    all_dead(&[pid]).await;
}

/// Runs futures concurrently on the current task (a tiny `join_all`, to avoid a dependency).
async fn futures_join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => outputs[i] = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

// ---- control API: authentication and the artifact store's confinement -------------------------

/// Every file and directory under `dir`, relative, sorted (symlinks are listed, not followed).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_route_needs_the_exact_token() {
    let env = Env::start().await;
    let base = env.rt.control_url();
    let token = env.rt.token().to_owned();
    // Same length, one byte off; a prefix; the right token in the wrong scheme or case.
    let mut off_by_one = token.clone().into_bytes();
    off_by_one[0] ^= 1;
    let off_by_one = String::from_utf8(off_by_one).unwrap();
    let bodies = json!({ "artifact_sha256": env.sha })
        .to_string()
        .into_bytes();
    let other_sha = sha256_hex(b"#!/bin/sh\nexit 0\n");
    let routes = [
        (
            Method::PUT,
            format!("/v1/artifacts/{other_sha}"),
            b"#!/bin/sh\nexit 0\n".to_vec(),
        ),
        (Method::PUT, "/v1/functions/f".to_owned(), bodies.clone()),
        (Method::GET, "/v1/functions".to_owned(), Vec::new()),
        (Method::GET, "/v1/functions/f".to_owned(), Vec::new()),
        (Method::DELETE, "/v1/functions/f".to_owned(), Vec::new()),
        (
            Method::GET,
            "/v1/functions/f/instances".to_owned(),
            Vec::new(),
        ),
        (Method::GET, "/no/such/route".to_owned(), Vec::new()),
    ];
    let mut checked = 0;
    for (method, path, body) in &routes {
        let url = format!("{base}{path}");
        for header in [
            None,
            Some(format!("Bearer {off_by_one}")),
            Some(format!("Bearer {}", &token[..token.len() - 1])),
            Some(format!("Bearer {token}x")),
            Some(format!("Basic {token}")),
            Some(format!("bearer {token}")),
            Some(format!("Bearer  {token}")),
            Some("Bearer ".to_owned()),
        ] {
            let mut req = Request::builder().method(method.clone()).uri(&url);
            if let Some(h) = &header {
                req = req.header("authorization", h);
            }
            let res = env
                .client
                .request(req.body(Full::new(Bytes::from(body.clone()))).unwrap())
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {header:?}"
            );
            assert_eq!(
                res.headers().get("www-authenticate").unwrap(),
                "Bearer",
                "{method} {path}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * 8);
    // Nothing was created by the refused requests.
    assert!(env.rt.functions().is_empty());
    assert!(
        !env.rt
            .work_dir()
            .join("artifacts")
            .join(&other_sha)
            .exists(),
        "an unauthenticated upload was stored"
    );
    // The right token still works.
    let reply = env.control(Method::GET, "/v1/functions", Vec::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    env.rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_uploads_cannot_write_outside_the_runtime_directory() {
    let outer = tempfile::tempdir().unwrap();
    let work = outer.path().join("runtime");
    let env = Env::start_with(|cfg| cfg.work_dir = work.clone()).await;
    let before_outer = tree(outer.path());
    let bytes = b"#!/bin/sh\necho pwned\n".to_vec();
    let sha = sha256_hex(&bytes);

    // Traversal in the artifact name, raw and percent-encoded: refused, nothing written.
    for name in [
        "..".to_owned(),
        "../escape".to_owned(),
        "..%2Fescape".to_owned(),
        "%2e%2e%2fescape".to_owned(),
        format!("..%2F..%2F{sha}"),
        format!("{sha}%2F..%2F..%2Fescape"),
        format!("{sha}/../../escape"),
        format!("%2F{sha}"),
        format!("{sha}%00"),
        sha.to_uppercase(),
    ] {
        let path = format!("/v1/artifacts/{name}");
        let reply = env.control(Method::PUT, &path, bytes.clone()).await;
        assert!(
            reply.status.is_client_error(),
            "{path}: {} {:?}",
            reply.status,
            reply.body
        );
    }
    assert_eq!(tree(outer.path()), before_outer, "something was written");

    // A symlink planted where the artifact will land (pointing outside the runtime's
    // directory) is replaced, never written through.
    let victim = outer.path().join("victim");
    fs_err::write(&victim, b"original").unwrap();
    let artifacts = work.join("artifacts");
    std::os::unix::fs::symlink(&victim, artifacts.join(&sha)).unwrap();
    let reply = env
        .control(Method::PUT, &format!("/v1/artifacts/{sha}"), bytes.clone())
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(fs_err::read(&victim).unwrap(), b"original");
    let stored = artifacts.join(&sha);
    assert!(!stored.is_symlink(), "the artifact is still a symlink");
    assert_eq!(fs_err::read(&stored).unwrap(), bytes);
    // Only the artifacts (and no temporary file) are in the store.
    let names = tree(&artifacts);
    assert!(names.iter().all(|n| sha256_hex_like(n)), "{names:?}");
    env.rt.shutdown().await;
}

fn sha256_hex_like(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
