//! stellar's own settings: the optional `"Stellar"` object of an experiment file, and the
//! resolved [`Settings`] the plan carries.
//!
//! Why: STeLLAR's schema has no place for what a reproducible, self-contained benchmark needs
//! (a seed, request timeout, connection policy, failure budget, output directory, cold-start
//! threshold, and the knobs of the embedded `local` provider). They live in one extra top-level
//! object, `"Stellar"`, with PascalCase keys like the rest of the file; STeLLAR files simply omit
//! it. Like the rest of the file it is strict: an unknown key is an error.
//!
//! ```json
//! "Stellar": {
//!   "Seed": 42,
//!   "RequestTimeoutSeconds": 900,
//!   "Connection": "fresh",
//!   "MaxFailures": 10,
//!   "OutputDir": "results",
//!   "ColdThresholdMs": 300,
//!   "PrewarmGapMs": 10000,
//!   "QueuedGapMs": 50,
//!   "Local": { "KeepAliveSeconds": 60, "MaxInstances": 1000, "InstanceConcurrency": 1,
//!              "MinInstances": 0, "RestartOnCrash": false },
//!   "Architecture": "x86_64",
//!   "FunctionBinary": "build/bootstrap",
//!   "ProviderSettings": { "region": "eu-west-1", "role-arn": "arn:aws:iam::123456789012:role/stellar" }
//! }
//! ```
//!
//! `ProviderSettings` is handed verbatim to the provider adapter, which checks its own keys.
//! Credentials are refused there: the plan (with these settings) is saved beside the results,
//! so secrets come from the environment instead, read by the host for the adapter they belong to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Issue;
use crate::json_path::JsonPath;

/// Default `RequestTimeoutSeconds`: STeLLAR's 15-minute HTTP client timeout.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: f64 = 900.0;
/// Default `GrpcRequestTimeoutSeconds`: STeLLAR's gRPC client timeout (3 minutes,
/// `benchgrpc/execute.go`: "15 minutes are not practical for vHive").
pub const DEFAULT_GRPC_REQUEST_TIMEOUT_SECONDS: f64 = 180.0;
/// Default `OutputDir`.
pub const DEFAULT_OUTPUT_DIR: &str = "results";
/// Default `ColdThresholdMs`: STeLLAR's default cold/warm split for its bar plot.
pub const DEFAULT_COLD_THRESHOLD_MS: u64 = 300;
/// Default `PrewarmGapMs`: Datadog's proactive-initialisation threshold for Lambda, the
/// fallback when no forced-cold run has calibrated one for the provider.
pub const DEFAULT_PREWARM_GAP_MS: u64 = 10_000;
/// Default `QueuedGapMs`: how soon after its instance became ready a non-first request must
/// arrive to count as queued behind the start.
pub const DEFAULT_QUEUED_GAP_MS: u64 = 50;
/// Default `Local.KeepAliveSeconds`.
pub const DEFAULT_KEEP_ALIVE_SECONDS: f64 = 60.0;
/// Default `Local.MaxInstances`.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// Default `Local.InstanceConcurrency`.
pub const DEFAULT_INSTANCE_CONCURRENCY: u32 = 1;
/// Upper bound for the second-valued settings (one day): keeps every value a sane `u64` of ms.
pub const MAX_SETTING_SECONDS: f64 = 86_400.0;

