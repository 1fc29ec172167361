//! `stellar-measure`: the measurement function stellar deploys to every provider.
//!
//! One core library (this crate, no HTTP-server types) and thin entry points: the plain-HTTP
//! server `stellar-measure-http` (Azure custom handler, Cloud Run, Knative/vHive, Alibaba FC and
//! stellar's embedded `local` runtime) and the AWS Lambda entry point `stellar-measure-lambda`.
//! Every entry point turns its request into an [`Invocation`], calls [`handle`] (or
//! [`handle_with`]) and returns the [`MeasurementResponse`] as JSON. The host depends on this
//! crate with `default-features = false` to parse responses and READY lines; the `http-server`
//! feature (default) adds the hyper/tokio server in [`http`], the `lambda` feature the
//! `lambda_runtime` handler in `lambda`.
//!
//! # Wire protocol
//!
//! **Request.** Parameters come from the query string (any path, `GET` or `POST`; a body is read
//! and ignored) or, for the Lambda entry point, from a JSON object with the same keys. Keys are
//! case-sensitive, as in STeLLAR; unknown keys are ignored; the first occurrence of a key wins.
//! Query values are percent-decoded (`+` is a space).
//!
//! | key | type | default | meaning |
//! | --- | --- | --- | --- |
//! | `IncrementLimit` | u64 | 0 | STeLLAR's busy loop: count to this number |
//! | `SpinMs` | f64, finite, >= 0 | 0 | time-based busy spin on the monotonic clock, in ms |
//! | `PayloadLengthBytes` | u64 | 0 | recorded as `payload_length_bytes` |
//! | `DataTransferChainIDs` | string (`[]`, `[a b]`) | absent | recorded in the [`Invocation`] |
//! | `RequestID` | string | random 16 hex chars | echoed as `RequestID` |
//!
//! `SpinMs` runs first, then the `IncrementLimit` loop. A malformed value is an
//! [`Error::InvalidParameter`] naming the key and the expected type; the HTTP entry point
//! answers it with `400` and `{"error": "<message>"}`.
//!
//! **Response** (`200`, `content-type: application/json`), see [`MeasurementResponse`]:
//!
//! ```json
//! {"RequestID": "9f2c...", "TimestampChain": ["1700000000000000000"],
//!  "instance_id": "0123456789abcdef", "cold": true, "invocations_on_instance": 1,
//!  "instance_start_unix_ns": 1699999999990000000, "handler_received_unix_ns": 1700000000000000000,
//!  "handler_done_unix_ns": 1700000000030100000, "spin_ns": 30000100, "spin_requested_ms": 30.0,
//!  "increments": 0, "payload_length_bytes": 0,
//!  "runtime": {"provider": "local", "region": null, "memory_mb": null, "arch": "x86_64",
//!              "cpu_model": "...", "boot_id": "...", "hostname": "...", "pid": 4242, "num_cpus": 2}}
//! ```
//!
//! `TimestampChain` holds `handler_received_unix_ns` as a decimal string (STeLLAR compatible).
//! A data-transfer chain's first function adds `chain` (every hop's timestamps, instance ids and
//! hash checks); chain members are configured from their environment, see [`chain`].
//! `cold` is true exactly for the first invocation an instance (process) handles;
//! `invocations_on_instance` counts from 1. Timestamps are Unix nanoseconds (wall clock);
//! `spin_ns` is measured on the monotonic clock and covers both spin phases.
//!
//! Receipt signals, for telling cold starts from platform pre-starts, queued requests and
//! process restarts (all on the function's own clock, never compared with the client's):
//! `ready_unix_ns` (listening / first Runtime-API poll), `process_nonce` (drawn at the first
//! request), `platform_instance_id` (the platform's name for the instance, see
//! [`instance::PLATFORM_INSTANCE_ENV_VARS`]), `in_flight_at_receipt` and `first_in_flight`
//! (the process's first request was still unanswered); `runtime.boot_time_unix_s` and
//! `runtime.init_type` beside `runtime.boot_id`. Each is `null` where unknown, and absent
//! from replies of older functions.
//!
//! **Process contract of `stellar-measure-http`.**
//! - Port: the first non-empty of `FUNCTIONS_CUSTOMHANDLER_PORT`, `FC_SERVER_PORT`, `PORT`;
//!   else 9000 on Alibaba FC (recognised by `FC_FUNCTION_NAME` / `FC_INSTANCE_ID`); else 8080;
//!   `0` picks an ephemeral port. Address: `STELLAR_LISTEN_ADDR` (default `0.0.0.0`, which FC
//!   requires).
//! - Instance id: `FC_INSTANCE_ID` when set, else on Cloud Run (`K_SERVICE` set) the metadata
//!   server's `instance/id` (host `GCE_METADATA_HOST`, default `metadata.google.internal`),
//!   else random. `RequestID`: the parameter, else FC's
//!   `x-fc-request-id` header, else random. `POST /invoke` (an FC event invocation) takes its
//!   parameters from a JSON object body when there is one (a bad one is a `400`).
//! - Once listening it prints exactly one line to stdout (see [`ready`]):
//!   `STELLAR-READY {"port":<port>,"instance_id":"<id>","pid":<pid>}`. Nothing else is written
//!   to stdout; errors go to stderr. The instance identity and runtime facts are created before
//!   this line, so `instance_start_unix_ns` is the process start.
//! - With `STELLAR_EXIT_ON_STDIN_EOF=1` the process exits (code 0) when stdin reaches EOF, so
//!   instances die with their parent even if the parent is SIGKILLed. SIGTERM and SIGINT exit
//!   cleanly (code 0).
//! - Runtime facts read `STELLAR_PROVIDER`, `STELLAR_REGION`/`AWS_REGION` and
//!   `STELLAR_MEMORY_MB`/`AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (see [`facts`]).
//!
//! # Layout
//! - [`request`]: [`Invocation`] parsing (query string, JSON).
//! - [`spin`]: the busy spin.
//! - [`instance`]: process-global identity and invocation counter.
//! - [`facts`]: runtime facts gathered once.
//! - [`response`]: [`MeasurementResponse`] and [`handle`].
//! - [`fault`]: fault injection for stellar's tests (off unless `STELLAR_FAULTS=1`).
//! - [`azure`]: the Azure custom handler's instance id (`CONTAINER_NAME`) and its non-proxied
//!   JSON envelope.
//! - [`cloud_run`]: the Cloud Run instance id from the metadata server.
//! - [`chain`]: data-transfer chains (producer-consumer hops, inline or through storage).
//! - [`ready`]: the `STELLAR-READY` line, written by entry points and parsed by the host.
//! - [`http`] (feature `http-server`): the hyper server used by `stellar-measure-http`.
//! - [`chain_proto`]: STeLLAR's `chainfunction.proto` messages (hand-written prost derives).
//! - [`grpc`] (feature `http-server`): the gRPC flavour (`STELLAR_PROTOCOL=grpc`): STeLLAR's
//!   `ProducerConsumer.InvokeNext` over h2c, the JSON reply in `stellarReply`.
//! - [`knative`]: the instance id on Knative (vHive): the pod's `HOSTNAME`.
//! - `lambda` (feature `lambda`): the Lambda event handler used by `stellar-measure-lambda`
//!   (function-URL / API Gateway v2 events and Direct Invoke; see that module for the reply
//!   shapes). It runs under AWS Lambda or `cargo lambda watch`, needs no READY line, and takes
//!   its instance id from `AWS_LAMBDA_LOG_STREAM_NAME`.

