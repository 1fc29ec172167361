//! Start labels against ground truth: `stellar run` on the local provider with its
//! platform-like behaviours switched on (always-ready instances, instance concurrency with
//! queued requests, crashed processes restarted in place, idle retention). The runtime says
//! how it served every request (`x-stellar-start-label`, the `Provider Label` column) from its
//! own bookkeeping; stellar's `Start Label` comes from the function's receipt signals alone.
//! Every test checks that the two agree on every row, that `Cold Label` is true exactly for the
//! `cold-*` labels, and that `instances.csv` tells the same story.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stellar_results::labels::StartLabel;
use stellar_results::{LatencyRow, read_latencies};

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<_> = fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries
}

/// One sub-experiment's rows in request order and its `instances.csv` records.
type SubResults = (Vec<LatencyRow>, Vec<BTreeMap<String, String>>);

/// One finished run: per sub-experiment, its rows and instances.
struct Ran {
    output: Output,
    subs: Vec<SubResults>,
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

    fn labels(&self, sub: usize) -> Vec<&str> {
        self.subs[sub]
            .0
            .iter()
            .map(|r| r.start_label.as_str())
            .collect()
    }

    /// Every row agrees with the runtime's own label and `Cold Label` follows the label; every
    /// row's instance is in `instances.csv` with the origin its label implies.
    fn check_against_ground_truth(&self) {
        for (rows, instances) in &self.subs {
            for r in rows.iter().filter(|r| r.is_ok()) {
                assert_eq!(
                    r.start_label,
                    r.provider_label,
                    "label differs from the runtime's on {r:#?}\n{}",
                    self.log()
                );
                let label: StartLabel = r.start_label.parse().unwrap();
                assert_eq!(r.cold_label, Some(label.is_cold()), "{r:?}");
                let record = instances
                    .iter()
                    .find(|i| i["Instance ID"] == r.instance_id)
                    .unwrap_or_else(|| panic!("{} not in instances.csv", r.instance_id));
                assert_eq!(record["Slot"], r.platform_instance, "{r:?}");
                let origin = record["Origin"].as_str();
                match label {
                    StartLabel::Prewarmed => assert_eq!(origin, "prestarted", "{r:?}"),
                    StartLabel::ProcessRestart => assert_eq!(origin, "restarted", "{r:?}"),
                    StartLabel::ColdNatural | StartLabel::ColdScaleout | StartLabel::ColdQueued => {
                        assert_eq!(origin, "spawned", "{r:?}");
                    }
                    StartLabel::Warm | StartLabel::Restored => {}
                }
            }
        }
    }
}

