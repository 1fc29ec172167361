//! `stellar-measure-http`: the plain-HTTP entry point of the measurement function.
//!
//! Thin by design: it reads the environment, creates the instance identity, binds, prints the
//! `STELLAR-READY` line and hands the listener to [`stellar_measure::http::serve`] (or, with
//! `STELLAR_PROTOCOL=grpc`, to the gRPC server [`stellar_measure::grpc::serve_with`]). The process
//! contract (env vars, READY line, stdin-EOF and SIGTERM exit) is documented in the crate docs
//! of `stellar_measure`.

use anyhow::Context as _;
use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use stellar_measure::{ReadySignal, facts, fault, grpc, http, instance};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // stderr may be closed; there is nowhere else to report.
            writeln!(std::io::stderr(), "stellar-measure-http: {e:#}").ok();
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    // Identity and facts first, so instance_start_unix_ns is the process start and the first
    // request does not pay for reading /proc.
    let instance = instance::global();
    facts::global();

    let env = |var: &str| std::env::var(var).ok();
    let port = http::port_from_env(env)?;
    let ip = http::listen_addr_from_env(env)?;
    let faults = fault::enabled(env);
    let protocol = grpc::protocol_from_env(env)?;
    stellar_measure::chain::serve::init_from_env()?;
    let ready_delay = fault::ready_delay(env)?;
    if env(http::EXIT_ON_STDIN_EOF_ENV).as_deref() == Some("1") {
        std::thread::Builder::new()
            .name("stdin-eof".into())
            .spawn(exit_on_stdin_eof)
            .context("starting the stdin watcher thread")?;
    }

    // One thread for I/O; spins run on tokio's blocking pool, so concurrent requests still
    // spin in parallel.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let served: anyhow::Result<()> = runtime.block_on(async {
        let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let listener = TcpListener::bind((ip, port))
            .await
            .with_context(|| format!("binding {ip}:{port}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        if let Some(delay) = ready_delay {
            // Injected slow start (tests only, see `stellar_measure::fault`).
            tokio::time::sleep(delay).await;
        }
        instance.mark_ready();
        announce_ready(&ReadySignal {
            port: bound.port(),
            instance_id: instance.id().to_owned(),
            pid: std::process::id(),
        })?;
        let shutdown = async move {
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        match protocol {
            grpc::Protocol::Http => http::serve_with(listener, shutdown, faults).await,
            grpc::Protocol::Grpc => grpc::serve_with(listener, shutdown, faults).await,
        }
        .context("serving")
    });
    // Do not wait for in-flight spins: the instance is being told to go away.
    runtime.shutdown_background();
    served
}

/// Writes the READY line (the only stdout output) and flushes it.
fn announce_ready(ready: &ReadySignal) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", ready.to_line())
        .and_then(|()| out.flush())
        .context("writing the READY line to stdout")
}

/// Blocks until stdin reaches EOF (or fails), then exits the process with code 0: the parent
/// holding the other end has gone away, even if it was SIGKILLed.
fn exit_on_stdin_eof() {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0_u8; 256];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    std::process::exit(0);
}
