//! `stellar run`: plan → provision → drive → results → summary, with nothing lost on the way.
//!
//! Rows are streamed to `latencies.csv` as requests finish (flushed per row); labels,
//! statistics and plots are written per sub-experiment when it ends ([`crate::analysis`]) and
//! `report.html` when the run ends; the plan is saved before anything is deployed; provisioned
//! functions are removed at the end, also after Ctrl-C or a failure. An interrupted run is
//! finished by [`resume`] (see [`crate::resume`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use stellar_config::{Plan, PlanOptions, SubExperimentPlan};
use stellar_results::{LatencyRow, LatencyWriter, SubExperimentSummary};

use crate::analysis::{RunAnalysis, SubAnalysis};
use tokio::sync::mpsc;

use crate::drive::{self, DriveOptions, DriveReport, Remaining, RunClock, StopSignal, TimedClient};
use crate::progress::Progress;
use crate::provision::{AdapterOptions, DeployedEndpoint, Provisioned};
use crate::resume::{ResumedSub, RunManifest};

/// Command-line choices for one run.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    pub experiment: PathBuf,
    pub seed: Option<u64>,
    pub output_dir: Option<PathBuf>,
    pub only_sub_experiment: Option<usize>,
    /// Which adapter, what it is granted, and its sandbox limits.
    pub adapter: AdapterOptions,
    pub show_progress: bool,
}

/// Command-line choices for `stellar run --resume RUN_DIR`.
#[derive(Debug, Clone, Default)]
pub struct ResumeArgs {
    pub run_dir: PathBuf,
    /// Resume although the binary or the experiment file changed.
    pub force: bool,
    pub adapter: AdapterOptions,
    pub show_progress: bool,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub summaries: Vec<SubExperimentSummary>,
    pub reports: Vec<DriveReport>,
    pub analysis: RunAnalysis,
    pub wall_time: Duration,
}

impl RunOutcome {
    /// True when every planned request was sent (failed requests are data, not a failed run).
    pub fn completed(&self) -> bool {
        self.reports.iter().all(|r| r.stopped_early.is_none())
    }
}

/// Loads and validates the plan only.
pub fn plan(args: &RunArgs) -> anyhow::Result<Plan> {
    let now_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(Plan::from_file(
        &args.experiment,
        &PlanOptions {
            seed_override: args.seed,
            only_sub_experiment: args.only_sub_experiment,
            output_dir_override: args.output_dir.clone(),
            now_unix_ms,
        },
    )?)
}

/// Runs an experiment end to end. `run_stop` is triggered by Ctrl-C or SIGTERM.
pub async fn run(
    args: &RunArgs,
    run_stop: StopSignal,
    on_run_dir: impl FnOnce(&Path),
) -> anyhow::Result<RunOutcome> {
    let started = Instant::now();
    let plan = plan(args)?;
    let run_id = run_id();
    let run_dir = create_run_dir(&plan, &args.experiment, &run_id)?;
    on_run_dir(&run_dir);
    write_plan_json(&run_dir.join("plan.json"), &plan)?;
    RunManifest::start(&run_id, &args.experiment)?.write(&run_dir)?;
    for ignored in &plan.ignored {
        tracing::info!(field = %ignored.json_path, value = %ignored.value, reason = %ignored.reason,
            "experiment field accepted but ignored");
    }
    for warning in plan.warnings() {
        tracing::warn!("{warning}");
    }
    tracing::info!(run_dir = %run_dir.display(), seed = plan.seed, provider = ?plan.provider, "run starting");
    let segment = Segment {
        number: 0,
        progress: None,
    };
    execute(
        &plan,
        &run_id,
        run_dir,
        &args.adapter,
        run_stop,
        args.show_progress,
        segment,
        started,
    )
    .await
}

