//! The validated plan: everything a run will do, decided before it starts.
//!
//! Why: nothing downstream of this crate takes the raw file. [`Plan`] is the single checked,
//! defaults-applied description of a run: provider, resolved settings, seed, and for each
//! sub-experiment its parameters and its complete burst schedule (see [`crate::schedule`]).
//! It is serialized as `plan.json` next to the results (field order is fixed by the struct
//! definitions, so the file is deterministic and diffable), and deserializes back unchanged.
//!
//! Fields that the native Rust measurement function cannot honour (`Runtime`, `Handler`,
//! `Function`, `PackagePattern`, `SnapStartEnabled`, `CPUBoostEnabled` outside `gcr`,
//! `RepurposeIdentifier`, and `DataTransferChainLength > 1` / `StorageTransfer` where no chain can be deployed) are
//! accepted, so STeLLAR files load unchanged, but are listed in [`Plan::ignored`] with the
//! reason, whenever the file gives them a non-default value. Nothing is dropped silently; a key
//! given twice in one object is read as STeLLAR reads it (the last value) and listed in
//! [`Plan::duplicate_keys`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duplicates::DuplicateKey;
use crate::duration::parse_go_duration;
use crate::error::{ConfigError, Issue};
use crate::iat::{IatType, MAX_IAT_SECONDS};
use crate::json_path::JsonPath;
use crate::raw::{self, Experiment, SubExperiment};
use crate::schedule::{self, PlannedBurst, ScheduleSpec};
use crate::settings::{Settings, StellarConfig};

/// The `schema_version` of the plans this crate writes.
pub const PLAN_SCHEMA_VERSION: &str = "stellar-plan/1";
/// Most bursts per sub-experiment: the whole schedule is materialised in `plan.json`
/// (STeLLAR's largest published experiments use 3000).
pub const MAX_BURSTS: i64 = 1_000_000;
/// Most bursts in one plan, over all sub-experiments: bounds the planner's memory (a file with
/// many million-burst sub-experiments is refused before any schedule is built).
pub const MAX_TOTAL_BURSTS: u64 = 10_000_000;
/// Most requests per burst (STeLLAR already warns above 800 because of NIC contention).
pub const MAX_BURST_SIZE: i64 = 1_000_000;
/// Most endpoints (function replicas) per sub-experiment.
pub const MAX_PARALLELISM: i64 = 100_000;
/// Longest data-transfer chain (functions deployed per endpoint; STeLLAR's paper used 2 and 8).
pub const MAX_CHAIN_LENGTH: i64 = 100;
/// Longest provider name (a provider adapter's `describe` name).
pub const MAX_PROVIDER_NAME: usize = 64;
/// Number of characters of the sanitised title kept in a slug.
const SLUG_TITLE_MAX: usize = 48;

/// Choices that come from outside the experiment file (command line, clock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Use this seed instead of the file's `Stellar.Seed` (or the clock).
    pub seed_override: Option<u64>,
    /// Plan only the sub-experiment with this index (STeLLAR's `-r`). The whole file is still
    /// validated; the selected sub-experiment keeps its index, slug and random streams.
    pub only_sub_experiment: Option<usize>,
    /// Use this results root instead of `Stellar.OutputDir`.
    pub output_dir_override: Option<PathBuf>,
    /// The current time (Unix ms): recorded in the plan and used as the seed when neither the
    /// file nor `seed_override` gives one. Passed in so that planning is deterministic.
    pub now_unix_ms: u64,
}

/// Where the requests go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// A provider adapter, by the name its `describe` declares: a built-in one (`local`,
    /// `aws`), an installed one, or the one passed with `--plugin`. Whether an adapter of that
    /// name exists is decided when the run opens it, not here.
    Named(String),
    /// STeLLAR's external mode: no deployment, every request goes to this URL. A bare hostname
    /// such as `www.google.com` becomes `https://www.google.com`; a full URL is kept as is.
    External {
        /// The URL requests are sent to.
        url: String,
    },
}

impl ProviderKind {
    /// The provider name, or `None` for an external URL.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Named(name) => Some(name),
            Self::External { .. } => None,
        }
    }

    /// Whether this is the embedded local provider.
    pub fn is_local(&self) -> bool {
        self.name() == Some("local")
    }
}

/// Where the plan's seed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedSource {
    /// [`PlanOptions::seed_override`] (e.g. `--seed`).
    Override,
    /// The file's `Stellar.Seed`.
    File,
    /// Neither: the seed is [`PlanOptions::now_unix_ms`].
    Clock,
}

/// How the function is packaged (`PackageType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PackageType {
    /// A zip archive (AWS, Azure, Alibaba).
    Zip,
    /// A container image (legacy AWS, vHive).
    Image,
    /// A container image (required by Google Cloud Run).
    Container,
}

impl PackageType {
    /// Parses a `PackageType` value (case-sensitive, as STeLLAR).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "Zip" => Some(Self::Zip),
            "Image" => Some(Self::Image),
            "Container" => Some(Self::Container),
            _ => None,
        }
    }
}

/// Which plots to draw (`Visualization`); a `bar-<ms>` value sets the sub-experiment's
/// `cold_threshold_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visualization {
    /// Empirical CDF of latencies (STeLLAR's default).
    Cdf,
    /// Per-burst counts of warm and cold requests.
    Bar,
    /// One latency histogram per burst.
    Histogram,
    /// All of the above.
    All,
    /// No plots.
    None,
}

/// A field of the file that stellar accepted but does not act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredField {
    /// Where it is, e.g. `SubExperiments[0].Handler`.
    pub json_path: String,
    /// The value the file gives it.
    pub value: serde_json::Value,
    /// Why it has no effect.
    pub reason: String,
}

/// One sub-experiment, validated, with its complete schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubExperimentPlan {
    /// Index in the file's `SubExperiments` (also keys the random streams).
    pub index: usize,
    /// `Title` as written.
    pub title: String,
    /// Filesystem-safe, unique name: `"{index:02}-{sanitised title}"`, e.g. `00-warm`.
    pub slug: String,
    /// Number of endpoints (function replicas).
    pub parallelism: u32,
    /// `FunctionMemoryMB`.
    pub function_memory_mb: u64,
    /// `FunctionImageSizeMB` (0 = no padding).
    pub function_image_size_mb: f64,
    /// `PackageType`.
    pub package_type: PackageType,
    /// `PayloadLengthBytes`.
    pub payload_length_bytes: u64,
    /// Google Cloud Run CPU boost (only ever true for provider `gcr`).
    pub cpu_boost: bool,
    /// `DataTransferChainLength`: functions per endpoint chain (1 = no chain; always 1 for a
    /// URL provider, where nothing is deployed).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub data_transfer_chain_length: u32,
    /// `StorageTransfer`: chain hops pass the payload through object storage instead of
    /// inline (only ever true in a chain).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub storage_transfer: bool,
    /// How gaps between an endpoint's bursts are drawn.
    pub iat_type: IatType,
    /// `IATSeconds`.
    pub iat_seconds: f64,
    /// Which plots to draw.
    pub visualization: Visualization,
    /// Latency from which a request counts as cold (from `bar-<ms>` or the settings).
    pub cold_threshold_ms: u64,
    /// Failed requests tolerated before the sub-experiment is aborted (abort when exceeded).
    pub max_failures: u64,
    /// Throttled requests tolerated before it is aborted, when throttling has a budget of its
    /// own (`Stellar.MaxThrottled`); `None`: throttled requests count as failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_throttled: Option<u64>,
    /// `BurstSizes` (cycled per round).
    pub burst_sizes: Vec<u32>,
    /// `DesiredServiceTimes` in ms (index `min(round, len-1)`).
    pub service_times_ms: Vec<f64>,
    /// The schedule, sorted by `(offset_ms, burst_id)`.
    pub bursts: Vec<PlannedBurst>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl SubExperimentPlan {
    /// Number of requests the schedule sends.
    pub fn total_requests(&self) -> u64 {
        self.bursts.iter().map(|b| u64::from(b.size)).sum()
    }

    /// A lower bound of the sub-experiment's wall time: when the last burst is due plus its
    /// service time (network, queueing and cold starts come on top).
    pub fn duration_estimate(&self) -> Duration {
        let ms = self
            .bursts
            .iter()
            .map(|b| b.offset_ms + b.spin_ms)
            .fold(0.0, f64::max);
        Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX)
    }
}

