//! Logging: `tracing` to stderr for the user (quiet by default) and, once the run directory
//! exists, everything at info level and above into its `run.log`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A log file that can be attached after start-up (the run directory is created later).
#[derive(Clone, Default)]
pub struct RunLog {
    file: Arc<Mutex<Option<fs_err::File>>>,
}

impl RunLog {
    pub fn attach(&self, path: &std::path::Path) -> std::io::Result<()> {
        let file = fs_err::File::create(path)?;
        if let Ok(mut slot) = self.file.lock() {
            *slot = Some(file);
        }
        Ok(())
    }
}

pub struct RunLogWriter(Arc<Mutex<Option<fs_err::File>>>);

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut slot) = self.0.lock()
            && let Some(f) = slot.as_mut()
        {
            f.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if let Ok(mut slot) = self.0.lock()
            && let Some(f) = slot.as_mut()
        {
            f.flush()?;
        }
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RunLog {
    type Writer = RunLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RunLogWriter(Arc::clone(&self.file))
    }
}

/// Installs the global subscriber. `verbose` raises the terminal level to info.
pub fn init(verbose: bool) -> RunLog {
    let run_log = RunLog::default();
    let default = if verbose { "info" } else { "warn" };
    let terminal = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{default},wasmtime=warn,cranelift=warn,hyper=warn"))
    });
    let file_filter = EnvFilter::new("info,wasmtime=warn,cranelift=warn,hyper=warn");
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .with_filter(terminal),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(run_log.clone())
                .with_ansi(false)
                .with_filter(file_filter),
        )
        .try_init();
    run_log
}

use tracing_subscriber::Layer as _;
