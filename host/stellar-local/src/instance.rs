//! One instance = one child process of the function's executable, owned by one supervisor task
//! from spawn to reaping.
//!
//! The supervisor spawns the process (with stdin held open: the process exits on stdin EOF, so
//! instances die with the runtime even if it is SIGKILLed), waits for its
//! `STELLAR-READY {"port":..,"instance_id":..,"pid":..}` line, reports it to the request that
//! caused the cold start, and then watches for: a stop order (delete, update drain, shutdown,
//! timeout), the process exiting on its own (a crash), and its keep-alive running out.
//! Stopping closes stdin, kills the process and waits for it, so no zombie or orphan is left.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::api::StopReason;
use crate::state::{IdleState, ReadyInfo, ReadyResult, Shared, SlotRef};

/// Prefix of the line an instance prints once it listens.
pub(crate) const READY_PREFIX: &str = "STELLAR-READY ";

/// `errno` of "text file busy": exec of a file another process still has open for writing.
/// A freshly written artifact can hit it when a concurrent fork briefly inherited the write fd.
const ETXTBSY: i32 = 26;

/// Everything a supervisor needs, decided under the state lock by `Shared::admit`.
pub(crate) struct SpawnPlan {
    pub(crate) slot: SlotRef,
    pub(crate) program: PathBuf,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) memory_mb: u32,
    pub(crate) keep_alive: Duration,
    pub(crate) ready_timeout: Duration,
    pub(crate) restart_on_crash: bool,
    pub(crate) ready_tx: watch::Sender<Option<ReadyResult>>,
    pub(crate) stop_rx: oneshot::Receiver<StopReason>,
    pub(crate) idle: Arc<Notify>,
}

/// The JSON of the READY line.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct ReadyLine {
    pub(crate) port: u16,
    pub(crate) instance_id: String,
    pub(crate) pid: u32,
}

/// `None` if `line` is not a READY line, else its parsed payload.
pub(crate) fn parse_ready_line(line: &str) -> Option<Result<ReadyLine, String>> {
    let json = line.trim_end().strip_prefix(READY_PREFIX)?;
    Some(match serde_json::from_str::<ReadyLine>(json) {
        Ok(ready) if ready.port == 0 => Err("it reports port 0".to_owned()),
        Ok(ready) => Ok(ready),
        Err(e) => Err(e.to_string()),
    })
}

/// Runs one instance from spawn to reaping (see the module docs); with `restart_on_crash`,
/// a process that exits on its own is replaced by a new one in the same slot.
pub(crate) async fn supervise(shared: Arc<Shared>, mut plan: SpawnPlan) {
    let span = tracing::debug_span!("instance", function = %plan.slot.name, key = plan.slot.key);
    async move {
        loop {
            if run(&shared, &mut plan).await == Ended::Finished {
                return;
            }
            match plan
                .restart_on_crash
                .then(|| shared.restart_in_place(&plan.slot))
                .flatten()
            {
                Some((slot, ready_tx)) => {
                    tracing::info!("restarting the crashed process in its slot");
                    plan.slot = slot;
                    plan.ready_tx = ready_tx;
                }
                None => {
                    shared.finish(&plan.slot, Some(StopReason::Crashed), None);
                    return;
                }
            }
        }
    }
    .instrument(span)
    .await;
}

/// How one process of an instance ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The instance is finished (stopped, failed to start) and its record completed.
    Finished,
    /// The process exited on its own after it was ready; nothing is recorded yet.
    Crashed,
}

enum Startup {
    Stop(StopReason),
    Failed(String),
    Ready(ReadyLine),
}

enum Event {
    Stop(StopReason),
    Exited(std::io::Result<ExitStatus>),
    Recheck,
    Deadline,
    Stdout(std::io::Result<Option<String>>),
}

