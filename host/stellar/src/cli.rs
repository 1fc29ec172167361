//! The command line: argument types and the dispatch to each command. Everything the user reads
//! on stdout is written here; libraries only log.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::drive::StopSignal;
use crate::logging::RunLog;
use crate::plugin::declaration::describe_in_words;
use crate::plugin::{CredentialKind, PluginRuntime, PluginSource, SandboxLimits, installed};
use crate::provision::AdapterOptions;
use crate::run::{ResumeArgs, RunArgs, RunOutcome};

#[derive(Debug, Parser)]
#[command(
    name = "stellar",
    version,
    about = "Measure the tail latency of serverless clouds"
)]
pub struct Cli {
    /// Log more (info level) to stderr; RUST_LOG overrides.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an experiment (STeLLAR's JSON schema) and write its results.
    Run(RunCmd),
    /// Remove the functions earlier runs left behind (read from each run's resources.jsonl).
    #[command(visible_alias = "remove")]
    Cleanup(CleanupCmd),
    /// Rebuild a run's labels, statistics, plots and report.html from its files.
    Report {
        /// The run directory (holds plan.json and one folder per sub-experiment).
        run_dir: PathBuf,
        /// Print the analysis as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Compare runs: differences of medians and tails with CIs and a significance test.
    Compare(CompareCmd),
    /// Build the measurement function for a provider (for aws: a Lambda `bootstrap` zip).
    Build(BuildCmd),
    /// Inspect provider plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCmd,
    },
    /// The embedded local serverless provider.
    Local {
        #[command(subcommand)]
        command: LocalCmd,
    },
    /// Plan and deploy once for a sharded run: writes RUN_DIR/plan.json (plan, endpoints,
    /// content hash) for `stellar run RUN_DIR --shard I/N --start-at T0` on each client.
    Prepare(PrepareCmd),
    /// Merge the shards of a prepared run (RUN_DIR/shards/*) and analyse all rows together.
    Merge(MergeCmd),
    /// Engines that run shards: print a Kubernetes Indexed Job for a prepared run.
    K8s {
        #[command(subcommand)]
        command: K8sCmd,
    },
}

#[derive(Debug, clap::Args)]
pub struct PrepareCmd {
    /// The experiment file.
    pub experiment: PathBuf,
    /// The run directory to create (must not exist or be empty).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Seed of every random choice (overrides the file's Stellar.Seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Prepare only the sub-experiment with this index (STeLLAR's -r).
    #[arg(short = 'r', long = "only")]
    pub only: Option<usize>,
    /// Sequential plans: pause between a sub-experiment's last burst and the next one's first
    /// on the shards' common schedule.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub sequential_gap: std::time::Duration,
    /// For adapters that deploy into the local runtime: the control URL of a running
    /// `stellar local serve` (its token in STELLAR_LOCAL_TOKEN).
    #[arg(long)]
    pub local_control_url: Option<String>,
    #[command(flatten)]
    pub adapter: AdapterArgs,
}

