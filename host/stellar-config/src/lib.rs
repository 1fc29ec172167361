//! Experiment files for stellar: STeLLAR's JSON schema, parsed strictly, validated, and turned
//! into a [`Plan`] with the complete request schedule.
//!
//! Why a separate crate: it is the contract between the user's experiment file and everything
//! that runs. Two stages, so that nothing downstream ever sees unchecked input:
//!
//! 1. [`raw`]: serde types that mirror STeLLAR's `Configuration` exactly (PascalCase keys,
//!    STeLLAR's defaults, unknown keys rejected), plus stellar's own optional `"Stellar"`
//!    object ([`settings`]). STeLLAR's experiment files load unchanged, including a key
//!    repeated in one object, which Go reads as its last value ([`DuplicateKey`], a warning).
//! 2. [`plan`]: validation with precise errors ([`ConfigError`]: file, JSON path, line:column,
//!    what was expected), resolved [`Settings`], the seed, and per sub-experiment the full
//!    burst schedule ([`schedule`], with seeded inter-arrival times from [`iat`]).
//!
//! ```
//! use std::path::Path;
//! use stellar_config::{Plan, PlanOptions};
//!
//! let text = r#"{
//!   "Provider": "local",
//!   "Stellar": { "Seed": 42 },
//!   "SubExperiments": [
//!     { "Title": "warm", "Bursts": 10, "BurstSizes": [1], "IATSeconds": 0.5,
//!       "IATType": "deterministic", "DesiredServiceTimes": ["10ms"] }
//!   ]
//! }"#;
//! let plan = Plan::from_json_str(text, Path::new("warm.json"), &PlanOptions::default())?;
//! assert_eq!(plan.total_requests(), 10);
//! assert_eq!(plan.sub_experiments[0].bursts[9].offset_ms, 4500.0);
//!
//! let err = Plan::from_json_str(&text.replace("\"IATSeconds\"", "\"IatSeconds\""),
//!                               Path::new("warm.json"), &PlanOptions::default()).unwrap_err();
//! assert!(err.to_string().starts_with("warm.json: SubExperiments[0]: unknown field `IatSeconds`"));
//! # Ok::<(), stellar_config::ConfigError>(())
//! ```

#![warn(missing_docs)]

mod duplicates;
mod duration;
mod error;
pub mod iat;
mod json_path;
pub mod plan;
pub mod raw;
pub mod schedule;
pub mod settings;

pub use duplicates::DuplicateKey;
pub use duration::{DurationError, DurationErrorKind, parse_go_duration};
pub use error::ConfigError;
pub use iat::IatType;
pub use plan::{
    IgnoredField, MAX_PROVIDER_NAME, PackageType, Plan, PlanOptions, ProviderKind, SeedSource,
    SubExperimentPlan, Visualization, is_provider_name,
};
pub use raw::*;
pub use schedule::PlannedBurst;
pub use settings::{Architecture, ConnectionMode, FunctionProtocol, LocalSettings, Settings};
