//! An ACS3-HMAC-SHA256-signed client for the Function Compute 3.0 REST API, with bounded
//! retries.
//!
//! ACS3 covers the body's SHA-256, so a body that streams an artifact is walked twice: once to
//! hash it, once to send it (the artifact rewinds). Each try gets a fresh date and nonce (FC
//! refuses a nonce it has seen, and the signature covers the date). Throttled and transient
//! failures are retried with exponential backoff (the guest SDK's `retry`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use stellar_acs3::{AcsDate, Action, Credentials, PayloadHasher, SignableRequest};
use stellar_guest_sdk::http::{Body, HttpError, Method, Response};
use stellar_guest_sdk::retry::retry_request;
use stellar_guest_sdk::{ProviderError, unix_seconds};

use crate::config::Config;
use crate::fc_error::{self, FcError};

/// `x-acs-version` of Function Compute 3.0.
pub(crate) const API_VERSION: &str = "2023-03-30";

/// The headers to send: `accept`, `content-type` (with a body), then the `x-acs-*` headers and
/// `authorization` from the signer. `host` is signed but not returned: wasi:http sets it from
/// the authority.
pub(crate) fn signed_headers(
    config: &Config,
    request: &SignableRequest<'_>,
    action: &str,
    unix_seconds: u64,
    nonce: &str,
) -> Vec<(String, String)> {
    let credentials = Credentials::new(
        config.access_key_id.clone(),
        config.access_key_secret.clone(),
        config.security_token.clone(),
    );
    let action = Action {
        action,
        version: API_VERSION,
    };
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    headers.extend(stellar_acs3::sign(
        request,
        &action,
        &credentials,
        &AcsDate::from_unix_seconds(unix_seconds),
        nonce,
    ));
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

/// 32 random hex digits from wasi:random, for `x-acs-signature-nonce`.
fn nonce() -> String {
    let a = wasip2::random::random::get_random_u64();
    let b = wasip2::random::random::get_random_u64();
    format!("{a:016x}{b:016x}")
}

/// Percent-encodes one path segment (a function or trigger name) as FC's SDK does
/// (`DaraURL.percent_encode`: RFC 3986, only unreserved characters kept).
pub(crate) fn segment(name: &str) -> String {
    stellar_acs3::uri_encode(name, true)
}

/// The FC API of one configuration.
pub(crate) struct Fc<'c> {
    config: &'c Config,
}

impl<'c> Fc<'c> {
    pub(crate) fn new(config: &'c Config) -> Self {
        Self { config }
    }

    /// Sends a signed request for `action` (`path` already encoded, `query` decoded pairs);
    /// 2xx is `Ok`, anything else an [`FcError`]. Retries throttled and transient failures.
    pub(crate) fn call(
        &self,
        action: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Response, FcError> {
        let query_string = stellar_acs3::canonical_query(query);
        let path_and_query = if query_string.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query_string}")
        };
        let template = self.config.endpoint.request(method, &path_and_query);
        let authority = template.authority.clone();
        let signed_path = template
            .path_and_query
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let own_headers: &[(&str, &str)] = if matches!(body, Body::None) {
            &[("accept", "application/json")]
        } else {
            &[
                ("accept", "application/json"),
                ("content-type", "application/json"),
            ]
        };
        let payload = payload_sha256(&body).map_err(|e| FcError::local(e.into()))?;
        let shown = format!(
            "{action} ({method} {}{path_and_query})",
            self.config.endpoint
        );

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
                query,
                headers: own_headers,
                payload_sha256: &payload,
            };
            request.headers =
                signed_headers(self.config, &signable, action, unix_seconds(), &nonce());
            let response = request
                .send()
                .map_err(|e| FcError::local(ProviderError::from(e)))?;
            if response.is_success() {
                Ok(response)
            } else {
                Err(fc_error::from_response(&response))
            }
        })
    }

    /// [`call`](Fc::call) with a JSON body (or none) and a JSON answer.
    pub(crate) fn json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        action: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T, FcError> {
        let body = match body {
            Some(value) => Body::Bytes(serde_json::to_vec(value).map_err(|e| {
                FcError::local(ProviderError::Other(format!(
                    "cannot encode the request body: {e}"
                )))
            })?),
            None => Body::None,
        };
        self.call(action, method, path, query, body)?
            .json()
            .map_err(FcError::local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{alibaba, pairs};

    fn config(token: Option<&str>) -> Config {
        let mut keys = vec![
            ("access-key-id", "LTAIid"),
            ("access-key-secret", "s3cr3t-value"),
        ];
        if let Some(token) = token {
            keys.push(("security-token", token));
        }
        Config::from_settings(
            pairs(&[
                ("region", "cn-hangzhou"),
                ("endpoint", "http://127.0.0.1:9"),
            ]),
            alibaba(&keys),
        )
        .unwrap()
    }

    fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn requests_carry_an_acs3_signature_and_no_secret() {
        let empty = stellar_acs3::sha256_hex(b"");
        let request = SignableRequest {
            method: "GET",
            host: "127.0.0.1:9",
            path: "/2023-03-30/functions",
            query: &[("prefix", "st-"), ("limit", "100")],
            headers: &[("accept", "application/json")],
            payload_sha256: &empty,
        };
        let headers = signed_headers(
            &config(None),
            &request,
            "ListFunctions",
            1_698_310_861,
            "n1",
        );
        assert_eq!(header(&headers, "accept"), Some("application/json"));
        assert_eq!(header(&headers, "x-acs-action"), Some("ListFunctions"));
        assert_eq!(header(&headers, "x-acs-version"), Some("2023-03-30"));
        assert_eq!(header(&headers, "x-acs-date"), Some("2023-10-26T09:01:01Z"));
        assert_eq!(header(&headers, "x-acs-signature-nonce"), Some("n1"));
        assert_eq!(header(&headers, "x-acs-security-token"), None);
        let auth = header(&headers, "authorization").unwrap();
        assert!(
            auth.starts_with(
                "ACS3-HMAC-SHA256 Credential=LTAIid,SignedHeaders=accept;host;x-acs-action;"
            ),
            "{auth}"
        );
        assert!(headers.iter().all(|(_, v)| !v.contains("s3cr3t")));
        let sts = signed_headers(&config(Some("t0k")), &request, "ListFunctions", 1, "n1");
        assert_eq!(header(&sts, "x-acs-security-token"), Some("t0k"));
    }

    #[test]
    fn path_segments_are_encoded_like_the_sdk() {
        assert_eq!(segment("st-r1-00-00"), "st-r1-00-00");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
