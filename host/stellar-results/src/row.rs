//! The per-request row of `latencies.csv`: the single definition of that file's schema.
//!
//! The same type is written while a run streams in ([`crate::writer::LatencyWriter`]) and read
//! back later ([`crate::writer::read_latencies`]), so a report re-built from the CSV alone sees
//! exactly what the run saw. STeLLAR's six columns come first, unchanged, so its plotting scripts
//! keep working; stellar's own columns follow. Times are in milliseconds, as the header says.

use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The header of `latencies.csv`, in column order. STeLLAR's columns come first.
pub const LATENCY_HEADERS: [&str; 41] = [
    "Request ID",
    "Host",
    "Sent At",
    "Received At",
    "Client Latency (ms)",
    "Burst ID",
    "Sub-experiment",
    "Endpoint",
    "Burst Size",
    "Request Index",
    "Planned Send (ms)",
    "Actual Send (ms)",
    "Send Lag (ms)",
    "Connect (ms)",
    "Time To Headers (ms)",
    "HTTP Status",
    "Error Kind",
    "Error",
    "Instance ID",
    "Cold",
    "Function Spin (ms)",
    "Invocations On Instance",
    "Provider Init (ms)",
    "Response Bytes",
    "Provider Cold",
    "Cold Label",
    "Cold Source",
    "Cold Kind",
    "Retry After (s)",
    "Segment",
    "Ready Gap (ms)",
    "In Flight At Receipt",
    "First In Flight",
    "Process Nonce",
    "Platform Instance",
    "Boot ID",
    "Boot Time (unix s)",
    "Init Type",
    "Provider Label",
    "Start Label",
    "Label Signal",
];

/// How many leading columns files written before `Retry After (s)` and `Segment` existed
/// have; [`crate::read_latencies`] accepts them, reading the missing columns as empty / 0.
pub const LATENCY_HEADERS_V1: usize = 28;

/// How many leading columns files written before the start-label columns (`Ready Gap (ms)`
/// to `Label Signal`) existed have; [`crate::read_latencies`] accepts them too, reading the
/// missing columns as empty.
pub const LATENCY_HEADERS_V2: usize = 30;

