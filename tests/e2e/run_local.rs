//! `stellar run` on the local provider, checked from the files it writes: the row count equals
//! the plan, cold rows are exactly the requests that started an instance, latencies are
//! positive and ordered with the send times, and the CSV headers are STeLLAR's plus ours.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::support::{only_subdir, repo};
use stellar_config::Plan;
use stellar_results::{LatencyRow, read_latencies};

#[derive(Debug, serde::Deserialize)]
struct InstanceRow {
    #[serde(rename = "Instance ID")]
    instance_id: String,
    #[serde(rename = "Requests Served")]
    requests_served: u64,
}

#[test]
fn quickstart_on_the_local_provider() {
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .current_dir(repo())
        .env("STELLAR_CACHE_DIR", cache.path())
        .args(["run", "experiments/quickstart.json", "--quiet", "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    eprintln!("quickstart wall time {:?}\n{stdout}", started.elapsed());

    let run_dir = only_subdir(out.path());
    assert!(stdout.contains(&run_dir.display().to_string()), "{stdout}");
    assert!(stdout.contains("p99"), "{stdout}");
    assert!(run_dir.join("run.log").is_file());
    assert!(run_dir.join("resources.jsonl").is_file());
    let plan: Plan =
        serde_json::from_str(&fs_err::read_to_string(run_dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan.seed, 42);

    let golden_header = fs_err::read_to_string(
        repo().join("host/stellar-results/tests/golden/latencies.header.csv"),
    )
    .unwrap();
    let mut saw_cold = 0;
    let mut saw_warm = 0;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for sub in &plan.sub_experiments {
        let dir = run_dir.join(&sub.slug);
        let csv_path = dir.join("latencies.csv");
        let text = fs_err::read_to_string(&csv_path).unwrap();
        assert_eq!(text.lines().next(), golden_header.lines().next());
        assert!(
            text.starts_with("Request ID,Host,Sent At,Received At,Client Latency (ms),Burst ID,")
        );
        let rows: Vec<LatencyRow> = read_latencies(&csv_path).unwrap();
        assert_eq!(rows.len() as u64, sub.total_requests(), "{}", sub.slug);
        for r in &rows {
            assert!(r.is_ok(), "{r:?}");
            let latency = r.client_latency_ms.unwrap();
            assert!(latency > 0.0, "{r:?}");
            assert!(r.actual_send_ms >= r.planned_send_ms - 1e-6, "{r:?}");
            assert!(r.received_at >= r.sent_at, "{r:?}");
            assert!(r.time_to_headers_ms.unwrap() <= latency + 1e-6);
            assert!(!r.instance_id.is_empty());
            assert!(!r.request_id.is_empty());
        }
        // Request indices cover the plan exactly once.
        let indices: BTreeSet<u64> = rows.iter().map(|r| r.request_index).collect();
        assert_eq!(indices.len(), rows.len());

        // Ground truth: the runtime's instance records.
        let mut reader = csv::Reader::from_path(dir.join("instances.csv")).unwrap();
        let instances: Vec<InstanceRow> = reader.deserialize().map(Result::unwrap).collect();
        let served: BTreeMap<&str, u64> = instances
            .iter()
            .map(|i| (i.instance_id.as_str(), i.requests_served))
            .collect();
        // The final label comes from the function (ground truth here) on every row.
        let cold_rows: Vec<&LatencyRow> =
            rows.iter().filter(|r| r.cold_label == Some(true)).collect();
        for r in &rows {
            assert_eq!(r.cold_source, "function", "{r:?}");
            assert_eq!(r.cold_label, r.cold, "{r:?}");
            // The gateway's own signal agrees with the function on every row.
            assert_eq!(r.provider_cold, r.cold, "{r:?}");
            match r.cold_label {
                Some(true) => *kinds.entry(r.cold_kind.clone()).or_default() += 1,
                _ => assert_eq!(r.cold_kind, "", "{r:?}"),
            }
        }
        // Every instance that served requests was started by exactly one request, and that
        // request is the one the function flagged cold; the gateway agrees (init time).
        let started: BTreeSet<&str> = instances
            .iter()
            .filter(|i| i.requests_served > 0)
            .map(|i| i.instance_id.as_str())
            .collect();
        let cold_ids: Vec<&str> = cold_rows.iter().map(|r| r.instance_id.as_str()).collect();
        assert_eq!(cold_ids.len(), started.len(), "{}", sub.slug);
        assert_eq!(cold_ids.iter().copied().collect::<BTreeSet<_>>(), started);
        for r in &rows {
            assert_eq!(r.cold == Some(true), r.provider_init_ms.is_some(), "{r:?}");
            assert!(served.contains_key(r.instance_id.as_str()), "{r:?}");
        }
        let per_instance = rows.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.instance_id.as_str()).or_insert(0u64) += 1;
            m
        });
        assert_eq!(
            per_instance,
            served.into_iter().filter(|(_, n)| *n > 0).collect()
        );
        saw_cold += cold_rows.len();
        saw_warm += rows.iter().filter(|r| r.cold == Some(false)).count();

        for file in [
            "statistics.csv",
            "analysis.json",
            "empirical_CDF.png",
            "empirical_CDF.svg",
            "bursts_characterization.png",
            "histograms.png",
            "send_lag.png",
        ] {
            assert!(dir.join(file).is_file(), "{}: {file}", sub.slug);
        }
    }
    assert!(
        saw_cold >= 3 && saw_warm >= 10,
        "cold {saw_cold}, warm {saw_warm}"
    );
    // The run has both kinds of cold start: after idle (the cold bursts, the first request of
    // each sub-experiment) and scale-out (the `scale-out` sub-experiment's bursts of 4 that
    // find one warm instance).
    assert!(kinds.get("natural").copied().unwrap_or(0) >= 3, "{kinds:?}");
    assert!(
        kinds.get("scale-out").copied().unwrap_or(0) >= 3,
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    let scale_out_dir = run_dir.join(&plan.sub_experiments[2].slug);
    let scale_out_rows = read_latencies(scale_out_dir.join("latencies.csv")).unwrap();
    assert!(
        scale_out_rows.iter().any(|r| r.cold_kind == "scale-out"),
        "scale-out sub-experiment has no scale-out cold start"
    );

    // The run-level report and analysis.
    let report = fs_err::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(report.contains("data:image/png;base64,"));
    let analysis: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(run_dir.join("analysis.json")).unwrap())
            .unwrap();
    assert_eq!(
        analysis["sub_experiments"].as_array().map(Vec::len),
        Some(plan.sub_experiments.len())
    );
}

#[test]
fn bad_experiment_file_names_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    fs_err::write(
        &path,
        r#"{"Provider": "local", "SubExperiments": [{"Title": "x", "Bursts": 1, "BurstSizes": [1], "DesiredServiceTimes": ["0ms"], "IATType": "gaussian"}]}"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .args(["run", "--quiet"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.json"), "{stderr}");
    assert!(stderr.contains("SubExperiments[0].IATType"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn dry_run_prints_the_plan_and_deploys_nothing() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .current_dir(repo())
        .args(["run", "experiments/quickstart.json", "--dry-run", "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("seed 42"), "{stdout}");
    assert!(
        stdout.contains("00-warm: 20 bursts, 20 requests"),
        "{stdout}"
    );
    assert_eq!(fs_err::read_dir(out.path()).unwrap().count(), 0);
}
