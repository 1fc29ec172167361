//! A SigV4-signed client for the Lambda REST API, with bounded retries.
//!
//! Every request is signed with the `lambda` scope of the configured region. SigV4 covers the
//! payload's SHA-256, so a body that streams an artifact is walked twice: once to hash it,
//! once to send it (the artifact rewinds). Throttled and transient failures are retried with
//! exponential backoff, re-signed each time (the signature covers the time).

use serde::Serialize;
use serde::de::DeserializeOwned;
use stellar_guest_sdk::http::{Body, HttpError, Method, Response};
use stellar_guest_sdk::{ProviderError, unix_seconds};
use stellar_sigv4::{AmzDate, Credentials, PayloadHasher, Scope, SignableRequest};

use crate::aws_error::{self, AwsError};
use crate::config::Config;
use stellar_guest_sdk::retry::retry_request;

/// SigV4 service name of the Lambda API.
const SERVICE: &str = "lambda";

/// The headers to send with `request`: its own (e.g. `content-type`) plus SigV4's
/// `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` and `authorization`.
/// `host` is signed but not returned: wasi:http sets it from the authority.
pub(crate) fn signed_headers(
    config: &Config,
    request: &SignableRequest<'_>,
    unix_seconds: u64,
) -> Vec<(String, String)> {
    let credentials = Credentials::new(
        config.access_key_id.clone(),
        config.secret_access_key.clone(),
        config.session_token.clone(),
    );
    let scope = Scope {
        region: &config.region,
        service: SERVICE,
    };
    let time = AmzDate::from_unix_seconds(unix_seconds);
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    headers.extend(stellar_sigv4::sign(request, &credentials, &scope, &time));
    headers
}

/// Lower-case hex SHA-256 of everything `body` yields.
fn payload_sha256(body: &Body<'_>) -> Result<String, HttpError> {
    let mut hasher = PayloadHasher::new();
    body.for_each_chunk(|chunk| {
        hasher.update(chunk);
        Ok(())
    })?;
    Ok(hasher.finish_hex())
}

/// The Lambda API of one configuration.
pub(crate) struct Lambda<'c> {
    config: &'c Config,
}

impl<'c> Lambda<'c> {
    pub(crate) fn new(config: &'c Config) -> Self {
        Self { config }
    }

    /// Sends a signed request (`path` already URI-encoded, `query` encoded and sorted by key,
    /// without `?`); 2xx is `Ok`, anything else an [`AwsError`]. Retries throttled and
    /// transient failures.
    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Body<'_>,
    ) -> Result<Response, AwsError> {
        let path_and_query = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let template = self.config.endpoint.request(method, &path_and_query);
        let authority = template.authority.clone();
        let (signed_path, signed_query) = match template.path_and_query.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (template.path_and_query.clone(), String::new()),
        };
        let own_headers: &[(&str, &str)] = if matches!(body, Body::None) {
            &[]
        } else {
            &[("content-type", "application/json")]
        };
        let payload = payload_sha256(&body).map_err(|e| AwsError::local(e.into()))?;
        let shown = format!("{method} {}{path_and_query}", self.config.endpoint);

        retry_request(&shown, || {
            let mut request = self
                .config
                .endpoint
                .request(method, &path_and_query)
                .body(body.clone());
            let signable = SignableRequest {
                method: method.as_str(),
                host: &authority,
                path: &signed_path,
                query: &signed_query,
                headers: own_headers,
                payload_sha256: &payload,
            };
            request.headers = signed_headers(self.config, &signable, unix_seconds());
            let response = request
                .send()
                .map_err(|e| AwsError::local(ProviderError::from(e)))?;
            if response.is_success() {
                Ok(response)
            } else {
                Err(aws_error::from_response(&response))
            }
        })
    }

    /// [`call`](Lambda::call) with a JSON body (or none) and a JSON answer.
    pub(crate) fn json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<&B>,
    ) -> Result<T, AwsError> {
        let body = match body {
            Some(value) => Body::Bytes(serde_json::to_vec(value).map_err(|e| {
                AwsError::local(ProviderError::Other(format!(
                    "cannot encode the request body: {e}"
                )))
            })?),
            None => Body::None,
        };
        self.call(method, path, query, body)?
            .json()
            .map_err(AwsError::local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(session_token: Option<&str>) -> Config {
        let settings = [
            ("region", "us-east-1"),
            ("role-arn", "arn:aws:iam::123456789012:role/r"),
            ("endpoint", "http://127.0.0.1:5000"),
        ];
        let mut keys = vec![
            ("access-key-id", "AKIDEXAMPLE"),
            (
                "secret-access-key",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
        ];
        if let Some(token) = session_token {
            keys.push(("session-token", token));
        }
        Config::from_settings(
            settings
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            crate::config::aws_credential(&keys),
        )
        .unwrap()
    }

    fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn requests_carry_a_lambda_scoped_signature() {
        let empty = stellar_sigv4::sha256_hex(b"");
        let request = SignableRequest {
            method: "GET",
            host: "127.0.0.1:5000",
            path: "/2015-03-31/functions/",
            query: "Marker=abc&MaxItems=50",
            headers: &[],
            payload_sha256: &empty,
        };
        let headers = signed_headers(&config(None), &request, 1_440_938_160); // 2015-08-30T12:36:00Z
        assert_eq!(header(&headers, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&headers, "x-amz-content-sha256"),
            Some(empty.as_str())
        );
        assert_eq!(header(&headers, "content-type"), None);
        assert_eq!(header(&headers, "x-amz-security-token"), None);
        assert_eq!(header(&headers, "host"), None);
        let auth = header(&headers, "authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, "
            ),
            "{auth}"
        );
        assert!(auth.contains("SignedHeaders=host;"), "{auth}");
        assert!(!auth.contains("wJalrXUtnFEMI"), "{auth}");
    }

    #[test]
    fn bodies_and_session_tokens_are_signed() {
        let payload = stellar_sigv4::sha256_hex(b"{}");
        let request = SignableRequest {
            method: "POST",
            host: "127.0.0.1:5000",
            path: "/2015-03-31/functions",
            query: "",
            headers: &[("content-type", "application/json")],
            payload_sha256: &payload,
        };
        let headers = signed_headers(
            &config(Some("FwoGZXIvYXdzEXAMPLE")),
            &request,
            1_440_938_160,
        );
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        assert_eq!(
            header(&headers, "x-amz-security-token"),
            Some("FwoGZXIvYXdzEXAMPLE")
        );
        let auth = header(&headers, "authorization").unwrap();
        assert!(auth.contains("content-type"), "{auth}");
        assert!(auth.contains("x-amz-security-token"), "{auth}");
        assert_eq!(
            header(&headers, "x-amz-content-sha256"),
            Some(payload.as_str())
        );
    }
}
