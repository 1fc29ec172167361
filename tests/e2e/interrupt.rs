//! Interrupted runs on the local provider: `kill -9` mid-run and `stellar run --resume`
//! completes the plan with exactly the planned rows and no request twice; a resume refuses a
//! changed experiment file unless forced; SIGTERM and Ctrl-C stop sending, tear down and leave
//! valid files (exit 2); a second signal quits at once and the rows on disk still parse.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use stellar_results::{LatencyRow, read_latencies};

const BURSTS: u64 = 80;
const BURST_SIZE: u64 = 2;

/// 80 bursts of 2, 50 ms apart, on two endpoints: about 4 s of sending.
fn experiment(dir: &Path) -> PathBuf {
    let path = dir.join("long.json");
    fs_err::write(
        &path,
        format!(
            r#"{{
  "Provider": "local",
  "Stellar": {{ "Seed": 11, "Connection": "reuse" }},
  "SubExperiments": [
    {{ "Title": "steady", "Bursts": {BURSTS}, "BurstSizes": [{BURST_SIZE}], "IATSeconds": 0.05,
       "IATType": "deterministic", "DesiredServiceTimes": ["1ms"], "Parallelism": 2 }}
  ]
}}"#
        ),
    )
    .unwrap();
    path
}

fn stellar(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stellar"));
    cmd.current_dir(dir);
    cmd
}

fn start(dir: &Path, experiment: &Path) -> Child {
    stellar(dir)
        .args(["run", "--quiet", "-o", "results"])
        .arg(experiment)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The run directory and its CSV, once the CSV has at least `rows` data lines.
fn wait_for_rows(dir: &Path, rows: usize) -> (PathBuf, PathBuf) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(run_dir) = fs_err::read_dir(dir.join("results"))
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
        {
            let csv = run_dir.join("00-steady/latencies.csv");
            let lines = fs_err::read_to_string(&csv).map_or(0, |t| t.lines().count());
            if lines > rows {
                return (run_dir, csv);
            }
        }
        assert!(Instant::now() < deadline, "the run wrote no rows in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn work_dirs(run_dir: &Path) -> usize {
    fs_err::read_dir(run_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".work-")
        })
        .count()
}

fn indices(rows: &[LatencyRow]) -> BTreeSet<u64> {
    rows.iter().map(|r| r.request_index).collect()
}