/// A validated, fully resolved run: see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`PLAN_SCHEMA_VERSION`] for plans made by this version.
    pub schema_version: String,
    /// The experiment file, as the path it was loaded by.
    pub source_path: PathBuf,
    /// [`PlanOptions::now_unix_ms`] at planning time.
    pub created_unix_ms: u64,
    /// Seed of all random choices.
    pub seed: u64,
    /// Where the seed came from.
    pub seed_source: SeedSource,
    /// Where the requests go.
    pub provider: ProviderKind,
    /// Run sub-experiments one after another (`true`) or concurrently.
    pub sequential: bool,
    /// Resolved `"Stellar"` settings.
    pub settings: Settings,
    /// Fields accepted but not acted upon, in file order.
    pub ignored: Vec<IgnoredField>,
    /// Keys given more than once in one object, in file order: the last value was used, as
    /// STeLLAR does. Absent from plans written before this field existed.
    #[serde(default)]
    pub duplicate_keys: Vec<DuplicateKey>,
    /// The sub-experiments to run (all, or the one selected), in file order.
    pub sub_experiments: Vec<SubExperimentPlan>,
}

impl Plan {
    /// Reads, parses, validates and plans an experiment file.
    pub fn from_file(path: &Path, options: &PlanOptions) -> Result<Self, ConfigError> {
        let text = raw::read_text(path)?;
        Self::from_json_str(&text, path, options)
    }

    /// Parses, validates and plans experiment JSON. `source_path` names the file in errors and
    /// in the plan; validation errors carry the offending value's line and column.
    pub fn from_json_str(
        text: &str,
        source_path: &Path,
        options: &PlanOptions,
    ) -> Result<Self, ConfigError> {
        let parsed = Experiment::parse(text, source_path)?;
        let mut plan = plan(&parsed.experiment, source_path, options)
            .map_err(|issue| issue.into_error(source_path, Some(&parsed.text)))?;
        plan.duplicate_keys = parsed.duplicate_keys;
        Ok(plan)
    }

    /// Validates and plans an already parsed experiment (STeLLAR's defaults are applied first,
    /// so a hand-built or bare-serde [`Experiment`] means what it would mean to STeLLAR).
    /// Validation errors carry no line/column, since there is no text.
    pub fn from_raw(
        raw: &Experiment,
        source_path: &Path,
        options: &PlanOptions,
    ) -> Result<Self, ConfigError> {
        let mut raw = raw.clone();
        raw.apply_stellar_defaults();
        plan(&raw, source_path, options).map_err(|issue| issue.into_error(source_path, None))
    }

    /// The warnings to show the user, one line each, naming the file: for now the keys given
    /// more than once (see [`DuplicateKey::warning`]). Ignored fields are notes, not warnings.
    pub fn warnings(&self) -> Vec<String> {
        self.duplicate_keys
            .iter()
            .map(|duplicate| duplicate.warning(&self.source_path))
            .collect()
    }

    /// Number of requests over all planned sub-experiments.
    pub fn total_requests(&self) -> u64 {
        self.sub_experiments
            .iter()
            .map(SubExperimentPlan::total_requests)
            .sum()
    }

    /// A lower bound of the run's wall time (excluding deployment): the sum of the
    /// sub-experiments' estimates when sequential, their maximum otherwise.
    pub fn duration_estimate(&self) -> Duration {
        let each = self
            .sub_experiments
            .iter()
            .map(SubExperimentPlan::duration_estimate);
        if self.sequential {
            each.fold(Duration::ZERO, Duration::saturating_add)
        } else {
            each.max().unwrap_or(Duration::ZERO)
        }
    }
}

/// The plan of an experiment whose STeLLAR defaults have been applied.
fn plan(raw: &Experiment, source_path: &Path, options: &PlanOptions) -> Result<Plan, Issue> {
    let root = JsonPath::root();
    let provider =
        parse_provider(&raw.provider).map_err(|m| Issue::new(root.key("Provider"), m))?;
    let default_stellar = StellarConfig::default();
    let stellar = raw.stellar.as_ref().unwrap_or(&default_stellar);
    let experiment_dir = source_path.parent().unwrap_or(Path::new(""));
    let settings = Settings::resolve(
        stellar,
        options.output_dir_override.as_ref(),
        experiment_dir,
    )?;
    let subs_path = root.key("SubExperiments");
    if raw.sub_experiments.is_empty() {
        return Err(Issue::new(
            subs_path,
            "at least one sub-experiment is required",
        ));
    }
    if let Some(selected) = options.only_sub_experiment {
        let count = raw.sub_experiments.len();
        if selected >= count {
            return Err(Issue::new(
                subs_path,
                format!(
                    "sub-experiment {selected} was selected, but the file has {count} (indices 0 to {})",
                    count - 1
                ),
            ));
        }
    }
    let (seed, seed_source) = match (options.seed_override, stellar.seed) {
        (Some(seed), _) => (seed, SeedSource::Override),
        (None, Some(seed)) => (seed, SeedSource::File),
        (None, None) => {
            tracing::debug!(seed = options.now_unix_ms, "no seed given; using the clock");
            (options.now_unix_ms, SeedSource::Clock)
        }
    };

    let mut ignored = Vec::new();
    if raw.runtime != raw::DEFAULT_RUNTIME {
        ignored.push(ignore(
            &root.key("Runtime"),
            raw.runtime.as_str(),
            REASON_RUNTIME,
        ));
    }
    // Check every sub-experiment and the plan's total size before building any schedule, so a
    // file can never make the planner allocate without bound.
    let mut all_checked = Vec::with_capacity(raw.sub_experiments.len());
    let mut total_bursts: u64 = 0;
    for (index, sub) in raw.sub_experiments.iter().enumerate() {
        let path = subs_path.index(index);
        let checked = check_sub_experiment(sub, &path)?;
        if options.only_sub_experiment.is_none_or(|only| only == index) {
            total_bursts = total_bursts.saturating_add(checked.bursts);
            if total_bursts > MAX_TOTAL_BURSTS {
                return Err(Issue::new(
                    path.key("Bursts"),
                    format!(
                        "the sub-experiments up to this one hold {total_bursts} bursts; at most \
                         {MAX_TOTAL_BURSTS} are supported in one plan (the whole schedule is \
                         written to plan.json)"
                    ),
                ));
            }
        }
        all_checked.push(checked);
    }
    let mut sub_experiments = Vec::new();
    for ((index, sub), checked) in raw.sub_experiments.iter().enumerate().zip(all_checked) {
        let path = subs_path.index(index);
        let selected = options.only_sub_experiment.is_none_or(|only| only == index);
        if !selected {
            continue;
        }
        collect_ignored(raw, sub, &provider, &path, &mut ignored);
        sub_experiments.push(build_sub_plan(
            index, sub, &provider, &settings, &checked, seed,
        ));
    }
    Ok(Plan {
        schema_version: PLAN_SCHEMA_VERSION.to_owned(),
        source_path: source_path.to_owned(),
        created_unix_ms: options.now_unix_ms,
        seed,
        seed_source,
        provider,
        sequential: raw.sequential,
        settings,
        ignored,
        duplicate_keys: Vec::new(),
        sub_experiments,
    })
}

