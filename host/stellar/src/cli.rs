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
        show_progress: !cmd.quiet,
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
    out(&crate::report_text::run_summary(&outcome))?;
    Ok(if outcome.completed() { 0 } else { 2 })
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
