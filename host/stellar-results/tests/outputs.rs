//! Integration tests of the files this crate writes: the header contracts (golden files) and a
//! whole sub-experiment written, then rebuilt from `latencies.csv` alone.

use std::path::{Path, PathBuf};

use stellar_results::plot::{ECDF_PNG, ECDF_SVG, PLOT_SIZE, PlotInput, write_all_plots};
use stellar_results::{
    LATENCIES_CSV, LATENCY_HEADERS, LatencyRow, LatencyWriter, STATISTICS_CSV, STATISTICS_HEADERS,
    read_latencies, render_table, write_sub_experiment_outputs,
};

fn golden(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", name]
        .iter()
        .collect();
    fs_err::read_to_string(path).expect("golden file")
}

fn first_line(path: &Path) -> String {
    let text = fs_err::read_to_string(path).expect("read");
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn latencies_header_matches_golden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(LATENCIES_CSV);
    LatencyWriter::create(&path)
        .expect("create")
        .finish()
        .expect("finish");
    let expected = golden("latencies.header.csv");
    assert_eq!(format!("{}\n", LATENCY_HEADERS.join(",")), expected);
    assert_eq!(format!("{}\n", first_line(&path)), expected);
    // STeLLAR's own header is a prefix, so its scripts keep working.
    assert!(
        expected.starts_with("Request ID,Host,Sent At,Received At,Client Latency (ms),Burst ID,")
    );
}

#[test]
fn statistics_header_matches_golden() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_sub_experiment_outputs(dir.path(), "t", &[] as &[LatencyRow]).expect("write");
    let expected = golden("statistics.header.csv");
    assert_eq!(format!("{}\n", STATISTICS_HEADERS.join(",")), expected);
    assert_eq!(
        format!("{}\n", first_line(&dir.path().join(STATISTICS_CSV))),
        expected
    );
    assert!(
        expected.starts_with("Count,Mean,Standard Deviation,Min,25%ile,50%ile,75%ile,95%ile,Max,")
    );
}

/// Checks the PNG signature and that the IHDR chunk holds the expected width and height.
fn assert_png(path: &Path, (w, h): (u32, u32)) {
    let bytes = fs_err::read(path).expect("png");
    assert!(bytes.len() > 33, "PNG too short");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    assert_eq!((width, height), (w, h));
    assert_eq!(
        &bytes[bytes.len() - 8..bytes.len() - 4],
        b"IEND",
        "ends with IEND"
    );
}

fn run_rows() -> Vec<LatencyRow> {
    (0u32..200)
        .map(|i| {
            let failed = i % 50 == 49;
            let cold = i % 20 == 0;
            let latency = if cold {
                400.0 + f64::from(i)
            } else {
                20.0 + f64::from(i % 17) * 1.5
            };
            LatencyRow {
                request_id: if failed {
                    String::new()
                } else {
                    format!("req-{i}")
                },
                host: "127.0.0.1".into(),
                sent_at: "2024-05-01T12:00:00.000Z".into(),
                received_at: "2024-05-01T12:00:00.050Z".into(),
                client_latency_ms: (!failed).then_some(latency),
                burst_id: u64::from(i / 4),
                sub_experiment: "warm-cold".into(),
                endpoint: 0,
                burst_size: 4,
                request_index: u64::from(i),
                planned_send_ms: f64::from(i / 4) * 3000.0,
                actual_send_ms: f64::from(i / 4) * 3000.0 + 0.5,
                send_lag_ms: 0.5,
                connect_ms: cold.then_some(3.25),
                time_to_headers_ms: (!failed).then_some(latency - 1.0),
                http_status: (!failed).then_some(200),
                error_kind: if failed {
                    "timeout".into()
                } else {
                    String::new()
                },
                error: if failed {
                    "no response".into()
                } else {
                    String::new()
                },
                instance_id: format!("i-{}", i / 20),
                cold: (!failed).then_some(cold),
                function_spin_ms: Some(0.0),
                invocations_on_instance: Some(u64::from(i % 20 + 1)),
                provider_init_ms: None,
                response_bytes: 64,
                provider_cold: None,
                cold_label: None,
                cold_source: String::new(),
                cold_kind: String::new(),
                retry_after_s: None,
                segment: 0,
                ..LatencyRow::default()
            }
        })
        .collect()
}

#[test]
fn streamed_run_then_report_from_csv_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("warm-cold");
    fs_err::create_dir_all(&sub).expect("mkdir");
    let rows = run_rows();

    // During the run: stream rows; afterwards: statistics and plots.
    let mut writer = LatencyWriter::create(sub.join(LATENCIES_CSV)).expect("create");
    for row in &rows {
        writer.write(row).expect("write");
    }
    assert_eq!(writer.finish().expect("finish"), 200);
    let title = "Warm and cold\nIAT ~3s, Burst sizes [4]";
    let live = write_sub_experiment_outputs(&sub, title, &rows).expect("outputs");
    write_all_plots(&sub, &PlotInput::new(title, &rows)).expect("plots");

    assert_eq!(live.slug, "warm-cold");
    assert_eq!(live.title, "Warm and cold");
    assert_eq!((live.requests, live.errors), (200, 4));
    assert_eq!(
        (live.cold.count, live.warm.count, live.all.count),
        (10, 186, 196)
    );
    assert_png(&sub.join(ECDF_PNG), PLOT_SIZE);
    let svg = fs_err::read_to_string(sub.join(ECDF_SVG)).expect("svg");
    assert!(svg.contains("IAT ~3s, Burst sizes [4]"));
    let stats = fs_err::read_to_string(sub.join(STATISTICS_CSV)).expect("stats");
    let subsets: Vec<&str> = stats
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap_or_default())
        .collect();
    assert_eq!(subsets, ["all", "cold", "warm"]);

    // Later (`stellar report`): everything rebuilt from latencies.csv gives the same answers.
    let reread = read_latencies(sub.join(LATENCIES_CSV)).expect("read");
    assert_eq!(reread, rows);
    let report_dir = dir.path().join("report");
    let again = write_sub_experiment_outputs(&report_dir, title, &reread).expect("again");
    assert_eq!(render_table(&[again]), render_table(&[live]));
    assert_eq!(
        fs_err::read_to_string(report_dir.join(STATISTICS_CSV)).expect("stats"),
        stats
    );
}

#[test]
fn all_failed_run_still_writes_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: Vec<LatencyRow> = run_rows()
        .into_iter()
        .map(|r| LatencyRow {
            error_kind: "connect".into(),
            client_latency_ms: None,
            ..r
        })
        .collect();
    let summary = write_sub_experiment_outputs(dir.path(), "broken", &rows).expect("outputs");
    write_all_plots(dir.path(), &PlotInput::new("broken", &rows)).expect("plots");
    assert_eq!(summary.errors, 200);
    assert_eq!(summary.all.count, 0);
    assert_png(&dir.path().join(ECDF_PNG), PLOT_SIZE);
    let stats = fs_err::read_to_string(dir.path().join(STATISTICS_CSV)).expect("stats");
    assert!(
        stats.lines().nth(1).is_some_and(|l| l == "0,,,,,,,,,,all"),
        "{stats}"
    );
}
