//! `stellar-measure-lambda`: the AWS Lambda entry point of the measurement function.
//!
//! Thin by design: it takes the process start time, builds the instance identity and runtime
//! facts (before the first event, so the first invocation does not pay for reading `/proc`),
//! writes one init line to stderr (CloudWatch) and hands over to
//! [`stellar_measure::lambda::serve`]. cargo-lambda packages it as `bootstrap` for the
//! `provided.al2023` runtime. Event and reply shapes are documented in `stellar_measure::lambda`.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use stellar_measure::lambda::{self, LambdaFunction};
use stellar_measure::unix_ns_now;

fn main() -> ExitCode {
    // Process start, as the HTTP flavour records it: before anything else happens.
    let start = unix_ns_now();
    match run(start) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // stderr goes to the function's log; there is nowhere else to report.
            writeln!(std::io::stderr(), "stellar-measure-lambda: {e}").ok();
            ExitCode::FAILURE
        }
    }
}

fn run(start: u64) -> Result<(), Box<dyn std::error::Error>> {
    let function = Arc::new(LambdaFunction::from_env(start));
    // Events are handled one at a time; the spin runs on the blocking pool, so one I/O thread
    // is enough and keeps the cold start small.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("building the tokio runtime: {e}"))?;
    let ready = unix_ns_now();
    writeln!(
        std::io::stderr(),
        "stellar-measure-lambda: instance {} ready after {} us",
        function.instance().id(),
        ready.saturating_sub(start) / 1000
    )
    .ok();
    // The next thing the runtime does is poll the Runtime API for the first event.
    function.instance().mark_ready();
    runtime.block_on(lambda::serve(function))?;
    Ok(())
}
