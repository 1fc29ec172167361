//! Azure Resource Manager over REST: the client-credentials token, bearer-authorised calls
//! with retries, ARM's error shape, and its asynchronous-operation protocol.
//!
//! - Token: `POST {login}/{tenant}/oauth2/v2.0/token`, form `grant_type=client_credentials`,
//!   `client_id`, `client_secret`, `scope=https://management.azure.com/.default`; cached until
//!   five minutes before it expires. A refusal (400/401) is `unauthorized` and names the
//!   variables, never the secret.
//! - Calls: 429 and 5xx (and unreachable hosts) are retried with exponential backoff; a
//!   `Retry-After` (seconds) is waited out first.
//! - Long-running operations (learn.microsoft.com, "Track asynchronous Azure operations"):
//!   a 201/202 with `Azure-AsyncOperation` is polled until its `status` is `Succeeded`
//!   (`Failed`/`Canceled` end with the operation's `error`); with only `Location`, that URL is
//!   polled until it stops answering 202. A PUT's resource is then read until its
//!   `properties.provisioningState` is terminal. Polls go through
//!   [`stellar_guest_sdk::retry::poll`], first spaced by `Retry-After` (or `poll-interval-ms`),
//!   and only to the ARM host: the bearer token is never sent anywhere else.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use stellar_guest_sdk::http::{Body, Method, Request, Response, Scheme};
use stellar_guest_sdk::retry::{Backoff, Poll, WasiClock, poll, retry};
use stellar_guest_sdk::{ProviderError, ProviderResult, errors, log};

use crate::config::Config;

/// The audience of ARM tokens (the same for any ARM endpoint override).
pub(crate) const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// Tries of one call when Azure throttles or fails transiently (first included).
const ATTEMPTS: u32 = 6;
/// Longest time spent retrying one call.
const RETRY_BUDGET: Duration = Duration::from_secs(120);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Tokens are renewed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

static TOKEN: Mutex<Option<(String, Instant, String)>> = Mutex::new(None);

/// Percent-encodes a form value (application/x-www-form-urlencoded, RFC 3986 unreserved kept).
pub(crate) fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The token request's form body.
pub(crate) fn token_form(client_id: &str, client_secret: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
        form_encode(client_id),
        form_encode(client_secret),
        form_encode(ARM_SCOPE)
    )
}

