//! The frozen plan of a prepared run (`RUN_DIR/plan.json`): the validated plan with its seed
//! and full schedule (the same `plan.json` every run writes), plus what shards need to send
//! without cloud credentials: the deployed endpoints, the planned start of each
//! sub-experiment, and a SHA-256 of all of it.
//!
//! The hash is over the canonical JSON of the file without the hash itself (keys sorted,
//! compact), so any edit to the plan or the endpoints is caught by every shard before it
//! sends, and by `stellar merge` when shards ran different plans.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stellar_config::Plan;

/// File name of the frozen plan in a run directory.
pub const PLAN_JSON: &str = "plan.json";
/// Key of the prepared-run part inside `plan.json`.
const PREPARED_KEY: &str = "prepared";
/// Key of the hash inside the prepared part.
const HASH_KEY: &str = "plan_sha256";
/// Version of the prepared part.
pub const PREPARED_SCHEMA: &str = "stellar-prepared/1";

/// What `stellar prepare` adds to the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    pub schema: String,
    /// The run id the functions were named with (`st-<run id>-NN-PP`).
    pub run_id: String,
    pub prepared_unix_ms: u64,
    /// Endpoint URLs per sub-experiment (plan order), per parallelism index.
    pub endpoints: Vec<Vec<String>>,
    /// Whether the endpoints run stellar's measurement function (send its query, expect its
    /// reply).
    pub measurement_function: bool,
    /// Extra query parameters for every timed request (test fault knobs), if any.
    pub extra_query: Option<String>,
    /// When each sub-experiment's schedule starts, in ms after `T0`: all 0 when the plan's
    /// sub-experiments run concurrently; for a sequential plan, each one after the previous
    /// one's last burst plus the sequential gap.
    pub sub_start_ms: Vec<f64>,
    /// SHA-256 (hex) of the canonical JSON of the whole file without this field.
    #[serde(default)]
    pub plan_sha256: String,
}

/// A prepared run read back and checked.
#[derive(Debug, Clone)]
pub struct PreparedRun {
    pub plan: Plan,
    pub prepared: Prepared,
}

/// Why a prepared run's `plan.json` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PreparedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a stellar plan: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{path}: no `prepared` object: this is the plan of an ordinary run, not of one made by \
         `stellar prepare EXPERIMENT -o RUN_DIR`"
    )]
    NotPrepared { path: PathBuf },
    #[error("{path}: prepared.schema is {found:?}; expected {PREPARED_SCHEMA:?}")]
    Schema { path: PathBuf, found: String },
    #[error(
        "{path}: prepared.plan_sha256 is {recorded} but the file's content hashes to {actual}: \
         the plan or its endpoints were changed after `stellar prepare`; nothing was sent"
    )]
    HashMismatch {
        path: PathBuf,
        recorded: String,
        actual: String,
    },
    #[error(
        "{path}: prepared.endpoints has {found} entries for sub-experiment {sub} but its \
         Parallelism is {expected}"
    )]
    Endpoints {
        path: PathBuf,
        sub: String,
        found: usize,
        expected: u32,
    },
    #[error("{path}: prepared.{field}: {why}")]
    Field {
        path: PathBuf,
        field: &'static str,
        why: String,
    },
}

impl PreparedRun {
    /// Writes `RUN_DIR/plan.json` with the hash filled in; returns the hash.
    pub fn write(
        plan: &Plan,
        mut prepared: Prepared,
        run_dir: &Path,
    ) -> Result<String, PreparedError> {
        let path = run_dir.join(PLAN_JSON);
        let json_err = |source| PreparedError::Json {
            path: path.clone(),
            source,
        };
        prepared.plan_sha256 = String::new();
        let mut value = serde_json::to_value(plan).map_err(json_err)?;
        let mut prepared_value = serde_json::to_value(&prepared).map_err(json_err)?;
        if let Some(p) = prepared_value.as_object_mut() {
            p.remove(HASH_KEY);
        }
        if let Some(map) = value.as_object_mut() {
            map.insert(PREPARED_KEY.to_owned(), prepared_value);
        }
        let hash = content_hash(&value);
        if let Some(p) = value
            .get_mut(PREPARED_KEY)
            .and_then(serde_json::Value::as_object_mut)
        {
            p.insert(HASH_KEY.to_owned(), serde_json::Value::String(hash.clone()));
        }
        let text = serde_json::to_string_pretty(&value).map_err(json_err)? + "\n";
        fs_err::write(&path, text).map_err(|source| PreparedError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(hash)
    }

    /// Reads `RUN_DIR/plan.json` and checks its hash and endpoints.
    pub fn read(run_dir: &Path) -> Result<Self, PreparedError> {
        let path = run_dir.join(PLAN_JSON);
        let text = fs_err::read_to_string(&path).map_err(|source| PreparedError::Io {
            path: path.clone(),
            source,
        })?;
        let json_err = |source| PreparedError::Json {
            path: path.clone(),
            source,
        };
        let mut value: serde_json::Value = serde_json::from_str(&text).map_err(json_err)?;
        let recorded = value
            .get_mut(PREPARED_KEY)
            .and_then(serde_json::Value::as_object_mut)
            .ok_or_else(|| PreparedError::NotPrepared { path: path.clone() })?
            .remove(HASH_KEY)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let actual = content_hash(&value);
        if recorded != actual {
            return Err(PreparedError::HashMismatch {
                path,
                recorded,
                actual,
            });
        }
        let prepared_value = value
            .as_object_mut()
            .and_then(|m| m.remove(PREPARED_KEY))
            .ok_or_else(|| PreparedError::NotPrepared { path: path.clone() })?;
        let mut prepared: Prepared = serde_json::from_value(prepared_value).map_err(json_err)?;
        prepared.plan_sha256 = actual;
        if prepared.schema != PREPARED_SCHEMA {
            return Err(PreparedError::Schema {
                path,
                found: prepared.schema,
            });
        }
        let plan: Plan = serde_json::from_value(value).map_err(json_err)?;
        if prepared.endpoints.len() != plan.sub_experiments.len() {
            return Err(PreparedError::Field {
                path,
                field: "endpoints",
                why: format!(
                    "{} sub-experiments have endpoints but the plan has {}",
                    prepared.endpoints.len(),
                    plan.sub_experiments.len()
                ),
            });
        }
        if prepared.sub_start_ms.len() != plan.sub_experiments.len()
            || prepared
                .sub_start_ms
                .iter()
                .any(|ms| !ms.is_finite() || *ms < 0.0)
        {
            return Err(PreparedError::Field {
                path,
                field: "sub_start_ms",
                why: format!(
                    "expected {} finite, non-negative start offsets",
                    plan.sub_experiments.len()
                ),
            });
        }
        for (sub, urls) in plan.sub_experiments.iter().zip(&prepared.endpoints) {
            if urls.len() != sub.parallelism as usize {
                return Err(PreparedError::Endpoints {
                    path,
                    sub: sub.slug.clone(),
                    found: urls.len(),
                    expected: sub.parallelism,
                });
            }
        }
        Ok(Self { plan, prepared })
    }

    /// The hash every shard and the merge check.
    pub fn hash(&self) -> &str {
        &self.prepared.plan_sha256
    }
}

/// Whether `run_dir/plan.json` is a prepared run's (has the `prepared` object); false when it
/// cannot be read.
pub fn is_prepared(run_dir: &Path) -> bool {
    fs_err::read_to_string(run_dir.join(PLAN_JSON))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|v| v.get(PREPARED_KEY).is_some())
}

