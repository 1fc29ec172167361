//! The experiment file as written: a strict serde mirror of STeLLAR's `Configuration` schema.
//!
//! Why: STeLLAR's experiment files (`experiments/**/*.json` in the original repository) must load
//! unchanged, so the keys, types and defaults here are STeLLAR's (`src/setup/extract-configuration.go`
//! on `main`, plus `RepurposeIdentifier` from the `continuous-benchmarking` branch). Two things
//! are stricter than Go's `encoding/json`, on purpose:
//!
//! - unknown keys are errors (`deny_unknown_fields`): Go silently ignores a misspelt
//!   `"BurstSize"` and runs a different experiment than the one intended;
//! - keys are case-sensitive (Go matches them case-insensitively); a mis-cased key is therefore
//!   reported as unknown, together with the list of expected keys.
//!
//! A key repeated in one object is accepted as Go accepts it (the last value wins), but never
//! silently: it becomes a [`crate::DuplicateKey`] warning in the plan.
//!
//! # Defaults
//! STeLLAR applies a default when a field is *absent or holds its zero value* (`""`, `0`), e.g.
//! `"Parallelism": 0` means 1. [`Experiment::from_json_str`] and [`Experiment::from_file`] do the
//! same through [`Experiment::apply_stellar_defaults`], so after loading, every field holds the
//! value STeLLAR would have used. A bare `serde_json::from_str` fills absent fields only.
//!
//! Values are not checked here (a burst size of 0 loads); that is [`crate::Plan`]'s job, which
//! is the only thing the rest of stellar consumes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::duplicates::DuplicateKey;
use crate::error::ConfigError;
use crate::json_path::JsonPath;
pub use crate::settings::{LocalConfig, StellarConfig};

/// STeLLAR's default `Provider`.
pub const DEFAULT_PROVIDER: &str = "aws";
/// STeLLAR's default `Runtime` (top level, and per sub-experiment when neither is given).
pub const DEFAULT_RUNTIME: &str = "python3.9";
/// STeLLAR's default `IATType`.
pub const DEFAULT_IAT_TYPE: &str = "stochastic";
/// STeLLAR's default `PackageType`.
pub const DEFAULT_PACKAGE_TYPE: &str = "Zip";
/// STeLLAR's default `Parallelism`.
pub const DEFAULT_PARALLELISM: i64 = 1;
/// STeLLAR's default `Visualization`.
pub const DEFAULT_VISUALIZATION: &str = "cdf";
/// STeLLAR's default `Function`.
pub const DEFAULT_FUNCTION: &str = "hellopy";
/// STeLLAR's default `FunctionMemoryMB`.
pub const DEFAULT_FUNCTION_MEMORY_MB: i64 = 128;
/// STeLLAR's default `DataTransferChainLength`.
pub const DEFAULT_DATA_TRANSFER_CHAIN_LENGTH: i64 = 1;
/// STeLLAR's default `Handler`.
pub const DEFAULT_HANDLER: &str = "main.lambda_handler";
/// STeLLAR's default `PackagePattern`.
pub const DEFAULT_PACKAGE_PATTERN: &str = "**";

/// A whole experiment file (STeLLAR's `Configuration`, plus our optional `Stellar` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "PascalCase",
    deny_unknown_fields,
    expecting = "an experiment object with a `SubExperiments` list"
)]
pub struct Experiment {
    /// Run the sub-experiments one after another (`true`) or all at once (`false`, default).
    #[serde(default)]
    pub sequential: bool,
    /// `local`, `aws`, `azure`, `gcr`, `aliyun`, `vhive`, `cloudflare`, `google`, or a hostname /
    /// URL to benchmark directly (STeLLAR's external mode). Default `"aws"`.
    #[serde(default = "default_provider")]
    pub provider: String,
    /// Provider runtime (e.g. `python3.9`, `go1.x`); default `"python3.9"`. stellar always
    /// deploys a native Rust function, so a non-default value is recorded as ignored.
    #[serde(default = "default_runtime")]
    pub runtime: String,
    /// The sub-experiments, each with its own functions and request schedule.
    pub sub_experiments: Vec<SubExperiment>,
    /// stellar's own settings (not part of STeLLAR's schema; STeLLAR files simply omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stellar: Option<StellarConfig>,
}