#[derive(Debug, clap::Args)]
pub struct MergeCmd {
    /// The prepared run directory (plan.json, shards/<I>/).
    pub run_dir: PathBuf,
    /// Merge although shards are missing or did not finish; the report says the run is
    /// partial.
    #[arg(long)]
    pub allow_partial: bool,
    /// Print the merge record and analysis as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum K8sCmd {
    /// Print a Kubernetes Indexed Job (one pod per shard) and the commands to collect and
    /// merge.
    Job(crate::shard::k8s::JobArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunCmd {
    /// The experiment file.
    #[arg(required_unless_present = "resume")]
    pub experiment: Option<PathBuf>,
    /// Finish an interrupted run: send the requests of RUN_DIR's plan that have no row yet,
    /// on its schedule restarted now, then rebuild its statistics and report.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["experiment", "seed", "output", "only", "dry_run"])]
    pub resume: Option<PathBuf>,
    /// With --resume: resume although the stellar binary or the experiment file changed
    /// since the run started (run.json records it). With a prepared RUN_DIR: start although
    /// the clock is unsynchronised or above --max-clock-error (shard.json records it).
    #[arg(long)]
    pub force: bool,
    /// With a prepared RUN_DIR: send only this shard's part of every burst (I/N; default
    /// 0/1, everything).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
    /// With a prepared RUN_DIR: the wall-clock start every shard shares (RFC 3339 UTC,
    /// `now` or `now+5s`; default now).
    #[arg(long, value_name = "T0")]
    pub start_at: Option<String>,
    /// With a prepared RUN_DIR: a shard not ready by T0 plus this sends nothing and exits 3.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub start_grace: std::time::Duration,
    /// With a prepared RUN_DIR: refuse to start (exit 4) when the kernel's maximum clock
    /// error is above this, or the clock is unsynchronised, unless --force.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5ms")]
    pub max_clock_error: std::time::Duration,
    /// Seed of every random choice (overrides the file's Stellar.Seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Root directory for results (overrides Stellar.OutputDir); with a prepared RUN_DIR,
    /// this shard's own directory (default RUN_DIR/shards/I).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Run only the sub-experiment with this index (STeLLAR's -r).
    #[arg(short = 'r', long = "only")]
    pub only: Option<usize>,
    #[command(flatten)]
    pub adapter: AdapterArgs,
    /// Print the plan (and check the adapter, its options and grants) and exit without
    /// deploying or sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the run's analysis as JSON on stdout instead of the summary table (implies
    /// --quiet).
    #[arg(long)]
    pub json: bool,
}

/// Which adapter a command uses and what it may do.
#[derive(Debug, Clone, clap::Args)]
pub struct AdapterArgs {
    /// A third-party provider adapter (wasm component) to use; its declared name must be the
    /// experiment's Provider.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Hand a credential to a third-party adapter: aws, azure, gcp, alibaba, kubernetes or
    /// env:VARIABLE (repeatable). First-party adapters get what they declare without it.
    #[arg(long = "grant", value_name = "KIND")]
    pub grants: Vec<String>,
    /// Wall-clock deadline of one adapter call that deploys, updates, lists or removes
    /// (e.g. 900s, 20m).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "900s")]
    pub plugin_timeout: std::time::Duration,
    /// Guest CPU time one adapter call may use before it is stopped (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub plugin_cpu_budget: std::time::Duration,
}

impl AdapterArgs {
    fn options(&self) -> anyhow::Result<AdapterOptions> {
        let mut grants: Vec<CredentialKind> = Vec::new();
        for grant in &self.grants {
            grants.extend(crate::credentials::parse_grants(grant)?);
        }
        Ok(AdapterOptions {
            plugin_file: self.plugin.clone(),
            grants,
            limits: SandboxLimits {
                call_timeout: self.plugin_timeout,
                cpu_budget: self.plugin_cpu_budget,
                ..SandboxLimits::default()
            },
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct CompareCmd {
    /// Two or more run directories; each one after the first is compared with the first.
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<PathBuf>,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Smallest change of the median that counts as real, in percent of the first run's
    /// median: the whole confidence interval of the difference must lie beyond it. 0 gives
    /// the bare statistical verdict.
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0, value_parser = noise_percent)]
    pub noise_threshold: f64,
    /// Also write the comparison as JSON to this file.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CleanupCmd {
    /// Run directories (each holds plan.json and resources.jsonl).
    #[arg(required_unless_present = "provider")]
    pub run_dirs: Vec<PathBuf>,
    /// Without run directories: list this provider's functions through its adapter and remove
    /// those stellar created (named `st-<run id>-NN-PP`) at least --older-than ago.
    #[arg(long, requires = "older_than", conflicts_with = "run_dirs")]
    pub provider: Option<String>,
    /// Only functions created at least this long ago (e.g. 1h, 30m); needs --provider.
    #[arg(long, value_parser = humantime::parse_duration, requires = "provider")]
    pub older_than: Option<std::time::Duration>,
    /// With --provider: list what would be removed, remove nothing.
    #[arg(long, requires = "provider")]
    pub dry_run: bool,
    /// With --provider: an adapter setting as KEY=VALUE (what Stellar.ProviderSettings would
    /// hold, e.g. region=eu-west-1); repeatable.
    #[arg(long = "setting", value_name = "KEY=VALUE", requires = "provider")]
    pub settings: Vec<String>,
    /// With --provider local: the control URL of a running `stellar local serve` (its token
    /// is read from STELLAR_LOCAL_TOKEN). Functions of an embedded runtime end with their run.
    #[arg(long, requires = "provider")]
    pub local_control_url: Option<String>,
    /// The adapter the runs used (`--plugin` when it was neither built in nor installed) and
    /// the same grants.
    #[command(flatten)]
    pub adapter: AdapterArgs,
}

#[derive(Debug, clap::Args)]
pub struct BuildCmd {
    /// The provider to build for: what is built follows the artifact kind its adapter
    /// declares (aws: a Lambda zip; azure: a custom-handler zip; local: the measurement function
    /// executable).
    #[arg(long, default_value = "aws")]
    pub provider: String,
    /// A third-party adapter to build for instead of looking the provider up.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Instruction set.
    #[arg(long, value_enum, default_value_t = ArchArg::X86_64)]
    pub arch: ArchArg,
    /// Pad the zip to this many MiB with incompressible filler (STeLLAR's FunctionImageSizeMB).
    #[arg(long)]
    pub image_size_mb: Option<f64>,
    /// Seed of the filler bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the artifact (default: bootstrap.zip for a Lambda zip,
    /// custom-handler.zip for an Azure custom-handler zip, the directory oci-image for an OCI
    /// image layout (a path ending in .tar writes the oci-archive, its layout beside it),
    /// stellar-measure-http for an executable).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ArchArg {
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "arm64")]
    Arm64,
}

#[derive(Debug, Subcommand)]
pub enum PluginsCmd {
    /// List the built-in and installed adapters and what they declare.
    List,
    /// Show what an adapter declares: hosts, credentials, artifact, options. Takes a .wasm
    /// file or the name of a built-in or installed adapter.
    Inspect { adapter: String },
    /// Install an adapter file under its declared provider name, so `"Provider": "<name>"`
    /// finds it without --plugin.
    Install { file: PathBuf },
    /// Remove an installed adapter.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum LocalCmd {
    /// Serve the local provider until Ctrl-C.
    Serve {
        /// Control API port on 127.0.0.1 (0 = any).
        #[arg(long, default_value_t = 0)]
        control_port: u16,
        /// Gateway port on 127.0.0.1 (0 = any).
        #[arg(long, default_value_t = 0)]
        gateway_port: u16,
        /// Working directory for uploaded artifacts.
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
}

/// Runs a parsed command line; returns the process exit code.
pub async fn dispatch(cli: Cli, run_log: RunLog) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(cmd) => run(cmd, run_log).await,
        Command::Cleanup(cmd) => cleanup(cmd).await,
        Command::Report { run_dir, json } => report(&run_dir, json),
        Command::Compare(cmd) => compare(cmd),
        Command::Build(cmd) => build(cmd).await,
        Command::Plugins { command } => plugins(command).await,
        Command::Local { command } => local(command).await,
        Command::Prepare(cmd) => prepare(cmd).await,
        Command::Merge(cmd) => merge(cmd),
        Command::K8s {
            command: K8sCmd::Job(args),
        } => {
            out(&crate::shard::k8s::job(&args)?)?;
            Ok(0)
        }
    }
}

async fn prepare(cmd: PrepareCmd) -> anyhow::Result<i32> {
    let local_runtime = match cmd.local_control_url {
        Some(url) => Some((
            url,
            std::env::var("STELLAR_LOCAL_TOKEN").context(
                "--local-control-url needs the runtime's token in STELLAR_LOCAL_TOKEN (printed \
                 by `stellar local serve`)",
            )?,
        )),
        None => None,
    };
    let args = crate::shard::prepare::PrepareArgs {
        run: RunArgs {
            experiment: cmd.experiment,
            seed: cmd.seed,
            output_dir: None,
            only_sub_experiment: cmd.only,
            adapter: cmd.adapter.options()?,
            show_progress: false,
        },
        run_dir: cmd.output,
        sequential_gap: cmd.sequential_gap,
        local_runtime,
    };
    let done = crate::shard::prepare::prepare(&args).await?;
    out(&format!(
        "prepared {} (run {}): {} requests, {} endpoints deployed\n  plan_sha256 {}\n\
         next: stellar run {} --shard I/N --start-at T0 on each client, then stellar merge {}, \
         then stellar cleanup {}\n",
        done.run_dir.display(),
        done.run_id,
        done.requests,
        done.endpoints,
        done.plan_sha256,
        done.run_dir.display(),
        done.run_dir.display(),
        done.run_dir.display()
    ))?;
    Ok(0)
}

fn merge(cmd: MergeCmd) -> anyhow::Result<i32> {
    let started = std::time::Instant::now();
    let merged = crate::shard::merge::merge(&cmd.run_dir, cmd.allow_partial)?;
    let elapsed = started.elapsed();
    if cmd.json {
        out(&(serde_json::to_string_pretty(&serde_json::json!({
            "merge": merged.record,
            "analysis": merged.analysis,
        }))? + "\n"))?;
        return Ok(0);
    }
    let summaries: Vec<_> = merged
        .analysis
        .sub_experiments
        .iter()
        .map(|s| s.summary.clone())
        .collect();
    let r = &merged.record;
    let mut text = stellar_results::render_table(&summaries);
    for reason in &r.partial_reasons {
        text.push_str(&format!("PARTIAL: {reason}\n"));
    }
    let fmt = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
    text.push_str(&format!(
        "merged {} rows of {} planned from {} shard(s) in {:.3} s; cross-shard release spread \
         p50 {} / p99 {} / max {} ms over {} bursts (clock error bound ± {} ms)\nreport: {}\n",
        r.rows,
        r.planned_requests,
        r.shard_count,
        elapsed.as_secs_f64(),
        fmt(r.spread_p50_ms),
        fmt(r.spread_p99_ms),
        fmt(r.spread_max_ms),
        r.bursts.len(),
        fmt(r.clock_error_bound_ms),
        cmd.run_dir.join(crate::analysis::REPORT_HTML).display()
    ));
    out(&text)?;
    Ok(0)
}

async fn run_shard(cmd: RunCmd, run_dir: PathBuf, run_log: RunLog) -> anyhow::Result<i32> {
    let start_at = match &cmd.start_at {
        Some(text) => crate::shard::start::parse_start_at(text).map_err(anyhow::Error::msg)?,
        None => std::time::SystemTime::now(),
    };
    let args = crate::shard::send::ShardArgs {
        run_dir,
        shard: cmd.shard.unwrap_or(crate::shard::Shard::WHOLE),
        start_at,
        grace: cmd.start_grace,
        max_clock_error: cmd.max_clock_error,
        force: cmd.force,
        output: cmd.output,
        show_progress: !cmd.quiet && !cmd.json,
    };
    let attach_log = |dir: &Path| {
        if let Err(e) = run_log.attach(&dir.join("run.log")) {
            tracing::warn!(error = %e, "could not create run.log");
        }
    };
    let result = crate::shard::send::run_shard(&args, stop_on_signals(), attach_log).await?;
    let r = &result.record;
    if cmd.json {
        out(&(serde_json::to_string_pretty(r)? + "\n"))?;
    } else {
        let mut text = format!(
            "shard {} of {}: {:?}; {} of {} requests sent; T0 {}\n  {}\n",
            r.shard,
            result.out_dir.display(),
            r.outcome,
            r.sent_requests.iter().sum::<u64>(),
            r.planned_requests.iter().sum::<u64>(),
            r.start_at,
            result
                .out_dir
                .join(crate::shard::send::SHARD_JSON)
                .display()
        );
        if let Some(why) = &r.clock_refusal {
            text.push_str(&format!("clock: {why}\n"));
        }
        out(&text)?;
    }
    Ok(result.exit_code())
}

async fn run(cmd: RunCmd, run_log: RunLog) -> anyhow::Result<i32> {
    if let Some(dir) = cmd.experiment.clone().filter(|p| p.is_dir()) {
        if cmd.seed.is_some() || cmd.only.is_some() || cmd.dry_run {
            anyhow::bail!(
                "{} is a prepared run: its plan is frozen, so --seed, --only and --dry-run do \
                 not apply",
                dir.display()
            );
        }
        return run_shard(cmd, dir, run_log).await;
    }
    if cmd.shard.is_some() || cmd.start_at.is_some() {
        anyhow::bail!(
            "--shard and --start-at need a prepared run directory (`stellar prepare EXPERIMENT \
             -o RUN_DIR`), not an experiment file"
        );
    }
    if cmd.force && cmd.resume.is_none() {
        anyhow::bail!("--force applies to --resume RUN_DIR or to a prepared run directory");
    }
    let show_progress = !cmd.quiet && !cmd.json;
    let attach_log = |dir: &Path| {
        if let Err(e) = run_log.attach(&dir.join("run.log")) {
            tracing::warn!(error = %e, "could not create run.log");
        }
    };
    let outcome: RunOutcome = if let Some(run_dir) = cmd.resume {
        if crate::shard::prepared::is_prepared(&run_dir) {
            anyhow::bail!(
                "{} is a prepared run: its shards are never resumed (a late shard would send \
                 off the schedule); `stellar merge --allow-partial` reports what is missing",
                run_dir.display()
            );
        }
        let args = ResumeArgs {
            run_dir,
            force: cmd.force,
            adapter: cmd.adapter.options()?,
            show_progress,
        };
        match crate::run::resume(&args, stop_on_signals(), attach_log).await? {
            Some(outcome) => outcome,
            None => {
                out(&format!(
                    "{}: every planned request already has a row; nothing to do\n",
                    args.run_dir.display()
                ))?;
                return Ok(0);
            }
        }
    } else {
        let args = RunArgs {
            experiment: cmd
                .experiment
                .context("an experiment file is needed (or --resume RUN_DIR)")?,
            seed: cmd.seed,
            output_dir: cmd.output,
            only_sub_experiment: cmd.only,
            adapter: cmd.adapter.options()?,
            show_progress,
        };
        if cmd.dry_run {
            return dry_run(&args).await;
        }
        crate::run::run(&args, stop_on_signals(), attach_log).await?
    };
    if cmd.json {
        out(&(serde_json::to_string_pretty(&outcome.analysis)? + "\n"))?;
    } else {
        out(&crate::report_text::run_summary(&outcome))?;
    }
    Ok(if outcome.completed() { 0 } else { 2 })
}

async fn dry_run(args: &RunArgs) -> anyhow::Result<i32> {
    let plan = crate::run::plan(args)?;
    out(&crate::report_text::plan_preview(&plan))?;
    if let stellar_config::ProviderKind::Named(provider) = &plan.provider {
        let checked = crate::provision::adapter::check(&plan, provider, &args.adapter).await?;
        let plugin = &checked.plugin;
        out(&format!(
            "adapter (options and grants checked):\n{}",
            describe_in_words(
                plugin.info(),
                &plugin.source().label(),
                plugin.is_first_party()
            )
        ))?;
    }
    Ok(0)
}

/// A stop signal that Ctrl-C (SIGINT) or SIGTERM triggers: stop sending, let requests in
/// flight finish, tear down, write the results (exit code 2). A second signal exits at once
/// (130 / 143); every row written so far is already on disk, flushed row by row.
fn stop_on_signals() -> StopSignal {
    let stop = StopSignal::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        let name = next_signal().await;
        tracing::warn!(
            "{name}: finishing requests in flight, then cleaning up (a second signal quits at once)"
        );
        trigger.stop();
        let second = next_signal().await;
        std::process::exit(if second == "SIGTERM" { 143 } else { 130 });
    });
    stop
}