/// The `"Stellar"` object as written. Every key is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "PascalCase",
    deny_unknown_fields,
    expecting = "the `Stellar` settings object"
)]
pub struct StellarConfig {
    /// Seed of every random choice (stochastic inter-arrival times). When absent, the plan takes
    /// the current time in ms as the seed and records it in `plan.json`, so any run can be
    /// repeated exactly by writing that seed here (or passing it on the command line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Timeout of one timed request, in seconds (default 900 = STeLLAR's 15 minutes).
    #[serde(default = "default_request_timeout_seconds")]
    pub request_timeout_seconds: f64,
    /// Timeout of one timed gRPC call, in seconds (default 180 = STeLLAR's gRPC timeout).
    #[serde(default = "default_grpc_request_timeout_seconds")]
    pub grpc_request_timeout_seconds: f64,
    /// `"fresh"` (default): a new TCP/TLS connection per request, with the connect time
    /// recorded apart from the latency; `"reuse"`: a keep-alive connection pool;
    /// `"preconnect"`: a new connection per request, opened before its burst is due.
    #[serde(default)]
    pub connection: ConnectionMode,
    /// Failed requests tolerated per sub-experiment before it is aborted. Default: STeLLAR's
    /// rule, `Bursts * BurstSizes[0] / 10` (integer division) for each sub-experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u64>,
    /// Throttled requests (HTTP 429 and providers' throttling codes) tolerated per
    /// sub-experiment before it is aborted. When set, throttling has this budget of its own
    /// and no longer counts against `MaxFailures`; when absent, throttled requests are
    /// failures like any other, as in STeLLAR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_throttled: Option<u64>,
    /// Directory under which each run's results directory is created (default `"results"`).
    #[serde(default = "default_output_dir")]
    pub output_dir: String,
    /// Latency (ms) from which a request counts as cold in reports (default 300, as STeLLAR's
    /// `bar` plot). A sub-experiment's `"Visualization": "bar-<ms>"` overrides it.
    #[serde(default = "default_cold_threshold_ms")]
    pub cold_threshold_ms: u64,
    /// Gap (ms, on the function's clock) between an instance becoming ready and its first
    /// request above which that request is `prewarmed`, not cold (default 10000; calibrate it
    /// per provider from a forced-cold run: twice the p99 of the gaps of its cold starts).
    #[serde(default = "default_prewarm_gap_ms")]
    pub prewarm_gap_ms: u64,
    /// A later request that reaches its instance at most this many ms after the instance became
    /// ready, while the instance's first request is still running, is `cold-queued` (default 50).
    #[serde(default = "default_queued_gap_ms")]
    pub queued_gap_ms: u64,
    /// Settings of the embedded `local` provider (ignored by other providers).
    #[serde(default)]
    pub local: LocalConfig,
    /// Instruction set of deployed functions: `"x86_64"` (default) or `"arm64"`.
    #[serde(default)]
    pub architecture: Architecture,
    /// A prebuilt measurement-function executable to deploy (for `aws`: the Lambda `bootstrap`),
    /// relative to the experiment file. Without it stellar builds one (`stellar build`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_binary: Option<String>,
    /// Settings handed verbatim to the provider adapter's `configure` (keys are the adapter's;
    /// `stellar plugins list` shows them). Never credentials.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provider_settings: BTreeMap<String, String>,
}

/// Instruction set of the machines functions run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Architecture {
    /// 64-bit x86 (every provider's default).
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    /// 64-bit ARM (AWS Graviton, ...).
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// The name used in experiment files and by AWS.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

/// Parts of `ProviderSettings` keys that mark a credential, which must not be in the file.
const SECRET_KEY_MARKERS: [&str; 5] = ["secret", "password", "token", "access-key", "credential"];

