//! End-to-end test of `stellar-measure-lambda` under cargo-lambda's emulator: `cargo lambda
//! watch` serves the Lambda Runtime API and a function-URL front door, builds the bin with the
//! `lambda` feature on the first request and runs it, exactly as a function URL would call it.
//!
//! Needs `cargo-lambda` on PATH (`pip install cargo-lambda`; CI installs it): without it the
//! test fails with that hint instead of being skipped, so a missing tool is never mistaken for a
//! pass.
//!
//! Choices worth knowing:
//! - The watcher builds into `<workspace>/target/lambda-watch` (via `CARGO_TARGET_DIR`;
//!   cargo-lambda 1.9 rejects `--target-dir` in watch). A directory of its own means the debug
//!   build with `--features lambda` neither waits on the lock of the target dir this test runs
//!   from nor evicts its artifacts (different features would rebuild `stellar-measure` each
//!   time), and it is gitignored and outside the crate, so it never triggers the watcher.
//! - `--ignore-changes`: the test needs no hot reload, and other edits in the workspace would
//!   otherwise kill and restart the first build over and over.
//! - The watcher's output is teed into a log file under `CARGO_TARGET_TMPDIR` (outside the
//!   crate dir: a file written inside the watched dir restarts the build) and scanned for the
//!   "starting Runtime server" line, the signal that the emulator is up.

use crate::support::free_port;
use fs_err::File;
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stellar_measure::MeasurementResponse;

/// The bin name, which is also the function name in the emulator's URL.
const FUNCTION: &str = "stellar-measure-lambda";
/// What the watcher logs once its HTTP server is starting.
const READY_MARKER: &str = "starting Runtime server";
/// The first request waits for a debug build of lambda_runtime + tokio + this crate: about
/// 15 s on an idle machine, minutes on a busy 2-core one.
pub(crate) const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);
const WARM_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `cargo lambda watch`, its process group killed on drop.
pub(crate) struct Watcher {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Watcher {
    pub(crate) fn start() -> Self {
        require_cargo_lambda();
        // This test binary belongs to host/stellar; the function's crate is measurement-fn.
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let manifest_dir = workspace.join("measurement-fn");
        let target_dir = workspace.join("target").join("lambda-watch");
        let port = free_port();
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lambda-watch-{port}.log"));
        let mut child = Command::new("cargo")
            .args(["lambda", "watch", "--ignore-changes", "--invoke-address"])
            .arg("127.0.0.1")
            .arg("--invoke-port")
            .arg(port.to_string())
            .args(["-p", "stellar-measure", "--bin", FUNCTION])
            .args(["--features", "lambda"])
            .current_dir(manifest_dir)
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("STELLAR_PROVIDER", "aws-lambda-emulator")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so drop can stop the watcher and the builds it spawns.
            .process_group(0)
            .spawn()
            .expect("spawn `cargo lambda watch`");
        let file = Arc::new(Mutex::new(File::create(&log).expect("create watcher log")));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        tee(stdout, Arc::clone(&file), ready_tx.clone());
        tee(stderr, file, ready_tx);
        let watcher = Self { child, port, log };
        match ready_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(()) => {}
            Err(e) => panic!(
                "`cargo lambda watch` did not start ({e}); log: {}\n{}",
                watcher.log.display(),
                watcher.log_text()
            ),
        }
        watcher
    }