/// Finishes the interrupted run in `args.run_dir`: sends the requests that have no row yet,
/// on the plan's schedule restarted now, and rebuilds the statistics and report over all
/// rows. `Ok(None)` when there is nothing left to send.
pub async fn resume(
    args: &ResumeArgs,
    run_stop: StopSignal,
    on_run_dir: impl FnOnce(&Path),
) -> anyhow::Result<Option<RunOutcome>> {
    let started = Instant::now();
    let run_dir = args.run_dir.clone();
    let plan = crate::analysis::read_plan(&run_dir)?;
    let mut manifest = RunManifest::read(&run_dir)?;
    let changes = manifest.changes_since_start()?;
    if !changes.is_empty() && !args.force {
        anyhow::bail!(
            "{} was not resumed: {}; rows sent now would not measure the same thing as the \
             rows already there (pass --force to resume anyway; run.json will say so)",
            run_dir.display(),
            changes.join("; ")
        );
    }
    let progress = crate::resume::read_progress(&plan, &run_dir)?;
    let left = crate::resume::requests_left(&plan, &progress);
    if left == 0 {
        return Ok(None);
    }
    on_run_dir(&run_dir);
    for (sub, p) in plan.sub_experiments.iter().zip(&progress) {
        if p.dropped_torn_row {
            tracing::warn!(sub_experiment = %sub.slug, "dropped a row torn by the crash; its request is sent again");
        }
    }
    // Whatever the interrupted segment left deployed goes first (the journal lists it), and
    // its scratch directory with it.
    let cleaned = crate::cleanup::cleanup_run(&run_dir, &args.adapter)
        .await
        .context("removing what the interrupted run left deployed")?;
    if !cleaned.failed.is_empty() {
        anyhow::bail!(
            "{} was not resumed: {} function(s) of the interrupted run could not be removed \
             (see resources.jsonl); run `stellar cleanup {}` first",
            run_dir.display(),
            cleaned.failed.len(),
            run_dir.display()
        );
    }
    let number = manifest.begin_segment(if args.force { changes } else { Vec::new() });
    manifest.write(&run_dir)?;
    tracing::info!(run_dir = %run_dir.display(), segment = number, requests_left = left, "resuming");
    let segment = Segment {
        number,
        progress: Some(progress),
    };
    let run_id = manifest.run_id.clone();
    execute(
        &plan,
        &run_id,
        run_dir,
        &args.adapter,
        run_stop,
        args.show_progress,
        segment,
        started,
    )
    .await
    .map(Some)
}

/// Which stretch of sending this process does: segment 0 starts a run, later ones resume it
/// with what each sub-experiment already has.
pub(crate) struct Segment {
    pub(crate) number: u32,
    pub(crate) progress: Option<Vec<ResumedSub>>,
}

/// Provision, drive every sub-experiment, tear down, then analyse and report.
#[allow(clippy::too_many_arguments)]
async fn execute(
    plan: &Plan,
    run_id: &str,
    run_dir: PathBuf,
    adapter: &AdapterOptions,
    run_stop: StopSignal,
    show_progress: bool,
    segment: Segment,
    started: Instant,
) -> anyhow::Result<RunOutcome> {
    let provisioned = Provisioned::new(plan, run_id, &run_dir, adapter).await?;
    let sending = Sending {
        endpoints: &provisioned.endpoints,
        measurement_function: provisioned.measurement_function,
        extra_query: provisioned.fault_query(plan).map(str::to_owned),
        provisioned: Some(&provisioned),
        shard: crate::shard::Shard::WHOLE,
        anchor: None,
        analyse: true,
    };
    let result = drive_all(plan, &sending, &run_dir, run_stop, show_progress, segment).await;
    provisioned.teardown().await;
    let (analyses, reports) = result?;
    let analyses: Vec<SubAnalysis> = analyses.into_iter().flatten().collect();
    let summaries = analyses.iter().map(|a| a.summary.clone()).collect();
    let analysis = crate::analysis::finish_run(plan, &run_dir, analyses)
        .context("writing the run's report")?;
    Ok(RunOutcome {
        run_dir,
        summaries,
        reports,
        analysis,
        wall_time: started.elapsed(),
    })
}

/// Where a run's requests go and which of them this process sends: everything from now for
/// an ordinary run, one shard's part on the schedule anchored at `T0` for a prepared run
/// ([`crate::shard`]). Both go through [`drive_all`] and the same driver.
pub(crate) struct Sending<'a> {
    /// Per sub-experiment (plan order), per parallelism index.
    pub(crate) endpoints: &'a [Vec<DeployedEndpoint>],
    pub(crate) measurement_function: bool,
    /// Extra query parameters for every timed request (test fault knobs).
    pub(crate) extra_query: Option<String>,
    /// What this process deployed (for the local runtime's ground truth), if it deployed.
    pub(crate) provisioned: Option<&'a Provisioned>,
    pub(crate) shard: crate::shard::Shard,
    /// `T0` and each sub-experiment's planned start after it (ms); `None`: now, and each
    /// sequential sub-experiment when the previous one has finished.
    pub(crate) anchor: Option<(crate::shard::start::Anchor, &'a [f64])>,
    /// Label and analyse each sub-experiment when it ends; off for one shard of several
    /// (labels need whole bursts: `stellar merge` analyses).
    pub(crate) analyse: bool,
}