/// Runs `subs` (STeLLAR sub-experiment objects) on the local provider with `stellar` settings.
fn run(stellar: serde_json::Value, subs: serde_json::Value) -> Ran {
    let out = tempfile::tempdir().unwrap();
    let experiment = out.path().join("labels.json");
    let mut settings = serde_json::json!({"Seed": 11, "MaxFailures": 1000});
    for (k, v) in stellar.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let file = serde_json::json!({
        "Sequential": true,
        "Provider": "local",
        "Stellar": settings,
        "SubExperiments": subs,
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
    let run_dirs = subdirs(&results);
    assert_eq!(
        run_dirs.len(),
        1,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = run_dirs[0].clone();
    let subs = subdirs(&run_dir)
        .into_iter()
        .map(|dir| {
            let mut rows = read_latencies(dir.join("latencies.csv")).unwrap();
            rows.sort_by_key(|r| r.request_index);
            let instances = csv::Reader::from_path(dir.join("instances.csv"))
                .unwrap()
                .deserialize()
                .map(Result::unwrap)
                .collect();
            (rows, instances)
        })
        .collect();
    Ran {
        output,
        subs,
        run_dir,
        _out: out,
    }
}

fn sub(title: &str, bursts: u32, sizes: &[u32], iat_s: f64, service: &str) -> serde_json::Value {
    serde_json::json!({
        "Title": title,
        "Bursts": bursts,
        "BurstSizes": sizes,
        "IATSeconds": iat_s,
        "IATType": "deterministic",
        "DesiredServiceTimes": [service],
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

#[test]
fn always_ready_instances_serve_their_first_requests_prewarmed() {
    // Two always-ready instances per function, every start slowed to 2.5 s. The first
    // sub-experiment's first request arrives while its always-ready instances are still
    // starting (so it starts its own: cold-natural); the second sub-experiment runs after the
    // first, seconds after its always-ready instances became ready.
    let ran = run(
        serde_json::json!({
            "PrewarmGapMs": 500,
            "Local": {"KeepAliveSeconds": 60, "MinInstances": 2, "FaultReadyDelayMs": 2500},
        }),
        serde_json::json!([
            sub("filler", 2, &[1], 4.0, "1ms"),
            sub("prewarmed", 2, &[3], 3.5, "1ms"),
        ]),
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    ran.check_against_ground_truth();
    assert_eq!(ran.labels(0), ["cold-natural", "warm"], "{}", ran.log());
    let labels = ran.labels(1);
    let count = |l: &str| labels.iter().filter(|x| **x == l).count();
    assert_eq!(
        (count("prewarmed"), count("cold-scaleout"), count("warm")),
        (2, 1, 3),
        "{labels:?}"
    );
    // The function called both prewarmed requests first of their process; the label knows
    // better, and their latency is warm-like, far below the slowed cold start.
    let rows = &ran.subs[1].0;
    let latency = |l: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r.start_label == l)
            .filter_map(LatencyRow::ok_latency_ms)
            .collect()
    };
    assert!(
        rows.iter()
            .filter(|r| r.start_label == "prewarmed")
            .all(|r| r.cold == Some(true) && r.ready_gap_ms.unwrap() > 500.0)
    );
    let (prewarmed, cold) = (latency("prewarmed"), latency("cold-scaleout"));
    assert!(
        prewarmed.iter().all(|&l| l < 1000.0) && cold.iter().all(|&l| l >= 2500.0),
        "prewarmed {prewarmed:?}, cold {cold:?}"
    );
    let analysis: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(ran.run_dir.join("analysis.json")).unwrap())
            .unwrap();
    let subs = analysis["sub_experiments"].as_array().unwrap();
    assert_eq!(subs[1]["start_labels"]["counts"]["prewarmed"], 2);
    assert_eq!(subs[1]["start_labels"]["first_request_not_cold"], 2);
    assert_eq!(subs[1]["start_labels"]["provider_disagree"], 0);
    let groups: Vec<&str> = subs[1]["statistics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert!(groups.contains(&"label-prewarmed"), "{groups:?}");
    eprintln!(
        "prewarmed median {:.2} ms, cold-scaleout median {:.2} ms, warm median {:.2} ms",
        median(prewarmed),
        median(cold),
        median(latency("warm"))
    );
}

#[test]
fn requests_queued_behind_a_starting_instance_are_cold_queued() {
    // Instance concurrency 4 and a burst of 8 at zero instances: two instances start, three
    // requests wait behind each; the next burst is warm.
    let ran = run(
        serde_json::json!({
            "QueuedGapMs": 150,
            "Local": {"KeepAliveSeconds": 60, "InstanceConcurrency": 4},
        }),
        serde_json::json!([sub("queued", 2, &[8], 1.0, "150ms")]),
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    ran.check_against_ground_truth();
    let labels = ran.labels(0);
    let count = |l: &str| labels.iter().filter(|x| **x == l).count();
    assert_eq!(
        (count("cold-natural"), count("cold-queued"), count("warm")),
        (2, 6, 8),
        "{labels:?}"
    );
    let rows = &ran.subs[0].0;
    for r in rows.iter().filter(|r| r.start_label == "cold-queued") {
        // Not the first of its process, so the function's flag alone calls it warm.
        assert_eq!(r.cold, Some(false), "{r:?}");
        assert_eq!(r.first_in_flight, Some(true), "{r:?}");
        assert_eq!(r.cold_kind, "queued", "{r:?}");
    }
}

#[test]
fn a_crashed_process_restarted_in_its_slot_serves_a_process_restart() {
    // Every third request crashes its process; the runtime restarts it in the same slot.
    let ran = run(
        serde_json::json!({
            "Local": {"KeepAliveSeconds": 60, "RestartOnCrash": true,
                      "FaultQuery": "Fault=crash&FaultEvery=3"},
        }),
        serde_json::json!([sub("restart", 6, &[1], 0.4, "1ms")]),
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    ran.check_against_ground_truth();
    assert_eq!(
        ran.labels(0),
        ["cold-natural", "warm", "", "process-restart", "warm", ""],
        "{}",
        ran.log()
    );
    let rows = &ran.subs[0].0;
    assert_eq!(rows[3].platform_instance, rows[0].platform_instance);
    assert_ne!(rows[3].process_nonce, rows[0].process_nonce);
    let origins: Vec<&str> = ran.subs[0].1.iter().map(|i| i["Origin"].as_str()).collect();
    assert_eq!(origins[..2], ["spawned", "restarted"], "{origins:?}");
    assert!(
        origins[1..].iter().all(|o| *o == "restarted"),
        "{origins:?}"
    );
    let slots: std::collections::BTreeSet<&str> =
        ran.subs[0].1.iter().map(|i| i["Slot"].as_str()).collect();
    assert_eq!(slots.len(), 1, "one slot, restarted in place: {slots:?}");
}

#[test]
fn natural_and_scale_out_cold_starts_as_before() {
    // Idle retention 0.3 s with a burst of 2 every second: every burst starts two instances
    // from nothing. Retention 60 s with bursts of 1 then 3: one instance is warm, two more
    // start beside it.
    let ran = run(
        serde_json::json!({"Local": {"KeepAliveSeconds": 0.3}}),
        serde_json::json!([sub("idle", 2, &[2], 1.0, "1ms")]),
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    ran.check_against_ground_truth();
    assert_eq!(ran.labels(0), ["cold-natural"; 4]);

    let ran = run(
        serde_json::json!({"Local": {"KeepAliveSeconds": 60}}),
        serde_json::json!([sub("burst", 2, &[1, 3], 0.5, "50ms")]),
    );
    assert!(ran.output.status.success(), "{}", ran.log());
    ran.check_against_ground_truth();
    let labels = ran.labels(0);
    assert_eq!(labels[0], "cold-natural");
    let mut later = labels[1..].to_vec();
    later.sort_unstable();
    assert_eq!(
        later,
        ["cold-scaleout", "cold-scaleout", "warm"],
        "{labels:?}"
    );
}
