//! The `vhive` adapter end to end: `stellar run` with `"Provider": "vhive"` and an endpoints
//! file in STeLLAR's shape (`GatewayID`) or vHive's (`hostname`), pointing at real gRPC
//! measurement functions on loopback; the host reads the file (adapters have no filesystem),
//! the adapter hands out matching endpoints, the driver calls them with gRPC. Bad input:
//! a missing or malformed file (path, line and column), an endpoint that refuses connections
//! (error rows, failure budget).

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use stellar_results::read_latencies;

use crate::support::only_subdir;

struct Function {
    child: Child,
    port: u16,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_grpc_function(dir: &Path, name: &str) -> Function {
    let exe = dir.join(name);
    fs_err::write(&exe, stellar::embedded::MEASURE_HTTP_BIN).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut child = Command::new(&exe)
        .env_clear()
        .env("PORT", "0")
        .env("STELLAR_LISTEN_ADDR", "127.0.0.1")
        .env("STELLAR_PROTOCOL", "grpc")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready = stellar_measure::ReadySignal::parse_line(line.trim()).unwrap();
    Function {
        child,
        port: ready.port,
    }
}

fn experiment(dir: &Path, endpoints_file: &str, stellar: serde_json::Value, parallelism: u32) {
    let mut settings = serde_json::json!({
        "Seed": 9,
        "ProviderSettings": {"endpoints-file": endpoints_file},
    });
    for (k, v) in stellar.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let file = serde_json::json!({
        "Sequential": true,
        "Provider": "vhive",
        "Stellar": settings,
        "SubExperiments": [{
            "Title": "vhive", "Bursts": 6, "BurstSizes": [1, 2], "IATSeconds": 0.2,
            "IATType": "deterministic", "DesiredServiceTimes": ["0ms"],
            "FunctionMemoryMB": 128, "PackageType": "Image", "Parallelism": parallelism,
        }],
    });
    fs_err::write(
        dir.join("vhive.json"),
        serde_json::to_string_pretty(&file).unwrap(),
    )
    .unwrap();
}

fn run(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stellar"))
        .env("STELLAR_CACHE_DIR", dir.join("cache"))
        .args(["run", "--quiet", "-o"])
        .arg(dir.join("results"))
        .arg(dir.join("vhive.json"))
        .output()
        .unwrap()
}

fn log(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn rows(dir: &Path) -> Vec<stellar_results::LatencyRow> {
    let run_dir = only_subdir(&dir.join("results"));
    let sub = fs_err::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && p.join("latencies.csv").exists())
        .unwrap();
    read_latencies(sub.join("latencies.csv")).unwrap()
}

#[test]
fn a_stellar_shaped_endpoints_file_of_two_grpc_functions_is_benchmarked() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        start_grpc_function(dir.path(), "fn-a"),
        start_grpc_function(dir.path(), "fn-b"),
    );
    // STeLLAR's vHive shape; a third entry of another memory size is not picked.
    let endpoints = serde_json::json!([
        {"GatewayID": "127.0.0.1:1", "FunctionMemoryMB": 512, "ImageSizeMB": 50, "PackageType": "Image"},
        {"GatewayID": format!("127.0.0.1:{}", a.port), "FunctionMemoryMB": 128, "ImageSizeMB": 50, "PackageType": "Image"},
        {"GatewayID": format!("127.0.0.1:{}", b.port), "FunctionMemoryMB": 128, "ImageSizeMB": 50, "PackageType": "Image"},
    ]);
    fs_err::write(dir.path().join("endpoints.json"), endpoints.to_string()).unwrap();
    experiment(dir.path(), "endpoints.json", serde_json::json!({}), 2);
    let output = run(dir.path());
    assert!(output.status.success(), "{}", log(&output));
    let rows = rows(dir.path());
    // Bursts k -> endpoint k % 2, round k / 2, size BurstSizes[round % 2]: 1+1+2+2+1+1.
    assert_eq!(rows.len(), 8, "{rows:#?}");
    for r in &rows {
        assert!(r.is_ok(), "{r:#?}\n{}", log(&output));
        assert!(r.connect_ms.is_some() && r.client_latency_ms.is_some());
        // The functions' gRPC replies came back (stellarReply JSON), read as foreign replies.
        assert!(r.response_bytes > 100, "{r:?}");
    }
    let endpoints: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.endpoint).collect();
    assert_eq!(endpoints.into_iter().collect::<Vec<_>>(), [0, 1]);
    let run_log =
        fs_err::read_to_string(only_subdir(&dir.path().join("results")).join("run.log")).unwrap();
    assert!(
        run_log.contains(&format!("127.0.0.1:{}", a.port))
            && run_log.contains(&format!("127.0.0.1:{}", b.port))
            && !run_log.contains("uses the listed endpoint http://127.0.0.1:1"),
        "{run_log}"
    );
}

#[test]
fn a_vhive_endpoints_json_with_a_refusing_endpoint_gives_connect_rows_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on (bound, then closed).
    let port = crate::support::free_port();
    let endpoints = serde_json::json!([
        {"hostname": "eventing.default.example.com", "eventing": true},
        {"hostname": format!("127.0.0.1:{port}"), "eventing": false},
    ]);
    fs_err::write(dir.path().join("endpoints.json"), endpoints.to_string()).unwrap();
    experiment(
        dir.path(),
        "endpoints.json",
        serde_json::json!({"MaxFailures": 2}),
        1,
    );
    let output = run(dir.path());
    assert_eq!(output.status.code(), Some(2), "{}", log(&output));
    let rows = rows(dir.path());
    assert!(rows.len() >= 3, "{rows:#?}");
    for r in &rows {
        assert_eq!(r.error_kind, "connect", "{r:#?}");
        assert!(r.error.contains(&format!("127.0.0.1:{port}")), "{r:?}");
    }
}

#[test]
fn missing_and_malformed_endpoints_files_are_named_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    experiment(dir.path(), "nowhere.json", serde_json::json!({}), 1);
    let output = run(dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", log(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Stellar.ProviderSettings.endpoints-file")
            && stderr.contains("nowhere.json: no such file"),
        "{stderr}"
    );

    fs_err::write(
        dir.path().join("bad.json"),
        "[\n  {\"GatewayID\": \"127.0.0.1:80\"\n  {\"GatewayID\": \"x\"}\n]\n",
    )
    .unwrap();
    experiment(dir.path(), "bad.json", serde_json::json!({}), 1);
    let output = run(dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", log(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.json") && stderr.contains("(line 3, column 3)"),
        "{stderr}"
    );
}
