//! Finishing an interrupted run: `stellar run --resume RUN_DIR`.
//!
//! Cold-start experiments run for hours, so a crash or a lost machine must not cost the rows
//! already measured. Every run writes `run.json` beside `plan.json`: which binary and which
//! experiment file made it, and one entry per *segment* (the run as started is segment 0,
//! each resume adds one). A resume reads the frozen plan and the rows on disk, and sends
//! exactly the requests that have none yet ([`crate::drive::Remaining`]).
//!
//! A resume is refused when the `stellar` binary or the experiment file changed since the run
//! started (their SHA-256 are in `run.json`), unless forced: the rows of two segments would
//! not measure the same thing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stellar_config::Plan;
use stellar_results::{LatencyRow, LatencyWriter};

use crate::drive::Remaining;

/// The file in a run directory that records how the run was made and resumed.
pub const RUN_JSON: &str = "run.json";

/// Contents of `run.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunManifest {
    pub run_id: String,
    /// The `stellar` version that started the run.
    pub stellar_version: String,
    /// SHA-256 of the `stellar` executable that started the run.
    pub binary_sha256: String,
    /// The experiment file as it was given.
    pub experiment: PathBuf,
    /// SHA-256 of the experiment file's bytes when the run started.
    pub experiment_sha256: String,
    /// Segment 0 is the run as started; every resume appends one.
    pub segments: Vec<SegmentRecord>,
}

/// One stretch of sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub segment: u32,
    /// Wall-clock start on this machine (Unix ms).
    pub started_unix_ms: u64,
    /// A resume that was forced past a changed binary or experiment file, and what changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced_past: Vec<String>,
}

impl RunManifest {
    /// The manifest of a run starting now from `experiment`.
    pub fn start(run_id: &str, experiment: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            run_id: run_id.to_owned(),
            stellar_version: env!("CARGO_PKG_VERSION").to_owned(),
            binary_sha256: current_binary_sha256()?,
            experiment: experiment.to_owned(),
            experiment_sha256: file_sha256(experiment)?,
            segments: vec![SegmentRecord {
                segment: 0,
                started_unix_ms: now_unix_ms(),
                forced_past: Vec::new(),
            }],
        })
    }

    pub fn read(run_dir: &Path) -> anyhow::Result<Self> {
        let path = run_dir.join(RUN_JSON);
        let text = fs_err::read_to_string(&path).with_context(|| {
            format!(
                "{} cannot be resumed: it has no {RUN_JSON} (runs made before `--resume` \
                 existed cannot be resumed)",
                run_dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a stellar run manifest", path.display()))
    }

    pub fn write(&self, run_dir: &Path) -> anyhow::Result<()> {
        let path = run_dir.join(RUN_JSON);
        let tmp = run_dir.join(format!("{RUN_JSON}.tmp"));
        fs_err::write(&tmp, serde_json::to_string_pretty(self)? + "\n")?;
        fs_err::rename(&tmp, &path)?;
        Ok(())
    }

    /// What differs now from when the run started: the binary, the experiment file (or its
    /// absence). Empty when nothing does.
    pub fn changes_since_start(&self) -> anyhow::Result<Vec<String>> {
        let mut changes = Vec::new();
        if current_binary_sha256()? != self.binary_sha256 {
            changes.push(format!(
                "the stellar binary changed (the run started with {} sha256 {})",
                self.stellar_version,
                short(&self.binary_sha256)
            ));
        }
        match file_sha256(&self.experiment) {
            Ok(sha) if sha == self.experiment_sha256 => {}
            Ok(_) => changes.push(format!(
                "the experiment file {} changed since the run started",
                self.experiment.display()
            )),
            Err(_) => changes.push(format!(
                "the experiment file {} is gone",
                self.experiment.display()
            )),
        }
        Ok(changes)
    }

    /// Appends the next segment and returns its number.
    pub fn begin_segment(&mut self, forced_past: Vec<String>) -> u32 {
        let segment = self.segments.len() as u32;
        self.segments.push(SegmentRecord {
            segment,
            started_unix_ms: now_unix_ms(),
            forced_past,
        });
        segment
    }
}

/// One sub-experiment of a run being resumed: its file reopened for appending, the rows it
/// already has, and what is left to send.
pub struct ResumedSub {
    pub writer: LatencyWriter,
    pub rows: Vec<LatencyRow>,
    pub remaining: Remaining,
    /// A row torn by the crash was dropped (its request is sent again).
    pub dropped_torn_row: bool,
}

/// Reads what each sub-experiment of `plan` already has in `run_dir`. A sub-experiment the
/// run never reached gets a fresh file.
pub fn read_progress(plan: &Plan, run_dir: &Path) -> anyhow::Result<Vec<ResumedSub>> {
    plan.sub_experiments
        .iter()
        .map(|sub| {
            let dir = run_dir.join(&sub.slug);
            let csv = dir.join(stellar_results::LATENCIES_CSV);
            let (writer, rows, dropped_torn_row) = if csv.is_file() {
                LatencyWriter::resume(&csv)?
            } else {
                fs_err::create_dir_all(&dir)?;
                (LatencyWriter::create(&csv)?, Vec::new(), false)
            };
            let mut done = HashSet::with_capacity(rows.len());
            for row in &rows {
                if !done.insert(row.request_index) {
                    anyhow::bail!(
                        "{}: request {} has two rows; the file was not written by one stellar run",
                        csv.display(),
                        row.request_index
                    );
                }
            }
            let offsets: std::collections::HashMap<u64, f64> = sub
                .bursts
                .iter()
                .map(|b| (b.burst_id, b.offset_ms))
                .collect();
            let axis_shift_ms = rows
                .iter()
                .find_map(|r| Some(r.planned_send_ms - offsets.get(&r.burst_id)?))
                .unwrap_or(0.0);
            Ok(ResumedSub {
                writer,
                rows,
                remaining: Remaining {
                    done,
                    axis_shift_ms,
                },
                dropped_torn_row,
            })
        })
        .collect()
}

/// Requests still to send across the whole run.
pub fn requests_left(plan: &Plan, progress: &[ResumedSub]) -> u64 {
    plan.sub_experiments
        .iter()
        .zip(progress)
        .map(|(sub, p)| {
            let planned: u64 = sub.bursts.iter().map(|b| u64::from(b.size)).sum();
            planned.saturating_sub(p.remaining.done.len() as u64)
        })
        .sum()
}

fn current_binary_sha256() -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("finding the stellar executable")?;
    file_sha256(&exe)
}

fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_experiment_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let experiment = dir.path().join("e.json");
        fs_err::write(&experiment, "{}").unwrap();
        let mut manifest = RunManifest::start("abc123", &experiment).unwrap();
        manifest.write(dir.path()).unwrap();
        let read = RunManifest::read(dir.path()).unwrap();
        assert_eq!(read, manifest);
        assert!(read.changes_since_start().unwrap().is_empty());
        fs_err::write(&experiment, "{ }").unwrap();
        let changes = read.changes_since_start().unwrap();
        assert_eq!(changes.len(), 1);
        assert!(
            changes[0].contains("changed since the run started"),
            "{changes:?}"
        );
        fs_err::remove_file(&experiment).unwrap();
        assert!(read.changes_since_start().unwrap()[0].contains("is gone"));
        assert_eq!(manifest.begin_segment(vec!["x".into()]), 1);
        assert_eq!(manifest.segments[1].forced_past, vec!["x".to_owned()]);
    }

    #[test]
    fn a_directory_without_run_json_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunManifest::read(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("has no run.json"), "{err:#}");
    }
}