    /// The function-URL route of the emulated function (what the aws adapter's
    /// `function-url-override` points at).
    pub(crate) fn function_url(&self) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{FUNCTION}/", self.port)
    }

    fn log_text(&self) -> String {
        fs_err::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `/lambda-url/<fn>/?<query>` with a fresh connection.
    pub(crate) fn get(&self, query: &str, timeout: Duration) -> (u16, Value) {
        let mut stream = self.connect();
        stream.set_read_timeout(Some(timeout)).expect("set timeout");
        write!(
            stream,
            "GET /lambda-url/{FUNCTION}/?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("write request");
        let mut raw = Vec::new();
        if let Err(e) = stream.read_to_end(&mut raw) {
            panic!(
                "reading the reply to ?{query}: {e}; log:\n{}",
                self.log_text()
            );
        }
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {text:?}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        let json = serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!(
                "reply body is not JSON ({e}): {body:?}; log:\n{}",
                self.log_text()
            )
        });
        (status, json)
    }

    /// Connects to the emulator. The ready line is logged as the server starts, possibly just
    /// before the socket is bound, so a refused connection is retried for a few seconds.
    fn connect(&self) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(stream) => return stream,
                Err(e) if Instant::now() < deadline => {
                    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("connecting to the emulator: {e}; log:\n{}", self.log_text()),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        // SIGTERM lets the watcher stop the function instance it started (which runs in a
        // process group of its own); SIGKILL the group if it does not go within 10 s.
        Command::new("kill")
            .args(["-TERM", "--", &group])
            .status()
            .ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            Command::new("kill")
                .args(["-KILL", "--", &group])
                .status()
                .ok();
            self.child.wait().ok();
        }
    }
}

/// Fails (not skips) when cargo-lambda is missing.
fn require_cargo_lambda() {
    let found = Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "cargo-lambda is not installed: run `pip install cargo-lambda` (it brings zig too)"
    );
}

/// Copies `from` line by line into `file`; signals `ready` when a line holds [`READY_MARKER`].
fn tee(from: impl Read + Send + 'static, file: Arc<Mutex<File>>, ready: mpsc::Sender<()>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut f) = file.lock() {
                writeln!(f, "{line}").ok();
            }
            if line.contains(READY_MARKER) {
                ready.send(()).ok();
            }
        }
    });
}

/// Decodes a chunked HTTP/1.1 body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(after.get(..size).expect("chunk data"));
        rest = after.get(size + 2..).unwrap_or("");
    }
    out
}

fn measurement(body: Value) -> MeasurementResponse {
    serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("not a MeasurementResponse ({e}): {body}"))
}

#[test]
fn function_url_round_trip_under_cargo_lambda_watch() {
    let watcher = Watcher::start();

    let started = Instant::now();
    let (status, body) = watcher.get("SpinMs=30&RequestID=first", FIRST_REQUEST_TIMEOUT);
    let first_ms = started.elapsed().as_millis();
    assert_eq!(status, 200, "{body}");
    let first = measurement(body);
    assert!(first.cold, "first call must be cold: {first:?}");
    assert_eq!(first.invocations_on_instance, 1);
    assert_eq!(first.request_id, "first");
    assert_eq!(first.spin_requested_ms, 30.0);
    assert!(first.spin_ns >= 30_000_000, "spin {} ns", first.spin_ns);
    assert!(first.instance_start_unix_ns <= first.handler_received_unix_ns);
    assert!(first.handler_done_unix_ns >= first.handler_received_unix_ns + 30_000_000);
    assert_eq!(first.runtime.provider, "aws-lambda-emulator");

    let mut warm_ms = Vec::new();
    for i in 2..=4_u64 {
        let started = Instant::now();
        let (status, body) = watcher.get(
            &format!("SpinMs=5&IncrementLimit=1000&RequestID=warm{i}"),
            WARM_REQUEST_TIMEOUT,
        );
        warm_ms.push(started.elapsed().as_millis());
        assert_eq!(status, 200, "{body}");
        let warm = measurement(body);
        assert!(!warm.cold, "call {i} must be warm: {warm:?}");
        assert_eq!(warm.instance_id, first.instance_id, "same instance");
        assert_eq!(warm.instance_start_unix_ns, first.instance_start_unix_ns);
        assert_eq!(warm.invocations_on_instance, i);
        assert!(warm.spin_ns >= 5_000_000, "spin {} ns", warm.spin_ns);
        assert_eq!(warm.increments, 1000);
    }

    let (status, body) = watcher.get("SpinMs=abc", WARM_REQUEST_TIMEOUT);
    assert_eq!(status, 400, "{body}");
    let msg = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(msg.contains("SpinMs"), "{body}");

    // Visible with --nocapture: the latencies the report quotes.
    std::io::stderr()
        .write_all(
            format!("lambda watch: first request {first_ms} ms, warm {warm_ms:?} ms\n").as_bytes(),
        )
        .ok();
}
