//! Budgets that stop a hostile or broken adapter from holding the host: guest CPU time per
//! call, log volume per run, and the length of any plugin string shown to the user.
//!
//! The wall-clock deadline of a call (in `mod.rs`) has to allow a cloud deploy to wait
//! minutes for a function to become active; a guest that spins instead must be stopped within
//! seconds. So guest time is metered separately and exactly: wasmtime's call hook reports every
//! transition between guest and host code, so time spent in host calls (sleeping, waiting on
//! HTTP, streaming an artifact over a slow link) is never charged; and the epoch ticker
//! (every [`super::EPOCH_TICK`]) makes running guest code call back into the host, which stops
//! it once the call's guest time exceeds the budget, even if it never calls the host.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest plugin string (error, log line, declaration field) shown or logged whole.
pub const MAX_SHOWN_BYTES: usize = 4096;

/// Cuts `text` to [`MAX_SHOWN_BYTES`] on a character boundary and says how much was cut.
pub fn shown(text: &str) -> String {
    cut(text, MAX_SHOWN_BYTES)
}

/// Cuts `text` to at most `max` bytes on a character boundary, noting the bytes cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} more bytes cut]", &text[..end], text.len() - end)
}

/// Guest time of the current call: the sum of the stretches between entering guest code and
/// leaving it for the host.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    budget: Duration,
    charged: Duration,
    running_since: Option<Instant>,
}

/// The error a call traps with when it used up its CPU budget; `call` recognises it.
#[derive(Debug, thiserror::Error)]
#[error("used more than {budget:?} of CPU time in one call")]
pub(crate) struct CpuBudgetExceeded {
    pub(crate) budget: Duration,
}

impl CpuMeter {
    pub(crate) fn new(budget: Duration) -> Self {
        Self {
            budget,
            charged: Duration::ZERO,
            running_since: None,
        }
    }

    /// Starts metering a new call.
    pub(crate) fn start_call(&mut self) {
        self.charged = Duration::ZERO;
        self.running_since = None;
    }

    /// The guest starts (or resumes) running.
    pub(crate) fn enter_guest(&mut self, now: Instant) {
        self.running_since.get_or_insert(now);
    }

    /// The guest stops running (a host call, or the call returned).
    pub(crate) fn leave_guest(&mut self, now: Instant) {
        if let Some(since) = self.running_since.take() {
            self.charged += now.saturating_duration_since(since);
        }
    }

    /// Guest time of this call so far.
    pub(crate) fn charged(&self, now: Instant) -> Duration {
        self.charged
            + self
                .running_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// Called on each epoch tick the running guest notices: an error once over budget.
    pub(crate) fn on_tick(&mut self, now: Instant) -> Result<(), CpuBudgetExceeded> {
        if self.charged(now) > self.budget {
            Err(CpuBudgetExceeded {
                budget: self.budget,
            })
        } else {
            Ok(())
        }
    }

    pub(crate) fn budget(&self) -> Duration {
        self.budget
    }
}

/// Bytes of `host-log` messages one loaded plugin may write over a run; shared by all its
/// instances. Past the cap messages are dropped, counted, and reported once.
#[derive(Debug, Clone)]
pub(crate) struct LogBudget {
    inner: Arc<Mutex<LogCounts>>,
    cap: usize,
    plugin: String,
}

#[derive(Debug, Default)]
struct LogCounts {
    written: usize,
    dropped_messages: u64,
    dropped_bytes: u64,
}

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LogDecision {
    Write,
    /// Write it, then say that the cap was reached.
    WriteThenCapReached,
    Drop,
}

impl LogBudget {
    pub(crate) fn new(plugin: &str, cap: usize) -> Self {
        Self {
            inner: Arc::default(),
            cap,
            plugin: plugin.to_owned(),
        }
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Accounts for a message of `len` bytes.
    pub(crate) fn admit(&self, len: usize) -> LogDecision {
        let Ok(mut counts) = self.inner.lock() else {
            return LogDecision::Drop;
        };
        if counts.written >= self.cap {
            counts.dropped_messages += 1;
            counts.dropped_bytes += len as u64;
            return LogDecision::Drop;
        }
        counts.written += len;
        if counts.written >= self.cap {
            LogDecision::WriteThenCapReached
        } else {
            LogDecision::Write
        }
    }

    /// `(messages, bytes)` dropped so far.
    pub(crate) fn dropped(&self) -> (u64, u64) {
        self.inner
            .lock()
            .map(|c| (c.dropped_messages, c.dropped_bytes))
            .unwrap_or((0, 0))
    }

    /// Logs one line with what was dropped, if anything was.
    pub(crate) fn report_dropped(&self) {
        let (messages, bytes) = self.dropped();
        if messages > 0 {
            tracing::warn!(target: "stellar::plugin", plugin = %self.plugin,
                "dropped {messages} log messages ({bytes} bytes) beyond the plugin's log cap of {} bytes",
                self.cap);
            if let Ok(mut counts) = self.inner.lock() {
                counts.dropped_messages = 0;
                counts.dropped_bytes = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_short_text_and_marks_long_text() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdef", 3), "abc… [3 more bytes cut]");
        // Never splits a character.
        assert_eq!(cut("ééé", 3), "é… [4 more bytes cut]");
        let long = "x".repeat(1 << 20);
        assert!(shown(&long).len() < MAX_SHOWN_BYTES + 64);
    }

    #[test]
    fn cpu_meter_charges_guest_time_only() {
        let ms = Duration::from_millis;
        let mut meter = CpuMeter::new(ms(100));
        meter.start_call();
        let t0 = Instant::now();
        meter.enter_guest(t0);
        meter.leave_guest(t0 + ms(30));
        // 10 s in a host call (sleeping, waiting on HTTP) is not charged.
        meter.enter_guest(t0 + ms(10_030));
        assert_eq!(meter.charged(t0 + ms(10_050)), ms(50));
        assert!(meter.on_tick(t0 + ms(10_100)).is_ok());
        let err = meter.on_tick(t0 + ms(10_101)).unwrap_err();
        assert_eq!(err.budget, ms(100));
        meter.leave_guest(t0 + ms(10_101));
        meter.start_call();
        assert_eq!(meter.charged(t0 + ms(20_000)), Duration::ZERO);
    }

    #[test]
    fn log_budget_writes_up_to_the_cap_then_counts_drops() {
        let budget = LogBudget::new("p", 10);
        assert_eq!(budget.admit(4), LogDecision::Write);
        assert_eq!(budget.admit(6), LogDecision::WriteThenCapReached);
        assert_eq!(budget.admit(5), LogDecision::Drop);
        assert_eq!(budget.admit(7), LogDecision::Drop);
        assert_eq!(budget.dropped(), (2, 12));
        // Shared between clones (instances of one plugin).
        assert_eq!(budget.clone().admit(1), LogDecision::Drop);
        assert_eq!(budget.dropped(), (3, 13));
    }
}
