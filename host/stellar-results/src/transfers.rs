//! `data-transfers.csv`: one row per request and chain hop of a data-transfer experiment, and
//! the transfer-time-versus-payload summary its plot draws.
//!
//! Why a file of its own: `latencies.csv` has one row per request (the client's view of the
//! whole chain); a chain of N functions has N-1 transfers per request, each timed by the two
//! functions involved. Which clock each number comes from is part of the schema:
//! - `Transfer (ms)`: built from durations only, each measured on one function's monotonic
//!   clock, so no two clocks' readings are ever subtracted. Inline: the sender's round trip
//!   (start of the request to the successor's reply headers) minus what the successor did
//!   after the payload's last byte arrived (its own successors, building the reply):
//!   connection, request, payload and reply headers on the wire.
//!   Storage: the sender's upload plus the receiver's download.
//! - `Wall Transfer (ms)`: the receiver's wall-clock end of receipt minus the sender's
//!   wall-clock start: spans two clocks, and `Wall Spans Two Clocks` says so unless both
//!   functions reported the same boot id (one kernel, one clock).
//! - `Client Latency (ms)`: the driver's end-to-end latency of the whole chain (client clock).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, ResultsError};
use crate::uncertainty::{BootstrapConfig, Interval, bootstrap_percentile_cis};

/// File name of the per-hop CSV.
pub const TRANSFERS_CSV: &str = "data-transfers.csv";

/// `Transfer Method` of inline hops.
pub const METHOD_ROUND_TRIP: &str = "round-trip-minus-receiver-after-payload";
/// `Transfer Method` of storage hops.
pub const METHOD_UPLOAD_DOWNLOAD: &str = "upload+download";

/// The header line, in column order.
pub const TRANSFER_HEADERS: [&str; 21] = [
    "Request ID",
    "Sub-experiment",
    "Endpoint",
    "Request Index",
    "Hop",
    "From Instance",
    "To Instance",
    "Transfer",
    "Payload Bytes",
    "Bytes Received",
    "Hash OK",
    "Transfer (ms)",
    "Transfer Method",
    "Send (ms)",
    "Receive (ms)",
    "Wall Transfer (ms)",
    "Wall Spans Two Clocks",
    "Receiver Cold",
    "Successor Init (ms)",
    "Client Latency (ms)",
    "Error",
];

/// One hop of one request (or, for a failed request, one row with `Error` and no hop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRow {
    /// The chain request's id.
    #[serde(rename = "Request ID")]
    pub request_id: String,
    /// The sub-experiment's slug.
    #[serde(rename = "Sub-experiment")]
    pub sub_experiment: String,
    /// Endpoint (chain) index.
    #[serde(rename = "Endpoint")]
    pub endpoint: u32,
    /// Request index within the sub-experiment (as in `latencies.csv`).
    #[serde(rename = "Request Index")]
    pub request_index: u64,
    /// The sending hop k of the transfer k -> k+1; empty on an error row.
    #[serde(rename = "Hop")]
    pub hop: Option<u32>,
    /// Sender's instance id.
    #[serde(rename = "From Instance")]
    pub from_instance: String,
    /// Receiver's instance id.
    #[serde(rename = "To Instance")]
    pub to_instance: String,
    /// `inline`, `s3` or `azure-blob`.
    #[serde(rename = "Transfer")]
    pub transfer: String,
    /// Payload length the producer generated.
    #[serde(rename = "Payload Bytes")]
    pub payload_bytes: u64,
    /// Bytes the receiver got.
    #[serde(rename = "Bytes Received")]
    pub bytes_received: Option<u64>,
    /// The receiver's SHA-256 and length equal the sender's.
    #[serde(rename = "Hash OK")]
    pub hash_ok: Option<bool>,
    /// Transfer time from one-clock durations (see the module docs).
    #[serde(rename = "Transfer (ms)")]
    pub transfer_ms: Option<f64>,
    /// How `Transfer (ms)` was computed.
    #[serde(rename = "Transfer Method")]
    pub transfer_method: String,
    /// Sender's clock: until the last payload byte was handed over (inline) or the upload
    /// was acknowledged (storage).
    #[serde(rename = "Send (ms)")]
    pub send_ms: Option<f64>,
    /// Receiver's clock: reading the body (inline) or the download (storage).
    #[serde(rename = "Receive (ms)")]
    pub receive_ms: Option<f64>,
    /// Receiver's wall-clock end minus sender's wall-clock start.
    #[serde(rename = "Wall Transfer (ms)")]
    pub wall_transfer_ms: Option<f64>,
    /// `Wall Transfer (ms)` subtracts readings of two different clocks.
    #[serde(rename = "Wall Spans Two Clocks")]
    pub wall_spans_two_clocks: Option<bool>,
    /// The receiver served its first request (its cold start may be inside the transfer).
    #[serde(rename = "Receiver Cold")]
    pub receiver_cold: Option<bool>,
    /// The front end's cold-start time of the receiver, when it reports one.
    #[serde(rename = "Successor Init (ms)")]
    pub successor_init_ms: Option<f64>,
    /// The driver's end-to-end latency of the whole chain request.
    #[serde(rename = "Client Latency (ms)")]
    pub client_latency_ms: Option<f64>,
    /// Why the request failed (names the hop), empty if it did not.
    #[serde(rename = "Error")]
    pub error: String,
}

