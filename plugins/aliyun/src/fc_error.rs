//! Function Compute error responses → the WIT `provider-error` variants.
//!
//! FC 3.0 answers a failed call with a JSON body `{"Code": ..., "Message": ..., "RequestId":
//! ...}` (the shape `alibabacloud_tea_openapi`'s `do_request` reads: `Code`/`code`,
//! `Message`/`message`, `RequestId`/`requestId`). The code decides the variant where it is
//! known, because it says more than the status (a quota is not a bad request, and no retry will
//! fix a signature); the status is the fallback.

use serde_json::Value;
use stellar_guest_sdk::ProviderError;
use stellar_guest_sdk::errors::CodedError;
use stellar_guest_sdk::http::Response;

/// An FC API failure: the SDK's [`CodedError`] with this cloud's code.
pub(crate) type FcError = CodedError;

/// Turns a non-2xx response into an [`FcError`]; the message reads
/// `<request line>: HTTP <status>: <Code>: <FC message> (request id <id>)`.
pub(crate) fn from_response(response: &Response) -> FcError {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let field = |keys: &[&str]| {
        body.as_ref().and_then(|b| {
            keys.iter()
                .find_map(|k| b.get(k).and_then(Value::as_str))
                .map(str::to_string)
        })
    };
    let code = field(&["Code", "code", "ErrorCode"]).unwrap_or_default();
    let message = field(&["Message", "message", "ErrorMessage"])
        .or_else(|| stellar_guest_sdk::errors::body_message(&response.body))
        .unwrap_or_else(|| "(empty body)".to_string());
    let request_id = field(&["RequestId", "requestId"])
        .or_else(|| response.header("x-acs-request-id").map(str::to_string));
    let mut shown = if code.is_empty() {
        message.clone()
    } else {
        format!("{code}: {message}")
    };
    if let Some(id) = request_id {
        shown.push_str(&format!(" (request id {id})"));
    }
    let full = format!("{}: HTTP {}: {shown}", response.request, response.status);
    FcError {
        error: classify(response.status, &code, full),
        code,
        message,
    }
}

/// The provider-error variant for FC error `code` (may be empty) and HTTP `status`.
pub(crate) fn classify(status: u16, code: &str, message: String) -> ProviderError {
    let c = code;
    if c.starts_with("Signature")
        || matches!(
            c,
            "InvalidAccessKeyId"
                | "InvalidAccessKeyId.NotFound"
                | "InvalidSecurityToken"
                | "InvalidSecurityToken.Expired"
                | "AccessDenied"
                | "Forbidden"
                | "IncompleteSignature"
                | "InvalidTimeStamp.Expired"
        )
    {
        return ProviderError::Unauthorized(message);
    }
    if c.ends_with("NotFound") {
        return ProviderError::NotFound(message);
    }
    if c.contains("Quota") || c.contains("LimitExceeded") || c == "ResourceExhausted" {
        return ProviderError::Quota(message);
    }
    if c.starts_with("Throttling") || c == "TooManyRequests" || c == "ResourceThrottled" {
        return ProviderError::Throttled(message);
    }
    if c.ends_with("AlreadyExists") || c == "InvalidArgument" || c.starts_with("MissingRequired") {
        return ProviderError::Invalid(message);
    }
    if matches!(
        c,
        "ConcurrentUpdateError" | "ServiceUnavailable" | "InternalServerError"
    ) {
        return ProviderError::Transient(message);
    }
    stellar_guest_sdk::errors::for_status(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            request: "GET http://127.0.0.1:1/2023-03-30/functions/st-f".to_string(),
        }
    }

    #[test]
    fn codes_decide_the_variant() {
        let m = || "m".to_string();
        assert_eq!(
            classify(400, "SignatureDoesNotMatch", m()),
            ProviderError::Unauthorized(m())
        );
        assert_eq!(
            classify(403, "InvalidAccessKeyId.NotFound", m()),
            ProviderError::Unauthorized(m())
        );
        assert_eq!(
            classify(404, "FunctionNotFound", m()),
            ProviderError::NotFound(m())
        );
        assert_eq!(
            classify(400, "FunctionQuotaExceeded", m()),
            ProviderError::Quota(m())
        );
        assert_eq!(
            classify(429, "ResourceExhausted", m()),
            ProviderError::Quota(m())
        );
        assert_eq!(
            classify(429, "TooManyRequests", m()),
            ProviderError::Throttled(m())
        );
        assert_eq!(
            classify(400, "Throttling.User", m()),
            ProviderError::Throttled(m())
        );
        assert_eq!(
            classify(409, "FunctionAlreadyExists", m()),
            ProviderError::Invalid(m())
        );
        assert_eq!(
            classify(409, "ConcurrentUpdateError", m()),
            ProviderError::Transient(m())
        );
        assert_eq!(classify(503, "", m()), ProviderError::Transient(m()));
        assert_eq!(classify(418, "Teapot", m()), ProviderError::Other(m()));
    }

    #[test]
    fn the_message_keeps_code_words_and_request_id() {
        let err = from_response(&response(
            404,
            r#"{"Code":"FunctionNotFound","Message":"function 'st-f' does not exist","RequestId":"1-2-3"}"#,
        ));
        assert_eq!(err.code, "FunctionNotFound");
        assert!(err.is_not_found());
        assert_eq!(
            ProviderError::from(err),
            ProviderError::NotFound(
                "GET http://127.0.0.1:1/2023-03-30/functions/st-f: HTTP 404: FunctionNotFound: \
                 function 'st-f' does not exist (request id 1-2-3)"
                    .to_string()
            )
        );
        let err = from_response(&response(502, "bad gateway"));
        assert!(err.is_retryable());
        assert_eq!(err.message, "bad gateway");
    }
}
