//! Faults as data: every failure injected into the real measurement function (behind the real
//! local gateway, or hit directly) becomes a row with the right `Error Kind`, the run goes on
//! and finishes, and the local runtime replaces instances that crashed. Also: a results
//! filesystem that stops taking writes (`RLIMIT_FSIZE`) ends the run with an error naming the
//! file, sending stops, and the CSV stays readable.
//!
//! The knobs are `Stellar.Local.FaultQuery` / `FaultReadyDelayMs` (see
//! `stellar_measure::fault`); with them the local runtime starts functions with
//! `STELLAR_FAULTS=1`, without it the function ignores `Fault=...`.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::only_subdir;
use stellar_config::Plan;
use stellar_results::{LatencyRow, read_latencies};

/// A finished `stellar run`: its output, run directory and the rows of its one
/// sub-experiment, in request order.
struct Ran {
    output: Output,
    run_dir: PathBuf,
    rows: Vec<LatencyRow>,
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

    fn kinds(&self) -> Vec<&str> {
        self.rows.iter().map(|r| r.error_kind.as_str()).collect()
    }

    fn instances_csv(&self) -> Vec<csv::StringRecord> {
        let plan: Plan =
            serde_json::from_str(&fs_err::read_to_string(self.run_dir.join("plan.json")).unwrap())
                .unwrap();
        let path = self
            .run_dir
            .join(&plan.sub_experiments[0].slug)
            .join("instances.csv");
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let headers = reader.headers().unwrap().clone();
        assert_eq!(&headers[9], "Stop Reason", "{headers:?}");
        reader.records().map(Result::unwrap).collect()
    }
}

/// Runs a one-sub-experiment file (`stellar` settings merged in) and reads its rows.
fn run(provider: &str, stellar: serde_json::Value, bursts: u32, iat_s: f64) -> Ran {
    run_with(provider, stellar, bursts, 1, iat_s, &[])
}

/// [`run`] with `burst_size` requests per burst, under `wrapper` (a command and its arguments
/// that run stellar, e.g. `prlimit`) when not empty.
fn run_with(
    provider: &str,
    stellar: serde_json::Value,
    bursts: u32,
    burst_size: u32,
    iat_s: f64,
    wrapper: &[String],
) -> Ran {
    let out = tempfile::tempdir().unwrap();
    let experiment = out.path().join("faults.json");
    let mut settings = serde_json::json!({"Seed": 7, "MaxFailures": 1000});
    for (k, v) in stellar.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let file = serde_json::json!({
        "Sequential": true,
        "Provider": provider,
        "Stellar": settings,
        "SubExperiments": [{
            "Title": "faults",
            "Bursts": bursts,
            "BurstSizes": [burst_size],
            "IATSeconds": iat_s,
            "IATType": "deterministic",
            "DesiredServiceTimes": ["1ms"]
        }]
    });
    fs_err::write(&experiment, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let results = out.path().join("results");
    let cache = out.path().join("cache");
    let stellar_exe = env!("CARGO_BIN_EXE_stellar");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(stellar_exe);
            cmd
        }
        None => Command::new(stellar_exe),
    };
    cmd.env("STELLAR_CACHE_DIR", &cache)
        .args(["run", "--quiet", "-o"])
        .arg(&results)
        .arg(&experiment);
    let output = cmd.output().unwrap();
    let run_dir = only_subdir(&results);
    let sub_dir = only_subdir(&run_dir);
    let mut rows = read_latencies(sub_dir.join("latencies.csv")).unwrap();
    rows.sort_by_key(|r| r.request_index);
    Ran {
        output,
        run_dir,
        rows,
        _out: out,
    }
}

fn local(fault_query: &str) -> serde_json::Value {
    serde_json::json!({"Local": {"KeepAliveSeconds": 60, "FaultQuery": fault_query}})
}