/// One request's outcome: one line of `latencies.csv`.
///
/// Failed requests are rows too (STeLLAR dropped them): `error_kind` is then one of the
/// [`ErrorKind`] names and the latency columns may be empty. Optional values are written as
/// empty fields; floats are written with three decimals (microsecond resolution).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyRow {
    /// The `RequestID` the function reported; empty when the request failed.
    #[serde(rename = "Request ID")]
    pub request_id: String,
    /// Host name of the endpoint the request went to.
    #[serde(rename = "Host")]
    pub host: String,
    /// Wall-clock send time, RFC 3339 UTC with milliseconds (see [`rfc3339_millis`]).
    #[serde(rename = "Sent At")]
    pub sent_at: String,
    /// Wall-clock time the response headers arrived, same format; empty if none arrived.
    #[serde(rename = "Received At")]
    pub received_at: String,
    /// Actual send to response headers, in ms. Includes connection set-up when a new
    /// connection was made, as STeLLAR's did. Empty when no response arrived.
    #[serde(rename = "Client Latency (ms)", serialize_with = "ms3::option")]
    pub client_latency_ms: Option<f64>,
    /// Global burst index within the sub-experiment.
    #[serde(rename = "Burst ID")]
    pub burst_id: u64,
    /// Slug of the sub-experiment.
    #[serde(rename = "Sub-experiment")]
    pub sub_experiment: String,
    /// Index of the endpoint within the sub-experiment.
    #[serde(rename = "Endpoint")]
    pub endpoint: u32,
    /// Number of requests in this request's burst.
    #[serde(rename = "Burst Size")]
    pub burst_size: u32,
    /// Index of the request within the sub-experiment.
    #[serde(rename = "Request Index")]
    pub request_index: u64,
    /// Planned send time, in ms since the run's monotonic start.
    #[serde(rename = "Planned Send (ms)", serialize_with = "ms3::value")]
    pub planned_send_ms: f64,
    /// Actual send time, in ms since the run's monotonic start.
    #[serde(rename = "Actual Send (ms)", serialize_with = "ms3::value")]
    pub actual_send_ms: f64,
    /// `actual_send_ms - planned_send_ms`.
    #[serde(rename = "Send Lag (ms)", serialize_with = "ms3::value")]
    pub send_lag_ms: f64,
    /// Connection set-up time in ms; empty when a pooled connection was reused.
    #[serde(rename = "Connect (ms)", serialize_with = "ms3::option")]
    pub connect_ms: Option<f64>,
    /// Time from an established connection to the response headers, in ms.
    #[serde(rename = "Time To Headers (ms)", serialize_with = "ms3::option")]
    pub time_to_headers_ms: Option<f64>,
    /// HTTP status code, when a response arrived.
    #[serde(rename = "HTTP Status")]
    pub http_status: Option<u16>,
    /// Empty for a success, otherwise an [`ErrorKind`] name.
    #[serde(rename = "Error Kind")]
    pub error_kind: String,
    /// Human-readable error message; empty for a success.
    #[serde(rename = "Error")]
    pub error: String,
    /// Identifier of the function instance that served the request, as it reported it.
    #[serde(rename = "Instance ID")]
    pub instance_id: String,
    /// Whether the instance was cold for this request, when known.
    #[serde(rename = "Cold")]
    pub cold: Option<bool>,
    /// Busy-spin time the function reported, in ms.
    #[serde(rename = "Function Spin (ms)", serialize_with = "ms3::option")]
    pub function_spin_ms: Option<f64>,
    /// How many requests the instance had served, including this one, as it reported.
    #[serde(rename = "Invocations On Instance")]
    pub invocations_on_instance: Option<u64>,
    /// Provider-reported initialisation time (e.g. Lambda's init duration), in ms.
    #[serde(rename = "Provider Init (ms)", serialize_with = "ms3::option")]
    pub provider_init_ms: Option<f64>,
    /// Size of the response body, in bytes.
    #[serde(rename = "Response Bytes")]
    pub response_bytes: u64,
    /// The provider's own cold-start signal, where it gives one (the local gateway's
    /// `x-stellar-cold-start` header); empty when the provider says nothing.
    #[serde(rename = "Provider Cold")]
    pub provider_cold: Option<bool>,
    /// The final cold/warm label (see [`crate::cold`]); empty for failed requests.
    #[serde(rename = "Cold Label")]
    pub cold_label: Option<bool>,
    /// Which signal the label came from: `function`, `provider` or `threshold`.
    #[serde(rename = "Cold Source")]
    pub cold_source: String,
    /// For cold starts: `natural` (the endpoint had no instance to offer), `scale-out` (a
    /// burst needed more instances than were warm) or `queued` (waited for an instance another
    /// request started).
    #[serde(rename = "Cold Kind")]
    pub cold_kind: String,
    /// For `throttled` rows: the provider's `Retry-After`, in seconds, when it sent one.
    #[serde(rename = "Retry After (s)", default, serialize_with = "ms3::option")]
    pub retry_after_s: Option<f64>,
    /// Which stretch of sending produced the row: 0 for the run as started, 1 for its first
    /// `stellar run --resume`, and so on. Instances do not survive from one segment to the
    /// next, so cold/warm state across a segment boundary is not comparable.
    #[serde(rename = "Segment", default)]
    pub segment: u32,
    /// When the function received the request minus when its process became ready to serve,
    /// in ms, both on the function's clock (see [`crate::labels`]).
    #[serde(rename = "Ready Gap (ms)", default, serialize_with = "ms3::option")]
    pub ready_gap_ms: Option<f64>,
    /// Other requests in flight on the process when the function received this one.
    #[serde(rename = "In Flight At Receipt", default)]
    pub in_flight_at_receipt: Option<u64>,
    /// The process's first request was still unanswered when the function received this one.
    #[serde(rename = "First In Flight", default)]
    pub first_in_flight: Option<bool>,
    /// The per-process nonce the function drew at its first request.
    #[serde(rename = "Process Nonce", default)]
    pub process_nonce: String,
    /// The platform's name for the instance (kept across a process restart), when it gives one.
    #[serde(rename = "Platform Instance", default)]
    pub platform_instance: String,
    /// `/proc/sys/kernel/random/boot_id` of the machine or VM the function ran on.
    #[serde(rename = "Boot ID", default)]
    pub boot_id: String,
    /// When that kernel booted (`/proc/stat` btime), Unix seconds on the function's machine.
    #[serde(rename = "Boot Time (unix s)", default)]
    pub boot_time_unix_s: Option<u64>,
    /// The platform's initialisation type where it says one (`snap-start` means restored).
    #[serde(rename = "Init Type", default)]
    pub init_type: String,
    /// The platform's own label of the request where it gives one (the local runtime's
    /// `x-stellar-start-label`): ground truth to check `Start Label` against.
    #[serde(rename = "Provider Label", default)]
    pub provider_label: String,
    /// stellar's label: `cold-natural`, `cold-scaleout`, `cold-queued`, `prewarmed`,
    /// `process-restart`, `restored` or `warm` (see [`crate::labels`]); empty for failures.
    #[serde(rename = "Start Label", default)]
    pub start_label: String,
    /// The signal that decided `Start Label` (see [`crate::labels::LabelSignal`]).
    #[serde(rename = "Label Signal", default)]
    pub label_signal: String,
}

