//! A results filesystem that is full or a file-size limit must end a run with an error that
//! names the file, never kill the process.
//!
//! Writing past `RLIMIT_FSIZE` raises `SIGXFSZ`, whose default action terminates the process
//! at once (no teardown: functions stay deployed, the CSV may end in a torn row). With the
//! signal handled, the write fails with `EFBIG` instead, and the ordinary error path runs: the
//! writer cuts the torn row, the run stops sending and removes its functions. A full disk
//! (`ENOSPC`) raises no signal and takes the same path.

/// Replaces the default (fatal) action of `SIGXFSZ`. tokio's handler stays installed for the
/// life of the process even after the returned stream is dropped. Call inside the runtime.
///
/// # Errors
/// If the handler cannot be installed.
pub fn survive_file_size_limit() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::from_raw(libc::SIGXFSZ)).map(drop)
}