#[test]
fn a_crash_is_a_502_row_and_the_runtime_starts_a_new_instance() {
    let ran = run("local", local("Fault=crash&FaultEvery=2"), 6, 0.2);
    assert!(ran.output.status.success(), "{}", ran.log());
    assert_eq!(
        ran.kinds(),
        ["", "http-status", "", "http-status", "", "http-status"],
        "{}",
        ran.log()
    );
    for r in &ran.rows {
        if r.is_ok() {
            // Every served request after a crash is the first of a fresh process.
            assert_eq!(r.cold, Some(true), "{r:?}");
        } else {
            assert_eq!(r.http_status, Some(502), "{r:?}");
        }
    }
    let served: BTreeSet<&str> = ran
        .rows
        .iter()
        .filter(|r| r.is_ok())
        .map(|r| r.instance_id.as_str())
        .collect();
    assert_eq!(served.len(), 3, "{:?}", ran.rows);
    let instances = ran.instances_csv();
    assert_eq!(instances.len(), 3, "{instances:?}");
    assert!(
        instances.iter().all(|i| &i[9] == "crashed"),
        "{instances:?}"
    );
}

#[test]
fn a_hang_is_a_timeout_row_and_the_run_goes_on() {
    let mut stellar = local("Fault=hang&FaultEvery=2");
    stellar["RequestTimeoutSeconds"] = 0.5.into();
    let started = Instant::now();
    let ran = run("local", stellar, 4, 0.8);
    assert!(ran.output.status.success(), "{}", ran.log());
    assert_eq!(ran.kinds(), ["", "timeout", "", "timeout"], "{}", ran.log());
    for r in ran.rows.iter().filter(|r| !r.is_ok()) {
        assert!(r.error.contains("no response within 500ms"), "{r:?}");
    }
    // When the driver gave up, the gateway dropped the hung call and the instance was free
    // again: the next request is served warm by the same instance.
    assert_eq!(ran.rows[2].instance_id, ran.rows[0].instance_id);
    assert_eq!(ran.rows[2].cold, Some(false), "{:?}", ran.rows[2]);
    eprintln!("hang run: {:?}", started.elapsed());
}