async fn run(shared: &Shared, plan: &mut SpawnPlan) -> Ended {
    let started = Instant::now();
    let mut child = match spawn(shared, plan).await {
        Ok(child) => child,
        Err(e) => {
            let msg = format!("cannot start {}: {e}", plan.program.display());
            tracing::warn!("{msg}");
            shared.finish(&plan.slot, None, Some(msg.clone()));
            plan.ready_tx.send_replace(Some(Err(msg)));
            return Ended::Finished;
        }
    };
    let pid = child.id();
    shared.record_pid(&plan.slot, pid);
    // Held until the instance is stopped: closing it tells the process to exit.
    let stdin = child.stdin.take();
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_stderr(stderr).in_current_span());
    }
    let Some(stdout) = child.stdout.take() else {
        let msg = "its stdout was not captured".to_owned();
        let _ended = stop_child(&mut child, stdin).await;
        shared.finish(&plan.slot, None, Some(msg.clone()));
        plan.ready_tx.send_replace(Some(Err(msg)));
        return Ended::Finished;
    };
    let mut lines = BufReader::new(stdout).lines();

    let startup = tokio::select! {
        biased;
        reason = &mut plan.stop_rx => Startup::Stop(reason.unwrap_or(StopReason::Shutdown)),
        read = tokio::time::timeout(plan.ready_timeout, read_ready(&mut lines)) => match read {
            Ok(Ok(ready)) => Startup::Ready(ready),
            Ok(Err(msg)) => Startup::Failed(msg),
            Err(_) => Startup::Failed(format!(
                "no READY line within {} ms", plan.ready_timeout.as_millis()
            )),
        },
    };
    let ready = match startup {
        Startup::Ready(ready) => ready,
        Startup::Stop(reason) => {
            let ended = stop_child(&mut child, stdin).await;
            tracing::debug!(?reason, "stopped while starting ({ended})");
            shared.finish(&plan.slot, Some(reason), None);
            return Ended::Finished;
        }
        Startup::Failed(msg) => {
            let ended = stop_child(&mut child, stdin).await;
            let msg = format!("{msg} (process {ended})");
            tracing::warn!("instance failed to start: {msg}");
            shared.finish(&plan.slot, None, Some(msg.clone()));
            plan.ready_tx.send_replace(Some(Err(msg)));
            return Ended::Finished;
        }
    };
    // Microsecond resolution: exact enough, and short decimals survive a JSON round trip.
    let init_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    if pid.is_some_and(|pid| pid != ready.pid) {
        tracing::warn!(
            "READY line reports pid {} but the spawned process is {pid:?}",
            ready.pid
        );
    }
    let info = ReadyInfo {
        port: ready.port,
        instance_id: ready.instance_id,
        init_ms,
    };
    tracing::debug!(
        instance_id = %info.instance_id,
        port = info.port,
        "ready after {init_ms:.2} ms"
    );
    shared.mark_ready(&plan.slot, &info);
    // If the request gave up meanwhile, its guard has already released the slot.
    plan.ready_tx.send_replace(Some(Ok(info)));

    let mut stdout_open = true;
    let reason = loop {
        let deadline = match shared.idle_state(&plan.slot, plan.keep_alive) {
            IdleState::ExpiresAt(at) => Some(at),
            IdleState::NoTimer => None,
        };
        let event = tokio::select! {
            biased;
            reason = &mut plan.stop_rx => Event::Stop(reason.unwrap_or(StopReason::Shutdown)),
            status = child.wait() => Event::Exited(status),
            () = plan.idle.notified() => Event::Recheck,
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                if deadline.is_some() => Event::Deadline,
            line = lines.next_line(), if stdout_open => Event::Stdout(line),
        };
        match event {
            Event::Stop(reason) => break reason,
            Event::Exited(status) => {
                tracing::warn!("instance exited on its own ({})", describe_exit(status));
                drop(stdin);
                return Ended::Crashed;
            }
            Event::Recheck => {}
            Event::Deadline => {
                if shared.try_expire(&plan.slot, plan.keep_alive) {
                    break StopReason::KeepAlive;
                }
            }
            Event::Stdout(Ok(Some(line))) => {
                tracing::trace!(target: "stellar_local::stdout", "{line}")
            }
            Event::Stdout(_) => stdout_open = false,
        }
    };
    let ended = stop_child(&mut child, stdin).await;
    tracing::debug!(?reason, "stopped ({ended})");
    shared.finish(&plan.slot, Some(reason), None);
    Ended::Finished
}

