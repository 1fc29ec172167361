//! `stellar run RUN_DIR --shard I/N --start-at T0`: one shard of a prepared run.
//!
//! The shard reads the frozen plan (refusing it when its hash does not match), checks its
//! clock, maps `T0` onto its monotonic clock, and sends exactly its part of every burst
//! through the same driver an ordinary run uses ([`crate::run::drive_all`]). It needs the
//! endpoint URLs only: no adapter and no cloud credentials. Rows are streamed to
//! `<out>/<NN-title>/latencies.csv` as in any run; `<out>/shard.json` says which shard this
//! was, for which plan, on which host, with what clock, and how it ended. Labels and
//! statistics are left to `stellar merge`, which sees whole bursts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Shard;
use super::clock::{self, ClockSync};
use super::prepared::PreparedRun;
use super::start::{Anchor, rfc3339};
use crate::drive::{StopSignal, Target};
use crate::provision::DeployedEndpoint;
use crate::run::{Segment, Sending};

/// File name of a shard's record.
pub const SHARD_JSON: &str = "shard.json";
/// Version of `shard.json`.
pub const SHARD_SCHEMA: &str = "stellar-shard/1";

/// Command-line choices of one shard.
#[derive(Debug, Clone)]
pub struct ShardArgs {
    pub run_dir: PathBuf,
    pub shard: Shard,
    /// `T0`, the wall-clock start every shard shares.
    pub start_at: SystemTime,
    /// How late after `T0` the shard may still start.
    pub grace: Duration,
    /// Largest kernel maximum clock error accepted.
    pub max_clock_error: Duration,
    /// Start although the clock is unsynchronised or too uncertain.
    pub force: bool,
    /// Where the shard writes (default `RUN_DIR/shards/I`).
    pub output: Option<PathBuf>,
    pub show_progress: bool,
}

/// How a shard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShardOutcome {
    /// Written when the shard starts; left so by a shard that was killed.
    Running,
    /// Every request it owns was sent.
    Complete,
    /// It stopped sending early (failure budget, Ctrl-C, SIGTERM).
    StoppedEarly,
    /// Not ready by `T0 + grace`: sent nothing.
    MissedStart,
    /// Its clock was not trustworthy and it was not forced: sent nothing.
    ClockRefused,
}

/// `shard.json`: everything `stellar merge` checks about one shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRecord {
    pub schema: String,
    pub shard: Shard,
    pub plan_sha256: String,
    pub run_id: String,
    /// The machine: its host name, and `STELLAR_CLIENT` when set (pod, node or zone).
    pub host: String,
    pub client: Option<String>,
    pub pid: u32,
    pub start_at: String,
    pub start_at_unix_ms: f64,
    pub grace_ms: f64,
    /// How long before `T0` the shard was ready to send (negative: after `T0`).
    pub ready_before_start_ms: Option<f64>,
    pub clock_at_start: Option<ClockSync>,
    pub clock_at_end: Option<ClockSync>,
    /// Why the clock could not be read, if it could not.
    pub clock_error: Option<String>,
    pub max_clock_error_ms: f64,
    /// Started although the clock check failed.
    pub forced: bool,
    pub clock_refusal: Option<String>,
    pub outcome: ShardOutcome,
    /// Requests this shard owns, per sub-experiment (plan order).
    pub planned_requests: Vec<u64>,
    /// Requests it sent (each one has a row unless the process was killed), per
    /// sub-experiment.
    pub sent_requests: Vec<u64>,
}

impl ShardRecord {
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(SHARD_JSON);
        let text = fs_err::read_to_string(&path)?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a stellar shard record", path.display()))
    }

    fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(SHARD_JSON);
        let tmp = dir.join(format!("{SHARD_JSON}.tmp"));
        fs_err::write(&tmp, serde_json::to_string_pretty(self)? + "\n")?;
        fs_err::rename(&tmp, &path)?;
        Ok(())
    }
}

/// What a shard did, for the command line.
#[derive(Debug)]
pub struct ShardResult {
    pub out_dir: PathBuf,
    pub record: ShardRecord,
}

impl ShardResult {
    /// The process exit code: 0 complete, 2 stopped early, 3 missed start, 4 clock refused.
    pub fn exit_code(&self) -> i32 {
        match self.record.outcome {
            ShardOutcome::Complete => 0,
            ShardOutcome::Running | ShardOutcome::StoppedEarly => 2,
            ShardOutcome::MissedStart => super::start::MISSED_START_EXIT_CODE,
            ShardOutcome::ClockRefused => super::start::CLOCK_REFUSED_EXIT_CODE,
        }
    }
}

/// This machine's host name.
pub fn host_name() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The plan a shard drives: the checked plan with each sub-experiment's failure budgets
/// (`MaxFailures`, `MaxThrottled`) split over the shards, `ceil(budget / N)` each, so N shards
/// together tolerate about what one client would.
fn budgets_per_shard(plan: &stellar_config::Plan, shard: Shard) -> stellar_config::Plan {
    let n = u64::from(shard.count.max(1));
    let mut plan = plan.clone();
    for sub in &mut plan.sub_experiments {
        sub.max_failures = sub.max_failures.div_ceil(n);
        sub.max_throttled = sub.max_throttled.map(|m| m.div_ceil(n));
    }
    plan
}

