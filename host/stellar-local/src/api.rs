//! The JSON documents of the control API, shared by the server, the Rust handle and clients.
//!
//! They live in one module so the wire format has a single definition: the control server
//! serialises them, tests and the CLI deserialise them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Default `memory_mb` of a function (informational: passed to the instance, not enforced).
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Default `timeout_s`: the longest time the gateway waits for an instance's response head.
pub const DEFAULT_TIMEOUT_S: u32 = 60;
/// Default number of requests one instance serves at once.
pub const DEFAULT_INSTANCE_CONCURRENCY: u32 = 1;
/// Default idle time after which an instance is stopped.
pub const DEFAULT_KEEP_ALIVE_MS: u64 = 60_000;
/// Default cap on the live instances of one function (beyond it the gateway answers 429).
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;

/// Body of `PUT /v1/functions/<name>`: what to run and how to scale it.
///
/// Unknown fields are rejected so a typo cannot silently fall back to a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// SHA-256 (hex) of an artifact uploaded with `PUT /v1/artifacts/<sha256>`.
    pub artifact_sha256: String,
    /// Memory size; passed to instances as `STELLAR_MEMORY_MB`.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Seconds the gateway waits for an instance's response head before answering 504.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u32,
    /// Environment of the instances (the runtime's own variables take precedence).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Free-form labels, returned as given.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Requests one instance serves at once.
    #[serde(default = "default_instance_concurrency")]
    pub instance_concurrency: u32,
    /// An instance idle (no request in flight) for this long is stopped.
    #[serde(default = "default_keep_alive_ms")]
    pub keep_alive_ms: u64,
    /// Cap on the live and starting instances of the current version of the function.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// Always-ready instances: started when the function is deployed, ahead of any request,
    /// and never stopped for being idle (Azure Flex always-ready, Cloud Run and FC minimum
    /// instances, Knative initial scale). At most `max_instances`.
    #[serde(default)]
    pub min_instances: u32,
    /// When an instance's process exits on its own, start a new process in the same instance
    /// slot (same `STELLAR_LOCAL_INSTANCE_ID`), as platforms restart a crashed worker in place.
    #[serde(default)]
    pub restart_on_crash: bool,
}

impl FunctionSpec {
    /// A spec for `artifact_sha256` with every optional field at its default.
    pub fn new(artifact_sha256: impl Into<String>) -> Self {
        Self {
            artifact_sha256: artifact_sha256.into(),
            memory_mb: DEFAULT_MEMORY_MB,
            timeout_s: DEFAULT_TIMEOUT_S,
            env: BTreeMap::new(),
            tags: BTreeMap::new(),
            instance_concurrency: DEFAULT_INSTANCE_CONCURRENCY,
            keep_alive_ms: DEFAULT_KEEP_ALIVE_MS,
            max_instances: DEFAULT_MAX_INSTANCES,
            min_instances: 0,
            restart_on_crash: false,
        }
    }
}

fn default_memory_mb() -> u32 {
    DEFAULT_MEMORY_MB
}
fn default_timeout_s() -> u32 {
    DEFAULT_TIMEOUT_S
}
fn default_instance_concurrency() -> u32 {
    DEFAULT_INSTANCE_CONCURRENCY
}
fn default_keep_alive_ms() -> u64 {
    DEFAULT_KEEP_ALIVE_MS
}
fn default_max_instances() -> u32 {
    DEFAULT_MAX_INSTANCES
}

/// A deployed function as the control API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// The function's name (`[a-zA-Z0-9-]{1,64}`).
    pub name: String,
    /// Where to invoke it: `<gateway_url>/<name>`.
    pub url: String,
    /// The artifact its instances run.
    pub artifact_sha256: String,
    /// See [`FunctionSpec::memory_mb`].
    pub memory_mb: u32,
    /// See [`FunctionSpec::timeout_s`].
    pub timeout_s: u32,
    /// See [`FunctionSpec::instance_concurrency`].
    pub instance_concurrency: u32,
    /// See [`FunctionSpec::keep_alive_ms`].
    pub keep_alive_ms: u64,
    /// See [`FunctionSpec::max_instances`].
    pub max_instances: u32,
    /// See [`FunctionSpec::min_instances`].
    #[serde(default)]
    pub min_instances: u32,
    /// See [`FunctionSpec::restart_on_crash`].
    #[serde(default)]
    pub restart_on_crash: bool,
    /// See [`FunctionSpec::tags`].
    pub tags: BTreeMap<String, String>,
    /// Instances currently starting, serving, idle or draining.
    pub live_instances: u32,
    /// When the function was created (Unix ms; an update keeps it). `stellar cleanup
    /// --older-than` reads it through the adapter's `list-apis`.
    #[serde(default)]
    pub created_unix_ms: u64,
}

/// Body of `GET /v1/functions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionList {
    /// Every deployed function, ordered by name.
    pub functions: Vec<FunctionInfo>,
}