/// Waits for SIGINT or SIGTERM and names it.
async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

async fn cleanup(cmd: CleanupCmd) -> anyhow::Result<i32> {
    let mut failed = 0;
    let options = cmd.adapter.options()?;
    if let (Some(provider), Some(older_than)) = (&cmd.provider, cmd.older_than) {
        return cleanup_orphans(&cmd, provider, older_than, &options).await;
    }
    for dir in &cmd.run_dirs {
        let outcome = crate::cleanup::cleanup_run(dir, &options)
            .await
            .with_context(|| format!("cleaning up {}", dir.display()))?;
        let mut text = format!(
            "{}: {} removed, {} already gone, {} failed\n",
            dir.display(),
            outcome.removed.len(),
            outcome.already_gone.len(),
            outcome.failed.len()
        );
        for (function, error) in &outcome.failed {
            text.push_str(&format!("  {function}: {error}\n"));
        }
        failed += outcome.failed.len();
        out(&text)?;
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

async fn cleanup_orphans(
    cmd: &CleanupCmd,
    provider: &str,
    older_than: std::time::Duration,
    options: &AdapterOptions,
) -> anyhow::Result<i32> {
    let mut settings = std::collections::BTreeMap::new();
    for pair in &cmd.settings {
        let (key, value) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("--setting {pair:?}: expected KEY=VALUE"))?;
        settings.insert(key.to_owned(), value.to_owned());
    }
    let local_runtime = match &cmd.local_control_url {
        Some(url) => Some((
            url.clone(),
            std::env::var("STELLAR_LOCAL_TOKEN").context(
                "--local-control-url needs the runtime's token in STELLAR_LOCAL_TOKEN (printed \
                 by `stellar local serve`)",
            )?,
        )),
        None => None,
    };
    let query = crate::orphans::OrphanQuery {
        provider: provider.to_owned(),
        older_than,
        dry_run: cmd.dry_run,
        settings,
        local_runtime,
    };
    let outcome = crate::orphans::cleanup_orphans(&query, options)
        .await
        .with_context(|| format!("looking for functions stellar left on `{provider}`"))?;
    let age = |a: Option<std::time::Duration>| match a {
        Some(a) => {
            humantime::format_duration(std::time::Duration::from_secs(a.as_secs())).to_string()
        }
        None => "unknown".to_owned(),
    };
    let threshold = humantime::format_duration(older_than);
    let mut text = format!(
        "{provider}: {} function(s) stellar created at least {threshold} ago{}\n",
        outcome.orphans.len(),
        if cmd.dry_run {
            " (dry run: nothing removed)"
        } else {
            ""
        }
    );
    for found in &outcome.orphans {
        let state = if cmd.dry_run {
            "would remove"
        } else if outcome.removed.contains(&found.function) {
            "removed"
        } else {
            "FAILED"
        };
        text.push_str(&format!(
            "  {}  run {}  age {}  {state}\n",
            found.function,
            found.run_id,
            age(found.age)
        ));
    }
    for found in &outcome.kept {
        text.push_str(&format!(
            "  {}  run {}  age {}  kept (younger than {threshold} or of unknown age)\n",
            found.function,
            found.run_id,
            age(found.age)
        ));
    }
    text.push_str(&format!(
        "{} other function(s) not created by stellar were left alone\n",
        outcome.foreign
    ));
    for (function, error) in &outcome.failed {
        text.push_str(&format!("  {function}: {error}\n"));
    }
    if let Some(note) = &outcome.note {
        text.push_str(&format!("note: {note}\n"));
    }
    out(&text)?;
    Ok(if outcome.failed.is_empty() { 0 } else { 1 })
}

fn report(run_dir: &std::path::Path, json: bool) -> anyhow::Result<i32> {
    let analysis = crate::analysis::analyse_run_dir(run_dir)?;
    if json {
        out(&(serde_json::to_string_pretty(&analysis)? + "\n"))?;
    } else {
        let summaries: Vec<_> = analysis
            .sub_experiments
            .iter()
            .map(|s| s.summary.clone())
            .collect();
        let mut text = stellar_results::render_table(&summaries);
        for sub in &analysis.sub_experiments {
            for warning in &sub.warnings {
                text.push_str(&format!("warning ({}): {warning}\n", sub.slug));
            }
        }
        text.push_str(&format!(
            "report: {}\n",
            run_dir.join(crate::analysis::REPORT_HTML).display()
        ));
        out(&text)?;
    }
    Ok(0)
}

/// `--noise-threshold`: a percentage from 0 to 100.
fn noise_percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "expected a percentage from 0 to 100 (for example 5), got `{text}`"
        )),
    }
}