/// Spawns the process, retrying briefly on ETXTBSY.
async fn spawn(shared: &Shared, plan: &SpawnPlan) -> std::io::Result<Child> {
    let mut attempt = 0u32;
    loop {
        let mut cmd = Command::new(&plan.program);
        // A clean environment, like a cloud sandbox: the function's env, then the protocol
        // variables (which the function's env cannot override).
        cmd.env_clear()
            .envs(&plan.env)
            .env("PORT", "0")
            .env("STELLAR_LISTEN_ADDR", "127.0.0.1")
            .env("STELLAR_EXIT_ON_STDIN_EOF", "1")
            .env("STELLAR_PROVIDER", "local")
            .env("STELLAR_MEMORY_MB", plan.memory_mb.to_string())
            .env("STELLAR_FUNCTION_NAME", &plan.slot.name)
            .env(
                "STELLAR_LOCAL_INSTANCE_ID",
                crate::state::slot_name(plan.slot.key),
            )
            .current_dir(&shared.work_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Second line of defence: a dropped supervisor still kills its process.
            .kill_on_drop(true);
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
            }
            result => return result,
        }
    }
}

/// Reads stdout up to the READY line (earlier lines are logged).
async fn read_ready(lines: &mut Lines<BufReader<ChildStdout>>) -> Result<ReadyLine, String> {
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => match parse_ready_line(&line) {
                Some(Ok(ready)) => return Ok(ready),
                Some(Err(e)) => return Err(format!("malformed READY line {line:?}: {e}")),
                None => tracing::trace!(target: "stellar_local::stdout", "{line}"),
            },
            Ok(None) => return Err("stdout closed before a READY line".to_owned()),
            Err(e) => return Err(format!("reading stdout: {e}")),
        }
    }
}

/// Forwards the instance's stderr to the log.
async fn forward_stderr(stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "stellar_local::stderr", "{line}");
    }
}

/// Closes stdin, kills the process and reaps it; describes how it ended.
async fn stop_child(child: &mut Child, stdin: Option<ChildStdin>) -> String {
    drop(stdin);
    if let Err(e) = child.start_kill() {
        // Already exited (and maybe reaped): `wait` below reports the status.
        tracing::trace!("kill: {e}");
    }
    describe_exit(child.wait().await)
}

fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("exit status unknown: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ready_lines() {
        let line = r#"STELLAR-READY {"port":4242,"instance_id":"0123456789abcdef","pid":77}"#;
        assert_eq!(
            parse_ready_line(line),
            Some(Ok(ReadyLine {
                port: 4242,
                instance_id: "0123456789abcdef".into(),
                pid: 77
            }))
        );
        // Extra fields are tolerated, trailing whitespace too.
        let extra = "STELLAR-READY {\"port\":1,\"instance_id\":\"a\",\"pid\":2,\"v\":1}\r";
        assert!(matches!(parse_ready_line(extra), Some(Ok(_))));
    }

    #[test]
    fn other_lines_are_not_ready_lines() {
        assert_eq!(parse_ready_line("listening on 127.0.0.1:80"), None);
        assert_eq!(parse_ready_line(""), None);
    }

    #[test]
    fn malformed_ready_lines_are_errors() {
        assert!(matches!(
            parse_ready_line("STELLAR-READY {\"port\":1}"),
            Some(Err(_))
        ));
        assert!(matches!(
            parse_ready_line(r#"STELLAR-READY {"port":0,"instance_id":"a","pid":1}"#),
            Some(Err(_))
        ));
    }
}
