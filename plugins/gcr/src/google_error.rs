//! Google API errors → the WIT `provider-error` variants.
//!
//! Google's REST APIs answer a failed call with `{"error": {"code": <HTTP status>, "message",
//! "status": <google.rpc.Code name>, "details": [...]}}` (AIP-193), and a failed long-running
//! operation carries a `google.rpc.Status` (`{"code": <numeric google.rpc.Code>, "message"}`,
//! googleapis `google/rpc/status.proto`, codes from `google/rpc/code.proto`). The canonical code
//! decides the variant where it is known (it says more than the HTTP status: 429
//! RESOURCE_EXHAUSTED is a rate limit, 400 FAILED_PRECONDITION no bad request); the HTTP status
//! is the fallback.

use serde_json::Value;
use stellar_guest_sdk::ProviderError;
use stellar_guest_sdk::errors::{self, CodedError};
use stellar_guest_sdk::http::Response;

/// A Google API failure: the SDK's [`CodedError`] with the canonical status name as code.
pub(crate) type GoogleError = CodedError;

/// The canonical name of numeric `google.rpc.Code` `code`.
pub(crate) fn code_name(code: i64) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// The provider-error variant for canonical status `status` (may be empty) and HTTP status
/// `http` (0 when there was none, as for an operation's error).
pub(crate) fn classify(http: u16, status: &str, message: String) -> ProviderError {
    match status {
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => ProviderError::Unauthorized(message),
        "NOT_FOUND" => ProviderError::NotFound(message),
        "RESOURCE_EXHAUSTED" if http == 429 => ProviderError::Throttled(message),
        "RESOURCE_EXHAUSTED" => ProviderError::Quota(message),
        "INVALID_ARGUMENT" | "ALREADY_EXISTS" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            ProviderError::Invalid(message)
        }
        "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" | "ABORTED" => {
            ProviderError::Transient(message)
        }
        _ if http == 0 => ProviderError::Other(message),
        _ => errors::for_status(http, message),
    }
}

/// Turns a non-2xx response into a [`GoogleError`]; the message reads
/// `<request line>: HTTP <status>: <STATUS>: <Google's message>`.
pub(crate) fn from_response(response: &Response) -> GoogleError {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let error = body.as_ref().and_then(|b| b.get("error"));
    let status = error
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| errors::body_message(&response.body))
        .unwrap_or_else(|| "(empty body)".to_string());
    let shown = if status.is_empty() {
        message.clone()
    } else {
        format!("{status}: {message}")
    };
    let full = format!("{}: HTTP {}: {shown}", response.request, response.status);
    GoogleError {
        error: classify(response.status, &status, full),
        code: status,
        message,
    }
}

/// The provider error for a finished operation's `error` (a `google.rpc.Status`), prefixed
/// with what was being done.
pub(crate) fn from_status(what: &str, status: &Value) -> ProviderError {
    let code = status.get("code").and_then(Value::as_i64).unwrap_or(2);
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("(no message)");
    let name = code_name(code);
    classify(0, name, format!("{what} failed: {name}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            request: "POST https://run.googleapis.com/v2/projects/p/locations/r/services".into(),
        }
    }

    #[test]
    fn canonical_statuses_decide_the_variant() {
        let e = from_response(&response(
            404,
            r#"{"error":{"code":404,"message":"Location moon1 is not found","status":"NOT_FOUND"}}"#,
        ));
        assert_eq!(e.code, "NOT_FOUND");
        assert!(
            matches!(&e.error, ProviderError::NotFound(m) if m.ends_with("HTTP 404: NOT_FOUND: Location moon1 is not found")),
            "{e:?}"
        );
        let kind = |status: u16, name: &str| {
            let body = json!({"error": {"code": status, "message": "m", "status": name}});
            from_response(&response(status, &body.to_string())).error
        };
        assert!(matches!(
            kind(403, "PERMISSION_DENIED"),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            kind(401, "UNAUTHENTICATED"),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            kind(429, "RESOURCE_EXHAUSTED"),
            ProviderError::Throttled(_)
        ));
        assert!(matches!(
            kind(400, "RESOURCE_EXHAUSTED"),
            ProviderError::Quota(_)
        ));
        assert!(matches!(
            kind(409, "ALREADY_EXISTS"),
            ProviderError::Invalid(_)
        ));
        assert!(matches!(
            kind(400, "FAILED_PRECONDITION"),
            ProviderError::Invalid(_)
        ));
        assert!(matches!(
            kind(503, "UNAVAILABLE"),
            ProviderError::Transient(_)
        ));
        assert!(matches!(kind(502, ""), ProviderError::Transient(_)));
        let html = from_response(&response(502, "<html>Bad Gateway</html>"));
        assert!(html.is_retryable() && html.code.is_empty(), "{html:?}");
    }

    #[test]
    fn operation_errors_use_numeric_codes() {
        let e = from_status(
            "creating service `st-a`",
            &json!({"code": 9, "message": "Revision 'st-a-00001' is not ready"}),
        );
        assert_eq!(
            e,
            ProviderError::Invalid(
                "creating service `st-a` failed: FAILED_PRECONDITION: Revision 'st-a-00001' is \
                 not ready"
                    .into()
            )
        );
        assert!(matches!(
            from_status("x", &json!({"code": 7})),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            from_status("x", &json!({"code": 99})),
            ProviderError::Other(_)
        ));
    }
}