impl TransferRow {
    /// Whether this is a measured hop (not an error row) whose payload arrived intact.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.error.is_empty() && self.hash_ok == Some(true)
    }
}

/// Streams rows to `data-transfers.csv`, flushing after each.
#[derive(Debug)]
pub struct TransferWriter {
    path: PathBuf,
    csv: csv::Writer<fs_err::File>,
}

impl TransferWriter {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = fs_err::File::create(&path).map_err(|e| ResultsError::io(&path, "create", e))?;
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        csv.write_record(TRANSFER_HEADERS)
            .map_err(|e| ResultsError::csv(&path, e))?;
        csv.flush()
            .map_err(|e| ResultsError::io(&path, "write", e))?;
        Ok(Self { path, csv })
    }

    /// Continues `path` (after a resume): opens it for appending, writing the header
    /// only if the file is new or empty.
    pub fn append(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let fresh = fs_err::metadata(&path).map_or(true, |m| m.len() == 0);
        if fresh {
            return Self::create(path);
        }
        let file = fs_err::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| ResultsError::io(&path, "open", e))?;
        let csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        Ok(Self { path, csv })
    }

    /// Writes and flushes one row.
    pub fn write(&mut self, row: &TransferRow) -> Result<()> {
        self.csv
            .serialize(row)
            .map_err(|e| ResultsError::csv(&self.path, e))?;
        self.csv
            .flush()
            .map_err(|e| ResultsError::io(&self.path, "write", e))
    }
}

/// Reads `data-transfers.csv` back.
pub fn read_transfers(path: impl AsRef<Path>) -> Result<Vec<TransferRow>> {
    let path = path.as_ref();
    let file = fs_err::File::open(path).map_err(|e| ResultsError::io(path, "open", e))?;
    let mut reader = csv::Reader::from_reader(file);
    let headers = reader
        .headers()
        .map_err(|e| ResultsError::csv(path, e))?
        .clone();
    if headers.iter().ne(TRANSFER_HEADERS) {
        return Err(ResultsError::Header {
            path: path.to_path_buf(),
            expected: TRANSFER_HEADERS.join(","),
            found: headers.iter().collect::<Vec<_>>().join(","),
        });
    }
    reader
        .deserialize()
        .map(|r| r.map_err(|e| ResultsError::csv(path, e)))
        .collect()
}

/// One point of the transfer-time-versus-payload plot.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferPoint {
    /// `inline`, `s3`, `azure-blob`.
    pub transfer: String,
    /// Payload length.
    pub payload_bytes: u64,
    /// Hops measured (warm receivers, payload intact).
    pub n: usize,
    /// Median `Transfer (ms)`.
    pub median_ms: f64,
    /// 95 % percentile-bootstrap interval of the median.
    pub ci: Option<Interval>,
}