#[test]
fn kill_9_then_resume_completes_the_plan_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = experiment(dir.path());
    let mut child = start(dir.path(), &experiment);
    let (run_dir, csv) = wait_for_rows(dir.path(), 30);
    child.kill().unwrap(); // SIGKILL: no teardown, no analysis
    let killed_at = Instant::now();
    finish(child);
    let before = read_latencies(&csv).expect("every row on disk parses after kill -9");
    assert!(!before.is_empty() && (before.len() as u64) < BURSTS * BURST_SIZE);
    assert!(
        work_dirs(&run_dir) == 1,
        "the killed run's scratch directory is in its run directory"
    );
    // A crash in the middle of a write leaves half a row: the resume must drop it.
    let mut torn = fs_err::read_to_string(&csv).unwrap();
    torn.push_str("torn-request,127.0.0.1,2026-12-01T10:00");
    fs_err::write(&csv, torn).unwrap();

    let output = stellar(dir.path())
        .args(["run", "--quiet", "--resume"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let after = read_latencies(&csv).unwrap();
    assert_eq!(work_dirs(&run_dir), 0, "scratch directories are gone");
    assert_eq!(after.len() as u64, BURSTS * BURST_SIZE, "exactly the plan");
    assert_eq!(
        indices(&after),
        (0..BURSTS * BURST_SIZE).collect(),
        "every request once"
    );
    let ids: BTreeSet<&str> = after.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids.len(), after.len(), "request ids stay unique");
    assert!(after.iter().all(|r| r.is_ok()), "{}", text(&output));
    // The rows from before the crash are kept as they were, in segment 0.
    for row in &before {
        let kept = after
            .iter()
            .find(|r| r.request_index == row.request_index)
            .unwrap();
        assert_eq!((kept.segment, &kept.request_id), (0, &row.request_id));
    }
    let resumed: Vec<_> = after.iter().filter(|r| r.segment == 1).collect();
    assert_eq!(resumed.len(), after.len() - before.len());
    // The resumed schedule keeps the plan's positions: its first send is planned where the
    // first missing burst was, and lags it by no more than on a fresh run.
    let first_missing = resumed
        .iter()
        .map(|r| r.planned_send_ms)
        .fold(f64::INFINITY, f64::min);
    let last_before = before.iter().map(|r| r.planned_send_ms).fold(0.0, f64::max);
    assert!(
        first_missing >= last_before - 1e-6,
        "{first_missing} < {last_before}"
    );
    assert!(resumed.iter().all(|r| r.send_lag_ms < 250.0));
    // The first request on every new instance is cold: instances do not survive a resume.
    assert!(resumed.iter().any(|r| r.cold == Some(true)));

    let analysis: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(run_dir.join("analysis.json")).unwrap())
            .unwrap();
    let warnings = analysis["sub_experiments"][0]["warnings"].to_string();
    assert!(warnings.contains("resumed:"), "{warnings}");
    assert!(warnings.contains("not comparable"), "{warnings}");
    let report = fs_err::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(report.contains("segment 1"));
    let manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(manifest["segments"].as_array().unwrap().len(), 2);
    eprintln!(
        "resume: {} rows before kill -9, {} after; resumed {:?} after the kill; {}",
        before.len(),
        after.len(),
        killed_at.elapsed(),
        warnings
    );

    // Nothing left: a second resume says so and changes nothing.
    let again = stellar(dir.path())
        .args(["run", "--resume"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    assert_eq!(read_latencies(&csv).unwrap(), after);
}

#[test]
fn a_changed_experiment_file_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = experiment(dir.path());
    let mut child = start(dir.path(), &experiment);
    let (run_dir, _) = wait_for_rows(dir.path(), 4);
    child.kill().unwrap();
    finish(child);
    let mut changed = fs_err::read_to_string(&experiment).unwrap();
    changed.push('\n');
    fs_err::write(&experiment, changed).unwrap();
    let refused = stellar(dir.path())
        .args(["run", "--resume"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("changed since the run started") && stderr.contains("--force"),
        "{stderr}"
    );
    let forced = stellar(dir.path())
        .args(["run", "--quiet", "--force", "--resume"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", text(&forced));
    let manifest = fs_err::read_to_string(run_dir.join("run.json")).unwrap();
    assert!(manifest.contains("forced_past"), "{manifest}");
}

/// SIGTERM or Ctrl-C: stop sending, finish in flight, tear down, write every file, exit 2.
fn stops_cleanly_on(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let experiment = experiment(dir.path());
    let child = start(dir.path(), &experiment);
    let (run_dir, csv) = wait_for_rows(dir.path(), 10);
    signal(&child, name);
    let output = finish(child);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let rows = read_latencies(&csv).unwrap();
    assert!((rows.len() as u64) < BURSTS * BURST_SIZE, "sending stopped");
    assert_eq!(indices(&rows).len(), rows.len());
    assert!(run_dir.join("report.html").is_file(), "{}", text(&output));
    let journal = fs_err::read_to_string(run_dir.join("resources.jsonl")).unwrap();
    assert_eq!(
        journal.matches("\"created\"").count(),
        journal.matches("\"removed\"").count(),
        "every function torn down:\n{journal}"
    );
}

#[test]
fn sigterm_stops_cleanly() {
    stops_cleanly_on("TERM");
}

#[test]
fn ctrl_c_stops_cleanly() {
    stops_cleanly_on("INT");
}

#[test]
fn a_second_signal_quits_at_once_and_the_rows_still_parse() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = experiment(dir.path());
    let child = start(dir.path(), &experiment);
    let (_, csv) = wait_for_rows(dir.path(), 10);
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(5));
    signal(&child, "TERM");
    let output = finish(child);
    assert!(
        matches!(output.status.code(), Some(143) | Some(2)),
        "{}",
        text(&output)
    );
    assert!(!read_latencies(&csv).unwrap().is_empty());
}
