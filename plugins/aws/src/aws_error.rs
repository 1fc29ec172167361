//! AWS error responses → the WIT `provider-error` variants.
//!
//! Lambda names the error in the `x-amzn-ErrorType` header (`Code:http://internal...`) and
//! puts `{"Type":"User"|"Service","message":...}` in the body; other AWS JSON services (and
//! moto) put the code in `__type` (`prefix#Code`). The code decides the variant, because the
//! status alone misleads: Lambda returns 502 for `InvalidZipFileException`, which retrying
//! will never fix. The status is the fallback when there is no code.

use serde_json::Value;
use stellar_guest_sdk::ProviderError;
use stellar_guest_sdk::errors::CodedError;
use stellar_guest_sdk::http::Response;

/// An AWS API failure: the SDK's [`CodedError`] with this cloud's code.
pub(crate) type AwsError = CodedError;

/// Turns a non-2xx response into an [`AwsError`]; the message reads
/// `<request line>: HTTP <status>: <Code>: <AWS message>`.
pub(crate) fn from_response(response: &Response) -> AwsError {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let code = error_code(response.header("x-amzn-errortype"), body.as_ref());
    let fault = body
        .as_ref()
        .and_then(|b| b.get("Type"))
        .and_then(Value::as_str);
    let message = body
        .as_ref()
        .and_then(|b| {
            ["message", "Message", "errorMessage"]
                .iter()
                .find_map(|k| b.get(k).and_then(Value::as_str))
                .map(str::to_string)
        })
        .or_else(|| stellar_guest_sdk::errors::body_message(&response.body))
        .unwrap_or_else(|| "(empty body)".to_string());
    let shown = if code.is_empty() || message.contains(&code) {
        message.clone()
    } else {
        format!("{code}: {message}")
    };
    let full = format!("{}: HTTP {}: {shown}", response.request, response.status);
    AwsError {
        error: classify(response.status, &code, fault, full),
        code,
        message,
    }
}

/// The error code from the header (`Code:uri`) or the body (`__type` = `prefix#Code`,
/// `code`, `Code`); empty when there is none.
fn error_code(header: Option<&str>, body: Option<&Value>) -> String {
    let raw = header
        .map(str::to_string)
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            let body = body?;
            ["__type", "code", "Code"]
                .iter()
                .find_map(|k| body.get(k).and_then(Value::as_str))
                .map(str::to_string)
        })
        .unwrap_or_default();
    let without_uri = raw.split(':').next().unwrap_or_default();
    let code = without_uri.rsplit('#').next().unwrap_or_default();
    code.trim().to_string()
}

