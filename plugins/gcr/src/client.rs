//! A client for Google's REST APIs (Cloud Run Admin v2, Artifact Registry v1): a bearer token
//! from the service-account key (fetched once and reused until five minutes before it
//! expires), JSON in and out, bounded retries with backoff on 429, 5xx and unreachable
//! endpoints (the guest SDK's `retry_request`), and waiting on long-running operations
//! (`google.longrunning.Operation`: `GET /v{N}/{name}` until `done`, then `error` or
//! `response`; googleapis `google/longrunning/operations.proto`) with the SDK's `poll`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use stellar_gcp_auth::CLOUD_PLATFORM_SCOPE;
use stellar_guest_sdk::http::{BaseUrl, Body, Method, Response};
use stellar_guest_sdk::retry::{Backoff, Poll, WasiClock, poll, retry_request};
use stellar_guest_sdk::{ProviderError, ProviderResult, log};

use crate::config::Config;
use crate::google_error::{self, GoogleError};

/// A cached token is replaced this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

/// The access token of this adapter instance and when it stops being usable.
static TOKEN: Mutex<Option<(String, Instant)>> = Mutex::new(None);

/// A bearer token for the configured service account.
pub(crate) fn access_token(config: &Config) -> ProviderResult<String> {
    let mut slot = TOKEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((token, usable_until)) = slot.as_ref()
        && Instant::now() < *usable_until
    {
        return Ok(token.clone());
    }
    let token = stellar_gcp_auth::token::fetch(
        &config.key,
        &config.token_endpoint,
        CLOUD_PLATFORM_SCOPE,
        stellar_guest_sdk::unix_seconds(),
    )?;
    let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600).min(3600));
    log::debug(format!(
        "got an access token for {} (valid {} s)",
        config.key.client_email,
        lifetime.as_secs()
    ));
    let usable_until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
    *slot = Some((token.token.clone(), usable_until));
    Ok(token.token)
}

/// A long-running operation as the APIs return it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Operation {
    pub(crate) name: String,
    pub(crate) done: bool,
    pub(crate) error: Option<Value>,
    pub(crate) response: Option<Value>,
}

/// One Google API (a base URL) used with the configured credentials.
pub(crate) struct Api<'c> {
    pub(crate) config: &'c Config,
    pub(crate) base: &'c BaseUrl,
    /// `v2` (Cloud Run) or `v1` (Artifact Registry): the prefix of operation paths.
    pub(crate) version: &'static str,
}

impl<'c> Api<'c> {
    pub(crate) fn run(config: &'c Config) -> Self {
        Self {
            config,
            base: &config.run_api,
            version: "v2",
        }
    }

    pub(crate) fn artifact_registry(config: &'c Config) -> Self {
        Self {
            config,
            base: &config.artifact_api,
            version: "v1",
        }
    }

    /// Sends `method path_and_query` with an optional JSON body; 2xx is `Ok`, anything else
    /// a [`GoogleError`]. Retries throttled and transient failures.
    pub(crate) fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Response, GoogleError> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let shown = format!("{method} {}{path_and_query}", self.base);
        retry_request(&shown, || {
            let token = access_token(self.config).map_err(GoogleError::local)?;
            let mut request = self
                .base
                .request(method, path_and_query)
                .bearer(&token)
                .header("accept", "application/json");
            if let Some(bytes) = &bytes {
                request = request
                    .header("content-type", "application/json")
                    .body(Body::Bytes(bytes.clone()));
            }
            let response = request
                .send()
                .map_err(|e| GoogleError::local(ProviderError::from(e)))?;
            if response.is_success() {
                Ok(response)
            } else {
                Err(google_error::from_response(&response))
            }
        })
    }

    /// [`call`](Api::call) with a JSON answer.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<T, GoogleError> {
        self.call(method, path_and_query, body)?
            .json()
            .map_err(GoogleError::local)
    }

    /// Waits until `operation` is done (polling `GET /<version>/<name>`), then returns its
    /// `response` (or `{}`); a finished operation's `error` becomes the provider error,
    /// prefixed with `what`.
    pub(crate) fn wait(&self, what: &str, operation: Operation) -> ProviderResult<Value> {
        let started = Instant::now();
        let config = self.config;
        let backoff = Backoff::new(config.poll_interval, config.poll_interval.saturating_mul(8));
        if !operation.done && operation.name.is_empty() {
            return Err(ProviderError::Other(format!(
                "{what}: the API returned an unfinished operation without a name"
            )));
        }
        let path = format!("/{}/{}", self.version, operation.name);
        let mut current = operation;
        let mut checks = 0u32;
        let outcome = poll(&mut WasiClock::new(), backoff, config.wait_timeout, || {
            // The first check is the answer that started the operation.
            if checks > 0 {
                current = self.json(Method::Get, &path, None)?;
            }
            checks += 1;
            if !current.done {
                return Ok(Poll::Pending(format!(
                    "operation {} not done",
                    current.name
                )));
            }
            if let Some(error) = &current.error {
                return Err(google_error::from_status(what, error));
            }
            Ok(Poll::Done(current.response.clone().unwrap_or(Value::Null)))
        })?;
        let value = outcome.map_err(|timed_out| {
            ProviderError::Transient(format!(
                "{what}: not done within {} s ({}); raise the `wait-timeout-s` setting to wait \
                 longer",
                config.wait_timeout.as_secs(),
                timed_out.last_status
            ))
        })?;
        log::debug(format!(
            "{what}: done after {} polls in {:.2} s",
            checks.saturating_sub(1),
            started.elapsed().as_secs_f64()
        ));
        Ok(value)
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub(crate) fn query_value(value: &str) -> String {
    stellar_gcp_auth::token::form_encode(value).replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_value("st-abc-00-00"), "st-abc-00-00");
        assert_eq!(query_value("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn operations_parse() {
        let op: Operation = serde_json::from_str(
            r#"{"name":"projects/p/locations/r/operations/1","done":true,
                "response":{"@type":"type.googleapis.com/google.cloud.run.v2.Service","uri":"https://x.run.app"}}"#,
        )
        .unwrap();
        assert!(op.done && op.error.is_none());
        assert_eq!(op.response.unwrap()["uri"], "https://x.run.app");
        let pending: Operation = serde_json::from_str(r#"{"name":"o"}"#).unwrap();
        assert!(!pending.done);
    }
}