/// One sub-experiment (STeLLAR's `SubExperiment`): a set of identical functions and the bursts
/// sent to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "PascalCase",
    deny_unknown_fields,
    expecting = "a sub-experiment object"
)]
pub struct SubExperiment {
    /// Free text; used (sanitised) in output directory and function names.
    #[serde(default)]
    pub title: String,
    /// Total number of bursts, spread round-robin over the `Parallelism` endpoints.
    #[serde(default)]
    pub bursts: i64,
    /// Requests per burst, cycled per round: `BurstSizes[round % len]`. Required.
    pub burst_sizes: Vec<i64>,
    /// Payload size the function generates (STeLLAR: first function of a data-transfer chain).
    #[serde(default)]
    pub payload_length_bytes: i64,
    /// Inter-arrival time base between an endpoint's bursts, in seconds (see `IATType`).
    #[serde(default, rename = "IATSeconds")]
    pub iat_seconds: f64,
    /// Go duration strings (`"0ms"`, `"500ms"`, `"1.5s"`); round `r` uses entry
    /// `min(r, len-1)`. Required.
    pub desired_service_times: Vec<String>,
    /// `stochastic` (default), `deterministic` or `step`.
    #[serde(default = "default_iat_type", rename = "IATType")]
    pub iat_type: String,
    /// `Zip` (default), `Image` or `Container`.
    #[serde(default = "default_package_type")]
    pub package_type: String,
    /// Number of identical functions (endpoints) the bursts are spread over. Default 1.
    #[serde(default = "default_parallelism")]
    pub parallelism: i64,
    /// `cdf` (default), `bar`, `bar-<coldThresholdMs>`, `histogram`, `all` or `none`.
    #[serde(default = "default_visualization")]
    pub visualization: String,
    /// STeLLAR's function code directory (default `"hellopy"`); ignored by stellar.
    #[serde(default = "default_function")]
    pub function: String,
    /// Function memory in MB. Default 128.
    #[serde(default = "default_function_memory_mb", rename = "FunctionMemoryMB")]
    pub function_memory_mb: i64,
    /// Target deployment-package size in MB (padded with a filler file). 0 = no padding.
    #[serde(default, rename = "FunctionImageSizeMB")]
    pub function_image_size_mb: f64,
    /// Length of a producer-consumer chain. Default 1 (no chain).
    #[serde(default = "default_data_transfer_chain_length")]
    pub data_transfer_chain_length: i64,
    /// Transfer chain payloads through object storage instead of inline.
    #[serde(default)]
    pub storage_transfer: bool,
    /// Function handler (default `"main.lambda_handler"`); ignored by stellar.
    #[serde(default = "default_handler")]
    pub handler: String,
    /// Per-function runtime; empty means the top-level `Runtime`.
    #[serde(default)]
    pub runtime: String,
    /// AWS SnapStart; ignored by stellar (not available for native runtimes).
    #[serde(default)]
    pub snap_start_enabled: bool,
    /// Google Cloud Run `--cpu-boost`; honoured only when the provider is `gcr`.
    #[serde(default, rename = "CPUBoostEnabled")]
    pub cpu_boost_enabled: bool,
    /// serverless.yml `package.patterns` entry (default `"**"`); ignored by stellar.
    #[serde(default = "default_package_pattern")]
    pub package_pattern: String,
    /// Explicit busy-spin iteration counts, one per `DesiredServiceTimes` entry (STeLLAR fills
    /// this from a client-side calibration when absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub busy_spin_increments: Vec<i64>,
    /// `continuous-benchmarking` branch only: reuse functions tagged with this identifier.
    /// Accepted and recorded as ignored.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repurpose_identifier: String,
}