impl LatencyRow {
    /// True when the request succeeded (its `error_kind` is empty).
    pub fn is_ok(&self) -> bool {
        self.error_kind.is_empty()
    }

    /// Whether the request was served cold: the final label when [`crate::cold::label_rows`]
    /// has run, else the function's own flag.
    pub fn is_cold(&self) -> Option<bool> {
        self.cold_label.or(self.cold)
    }

    /// The client latency of a successful request; `None` for failures and missing values.
    pub fn ok_latency_ms(&self) -> Option<f64> {
        if self.is_ok() {
            self.client_latency_ms.filter(|v| v.is_finite())
        } else {
            None
        }
    }
}

/// Why a request failed; written to the `Error Kind` column by [`ErrorKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No response within the request timeout.
    Timeout,
    /// The connection (TCP or TLS) could not be established.
    Connect,
    /// A response arrived with a status other than 200 (and not a throttling answer).
    HttpStatus,
    /// The provider refused the request for rate or concurrency limits: HTTP 429, or a 503
    /// naming a throttling error code. `Retry After (s)` holds its `Retry-After`, if any.
    Throttled,
    /// The HTTP exchange broke (malformed or cut-off response).
    Protocol,
    /// The peer aborted an open connection (TCP reset) before the response was complete.
    ConnectionReset,
    /// The response body was not what the measurement function returns.
    BadResponse,
    /// The request was cancelled, e.g. by Ctrl-C.
    Aborted,
    /// A gRPC call ended with a non-OK status (other than `RESOURCE_EXHAUSTED`, which is
    /// `throttled`); the `Error` column names the code.
    GrpcStatus,
}

impl ErrorKind {
    /// Every kind, in column-value order.
    pub const ALL: [Self; 9] = [
        Self::Timeout,
        Self::Connect,
        Self::HttpStatus,
        Self::Throttled,
        Self::Protocol,
        Self::ConnectionReset,
        Self::BadResponse,
        Self::Aborted,
        Self::GrpcStatus,
    ];

    /// The value written to the `Error Kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::HttpStatus => "http-status",
            Self::Throttled => "throttled",
            Self::Protocol => "protocol",
            Self::ConnectionReset => "connection-reset",
            Self::BadResponse => "bad-response",
            Self::Aborted => "aborted",
            Self::GrpcStatus => "grpc-status",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `Error Kind` column held a value that is not an [`ErrorKind`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error kind `{0}`")]
pub struct UnknownErrorKind(pub String);

impl FromStr for ErrorKind {
    type Err = UnknownErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownErrorKind(s.to_owned()))
    }
}

/// Formats a wall-clock time for the `Sent At` / `Received At` columns: RFC 3339, UTC,
/// millisecond precision (e.g. `2024-05-01T12:00:00.123Z`).
pub fn rfc3339_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Serde helpers that write floats with exactly three decimals.
///
/// Reading needs no helper: the standard `f64` parser accepts what these write.
pub(crate) mod ms3 {
    use serde::Serializer;

