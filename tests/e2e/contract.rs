//! Plugin contract 0.2 through the `stellar` binary, with real components built from source:
//! a provider name stellar has never heard of, endpoints outside an adapter's declarations
//! (refused before any request reaches them), log floods (run.log stays bounded), a stuck
//! `describe` (stopped within seconds), and no temporary directory left behind by a run that
//! fails before deploying.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const HOSTILE: &str = env!("STELLAR_PLUGIN_HOSTILE_WASM");
const STUCK_DESCRIBE: &str = env!("STELLAR_PLUGIN_STUCK_DESCRIBE_WASM");

/// Runs `stellar` in `dir` with its own cache, data and temp directories.
fn stellar(dir: &Path, args: &[&str]) -> Output {
    let tmp = dir.join("tmp");
    fs_err::create_dir_all(&tmp).unwrap();
    Command::new(env!("CARGO_BIN_EXE_stellar"))
        .current_dir(dir)
        .args(args)
        .env("STELLAR_CACHE_DIR", dir.join("cache"))
        .env("STELLAR_DATA_DIR", dir.join("data"))
        .env("TMPDIR", &tmp)
        .env("HOME", dir)
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// An HTTP server on 127.0.0.1:0 that counts connections and answers 200 to every request.
fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                use std::io::{Read as _, Write as _};
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    (port, count)
}

/// A small experiment for `provider` with these provider settings.
fn experiment(dir: &Path, provider: &str, settings: serde_json::Value) -> PathBuf {
    let path = dir.join("experiment.json");
    let body = serde_json::json!({
        "Provider": provider,
        "Stellar": {
            "Seed": 7,
            "OutputDir": dir.join("results"),
            "ProviderSettings": settings,
        },
        "SubExperiments": [{
            "Title": "contract",
            "Bursts": 3,
            "BurstSizes": [1],
            "IATSeconds": 0.1,
            "IATType": "deterministic",
            "DesiredServiceTimes": ["0ms"],
        }],
    });
    fs_err::write(&path, serde_json::to_string_pretty(&body).unwrap()).unwrap();
    path
}

fn run_dir(dir: &Path) -> PathBuf {
    let results = dir.join("results");
    let mut dirs: Vec<PathBuf> = fs_err::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn stellar_temp_dirs(dir: &Path) -> Vec<PathBuf> {
    fs_err::read_dir(dir.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("stellar-"))
        })
        .collect()
}

#[test]
fn an_endpoint_outside_the_declared_hosts_gets_no_request() {
    let (port, connections) = counting_server();
    // A plain loopback URL, and one that dresses loopback up as the declared host.
    for url in [
        format!("http://127.0.0.1:{port}/{{name}}"),
        format!("http://example.invalid@127.0.0.1:{port}/{{name}}"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let exp = experiment(
            dir.path(),
            "hostile",
            serde_json::json!({ "endpoint-url": url }),
        );
        let output = stellar(
            dir.path(),
            &["run", exp.to_str().unwrap(), "--quiet", "--plugin", HOSTILE],
        );
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stderr.contains("plugin `hostile`"), "{stderr}");
        assert!(stderr.contains(&format!("127.0.0.1:{port}/")), "{stderr}");
        assert!(
            stderr.contains("not among the endpoint hosts it declared (example.invalid)"),
            "{stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(connections.load(Ordering::SeqCst), 0, "{url}");
        // The function it did deploy was removed again, and nothing is left in the temp dir.
        let journal = fs_err::read_to_string(run_dir(dir.path()).join("resources.jsonl")).unwrap();
        assert!(journal.contains("\"removed\""), "{journal}");
        assert_eq!(stellar_temp_dirs(dir.path()), Vec::<PathBuf>::new());
    }
}

#[test]
fn a_new_provider_name_runs_and_a_log_flood_leaves_run_log_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (port, connections) = counting_server();
    let exp = experiment(
        dir.path(),
        "hostile",
        serde_json::json!({
            "endpoint-url": format!("http://127.0.0.1:{port}/{{name}}"),
            "allowed-endpoint": format!("http://127.0.0.1:{port}"),
            "deploy-mode": "log-flood",
            "count": "20000",
            "bytes": "4000",
        }),
    );
    let output = stellar(
        dir.path(),
        &["run", exp.to_str().unwrap(), "--quiet", "--plugin", HOSTILE],
    );
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        &stderr[..stderr.len().min(4000)]
    );
    // Three timed requests reached the endpoint the user allowed.
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    let run_log = run_dir(dir.path()).join("run.log");
    let size = fs_err::metadata(&run_log).unwrap().len();
    // 20 000 × 4 000 bytes were logged; the cap is 1 MiB of messages (plus log formatting).
    assert!(size < 2 << 20, "run.log is {size} bytes");
    let log = fs_err::read_to_string(&run_log).unwrap();
    assert!(log.contains("reached its log cap"), "no cap notice");
    assert!(log.contains("log messages"), "no dropped summary");
    assert!(stderr.len() < 2 << 20, "{} bytes on stderr", stderr.len());
    eprintln!(
        "log flood: run.log {size} bytes, stderr {} bytes",
        stderr.len()
    );
}

#[test]
fn a_run_that_fails_before_deploying_names_the_option_and_leaves_no_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let exp = experiment(dir.path(), "hostile", serde_json::json!({ "regoin": "x" }));
    let output = stellar(
        dir.path(),
        &["run", exp.to_str().unwrap(), "--quiet", "--plugin", HOSTILE],
    );
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Stellar.ProviderSettings.regoin: the `hostile` adapter has no option `regoin`"
        ),
        "{stderr}"
    );
    assert_eq!(stellar_temp_dirs(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_provider_without_an_adapter_says_how_to_add_one() {
    let dir = tempfile::tempdir().unwrap();
    let exp = experiment(dir.path(), "mycloud", serde_json::json!({}));
    let output = stellar(dir.path(), &["run", exp.to_str().unwrap(), "--dry-run"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("provider `mycloud` has no adapter"),
        "{stderr}"
    );
    assert!(stderr.contains("--plugin FILE.wasm"), "{stderr}");
    assert!(stderr.contains("stellar plugins install"), "{stderr}");

    // A --plugin whose declared name differs from the Provider is refused too.
    let output = stellar(
        dir.path(),
        &[
            "run",
            exp.to_str().unwrap(),
            "--dry-run",
            "--plugin",
            HOSTILE,
        ],
    );
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("declares the provider `hostile`, but"),
        "{stderr}"
    );
}

#[test]
fn plugins_inspect_stops_a_describe_that_never_returns() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = stellar(dir.path(), &["plugins", "inspect", STUCK_DESCRIBE]);
    let elapsed = started.elapsed();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("describe did not finish within 5s"),
        "{stderr}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    eprintln!("stuck describe: `plugins inspect` returned after {elapsed:?}");
}