#![deny(missing_docs)]

pub mod azure;
pub mod chain;
pub mod chain_proto;
pub mod cloud_run;
pub mod facts;
pub mod fault;
#[cfg(feature = "http-server")]
pub mod grpc;
#[cfg(feature = "http-server")]
pub mod http;
pub mod instance;
pub mod knative;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod ready;
pub mod request;
pub mod response;
pub mod spin;

pub use facts::RuntimeFacts;
pub use instance::Instance;
pub use ready::ReadySignal;
pub use request::Invocation;
pub use response::{MeasurementResponse, handle, handle_begun, handle_received_at, handle_with};

use std::time::{SystemTime, UNIX_EPOCH};

/// Everything that can go wrong in the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request parameter has a value of the wrong type.
    #[error("parameter `{key}`: expected {expected}, got {value:?}")]
    InvalidParameter {
        /// The parameter name, e.g. `SpinMs`.
        key: &'static str,
        /// What the value should be, e.g. "a finite number >= 0 (milliseconds)".
        expected: &'static str,
        /// The value received (JSON text for JSON input).
        value: String,
    },
    /// A JSON invocation was not a JSON object.
    #[error("invocation must be a JSON object of parameters, got {found}")]
    NotAnObject {
        /// The JSON type found instead, e.g. "array".
        found: &'static str,
    },
    /// An environment variable has a value that cannot be used.
    #[error("environment variable `{var}`: expected {expected}, got {value:?}")]
    InvalidEnv {
        /// The variable name, e.g. `PORT`.
        var: &'static str,
        /// What the value should be.
        expected: &'static str,
        /// The value found.
        value: String,
    },
    /// A line does not start with [`ready::READY_PREFIX`].
    #[error(
        "not a READY line (expected it to start with {:?}): {line:?}",
        ready::READY_PREFIX
    )]
    NotReadyLine {
        /// The offending line.
        line: String,
    },
    /// A READY line's JSON part does not parse.
    #[error("malformed READY line {line:?}: {source}")]
    MalformedReadyLine {
        /// The offending line.
        line: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Now, as Unix nanoseconds (wall clock). A clock before 1970 reads as 0; one after the year
/// 2554 saturates.
#[must_use]
pub fn unix_ns_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// 16 random lowercase hex characters (64 bits from the OS-seeded thread RNG). Used for ids
/// only, never for measurements.
#[must_use]
pub fn random_hex_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// What the unit tests of several modules share.
#[cfg(test)]
mod test_env {
    /// An environment lookup over fixed `pairs` (the modules read the environment through a
    /// `Fn(&str) -> Option<String>`, never directly).
    pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_id_is_16_lowercase_hex_chars() {
        let id = random_hex_id();
        assert_eq!(id.len(), 16);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(random_hex_id(), random_hex_id());
    }

    #[test]
    fn unix_ns_now_is_after_2020() {
        assert!(unix_ns_now() > 1_577_836_800_000_000_000);
    }
}
