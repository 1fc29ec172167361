//! `instances.csv`: the local runtime's record of every instance it started, written beside the
//! latencies so cold-start labels can be checked against ground truth.

use std::path::Path;

use serde::Serialize;
use stellar_local::InstanceRecord;

#[derive(Debug, Serialize)]
pub struct InstanceRow {
    #[serde(rename = "Endpoint")]
    endpoint: usize,
    #[serde(rename = "Function")]
    function: String,
    #[serde(rename = "Instance ID")]
    instance_id: String,
    #[serde(rename = "PID")]
    pid: Option<u32>,
    #[serde(rename = "Spawned At (unix ns)")]
    spawned_at_unix_ns: u64,
    #[serde(rename = "Ready At (unix ns)")]
    ready_at_unix_ns: Option<u64>,
    #[serde(rename = "Exec To Ready (ms)")]
    exec_to_ready_ms: Option<f64>,
    #[serde(rename = "Requests Served")]
    requests_served: u64,
    #[serde(rename = "Stopped At (unix ns)")]
    stopped_at_unix_ns: Option<u64>,
    #[serde(rename = "Stop Reason")]
    stop_reason: String,
    #[serde(rename = "Spawn Error")]
    spawn_error: String,
    /// The instance slot (`Platform Instance` in latencies.csv); a restarted process keeps it.
    #[serde(rename = "Slot")]
    slot: String,
    /// Why the process started: `spawned`, `prestarted` or `restarted`.
    #[serde(rename = "Origin")]
    origin: String,
}

impl InstanceRow {
    pub fn new(endpoint: usize, function: &str, r: InstanceRecord) -> Self {
        Self {
            endpoint,
            function: function.to_owned(),
            instance_id: r.instance_id.unwrap_or_default(),
            pid: r.pid,
            spawned_at_unix_ns: r.spawned_at_unix_ns,
            ready_at_unix_ns: r.ready_at_unix_ns,
            exec_to_ready_ms: r.exec_to_ready_ms,
            requests_served: r.requests_served,
            stopped_at_unix_ns: r.stopped_at_unix_ns,
            stop_reason: r
                .stop_reason
                .map(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .unwrap_or_default(),
            spawn_error: r.spawn_error.unwrap_or_default(),
            slot: r.slot,
            origin: r.origin.as_str().to_owned(),
        }
    }
}

/// Writes `rows` to `path`; with `append`, after the rows already there (a resumed run's
/// later segment), without a second header.
pub fn write(path: &Path, rows: &[InstanceRow], append: bool) -> anyhow::Result<()> {
    let append = append && path.is_file();
    let file = fs_err::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(!append)
        .from_writer(file);
    for row in rows {
        w.serialize(row)?;
    }
    w.flush()?;
    Ok(())
}