fn compare(cmd: CompareCmd) -> anyhow::Result<i32> {
    let (baseline, others) = cmd
        .runs
        .split_first()
        .context("compare needs at least two run directories")?;
    let mut all = Vec::new();
    for other in others {
        let comparison =
            crate::compare::compare_runs(baseline, other, cmd.seed, cmd.noise_threshold / 100.0)?;
        out(&crate::compare::render(&comparison))?;
        all.push(comparison);
    }
    if let Some(path) = &cmd.output {
        fs_err::write(path, serde_json::to_string_pretty(&all)? + "\n")?;
    }
    Ok(0)
}

async fn build(cmd: BuildCmd) -> anyhow::Result<i32> {
    use crate::package::{
        choose_kind, custom_handler_zip, fc_custom_zip, lambda_zip, native_binary, oci_image,
    };
    use crate::plugin::ArtifactKind;
    let (source, _) = crate::provision::adapter::resolve(&cmd.provider, cmd.plugin.as_ref())?;
    let runtime = PluginRuntime::new(SandboxLimits::default())?;
    let plugin = runtime.load(source).await?;
    let arch = match cmd.arch {
        ArchArg::X86_64 => stellar_config::Architecture::X86_64,
        ArchArg::Arm64 => stellar_config::Architecture::Arm64,
    };
    let pad = cmd
        .image_size_mb
        .filter(|mb| mb.is_finite() && *mb > 0.0)
        .map(|mb| (mb * 1024.0 * 1024.0).round() as u64);
    match choose_kind(&plugin.info().artifacts)? {
        ArtifactKind::LambdaZip => {
            let bootstrap = lambda_zip::build_for_arch(arch)?;
            let output = cmd.output.unwrap_or_else(|| "bootstrap.zip".into());
            let zip = lambda_zip::lambda_zip(&bootstrap, &output, pad, cmd.seed)?;
            out(&format!(
                "{} ({} bytes, sha256 {})\n  bootstrap: {}\n",
                zip.path.display(),
                zip.size,
                zip.sha256,
                bootstrap.display()
            ))?;
        }
        ArtifactKind::CustomHandlerZip => {
            let handler = custom_handler_zip::build_handler(arch)?;
            let output = cmd.output.unwrap_or_else(|| "custom-handler.zip".into());
            let zip = custom_handler_zip::custom_handler_zip(
                &handler,
                &output,
                custom_handler_zip::DEFAULT_TIMEOUT_S,
                pad,
                cmd.seed,
            )?;
            out(&format!(
                "{} ({} bytes, sha256 {})\n  handler: {}\n",
                zip.path.display(),
                zip.size,
                zip.sha256,
                handler.display()
            ))?;
        }
        ArtifactKind::FcCustomZip => {
            let output = cmd
                .output
                .unwrap_or_else(|| fc_custom_zip::DEFAULT_OUTPUT.into());
            let zip = fc_custom_zip::build(arch, pad, cmd.seed, &output)?;
            out(&format!(
                "{} ({} bytes, sha256 {})\n  bootstrap: the embedded stellar-measure-http\n",
                zip.path.display(),
                zip.size,
                zip.sha256
            ))?;
        }
        ArtifactKind::OciImage => {
            let binary = oci_image::build_for_arch(arch)?;
            let output = cmd
                .output
                .unwrap_or_else(|| oci_image::DEFAULT_OUTPUT.into());
            // `X.tar`: the oci-archive adapters get (its layout beside it); else a layout dir.
            let (image, archive) = if output.extension().is_some_and(|e| e == "tar") {
                let (image, archive) = oci_image::oci_archive(&binary, &output, pad, cmd.seed)?;
                (image, Some(archive))
            } else {
                (
                    oci_image::write_layout(&binary, &output, pad, cmd.seed)?,
                    None,
                )
            };
            let mut text = format!(
                "{} (OCI image layout, linux/amd64, {} bytes of config and layers)\n  manifest: {}\n  \
                 entrypoint: {} (static, {})\n",
                image.dir.display(),
                image.image_bytes(),
                image.manifest.digest,
                oci_image::ENTRYPOINT,
                binary.display()
            );
            if let Some(archive) = archive {
                text.push_str(&format!(
                    "  oci-archive: {} ({} bytes, sha256 {})\n",
                    archive.path.display(),
                    archive.size,
                    archive.sha256
                ));
            }
            out(&text)?;
        }
        ArtifactKind::NativeBinary => {
            let output = cmd
                .output
                .unwrap_or_else(|| native_binary::FILE_NAME.into());
            native_binary::write_to(&output)?;
            out(&format!("{}\n", output.display()))?;
        }
        _ => out(&format!(
            "the `{}` adapter needs nothing built\n",
            plugin.info().name
        ))?,
    }
    Ok(0)
}

