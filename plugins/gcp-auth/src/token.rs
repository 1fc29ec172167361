//! The OAuth token request of the service-account flow (RFC 7523 §2.1) and its answer.
//!
//! `POST token_uri` with the form `assertion=<jwt>&grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//! (the body google-auth's `_client.jwt_grant` sends); the answer is
//! `{"access_token", "expires_in", "token_type"}`, a failure `{"error", "error_description"}`
//! (RFC 6749 §5.2). [`fetch`] sends it over wasi:http with the guest SDK's bounded retries on
//! 429 and 5xx; a refused assertion is `unauthorized`, never retried.

use std::time::Duration;

use serde::Deserialize;
use stellar_guest_sdk::http::{BaseUrl, Body, Method, Request, Response};
use stellar_guest_sdk::retry::{Backoff, WasiClock, retry};
use stellar_guest_sdk::{ProviderError, errors, log};

use crate::jwt::assertion;
use crate::key::ServiceAccountKey;

/// `grant_type` of the JWT bearer flow.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Tries of the token request (first included) when the endpoint throttles or fails.
const ATTEMPTS: u32 = 5;
/// Largest token answer read (a real one is well under 4 KiB).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why no token was obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint's answer has no `access_token`")]
    NoToken,
    #[error("the token endpoint's answer is not JSON: {0}")]
    NotJson(String),
}

/// A bearer token for Google APIs. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    /// Seconds it stays valid, as the endpoint said (3599 from Google).
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Percent-encodes a form value (`application/x-www-form-urlencoded`, as Python's
/// `urllib.parse.urlencode` does: unreserved characters kept, space as `+`).
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The form body of the token request.
pub fn request_body(assertion: &str) -> String {
    format!(
        "assertion={}&grant_type={}",
        form_encode(assertion),
        form_encode(JWT_BEARER_GRANT)
    )
}

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Reads a successful token answer.
pub fn parse_answer(body: &[u8]) -> Result<AccessToken, TokenError> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| TokenError::NotJson(format!("line {} column {}", e.line(), e.column())))?;
    let token = answer
        .access_token
        .filter(|t| !t.trim().is_empty())
        .ok_or(TokenError::NoToken)?;
    Ok(AccessToken {
        token,
        expires_in: answer.expires_in,
    })
}

/// The provider error for a failed token request: an OAuth `error` (`invalid_grant`,
/// `invalid_client`, `unauthorized_client`, ...) on a 4xx other than 429 is `unauthorized`;
/// 429 throttled, 5xx transient.
pub fn error_for(response: &Response) -> ProviderError {
    let detail = errors::body_message(&response.body).unwrap_or_default();
    let oauth = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| {
            let code = v.get("error")?.as_str()?.to_string();
            let text = v
                .get("error_description")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string();
            Some(format!("{code}: {text}"))
        })
        .unwrap_or(detail);
    let message = format!(
        "{}: HTTP {}: {oauth} (the service-account key was refused or the token endpoint \
         failed)",
        response.request, response.status
    );
    match response.status {
        429 => ProviderError::Throttled(message),
        500..=599 => ProviderError::Transient(message),
        400..=499 => ProviderError::Unauthorized(message),
        _ => ProviderError::Other(message),
    }
}

/// Splits an absolute URL into its base (scheme and authority) and path.
fn split_url(url: &str) -> Result<(BaseUrl, String), ProviderError> {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (base, path) = match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, "/"),
    };
    let base =
        BaseUrl::parse(base).map_err(|e| ProviderError::Invalid(format!("token endpoint: {e}")))?;
    Ok((base, path.to_string()))
}

/// Gets an access token for `scope` from `endpoint` (the key's `token_uri`, or an override
/// such as a test server), with an assertion issued at `now` (Unix seconds).
pub fn fetch(
    key: &ServiceAccountKey,
    endpoint: &str,
    scope: &str,
    now: u64,
) -> Result<AccessToken, ProviderError> {
    let (base, path) = split_url(endpoint)?;
    let body = request_body(&assertion(key, scope, now)).into_bytes();
    let outcome = retry(
        &mut WasiClock::new(),
        Backoff::new(Duration::from_millis(250), Duration::from_secs(4)),
        ATTEMPTS,
        Duration::from_secs(60),
        || {
            let response = Request::new(Method::Post, base.scheme(), base.authority(), &path)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(Body::Bytes(body.clone()))
                .max_response_bytes(MAX_ANSWER_BYTES)
                .send()
                .map_err(ProviderError::from)?;
            if response.is_success() {
                parse_answer(&response.body)
                    .map_err(|e| ProviderError::Other(format!("{}: {e}", response.request)))
            } else {
                Err(error_for(&response))
            }
        },
        |e| {
            let again = matches!(e, ProviderError::Throttled(_) | ProviderError::Transient(_));
            if again {
                log::warn(format!("getting a Google access token: {e:?}; retrying"));
            }
            again
        },
    );
    outcome.result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            request: "POST https://oauth2.example/token".into(),
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn form_body_is_encoded_like_urlencode() {
        assert_eq!(
            request_body("a.b_c-d"),
            "assertion=a.b_c-d&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        );
        assert_eq!(form_encode("a b/+"), "a+b%2F%2B");
    }

    #[test]
    fn answers_and_errors() {
        let ok =
            parse_answer(br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#)
                .unwrap();
        assert_eq!(ok.token, "ya29.x");
        assert_eq!(ok.expires_in, Some(3599));
        assert!(!format!("{ok:?}").contains("ya29"));
        assert_eq!(parse_answer(b"{}"), Err(TokenError::NoToken));
        assert!(matches!(
            parse_answer(b"<html>"),
            Err(TokenError::NotJson(_))
        ));
        let refused = error_for(&response(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        ));
        assert!(
            matches!(&refused, ProviderError::Unauthorized(m) if m.contains("invalid_grant: Invalid JWT Signature.")),
            "{refused:?}"
        );
        assert!(matches!(
            error_for(&response(429, "")),
            ProviderError::Throttled(_)
        ));
        assert!(matches!(
            error_for(&response(503, "")),
            ProviderError::Transient(_)
        ));
    }

    #[test]
    fn urls_split_into_base_and_path() {
        let (base, path) = split_url("https://oauth2.googleapis.com/token").unwrap();
        assert_eq!(base.authority(), "oauth2.googleapis.com");
        assert_eq!(path, "/token");
        let (base, path) = split_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(base.authority(), "127.0.0.1:8080");
        assert_eq!(path, "/");
        assert!(split_url("oauth2.googleapis.com/token").is_err());
    }
}
