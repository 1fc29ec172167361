//! Logging from an adapter into the host's log, over the `host-log` import.
//!
//! Adapters have no stderr worth reading (the host may discard it), so every message goes
//! through the host, which records it with the plugin's name.
//!
//! ```ignore
//! stellar_guest_sdk::log::info(format!("uploading {} bytes", artifact.size()));
//! ```

use crate::bindings::stellar::provider::host_log::{self, Level};

/// Sends `message` to the host's log at `level`.
pub fn log(level: Level, message: impl AsRef<str>) {
    host_log::log(level, message.as_ref());
}

/// Logs at trace level.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message);
}

/// Logs at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