/// The `"Stellar": { "Local": { ... } }` object as written: the embedded local provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "PascalCase",
    deny_unknown_fields,
    expecting = "the `Local` settings object"
)]
pub struct LocalConfig {
    /// Idle seconds after which an instance stops, so the next request is cold (default 60).
    #[serde(default = "default_keep_alive_seconds")]
    pub keep_alive_seconds: f64,
    /// Most instances alive at once per run; a request beyond it gets HTTP 429 (default 1000).
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// Requests one instance serves at the same time (default 1, like AWS Lambda).
    #[serde(default = "default_instance_concurrency")]
    pub instance_concurrency: u32,
    /// Always-ready instances per function, started at deployment before any request (like
    /// Azure always-ready or minimum instances elsewhere); never stopped for idleness.
    #[serde(default)]
    pub min_instances: u32,
    /// A crashed instance process is restarted in the same instance slot (default false).
    #[serde(default)]
    pub restart_on_crash: bool,
    /// What the local functions speak: `http` (default) or `grpc` (STeLLAR's
    /// `ProducerConsumer.InvokeNext` over h2c, as on vHive).
    #[serde(default)]
    pub protocol: FunctionProtocol,
    /// Tests only: fault-injection query parameters (`Fault=crash&FaultEvery=2`, keys starting
    /// with `Fault`) appended to every timed request; local functions are started with
    /// `STELLAR_FAULTS=1` so they honour them (see `stellar_measure::fault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_query: Option<String>,
    /// Tests only: local instances print their READY line this many ms late (a slow start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_ready_delay_ms: Option<u64>,
}

/// How timed requests use connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionMode {
    /// A new TCP (and TLS) connection per request; connect time is recorded separately.
    #[default]
    Fresh,
    /// Keep-alive connections from a pool (what STeLLAR's Go client mostly did).
    Reuse,
    /// A new connection per request like `Fresh`, but opened before its burst is due (up to
    /// 250 ms ahead), so the burst's requests all leave at the due instant; connect time is
    /// still recorded in its own column, and not included in the client latency.
    Preconnect,
}

fn default_request_timeout_seconds() -> f64 {
    DEFAULT_REQUEST_TIMEOUT_SECONDS
}
fn default_grpc_request_timeout_seconds() -> f64 {
    DEFAULT_GRPC_REQUEST_TIMEOUT_SECONDS
}
fn default_grpc_request_timeout_ms() -> u64 {
    seconds_to_ms(DEFAULT_GRPC_REQUEST_TIMEOUT_SECONDS)
}
fn default_output_dir() -> String {
    DEFAULT_OUTPUT_DIR.to_owned()
}
fn default_cold_threshold_ms() -> u64 {
    DEFAULT_COLD_THRESHOLD_MS
}
fn default_prewarm_gap_ms() -> u64 {
    DEFAULT_PREWARM_GAP_MS
}
fn default_queued_gap_ms() -> u64 {
    DEFAULT_QUEUED_GAP_MS
}
fn default_keep_alive_seconds() -> f64 {
    DEFAULT_KEEP_ALIVE_SECONDS
}
fn default_max_instances() -> u32 {
    DEFAULT_MAX_INSTANCES
}
fn default_instance_concurrency() -> u32 {
    DEFAULT_INSTANCE_CONCURRENCY
}

impl Default for StellarConfig {
    fn default() -> Self {
        Self {
            seed: None,
            request_timeout_seconds: DEFAULT_REQUEST_TIMEOUT_SECONDS,
            grpc_request_timeout_seconds: DEFAULT_GRPC_REQUEST_TIMEOUT_SECONDS,
            connection: ConnectionMode::default(),
            max_failures: None,
            max_throttled: None,
            output_dir: default_output_dir(),
            cold_threshold_ms: DEFAULT_COLD_THRESHOLD_MS,
            prewarm_gap_ms: DEFAULT_PREWARM_GAP_MS,
            queued_gap_ms: DEFAULT_QUEUED_GAP_MS,
            local: LocalConfig::default(),
            architecture: Architecture::default(),
            function_binary: None,
            provider_settings: BTreeMap::new(),
        }
    }
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            keep_alive_seconds: DEFAULT_KEEP_ALIVE_SECONDS,
            max_instances: DEFAULT_MAX_INSTANCES,
            instance_concurrency: DEFAULT_INSTANCE_CONCURRENCY,
            min_instances: 0,
            restart_on_crash: false,
            protocol: FunctionProtocol::Http,
            fault_query: None,
            fault_ready_delay_ms: None,
        }
    }
}