/// Interprets `Provider`: a provider name (lower-case letters, digits, `-`, `_`), or
/// STeLLAR's external hostname / URL mode (anything with a `.` or a scheme).
fn parse_provider(provider: &str) -> Result<ProviderKind, String> {
    if provider.is_empty() || provider.chars().any(char::is_whitespace) {
        return Err(format!(
            "{provider:?} is not a valid provider: it must not be empty or contain spaces"
        ));
    }
    if let Some((scheme, rest)) = provider.split_once("://") {
        if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.starts_with('/') {
            return Err(format!(
                "{provider:?} is not a usable URL; expected http://host[:port][/path] or https://..."
            ));
        }
        return Ok(ProviderKind::External {
            url: provider.to_owned(),
        });
    }
    if provider.contains('.') && !provider.starts_with(['.', '/']) {
        return Ok(ProviderKind::External {
            url: format!("https://{provider}"),
        });
    }
    if is_provider_name(provider) {
        return Ok(ProviderKind::Named(provider.to_owned()));
    }
    Err(format!(
        "{provider:?} is neither a provider name (lower-case letters, digits, `-` and `_`, at \
         most {MAX_PROVIDER_NAME} characters, e.g. \"local\", \"aws\" or a plugin's name) nor a \
         hostname or URL to benchmark directly (e.g. \"www.example.com\" or \
         \"http://127.0.0.1:8080/fn\")"
    ))
}

