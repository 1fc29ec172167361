//! Memory at scale: `stellar report` analyses a synthetic sub-experiment of 1 000 000 requests
//! (4 000 bursts of 250) and its peak resident memory stays under 80 MiB.
//!
//! Not a timing test: the bound is on memory, which the design fixes (32-byte compact rows, a
//! streamed CSV, sampled plots), whatever the machine's speed. The analysis alone peaks at
//! about 55 MiB (`cargo run -p stellar-results --example analysis_memory`); the bound leaves
//! room for the binary's own baseline (issue 15's goal for a whole run is 64 MB). Holding
//! full rows, as before, would need about half a gigabyte. The peak is the child's own
//! `VmHWM` from `/proc`, read until it exits.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stellar_config::{Plan, PlanOptions};
use stellar_results::LATENCY_HEADERS;

const BURSTS: u64 = 4_000;
const BURST_SIZE: u64 = 250;
const LIMIT_KIB: u64 = 80 * 1024;

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes the plan of 4 000 bursts of 250 and a `latencies.csv` with a row for each request:
/// burst 0 cold (~400 ms), the rest warm (5 ms plus an exponential tail), a few failures.
fn synthetic_run(dir: &Path) -> std::path::PathBuf {
    let experiment = format!(
        r#"{{ "Provider": "http://127.0.0.1:9/fn",
  "Stellar": {{ "Seed": 11, "Connection": "reuse" }},
  "SubExperiments": [ {{ "Title": "scale", "Bursts": {BURSTS}, "BurstSizes": [{BURST_SIZE}],
    "IATSeconds": 0.05, "IATType": "deterministic", "DesiredServiceTimes": ["0ms"] }} ] }}"#
    );
    let source = dir.join("scale.json");
    fs_err::write(&source, &experiment).unwrap();
    let plan = Plan::from_json_str(
        &experiment,
        &source,
        &PlanOptions {
            seed_override: None,
            only_sub_experiment: None,
            output_dir_override: None,
            now_unix_ms: 1_700_000_000_000,
        },
    )
    .unwrap();
    let run_dir = dir.join("run");
    let sub = &plan.sub_experiments[0];
    let sub_dir = run_dir.join(&sub.slug);
    fs_err::create_dir_all(&sub_dir).unwrap();
    fs_err::write(
        run_dir.join("plan.json"),
        serde_json::to_string(&plan).unwrap(),
    )
    .unwrap();
    let file = fs_err::File::create(sub_dir.join("latencies.csv")).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "{}", LATENCY_HEADERS.join(",")).unwrap();
    for burst in 0..BURSTS {
        let planned = burst as f64 * 50.0;
        for k in 0..BURST_SIZE {
            let i = burst * BURST_SIZE + k;
            let r = splitmix(i);
            let lag = (r % 900) as f64 / 1000.0;
            let cold = burst == 0;
            let latency = if cold { 400.0 } else { 5.0 } + ((r >> 16) % 10_000) as f64 / 1000.0;
            let millis = (planned + lag) as u64;
            let sent_at = format!(
                "2026-12-01T10:{:02}:{:02}.{:03}Z",
                millis / 60_000 % 60,
                millis / 1000 % 60,
                millis % 1000
            );
            if r % 1000 == 7 {
                writeln!(
                    out,
                    ",127.0.0.1,{sent_at},,,{burst},{slug},0,{BURST_SIZE},{i},{planned:.3},\
                     {:.3},{lag:.3},,,,timeout,no response within 30s,,,,,,0,,,,,,0,,,,,,,,,,,",
                    planned + lag,
                    slug = sub.slug,
                )
                .unwrap();
                continue;
            }
            writeln!(
                out,
                "req-{i},127.0.0.1,{sent_at},{sent_at},{latency:.3},{burst},{slug},0,\
                 {BURST_SIZE},{i},{planned:.3},{:.3},{lag:.3},,{latency:.3},200,,,i-{},{cold},\
                 0.000,{},,211,,,,,,0,{gap:.3},1,false,n-{k},vm-{k},,,,,,",
                planned + lag,
                k,
                burst + 1,
                gap = if cold { 0.5 } else { planned },
                slug = sub.slug,
            )
            .unwrap();
        }
    }
    out.flush().unwrap();
    run_dir
}

/// The peak resident set (`VmHWM`, KiB) of a running process, if it can still be read.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs_err::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[test]
fn a_million_request_analysis_stays_under_80_mib() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run_dir = synthetic_run(dir.path());
    eprintln!(
        "synthetic 1 000 000-row run written in {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .args(["report", run_dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "stellar report failed: {stderr}");
    eprintln!(
        "stellar report of 1 000 000 rows: peak RSS {:.1} MiB, {:?}",
        peak as f64 / 1024.0,
        started.elapsed()
    );
    assert!(peak > 0, "the child's memory was never read");
    assert!(
        peak <= LIMIT_KIB,
        "peak RSS {peak} KiB is above {LIMIT_KIB} KiB"
    );

    // Every request was analysed: 999 000 successes or so in `all`, the labels written back.
    let stats = fs_err::read_to_string(run_dir.join("00-scale/statistics.csv")).unwrap();
    let all = stats.lines().find(|l| l.ends_with(",all")).unwrap();
    let n: u64 = all.split(',').next().unwrap().parse().unwrap();
    let failures = (0..BURSTS * BURST_SIZE)
        .filter(|&i| splitmix(i) % 1000 == 7)
        .count() as u64;
    assert_eq!(n, BURSTS * BURST_SIZE - failures);
    let analysis: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(run_dir.join("00-scale/analysis.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        analysis["cold_labels"]["natural"].as_u64(),
        Some(BURST_SIZE - (0..BURST_SIZE).filter(|&i| splitmix(i) % 1000 == 7).count() as u64)
    );
    let csv = fs_err::File::open(run_dir.join("00-scale/latencies.csv")).unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(csv));
    let second = lines.nth(1).unwrap().unwrap();
    assert!(second.contains(",true,function,natural,"), "{second}");
    // The start labels went back too: the cold burst's ready gap is small, so its first
    // requests are cold starts; later requests of the same processes are warm.
    assert!(second.ends_with(",cold-natural,ready-gap"), "{second}");
    let counts = &analysis["start_labels"]["counts"];
    assert_eq!(counts["cold-natural"], analysis["cold_labels"]["natural"]);
    assert_eq!(
        counts["warm"].as_u64(),
        Some(n - counts["cold-natural"].as_u64().unwrap())
    );
}