async fn plugins(cmd: PluginsCmd) -> anyhow::Result<i32> {
    let runtime = PluginRuntime::new(SandboxLimits::default())?;
    match cmd {
        PluginsCmd::List => {
            let mut text = String::new();
            for first in crate::embedded::FIRST_PARTY {
                let plugin = runtime.load(first.source()).await?;
                text.push_str(&describe_in_words(plugin.info(), "built in", true));
            }
            for file in installed::list()? {
                match runtime.load(PluginSource::File(file.clone())).await {
                    Ok(plugin) => text.push_str(&describe_in_words(
                        plugin.info(),
                        &format!("installed: {}", file.display()),
                        false,
                    )),
                    Err(e) => {
                        text.push_str(&format!("{} (installed, unusable): {e}\n", file.display()))
                    }
                }
            }
            out(&text)?;
        }
        PluginsCmd::Inspect { adapter } => {
            let source = crate::provision::adapter::find(&adapter)
                .map_or_else(|| PluginSource::File(PathBuf::from(&adapter)), |(s, _)| s);
            let first_party = matches!(source, PluginSource::Embedded { .. });
            let label = source.label();
            let plugin = runtime
                .load(source)
                .await
                .with_context(|| format!("inspecting {label}"))?;
            out(&describe_in_words(plugin.info(), &label, first_party))?;
        }
        PluginsCmd::Install { file } => {
            let (name, path) = installed::install(&runtime, &file).await?;
            out(&format!(
                "installed `{name}` as {}; experiments with \"Provider\": \"{name}\" now use it \
                 (it gets credentials only with --grant)\n",
                path.display()
            ))?;
        }
        PluginsCmd::Remove { name } => {
            let path = installed::remove(&name)?;
            out(&format!("removed {}\n", path.display()))?;
        }
    }
    Ok(0)
}

async fn local(cmd: LocalCmd) -> anyhow::Result<i32> {
    let LocalCmd::Serve {
        control_port,
        gateway_port,
        work_dir,
    } = cmd;
    let work_dir = work_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("stellar-local-{}", std::process::id()))
    });
    let mut cfg = stellar_local::LocalRuntimeConfig::new(&work_dir);
    cfg.control_addr = ([127, 0, 0, 1], control_port).into();
    cfg.gateway_addr = ([127, 0, 0, 1], gateway_port).into();
    let rt = stellar_local::LocalRuntime::start(cfg).await?;
    out(&format!(
        "local provider running (Ctrl-C to stop)\n  control: {}\n  token:   {}\n  gateway: {}\n  work dir: {}\n",
        rt.control_url(),
        rt.token(),
        rt.gateway_url(),
        work_dir.display()
    ))?;
    tokio::signal::ctrl_c().await?;
    rt.shutdown().await;
    Ok(0)
}

fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
