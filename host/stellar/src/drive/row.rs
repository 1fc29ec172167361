//! Turns one request's outcome into a result row. A failed request is data: it gets a row with
//! its error kind, never a crash and never a silent drop.

use std::time::Instant;

use stellar_config::PlannedBurst;
use stellar_measure::MeasurementResponse;
use stellar_results::{ErrorKind, LatencyRow};

use super::RunClock;
use super::client::{Exchange, RequestFailure};

/// Longest error text kept in a row.
const MAX_ERROR_TEXT: usize = 300;

pub(super) struct Sent<'a> {
    pub(super) slug: &'a str,
    pub(super) burst: &'a PlannedBurst,
    pub(super) request_index: u64,
    pub(super) host: &'a str,
    pub(super) planned_ms: f64,
    pub(super) sent: Instant,
    pub(super) clock: &'a RunClock,
    pub(super) expect_measurement: bool,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(super) fn build(s: Sent<'_>, outcome: Result<Exchange, RequestFailure>) -> LatencyRow {
    let actual_ms = s.clock.ms_since_start(s.sent);
    let mut row = LatencyRow {
        request_id: String::new(),
        host: s.host.to_owned(),
        sent_at: s.clock.wall_label(s.sent),
        received_at: String::new(),
        client_latency_ms: None,
        burst_id: s.burst.burst_id,
        sub_experiment: s.slug.to_owned(),
        endpoint: s.burst.endpoint,
        burst_size: s.burst.size,
        request_index: s.request_index,
        planned_send_ms: s.planned_ms,
        actual_send_ms: actual_ms,
        send_lag_ms: actual_ms - s.planned_ms,
        connect_ms: None,
        time_to_headers_ms: None,
        http_status: None,
        error_kind: String::new(),
        error: String::new(),
        instance_id: String::new(),
        cold: None,
        function_spin_ms: None,
        invocations_on_instance: None,
        provider_init_ms: None,
        response_bytes: 0,
        provider_cold: None,
        cold_label: None,
        cold_source: String::new(),
        cold_kind: String::new(),
        retry_after_s: None,
        segment: 0,
        ready_gap_ms: None,
        in_flight_at_receipt: None,
        first_in_flight: None,
        process_nonce: String::new(),
        platform_instance: String::new(),
        boot_id: String::new(),
        boot_time_unix_s: None,
        init_type: String::new(),
        provider_label: String::new(),
        start_label: String::new(),
        label_signal: String::new(),
    };
    let exchange = match outcome {
        Ok(x) => x,
        Err(failure) => {
            row.error_kind = failure.kind().as_str().to_owned();
            row.error = truncate(&failure.to_string());
            return row;
        }
    };
    row.received_at = s.clock.wall_label(s.sent + exchange.to_headers);
    row.client_latency_ms = Some(ms(exchange.to_headers));
    row.connect_ms = exchange.connect.map(ms);
    row.time_to_headers_ms = Some(ms(exchange.after_connect_to_headers));
    row.http_status = Some(exchange.status);
    row.response_bytes = exchange.body_len;
    row.provider_init_ms = header(&exchange, "x-stellar-init-ms").and_then(|v| v.parse().ok());
    row.provider_cold = header(&exchange, "x-stellar-cold-start").and_then(|v| v.parse().ok());
    if let Some(id) = header(&exchange, "x-stellar-instance-id") {
        row.instance_id = id.to_owned();
    }
    if let Some(label) = header(&exchange, "x-stellar-start-label") {
        row.provider_label = truncate(label);
    }
    if let Some(code) = exchange.grpc_status {
        row.error_kind = if code == tonic::Code::ResourceExhausted {
            ErrorKind::Throttled
        } else {
            ErrorKind::GrpcStatus
        }
        .as_str()
        .to_owned();
        row.error = truncate(&format!(
            "gRPC status {} {:?}: {}",
            code as i32,
            code,
            String::from_utf8_lossy(&exchange.body)
        ));
        return row;
    }
    if exchange.status != 200 {
        let kind = if is_throttling(&exchange) {
            row.retry_after_s = header(&exchange, "retry-after").and_then(retry_after_seconds);
            ErrorKind::Throttled
        } else {
            ErrorKind::HttpStatus
        };
        row.error_kind = kind.as_str().to_owned();
        row.error = truncate(&format!(
            "HTTP {}: {}",
            exchange.status,
            String::from_utf8_lossy(&exchange.body)
        ));
        return row;
    }
    if s.expect_measurement {
        match serde_json::from_slice::<MeasurementResponse>(&exchange.body) {
            Ok(reply) => {
                receipt_signals(&mut row, &reply);
                row.request_id = reply.request_id;
                row.instance_id = reply.instance_id;
                row.cold = Some(reply.cold);
                row.function_spin_ms = Some(reply.spin_ns as f64 / 1e6);
                row.invocations_on_instance = Some(reply.invocations_on_instance);
            }
            Err(e) => {
                row.error_kind = ErrorKind::BadResponse.as_str().to_owned();
                row.error = truncate(&format!("reply is not measurement-function JSON: {e}"));
            }
        }
    }
    row
}