/// The provider-error variant for an AWS error `code` (may be empty), the body's fault side
/// (`User`/`Service`) and the HTTP `status`.
pub(crate) fn classify(
    status: u16,
    code: &str,
    fault: Option<&str>,
    message: String,
) -> ProviderError {
    let c = code;
    if matches!(
        c,
        "TooManyRequestsException"
            | "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "EC2ThrottledException"
    ) || (c.is_empty() && status == 429)
    {
        ProviderError::Throttled(message)
    } else if matches!(
        c,
        "CodeStorageExceededException" | "ServiceQuotaExceededException"
    ) || c.contains("LimitExceeded")
        || c.contains("LimitReached")
        || c.contains("QuotaExceeded")
    {
        ProviderError::Quota(message)
    } else if c.contains("AccessDenied")
        || matches!(
            c,
            "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "SignatureDoesNotMatch"
                | "ExpiredTokenException"
                | "ExpiredToken"
                | "InvalidClientTokenId"
                | "IncompleteSignature"
                | "MissingAuthenticationToken"
                | "MissingAuthenticationTokenException"
                | "AuthFailure"
                | "UnauthorizedException"
        )
        || (c.is_empty() && matches!(status, 401 | 403))
    {
        ProviderError::Unauthorized(message)
    } else if matches!(
        c,
        "ResourceNotFoundException" | "NoSuchEntity" | "NotFoundException"
    ) || (c.is_empty() && status == 404)
    {
        ProviderError::NotFound(message)
    } else if c.starts_with("Invalid")
        || matches!(
            c,
            "ValidationException"
                | "ResourceConflictException"
                | "RequestTooLargeException"
                | "UnsupportedMediaTypeException"
                | "PreconditionFailedException"
                | "CodeVerificationFailedException"
                | "CodeSigningConfigNotFoundException"
                | "PolicyLengthExceededException"
                | "MalformedPolicyDocument"
                | "EntityAlreadyExists"
        )
    {
        ProviderError::Invalid(message)
    } else if matches!(
        c,
        "ServiceException"
            | "ServiceUnavailableException"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "InternalServerError"
            | "ResourceNotReadyException"
    ) || status >= 500
        || fault == Some("Service")
    {
        ProviderError::Transient(message)
    } else {
        match status {
            400 | 409 | 412 | 413 | 415 | 422 => ProviderError::Invalid(message),
            401 | 403 => ProviderError::Unauthorized(message),
            404 => ProviderError::NotFound(message),
            429 => ProviderError::Throttled(message),
            _ => ProviderError::Other(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, header: Option<&str>, body: &str) -> Response {
        Response {
            status,
            headers: header
                .map(|h| vec![("x-amzn-errortype".to_string(), h.to_string())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
            request: "GET http://127.0.0.1:5000/2015-03-31/functions/f".to_string(),
        }
    }

    fn kind(e: &ProviderError) -> &'static str {
        match e {
            ProviderError::Unauthorized(_) => "unauthorized",
            ProviderError::NotFound(_) => "not-found",
            ProviderError::Throttled(_) => "throttled",
            ProviderError::Quota(_) => "quota",
            ProviderError::Invalid(_) => "invalid",
            ProviderError::Transient(_) => "transient",
            ProviderError::Other(_) => "other",
        }
    }

    #[test]
    fn lambda_header_and_body() {
        let e = from_response(&response(
            404,
            Some(
                "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.awslambda/",
            ),
            r#"{"Type":"User","message":"Function not found: arn:aws:lambda:us-east-1:123456789012:function:st-x"}"#,
        ));
        assert_eq!(e.code, "ResourceNotFoundException");
        assert!(e.is_not_found());
        assert_eq!(
            e.error,
            ProviderError::NotFound(
                "GET http://127.0.0.1:5000/2015-03-31/functions/f: HTTP 404: \
                 ResourceNotFoundException: Function not found: \
                 arn:aws:lambda:us-east-1:123456789012:function:st-x"
                    .to_string()
            )
        );
    }

    #[test]
    fn moto_style_type_in_body() {
        let e = from_response(&response(
            400,
            None,
            r#"{"__type":"InvalidParameterValueException","message":"The role defined for the function cannot be assumed by Lambda."}"#,
        ));
        assert_eq!(e.code, "InvalidParameterValueException");
        assert_eq!(
            e.message,
            "The role defined for the function cannot be assumed by Lambda."
        );
        assert_eq!(kind(&e.error), "invalid");
        let e = from_response(&response(
            400,
            None,
            r#"{"__type":"com.amazon.coral.validate#ValidationException","Message":"bad"}"#,
        ));
        assert_eq!(e.code, "ValidationException");
        assert!(
            matches!(&e.error, ProviderError::Invalid(m) if m.ends_with("ValidationException: bad"))
        );
    }

    #[test]
    fn codes_decide_before_status() {
        let cases = [
            ("TooManyRequestsException", 429, "throttled"),
            ("ThrottlingException", 400, "throttled"),
            ("CodeStorageExceededException", 400, "quota"),
            ("ServiceQuotaExceededException", 402, "quota"),
            ("ENILimitReachedException", 502, "quota"),
            ("AccessDeniedException", 403, "unauthorized"),
            ("UnrecognizedClientException", 403, "unauthorized"),
            ("InvalidSignatureException", 403, "unauthorized"),
            ("ExpiredTokenException", 403, "unauthorized"),
            ("KMSAccessDeniedException", 502, "unauthorized"),
            ("ResourceNotFoundException", 404, "not-found"),
            ("InvalidParameterValueException", 400, "invalid"),
            ("InvalidZipFileException", 502, "invalid"),
            ("ValidationException", 400, "invalid"),
            ("ResourceConflictException", 409, "invalid"),
            ("RequestTooLargeException", 413, "invalid"),
            ("ServiceException", 500, "transient"),
            ("ResourceNotReadyException", 502, "transient"),
            ("SomethingNew", 503, "transient"),
            ("SomethingNew", 400, "invalid"),
            ("SomethingNew", 418, "other"),
        ];
        for (code, status, want) in cases {
            let e = classify(status, code, Some("User"), "m".to_string());
            assert_eq!(kind(&e), want, "{code} {status}");
        }
    }

    #[test]
    fn status_is_the_fallback() {
        for (status, want) in [
            (401, "unauthorized"),
            (403, "unauthorized"),
            (404, "not-found"),
            (429, "throttled"),
            (400, "invalid"),
            (500, "transient"),
            (503, "transient"),
            (302, "other"),
        ] {
            let e = from_response(&response(status, None, ""));
            assert_eq!(kind(&e.error), want, "{status}");
            assert_eq!(e.code, "");
        }
        let e = from_response(&response(400, None, r#"{"Type":"Service","message":"x"}"#));
        assert_eq!(kind(&e.error), "transient");
        let e = from_response(&response(403, None, "<html>denied</html>"));
        assert!(
            matches!(&e.error, ProviderError::Unauthorized(m) if m.ends_with("HTTP 403: <html>denied</html>"))
        );
    }

    #[test]
    fn local_errors_keep_their_kind() {
        let e = AwsError::local(ProviderError::Transient("conn refused".into()));
        assert!(e.is_retryable());
        assert_eq!(e.code, "");
        assert_eq!(e.message, "conn refused");
        assert!(!AwsError::local(ProviderError::Invalid("x".into())).is_retryable());
    }
}
