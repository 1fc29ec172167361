//! stellar: measures the tail latency of serverless clouds.
//!
//! Data flow: `stellar_config` (experiment → plan) → [`provision`] (plugins deploy the
//! measurement function, built by [`package`] for the artifact kind the adapter declares;
//! [`credentials`] for the adapter that declares them) → [`drive`] (timed requests) → [`analysis`] (cold labels, CIs,
//! fidelity, plots, report.html, on `stellar_results`) → [`compare`] across runs.
//! [`cleanup`] removes what a run's journal says may be left. [`plugin`] is the sandboxed
//! adapter host; `stellar_local` the embedded provider.

pub mod analysis;
pub mod chain;
pub mod cleanup;
pub mod cli;
pub mod compare;
pub mod credentials;
pub mod drive;
pub mod embedded;
pub mod file_limits;
pub mod instances;
pub mod journal;
pub mod logging;
pub mod orphans;
pub mod package;
pub mod plugin;
pub mod progress;
pub mod provision;
pub mod report_text;
pub mod resume;
pub mod run;
pub mod shard;
