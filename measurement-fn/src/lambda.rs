//! The AWS Lambda entry point behind `stellar-measure-lambda` (feature `lambda`).
//!
//! Lambda does not forward HTTP to a port: the function pulls events from the Runtime API
//! (`lambda_runtime` speaks it) and returns one JSON document per event. This module maps those
//! events onto the same core as the plain-HTTP flavour ([`crate::http`]), so every reply carries
//! the same [`MeasurementResponse`] fields and every later analysis works the same:
//!
//! - **Function URL / API Gateway HTTP API events** (payload format `"version": "2.0"`, with
//!   `requestContext` and `rawQueryString`): the query is parsed exactly like the HTTP flavour
//!   ([`Invocation::from_query`]); when `rawQueryString` is missing, `queryStringParameters` is
//!   read as a parameter object. The reply is an HTTP response document,
//!   `{"statusCode":200,"headers":{"content-type":"application/json"},"body":"<MeasurementResponse
//!   JSON>","isBase64Encoded":false,"cookies":[]}`; a bad parameter gives `statusCode` 400 and
//!   `{"error": "<message>"}` as the body. `cookies` is not needed by AWS, but cargo-lambda's
//!   emulator rejects a reply without it.
//! - **Direct Invoke** (any other JSON): the payload is the parameter object
//!   ([`Invocation::from_json_value`]) and the reply is the [`MeasurementResponse`] object
//!   itself; a bad parameter is a function error (`errorType` `InvalidParameter`).
//!
//! Identity: the instance id is `AWS_LAMBDA_LOG_STREAM_NAME` (one log stream per execution
//! environment) when set, else 16 random hex chars drawn once at init. `cold` is true for the
//! first invocation an execution environment handles. `instance_start_unix_ns` is taken when
//! the binary starts, as in the HTTP flavour. `runtime.provider` is `STELLAR_PROVIDER` when set,
//! else [`PROVIDER`] (`"aws-lambda"`).
//!
//! The spin runs on tokio's blocking pool, as in the HTTP flavour; nothing here panics on bad
//! input.

use crate::facts::RuntimeFacts;
use crate::instance::Instance;
use crate::request::Invocation;
use crate::response::{MeasurementResponse, handle_with};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use std::sync::Arc;

/// `runtime.provider` when `STELLAR_PROVIDER` is unset.
pub const PROVIDER: &str = "aws-lambda";
/// The variable whose value becomes the instance id (unique per execution environment).
pub const LOG_STREAM_ENV: &str = "AWS_LAMBDA_LOG_STREAM_NAME";
/// Variables `lambda_runtime` needs (it panics without them); checked by [`serve`] first.
pub const REQUIRED_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];
/// `errorType` of a Direct Invoke with a bad parameter.
pub const INVALID_PARAMETER: &str = "InvalidParameter";
/// `errorType` when the handler itself failed (a bug: the spin thread panicked).
pub const HANDLER_FAILED: &str = "HandlerFailed";