/// Whether `name` is a valid provider (adapter) name: `[a-z0-9][a-z0-9_-]*`, at most
/// [`MAX_PROVIDER_NAME`] bytes. Adapters must declare names of this shape.
pub fn is_provider_name(name: &str) -> bool {
    name.len() <= MAX_PROVIDER_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The parsed values of one sub-experiment.
struct Checked {
    bursts: u64,
    burst_sizes: Vec<u32>,
    service_times_ms: Vec<f64>,
    busy_spin_increments: Vec<u64>,
    iat_type: IatType,
    package_type: PackageType,
    parallelism: u32,
    visualization: Visualization,
    bar_threshold_ms: Option<u64>,
    function_memory_mb: u64,
    payload_length_bytes: u64,
    chain_length: u32,
}

/// Checks one sub-experiment's values, in the order of STeLLAR's field list.
fn check_sub_experiment(sub: &SubExperiment, path: &JsonPath) -> Result<Checked, Issue> {
    let bursts = match sub.bursts {
        b if b < 1 => {
            return Err(Issue::new(
                path.key("Bursts"),
                "the number of bursts must be at least 1",
            ));
        }
        b if b > MAX_BURSTS => {
            return Err(Issue::new(
                path.key("Bursts"),
                format!(
                    "at most {MAX_BURSTS} bursts are supported (the whole schedule is written to plan.json)"
                ),
            ));
        }
        b => b.unsigned_abs(),
    };

    if sub.burst_sizes.is_empty() {
        return Err(Issue::new(
            path.key("BurstSizes"),
            "at least one burst size is required",
        ));
    }
    let mut burst_sizes = Vec::with_capacity(sub.burst_sizes.len());
    for (j, &size) in sub.burst_sizes.iter().enumerate() {
        let at = || path.key("BurstSizes").index(j);
        if size < 1 {
            return Err(Issue::new(at(), "burst size must be at least 1"));
        }
        let size = u32::try_from(size)
            .ok()
            .filter(|s| i64::from(*s) <= MAX_BURST_SIZE)
            .ok_or_else(|| {
                Issue::new(at(), format!("burst size must be at most {MAX_BURST_SIZE}"))
            })?;
        burst_sizes.push(size);
    }

    let payload_length_bytes = u64::try_from(sub.payload_length_bytes)
        .map_err(|_| Issue::new(path.key("PayloadLengthBytes"), "must not be negative"))?;

    let iat = sub.iat_seconds;
    if !(iat.is_finite() && (0.0..=MAX_IAT_SECONDS).contains(&iat)) {
        return Err(Issue::new(
            path.key("IATSeconds"),
            format!("must be a number of seconds between 0 and {MAX_IAT_SECONDS} (one year)"),
        ));
    }

    if sub.desired_service_times.is_empty() {
        return Err(Issue::new(
            path.key("DesiredServiceTimes"),
            "at least one service time is required, e.g. [\"0ms\"]",
        ));
    }
    let mut service_times_ms = Vec::with_capacity(sub.desired_service_times.len());
    for (j, text) in sub.desired_service_times.iter().enumerate() {
        let duration = parse_go_duration(text).map_err(|e| {
            Issue::new(
                path.key("DesiredServiceTimes").index(j),
                format!(
                    "{e}; expected a Go duration such as \"0ms\", \"500ms\", \"1.5s\" or \"1m30s\" \
                     (units ns, us, µs, ms, s, m, h)"
                ),
            )
        })?;
        service_times_ms.push(duration.as_secs_f64() * 1000.0);
    }

    let iat_type = IatType::from_name(&sub.iat_type).ok_or_else(|| {
        Issue::new(
            path.key("IATType"),
            format!(
                "{:?} is not supported; expected one of {}",
                sub.iat_type,
                IatType::NAMES.join(", ")
            ),
        )
    })?;

    let package_type = PackageType::from_name(&sub.package_type).ok_or_else(|| {
        Issue::new(
            path.key("PackageType"),
            format!(
                "{:?} is not supported; expected one of Zip, Image, Container",
                sub.package_type
            ),
        )
    })?;

    let parallelism = match sub.parallelism {
        p if p < 1 => {
            return Err(Issue::new(
                path.key("Parallelism"),
                "must be at least 1 (0 means the default, 1)",
            ));
        }
        p if p > MAX_PARALLELISM => {
            return Err(Issue::new(
                path.key("Parallelism"),
                format!("must be at most {MAX_PARALLELISM}"),
            ));
        }
        p => u32::try_from(p).unwrap_or(u32::MAX),
    };

    let (visualization, bar_threshold_ms) = parse_visualization(&sub.visualization).ok_or_else(|| {
        Issue::new(
            path.key("Visualization"),
            format!(
                "{:?} is not supported; expected one of cdf, bar, bar-<ms> (e.g. bar-500), histogram, all, none",
                sub.visualization
            ),
        )
    })?;

    let function_memory_mb = u64::try_from(sub.function_memory_mb)
        .ok()
        .filter(|m| *m >= 1)
        .ok_or_else(|| {
            Issue::new(
                path.key("FunctionMemoryMB"),
                "must be at least 1 (0 means the default, 128)",
            )
        })?;

    let image = sub.function_image_size_mb;
    if !(image.is_finite() && image >= 0.0) {
        return Err(Issue::new(
            path.key("FunctionImageSizeMB"),
            "must be a number of MB >= 0",
        ));
    }

    if sub.data_transfer_chain_length < 1 {
        return Err(Issue::new(
            path.key("DataTransferChainLength"),
            "must be at least 1 (0 means the default, 1)",
        ));
    }
    let chain_length = u32::try_from(sub.data_transfer_chain_length)
        .ok()
        .filter(|n| i64::from(*n) <= MAX_CHAIN_LENGTH)
        .ok_or_else(|| {
            Issue::new(
                path.key("DataTransferChainLength"),
                format!("must be at most {MAX_CHAIN_LENGTH} (functions deployed per endpoint)"),
            )
        })?;

    let mut busy_spin_increments = Vec::with_capacity(sub.busy_spin_increments.len());
    if !sub.busy_spin_increments.is_empty() {
        if sub.busy_spin_increments.len() != sub.desired_service_times.len() {
            return Err(Issue::new(
                path.key("BusySpinIncrements"),
                format!(
                    "has {} but DesiredServiceTimes has {}; give one increment limit per service time",
                    count(sub.busy_spin_increments.len(), "entry", "entries"),
                    count(sub.desired_service_times.len(), "entry", "entries"),
                ),
            ));
        }
        for (j, &increments) in sub.busy_spin_increments.iter().enumerate() {
            let increments = u64::try_from(increments).map_err(|_| {
                Issue::new(
                    path.key("BusySpinIncrements").index(j),
                    "must not be negative",
                )
            })?;
            busy_spin_increments.push(increments);
        }
    }

    Ok(Checked {
        bursts,
        burst_sizes,
        service_times_ms,
        busy_spin_increments,
        iat_type,
        package_type,
        parallelism,
        visualization,
        bar_threshold_ms,
        function_memory_mb,
        payload_length_bytes,
        chain_length,
    })
}

/// `"1 entry"`, `"2 entries"`.
fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// `cdf`, `bar`, `bar-<ms>`, `histogram`, `all`, `none` → the kind and the `bar-<ms>` threshold.
fn parse_visualization(text: &str) -> Option<(Visualization, Option<u64>)> {
    Some(match text {
        "cdf" => (Visualization::Cdf, None),
        "bar" => (Visualization::Bar, None),
        "histogram" => (Visualization::Histogram, None),
        "all" => (Visualization::All, None),
        "none" => (Visualization::None, None),
        _ => {
            let ms = text.strip_prefix("bar-")?;
            if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (Visualization::Bar, Some(ms.parse().ok()?))
        }
    })
}

const REASON_RUNTIME: &str = "stellar deploys its own native (Rust) measurement function; the language runtime does not apply";

fn ignore(path: &JsonPath, value: impl Into<serde_json::Value>, reason: &str) -> IgnoredField {
    IgnoredField {
        json_path: path.to_string(),
        value: value.into(),
        reason: reason.to_owned(),
    }
}

/// Records the fields of `sub` that have a non-default value but no effect.
fn collect_ignored(
    raw: &Experiment,
    sub: &SubExperiment,
    provider: &ProviderKind,
    path: &JsonPath,
    ignored: &mut Vec<IgnoredField>,
) {
    // A sub-experiment's Runtime defaults to the top-level one, already recorded above.
    if sub.runtime != raw.runtime && sub.runtime != raw::DEFAULT_RUNTIME {
        ignored.push(ignore(
            &path.key("Runtime"),
            sub.runtime.as_str(),
            REASON_RUNTIME,
        ));
    }
    if sub.function != raw::DEFAULT_FUNCTION {
        ignored.push(ignore(
            &path.key("Function"),
            sub.function.as_str(),
            "stellar deploys its own measurement function (stellar-measure), not STeLLAR's function code",
        ));
    }
    if sub.handler != raw::DEFAULT_HANDLER {
        ignored.push(ignore(
            &path.key("Handler"),
            sub.handler.as_str(),
            "the native measurement function has a fixed entry point",
        ));
    }
    if sub.package_pattern != raw::DEFAULT_PACKAGE_PATTERN {
        ignored.push(ignore(
            &path.key("PackagePattern"),
            sub.package_pattern.as_str(),
            "stellar packages the function itself; there is no serverless.yml package pattern",
        ));
    }
    if sub.snap_start_enabled {
        ignored.push(ignore(
            &path.key("SnapStartEnabled"),
            true,
            "SnapStart is not available for the OS-only runtime that a native function uses",
        ));
    }
    if sub.cpu_boost_enabled && provider.name() != Some("gcr") {
        ignored.push(ignore(
            &path.key("CPUBoostEnabled"),
            true,
            "CPU boost exists only on Google Cloud Run (Provider \"gcr\")",
        ));
    }
    let external = matches!(provider, ProviderKind::External { .. });
    if sub.data_transfer_chain_length > 1 && external {
        ignored.push(ignore(
            &path.key("DataTransferChainLength"),
            sub.data_transfer_chain_length,
            "a URL provider is one endpoint: stellar deploys nothing, so it cannot build a chain",
        ));
    }
    if sub.storage_transfer && (external || sub.data_transfer_chain_length <= 1) {
        ignored.push(ignore(
            &path.key("StorageTransfer"),
            true,
            "storage transfers happen between the functions of a chain, and there is none \
             (DataTransferChainLength 1 or a URL provider)",
        ));
    }
    if !sub.repurpose_identifier.is_empty() {
        ignored.push(ignore(
            &path.key("RepurposeIdentifier"),
            sub.repurpose_identifier.as_str(),
            "function repurposing (STeLLAR's continuous-benchmarking branch) is not supported; \
             functions are deployed for each run",
        ));
    }
}

/// `"{index:02}-{title}"` with the title lower-cased, every run of characters other than
/// `[a-z0-9_]` replaced by one `-`, trimmed, and cut to 48 characters (`untitled` if empty).
fn slug(index: usize, title: &str) -> String {
    let mut clean = String::new();
    let mut pending_dash = false;
    for c in title.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() || c == '_' {
            if pending_dash && !clean.is_empty() {
                clean.push('-');
            }
            pending_dash = false;
            clean.push(c);
        } else {
            pending_dash = true;
        }
    }
    let mut clean: String = clean.chars().take(SLUG_TITLE_MAX).collect();
    while clean.ends_with('-') {
        clean.pop();
    }
    if clean.is_empty() {
        clean.push_str("untitled");
    }
    format!("{index:02}-{clean}")
}