/// Drives every sub-experiment (one after another or concurrently, as planned). Returns each
/// one's analysis (when [`Sending::analyse`]) and drive report.
pub(crate) async fn drive_all(
    plan: &Plan,
    sending: &Sending<'_>,
    run_dir: &Path,
    run_stop: StopSignal,
    show_progress: bool,
    segment: Segment,
) -> anyhow::Result<(Vec<Option<SubAnalysis>>, Vec<DriveReport>)> {
    let client = Arc::new(
        TimedClient::new(
            plan.settings.connection,
            Duration::from_millis(plan.settings.request_timeout_ms),
        )
        .with_grpc_timeout(Duration::from_millis(plan.settings.grpc_request_timeout_ms)),
    );
    let clock = match &sending.anchor {
        Some((anchor, _)) => RunClock::anchored(anchor.instant, anchor.wall),
        None => RunClock::start_now(),
    };
    let bases = crate::shard::burst_ordinal_bases(plan);
    let progress = Progress::new(show_progress);
    let mut resumed: Vec<Option<ResumedSub>> = match segment.progress {
        Some(list) => list.into_iter().map(Some).collect(),
        None => plan.sub_experiments.iter().map(|_| None).collect(),
    };
    let jobs = plan
        .sub_experiments
        .iter()
        .zip(sending.endpoints)
        .zip(resumed.iter_mut())
        .enumerate()
        .map(|(position, ((sub, endpoints), resumed))| SubRun {
            plan,
            sub,
            endpoints,
            provisioned: sending.provisioned,
            analyse: sending.analyse,
            dir: run_dir.join(&sub.slug),
            client: Arc::clone(&client),
            clock,
            options: DriveOptions {
                send_measurement_query: sending.measurement_function,
                expect_measurement_reply: sending.measurement_function,
                payload_length_bytes: sub.payload_length_bytes,
                extra_query: sending
                    .extra_query
                    .clone()
                    .filter(|_| sending.measurement_function),
                segment: segment.number,
                slice: crate::shard::Slice {
                    shard: sending.shard,
                    burst_base: bases[position],
                    anchor: sending.anchor.map(|(anchor, starts)| {
                        anchor.instant
                            + Duration::from_secs_f64(
                                starts.get(position).copied().unwrap_or(0.0) / 1e3,
                            )
                    }),
                },
                reply_tap: None,
            },
            run_stop: run_stop.clone(),
            progress: &progress,
            resumed: resumed.take(),
        });
    let mut results = Vec::new();
    if plan.sequential {
        for job in jobs {
            if run_stop.is_stopped() {
                break;
            }
            results.push(job.run().await?);
        }
    } else {
        let futures: Vec<_> = jobs.map(|j| j.run()).collect();
        for r in futures_join_all(futures).await {
            results.push(r?);
        }
    }
    progress.finish();
    Ok(results.into_iter().unzip())
}

/// Joins futures concurrently on the current task, keeping their order.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

struct SubRun<'a> {
    plan: &'a Plan,
    sub: &'a SubExperimentPlan,
    endpoints: &'a [DeployedEndpoint],
    provisioned: Option<&'a Provisioned>,
    analyse: bool,
    dir: PathBuf,
    client: Arc<TimedClient>,
    clock: RunClock,
    options: DriveOptions,
    run_stop: StopSignal,
    progress: &'a Progress,
    /// For a resumed run: the file reopened, the rows it has, what is left.
    resumed: Option<ResumedSub>,
}