/// The protocol of the measurement function (`Local.Protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "\"http\" or \"grpc\"")]
pub enum FunctionProtocol {
    /// HTTP/1.1, the JSON reply.
    #[default]
    Http,
    /// gRPC over h2c (`measurement-fn/proto/chainfunction.proto`).
    Grpc,
}

/// The resolved `"Stellar"` settings (defaults applied, durations in ms). The seed is not here
/// but at the top of the plan, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Timeout of one timed request.
    pub request_timeout_ms: u64,
    /// Timeout of one timed gRPC call (plans written before gRPC existed: the default).
    #[serde(default = "default_grpc_request_timeout_ms")]
    pub grpc_request_timeout_ms: u64,
    /// How timed requests use connections.
    pub connection: ConnectionMode,
    /// Explicit failure budget per sub-experiment; `None` = STeLLAR's rule (each
    /// sub-experiment's resolved budget is in its `max_failures`).
    pub max_failures: Option<u64>,
    /// Separate budget for throttled requests; `None` = they count as failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_throttled: Option<u64>,
    /// Root directory for results.
    pub output_dir: PathBuf,
    /// Default cold/warm latency threshold.
    pub cold_threshold_ms: u64,
    /// Ready-to-first-request gap above which a first request is `prewarmed`.
    #[serde(default = "default_prewarm_gap_ms")]
    pub prewarm_gap_ms: u64,
    /// Ready-to-receipt gap within which a non-first request is `cold-queued`.
    #[serde(default = "default_queued_gap_ms")]
    pub queued_gap_ms: u64,
    /// The embedded local provider's settings.
    pub local: LocalSettings,
    /// Instruction set of deployed functions.
    pub architecture: Architecture,
    /// A prebuilt measurement-function executable (resolved against the experiment's folder).
    pub function_binary: Option<PathBuf>,
    /// Settings for the provider adapter, verbatim.
    pub provider_settings: BTreeMap<String, String>,
}

/// Resolved settings of the embedded `local` provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSettings {
    /// Idle time after which an instance stops.
    pub keep_alive_ms: u64,
    /// Most instances alive at once.
    pub max_instances: u32,
    /// Requests one instance serves concurrently.
    pub instance_concurrency: u32,
    /// Always-ready instances started before any request.
    #[serde(default)]
    pub min_instances: u32,
    /// Restart a crashed instance process in its slot.
    #[serde(default)]
    pub restart_on_crash: bool,
    /// What the local functions speak.
    #[serde(default)]
    pub protocol: FunctionProtocol,
    /// Tests only: fault-injection query appended to every timed request (`Local.FaultQuery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_query: Option<String>,
    /// Tests only: READY-line delay of local instances (`Local.FaultReadyDelayMs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_ready_delay_ms: Option<u64>,
}

impl LocalSettings {
    /// Whether fault injection was asked for (local functions then get `STELLAR_FAULTS=1`).
    pub fn faults_enabled(&self) -> bool {
        self.fault_query.is_some() || self.fault_ready_delay_ms.is_some()
    }
}

/// Checks `Local.FaultQuery`: `key=value` pairs joined by `&`, keys starting with `Fault`
/// (so it cannot change the measurement's own parameters), URL-safe characters only.
fn check_fault_query(query: &str) -> Result<(), String> {
    if query.is_empty() || query.len() > 256 {
        return Err("must be 1 to 256 characters of key=value pairs joined by `&`".into());
    }
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not key=value"));
        };
        if !key.starts_with("Fault") {
            return Err(format!(
                "key `{key}` does not start with `Fault` (only fault knobs may be added)"
            ));
        }
        let safe = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.'))
        };
        if !safe(key) || !safe(value) {
            return Err(format!(
                "`{pair}` must use only letters, digits, `:`, `-`, `_` and `.`"
            ));
        }
    }
    Ok(())
}

/// Converts a validated number of seconds into whole milliseconds (rounded to nearest).
fn seconds_to_ms(seconds: f64) -> u64 {
    // `as` saturates; callers have checked 0 <= seconds <= MAX_SETTING_SECONDS.
    (seconds * 1000.0).round() as u64
}

