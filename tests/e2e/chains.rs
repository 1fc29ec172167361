//! Data-transfer chains end to end on the local provider: `stellar run` deploys every
//! endpoint as a chain of real measurement-function processes behind the real gateway, the
//! payload travels hop by hop, and `data-transfers.csv` gets one row per request and hop with
//! the receiver's hash check; a hop whose successor is down becomes an error row naming it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::only_subdir;
use stellar_results::read_latencies;
use stellar_results::transfers::{TRANSFERS_CSV, TransferRow, read_transfers};

struct Ran {
    output: Output,
    run_dir: PathBuf,
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

    fn sub_dir(&self, slug_prefix: &str) -> PathBuf {
        fs_err::read_dir(&self.run_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(slug_prefix))
            })
            .unwrap_or_else(|| panic!("no sub-experiment {slug_prefix}: {}", self.log()))
    }
}

/// A chain sub-experiment: `bursts` single requests 0.15 s apart.
fn chain_sub(
    title: &str,
    length: u32,
    payload: u64,
    bursts: u32,
    storage: bool,
) -> serde_json::Value {
    serde_json::json!({
        "Title": title,
        "Bursts": bursts,
        "BurstSizes": [1],
        "IATSeconds": 0.15,
        "IATType": "deterministic",
        "DesiredServiceTimes": ["0ms"],
        "PayloadLengthBytes": payload,
        "DataTransferChainLength": length,
        "StorageTransfer": storage,
    })
}

