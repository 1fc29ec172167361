//! The `stellar` binary: parse arguments, run, print the error chain once.

use clap::Parser;

fn main() {
    let cli = stellar::cli::Cli::parse();
    let run_log = stellar::logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(&anyhow::Error::from(e)),
    };
    let dispatched = runtime.block_on(async {
        // A full results disk or a file-size limit is an error naming the file, not a kill.
        stellar::file_limits::survive_file_size_limit()?;
        stellar::cli::dispatch(cli, run_log).await
    });
    match dispatched {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&e),
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the binary prints the final error chain"
)]
fn fail(e: &anyhow::Error) -> ! {
    eprintln!("error: {e:#}");
    std::process::exit(1)
}