    /// Writes `v` as `{v:.3}`.
    pub(crate) fn value<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:.3}"))
    }

    /// Writes `Some(v)` as `{v:.3}` and `None` as an empty field.
    pub(crate) fn option<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(&format_args!("{v:.3}")),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn serialize(rows: &[LatencyRow]) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in rows {
            w.serialize(r).expect("serialize");
        }
        String::from_utf8(w.into_inner().expect("flush")).expect("utf8")
    }

    pub(crate) fn sample_row() -> LatencyRow {
        LatencyRow {
            request_id: "req-1".into(),
            host: "127.0.0.1".into(),
            sent_at: "2024-05-01T12:00:00.123Z".into(),
            received_at: "2024-05-01T12:00:00.170Z".into(),
            client_latency_ms: Some(47.12345),
            burst_id: 3,
            sub_experiment: "warm-iat3s".into(),
            endpoint: 1,
            burst_size: 5,
            request_index: 17,
            planned_send_ms: 3000.0,
            actual_send_ms: 3000.4567,
            send_lag_ms: 0.4567,
            connect_ms: None,
            time_to_headers_ms: Some(46.0),
            http_status: Some(200),
            error_kind: String::new(),
            error: String::new(),
            instance_id: "i-7".into(),
            cold: Some(false),
            function_spin_ms: Some(10.5),
            invocations_on_instance: Some(4),
            provider_init_ms: None,
            response_bytes: 123,
            provider_cold: None,
            cold_label: None,
            cold_source: String::new(),
            cold_kind: String::new(),
            retry_after_s: None,
            segment: 0,
            ready_gap_ms: Some(0.25),
            in_flight_at_receipt: Some(0),
            first_in_flight: Some(false),
            process_nonce: "00ff".into(),
            platform_instance: String::new(),
            boot_id: "b-1".into(),
            boot_time_unix_s: Some(1_700_000_000),
            init_type: String::new(),
            provider_label: "warm".into(),
            start_label: String::new(),
            label_signal: String::new(),
        }
    }

    #[test]
    fn serde_header_matches_the_constant() {
        let text = serialize(&[sample_row()]);
        let header = text.lines().next().expect("header line");
        assert_eq!(header, LATENCY_HEADERS.join(","));
    }

    #[test]
    fn floats_have_three_decimals_and_none_is_empty() {
        let text = serialize(&[sample_row()]);
        let data = text.lines().nth(1).expect("data line");
        assert_eq!(
            data,
            "req-1,127.0.0.1,2024-05-01T12:00:00.123Z,2024-05-01T12:00:00.170Z,47.123,3,\
             warm-iat3s,1,5,17,3000.000,3000.457,0.457,,46.000,200,,,i-7,false,10.500,4,,123,,,,,,0,\
             0.250,0,false,00ff,,b-1,1700000000,,warm,,"
        );
    }

    #[test]
    fn round_trips_through_csv() {
        let mut ok = sample_row();
        // Only three decimals survive, so start from values that have at most three.
        ok.client_latency_ms = Some(47.123);
        ok.actual_send_ms = 3000.457;
        ok.send_lag_ms = 0.457;
        let failed = LatencyRow {
            request_id: String::new(),
            client_latency_ms: None,
            http_status: None,
            error_kind: ErrorKind::Timeout.as_str().into(),
            error: "no response after 15m, \"quoted\"\nand a newline".into(),
            cold: None,
            ..ok.clone()
        };
        let text = serialize(&[ok.clone(), failed.clone()]);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<LatencyRow> = r.deserialize().collect::<Result<_, _>>().expect("parse");
        assert_eq!(back, vec![ok, failed]);
    }

    #[test]
    fn is_ok_follows_error_kind() {
        let ok = sample_row();
        assert!(ok.is_ok());
        assert_eq!(ok.ok_latency_ms(), Some(47.12345));
        let failed = LatencyRow {
            error_kind: "connect".into(),
            ..sample_row()
        };
        assert!(!failed.is_ok());
        assert_eq!(failed.ok_latency_ms(), None);
    }

    #[test]
    fn error_kinds_round_trip_through_their_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(kind));
        }
        assert_eq!(
            "nope".parse::<ErrorKind>(),
            Err(UnknownErrorKind("nope".into()))
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_714_564_800_123);
        assert_eq!(rfc3339_millis(t), "2024-05-01T12:00:00.123Z");
    }
}