/// Why an instance stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Idle for longer than the function's keep-alive.
    KeepAlive,
    /// Its function was deleted.
    Deleted,
    /// Its function was updated; it was drained (finished its requests) first.
    Updated,
    /// The runtime shut down.
    Shutdown,
    /// The process exited on its own.
    Crashed,
    /// A request to it exceeded the function's `timeout_s`, so it was stopped.
    Timeout,
}

/// Why an instance's process was started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceOrigin {
    /// For a request that found no free instance (a cold start).
    #[default]
    Spawned,
    /// Ahead of any request, as one of the function's `min_instances`.
    Prestarted,
    /// In the slot of a process that crashed (`restart_on_crash`).
    Restarted,
}

impl InstanceOrigin {
    /// The kebab-case name (as in JSON and `instances.csv`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spawned => "spawned",
            Self::Prestarted => "prestarted",
            Self::Restarted => "restarted",
        }
    }
}

/// How the runtime served one request, from its own bookkeeping: the ground truth the
/// gateway sends in `x-stellar-start-label` (the names match `stellar_results::labels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartTruth {
    /// Started an instance while no ready instance existed.
    ColdNatural,
    /// Started an instance while ready instances existed but none had a free slot.
    ColdScaleout,
    /// Waited for an instance another request had started.
    ColdQueued,
    /// First request of an instance started ahead of requests (or one whose own request gave
    /// up before it was ready).
    Prewarmed,
    /// First request of a process restarted in place.
    ProcessRestart,
    /// A later request of a running process.
    Warm,
}

impl StartTruth {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ColdNatural => "cold-natural",
            Self::ColdScaleout => "cold-scaleout",
            Self::ColdQueued => "cold-queued",
            Self::Prewarmed => "prewarmed",
            Self::ProcessRestart => "process-restart",
            Self::Warm => "warm",
        }
    }
}

/// One instance ever started for a function: the ground truth for cold-start labels.
///
/// Wall-clock fields are Unix nanoseconds (for correlating with other logs);
/// `exec_to_ready_ms` is measured on the monotonic clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The id the instance reported on its READY line (also in its responses); `None` until ready.
    pub instance_id: Option<String>,
    /// Process id; `None` when the process could not be spawned.
    pub pid: Option<u32>,
    /// When the runtime started spawning the process.
    pub spawned_at_unix_ns: u64,
    /// When its READY line arrived.
    pub ready_at_unix_ns: Option<u64>,
    /// Spawn to READY line (the instance's init time).
    pub exec_to_ready_ms: Option<f64>,
    /// Requests it answered (response head received).
    pub requests_served: u64,
    /// Requests routed to it whose response has not ended yet.
    pub in_flight: u32,
    /// When it was stopped or found dead; `None` while alive.
    pub stopped_at_unix_ns: Option<u64>,
    /// Why it stopped; `None` while alive or when it never became ready (see `spawn_error`).
    pub stop_reason: Option<StopReason>,
    /// Why it never became ready (spawn failure, early exit, READY timeout).
    pub spawn_error: Option<String>,
    /// The instance slot (`STELLAR_LOCAL_INSTANCE_ID`); a restarted process keeps its slot.
    #[serde(default)]
    pub slot: String,
    /// Why the process was started.
    #[serde(default)]
    pub origin: InstanceOrigin,
}

/// Body of `GET /v1/functions/<name>/instances`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceList {
    /// Every instance ever started for the name, in spawn order.
    pub instances: Vec<InstanceRecord>,
}

/// Body of a successful `PUT /v1/artifacts/<sha256>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    /// The verified SHA-256 (lowercase hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The class of a failed control or gateway call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Missing or wrong bearer token.
    Unauthorized,
    /// No such function, artifact or route.
    NotFound,
    /// The request is malformed or refers to something invalid.
    Invalid,
    /// A limit was hit (max instances, size cap); retry later or raise the limit.
    Quota,
    /// Anything else (instance failure, timeout, shutdown).
    Other,
}

/// Body of every error response: `{"error":{"kind":..,"message":..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// See [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Its class.
    pub kind: ErrorKind,
    /// What went wrong, for humans.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_apply_to_missing_fields() {
        let spec: FunctionSpec = serde_json::from_str(r#"{"artifact_sha256":"ab"}"#).unwrap();
        assert_eq!(spec, FunctionSpec::new("ab"));
    }

    #[test]
    fn spec_rejects_unknown_fields() {
        let err = serde_json::from_str::<FunctionSpec>(r#"{"artifact_sha256":"ab","memory":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `memory`"), "{err}");
    }

    #[test]
    fn stop_reasons_are_kebab_case() {
        let json = serde_json::to_string(&[StopReason::KeepAlive, StopReason::Crashed]).unwrap();
        assert_eq!(json, r#"["keep-alive","crashed"]"#);
    }

    #[test]
    fn error_body_shape() {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: ErrorKind::NotFound,
                message: "no".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"kind":"not-found","message":"no"}}"#
        );
    }
}