/// Runs one shard of the prepared run in `args.run_dir`.
pub async fn run_shard(
    args: &ShardArgs,
    run_stop: StopSignal,
    on_out_dir: impl FnOnce(&Path),
) -> anyhow::Result<ShardResult> {
    let prepared = PreparedRun::read(&args.run_dir)?;
    let shard = args.shard;
    let plan = &budgets_per_shard(&prepared.plan, shard);
    let out_dir = args
        .output
        .clone()
        .unwrap_or_else(|| args.run_dir.join("shards").join(shard.index.to_string()));
    if out_dir.join(SHARD_JSON).exists() {
        anyhow::bail!(
            "{} already holds a shard's results ({SHARD_JSON}); a shard is never run twice \
             into one directory (a late rerun would send off the schedule): choose another -o",
            out_dir.display()
        );
    }
    fs_err::create_dir_all(&out_dir)?;
    on_out_dir(&out_dir);
    let anchor = Anchor::at(args.start_at);
    let (clock_at_start, clock_error) = match clock::read() {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut record = ShardRecord {
        schema: SHARD_SCHEMA.into(),
        shard,
        plan_sha256: prepared.hash().to_owned(),
        run_id: prepared.prepared.run_id.clone(),
        host: host_name(),
        client: std::env::var("STELLAR_CLIENT")
            .ok()
            .filter(|c| !c.is_empty()),
        pid: std::process::id(),
        start_at: rfc3339(anchor.wall),
        start_at_unix_ms: anchor.unix_ms(),
        grace_ms: args.grace.as_secs_f64() * 1e3,
        ready_before_start_ms: None,
        clock_at_start,
        clock_at_end: None,
        clock_error: clock_error.clone(),
        max_clock_error_ms: args.max_clock_error.as_secs_f64() * 1e3,
        forced: false,
        clock_refusal: None,
        outcome: ShardOutcome::Running,
        planned_requests: super::planned_requests(plan, shard),
        sent_requests: vec![0; plan.sub_experiments.len()],
    };
    let refusal = match (&clock_at_start, &clock_error) {
        (Some(c), _) => c.check(args.max_clock_error).err(),
        (None, Some(e)) => Some(format!("{e}; pass --force to start anyway")),
        (None, None) => None,
    };
    if let Some(why) = refusal {
        record.clock_refusal = Some(why.clone());
        if !args.force {
            tracing::error!(shard = %shard, "{why}");
            record.outcome = ShardOutcome::ClockRefused;
            record.write(&out_dir)?;
            return Ok(ShardResult { out_dir, record });
        }
        tracing::warn!(shard = %shard, "started with --force: {why}");
        record.forced = true;
    }
    let endpoints = prepared
        .prepared
        .endpoints
        .iter()
        .map(|urls| {
            urls.iter()
                .map(|url| {
                    let target = Target::parse(url).map_err(|e| {
                        anyhow::anyhow!(
                            "{}: prepared.endpoints: {e}",
                            args.run_dir.join(super::prepared::PLAN_JSON).display()
                        )
                    })?;
                    Ok(DeployedEndpoint {
                        function: None,
                        url: url.clone(),
                        target,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The barrier: ready now, or too late to send anything.
    if let Err(late) = anchor.check_ready(args.grace) {
        tracing::error!(shard = %shard, late_ms = late.as_secs_f64() * 1e3,
            "not ready by the start time plus the grace: nothing was sent");
        record.ready_before_start_ms = Some(-late.as_secs_f64() * 1e3);
        record.outcome = ShardOutcome::MissedStart;
        record.write(&out_dir)?;
        return Ok(ShardResult { out_dir, record });
    }
    let now = std::time::Instant::now();
    record.ready_before_start_ms = Some(if anchor.instant >= now {
        (anchor.instant - now).as_secs_f64() * 1e3
    } else {
        -(now - anchor.instant).as_secs_f64() * 1e3
    });
    record.write(&out_dir)?;
    tracing::info!(shard = %shard, start_at = %record.start_at, plan_sha256 = %record.plan_sha256,
        "shard ready; sending from the start time");
    let sending = Sending {
        endpoints: &endpoints,
        measurement_function: prepared.prepared.measurement_function,
        extra_query: prepared.prepared.extra_query.clone(),
        provisioned: None,
        shard,
        anchor: Some((anchor, &prepared.prepared.sub_start_ms)),
        analyse: false,
    };
    let segment = Segment {
        number: 0,
        progress: None,
    };
    let (_, reports) = crate::run::drive_all(
        plan,
        &sending,
        &out_dir,
        run_stop,
        args.show_progress,
        segment,
    )
    .await?;
    for (slot, report) in record.sent_requests.iter_mut().zip(&reports) {
        *slot = report.sent;
    }
    record.clock_at_end = clock::read().ok();
    record.outcome = if reports.len() == plan.sub_experiments.len()
        && reports.iter().all(|r| r.stopped_early.is_none())
    {
        ShardOutcome::Complete
    } else {
        ShardOutcome::StoppedEarly
    };
    record.write(&out_dir)?;
    Ok(ShardResult { out_dir, record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stellar_config::PlanOptions;

    #[test]
    fn failure_budgets_are_split_over_the_shards() {
        let text = r#"{"Provider": "http://127.0.0.1:9/", "Stellar": {"MaxFailures": 10,
            "MaxThrottled": 3}, "SubExperiments": [{"Title": "a", "Bursts": 3,
            "BurstSizes": [4], "IATSeconds": 1, "IATType": "deterministic",
            "DesiredServiceTimes": ["1ms"]}]}"#;
        let plan =
            stellar_config::Plan::from_json_str(text, Path::new("x.json"), &PlanOptions::default())
                .unwrap();
        let whole = budgets_per_shard(&plan, Shard::WHOLE);
        assert_eq!(whole, plan);
        let quarter = budgets_per_shard(&plan, Shard { index: 1, count: 4 });
        assert_eq!(quarter.sub_experiments[0].max_failures, 3);
        assert_eq!(quarter.sub_experiments[0].max_throttled, Some(1));
    }
}