fn default_provider() -> String {
    DEFAULT_PROVIDER.to_owned()
}
fn default_runtime() -> String {
    DEFAULT_RUNTIME.to_owned()
}
fn default_iat_type() -> String {
    DEFAULT_IAT_TYPE.to_owned()
}
fn default_package_type() -> String {
    DEFAULT_PACKAGE_TYPE.to_owned()
}
fn default_parallelism() -> i64 {
    DEFAULT_PARALLELISM
}
fn default_visualization() -> String {
    DEFAULT_VISUALIZATION.to_owned()
}
fn default_function() -> String {
    DEFAULT_FUNCTION.to_owned()
}
fn default_function_memory_mb() -> i64 {
    DEFAULT_FUNCTION_MEMORY_MB
}
fn default_data_transfer_chain_length() -> i64 {
    DEFAULT_DATA_TRANSFER_CHAIN_LENGTH
}
fn default_handler() -> String {
    DEFAULT_HANDLER.to_owned()
}
fn default_package_pattern() -> String {
    DEFAULT_PACKAGE_PATTERN.to_owned()
}

fn default_if_empty(value: &mut String, default: &str) {
    if value.is_empty() {
        default.clone_into(value);
    }
}

fn default_if_zero(value: &mut i64, default: i64) {
    if *value == 0 {
        *value = default;
    }
}

impl Experiment {
    /// Replaces zero values by STeLLAR's defaults, exactly as STeLLAR's `ExtractConfiguration`
    /// does (including a sub-experiment's empty `Runtime` taking the top-level `Runtime`).
    pub fn apply_stellar_defaults(&mut self) {
        default_if_empty(&mut self.provider, DEFAULT_PROVIDER);
        default_if_empty(&mut self.runtime, DEFAULT_RUNTIME);
        for sub in &mut self.sub_experiments {
            default_if_empty(&mut sub.function, DEFAULT_FUNCTION);
            default_if_empty(&mut sub.handler, DEFAULT_HANDLER);
            default_if_empty(&mut sub.runtime, &self.runtime);
            default_if_empty(&mut sub.visualization, DEFAULT_VISUALIZATION);
            default_if_empty(&mut sub.package_type, DEFAULT_PACKAGE_TYPE);
            default_if_empty(&mut sub.package_pattern, DEFAULT_PACKAGE_PATTERN);
            default_if_empty(&mut sub.iat_type, DEFAULT_IAT_TYPE);
            default_if_zero(
                &mut sub.data_transfer_chain_length,
                DEFAULT_DATA_TRANSFER_CHAIN_LENGTH,
            );
            default_if_zero(&mut sub.function_memory_mb, DEFAULT_FUNCTION_MEMORY_MB);
            default_if_zero(&mut sub.parallelism, DEFAULT_PARALLELISM);
        }
    }

    /// Parses an experiment from JSON text and applies STeLLAR's defaults. `source_path` is only
    /// used to name the file in error messages. A key repeated in one object is read as STeLLAR
    /// reads it (the last value wins) and logged as a warning; use
    /// [`Experiment::from_json_str_with_warnings`] to get those warnings.
    pub fn from_json_str(text: &str, source_path: &Path) -> Result<Self, ConfigError> {
        let (experiment, duplicates) = Self::from_json_str_with_warnings(text, source_path)?;
        for duplicate in &duplicates {
            tracing::warn!("{}", duplicate.warning(source_path));
        }
        Ok(experiment)
    }

    /// Like [`Experiment::from_json_str`], and returns the repeated keys (in file order) instead
    /// of logging them.
    pub fn from_json_str_with_warnings(
        text: &str,
        source_path: &Path,
    ) -> Result<(Self, Vec<DuplicateKey>), ConfigError> {
        let parsed = Self::parse(text, source_path)?;
        Ok((parsed.experiment, parsed.duplicate_keys))
    }

    /// Parses `text`; when it repeats keys, parses the text that keeps the last occurrences
    /// (positions unchanged) after checking that the overwritten values are well-typed too.
    pub(crate) fn parse(text: &str, source_path: &Path) -> Result<Parsed, ConfigError> {
        if text.trim().is_empty() {
            return Err(ConfigError::Parse {
                path: source_path.to_owned(),
                json_path: String::new(),
                message:
                    "the file is empty; expected an experiment object with a `SubExperiments` list"
                        .to_owned(),
                line: None,
                column: None,
            });
        }
        let duplicates = crate::duplicates::scan(text);
        if duplicates.is_empty() {
            return Ok(Parsed {
                experiment: Self::parse_strict(text, source_path)?,
                duplicate_keys: Vec::new(),
                text: text.to_owned(),
            });
        }
        let kept = duplicates.keep(usize::MAX);
        let experiment = Self::parse_strict(&kept, source_path)?;
        for earlier in duplicates.variants() {
            Self::parse_strict(&earlier, source_path)?;
        }
        Ok(Parsed {
            experiment,
            duplicate_keys: duplicates.warnings(),
            text: kept,
        })
    }

