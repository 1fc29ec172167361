//! The kernel's clock-synchronisation state, read once before a shard sends and once after.
//!
//! Shards on different machines share one wall-clock start `T0`; the error left between them
//! is the difference between their clocks. Latencies never depend on it (each shard measures
//! on its own monotonic clock), but cross-shard burst alignment does, so each shard records
//! what its kernel says about its clock (`adjtimex` with no modes: read only): whether NTP
//! (or PTP, chrony) marked it synchronised, and the kernel's maximum and estimated error. A
//! shard refuses to start when the clock is unsynchronised or its maximum error is above the
//! threshold, unless forced.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the kernel says about the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockSync {
    /// False when the kernel's `STA_UNSYNC` flag is set (or `adjtimex` reports `TIME_ERROR`):
    /// nothing disciplines this clock.
    pub synchronised: bool,
    /// The kernel's maximum error estimate (µs).
    pub max_error_us: i64,
    /// The kernel's estimated error (µs).
    pub est_error_us: i64,
    /// The raw `status` bits and the clock state `adjtimex` returned.
    pub status: i32,
    pub state: i32,
}

/// The kernel's `STA_UNSYNC` status bit (include/uapi/linux/timex.h).
pub const STA_UNSYNC: i32 = 0x0040;
/// The `adjtimex` return value meaning "clock not synchronised".
pub const TIME_ERROR: i32 = 5;

impl ClockSync {
    /// Interprets the fields `adjtimex` returned.
    pub fn from_timex(state: i32, status: i32, max_error_us: i64, est_error_us: i64) -> Self {
        Self {
            synchronised: state != TIME_ERROR && status & STA_UNSYNC == 0,
            max_error_us,
            est_error_us,
            status,
            state,
        }
    }

    /// `Err` with the reason when this clock should not anchor a shard's start.
    pub fn check(&self, max_error: Duration) -> Result<(), String> {
        let limit_us = i64::try_from(max_error.as_micros()).unwrap_or(i64::MAX);
        if !self.synchronised {
            return Err(format!(
                "the kernel says this machine's clock is not synchronised (STA_UNSYNC; maximum \
                 error {} ms): run NTP/chrony/PTP, or pass --force to start anyway (the \
                 cross-shard send spread is then unbounded)",
                self.max_error_us as f64 / 1e3
            ));
        }
        if self.max_error_us > limit_us {
            return Err(format!(
                "the kernel's maximum clock error is {} ms, above --max-clock-error {} ms: \
                 shards would not start together; pass --force to start anyway",
                self.max_error_us as f64 / 1e3,
                limit_us as f64 / 1e3
            ));
        }
        Ok(())
    }
}

/// Why the clock state could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the clock-synchronisation state (adjtimex): {0}")]
pub struct ClockReadError(String);

/// Reads the kernel's clock state (read only).
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "adjtimex is a libc call: the struct is zeroed (modes = 0, read only) and owned here"
)]
#[allow(
    clippy::useless_conversion,
    reason = "c_long is 64 bits here but 32 bits on other Linux targets"
)]
pub fn read() -> Result<ClockSync, ClockReadError> {
    // SAFETY: `timex` is plain old data; all-zero is a valid value and means "read only".
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, exclusively borrowed timex for the duration of the call.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(ClockReadError(std::io::Error::last_os_error().to_string()));
    }
    Ok(ClockSync::from_timex(
        state,
        tx.status,
        i64::from(tx.maxerror),
        i64::from(tx.esterror),
    ))
}

/// Reads the kernel's clock state: not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn read() -> Result<ClockSync, ClockReadError> {
    Err(ClockReadError("only implemented on Linux".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynchronised_or_too_uncertain_clocks_are_refused() {
        let synced = ClockSync::from_timex(0, 0x2001, 1_500, 20);
        assert!(synced.synchronised);
        assert!(synced.check(Duration::from_millis(5)).is_ok());
        let err = synced.check(Duration::from_millis(1)).unwrap_err();
        assert!(err.contains("1.5 ms") && err.contains("--force"), "{err}");

        let unsynced = ClockSync::from_timex(TIME_ERROR, STA_UNSYNC, 16_000_000, 16_000_000);
        assert!(!unsynced.synchronised);
        let err = unsynced.check(Duration::from_secs(3600)).unwrap_err();
        assert!(err.contains("not synchronised"), "{err}");
        // The flag alone is enough, whatever the state says.
        assert!(!ClockSync::from_timex(0, STA_UNSYNC, 10, 10).synchronised);
    }

    #[test]
    fn this_machine_answers() {
        let sync = read().unwrap();
        assert!(sync.max_error_us >= 0, "{sync:?}");
    }
}