/// The function's receipt signals (see `stellar_results::labels`). The ready gap subtracts
/// two readings of the function's own clock; nothing is compared with this machine's clock.
fn receipt_signals(row: &mut LatencyRow, reply: &MeasurementResponse) {
    row.ready_gap_ms = reply
        .ready_unix_ns
        .map(|ready| (reply.handler_received_unix_ns as f64 - ready as f64) / 1e6);
    row.in_flight_at_receipt = reply.in_flight_at_receipt;
    row.first_in_flight = reply.first_in_flight;
    let text = |v: &Option<String>| v.as_deref().map(truncate).unwrap_or_default();
    row.process_nonce = text(&reply.process_nonce);
    row.platform_instance = text(&reply.platform_instance_id);
    row.boot_id = text(&reply.runtime.boot_id);
    row.boot_time_unix_s = reply.runtime.boot_time_unix_s;
    row.init_type = text(&reply.runtime.init_type);
}

/// Error codes with which providers refuse a request for rate or concurrency limits when they
/// answer 503 rather than 429 (AWS `x-amzn-ErrorType`, Alibaba FC and Google error bodies).
const THROTTLING_CODES: [&str; 5] = [
    "TooManyRequestsException",
    "ThrottlingException",
    "ResourceThrottled",
    "ResourceExhausted",
    "RESOURCE_EXHAUSTED",
];

/// HTTP 429, or a 503 whose `x-amzn-ErrorType` header or body names a throttling code.
fn is_throttling(x: &Exchange) -> bool {
    match x.status {
        429 => true,
        503 => {
            let error_type = header(x, "x-amzn-errortype").unwrap_or_default();
            let body = String::from_utf8_lossy(&x.body);
            THROTTLING_CODES
                .iter()
                .any(|code| error_type.starts_with(code) || body.contains(code))
        }
        _ => false,
    }
}

/// `Retry-After` in seconds: delay-seconds, or an HTTP date taken relative to now (a clock
/// reading of this machine, so only as right as its clock).
fn retry_after_seconds(value: &str) -> Option<f64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds as f64);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = std::time::SystemTime::now();
    Some(at.duration_since(now).map_or(0.0, |d| d.as_secs_f64()))
}

fn header<'a>(x: &'a Exchange, name: &str) -> Option<&'a str> {
    x.headers.get(name).and_then(|v| v.to_str().ok())
}

