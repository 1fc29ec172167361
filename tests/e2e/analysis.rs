//! The analysis commands on real local runs: `stellar compare` tells a real difference (two
//! service times) from noise (the same experiment twice, side by side), `stellar report` rebuilds a run's
//! report from its files alone, `--json` prints the analysis, and `report.html` renders in
//! headless Chromium with every plot visible.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stellar(args: &[&str], dir: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stellar {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A warm-only local experiment: one endpoint, 40 requests 50 ms apart, `spin` of service time.
fn experiment(dir: &Path, name: &str, spin: &str) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    let text = format!(
        r#"{{
  "Provider": "local",
  "Stellar": {{ "Seed": 7, "Connection": "reuse", "Local": {{ "KeepAliveSeconds": 30 }} }},
  "SubExperiments": [
    {{ "Title": "warm", "Bursts": 40, "BurstSizes": [1], "IATSeconds": 0.05,
       "IATType": "deterministic", "DesiredServiceTimes": ["{spin}"] }}
  ]
}}"#
    );
    fs_err::write(&path, text).unwrap();
    path
}

/// Runs `experiment` with `--json` and returns the run directory it reports.
fn run(dir: &Path, experiment: &Path) -> PathBuf {
    let output = stellar(
        &[
            "run",
            experiment.to_str().unwrap(),
            "--json",
            "-o",
            dir.join("results").to_str().unwrap(),
        ],
        dir,
    );
    let analysis: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "--json prints JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let sub = &analysis["sub_experiments"][0];
    assert_eq!(sub["statistics"][0]["group"], "all");
    assert!(sub["statistics"][0]["stats"]["p99"]["ci"]["upper"].is_number());
    assert!(sub["fidelity"]["send_lag"]["p99_ms"].is_number());
    PathBuf::from(analysis["run_dir"].as_str().unwrap())
}

fn verdict(dir: &Path, a: &Path, b: &Path) -> String {
    let json = dir.join("comparison.json");
    let output = stellar(
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "-o",
            json.to_str().unwrap(),
        ],
        dir,
    );
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    let all: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&json).unwrap()).unwrap();
    let group = &all[0]["sub_experiments"][0]["groups"][0];
    assert_eq!(group["group"], "all");
    group["comparison"]["verdict"].as_str().unwrap().to_owned()
}

#[test]
fn compare_finds_real_differences_and_not_noise() {
    let dir = tempfile::tempdir().unwrap();
    let fast = experiment(dir.path(), "fast", "5ms");
    let slow = experiment(dir.path(), "slow", "25ms");
    // The two runs of one experiment go side by side, so a busy CI machine slows both alike;
    // one after the other, a neighbouring test can make them differ beyond the 5 % threshold.
    let (fast_a, fast_b) = std::thread::scope(|s| {
        let a = s.spawn(|| run(dir.path(), &fast));
        let b = s.spawn(|| run(dir.path(), &fast));
        (a.join().unwrap(), b.join().unwrap())
    });
    let slow_a = run(dir.path(), &slow);
    assert_eq!(verdict(dir.path(), &fast_a, &slow_a), "slower");
    assert_eq!(verdict(dir.path(), &slow_a, &fast_a), "faster");
    assert_eq!(verdict(dir.path(), &fast_a, &fast_b), "within-noise");

    // `stellar report` rebuilds the report from the files alone.
    fs_err::remove_file(fast_a.join("report.html")).unwrap();
    let output = stellar(&["report", fast_a.to_str().unwrap()], dir.path());
    assert!(String::from_utf8_lossy(&output.stdout).contains("report.html"));
    let html = fs_err::read_to_string(fast_a.join("report.html")).unwrap();
    assert!(html.contains("Schedule fidelity"));
    render_in_chromium(&fast_a.join("report.html"), dir.path());
}

/// Renders the report in headless Chromium and checks that every image decoded (non-zero
/// natural width) by dumping the DOM after a script marks each image.
fn render_in_chromium(report: &Path, scratch: &Path) {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("headless Chromium is needed for this test: apt-get install chromium");
    // A copy of the report with a script that writes each image's decoded width into the DOM.
    let html = fs_err::read_to_string(report).unwrap();
    let probe = html.replace(
        "</body>",
        "<script>window.addEventListener('load',()=>{for(const i of document.images){\
         i.setAttribute('data-width',String(i.naturalWidth));}\
         document.body.setAttribute('data-images',String(document.images.length));});</script></body>",
    );
    let probe_path = scratch.join("probe.html");
    fs_err::write(&probe_path, probe).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", probe_path.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && dom.contains("data-images=\""),
        "chromium failed: {}\n{dom}",
        String::from_utf8_lossy(&output.stderr)
    );
    let images: usize = dom
        .split("data-images=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(images >= 4, "{images} images in the report");
    let widths: Vec<u32> = dom
        .split("data-width=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse().ok())
        .collect();
    assert_eq!(widths.len(), images, "every image was probed");
    assert!(
        widths.iter().all(|&w| w >= 400),
        "every plot decoded with a real width: {widths:?}"
    );
}