/// `Retry-After` in seconds (the HTTP-date form is not used by ARM), capped.
pub(crate) fn retry_after(response: &Response) -> Option<Duration> {
    let secs: u64 = response.header("retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// ARM's error body `{"error":{"code","message"}}` (common-types `ErrorResponse`).
pub(crate) fn error_code_message(body: &[u8]) -> (String, String) {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = json.get("error").unwrap_or(&json);
    let text = |k: &str| {
        error
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let message = text("message");
    let message = if message.is_empty() {
        errors::body_message(body).unwrap_or_default()
    } else {
        message
    };
    (text("code"), message)
}

/// The provider error for an ARM error: quota codes are `quota`, 409 is a name already taken
/// (or a conflicting operation), the rest by status.
pub(crate) fn classify(status: u16, code: &str, message: String) -> ProviderError {
    let lower = code.to_ascii_lowercase();
    if lower.contains("quota") {
        return ProviderError::Quota(message);
    }
    match status {
        409 => ProviderError::Invalid(format!(
            "{message} (a name already taken, or another operation on it is still running)"
        )),
        _ => errors::for_status(status, message),
    }
}

fn arm_error(response: &Response) -> ProviderError {
    let (code, message) = error_code_message(&response.body);
    let shown = if code.is_empty() {
        message.clone()
    } else {
        format!("{code}: {message}")
    };
    classify(
        response.status,
        &code,
        format!("{}: HTTP {}: {shown}", response.request, response.status),
    )
}

/// An absolute URL split into scheme, `host[:port]` and path with query.
pub(crate) fn split_url(url: &str) -> Option<(Scheme, &str, &str)> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        (Scheme::Http, url.strip_prefix("http://")?)
    };
    let slash = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(slash);
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

/// ARM for one configuration.
pub(crate) struct Arm<'c> {
    pub(crate) config: &'c Config,
}

impl<'c> Arm<'c> {
    pub(crate) fn new(config: &'c Config) -> Self {
        Self { config }
    }

    /// A bearer token for ARM (cached per client).
    pub(crate) fn token(&self) -> ProviderResult<String> {
        let config = self.config;
        let cache_key = format!("{}|{}|{}", config.login, config.tenant, config.client_id);
        if let Some((token, expires, key)) = TOKEN.lock().unwrap_or_else(|p| p.into_inner()).clone()
            && key == cache_key
            && Instant::now() < expires
        {
            return Ok(token);
        }
        let path = format!("/{}/oauth2/v2.0/token", config.tenant);
        let form = token_form(&config.client_id, &config.client_secret);
        let outcome = retry(
            &mut WasiClock::new(),
            Backoff::new(
                config.poll_interval.min(Duration::from_secs(1)),
                Duration::from_secs(8),
            ),
            ATTEMPTS,
            RETRY_BUDGET,
            || {
                let response = config
                    .login
                    .request(Method::Post, &path)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("accept", "application/json")
                    .body(Body::Bytes(form.clone().into_bytes()))
                    .send()
                    .map_err(ProviderError::from)?;
                if response.is_success() {
                    Ok(response)
                } else if matches!(response.status, 400 | 401 | 403) {
                    let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
                    let error = json
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("refused");
                    let description = json
                        .get("error_description")
                        .and_then(Value::as_str)
                        .and_then(|d| d.lines().next())
                        .unwrap_or("");
                    Err(ProviderError::Unauthorized(format!(
                        "Microsoft Entra ID refused the service principal's client credentials \
                         (HTTP {}: {error}: {description}); check AZURE_TENANT_ID, \
                         AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
                        response.status
                    )))
                } else {
                    if let Some(wait) = retry_after(&response) {
                        stellar_guest_sdk::sleep(wait);
                    }
                    Err(errors::from_response(&response))
                }
            },
            |e| matches!(e, ProviderError::Throttled(_) | ProviderError::Transient(_)),
        );
        let response = outcome.result?;
        let json: Value = response.json()?;
        let token = json
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ProviderError::Other("the token endpoint's answer has no access_token".into())
            })?
            .to_string();
        let lifetime = json
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(3600);
        let expires = Instant::now() + Duration::from_secs(lifetime).saturating_sub(TOKEN_MARGIN);
        *TOKEN.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((token.clone(), expires, cache_key));
        Ok(token)
    }

    /// Sends `method` to `path_and_query` on the ARM host with a JSON body; 2xx is `Ok`.
    /// Throttled and transient failures are retried.
    pub(crate) fn send(
        &self,
        method: Method,
        scheme_authority: Option<(Scheme, &str)>,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> ProviderResult<Response> {
        let token = self.token()?;
        let bytes = body.map(|b| b.to_string().into_bytes());
        let outcome = retry(
            &mut WasiClock::new(),
            Backoff::new(
                self.config.poll_interval.min(Duration::from_secs(1)),
                Duration::from_secs(16),
            ),
            ATTEMPTS,
            RETRY_BUDGET,
            || {
                let mut request = match scheme_authority {
                    Some((scheme, authority)) => {
                        Request::new(method, scheme, authority, path_and_query)
                    }
                    None => self.config.arm.request(method, path_and_query),
                }
                .bearer(&token)
                .header("accept", "application/json");
                if let Some(bytes) = &bytes {
                    request = request
                        .header("content-type", "application/json")
                        .body(Body::Bytes(bytes.clone()));
                }
                let response = request.send().map_err(ProviderError::from)?;
                if response.is_success() {
                    return Ok(response);
                }
                let error = arm_error(&response);
                if matches!(
                    error,
                    ProviderError::Throttled(_) | ProviderError::Transient(_)
                ) {
                    let wait = retry_after(&response);
                    log::info(format!(
                        "{}: HTTP {}; retrying{}",
                        response.request,
                        response.status,
                        wait.map(|w| format!(" after {} s (Retry-After)", w.as_secs()))
                            .unwrap_or_default()
                    ));
                    if let Some(wait) = wait {
                        stellar_guest_sdk::sleep(wait);
                    }
                }
                Err(error)
            },
            |e| matches!(e, ProviderError::Throttled(_) | ProviderError::Transient(_)),
        );
        outcome.result
    }

    /// `path` on ARM with `api-version`.
    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> ProviderResult<Response> {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.send(
            method,
            None,
            &format!("{path}{sep}api-version={api_version}"),
            body,
        )
    }

    /// A GET decoded as JSON.
    pub(crate) fn get(&self, path: &str, api_version: &str) -> ProviderResult<Value> {
        self.call(Method::Get, path, api_version, None)?.json()
    }

    /// PUT (or PATCH) a resource and wait until it is provisioned; returns the resource.
    pub(crate) fn put_and_wait(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: &Value,
    ) -> ProviderResult<Value> {
        let response = self.call(method, path, api_version, Some(body))?;
        let what = format!("{method} {path}");
        self.wait_async(&response, &what)?;
        let state = |resource: &Value| {
            resource
                .pointer("/properties/provisioningState")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let first: Option<Value> = if response.status == 200 || response.status == 201 {
            serde_json::from_slice(&response.body).ok()
        } else {
            None
        };
        if let Some(resource) = &first
            && state(resource).is_none_or(|s| s.eq_ignore_ascii_case("Succeeded"))
        {
            return Ok(resource.clone());
        }
        self.poll_until(&what, None, || {
            let resource = self.get(path, api_version)?;
            match state(&resource).as_deref() {
                None | Some("Succeeded") => Ok(Poll::Done(resource)),
                Some(s @ ("Failed" | "Canceled")) => Err(ProviderError::Other(format!(
                    "{what}: provisioningState is {s}{}",
                    resource
                        .pointer("/properties/error/message")
                        .or_else(|| resource.pointer("/properties/statusMessage"))
                        .and_then(Value::as_str)
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ))),
                Some(s) => Ok(Poll::Pending(format!("provisioningState {s}"))),
            }
        })
    }

    /// DELETE and wait until the operation finished (404 = already gone is `not-found`).
    pub(crate) fn delete_and_wait(&self, path: &str, api_version: &str) -> ProviderResult<()> {
        let response = self.call(Method::Delete, path, api_version, None)?;
        self.wait_async(&response, &format!("DELETE {path}"))
    }

    /// Follows `Azure-AsyncOperation` or `Location` of a 201/202 answer to its end.
    pub(crate) fn wait_async(&self, response: &Response, what: &str) -> ProviderResult<()> {
        let first_delay = retry_after(response);
        if let Some(url) = response.header("azure-asyncoperation") {
            let url = url.to_string();
            return self.poll_until(what, first_delay, || {
                let status = self.poll_get(&url)?;
                let op: Value = status.json()?;
                match op.get("status").and_then(Value::as_str).unwrap_or("") {
                    "Succeeded" => Ok(Poll::Done(())),
                    s @ ("Failed" | "Canceled") => {
                        let (code, message) = error_code_message(status.body.as_slice());
                        Err(classify(
                            400,
                            &code,
                            format!("{what}: the operation {s}: {code}: {message}"),
                        ))
                    }
                    s => Ok(Poll::Pending(format!("operation status {s}"))),
                }
            });
        }
        if matches!(response.status, 201 | 202)
            && let Some(url) = response.header("location")
        {
            let url = url.to_string();
            return self.poll_until(what, first_delay, || {
                let status = self.poll_get(&url)?;
                Ok(if status.status == 202 {
                    Poll::Pending("HTTP 202".into())
                } else {
                    Poll::Done(())
                })
            });
        }
        Ok(())
    }

    /// GET an absolute polling URL, which must be on the ARM host.
    fn poll_get(&self, url: &str) -> ProviderResult<Response> {
        let (scheme, authority, path) = split_url(url).ok_or_else(|| {
            ProviderError::Other(format!("ARM returned an unusable polling URL {url:?}"))
        })?;
        if !authority.eq_ignore_ascii_case(self.config.arm.authority()) {
            return Err(ProviderError::Other(format!(
                "ARM returned a polling URL on another host ({authority}); the token is only \
                 sent to {}",
                self.config.arm.authority()
            )));
        }
        self.send(Method::Get, Some((scheme, authority)), path, None)
    }

    fn poll_until<T>(
        &self,
        what: &str,
        first_delay: Option<Duration>,
        check: impl FnMut() -> ProviderResult<Poll<T>>,
    ) -> ProviderResult<T> {
        let first = first_delay
            .unwrap_or(self.config.poll_interval)
            .max(self.config.poll_interval.min(Duration::from_millis(1)));
        let cap = (self.config.poll_interval * 8).max(first);
        match poll(
            &mut WasiClock::new(),
            Backoff::new(first, cap),
            self.config.wait_timeout,
            check,
        )? {
            Ok(value) => Ok(value),
            Err(timed_out) => Err(ProviderError::Transient(format!(
                "{what}: still not done after {:.0} s (last: {}); raise `wait-timeout-s`",
                timed_out.waited.as_secs_f64(),
                timed_out.last_status
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            request: "PUT https://management.azure.com/x".into(),
        }
    }

    #[test]
    fn token_form_is_the_client_credentials_grant() {
        assert_eq!(
            token_form("c-1", "a+b/c=&"),
            "grant_type=client_credentials&client_id=c-1&client_secret=a%2Bb%2Fc%3D%26\
             &scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
        );
    }

    #[test]
    fn errors_are_classified() {
        let quota = arm_error(&response(
            400,
            &[],
            r#"{"error":{"code":"SubscriptionIsOverQuotaForSku","message":"over"}}"#,
        ));
        assert!(matches!(quota, ProviderError::Quota(_)), "{quota:?}");
        let taken = arm_error(&response(
            409,
            &[],
            r#"{"error":{"code":"StorageAccountAlreadyTaken","message":"taken"}}"#,
        ));
        assert!(
            matches!(&taken, ProviderError::Invalid(m) if m.contains("StorageAccountAlreadyTaken: taken") && m.contains("already taken")),
            "{taken:?}"
        );
        let throttled = arm_error(&response(429, &[], "{}"));
        assert!(matches!(throttled, ProviderError::Throttled(_)));
        let auth = arm_error(&response(
            403,
            &[],
            r#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#,
        ));
        assert!(matches!(auth, ProviderError::Unauthorized(_)));
    }

    #[test]
    fn retry_after_and_urls() {
        assert_eq!(
            retry_after(&response(429, &[("retry-after", "3")], "")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&response(429, &[("retry-after", "9999")], "")),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&response(429, &[], "")), None);
        let (scheme, authority, path) =
            split_url("https://management.azure.com/subscriptions/s/operations/1?api-version=2")
                .unwrap();
        assert_eq!(scheme, Scheme::Https);
        assert_eq!(authority, "management.azure.com");
        assert_eq!(path, "/subscriptions/s/operations/1?api-version=2");
        assert_eq!(split_url("ftp://x"), None);
    }
}