/// Median transfer time with a bootstrap CI per transfer kind and payload size, from hops
/// whose payload arrived intact and whose receiver was warm (a cold receiver's start-up would
/// be inside an inline round trip). Sorted by transfer kind, then payload.
#[must_use]
pub fn transfer_points(rows: &[TransferRow], seed: u64) -> Vec<TransferPoint> {
    let mut groups: std::collections::BTreeMap<(String, u64), Vec<f64>> = Default::default();
    for row in rows
        .iter()
        .filter(|r| r.is_ok() && r.receiver_cold != Some(true))
    {
        if let Some(ms) = row.transfer_ms.filter(|v| v.is_finite()) {
            groups
                .entry((row.transfer.clone(), row.payload_bytes))
                .or_default()
                .push(ms);
        }
    }
    groups
        .into_iter()
        .filter_map(|((transfer, payload_bytes), samples)| {
            let median = crate::stats::quantile(&samples, 0.5)?;
            let ci = bootstrap_percentile_cis(&samples, &[0.5], &BootstrapConfig::new(seed))
                .into_iter()
                .next()
                .flatten();
            Some(TransferPoint {
                transfer,
                payload_bytes,
                n: samples.len(),
                median_ms: median,
                ci,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn hop_row(transfer: &str, payload: u64, ms: f64) -> TransferRow {
        TransferRow {
            request_id: "r".into(),
            sub_experiment: "00-x".into(),
            endpoint: 0,
            request_index: 0,
            hop: Some(0),
            from_instance: "a".into(),
            to_instance: "b".into(),
            transfer: transfer.into(),
            payload_bytes: payload,
            bytes_received: Some(payload),
            hash_ok: Some(true),
            transfer_ms: Some(ms),
            transfer_method: METHOD_ROUND_TRIP.into(),
            send_ms: Some(ms / 2.0),
            receive_ms: Some(ms / 2.0),
            wall_transfer_ms: Some(ms),
            wall_spans_two_clocks: Some(false),
            receiver_cold: Some(false),
            successor_init_ms: None,
            client_latency_ms: Some(ms * 3.0),
            error: String::new(),
        }
    }

    #[test]
    fn rows_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TRANSFERS_CSV);
        let mut w = TransferWriter::create(&path).unwrap();
        let ok = hop_row("inline", 1024, 1.5);
        let failed = TransferRow {
            hop: None,
            hash_ok: None,
            transfer_ms: None,
            error: "chain hop 1 -> 2 (http://x): connecting: refused".into(),
            ..hop_row("inline", 1024, 0.0)
        };
        w.write(&ok).unwrap();
        w.write(&failed).unwrap();
        drop(w);
        let mut a = TransferWriter::append(&path).unwrap();
        a.write(&ok).unwrap();
        drop(a);
        let back = read_transfers(&path).unwrap();
        assert_eq!(back, vec![ok.clone(), failed, ok]);
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(text.starts_with(&TRANSFER_HEADERS.join(",")));
        assert_eq!(text.lines().count(), 4, "one header");
    }

    #[test]
    fn points_use_intact_warm_hops_only() {
        let mut rows = vec![
            hop_row("inline", 1024, 1.0),
            hop_row("inline", 1024, 3.0),
            hop_row("inline", 1024, 2.0),
            hop_row("s3", 1024, 10.0),
        ];
        rows.push(TransferRow {
            receiver_cold: Some(true),
            ..hop_row("inline", 1024, 500.0)
        });
        rows.push(TransferRow {
            hash_ok: Some(false),
            ..hop_row("inline", 1024, 500.0)
        });
        let points = transfer_points(&rows, 1);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].transfer, "inline");
        assert_eq!(points[0].n, 3);
        assert_eq!(points[0].median_ms, 2.0);
        let ci = points[0].ci.expect("ci");
        assert!(ci.lower <= 2.0 && ci.upper >= 2.0, "{ci:?}");
        assert_eq!(points[1].transfer, "s3");
    }

    #[test]
    fn a_foreign_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        fs_err::write(&path, "a,b\n1,2\n").unwrap();
        let err = read_transfers(&path).unwrap_err().to_string();
        assert!(err.contains("unexpected header"), "{err}");
    }
}
