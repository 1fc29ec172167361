//! Turning an HTTP error response into the WIT `provider-error` the host understands.
//!
//! The host reacts to the variant (e.g. retries `throttled` and `transient`, stops on
//! `unauthorized`), so every adapter must classify the same way. The message keeps the
//! request line and the provider's own words, so the user sees what the cloud said.

use serde_json::Value;

use crate::ProviderError;
use crate::http::Response;

/// Longest piece of a non-JSON error body quoted in a message.
const MAX_QUOTED_BODY: usize = 300;

/// The provider error for an HTTP status: 401/403 unauthorized, 404 not-found,
/// 429 throttled, 400/409/422 invalid, 5xx transient, anything else other.
pub fn for_status(status: u16, message: String) -> ProviderError {
    match status {
        401 | 403 => ProviderError::Unauthorized(message),
        404 => ProviderError::NotFound(message),
        429 => ProviderError::Throttled(message),
        400 | 409 | 422 => ProviderError::Invalid(message),
        500..=599 => ProviderError::Transient(message),
        _ => ProviderError::Other(message),
    }
}

/// The provider error named by a WIT variant name (`unauthorized`, `not-found`, `throttled`,
/// `quota`, `invalid`, `transient`, `other`), for APIs that classify errors themselves.
pub fn for_kind(kind: &str, message: String) -> Option<ProviderError> {
    Some(match kind {
        "unauthorized" => ProviderError::Unauthorized(message),
        "not-found" => ProviderError::NotFound(message),
        "throttled" => ProviderError::Throttled(message),
        "quota" => ProviderError::Quota(message),
        "invalid" => ProviderError::Invalid(message),
        "transient" => ProviderError::Transient(message),
        "other" => ProviderError::Other(message),
        _ => return None,
    })
}

/// The human part of an error body. Understands the common JSON shapes
/// (`{"error":{"code","message"}}`, `{"error":"..."}`, `{"message"}`, `{"Message"}`,
/// `{"__type","message"}`, `{"errorMessage"}`) and falls back to the start of the raw text.
pub fn body_message(body: &[u8]) -> Option<String> {
    if let Ok(json) = serde_json::from_slice::<Value>(body)
        && let Some(message) = json_message(&json)
    {
        return Some(message);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    })
}

fn json_message(json: &Value) -> Option<String> {
    let text = |v: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(k).and_then(Value::as_str))
            .map(str::to_string)
    };
    let (scope, code) = match json.get("error") {
        Some(Value::String(message)) => return Some(message.clone()),
        Some(inner @ Value::Object(_)) => (inner, text(inner, &["code", "type"])),
        _ => (
            json,
            text(json, &["__type", "code", "Code", "type", "Type"]),
        ),
    };
    let message = text(scope, &["message", "Message", "errorMessage", "detail"])?;
    Some(match code {
        Some(code) if !message.contains(&code) => format!("{code}: {message}"),
        _ => message,
    })
}

/// The provider error for a non-2xx response. An explicit `{"error":{"kind": <variant>}}`
/// wins over the status; the message is `<request line>: HTTP <status>: <body message>`.
pub fn from_response(response: &Response) -> ProviderError {
    let detail = body_message(&response.body).unwrap_or_else(|| "(empty body)".to_string());
    let message = format!("{}: HTTP {}: {detail}", response.request, response.status);
    let kind = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|v| v.pointer("/error/kind")?.as_str().map(str::to_string));
    kind.and_then(|k| for_kind(&k, message.clone()))
        .unwrap_or_else(|| for_status(response.status, message))
}

/// A cloud API failure as an adapter sees it: the provider error, plus the cloud's own error
/// code (empty when there was no answer or no code) and its message, so callers can react to
/// specific codes. Each adapter's `from_response` fills it from its cloud's error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedError {
    pub code: String,
    /// The cloud's own words (without the request line).
    pub message: String,
    pub error: ProviderError,
}

impl CodedError {
    /// A failure before any answer from the cloud (transport, host refusal, bad request).
    pub fn local(error: ProviderError) -> Self {
        let message = match &error {
            ProviderError::Unauthorized(m)
            | ProviderError::NotFound(m)
            | ProviderError::Throttled(m)
            | ProviderError::Quota(m)
            | ProviderError::Invalid(m)
            | ProviderError::Transient(m)
            | ProviderError::Other(m) => m.clone(),
        };
        Self {
            code: String::new(),
            message,
            error,
        }
    }

    /// Throttling and transient failures: worth another try.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.error,
            ProviderError::Throttled(_) | ProviderError::Transient(_)
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.error, ProviderError::NotFound(_))
    }
}

impl From<CodedError> for ProviderError {
    fn from(e: CodedError) -> Self {
        e.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            request: "GET http://127.0.0.1:1/v1/functions".to_string(),
        }
    }

    #[test]
    fn status_classes() {
        let m = || "m".to_string();
        assert_eq!(for_status(401, m()), ProviderError::Unauthorized(m()));
        assert_eq!(for_status(403, m()), ProviderError::Unauthorized(m()));
        assert_eq!(for_status(404, m()), ProviderError::NotFound(m()));
        assert_eq!(for_status(429, m()), ProviderError::Throttled(m()));
        for s in [400, 409, 422] {
            assert_eq!(for_status(s, m()), ProviderError::Invalid(m()));
        }
        for s in [500, 502, 503, 599] {
            assert_eq!(for_status(s, m()), ProviderError::Transient(m()));
        }
        for s in [301, 402, 405, 418] {
            assert_eq!(for_status(s, m()), ProviderError::Other(m()));
        }
    }

    #[test]
    fn body_shapes() {
        let cases = [
            (
                r#"{"error":{"kind":"invalid","message":"bad name"}}"#,
                "bad name",
            ),
            (
                r#"{"error":{"code":"Conflict","message":"exists"}}"#,
                "Conflict: exists",
            ),
            (r#"{"error":"nope"}"#, "nope"),
            (r#"{"message":"m1"}"#, "m1"),
            (
                r#"{"__type":"ResourceNotFoundException","Message":"Function not found"}"#,
                "ResourceNotFoundException: Function not found",
            ),
            (r#"{"errorMessage":"boom"}"#, "boom"),
            ("plain text\n", "plain text"),
            (r#"{"unrelated":1}"#, r#"{"unrelated":1}"#),
        ];
        for (body, want) in cases {
            assert_eq!(
                body_message(body.as_bytes()).as_deref(),
                Some(want),
                "{body}"
            );
        }
        assert_eq!(body_message(b"  "), None);
        let long = "x".repeat(1000);
        let quoted = body_message(long.as_bytes()).unwrap();
        assert_eq!(quoted.len(), MAX_QUOTED_BODY + 3);
    }

    #[test]
    fn explicit_kind_wins_over_status() {
        let err = from_response(&response(
            400,
            r#"{"error":{"kind":"quota","message":"too many functions"}}"#,
        ));
        assert_eq!(
            err,
            ProviderError::Quota(
                "GET http://127.0.0.1:1/v1/functions: HTTP 400: too many functions".to_string()
            )
        );
        let err = from_response(&response(
            404,
            r#"{"error":{"kind":"weird","message":"x"}}"#,
        ));
        assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
        let err = from_response(&response(503, ""));
        assert_eq!(
            err,
            ProviderError::Transient(
                "GET http://127.0.0.1:1/v1/functions: HTTP 503: (empty body)".to_string()
            )
        );
    }
}
