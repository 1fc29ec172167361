//! Turns one request's outcome into a result row. A failed request is data: it gets a row with
//! its error kind, never a crash and never a silent drop.

use std::time::Instant;

use stellar_config::PlannedBurst;
use stellar_measure::MeasurementResponse;
use stellar_results::LatencyRow;

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
    };
    let exchange = match outcome {
        Ok(x) => x,
        Err(failure) => {
            row.error_kind = failure.kind().to_owned();
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
    if exchange.status != 200 {
        row.error_kind = "http-status".into();
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
                row.request_id = reply.request_id;
                row.instance_id = reply.instance_id;
                row.cold = Some(reply.cold);
                row.function_spin_ms = Some(reply.spin_ns as f64 / 1e6);
                row.invocations_on_instance = Some(reply.invocations_on_instance);
            }
            Err(e) => {
                row.error_kind = "bad-response".into();
                row.error = truncate(&format!("reply is not measurement-function JSON: {e}"));
            }
        }
    }
    row
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