#[test]
fn an_error_status_is_an_http_status_row_from_the_same_instance() {
    let ran = run("local", local("Fault=status:503&FaultEvery=2"), 4, 0.2);
    assert!(ran.output.status.success(), "{}", ran.log());
    assert_eq!(ran.kinds(), ["", "http-status", "", "http-status"]);
    assert_eq!(
        ran.rows.iter().map(|r| r.http_status).collect::<Vec<_>>(),
        [Some(200), Some(503), Some(200), Some(503)]
    );
    assert!(ran.rows[1].error.contains("injected fault: status 503"));
    let ids: BTreeSet<&str> = ran.rows.iter().map(|r| r.instance_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{:?}", ran.rows);
}

#[test]
fn a_429_is_a_throttled_row() {
    let ran = run("local", local("Fault=status:429&FaultEvery=2"), 4, 0.2);
    assert!(ran.output.status.success(), "{}", ran.log());
    assert_eq!(ran.kinds(), ["", "throttled", "", "throttled"]);
    assert_eq!(ran.rows[1].http_status, Some(429));
    // The function's `Retry-After: 1` is recorded.
    assert_eq!(ran.rows[1].retry_after_s, Some(1.0), "{:?}", ran.rows[1]);
    assert_eq!(ran.rows[0].retry_after_s, None);
}

#[test]
fn a_reset_behind_the_gateway_is_a_502_row() {
    let ran = run("local", local("Fault=reset&FaultEvery=2"), 4, 0.2);
    assert!(ran.output.status.success(), "{}", ran.log());
    assert_eq!(ran.kinds(), ["", "http-status", "", "http-status"]);
    assert_eq!(ran.rows[1].http_status, Some(502), "{:?}", ran.rows[1]);
    // A reset ends the connection, not the process: one instance served everything.
    let ids: BTreeSet<&str> = ran
        .rows
        .iter()
        .filter(|r| r.is_ok())
        .map(|r| r.instance_id.as_str())
        .collect();
    assert_eq!(ids.len(), 1, "{:?}", ran.rows);
}

#[test]
fn a_slow_start_shows_in_the_init_time() {
    let stellar = serde_json::json!({"Local": {"KeepAliveSeconds": 0.1, "FaultReadyDelayMs": 300}});
    let ran = run("local", stellar, 2, 0.6);
    assert!(ran.output.status.success(), "{}", ran.log());
    assert_eq!(ran.kinds(), ["", ""]);
    for r in &ran.rows {
        assert_eq!(r.cold, Some(true), "{r:?}");
        assert!(r.provider_init_ms.unwrap() >= 300.0, "{r:?}");
        assert!(r.client_latency_ms.unwrap() >= 300.0, "{r:?}");
    }
}

/// The measurement function (the executable the local provider deploys), started directly.
struct Function {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_function(faults: bool) -> Function {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("stellar-measure-http");
    let built = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .env("STELLAR_CACHE_DIR", dir.path().join("cache"))
        .args(["build", "--provider", "local", "-o"])
        .arg(&exe)
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let mut cmd = Command::new(&exe);
    cmd.env_clear()
        .env("PORT", "0")
        .env("STELLAR_LISTEN_ADDR", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if faults {
        cmd.env("STELLAR_FAULTS", "1");
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let ready = stellar_measure::ReadySignal::parse_line(line.trim()).unwrap();
    Function {
        child,
        port: ready.port,
        _dir: dir,
    }
}

/// One raw HTTP/1.1 GET; the status line, or the I/O error.
fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply.lines().next().unwrap_or_default().to_owned())
}

#[test]
fn without_the_env_var_the_knobs_do_nothing() {
    let f = start_function(false);
    for fault in ["crash", "reset", "status:503"] {
        let status = get(f.port, &format!("/?Fault={fault}")).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{fault}: {status}");
    }
}

#[test]
fn a_reset_hit_directly_is_a_connection_reset_row() {
    let f = start_function(true);
    // Through the driver (STeLLAR's external-URL mode sends the URL as given).
    let url = format!("http://127.0.0.1:{}/?Fault=reset&FaultEvery=2", f.port);
    let ran = run(&url, serde_json::json!({}), 4, 0.2);
    assert!(ran.output.status.success(), "{}", ran.log());
    assert_eq!(
        ran.kinds(),
        ["", "connection-reset", "", "connection-reset"],
        "{:?}",
        ran.rows
    );
    assert!(ran.rows[1].http_status.is_none());
    // The knob itself: a TCP reset, not a reply (the 5th request carrying `Fault`).
    let err = get(f.port, "/?Fault=reset").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

/// A plain HTTP server answering 200 to everything; counts the requests it saw.
fn ok_server() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            counter.fetch_add(1, Ordering::Relaxed);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (port, seen)
}

#[test]
fn a_full_results_filesystem_stops_the_run_and_keeps_the_csv_readable() {
    let (port, seen) = ok_server();
    let url = format!("http://127.0.0.1:{port}/");
    // 32 KiB per file: the plan and the log fit, latencies.csv (~200 B a row) does not hold
    // 6 bursts of 100.
    let limit = 32 * 1024;
    let wrapper = [
        "prlimit".to_owned(),
        format!("--fsize={limit}:{limit}"),
        "--".to_owned(),
    ];
    let ran = run_with(&url, serde_json::json!({}), 6, 100, 0.3, &wrapper);
    let stderr = String::from_utf8_lossy(&ran.output.stderr);
    // An error (exit 1), not a kill by SIGXFSZ, naming the file.
    assert_eq!(ran.output.status.code(), Some(1), "{}", ran.log());
    assert!(stderr.contains("latencies.csv"), "{stderr}");
    assert!(
        stderr.contains("the results could not be written"),
        "{stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    // What was written reads back (the torn row was cut), and it is less than planned.
    let written = ran.rows.len() as u64;
    assert!((100..600).contains(&written), "{written}");
    let csv = only_subdir(&ran.run_dir).join("latencies.csv");
    assert!(fs_err::metadata(&csv).unwrap().len() <= limit);
    // Sending stopped: the bursts after the failure were never sent.
    let sent = seen.load(Ordering::Relaxed);
    assert!(sent < 600, "the server saw {sent} requests");
    eprintln!("disk full: {written} rows kept, {sent} requests sent of 600");
}