fn truncate(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.len() <= MAX_ERROR_TEXT {
        return s;
    }
    let mut cut = MAX_ERROR_TEXT;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn reply(status: u16, headers: &[(&'static str, &str)], body: &str) -> LatencyRow {
        reply_with(status, headers, body, None)
    }

    fn reply_with(
        status: u16,
        headers: &[(&'static str, &str)],
        body: &str,
        grpc_status: Option<tonic::Code>,
    ) -> LatencyRow {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        let exchange = Exchange {
            connect: None,
            to_headers: Duration::from_millis(5),
            after_connect_to_headers: Duration::from_millis(5),
            to_end: Duration::from_millis(6),
            status,
            headers: map,
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
            body_len: body.len() as u64,
            grpc_status,
        };
        let burst = PlannedBurst {
            burst_id: 0,
            endpoint: 0,
            round: 0,
            size: 1,
            offset_ms: 0.0,
            spin_ms: 0.0,
            increment_limit: None,
        };
        let clock = RunClock::start_now();
        build(
            Sent {
                slug: "s",
                burst: &burst,
                request_index: 0,
                host: "h",
                planned_ms: 0.0,
                sent: Instant::now(),
                clock: &clock,
                expect_measurement: true,
            },
            Ok(exchange),
        )
    }

    #[test]
    fn a_grpc_status_is_an_error_row_naming_the_code() {
        let row = reply_with(200, &[], "no spin today", Some(tonic::Code::Unavailable));
        assert_eq!(row.error_kind, "grpc-status");
        assert_eq!(row.error, "gRPC status 14 Unavailable: no spin today");
        assert!(row.client_latency_ms.is_some());
        let row = reply_with(200, &[], "slow down", Some(tonic::Code::ResourceExhausted));
        assert_eq!(row.error_kind, "throttled");
    }

    #[test]
    fn throttling_is_its_own_kind_with_retry_after() {
        let row = reply(429, &[("retry-after", "7")], "Rate Exceeded.");
        assert_eq!(row.error_kind, "throttled");
        assert_eq!(row.retry_after_s, Some(7.0));
        assert_eq!(row.http_status, Some(429));
        // A date in the past counts as "now".
        let row = reply(429, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], "");
        assert_eq!(row.retry_after_s, Some(0.0));
        let row = reply(429, &[("retry-after", "soon")], "");
        assert_eq!(
            (row.error_kind.as_str(), row.retry_after_s),
            ("throttled", None)
        );
    }

    #[test]
    fn receipt_signals_and_the_provider_label_are_kept() {
        let body = serde_json::json!({
            "RequestID": "r", "TimestampChain": ["3000000"], "instance_id": "i", "cold": true,
            "invocations_on_instance": 1, "instance_start_unix_ns": 1000000,
            "handler_received_unix_ns": 3000000, "handler_done_unix_ns": 3000001, "spin_ns": 0,
            "spin_requested_ms": 0.0, "increments": 0, "payload_length_bytes": 0,
            "runtime": {"provider": "local", "region": null, "memory_mb": null, "arch": "x",
                        "cpu_model": null, "boot_id": "b", "hostname": null, "pid": 1,
                        "num_cpus": 1, "boot_time_unix_s": 17, "init_type": "on-demand"},
            "ready_unix_ns": 2500000, "process_nonce": "n1", "platform_instance_id": "slot-2",
            "in_flight_at_receipt": 0, "first_in_flight": false
        });
        let row = reply(
            200,
            &[("x-stellar-start-label", "cold-natural")],
            &body.to_string(),
        );
        assert_eq!(row.error_kind, "");
        assert_eq!(row.ready_gap_ms, Some(0.5));
        assert_eq!(row.provider_label, "cold-natural");
        assert_eq!(row.process_nonce, "n1");
        assert_eq!(row.platform_instance, "slot-2");
        assert_eq!(row.boot_id, "b");
        assert_eq!(row.boot_time_unix_s, Some(17));
        assert_eq!(row.init_type, "on-demand");
        assert_eq!(
            (row.in_flight_at_receipt, row.first_in_flight),
            (Some(0), Some(false))
        );
    }

    #[test]
    fn a_503_is_throttling_only_when_it_says_so() {
        let lambda = reply(
            503,
            &[(
                "x-amzn-errortype",
                "TooManyRequestsException:http://internal",
            )],
            "",
        );
        assert_eq!(lambda.error_kind, "throttled");
        let fc = reply(503, &[], r#"{"Code":"ResourceThrottled","Message":"..."}"#);
        assert_eq!(fc.error_kind, "throttled");
        let plain = reply(503, &[("retry-after", "3")], "Service Unavailable");
        assert_eq!(plain.error_kind, "http-status");
        assert_eq!(plain.retry_after_s, None);
        assert_eq!(
            reply(500, &[], "ResourceThrottled").error_kind,
            "http-status"
        );
    }
}