    /// serde's strict parse (unknown keys, wrong types and repeated keys are errors), then
    /// STeLLAR's defaults.
    fn parse_strict(text: &str, source_path: &Path) -> Result<Self, ConfigError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let mut experiment: Self = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| ConfigError::from_serde(source_path, &error))?;
        deserializer
            .end()
            .map_err(|error| ConfigError::from_json_error(source_path, String::new(), &error))?;
        experiment.apply_stellar_defaults();
        Ok(experiment)
    }

    /// Reads and parses an experiment file and applies STeLLAR's defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        Self::from_json_str(&text, path)
    }
}

/// An experiment as parsed from text, with what the planner needs besides it.
pub(crate) struct Parsed {
    pub(crate) experiment: Experiment,
    /// Keys repeated in one object (the last value was used), in file order.
    pub(crate) duplicate_keys: Vec<DuplicateKey>,
    /// The text that was parsed: the file's, or with the overwritten members blanked (same
    /// positions), so that validation errors point at the value that is used.
    pub(crate) text: String,
}

/// Reads a file as UTF-8 text, with errors that name the file.
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = fs_err::read(path).map_err(|error| ConfigError::Io {
        path: path.to_owned(),
        error,
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let valid = error.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(error.as_bytes().get(..valid).unwrap_or_default());
        let (line, column) = crate::json_path::line_column(&prefix, valid);
        ConfigError::Parse {
            path: path.to_owned(),
            json_path: JsonPath::root().to_string(),
            message: format!("the file is not valid UTF-8 (byte offset {valid})"),
            line: Some(line),
            column: Some(column),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Experiment, ConfigError> {
        Experiment::from_json_str(text, Path::new("x.json"))
    }

    fn err(text: &str) -> String {
        parse(text).expect_err("should be rejected").to_string()
    }

    const MINIMAL: &str =
        r#"{"SubExperiments": [{"BurstSizes": [1], "DesiredServiceTimes": ["0ms"]}]}"#;

    #[test]
    fn absent_fields_take_stellar_defaults() {
        let exp = parse(MINIMAL).expect("minimal file loads");
        assert!(!exp.sequential);
        assert_eq!(exp.provider, "aws");
        assert_eq!(exp.runtime, "python3.9");
        assert_eq!(exp.stellar, None);
        let sub = &exp.sub_experiments[0];
        assert_eq!(sub.title, "");
        assert_eq!(sub.bursts, 0);
        assert_eq!(sub.iat_type, "stochastic");
        assert_eq!(sub.package_type, "Zip");
        assert_eq!(sub.parallelism, 1);
        assert_eq!(sub.visualization, "cdf");
        assert_eq!(sub.function, "hellopy");
        assert_eq!(sub.function_memory_mb, 128);
        assert_eq!(sub.data_transfer_chain_length, 1);
        assert_eq!(sub.handler, "main.lambda_handler");
        assert_eq!(sub.runtime, "python3.9");
        assert_eq!(sub.package_pattern, "**");
        assert!(sub.busy_spin_increments.is_empty());
    }

    #[test]
    fn zero_values_take_stellar_defaults() {
        let exp = parse(
            r#"{"Provider": "", "Runtime": "go1.x", "SubExperiments": [{"BurstSizes": [1],
                "DesiredServiceTimes": ["0ms"], "Parallelism": 0, "FunctionMemoryMB": 0,
                "DataTransferChainLength": 0, "IATType": "", "Visualization": "", "Function": "",
                "Handler": "", "PackageType": "", "PackagePattern": "", "Runtime": ""}]}"#,
        )
        .expect("loads");
        assert_eq!(exp.provider, "aws");
        let sub = &exp.sub_experiments[0];
        assert_eq!(sub.parallelism, 1);
        assert_eq!(sub.function_memory_mb, 128);
        assert_eq!(sub.data_transfer_chain_length, 1);
        assert_eq!(sub.iat_type, "stochastic");
        assert_eq!(sub.visualization, "cdf");
        assert_eq!(sub.function, "hellopy");
        assert_eq!(sub.handler, "main.lambda_handler");
        assert_eq!(sub.package_type, "Zip");
        assert_eq!(sub.package_pattern, "**");
        // A sub-experiment's runtime defaults to the top-level one.
        assert_eq!(sub.runtime, "go1.x");
    }

    #[test]
    fn loads_every_stellar_field() {
        let exp = parse(
            r#"{
  "Sequential": true,
  "Provider": "gcr",
  "Runtime": "go1.x",
  "SubExperiments": [
    {
      "Title": "all-fields",
      "Bursts": 10,
      "BurstSizes": [1, 2],
      "PayloadLengthBytes": 1024,
      "IATSeconds": 2.5,
      "DesiredServiceTimes": ["0ms", "1s"],
      "IATType": "step",
      "PackageType": "Container",
      "Parallelism": 3,
      "Visualization": "bar-200",
      "Function": "hellogo",
      "FunctionMemoryMB": 256,
      "FunctionImageSizeMB": 50.5,
      "DataTransferChainLength": 2,
      "StorageTransfer": true,
      "Handler": "Dockerfile",
      "Runtime": "go1.x",
      "SnapStartEnabled": true,
      "CPUBoostEnabled": true,
      "PackagePattern": "main.go",
      "BusySpinIncrements": [0, 1000],
      "RepurposeIdentifier": "cb"
    }
  ]
}"#,
        )
        .expect("loads");
        let sub = &exp.sub_experiments[0];
        assert_eq!(sub.burst_sizes, [1, 2]);
        assert_eq!(sub.iat_seconds, 2.5);
        assert_eq!(sub.function_image_size_mb, 50.5);
        assert!(sub.cpu_boost_enabled && sub.snap_start_enabled && sub.storage_transfer);
        assert_eq!(sub.busy_spin_increments, [0, 1000]);
        assert_eq!(sub.repurpose_identifier, "cb");
        // Round trip through our own serializer keeps every key.
        let text = serde_json::to_string(&exp).expect("serializes");
        assert_eq!(parse(&text).expect("reloads"), exp);
    }

    #[test]
    fn wrong_types_name_the_json_path_and_position() {
        assert_eq!(
            err("{\"SubExperiments\": [{\"BurstSizes\": \"5\", \"DesiredServiceTimes\": []}]}"),
            "x.json: SubExperiments[0].BurstSizes: invalid type: string \"5\", expected a sequence (line 1, column 38)"
        );
    }

    #[test]
    fn unknown_and_missing_keys_are_errors() {
        let unknown = err(r#"{"SubExperiments": [{"BurstSize": [1]}]}"#);
        assert!(
            unknown.starts_with("x.json: SubExperiments[0]: unknown field"),
            "{unknown}"
        );
        assert!(
            unknown.contains("unknown field `BurstSize`, expected one of"),
            "{unknown}"
        );
        let mis_cased = err(r#"{"subExperiments": []}"#);
        assert!(
            mis_cased.contains("unknown field `subExperiments`"),
            "{mis_cased}"
        );
        let missing = err(r#"{"SubExperiments": [{"BurstSizes": [1]}]}"#);
        assert!(
            missing.contains("missing field `DesiredServiceTimes`"),
            "{missing}"
        );
        assert!(err("{}").contains("missing field `SubExperiments`"));
    }

    #[test]
    fn syntax_errors_and_trailing_garbage() {
        assert_eq!(
            err("Provider: aws"),
            "x.json: invalid JSON: expected value (line 1, column 1)"
        );
        assert!(err(" \n").contains("the file is empty"));
        assert_eq!(
            err(&format!("{MINIMAL} x")),
            format!(
                "x.json: invalid JSON: trailing characters (line 1, column {})",
                MINIMAL.len() + 2
            )
        );
        assert!(err("[]").contains("expected an experiment object with a `SubExperiments` list"));
    }

    #[test]
    fn files_name_themselves_in_errors() {
        let missing = Experiment::from_file(Path::new("/nonexistent/stellar.json"))
            .expect_err("missing file");
        assert!(matches!(missing, ConfigError::Io { .. }));
        assert!(
            missing
                .to_string()
                .starts_with("/nonexistent/stellar.json: cannot read the file")
        );
    }
}