/// Why the Lambda entry point could not run.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// A variable the Lambda runtime sets is missing (not running under Lambda or an emulator).
    #[error(
        "environment variable `{var}` is not set: run this binary under AWS Lambda or \
         `cargo lambda watch`"
    )]
    MissingEnv {
        /// The variable.
        var: &'static str,
    },
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` is not an integer (`lambda_runtime` would panic).
    #[error(
        "environment variable `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`: expected an integer, got {value:?}"
    )]
    InvalidMemorySize {
        /// The value found.
        value: String,
    },
    /// The runtime loop failed (the Runtime API went away or answered garbage).
    #[error("lambda runtime: {0}")]
    Runtime(#[source] lambda_runtime::Error),
}

/// Which shape an event has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A function-URL / API Gateway v2 HTTP event (an object with `requestContext`).
    Http,
    /// A Direct Invoke payload.
    Direct,
}

impl EventKind {
    /// Classifies an event: an object with a `requestContext` object is an HTTP event.
    #[must_use]
    pub fn of(event: &Value) -> Self {
        if event.get("requestContext").is_some_and(Value::is_object) {
            Self::Http
        } else {
            Self::Direct
        }
    }
}

/// The parameters of an HTTP event: `rawQueryString` through [`Invocation::from_query`]; if
/// absent (or not a string), `queryStringParameters` through [`Invocation::from_json_value`];
/// if neither is there, the defaults.
///
/// # Errors
/// [`crate::Error::InvalidParameter`] naming the key of a malformed value.
pub fn invocation_from_http_event(event: &Value) -> crate::Result<Invocation> {
    if let Some(raw) = event.get("rawQueryString").and_then(Value::as_str) {
        return Invocation::from_query(raw);
    }
    match event.get("queryStringParameters") {
        Some(params @ Value::Object(_)) => Invocation::from_json_value(params),
        _ => Ok(Invocation::default()),
    }
}

/// An API Gateway v2 / function-URL response document with a JSON `body`.
#[must_use]
pub fn http_reply(status: u16, body: String) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body,
        "isBase64Encoded": false,
        "cookies": [],
    })
}

/// [`http_reply`] with `{"error": message}` as the body.
#[must_use]
pub fn http_error(status: u16, message: &str) -> Value {
    http_reply(status, json!({ "error": message }).to_string())
}

/// The measurement function as Lambda runs it: one instance identity and its runtime facts.
#[derive(Debug)]
pub struct LambdaFunction {
    instance: Instance,
    facts: RuntimeFacts,
}

impl LambdaFunction {
    /// The function of this process: identity from the environment, facts from the environment
    /// and `/proc`. `start_unix_ns` is when the process started (taken first thing in `main`).
    #[must_use]
    pub fn from_env(start_unix_ns: u64) -> Self {
        Self::from_sources(
            |var| std::env::var(var).ok(),
            |path| fs_err::read_to_string(path).ok(),
            start_unix_ns,
        )
    }

    /// Builds the function from an environment lookup and a file reader (see
    /// [`RuntimeFacts::from_sources`]). The instance id is [`LOG_STREAM_ENV`] if non-empty,
    /// else a fresh random id; the provider defaults to [`PROVIDER`].
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        read: impl Fn(&str) -> Option<String>,
        start_unix_ns: u64,
    ) -> Self {
        let id = env(LOG_STREAM_ENV)
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(crate::random_hex_id);
        let facts = RuntimeFacts::from_sources(
            |var| {
                let value = env(var).filter(|v| !v.trim().is_empty());
                if var == "STELLAR_PROVIDER" {
                    value.or_else(|| Some(PROVIDER.to_owned()))
                } else {
                    value
                }
            },
            read,
        );
        Self {
            instance: Instance::with_id(id, start_unix_ns)
                .with_platform_id(crate::instance::platform_id_from_env(&env)),
            facts,
        }
    }

    /// The instance identity.
    #[must_use]
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The runtime facts replies carry.
    #[must_use]
    pub fn facts(&self) -> &RuntimeFacts {
        &self.facts
    }

    /// Runs one invocation on this instance (counts it, spins, timestamps).
    #[must_use]
    pub fn handle(&self, inv: &Invocation, received_unix_ns: u64) -> MeasurementResponse {
        handle_with(&self.instance, &self.facts, inv, received_unix_ns)
    }

    /// Handles one event received at `received_unix_ns` and builds the reply (see the module
    /// docs). Blocks for the requested spin.
    ///
    /// # Errors
    /// A [`Diagnostic`] (`errorType` [`INVALID_PARAMETER`]) for a Direct Invoke with a bad
    /// parameter; HTTP events always get an HTTP reply (400 for a bad parameter).
    pub fn handle_event(&self, event: &Value, received_unix_ns: u64) -> Result<Value, Diagnostic> {
        match EventKind::of(event) {
            EventKind::Http => Ok(match invocation_from_http_event(event) {
                Ok(inv) => {
                    let resp = self.handle(&inv, received_unix_ns);
                    match serde_json::to_string(&resp) {
                        Ok(body) => http_reply(200, body),
                        Err(e) => http_error(500, &format!("serializing response: {e}")),
                    }
                }
                Err(e) => http_error(400, &e.to_string()),
            }),
            EventKind::Direct => {
                let inv = Invocation::from_json_value(event).map_err(|e| Diagnostic {
                    error_type: INVALID_PARAMETER.to_owned(),
                    error_message: e.to_string(),
                })?;
                let resp = self.handle(&inv, received_unix_ns);
                serde_json::to_value(&resp).map_err(|e| Diagnostic {
                    error_type: HANDLER_FAILED.to_owned(),
                    error_message: format!("serializing response: {e}"),
                })
            }
        }
    }

    /// [`Self::handle_event`] for the runtime: timestamps the event on arrival, then spins on
    /// tokio's blocking pool. A panicking handler becomes a 500 (HTTP) or a function error.
    ///
    /// # Errors
    /// As [`Self::handle_event`], plus [`HANDLER_FAILED`] if the handler panicked on a Direct
    /// Invoke.
    pub async fn on_event(self: Arc<Self>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
        let received = crate::unix_ns_now();
        let payload = event.payload;
        let kind = EventKind::of(&payload);
        let joined =
            tokio::task::spawn_blocking(move || self.handle_event(&payload, received)).await;
        match joined {
            Ok(reply) => reply,
            Err(e) => match kind {
                EventKind::Http => Ok(http_error(500, &format!("handler failed: {e}"))),
                EventKind::Direct => Err(Diagnostic {
                    error_type: HANDLER_FAILED.to_owned(),
                    error_message: format!("handler failed: {e}"),
                }),
            },
        }
    }
}

/// Checks the variables `lambda_runtime` would otherwise panic on.
///
/// # Errors
/// [`LambdaError::MissingEnv`] naming the first missing variable, or
/// [`LambdaError::InvalidMemorySize`].
pub fn check_env(env: impl Fn(&str) -> Option<String>) -> Result<(), LambdaError> {
    for var in REQUIRED_ENV {
        if env(var).is_none() {
            return Err(LambdaError::MissingEnv { var });
        }
    }
    let memory = env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if memory.parse::<i32>().is_err() {
        return Err(LambdaError::InvalidMemorySize { value: memory });
    }
    Ok(())
}

/// Serves events from the Runtime API until it fails. Checks the environment first so a
/// misconfigured process ends with an error instead of a panic inside `lambda_runtime`.
///
/// # Errors
/// [`LambdaError::MissingEnv`] / [`LambdaError::InvalidMemorySize`] before starting;
/// [`LambdaError::Runtime`] if the runtime loop ends with an error.
pub async fn serve(function: Arc<LambdaFunction>) -> Result<(), LambdaError> {
    check_env(|var| std::env::var(var).ok())?;
    let handler = lambda_runtime::service_fn(move |event: LambdaEvent<Value>| {
        Arc::clone(&function).on_event(event)
    });
    lambda_runtime::run(handler)
        .await
        .map_err(LambdaError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn function(env: &[(&str, &str)]) -> LambdaFunction {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LambdaFunction::from_sources(|k| env.get(k).cloned(), |_| None, 7)
    }

    /// A function-URL event as AWS documents it (payload format 2.0).
    fn url_event(raw_query: &str) -> Value {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/",
            "rawQueryString": raw_query,
            "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "user-agent": "stellar"},
            "requestContext": {
                "accountId": "anonymous",
                "apiId": "abc",
                "domainName": "abc.lambda-url.us-east-1.on.aws",
                "http": {"method": "GET", "path": "/", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "stellar"},
                "requestId": "id",
                "routeKey": "$default",
                "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000",
                "timeEpoch": 1_767_225_600_000_u64
            },
            "isBase64Encoded": false
        })
    }

    /// Checks the HTTP reply envelope and returns (status, parsed body).
    fn open_reply(reply: &Value) -> (u64, Value) {
        assert_eq!(
            reply.pointer("/headers/content-type"),
            Some(&json!("application/json")),
            "{reply}"
        );
        assert_eq!(reply.get("isBase64Encoded"), Some(&json!(false)));
        assert_eq!(reply.get("cookies"), Some(&json!([])));
        let status = reply.get("statusCode").and_then(Value::as_u64).unwrap();
        let body = reply.get("body").and_then(Value::as_str).unwrap();
        (status, serde_json::from_str(body).unwrap())
    }

    #[test]
    fn classifies_events() {
        assert_eq!(EventKind::of(&url_event("")), EventKind::Http);
        assert_eq!(EventKind::of(&json!({"SpinMs": 1})), EventKind::Direct);
        assert_eq!(
            EventKind::of(&json!({"requestContext": "x"})),
            EventKind::Direct
        );
        assert_eq!(EventKind::of(&json!([1])), EventKind::Direct);
    }

    #[test]
    fn url_event_query_is_parsed_like_http() {
        let event = url_event("SpinMs=1.5&IncrementLimit=10&RequestID=a%2Fb&SpinMs=9");
        let inv = invocation_from_http_event(&event).unwrap();
        assert_eq!(
            inv,
            Invocation::from_query("SpinMs=1.5&IncrementLimit=10&RequestID=a%2Fb").unwrap()
        );
        assert_eq!(inv.request_id.as_deref(), Some("a/b"));
    }

    #[test]
    fn query_string_parameters_are_a_fallback() {
        let mut event = url_event("");
        if let Some(map) = event.as_object_mut() {
            map.remove("rawQueryString");
            map.insert(
                "queryStringParameters".into(),
                json!({"SpinMs": "2", "PayloadLengthBytes": "64"}),
            );
        }
        let inv = invocation_from_http_event(&event).unwrap();
        assert_eq!(inv.spin_ms, 2.0);
        assert_eq!(inv.payload_length_bytes, 64);
        let bare = json!({"requestContext": {}});
        assert_eq!(
            invocation_from_http_event(&bare).unwrap(),
            Invocation::default()
        );
    }

    #[test]
    fn url_event_gets_200_with_measurement_body() {
        let f = function(&[(LOG_STREAM_ENV, "2026/01/01/[$LATEST]0123abcd")]);
        let reply = f
            .handle_event(
                &url_event("SpinMs=2&RequestID=r1&PayloadLengthBytes=5"),
                100,
            )
            .unwrap();
        let (status, body) = open_reply(&reply);
        assert_eq!(status, 200);
        let r: MeasurementResponse = serde_json::from_value(body).unwrap();
        assert_eq!(r.request_id, "r1");
        assert_eq!(r.instance_id, "2026/01/01/[$LATEST]0123abcd");
        assert!(r.cold);
        assert_eq!(r.invocations_on_instance, 1);
        assert_eq!(r.instance_start_unix_ns, 7);
        assert_eq!(r.handler_received_unix_ns, 100);
        assert!(r.spin_ns >= 2_000_000, "{}", r.spin_ns);
        assert_eq!(r.payload_length_bytes, 5);
        assert_eq!(r.runtime.provider, PROVIDER);
        let keys = reply.as_object().map(|m| m.len());
        assert_eq!(keys, Some(5), "{reply}");
    }

    #[test]
    fn bad_query_is_400_naming_the_key() {
        let f = function(&[]);
        let reply = f.handle_event(&url_event("SpinMs=abc"), 1).unwrap();
        let (status, body) = open_reply(&reply);
        assert_eq!(status, 400);
        let msg = body.get("error").and_then(Value::as_str).unwrap();
        assert!(msg.contains("SpinMs"), "{msg}");
        assert_eq!(
            f.instance().invocations(),
            0,
            "a rejected request is not counted"
        );
    }

    #[test]
    fn direct_invoke_replies_the_measurement_object() {
        let f = function(&[("STELLAR_PROVIDER", "aws")]);
        let v = f
            .handle_event(&json!({"IncrementLimit": 3, "RequestID": "d"}), 5)
            .unwrap();
        let r: MeasurementResponse = serde_json::from_value(v).unwrap();
        assert_eq!(r.request_id, "d");
        assert_eq!(r.increments, 3);
        assert!(r.cold);
        assert_eq!(r.runtime.provider, "aws");
        assert_eq!(r.instance_id.len(), 16, "random id without a log stream");
        let again: MeasurementResponse =
            serde_json::from_value(f.handle_event(&json!({}), 6).unwrap()).unwrap();
        assert!(!again.cold);
        assert_eq!(again.instance_id, r.instance_id);
        assert_eq!(again.invocations_on_instance, 2);
    }

    #[test]
    fn direct_invoke_with_bad_input_is_a_function_error() {
        let f = function(&[]);
        let err = f.handle_event(&json!({"SpinMs": -1}), 1).unwrap_err();
        assert_eq!(err.error_type, INVALID_PARAMETER);
        assert!(
            err.error_message.contains("SpinMs"),
            "{}",
            err.error_message
        );
        let err = f.handle_event(&json!("text"), 1).unwrap_err();
        assert_eq!(err.error_type, INVALID_PARAMETER);
        assert!(
            err.error_message.contains("a string"),
            "{}",
            err.error_message
        );
    }

    #[test]
    fn empty_log_stream_gets_a_random_id() {
        let a = function(&[(LOG_STREAM_ENV, " ")]);
        let b = function(&[]);
        assert_eq!(a.instance().id().len(), 16);
        assert_ne!(a.instance().id(), b.instance().id());
        assert_eq!(a.facts().provider, PROVIDER);
    }

    #[test]
    fn check_env_names_the_missing_variable() {
        let full = [
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ];
        let lookup = |pairs: Vec<(&'static str, &'static str)>| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(pk, _)| *pk == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(check_env(lookup(full.to_vec())).is_ok());
        let err = check_env(lookup(full[1..].to_vec())).unwrap_err();
        assert!(err.to_string().contains("AWS_LAMBDA_RUNTIME_API"), "{err}");
        let mut bad = full.to_vec();
        bad[2].1 = "lots";
        let err = check_env(lookup(bad)).unwrap_err();
        assert!(
            matches!(err, LambdaError::InvalidMemorySize { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn on_event_runs_the_handler() {
        let f = Arc::new(function(&[]));
        let event = LambdaEvent::new(
            url_event("IncrementLimit=4"),
            lambda_runtime::Context::default(),
        );
        let reply = Arc::clone(&f).on_event(event).await.unwrap();
        let (status, body) = open_reply(&reply);
        assert_eq!(status, 200);
        assert_eq!(body.get("increments"), Some(&json!(4)));
        assert_eq!(f.instance().invocations(), 1);
    }
}