impl Settings {
    /// Checks the raw settings and applies defaults. `output_dir_override` (e.g. a command-line
    /// flag) replaces `OutputDir`; relative paths in the file are resolved against
    /// `experiment_dir`.
    pub(crate) fn resolve(
        raw: &StellarConfig,
        output_dir_override: Option<&PathBuf>,
        experiment_dir: &Path,
    ) -> Result<Self, Issue> {
        let base = JsonPath::root().key("Stellar");
        let timeout = raw.request_timeout_seconds;
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= MAX_SETTING_SECONDS) {
            return Err(Issue::new(
                base.key("RequestTimeoutSeconds"),
                format!("must be more than 0 and at most {MAX_SETTING_SECONDS} seconds"),
            ));
        }
        let grpc_timeout = raw.grpc_request_timeout_seconds;
        if !(grpc_timeout.is_finite() && grpc_timeout > 0.0 && grpc_timeout <= MAX_SETTING_SECONDS)
        {
            return Err(Issue::new(
                base.key("GrpcRequestTimeoutSeconds"),
                format!("must be more than 0 and at most {MAX_SETTING_SECONDS} seconds"),
            ));
        }
        if raw.output_dir.trim().is_empty() {
            return Err(Issue::new(base.key("OutputDir"), "must not be empty"));
        }
        let local = &raw.local;
        let local_path = base.key("Local");
        let keep_alive = local.keep_alive_seconds;
        if !(keep_alive.is_finite() && (0.0..=MAX_SETTING_SECONDS).contains(&keep_alive)) {
            return Err(Issue::new(
                local_path.key("KeepAliveSeconds"),
                format!("must be between 0 and {MAX_SETTING_SECONDS} seconds"),
            ));
        }
        if local.max_instances == 0 {
            return Err(Issue::new(
                local_path.key("MaxInstances"),
                "must be at least 1",
            ));
        }
        if local.instance_concurrency == 0 {
            return Err(Issue::new(
                local_path.key("InstanceConcurrency"),
                "must be at least 1",
            ));
        }
        if local.min_instances > local.max_instances {
            return Err(Issue::new(
                local_path.key("MinInstances"),
                format!(
                    "must be at most MaxInstances ({}), got {}",
                    local.max_instances, local.min_instances
                ),
            ));
        }
        let max_ms = (MAX_SETTING_SECONDS * 1000.0) as u64;
        for (key, value) in [
            ("PrewarmGapMs", raw.prewarm_gap_ms),
            ("QueuedGapMs", raw.queued_gap_ms),
        ] {
            if value == 0 || value > max_ms {
                return Err(Issue::new(
                    base.key(key),
                    format!("must be between 1 and {max_ms} ms"),
                ));
            }
        }
        if let Some(query) = &local.fault_query {
            check_fault_query(query)
                .map_err(|why| Issue::new(local_path.key("FaultQuery"), why))?;
        }
        if local
            .fault_ready_delay_ms
            .is_some_and(|ms| ms as f64 > MAX_SETTING_SECONDS * 1000.0)
        {
            return Err(Issue::new(
                local_path.key("FaultReadyDelayMs"),
                format!("must be at most {} ms", MAX_SETTING_SECONDS * 1000.0),
            ));
        }
        for (key, value) in &raw.provider_settings {
            let path = base.key("ProviderSettings").key(key);
            let lower = key.to_ascii_lowercase();
            if let Some(marker) = SECRET_KEY_MARKERS.iter().find(|m| lower.contains(*m)) {
                return Err(Issue::new(
                    path,
                    format!(
                        "looks like a credential (`{marker}`); experiment files are copied into \
                         the results, so credentials come from the environment (for aws: \
                         AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"
                    ),
                ));
            }
            if key.trim().is_empty() || value.trim().is_empty() {
                return Err(Issue::new(path, "keys and values must not be empty"));
            }
        }
        let function_binary = match raw.function_binary.as_deref() {
            Some(p) if p.trim().is_empty() => {
                return Err(Issue::new(
                    base.key("FunctionBinary"),
                    "must be a path to an executable",
                ));
            }
            Some(p) => Some(experiment_dir.join(p)),
            None => None,
        };
        Ok(Self {
            request_timeout_ms: seconds_to_ms(timeout),
            grpc_request_timeout_ms: seconds_to_ms(grpc_timeout),
            connection: raw.connection,
            max_failures: raw.max_failures,
            max_throttled: raw.max_throttled,
            output_dir: output_dir_override
                .cloned()
                .unwrap_or_else(|| PathBuf::from(&raw.output_dir)),
            cold_threshold_ms: raw.cold_threshold_ms,
            prewarm_gap_ms: raw.prewarm_gap_ms,
            queued_gap_ms: raw.queued_gap_ms,
            local: LocalSettings {
                keep_alive_ms: seconds_to_ms(keep_alive),
                max_instances: local.max_instances,
                instance_concurrency: local.instance_concurrency,
                min_instances: local.min_instances,
                restart_on_crash: local.restart_on_crash,
                protocol: local.protocol,
                fault_query: local.fault_query.clone(),
                fault_ready_delay_ms: local.fault_ready_delay_ms,
            },
            architecture: raw.architecture,
            function_binary,
            provider_settings: raw.provider_settings.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StellarConfig, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn empty_object_means_all_defaults() {
        let raw = parse("{}").expect("parses");
        assert_eq!(raw, StellarConfig::default());
        let settings = Settings::resolve(&raw, None, Path::new("exp")).expect("valid");
        assert_eq!(
            settings,
            Settings {
                request_timeout_ms: 900_000,
                grpc_request_timeout_ms: 180_000,
                connection: ConnectionMode::Fresh,
                max_failures: None,
                max_throttled: None,
                output_dir: PathBuf::from("results"),
                cold_threshold_ms: 300,
                prewarm_gap_ms: 10_000,
                queued_gap_ms: 50,
                local: LocalSettings {
                    keep_alive_ms: 60_000,
                    max_instances: 1000,
                    instance_concurrency: 1,
                    min_instances: 0,
                    restart_on_crash: false,
                    protocol: FunctionProtocol::Http,
                    fault_query: None,
                    fault_ready_delay_ms: None,
                },
                architecture: Architecture::X86_64,
                function_binary: None,
                provider_settings: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn every_key_resolves() {
        let raw = parse(
            r#"{"Seed": 7, "RequestTimeoutSeconds": 2.5, "Connection": "reuse", "MaxFailures": 3,
                "OutputDir": "out", "ColdThresholdMs": 50, "PrewarmGapMs": 400, "QueuedGapMs": 80,
                "Local": {"KeepAliveSeconds": 0.5, "MaxInstances": 4, "InstanceConcurrency": 2,
                          "MinInstances": 2, "RestartOnCrash": true},
                "Architecture": "arm64", "FunctionBinary": "bin/bootstrap",
                "ProviderSettings": {"region": "eu-west-1"}}"#,
        )
        .expect("parses");
        assert_eq!(raw.seed, Some(7));
        let settings = Settings::resolve(&raw, Some(&PathBuf::from("elsewhere")), Path::new("exp"))
            .expect("valid");
        assert_eq!(settings.request_timeout_ms, 2500);
        assert_eq!(settings.connection, ConnectionMode::Reuse);
        assert_eq!(settings.max_failures, Some(3));
        assert_eq!(settings.output_dir, PathBuf::from("elsewhere"));
        assert_eq!(settings.cold_threshold_ms, 50);
        assert_eq!(settings.local.keep_alive_ms, 500);
        assert_eq!(settings.local.max_instances, 4);
        assert_eq!(settings.local.instance_concurrency, 2);
        assert_eq!(settings.local.min_instances, 2);
        assert!(settings.local.restart_on_crash);
        assert_eq!((settings.prewarm_gap_ms, settings.queued_gap_ms), (400, 80));
        assert_eq!(settings.architecture, Architecture::Arm64);
        assert_eq!(
            settings.function_binary,
            Some(PathBuf::from("exp/bin/bootstrap"))
        );
        assert_eq!(settings.provider_settings["region"], "eu-west-1");
    }

    #[test]
    fn bad_values_name_their_path() {
        let issue = |text: &str| {
            Settings::resolve(&parse(text).expect("parses"), None, Path::new("."))
                .expect_err("invalid")
                .path
                .to_string()
        };
        assert_eq!(
            issue(r#"{"RequestTimeoutSeconds": 0}"#),
            "Stellar.RequestTimeoutSeconds"
        );
        assert_eq!(
            issue(r#"{"Local": {"MaxInstances": 2, "MinInstances": 3}}"#),
            "Stellar.Local.MinInstances"
        );
        assert_eq!(issue(r#"{"PrewarmGapMs": 0}"#), "Stellar.PrewarmGapMs");
        assert_eq!(issue(r#"{"OutputDir": " "}"#), "Stellar.OutputDir");
        assert_eq!(
            issue(r#"{"Local": {"KeepAliveSeconds": -1}}"#),
            "Stellar.Local.KeepAliveSeconds"
        );
        assert_eq!(
            issue(r#"{"Local": {"MaxInstances": 0}}"#),
            "Stellar.Local.MaxInstances"
        );
        assert_eq!(
            issue(r#"{"Local": {"InstanceConcurrency": 0}}"#),
            "Stellar.Local.InstanceConcurrency"
        );
        assert_eq!(
            issue(r#"{"ProviderSettings": {"secret-access-key": "x"}}"#),
            "Stellar.ProviderSettings.secret-access-key"
        );
        assert_eq!(
            issue(r#"{"ProviderSettings": {"region": ""}}"#),
            "Stellar.ProviderSettings.region"
        );
        assert_eq!(issue(r#"{"FunctionBinary": ""}"#), "Stellar.FunctionBinary");
        for bad in [
            "",
            "SpinMs=5",
            "Fault",
            "Fault=a b",
            "Fault=x&IncrementLimit=1",
        ] {
            let text = format!(r#"{{"Local": {{"FaultQuery": "{bad}"}}}}"#);
            assert_eq!(issue(&text), "Stellar.Local.FaultQuery", "{bad}");
        }
    }

    #[test]
    fn fault_knobs_are_off_by_default_and_kept_when_set() {
        let resolve = |text: &str| {
            Settings::resolve(&parse(text).expect("parses"), None, Path::new(".")).expect("valid")
        };
        let plain = resolve("{}");
        assert!(!plain.local.faults_enabled());
        // Absent knobs leave plan.json unchanged.
        assert!(!serde_json::to_string(&plain).unwrap().contains("fault"));
        let faulty = resolve(
            r#"{"Local": {"FaultQuery": "Fault=status:503&FaultEvery=2", "FaultReadyDelayMs": 5}}"#,
        );
        assert!(faulty.local.faults_enabled());
        assert_eq!(
            faulty.local.fault_query.as_deref(),
            Some("Fault=status:503&FaultEvery=2")
        );
        assert_eq!(faulty.local.fault_ready_delay_ms, Some(5));
    }

    #[test]
    fn unknown_keys_and_connection_values_are_rejected() {
        assert!(parse(r#"{"Sed": 1}"#).is_err());
        assert!(parse(r#"{"Local": {"KeepAlive": 1}}"#).is_err());
        let err = parse(r#"{"Connection": "keepalive"}"#).expect_err("bad variant");
        assert!(
            err.to_string()
                .contains("expected one of `fresh`, `reuse`, `preconnect`"),
            "{err}"
        );
    }
}