fn build_sub_plan(
    index: usize,
    sub: &SubExperiment,
    provider: &ProviderKind,
    settings: &Settings,
    checked: &Checked,
    seed: u64,
) -> SubExperimentPlan {
    let spec = ScheduleSpec {
        bursts: checked.bursts,
        parallelism: checked.parallelism,
        burst_sizes: &checked.burst_sizes,
        service_times_ms: &checked.service_times_ms,
        busy_spin_increments: &checked.busy_spin_increments,
        iat_type: checked.iat_type,
        iat_seconds: sub.iat_seconds,
    };
    let first_size = checked.burst_sizes.first().copied().map_or(0, u64::from);
    let chain_length = match provider {
        ProviderKind::External { .. } => 1,
        ProviderKind::Named(_) => checked.chain_length,
    };
    SubExperimentPlan {
        index,
        title: sub.title.clone(),
        slug: slug(index, &sub.title),
        parallelism: checked.parallelism,
        function_memory_mb: checked.function_memory_mb,
        function_image_size_mb: sub.function_image_size_mb,
        package_type: checked.package_type,
        payload_length_bytes: checked.payload_length_bytes,
        cpu_boost: sub.cpu_boost_enabled && provider.name() == Some("gcr"),
        data_transfer_chain_length: chain_length,
        storage_transfer: sub.storage_transfer && chain_length > 1,
        iat_type: checked.iat_type,
        iat_seconds: sub.iat_seconds,
        visualization: checked.visualization,
        cold_threshold_ms: checked
            .bar_threshold_ms
            .unwrap_or(settings.cold_threshold_ms),
        // STeLLAR: threshold = Bursts * BurstSizes[0] / 10, abort when exceeded.
        max_failures: settings
            .max_failures
            .unwrap_or(checked.bursts * first_size / 10),
        max_throttled: settings.max_throttled,
        burst_sizes: checked.burst_sizes.clone(),
        service_times_ms: checked.service_times_ms.clone(),
        bursts: schedule::build(&spec, seed, index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000_000;

    fn opts() -> PlanOptions {
        PlanOptions {
            now_unix_ms: NOW,
            ..PlanOptions::default()
        }
    }

    fn plan_of(text: &str) -> Result<Plan, ConfigError> {
        Plan::from_json_str(text, Path::new("x.json"), &opts())
    }

    /// A one-sub-experiment file; `fields` (`, "Key": value, ...`) override the defaults.
    fn sub(fields: &str) -> String {
        let mut object: serde_json::Value = serde_json::from_str(
            r#"{"Bursts": 4, "BurstSizes": [1], "DesiredServiceTimes": ["0ms"]}"#,
        )
        .expect("valid base");
        let overrides: serde_json::Value =
            serde_json::from_str(&format!("{{{}}}", fields.trim_start_matches(',')))
                .expect("valid overrides");
        for (key, value) in overrides.as_object().expect("object") {
            object[key] = value.clone();
        }
        serde_json::json!({"Provider": "local", "SubExperiments": [object]}).to_string()
    }

    fn err(text: &str) -> String {
        plan_of(text).expect_err("should be rejected").to_string()
    }

    #[test]
    fn a_plan_too_big_in_total_is_refused_before_any_schedule_is_built() {
        let one = serde_json::json!({"Bursts": MAX_BURSTS, "BurstSizes": [1],
            "DesiredServiceTimes": ["0ms"]});
        let subs: Vec<_> = (0..11).map(|_| one.clone()).collect();
        let text = serde_json::json!({"Provider": "local", "SubExperiments": subs}).to_string();
        let started = std::time::Instant::now();
        let message = err(&text);
        assert!(
            message.contains("SubExperiments[10].Bursts")
                && message.contains("11000000 bursts")
                && message.contains("at most 10000000"),
            "{message}"
        );
        // Refused by counting, not by building ten million-burst schedules first.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // Selecting one sub-experiment plans only that one.
        let only = Plan::from_json_str(
            &text,
            Path::new("x.json"),
            &PlanOptions {
                only_sub_experiment: Some(3),
                ..opts()
            },
        );
        assert!(only.is_ok());
    }

    #[test]
    fn minimal_plan() {
        let plan = plan_of(&sub("")).expect("valid");
        assert_eq!(plan.schema_version, "stellar-plan/1");
        assert_eq!(plan.seed, NOW);
        assert_eq!(plan.seed_source, SeedSource::Clock);
        assert_eq!(plan.provider, ProviderKind::Named("local".into()));
        assert!(plan.ignored.is_empty());
        let s = &plan.sub_experiments[0];
        assert_eq!(s.slug, "00-untitled");
        assert_eq!(s.parallelism, 1);
        assert_eq!(s.function_memory_mb, 128);
        assert_eq!(s.iat_type, IatType::Stochastic);
        assert_eq!(s.visualization, Visualization::Cdf);
        assert_eq!(s.cold_threshold_ms, 300);
        assert_eq!(s.max_failures, 0);
        assert_eq!(s.total_requests(), 4);
        assert_eq!(plan.total_requests(), 4);
        // IATSeconds 0: everything at offset 0.
        assert_eq!(plan.duration_estimate(), Duration::ZERO);
    }

    #[test]
    fn seed_priority_override_then_file_then_clock() {
        let text = r#"{"Provider": "local", "Stellar": {"Seed": 5}, "SubExperiments": [{"Bursts": 1, "BurstSizes": [1], "DesiredServiceTimes": ["0ms"]}]}"#;
        let from_file = plan_of(text).expect("valid");
        assert_eq!(
            (from_file.seed, from_file.seed_source),
            (5, SeedSource::File)
        );
        let overridden = Plan::from_json_str(
            text,
            Path::new("x.json"),
            &PlanOptions {
                seed_override: Some(9),
                ..opts()
            },
        )
        .expect("valid");
        assert_eq!(
            (overridden.seed, overridden.seed_source),
            (9, SeedSource::Override)
        );
    }

    #[test]
    fn providers() {
        let p = |s: &str| parse_provider(s);
        for name in [
            "local", "aws", "azure", "gcr", "aliyun", "vhive", "mycloud", "fly_io-2",
        ] {
            assert_eq!(p(name), Ok(ProviderKind::Named(name.into())));
        }
        assert_eq!(
            p("www.google.com"),
            Ok(ProviderKind::External {
                url: "https://www.google.com".into()
            })
        );
        assert_eq!(
            p("http://127.0.0.1:8080/x"),
            Ok(ProviderKind::External {
                url: "http://127.0.0.1:8080/x".into()
            })
        );
        assert!(p("AWS").is_err());
        assert!(p("-x").is_err());
        assert!(p("a/b").is_err());
        assert!(p(&"x".repeat(MAX_PROVIDER_NAME + 1)).is_err());
        assert!(p("ftp://x").is_err());
        assert!(p("http://").is_err());
        assert!(p("a b.com").is_err());
        assert!(p("").is_err());
        // An empty Provider in the file means STeLLAR's default, aws.
        let plan = plan_of(r#"{"Provider": "", "SubExperiments": [{"Bursts": 1, "BurstSizes": [1], "DesiredServiceTimes": ["0ms"]}]}"#)
            .expect("valid");
        assert_eq!(plan.provider, ProviderKind::Named("aws".into()));
    }

    #[test]
    fn slugs_are_filesystem_safe() {
        assert_eq!(slug(0, "warm"), "00-warm");
        assert_eq!(slug(3, "2chain,inline"), "03-2chain-inline");
        assert_eq!(slug(12, "  ../Cold Start!! "), "12-cold-start");
        assert_eq!(slug(100, "ünïcode"), "100-n-code");
        assert_eq!(slug(1, "///"), "01-untitled");
        assert_eq!(slug(1, &"a".repeat(100)).len(), 3 + SLUG_TITLE_MAX);
    }

    #[test]
    fn visualization_values() {
        assert_eq!(
            parse_visualization("bar-200"),
            Some((Visualization::Bar, Some(200)))
        );
        assert_eq!(
            parse_visualization("none"),
            Some((Visualization::None, None))
        );
        assert_eq!(parse_visualization("bar-"), None);
        assert_eq!(parse_visualization("bar-+5"), None);
        assert_eq!(parse_visualization("bar-99999999999999999999999"), None);
        assert_eq!(parse_visualization("CDF"), None);
        let plan = plan_of(&sub(r#", "Visualization": "bar-120""#)).expect("valid");
        assert_eq!(plan.sub_experiments[0].cold_threshold_ms, 120);
    }

    #[test]
    fn validation_messages_have_path_and_position() {
        let text = "{\"Provider\": \"local\", \"SubExperiments\": [\n  {\"Bursts\": 4, \"BurstSizes\": [1], \
                    \"DesiredServiceTimes\": [\"0ms\"],\n   \"IATType\": \"gaussian\"}]}";
        assert_eq!(
            err(text),
            "x.json: SubExperiments[0].IATType: \"gaussian\" is not supported; expected one of \
             stochastic, deterministic, step (line 3, column 15)"
        );
        let e = plan_of(r#"{"Provider":"local","SubExperiments":[{"Bursts":1,"BurstSizes":[1,0],"DesiredServiceTimes":["0ms"]}]}"#)
            .expect_err("zero burst size");
        assert_eq!(e.json_path(), "SubExperiments[0].BurstSizes[1]");
        assert!(
            e.to_string()
                .ends_with("burst size must be at least 1 (line 1, column 67)"),
            "{e}"
        );
    }

    #[test]
    fn each_check_fires() {
        let cases = [
            (r#", "Bursts": 0"#, "SubExperiments[0].Bursts"),
            (r#", "Bursts": 1000001"#, "SubExperiments[0].Bursts"),
            (r#", "BurstSizes": []"#, "SubExperiments[0].BurstSizes"),
            (
                r#", "BurstSizes": [1, -3]"#,
                "SubExperiments[0].BurstSizes[1]",
            ),
            (
                r#", "BurstSizes": [5000000000]"#,
                "SubExperiments[0].BurstSizes[0]",
            ),
            (
                r#", "PayloadLengthBytes": -1"#,
                "SubExperiments[0].PayloadLengthBytes",
            ),
            (r#", "IATSeconds": -0.5"#, "SubExperiments[0].IATSeconds"),
            (r#", "IATSeconds": 1e12"#, "SubExperiments[0].IATSeconds"),
            (
                r#", "DesiredServiceTimes": []"#,
                "SubExperiments[0].DesiredServiceTimes",
            ),
            (
                r#", "DesiredServiceTimes": ["0ms", "fast"]"#,
                "SubExperiments[0].DesiredServiceTimes[1]",
            ),
            (
                r#", "DesiredServiceTimes": ["-1s"]"#,
                "SubExperiments[0].DesiredServiceTimes[0]",
            ),
            (r#", "IATType": "Stochastic""#, "SubExperiments[0].IATType"),
            (r#", "PackageType": "Jar""#, "SubExperiments[0].PackageType"),
            (r#", "Parallelism": -2"#, "SubExperiments[0].Parallelism"),
            (
                r#", "Parallelism": 100001"#,
                "SubExperiments[0].Parallelism",
            ),
            (
                r#", "Visualization": "pie""#,
                "SubExperiments[0].Visualization",
            ),
            (
                r#", "FunctionMemoryMB": -128"#,
                "SubExperiments[0].FunctionMemoryMB",
            ),
            (
                r#", "FunctionImageSizeMB": -1"#,
                "SubExperiments[0].FunctionImageSizeMB",
            ),
            (
                r#", "DataTransferChainLength": -1"#,
                "SubExperiments[0].DataTransferChainLength",
            ),
            (
                r#", "BusySpinIncrements": [1, 2]"#,
                "SubExperiments[0].BusySpinIncrements",
            ),
            (
                r#", "BusySpinIncrements": [-1]"#,
                "SubExperiments[0].BusySpinIncrements[0]",
            ),
        ];
        for (fields, path) in cases {
            let e = plan_of(&sub(fields)).expect_err(fields);
            assert!(matches!(e, ConfigError::Validation { .. }), "{fields}: {e}");
            assert_eq!(e.json_path(), path, "{fields}: {e}");
        }
        assert_eq!(
            plan_of(r#"{"Provider": "local", "SubExperiments": []}"#)
                .expect_err("empty")
                .json_path(),
            "SubExperiments"
        );
        assert_eq!(
            plan_of(r#"{"Provider": "No Pe", "SubExperiments": []}"#)
                .expect_err("provider")
                .json_path(),
            "Provider"
        );
    }

    #[test]
    fn only_sub_experiment_keeps_index_and_streams() {
        let text = r#"{"Provider": "local", "Stellar": {"Seed": 1}, "SubExperiments": [
            {"Title": "a", "Bursts": 5, "BurstSizes": [1], "IATSeconds": 10, "DesiredServiceTimes": ["0ms"]},
            {"Title": "b", "Bursts": 5, "BurstSizes": [2], "IATSeconds": 10, "DesiredServiceTimes": ["0ms"]}]}"#;
        let all = plan_of(text).expect("valid");
        let only = Plan::from_json_str(
            text,
            Path::new("x.json"),
            &PlanOptions {
                only_sub_experiment: Some(1),
                ..opts()
            },
        )
        .expect("valid");
        assert_eq!(only.sub_experiments.len(), 1);
        assert_eq!(only.sub_experiments[0], all.sub_experiments[1]);
        assert_eq!(only.sub_experiments[0].slug, "01-b");
        let out_of_range = Plan::from_json_str(
            text,
            Path::new("x.json"),
            &PlanOptions {
                only_sub_experiment: Some(2),
                ..opts()
            },
        )
        .expect_err("out of range");
        assert!(
            out_of_range
                .to_string()
                .contains("sub-experiment 2 was selected, but the file has 2 (indices 0 to 1)"),
            "{out_of_range}"
        );
    }

    #[test]
    fn ignored_fields_are_recorded_only_when_non_default() {
        let defaults_spelled_out = plan_of(
            r#"{"Provider": "aws", "Runtime": "python3.9", "SubExperiments": [{"Bursts": 1, "BurstSizes": [1],
                "DesiredServiceTimes": ["0ms"], "Function": "hellopy", "Handler": "main.lambda_handler",
                "PackagePattern": "**", "Runtime": "python3.9", "SnapStartEnabled": false,
                "DataTransferChainLength": 1, "StorageTransfer": false, "CPUBoostEnabled": false}]}"#,
        )
        .expect("valid");
        assert!(
            defaults_spelled_out.ignored.is_empty(),
            "{:?}",
            defaults_spelled_out.ignored
        );

        let plan = plan_of(
            r#"{"Provider": "aws", "Runtime": "java11", "SubExperiments": [{"Bursts": 1, "BurstSizes": [1],
                "DesiredServiceTimes": ["0ms"], "Function": "hellojava", "Handler": "org.hellojava.Handler",
                "PackagePattern": "main.py", "Runtime": "go1.x", "SnapStartEnabled": true,
                "DataTransferChainLength": 2, "StorageTransfer": true, "CPUBoostEnabled": true,
                "RepurposeIdentifier": "x"}]}"#,
        )
        .expect("valid");
        let paths: Vec<&str> = plan.ignored.iter().map(|f| f.json_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Runtime",
                "SubExperiments[0].Runtime",
                "SubExperiments[0].Function",
                "SubExperiments[0].Handler",
                "SubExperiments[0].PackagePattern",
                "SubExperiments[0].SnapStartEnabled",
                "SubExperiments[0].CPUBoostEnabled",
                "SubExperiments[0].RepurposeIdentifier",
            ]
        );
        assert_eq!(plan.ignored[0].value, serde_json::json!("java11"));
        // A chain on a named provider is honoured, with storage transfers.
        assert_eq!(plan.sub_experiments[0].data_transfer_chain_length, 2);
        assert!(plan.sub_experiments[0].storage_transfer);
        assert!(plan.ignored.iter().all(|f| !f.reason.is_empty()));
        assert!(!plan.sub_experiments[0].cpu_boost);
    }

    #[test]
    fn chains_need_a_deployment_and_storage_needs_a_chain() {
        let external = plan_of(
            r#"{"Provider": "https://example.com/f", "SubExperiments": [{"Bursts": 1, "BurstSizes": [1],
                "DesiredServiceTimes": ["0ms"], "DataTransferChainLength": 3, "StorageTransfer": true}]}"#,
        )
        .expect("valid");
        assert_eq!(external.sub_experiments[0].data_transfer_chain_length, 1);
        assert!(!external.sub_experiments[0].storage_transfer);
        let paths: Vec<&str> = external
            .ignored
            .iter()
            .map(|f| f.json_path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "SubExperiments[0].DataTransferChainLength",
                "SubExperiments[0].StorageTransfer"
            ]
        );
        let lone = plan_of(
            r#"{"Provider": "local", "SubExperiments": [{"Bursts": 1, "BurstSizes": [1],
                "DesiredServiceTimes": ["0ms"], "StorageTransfer": true}]}"#,
        )
        .expect("valid");
        assert!(!lone.sub_experiments[0].storage_transfer);
        assert_eq!(
            lone.ignored[0].json_path,
            "SubExperiments[0].StorageTransfer"
        );
        let err = plan_of(
            r#"{"Provider": "local", "SubExperiments": [{"Bursts": 1, "BurstSizes": [1],
                "DesiredServiceTimes": ["0ms"], "DataTransferChainLength": 101}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("SubExperiments[0].DataTransferChainLength"),
            "{err}"
        );
        assert!(err.contains("at most 100"), "{err}");
    }

    #[test]
    fn cpu_boost_is_honoured_on_gcr() {
        let plan = plan_of(
            r#"{"Provider": "gcr", "SubExperiments": [{"Bursts": 1, "BurstSizes": [1], "DesiredServiceTimes": ["0ms"],
                "PackageType": "Container", "CPUBoostEnabled": true}]}"#,
        )
        .expect("valid");
        assert!(plan.sub_experiments[0].cpu_boost);
        assert!(plan.ignored.is_empty());
    }

    #[test]
    fn stellar_max_failures_rule_and_override() {
        let plan = plan_of(&sub(r#", "Bursts": 30, "BurstSizes": [7, 100]"#)).expect("valid");
        assert_eq!(plan.sub_experiments[0].max_failures, 21);
        let text = r#"{"Provider": "local", "Stellar": {"MaxFailures": 2}, "SubExperiments": [{"Bursts": 30, "BurstSizes": [7], "DesiredServiceTimes": ["0ms"]}]}"#;
        assert_eq!(
            plan_of(text).expect("valid").sub_experiments[0].max_failures,
            2
        );
    }

    #[test]
    fn from_raw_applies_defaults_and_has_no_positions() {
        let raw: Experiment = serde_json::from_str(
            r#"{"Provider": "local", "SubExperiments": [{"Bursts": 2, "BurstSizes": [1], "DesiredServiceTimes": ["0ms"], "Parallelism": 0}]}"#,
        )
        .expect("parses");
        assert_eq!(raw.sub_experiments[0].parallelism, 0);
        let plan = Plan::from_raw(&raw, Path::new("x.json"), &opts()).expect("valid");
        assert_eq!(plan.sub_experiments[0].parallelism, 1);
        let mut bad = raw.clone();
        bad.sub_experiments[0].burst_sizes = vec![0];
        let e = Plan::from_raw(&bad, Path::new("x.json"), &opts()).expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "x.json: SubExperiments[0].BurstSizes[0]: burst size must be at least 1"
        );
    }

    #[test]
    fn repeated_keys_take_the_last_value_and_are_recorded() {
        let text = "{\"Provider\": \"local\", \"SubExperiments\": [{\"Bursts\": 2,\n \"BurstSizes\": [1],\n \"IATSeconds\": 1, \"BurstSizes\": [3]}],\n \"Provider\": \"local\"}";
        let text = text.replace(
            "{\"Bursts\"",
            "{\"DesiredServiceTimes\": [\"0ms\"], \"Bursts\"",
        );
        let plan = plan_of(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.sub_experiments[0].burst_sizes, [3]);
        let paths: Vec<(&str, &[usize])> = plan
            .duplicate_keys
            .iter()
            .map(|d| (d.json_path.as_str(), d.lines.as_slice()))
            .collect();
        assert_eq!(
            paths,
            [
                ("Provider", &[1, 4][..]),
                ("SubExperiments[0].BurstSizes", &[2, 3][..])
            ]
        );
        assert_eq!(
            plan.warnings()[1],
            "x.json: SubExperiments[0]: duplicate key `BurstSizes` (lines 2 and 3); the last value \
             is kept, as STeLLAR (Go's encoding/json) does: [3]"
        );
        // Round trip, and plans written before the field existed still load.
        let json = serde_json::to_value(&plan).expect("serializes");
        assert_eq!(json["duplicate_keys"][1]["kept"], "[3]");
        let back: Plan = serde_json::from_value(json.clone()).expect("deserializes");
        assert_eq!(back, plan);
        let mut old = json;
        old.as_object_mut()
            .expect("object")
            .remove("duplicate_keys");
        let old: Plan = serde_json::from_value(old).expect("an older plan.json loads");
        assert!(old.duplicate_keys.is_empty());
        // A file without repeated keys has none, and from_raw never has any.
        assert!(plan_of(&sub("")).expect("valid").duplicate_keys.is_empty());
    }

    #[test]
    fn plan_round_trips_through_json() {
        let plan = plan_of(&sub(
            r#", "IATSeconds": 3.5, "Parallelism": 2, "BusySpinIncrements": [10]"#,
        ))
        .expect("valid");
        let text = serde_json::to_string_pretty(&plan).expect("serializes");
        let back: Plan = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, plan);
    }

    #[test]
    fn duration_estimate_sequential_vs_concurrent() {
        let text = |sequential: bool| {
            format!(
                r#"{{"Provider": "local", "Sequential": {sequential}, "SubExperiments": [
                {{"Bursts": 3, "BurstSizes": [1], "IATSeconds": 2, "IATType": "deterministic", "DesiredServiceTimes": ["500ms"]}},
                {{"Bursts": 2, "BurstSizes": [1], "IATSeconds": 1, "IATType": "deterministic", "DesiredServiceTimes": ["0ms"]}}]}}"#
            )
        };
        assert_eq!(
            plan_of(&text(true)).expect("valid").duration_estimate(),
            Duration::from_millis(5500)
        );
        assert_eq!(
            plan_of(&text(false)).expect("valid").duration_estimate(),
            Duration::from_millis(4500)
        );
    }

    /// Shapes taken from STeLLAR's own `experiments/` directory (tabs and all) load unchanged.
    #[test]
    fn stellar_files_load_unchanged() {
        // experiments/tests/test.json: external hostname mode, `all` and `bar-200`.
        let external = plan_of(
            "{\n  \"Sequential\": false,\n  \"Provider\": \"www.google.com\",\n  \"SubExperiments\": [\n    {\n      \
             \"Title\": \"test1\",\n      \"Bursts\": 6,\n      \"BurstSizes\": [1, 2, 3, 4, 50],\n      \
             \"PayloadLengthBytes\": 0,\n      \"IATSeconds\": 0,\n      \"DesiredServiceTimes\": [\"0ms\"],\n      \
             \"Visualization\": \"all\"\n    },\n    {\n      \"Title\": \"test2\",\n      \"Bursts\": 10,\n      \
             \"BurstSizes\": [1],\n      \"PayloadLengthBytes\": 0,\n      \"IATSeconds\": 0,\n      \
             \"DesiredServiceTimes\": [\"0ms\"],\n      \"Visualization\": \"bar-200\"\n    }\n  ]\n}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan_of_provider(&external), "https://www.google.com");
        assert_eq!(
            external.sub_experiments[0].total_requests(),
            1 + 2 + 3 + 4 + 50 + 1
        );
        assert_eq!(external.sub_experiments[1].cold_threshold_ms, 200);

        // experiments/data-transfer/inline/vhive/warm.json (first entry): chains are noted.
        let vhive = plan_of(
            "{\n  \"Sequential\": true,\n  \"Provider\": \"vhive\",\n  \"SubExperiments\": [\n    {\n      \
             \"Title\": \"2chain,inline\",\n      \"Bursts\": 3000,\n      \"BurstSizes\": [\n        1\n      ],\n      \
             \"PackageType\": \"Image\",\n      \"DesiredServiceTimes\": [\n        \"0ms\"\n      ],\n      \
             \"DataTransferChainLength\": 2\n    }\n  ]\n}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(vhive.sub_experiments[0].slug, "00-2chain-inline");
        assert_eq!(vhive.sub_experiments[0].data_transfer_chain_length, 2);
        assert!(vhive.ignored.is_empty(), "{:?}", vhive.ignored);
        assert_eq!(vhive.sub_experiments[0].max_failures, 300);

        // experiments/image-size/cold-100-gcr-read-entire.json: tab indentation, no Sequential.
        let gcr = plan_of(
            "{\n  \"Provider\": \"gcr\",\n  \"Runtime\": \"python3.9\",\n  \"SubExperiments\": [\n    {\n      \
             \"Title\": \"cold-100-gcr-read-entire\",\n      \"Function\": \"hellopy-read-entire\",\n\t  \
             \"Handler\": \"Dockerfile\",\n\t  \"PackageType\": \"Container\",\n\t  \
             \"PackagePattern\": \"lambda_function.py\",\n      \"Bursts\": 500,\n      \"BurstSizes\": [\n        1\n      ],\n      \
             \"IATSeconds\": 900,\n      \"DesiredServiceTimes\": [\n        \"0ms\"\n      ],\n      \
             \"Parallelism\": 50,\n      \"FunctionImageSizeMB\": 100\n    }\n  ]\n}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let paths: Vec<&str> = gcr.ignored.iter().map(|f| f.json_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "SubExperiments[0].Function",
                "SubExperiments[0].Handler",
                "SubExperiments[0].PackagePattern"
            ]
        );
        let sub = &gcr.sub_experiments[0];
        assert_eq!(
            (sub.parallelism, sub.package_type, sub.bursts.len()),
            (50, PackageType::Container, 500)
        );
        // 500 bursts over 50 endpoints: 10 rounds each, stochastic gaps of at least 900 s.
        assert!(
            sub.bursts
                .iter()
                .filter(|b| b.round == 9)
                .all(|b| b.offset_ms >= 9.0 * 900_000.0)
        );
    }

    fn plan_of_provider(plan: &Plan) -> &str {
        match &plan.provider {
            ProviderKind::External { url } => url,
            ProviderKind::Named(name) => name,
        }
    }

    /// JSON values that stress the planner: wrong types, extremes, near-misses.
    fn wild_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        prop_oneof![
            Just(json!(null)),
            Just(json!(true)),
            Just(json!(-1)),
            Just(json!(0)),
            Just(json!(1)),
            Just(json!(3)),
            Just(json!(2.5)),
            Just(json!(1_000_001)),
            Just(json!(i64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!(u64::MAX)),
            Just(json!(1e300)),
            Just(json!(-1e300)),
            Just(json!("")),
            Just(json!("0ms")),
            Just(json!("1.5s")),
            Just(json!("bar-7")),
            Just(json!("step")),
            Just(json!("local")),
            Just(json!("www.example.com")),
            Just(json!([])),
            Just(json!([1, 2])),
            Just(json!([0])),
            Just(json!(["0ms", "9223372036854775807ns"])),
            Just(json!({})),
            "\\PC{0,12}".prop_map(serde_json::Value::from),
        ]
    }

    const SUB_KEYS: [&str; 23] = [
        "Title",
        "Bursts",
        "BurstSizes",
        "PayloadLengthBytes",
        "IATSeconds",
        "DesiredServiceTimes",
        "IATType",
        "PackageType",
        "Parallelism",
        "Visualization",
        "Function",
        "FunctionMemoryMB",
        "FunctionImageSizeMB",
        "DataTransferChainLength",
        "StorageTransfer",
        "Handler",
        "Runtime",
        "SnapStartEnabled",
        "CPUBoostEnabled",
        "PackagePattern",
        "BusySpinIncrements",
        "RepurposeIdentifier",
        "Bogus",
    ];

    fn wild_experiment() -> impl Strategy<Value = String> {
        let sub = proptest::collection::vec((0..SUB_KEYS.len(), wild_value()), 0..8).prop_map(|pairs| {
            let mut object = serde_json::json!({"Bursts": 3, "BurstSizes": [1, 2], "DesiredServiceTimes": ["1ms"]});
            for (key, value) in pairs {
                object[SUB_KEYS[key]] = value;
            }
            object
        });
        (
            proptest::collection::vec(sub, 0..3),
            // Mostly a valid provider, so that the sub-experiment checks are reached.
            prop_oneof![4 => Just(serde_json::json!("local")), 1 => wild_value()],
            proptest::option::of(proptest::collection::vec(
                (
                    prop_oneof![
                        Just("Seed"),
                        Just("RequestTimeoutSeconds"),
                        Just("Connection"),
                        Just("MaxFailures"),
                        Just("OutputDir"),
                        Just("ColdThresholdMs"),
                        Just("Local")
                    ],
                    wild_value(),
                ),
                0..4,
            )),
        )
            .prop_map(|(subs, provider, stellar)| {
                let mut doc = serde_json::json!({"Provider": provider, "SubExperiments": subs});
                if let Some(pairs) = stellar {
                    let mut object = serde_json::json!({});
                    for (key, value) in pairs {
                        object[key] = value;
                    }
                    doc["Stellar"] = object;
                }
                doc.to_string()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Structured fuzzing: any mix of keys and hostile values yields Ok or Err, never a panic.
        #[test]
        fn never_panics_on_structured_input(text in wild_experiment()) {
            let _ = plan_of(&text);
        }

        /// Byte-level mutations of a valid file: Ok or Err, never a panic.
        #[test]
        fn never_panics_on_mutated_input(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6)
        ) {
            let mut bytes = sub(r#", "Title": "t", "IATSeconds": 2, "Parallelism": 2, "Visualization": "bar-5""#).into_bytes();
            for (at, op, byte) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 if i < bytes.len() => { bytes.remove(i); }
                    1 => bytes.insert(i, byte),
                    _ if i < bytes.len() => bytes[i] = byte,
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = plan_of(&text);
        }

        /// Arbitrary text: Ok or Err, never a panic.
        #[test]
        fn never_panics_on_random_text(text in "\\PC{0,200}") {
            let _ = plan_of(&text);
        }
    }
}