/// Runs `subs` on the local provider with `env` added to stellar's environment.
fn run_chains(subs: Vec<serde_json::Value>, local: serde_json::Value, env: &[(&str, &str)]) -> Ran {
    let out = tempfile::tempdir().unwrap();
    let experiment = out.path().join("chains.json");
    let file = serde_json::json!({
        "Sequential": true,
        "Provider": "local",
        "Stellar": {"Seed": 11, "MaxFailures": 1000, "Local": local},
        "SubExperiments": subs,
    });
    fs_err::write(&experiment, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let results = out.path().join("results");
    let output = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .env("STELLAR_CACHE_DIR", out.path().join("cache"))
        .envs(env.iter().copied())
        .args(["run", "--quiet", "-o"])
        .arg(&results)
        .arg(&experiment)
        .output()
        .unwrap();
    let run_dir = only_subdir(&results);
    Ran {
        output,
        run_dir,
        _out: out,
    }
}

/// Checks every request of a chain sub-experiment: all hops present, in order, payload intact,
/// each hop on another process, durations consistent. Returns the hop rows.
fn check_chain_rows(
    dir: &Path,
    length: u32,
    payload: u64,
    transfer: &str,
    requests: usize,
) -> Vec<TransferRow> {
    let latencies = read_latencies(dir.join("latencies.csv")).unwrap();
    assert_eq!(latencies.len(), requests);
    for row in &latencies {
        assert!(row.is_ok(), "{row:?}");
    }
    let rows = read_transfers(dir.join(TRANSFERS_CSV)).unwrap();
    assert_eq!(rows.len(), requests * (length as usize - 1), "{rows:#?}");
    for request in &latencies {
        let hops: Vec<&TransferRow> = rows
            .iter()
            .filter(|r| r.request_index == request.request_index)
            .collect();
        let numbers: Vec<Option<u32>> = hops.iter().map(|r| r.hop).collect();
        let expected: Vec<Option<u32>> = (0..length - 1).map(Some).collect();
        assert_eq!(numbers, expected, "every hop present, in order");
        for (i, hop) in hops.iter().enumerate() {
            assert_eq!(hop.request_id, request.request_id);
            assert_eq!(hop.transfer, transfer);
            assert_eq!(hop.payload_bytes, payload);
            assert_eq!(hop.bytes_received, Some(payload), "hop {i}");
            assert_eq!(
                hop.hash_ok,
                Some(true),
                "hop {i}: the receiver's SHA-256 check"
            );
            assert!(hop.error.is_empty());
            assert_ne!(hop.from_instance, hop.to_instance);
            if i > 0 {
                assert_eq!(
                    hop.from_instance,
                    hops[i - 1].to_instance,
                    "a chain, not a star"
                );
            }
            if i == 0 {
                assert_eq!(
                    hop.from_instance, request.instance_id,
                    "hop 0 is the endpoint"
                );
            }
            let t = hop.transfer_ms.unwrap();
            assert!(t > 0.0 && t < request.client_latency_ms.unwrap(), "{hop:?}");
            if transfer == "inline" {
                // The payload's arrival lies inside the transfer time.
                assert!(t + 0.01 >= hop.receive_ms.unwrap(), "{hop:?}");
            }
            // One machine: every function reports the same boot id, so the wall-clock
            // difference is read on one clock.
            assert_eq!(hop.wall_spans_two_clocks, Some(false));
            // latencies.csv keeps microseconds.
            let same = (hop.client_latency_ms.unwrap() - request.client_latency_ms.unwrap()).abs();
            assert!(same < 0.001, "{hop:?}");
        }
    }
    rows
}

#[test]
fn inline_chains_of_two_and_eight() {
    let ran = run_chains(
        vec![
            chain_sub("two", 2, 64 * 1024, 4, false),
            chain_sub("eight", 8, 1024, 3, false),
        ],
        serde_json::json!({}),
        &[],
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    check_chain_rows(&ran.sub_dir("00-"), 2, 64 * 1024, "inline", 4);
    let eight = check_chain_rows(&ran.sub_dir("01-"), 8, 1024, "inline", 3);
    // Instances stay warm between requests: later requests reuse the same 8 processes.
    let mut instances: Vec<&str> = eight.iter().map(|r| r.to_instance.as_str()).collect();
    instances.sort_unstable();
    instances.dedup();
    assert_eq!(instances.len(), 7);
    // Only the first request finds its receivers cold.
    assert!(
        eight
            .iter()
            .filter(|r| r.request_index > 0)
            .all(|r| r.receiver_cold == Some(false))
    );
    // The run's plot and report section.
    assert!(ran.run_dir.join("data-transfers.png").exists());
    let report = fs_err::read_to_string(ran.run_dir.join("report.html")).unwrap();
    assert!(report.contains("Data transfers"), "report section");
    // Nothing was left deployed: every chain member was removed.
    let journal = fs_err::read_to_string(ran.run_dir.join("resources.jsonl")).unwrap();
    let created = journal.matches("\"created\"").count();
    let removed = journal.matches("\"removed\"").count();
    assert_eq!((created, removed), (10, 10), "{journal}");
}

#[test]
fn a_hop_whose_successor_is_down_is_an_error_row_naming_it() {
    let ran = run_chains(
        vec![chain_sub("down", 3, 4096, 2, false)],
        serde_json::json!({"FaultQuery": "FaultChainDownHop=2"}),
        &[],
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    let dir = ran.sub_dir("00-");
    let latencies = read_latencies(dir.join("latencies.csv")).unwrap();
    assert_eq!(latencies.len(), 2);
    for row in &latencies {
        assert_eq!(row.error_kind, "http-status", "{row:?}");
        assert!(row.error.contains("chain hop 1 -> 2 ("), "{}", row.error);
    }
    let rows = read_transfers(dir.join(TRANSFERS_CSV)).unwrap();
    assert_eq!(rows.len(), 2, "one error row per request");
    for row in &rows {
        assert_eq!(row.hop, None);
        assert!(row.error.contains("chain hop 1 -> 2 ("), "{}", row.error);
    }
}

/// Runs `tests/e2e/chain_storage.py` (vendor SDKs) and returns its stdout lines.
fn storage_helper(args: &[&str]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/chain_storage.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chain_storage.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A secret key moto accepts (it does not check signatures) that must appear in no output.
const SECRET: &str = "chain-secret-4711-do-not-log";

const STORAGE_PAYLOAD: u64 = 3 * 1024 * 1024 + 17;

#[test]
fn storage_chain_through_moto_s3_removes_its_objects() {
    let moto = crate::aws::Moto::start();
    let endpoint = moto.url();
    storage_helper(&["s3-create", &endpoint, "stellar-chains"]);
    let ran = run_chains(
        vec![chain_sub("s3", 3, STORAGE_PAYLOAD, 2, true)],
        serde_json::json!({}),
        &[
            ("STELLAR_CHAIN_STORAGE", "s3"),
            ("STELLAR_CHAIN_S3_BUCKET", "stellar-chains"),
            ("STELLAR_CHAIN_S3_ENDPOINT", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    assert!(!ran.log().contains(SECRET));
    let rows = check_chain_rows(&ran.sub_dir("00-"), 3, STORAGE_PAYLOAD, "s3", 2);
    for row in &rows {
        assert_eq!(row.transfer_method, "upload+download");
        let (send, receive) = (row.send_ms.unwrap(), row.receive_ms.unwrap());
        assert!((row.transfer_ms.unwrap() - (send + receive)).abs() < 1e-6);
    }
    assert_eq!(
        storage_helper(&["s3-list", &endpoint, "stellar-chains"]),
        Vec::<String>::new(),
        "every object was removed"
    );
    // The credentials reached no result file.
    for entry in walk(&ran.run_dir) {
        let text = String::from_utf8_lossy(&fs_err::read(&entry).unwrap()).into_owned();
        assert!(!text.contains(SECRET), "{}", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `azurite-blob` in memory on a free loopback port with one account; killed on drop.
struct Azurite {
    child: std::process::Child,
    port: u16,
}

impl Azurite {
    fn start(account: &str, key: &str) -> Self {
        let port = crate::support::free_port();
        let child = Command::new("azurite-blob")
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args([
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
            ])
            .args(["--disableTelemetry", "--silent"])
            .env("AZURITE_ACCOUNTS", format!("{account}:{key}"))
            .current_dir(std::env::temp_dir())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("azurite-blob on PATH (npm install -g azurite)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "azurite-blob did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn storage_chain_through_azurite_blob_removes_its_blobs() {
    let (account, key) = (
        "stellarchains",
        "c3RlbGxhci1jaGFpbnMtdGVzdC1rZXktbm90LWEtc2VjcmV0",
    );
    let azurite = Azurite::start(account, key);
    let endpoint = format!("http://127.0.0.1:{}/{account}", azurite.port);
    storage_helper(&["blob-create", &endpoint, account, key, "chains"]);
    let ran = run_chains(
        vec![chain_sub("blob", 3, STORAGE_PAYLOAD, 2, true)],
        serde_json::json!({}),
        &[
            ("STELLAR_CHAIN_STORAGE", "azure-blob"),
            ("STELLAR_CHAIN_BLOB_CONTAINER", "chains"),
            ("STELLAR_CHAIN_BLOB_ENDPOINT", &endpoint),
            ("AZURE_STORAGE_ACCOUNT", account),
            ("AZURE_STORAGE_KEY", key),
        ],
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    check_chain_rows(&ran.sub_dir("00-"), 3, STORAGE_PAYLOAD, "azure-blob", 2);
    assert_eq!(
        storage_helper(&["blob-list", &endpoint, account, key, "chains"]),
        Vec::<String>::new(),
        "every blob was removed"
    );
}

#[test]
fn a_wrong_blob_key_is_an_error_row_naming_the_hop() {
    let (account, key) = (
        "stellarchains",
        "c3RlbGxhci1jaGFpbnMtdGVzdC1rZXktbm90LWEtc2VjcmV0",
    );
    let azurite = Azurite::start(account, key);
    let endpoint = format!("http://127.0.0.1:{}/{account}", azurite.port);
    storage_helper(&["blob-create", &endpoint, account, key, "chains"]);
    let ran = run_chains(
        vec![chain_sub("blob", 2, 1024, 1, true)],
        serde_json::json!({}),
        &[
            ("STELLAR_CHAIN_STORAGE", "azure-blob"),
            ("STELLAR_CHAIN_BLOB_CONTAINER", "chains"),
            ("STELLAR_CHAIN_BLOB_ENDPOINT", &endpoint),
            ("AZURE_STORAGE_ACCOUNT", account),
            ("AZURE_STORAGE_KEY", "d3Jvbmcta2V5"),
        ],
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    let latencies = read_latencies(ran.sub_dir("00-").join("latencies.csv")).unwrap();
    assert_eq!(latencies[0].error_kind, "http-status");
    assert!(
        latencies[0].error.contains("chain hop 0 -> 1"),
        "{}",
        latencies[0].error
    );
    assert!(
        latencies[0].error.contains("HTTP 403"),
        "{}",
        latencies[0].error
    );
}