impl SubRun<'_> {
    async fn run(mut self) -> anyhow::Result<(Option<SubAnalysis>, DriveReport)> {
        fs_err::create_dir_all(&self.dir)?;
        // Rows are not kept in memory: the analysis reads them back from the file.
        let (mut writer, remaining): (_, Option<Remaining>) = match self.resumed.take() {
            Some(r) => (r.writer, Some(r.remaining)),
            None => (LatencyWriter::create(self.dir.join("latencies.csv"))?, None),
        };
        let bar = self.progress.add(self.sub);
        let (tx, mut rx) = mpsc::unbounded_channel::<LatencyRow>();
        let (reply_tap, chain_sink) = self.chain_sink();
        let options = DriveOptions {
            reply_tap,
            ..self.options.clone()
        };
        let targets: Vec<_> = self.endpoints.iter().map(|e| e.target.clone()).collect();
        let drive = async {
            let report = drive::drive_sub_experiment(
                (self.sub, remaining.as_ref()),
                &targets,
                Arc::clone(&self.client),
                self.clock,
                &options,
                tx,
                self.run_stop.clone(),
            )
            .await;
            // The last reply tap goes with the options, which ends the chain sink.
            drop(options);
            report
        };
        // The single consumer: append every row as it arrives, so a crash loses at most the
        // requests in flight. It runs on a thread of its own, off the threads that send.
        let run_stop = self.run_stop.clone();
        let slug = self.sub.slug.clone();
        let sink = tokio::task::spawn_blocking(move || {
            while let Some(row) = rx.blocking_recv() {
                if let Err(e) = writer.write(&row) {
                    // The results cannot be kept (disk full, file too large, unwritable): stop
                    // sending everywhere; in-flight requests finish and the functions are
                    // removed. The file keeps its complete rows.
                    run_stop.stop();
                    return Err(anyhow::Error::from(e).context(format!(
                        "the results could not be written, so the run stopped sending after \
                         {} rows of {slug}",
                        writer.rows_written(),
                    )));
                }
                bar.record(&row);
            }
            writer.finish()?;
            anyhow::Ok(bar)
        });
        let (report, written, transfers) = tokio::join!(drive, sink, chain_sink);
        let bar = written.context("the row writer thread failed")??;
        transfers.with_context(|| format!("writing data-transfers.csv of {}", self.sub.slug))?;
        bar.finish(&report);

        self.write_instance_records()?;
        if let Some(why) = &report.stopped_early {
            tracing::warn!(sub_experiment = %self.sub.slug, sent = report.sent, planned = report.planned, "{why}");
        }
        if !self.analyse {
            return Ok((None, report));
        }
        let analysis = crate::analysis::analyse_sub_experiment(self.plan, self.sub, &self.dir)
            .with_context(|| format!("analysing {}", self.sub.slug))?;
        Ok((Some(analysis), report))
    }

    /// For a data-transfer chain: taps the driver's replies and returns the future that writes
    /// `data-transfers.csv` (a no-op otherwise). Call before the drive starts.
    #[allow(clippy::type_complexity)]
    fn chain_sink(
        &self,
    ) -> (
        Option<mpsc::UnboundedSender<drive::TappedReply>>,
        impl std::future::Future<Output = anyhow::Result<u64>> + use<>,
    ) {
        let chain =
            self.sub.data_transfer_chain_length > 1 && self.options.expect_measurement_reply;
        let (tap, replies) = mpsc::unbounded_channel();
        let path = self.dir.join(stellar_results::transfers::TRANSFERS_CSV);
        let append = self.options.segment > 0;
        let sink = async move {
            if chain {
                crate::chain::transfers::sink(&path, append, replies).await
            } else {
                Ok(0)
            }
        };
        (chain.then_some(tap), sink)
    }

    /// For the local provider: every instance started, from the runtime's own records
    /// (appended to those of earlier segments).
    fn write_instance_records(&self) -> anyhow::Result<()> {
        let mut records = Vec::new();
        for (endpoint, e) in self.endpoints.iter().enumerate() {
            let Some(function) = &e.function else {
                continue;
            };
            let Some(list) = self.provisioned.and_then(|p| p.local_instances(function)) else {
                continue;
            };
            records.extend(
                list.into_iter()
                    .map(|r| crate::instances::InstanceRow::new(endpoint, function, r)),
            );
        }
        if records.is_empty() {
            return Ok(());
        }
        let segment = self.options.segment;
        crate::instances::write(&self.dir.join("instances.csv"), &records, segment > 0)
    }
}

/// Writes `plan` as pretty JSON, streamed (a plan of a million bursts is a large text).
fn write_plan_json(path: &Path, plan: &Plan) -> anyhow::Result<()> {
    use std::io::Write;
    let file = fs_err::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, plan)
        .with_context(|| format!("writing {}", path.display()))?;
    out.write_all(b"\n")
        .and_then(|()| out.flush())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub(crate) fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:06x}",
        (nanos ^ (u128::from(std::process::id()) << 20)) as u32 & 0xff_ffff
    )
}

fn create_run_dir(plan: &Plan, experiment: &Path, run_id: &str) -> anyhow::Result<PathBuf> {
    let stem = experiment
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "experiment".into());
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
        .trim_end_matches('Z')
        .to_owned();
    let dir = plan
        .settings
        .output_dir
        .join(format!("{stamp}-{stem}-{run_id}"));
    fs_err::create_dir_all(&dir)?;
    Ok(dir)
}
