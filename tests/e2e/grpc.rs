//! gRPC end to end: the measurement function's gRPC flavour (STeLLAR's
//! `ProducerConsumer.InvokeNext` over h2c) called by an independent client (Python grpcio with
//! stubs grpcio-tools generates from `measurement-fn/proto/chainfunction.proto`), and
//! `stellar run` bursts of gRPC calls on the local provider (`Local.Protocol: grpc`): real
//! processes, real HTTP/2 on loopback, cold labels checked against the runtime's ground truth,
//! rows of the same shape as HTTP ones; a gRPC status error becomes a row with its code.
//!
//! Needs python3 with `grpcio` and `grpcio-tools` (the README's test command installs them).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use stellar_measure::MeasurementResponse;
use stellar_results::{LatencyRow, read_latencies};

use crate::support::{only_subdir, repo};

/// A running `stellar-measure-http` in gRPC mode.
struct Function {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_grpc_function(extra_env: &[(&str, &str)]) -> Function {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("stellar-measure-http");
    fs_err::write(&exe, stellar::embedded::MEASURE_HTTP_BIN).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new(&exe);
    cmd.env_clear()
        .env("PORT", "0")
        .env("STELLAR_LISTEN_ADDR", "127.0.0.1")
        .env("STELLAR_PROTOCOL", "grpc")
        .envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let ready = stellar_measure::ReadySignal::parse_line(line.trim()).unwrap();
    Function {
        child,
        port: ready.port,
        _dir: dir,
    }
}

/// Calls the function with the Python client; one JSON value per call.
fn python_calls(port: u16, calls: &serde_json::Value) -> Vec<serde_json::Value> {
    let output = Command::new("python3")
        .arg(repo().join("tests/e2e/grpc_client.py"))
        .arg(repo().join("measurement-fn/proto"))
        .arg(port.to_string())
        .arg(calls.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the Python gRPC client failed (needs `python3 -m pip install grpcio grpcio-tools`): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_grpcio_client_generated_from_the_proto_gets_valid_replies() {
    // Knative's environment: the pod name is the instance id.
    let function = start_grpc_function(&[
        ("K_SERVICE", "measure"),
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("HOSTNAME", "measure-00001-deployment-6d9f-x7k2p"),
    ]);
    let replies = python_calls(
        function.port,
        &serde_json::json!([
            // What STeLLAR's Go client sends (benchgrpc/execute.go): strings, no stellar field.
            {"incrementLimit": "1000", "dataTransferChainIDs": "[]", "payloadLengthBytes": "0"},
            // stellar's own query wins over STeLLAR's fields.
            {"incrementLimit": "5", "stellarQuery": "SpinMs=3&RequestID=py-2&IncrementLimit=7"},
            {"stellarQuery": "SpinMs=oops"},
        ]),
    );
    assert_eq!(replies.len(), 3, "{replies:?}");
    let parse = |r: &serde_json::Value| -> MeasurementResponse {
        assert_eq!(r["ok"], true, "{r}");
        serde_json::from_str(r["stellarReply"].as_str().unwrap()).unwrap()
    };
    let (first, second) = (parse(&replies[0]), parse(&replies[1]));
    for (r, reply) in [(&replies[0], &first), (&replies[1], &second)] {
        // STeLLAR's field: Go's `%v` of the chain, the receipt time.
        assert_eq!(
            r["timestampChain"],
            format!("[{}]", reply.handler_received_unix_ns),
            "{r}"
        );
        assert_eq!(reply.instance_id, "measure-00001-deployment-6d9f-x7k2p");
        assert_eq!(
            reply.platform_instance_id.as_deref(),
            Some("measure-00001-deployment-6d9f-x7k2p")
        );
    }
    assert!(first.cold && !second.cold, "{first:?} {second:?}");
    assert_eq!((first.increments, first.invocations_on_instance), (1000, 1));
    assert_eq!(second.request_id, "py-2");
    assert_eq!(second.increments, 7);
    assert!(second.spin_ns >= 3_000_000, "{second:?}");
    assert_eq!(replies[2]["ok"], false);
    assert_eq!(replies[2]["code"], "INVALID_ARGUMENT", "{}", replies[2]);
    assert!(
        replies[2]["details"].as_str().unwrap().contains("SpinMs"),
        "{}",
        replies[2]
    );
}

/// One `stellar run` on the local provider; the run directory's sub-experiment rows.
struct Ran {
    output: Output,
    rows: Vec<LatencyRow>,
    header: String,
    instances: Vec<std::collections::BTreeMap<String, String>>,
    _out: tempfile::TempDir,
}

impl Ran {
    fn log(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

fn run_local(stellar: serde_json::Value, sub: serde_json::Value) -> Ran {
    let out = tempfile::tempdir().unwrap();
    let experiment = out.path().join("grpc.json");
    let file = serde_json::json!({
        "Sequential": true,
        "Provider": "local",
        "Stellar": stellar,
        "SubExperiments": [sub],
    });
    fs_err::write(&experiment, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let results = out.path().join("results");
    let output = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .env("STELLAR_CACHE_DIR", out.path().join("cache"))
        .args(["run", "--quiet", "-o"])
        .arg(&results)
        .arg(&experiment)
        .output()
        .unwrap();
    let run_dir = only_subdir(&results);
    let sub_dir = only_subdir_of_run(&run_dir);
    let mut rows = read_latencies(sub_dir.join("latencies.csv")).unwrap();
    rows.sort_by_key(|r| r.request_index);
    let header = fs_err::read_to_string(sub_dir.join("latencies.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let instances = csv::Reader::from_path(sub_dir.join("instances.csv"))
        .map(|mut r| r.deserialize().map(Result::unwrap).collect())
        .unwrap_or_default();
    Ran {
        output,
        rows,
        header,
        instances,
        _out: out,
    }
}

fn only_subdir_of_run(run_dir: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = fs_err::read_dir(run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn bursts(bursts: u32, sizes: &[u32]) -> serde_json::Value {
    serde_json::json!({
        "Title": "grpc",
        "Bursts": bursts,
        "BurstSizes": sizes,
        "IATSeconds": 1.2,
        "IATType": "deterministic",
        "DesiredServiceTimes": ["2ms"],
        "Parallelism": 1,
    })
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[test]
fn grpc_bursts_on_the_local_provider_are_labelled_like_http() {
    // Keep-alive 0.4 s, bursts every 1.2 s (a wide margin, so a late burst on a loaded
    // machine never finds an instance about to stop): every burst starts instances
    // (cold-natural, then cold-scaleout for the rest of the burst); the same plan in HTTP and
    // in gRPC.
    let settings = |protocol: &str| {
        serde_json::json!({
            "Seed": 5,
            "Local": {"KeepAliveSeconds": 0.4, "Protocol": protocol},
        })
    };
    let grpc = run_local(settings("grpc"), bursts(4, &[1, 3]));
    let http = run_local(settings("http"), bursts(4, &[1, 3]));
    assert!(grpc.output.status.success(), "{}", grpc.log());
    assert!(http.output.status.success(), "{}", http.log());
    assert_eq!(grpc.header, http.header, "the CSVs differ in shape");
    assert_eq!(grpc.rows.len(), 8);
    assert_eq!(grpc.rows.len(), http.rows.len());
    for r in &grpc.rows {
        assert!(r.is_ok(), "{r:#?}\n{}", grpc.log());
        assert_eq!(r.http_status, Some(200));
        assert!(r.connect_ms.is_some(), "fresh connections: {r:?}");
        // Ground truth: the runtime's own label (gRPC response metadata) and instances.csv.
        // Whether a cold call of a burst is `cold-natural` or `cold-scaleout` is not compared:
        // the runtime decides it by arrival order at the gateway (spread by the HTTP/2
        // handshake), stellar's rule by the client's send order (see README, gRPC).
        assert!(r.start_label.starts_with("cold-"), "{r:#?}");
        assert!(r.provider_label.starts_with("cold-"), "{r:#?}");
        assert_eq!(r.cold, Some(true));
        assert_eq!(r.cold_label, Some(true));
        assert!(
            grpc.instances
                .iter()
                .any(|i| i["Instance ID"] == r.instance_id),
            "{} not in instances.csv",
            r.instance_id
        );
        assert!(r.function_spin_ms.unwrap() >= 2.0, "{r:?}");
    }
    // Every call started its own instance (8 processes), in both runs.
    let spawned = |ran: &Ran| {
        ran.instances
            .iter()
            .filter(|i| i["Origin"] == "spawned")
            .count()
    };
    assert_eq!((spawned(&grpc), spawned(&http)), (8, 8));
    let latencies = |ran: &Ran| -> Vec<f64> {
        ran.rows
            .iter()
            .filter_map(LatencyRow::ok_latency_ms)
            .collect()
    };
    let (g, h) = (latencies(&grpc), latencies(&http));
    eprintln!(
        "local provider, 8 cold requests (2 ms spin, debug host): gRPC p50 {:.2} ms p99 {:.2} ms; \
         HTTP p50 {:.2} ms p99 {:.2} ms",
        percentile(g.clone(), 0.5),
        percentile(g, 0.99),
        percentile(h.clone(), 0.5),
        percentile(h, 0.99)
    );
}

#[test]
fn grpc_reuse_mode_keeps_connections_and_warm_instances() {
    let ran = run_local(
        serde_json::json!({"Seed": 3, "Connection": "reuse", "Local": {"Protocol": "grpc"}}),
        serde_json::json!({
            "Title": "reuse", "Bursts": 4, "BurstSizes": [1], "IATSeconds": 0.2,
            "IATType": "deterministic", "DesiredServiceTimes": ["1ms"],
        }),
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    let labels: Vec<&str> = ran.rows.iter().map(|r| r.start_label.as_str()).collect();
    assert_eq!(
        labels,
        ["cold-natural", "warm", "warm", "warm"],
        "{}",
        ran.log()
    );
    assert!(ran.rows[0].connect_ms.is_some());
    assert!(
        ran.rows[1..].iter().all(|r| r.connect_ms.is_none()),
        "later calls reuse the connection: {:#?}",
        ran.rows
    );
    assert!(ran.rows.iter().all(|r| r.start_label == r.provider_label));
}

#[test]
fn a_grpc_status_error_is_a_row_with_its_code_and_spends_the_failure_budget() {
    // Every call is answered UNAVAILABLE (an injected 503, gRPC's mapping), and the budget
    // allows 2 failures: the third stops the sub-experiment (exit 2), every failure is a row.
    let ran = run_local(
        serde_json::json!({
            "Seed": 1, "MaxFailures": 2,
            "Local": {"Protocol": "grpc", "FaultQuery": "Fault=status:503"},
        }),
        serde_json::json!({
            "Title": "errors", "Bursts": 10, "BurstSizes": [1], "IATSeconds": 0.1,
            "IATType": "deterministic", "DesiredServiceTimes": ["1ms"],
        }),
    );
    assert_eq!(ran.output.status.code(), Some(2), "{}", ran.log());
    assert!(
        ran.rows.len() >= 3 && ran.rows.len() < 10,
        "{:#?}",
        ran.rows
    );
    for r in &ran.rows {
        assert_eq!(r.error_kind, "grpc-status", "{r:#?}");
        assert!(
            r.error
                .starts_with("gRPC status 14 Unavailable: injected fault: status 503"),
            "{r:#?}"
        );
        // The call completed, so it is timed like any answered request.
        assert!(r.client_latency_ms.is_some());
    }
}

#[test]
fn a_gateway_429_to_a_grpc_call_is_a_throttled_row() {
    // One instance at most: the rest of a burst of 3 is refused by the local gateway with an
    // HTTP 429 (not a gRPC answer), which is `throttled` with its Retry-After, as for HTTP.
    let ran = run_local(
        serde_json::json!({
            "Seed": 2, "MaxFailures": 100,
            "Local": {"Protocol": "grpc", "MaxInstances": 1},
        }),
        serde_json::json!({
            "Title": "capped", "Bursts": 1, "BurstSizes": [3], "IATSeconds": 1,
            "IATType": "deterministic", "DesiredServiceTimes": ["300ms"],
        }),
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    let throttled: Vec<&LatencyRow> = ran
        .rows
        .iter()
        .filter(|r| r.error_kind == "throttled")
        .collect();
    assert_eq!(throttled.len(), 2, "{:#?}", ran.rows);
    for r in throttled {
        assert_eq!(r.http_status, Some(429), "{r:#?}");
        assert_eq!(r.retry_after_s, Some(1.0), "{r:#?}");
    }
    assert_eq!(ran.rows.iter().filter(|r| r.is_ok()).count(), 1);
}
