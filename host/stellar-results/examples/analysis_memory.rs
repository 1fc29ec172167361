//! Peak memory of analysing a large `latencies.csv` the way `stellar` does: compact rows,
//! labels written back in a streaming pass, statistics with bootstrap CIs, fidelity, and plots
//! from a sample. Prints numbers; it asserts nothing.
//!
//! `cargo run -p stellar-results --example analysis_memory -- [ROWS]` (default 1 000 000:
//! bursts of 250, 50 ms apart). Linux only (reads `VmHWM` from `/proc/self/status`).
#![allow(
    clippy::print_stdout,
    reason = "an example that prints its measurements"
)]

use std::io::Write;
use std::time::Instant;

use stellar_results::cold::label_rows;
use stellar_results::fidelity::{FidelityConfig, IatModel, check_rows};
use stellar_results::plot::{PlotInput, write_all_plots};
use stellar_results::uncertainty::grouped_latency_stats;
use stellar_results::{
    CompactRow, LATENCY_HEADERS, LatencyWriter, for_each_latency, read_compact,
    write_sub_experiment_outputs,
};

fn peak_mib() -> f64 {
    let status = fs_err::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("latencies.csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, fs_err::File::create(&csv)?);
    writeln!(out, "{}", LATENCY_HEADERS.join(","))?;
    for i in 0..rows {
        let burst = i / 250;
        let planned = burst as f64 * 50.0;
        let lag = (i % 7) as f64 * 0.1;
        let latency = 5.0 + (i % 1000) as f64 / 100.0 + if burst == 0 { 400.0 } else { 0.0 };
        writeln!(
            out,
            "req-{i},127.0.0.1,2026-12-01T10:00:00.000Z,2026-12-01T10:00:00.005Z,{latency:.3},\
             {burst},00-scale,0,250,{i},{planned:.3},{:.3},{lag:.3},,{latency:.3},200,,,i-{},\
             {},0.000,1,,211,,,,,,0",
            planned + lag,
            i % 250,
            burst == 0,
        )?;
    }
    out.flush()?;
    drop(out);
    println!("{rows} rows written; peak so far {:.1} MiB", peak_mib());

    let started = Instant::now();
    let compact = read_compact(&csv)?;
    let mut rows = compact.rows;
    println!(
        "read: {:.1} MiB peak ({:.1} s)",
        peak_mib(),
        started.elapsed().as_secs_f64()
    );
    let labels = label_rows(&mut rows, 300.0);
    let tmp = csv.with_extension("csv.tmp");
    let mut writer = LatencyWriter::create_buffered(&tmp)?;
    let mut labelled = rows.iter();
    for_each_latency(&csv, |mut row| {
        if let Some(c) = labelled.next() {
            c.copy_labels_into(&mut row);
        }
        writer.write(&row)
    })?;
    writer.finish()?;
    println!(
        "labelled ({} natural cold starts) and rewritten: {:.1} MiB peak",
        labels.natural,
        peak_mib()
    );
    write_sub_experiment_outputs(dir.path(), "scale", &rows)?;
    let stats = grouped_latency_stats(&rows, 1);
    println!(
        "statistics ({} groups, bootstrap CIs): {:.1} MiB peak ({:.1} s)",
        stats.len(),
        peak_mib(),
        started.elapsed().as_secs_f64()
    );
    let model = IatModel::from_stellar("deterministic", 0.05)?;
    let fidelity = check_rows(&rows, &model, &FidelityConfig::default())?;
    println!(
        "fidelity (send lag p99 {:.2} ms): {:.1} MiB peak",
        fidelity.send_lag.p99_ms,
        peak_mib()
    );
    let step = rows.len().div_ceil(50_000).max(1);
    let sample: Vec<CompactRow> = rows.iter().step_by(step).copied().collect();
    write_all_plots(dir.path(), &PlotInput::new("scale", &sample))?;
    println!(
        "plots: {:.1} MiB peak; total {:.1} s",
        peak_mib(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
