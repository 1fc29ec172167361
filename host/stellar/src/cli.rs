//! The command line: argument types and the dispatch to each command. Everything the user reads
//! on stdout is written here; libraries only log.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::drive::StopSignal;
use crate::logging::RunLog;
use crate::plugin::{PluginRuntime, PluginSource, ProviderInfo, SandboxLimits};
use crate::run::{RunArgs, RunOutcome};

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
}

#[derive(Debug, clap::Args)]
pub struct RunCmd {
    /// The experiment file.
    pub experiment: PathBuf,
    /// Seed of every random choice (overrides the file's Stellar.Seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Root directory for results (overrides Stellar.OutputDir).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Run only the sub-experiment with this index (STeLLAR's -r).
    #[arg(short = 'r', long = "only")]
    pub only: Option<usize>,
    /// A provider adapter component to use instead of the built-in one.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Print the plan and exit without deploying or sending anything.
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

#[derive(Debug, clap::Args)]
pub struct CompareCmd {
    /// Two or more run directories; each one after the first is compared with the first.
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<PathBuf>,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the comparison as JSON to this file.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CleanupCmd {
    /// Run directories (each holds plan.json and resources.jsonl).
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// The third-party adapter the runs used, if not a built-in one.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct BuildCmd {
    /// The provider to build for (only `aws` needs a build; `local` embeds its function).
    #[arg(long, default_value = "aws")]
    pub provider: String,
    /// Instruction set.
    #[arg(long, value_enum, default_value_t = ArchArg::X86_64)]
    pub arch: ArchArg,
    /// Pad the zip to this many MiB with incompressible filler (STeLLAR's FunctionImageSizeMB).
    #[arg(long)]
    pub image_size_mb: Option<f64>,
    /// Seed of the filler bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the zip.
    #[arg(short, long, default_value = "bootstrap.zip")]
    pub output: PathBuf,
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
    /// List the plugins built into this binary.
    List,
    /// Show what a plugin file declares (hosts, artifact, settings).
    Inspect { file: PathBuf },
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
        Command::Build(cmd) => build(cmd),
        Command::Plugins { command } => plugins(command).await,
        Command::Local { command } => local(command).await,
    }
}

async fn run(cmd: RunCmd, run_log: RunLog) -> anyhow::Result<i32> {
    let args = RunArgs {
        experiment: cmd.experiment,
        seed: cmd.seed,
        output_dir: cmd.output,
        only_sub_experiment: cmd.only,
        plugin: cmd.plugin,
        show_progress: !cmd.quiet && !cmd.json,
    };
    if cmd.dry_run {
        let plan = crate::run::plan(&args)?;
        out(&crate::report_text::plan_preview(&plan))?;
        return Ok(0);
    }
    let stop = StopSignal::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!(
                    "interrupted: finishing requests in flight, then cleaning up (Ctrl-C again to quit now)"
                );
                stop.stop();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let outcome: RunOutcome = crate::run::run(&args, stop, |dir| {
        if let Err(e) = run_log.attach(&dir.join("run.log")) {
            tracing::warn!(error = %e, "could not create run.log");
        }
    })
    .await?;
    if cmd.json {
        out(&(serde_json::to_string_pretty(&outcome.analysis)? + "\n"))?;
    } else {
        out(&crate::report_text::run_summary(&outcome))?;
    }
    Ok(if outcome.completed() { 0 } else { 2 })
}

async fn cleanup(cmd: CleanupCmd) -> anyhow::Result<i32> {
    let mut failed = 0;
    for dir in &cmd.run_dirs {
        let outcome = crate::cleanup::cleanup_run(dir, cmd.plugin.as_ref())
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

fn compare(cmd: CompareCmd) -> anyhow::Result<i32> {
    let (baseline, others) = cmd
        .runs
        .split_first()
        .context("compare needs at least two run directories")?;
    let mut all = Vec::new();
    for other in others {
        let comparison = crate::compare::compare_runs(baseline, other, cmd.seed)?;
        out(&crate::compare::render(&comparison))?;
        all.push(comparison);
    }
    if let Some(path) = &cmd.output {
        fs_err::write(path, serde_json::to_string_pretty(&all)? + "\n")?;
    }
    Ok(0)
}

fn build(cmd: BuildCmd) -> anyhow::Result<i32> {
    if cmd.provider != "aws" {
        anyhow::bail!(
            "--provider {}: only `aws` has a build step (`local` embeds its function; other \
             providers are not supported yet)",
            cmd.provider
        );
    }
    let arch = match cmd.arch {
        ArchArg::X86_64 => stellar_config::Architecture::X86_64,
        ArchArg::Arm64 => stellar_config::Architecture::Arm64,
    };
    let bootstrap = crate::provision::artifact::build_bootstrap(arch)?;
    let pad = cmd
        .image_size_mb
        .filter(|mb| mb.is_finite() && *mb > 0.0)
        .map(|mb| (mb * 1024.0 * 1024.0).round() as u64);
    let zip = crate::package::lambda_zip(&bootstrap, &cmd.output, pad, cmd.seed)?;
    out(&format!(
        "{} ({} bytes, sha256 {})\n  bootstrap: {}\n",
        zip.path.display(),
        zip.size,
        zip.sha256,
        bootstrap.display()
    ))?;
    Ok(0)
}

async fn plugins(cmd: PluginsCmd) -> anyhow::Result<i32> {
    let runtime = PluginRuntime::new(SandboxLimits::default())?;
    match cmd {
        PluginsCmd::List => {
            let mut text = String::new();
            for source in crate::embedded::first_party_plugins() {
                let plugin = runtime.load(source).await?;
                text.push_str(&describe(plugin.info(), "embedded"));
            }
            out(&text)?;
        }
        PluginsCmd::Inspect { file } => {
            let plugin = runtime
                .load(PluginSource::File(file.clone()))
                .await
                .with_context(|| format!("inspecting {}", file.display()))?;
            out(&describe(plugin.info(), &file.display().to_string()))?;
        }
    }
    Ok(0)
}

fn describe(info: &ProviderInfo, origin: &str) -> String {
    format!(
        "{name} {version} ({origin})\n  allowed hosts:        {hosts}\n  artifact:             {artifact:?}\n  cold-start scope:     {scope:?}\n  instance concurrency: {conc}\n  settings:             {settings}\n",
        name = info.name,
        version = info.version,
        hosts = if info.allowed_hosts.is_empty() {
            "(none)".into()
        } else {
            info.allowed_hosts.join(", ")
        },
        artifact = info.artifact,
        scope = info.cold_start_scope,
        conc = info.instance_concurrency,
        settings = info.settings.join(", "),
    )
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