/// The planned start of each sub-experiment after `T0` (ms): see [`Prepared::sub_start_ms`].
pub fn sub_start_offsets(plan: &Plan, sequential_gap_ms: f64) -> Vec<f64> {
    let mut next = 0.0;
    plan.sub_experiments
        .iter()
        .map(|sub| {
            if !plan.sequential {
                return 0.0;
            }
            let start = next;
            next = start + sub.duration_estimate().as_secs_f64() * 1e3 + sequential_gap_ms;
            start
        })
        .collect()
}

/// SHA-256 (hex) of the compact JSON of `value` (serde_json's maps are sorted by key).
fn content_hash(value: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stellar_config::PlanOptions;

    fn plan() -> Plan {
        let text = r#"{"Provider": "http://127.0.0.1:9/", "Stellar": {"Seed": 7},
            "SubExperiments": [{"Title": "a", "Bursts": 3, "BurstSizes": [2], "IATSeconds": 1,
            "IATType": "deterministic", "Parallelism": 2, "DesiredServiceTimes": ["1ms"]}]}"#;
        Plan::from_json_str(text, Path::new("x.json"), &PlanOptions::default()).unwrap()
    }

    fn prepared(plan: &Plan) -> Prepared {
        Prepared {
            schema: PREPARED_SCHEMA.into(),
            run_id: "abc123".into(),
            prepared_unix_ms: 1,
            endpoints: vec![vec![
                "http://127.0.0.1:9/a".into(),
                "http://127.0.0.1:9/b".into(),
            ]],
            measurement_function: false,
            extra_query: None,
            sub_start_ms: sub_start_offsets(plan, 0.0),
            plan_sha256: String::new(),
        }
    }

    #[test]
    fn sequential_sub_experiments_get_a_common_schedule() {
        let text = r#"{"Provider": "http://127.0.0.1:9/", "Sequential": true,
            "SubExperiments": [
            {"Title": "a", "Bursts": 3, "BurstSizes": [1], "IATSeconds": 2,
             "IATType": "deterministic", "DesiredServiceTimes": ["100ms"]},
            {"Title": "b", "Bursts": 2, "BurstSizes": [1], "IATSeconds": 1,
             "IATType": "deterministic", "DesiredServiceTimes": ["0ms"]},
            {"Title": "c", "Bursts": 1, "BurstSizes": [1], "IATSeconds": 1,
             "IATType": "deterministic", "DesiredServiceTimes": ["0ms"]}]}"#;
        let mut plan =
            Plan::from_json_str(text, Path::new("x.json"), &PlanOptions::default()).unwrap();
        // a: last burst at 4 s, plus its 100 ms service time, plus the gap; b: last at 1 s.
        assert_eq!(sub_start_offsets(&plan, 500.0), vec![0.0, 4600.0, 6100.0]);
        plan.sequential = false;
        assert_eq!(sub_start_offsets(&plan, 500.0), vec![0.0; 3]);
    }

    #[test]
    fn round_trips_and_catches_any_edit() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan();
        let hash = PreparedRun::write(&plan, prepared(&plan), dir.path()).unwrap();
        let back = PreparedRun::read(dir.path()).unwrap();
        assert_eq!(back.plan, plan);
        assert_eq!(back.hash(), hash);
        // The ordinary reader of plan.json still reads it.
        let as_plan = crate::analysis::read_plan(dir.path()).unwrap();
        assert_eq!(as_plan, plan);

        let path = dir.path().join(PLAN_JSON);
        let text = fs_err::read_to_string(&path).unwrap();
        let edited = text.replace("http://127.0.0.1:9/b", "http://127.0.0.1:9/c");
        assert_ne!(edited, text);
        fs_err::write(&path, edited).unwrap();
        let err = PreparedRun::read(dir.path()).unwrap_err();
        assert!(matches!(err, PreparedError::HashMismatch { .. }), "{err}");
        assert!(err.to_string().contains("plan.json"), "{err}");
    }
}
