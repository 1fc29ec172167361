//! Fault injection for stellar's own tests: make an instance crash, hang, reset the connection
//! or answer an error status, on request.
//!
//! Why: the driver must turn every kind of failure a cloud produces into a result row with the
//! right `Error Kind` and keep going, and the local runtime must replace instances that died.
//! Those paths are only trustworthy if tests can trigger each failure for real, in the real
//! function binary, behind the real gateway.
//!
//! **Off by default, and only on deliberately.** The knobs are read only when the process was
//! started with [`ENABLE_ENV`]`=1` (stellar's local runtime sets it when the experiment says
//! `Stellar.Local.FaultQuery`; no cloud deployment ever gets it). Without it the `Fault*` query
//! keys are ignored like any unknown key, so a stranger who can reach a deployed function
//! cannot crash or hang it.
//!
//! | query key | values | meaning |
//! | --- | --- | --- |
//! | `Fault` | `crash` | the process exits (code [`CRASH_EXIT_CODE`]) before replying |
//! | | `hang` | never reply (the caller's or the gateway's timeout ends the request) |
//! | | `reset` | abort the connection with a TCP reset before replying |
//! | | `status:<code>` | reply `<code>` (400-599) with `{"error":..}`; `429` adds `Retry-After: 1` |
//! | `FaultEvery` | u64 >= 1, default 1 | only every N-th request carrying `Fault` on this process faults (the others are served normally) |
//!
//! Process knob (environment, also only with [`ENABLE_ENV`]`=1`): [`READY_DELAY_ENV`]`=<ms>`
//! delays the `STELLAR-READY` line, i.e. a slow cold start.
//!
//! This module is the core (parsing and the every-N decision); entry points apply the action
//! (see [`crate::http`]). The Lambda entry point has no fault knobs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{Error, Result};

/// Set to `1` in the function's environment to enable the knobs.
pub const ENABLE_ENV: &str = "STELLAR_FAULTS";
/// Milliseconds to wait before announcing READY (slow start).
pub const READY_DELAY_ENV: &str = "STELLAR_FAULT_READY_DELAY_MS";
/// Exit code of an injected crash.
pub const CRASH_EXIT_CODE: i32 = 70;
/// `Retry-After` sent with an injected 429.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The query keys.
pub mod keys {
    /// What to do: `crash`, `hang`, `reset`, `status:<code>`.
    pub const FAULT: &str = "Fault";
    /// Fault only every N-th request carrying `Fault`.
    pub const FAULT_EVERY: &str = "FaultEvery";
}

const EXPECTED_FAULT: &str = "one of crash, hang, reset, status:<400-599>";
const EXPECTED_EVERY: &str = "an integer >= 1";

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Exit the process before replying.
    Crash,
    /// Never reply.
    Hang,
    /// Abort the connection (TCP RST) before replying.
    Reset,
    /// Reply with this status (400-599).
    Status(u16),
}

impl Fault {
    fn parse(value: &str) -> Result<Self> {
        let bad = || Error::InvalidParameter {
            key: keys::FAULT,
            expected: EXPECTED_FAULT,
            value: value.to_owned(),
        };
        match value {
            "crash" => Ok(Self::Crash),
            "hang" => Ok(Self::Hang),
            "reset" => Ok(Self::Reset),
            other => {
                let code: u16 = other
                    .strip_prefix("status:")
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(bad)?;
                if (400..=599).contains(&code) {
                    Ok(Self::Status(code))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// What a request asked for: a fault and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRequest {
    /// The fault.
    pub fault: Fault,
    /// Every N-th request carrying `Fault` faults (1 = every one).
    pub every: u64,
}

impl FaultRequest {
    /// Reads `Fault` and `FaultEvery` from a raw query string (first occurrence wins). `None`
    /// when there is no `Fault` key.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a malformed value.
    pub fn from_query(query: &str) -> Result<Option<Self>> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut fault = None;
        let mut every = None;
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                keys::FAULT if fault.is_none() => fault = Some(Fault::parse(value)?),
                keys::FAULT_EVERY if every.is_none() => {
                    every = Some(value.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(
                        || Error::InvalidParameter {
                            key: keys::FAULT_EVERY,
                            expected: EXPECTED_EVERY,
                            value: value.to_owned(),
                        },
                    )?);
                }
                _ => {}
            }
        }
        Ok(fault.map(|fault| Self {
            fault,
            every: every.unwrap_or(1),
        }))
    }

    /// Whether the `seq`-th (1-based) request carrying `Fault` faults.
    #[must_use]
    pub fn applies_to(&self, seq: u64) -> bool {
        seq.is_multiple_of(self.every)
    }
}

/// Whether the knobs are enabled (`STELLAR_FAULTS=1`).
pub fn enabled(env: impl Fn(&str) -> Option<String>) -> bool {
    env(ENABLE_ENV).as_deref() == Some("1")
}

/// The READY delay, when the knobs are enabled and [`READY_DELAY_ENV`] is set.
///
/// # Errors
/// [`Error::InvalidEnv`] if it is set but not a number of milliseconds.
pub fn ready_delay(env: impl Fn(&str) -> Option<String>) -> Result<Option<Duration>> {
    if !enabled(&env) {
        return Ok(None);
    }
    match env(READY_DELAY_ENV).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse::<u64>()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| Error::InvalidEnv {
                var: READY_DELAY_ENV,
                expected: "milliseconds (an unsigned integer)",
                value,
            }),
    }
}

/// The process's count of requests that carried `Fault`.
static FAULT_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The fault to inject for a request with this query, if any: parses the knobs and counts the
/// request towards `FaultEvery`. Call only when [`enabled`].
///
/// # Errors
/// [`Error::InvalidParameter`] for a malformed `Fault` or `FaultEvery`.
pub fn for_request(query: &str) -> Result<Option<Fault>> {
    let Some(request) = FaultRequest::from_query(query)? else {
        return Ok(None);
    };
    let seq = FAULT_REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(request.applies_to(seq).then_some(request.fault))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault() {
        let f = |q| FaultRequest::from_query(q).unwrap().map(|r| r.fault);
        assert_eq!(f("Fault=crash"), Some(Fault::Crash));
        assert_eq!(f("?SpinMs=1&Fault=hang"), Some(Fault::Hang));
        assert_eq!(f("Fault=reset&Fault=crash"), Some(Fault::Reset));
        assert_eq!(f("Fault=status:503"), Some(Fault::Status(503)));
        assert_eq!(f("Fault=status:429"), Some(Fault::Status(429)));
        assert_eq!(f("SpinMs=1"), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn bad_values_name_the_key() {
        for q in [
            "Fault=boom",
            "Fault=status:200",
            "Fault=status:600",
            "Fault=status:",
        ] {
            let err = FaultRequest::from_query(q).unwrap_err().to_string();
            assert!(err.contains("`Fault`"), "{q}: {err}");
        }
        for q in ["Fault=crash&FaultEvery=0", "Fault=crash&FaultEvery=x"] {
            let err = FaultRequest::from_query(q).unwrap_err().to_string();
            assert!(err.contains("`FaultEvery`"), "{q}: {err}");
        }
    }

    #[test]
    fn every_nth_request_faults() {
        let r = FaultRequest::from_query("Fault=crash&FaultEvery=3")
            .unwrap()
            .unwrap();
        let hits: Vec<u64> = (1..=9).filter(|s| r.applies_to(*s)).collect();
        assert_eq!(hits, [3, 6, 9]);
        let r = FaultRequest::from_query("Fault=crash").unwrap().unwrap();
        assert!((1..=5).all(|s| r.applies_to(s)));
    }

    #[test]
    fn knobs_need_the_env_var() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(pk, _)| *pk == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(!enabled(env(&[])));
        assert!(!enabled(env(&[(ENABLE_ENV, "true")])));
        assert!(enabled(env(&[(ENABLE_ENV, "1")])));
        assert_eq!(ready_delay(env(&[(READY_DELAY_ENV, "250")])).unwrap(), None);
        assert_eq!(
            ready_delay(env(&[(ENABLE_ENV, "1"), (READY_DELAY_ENV, "250")])).unwrap(),
            Some(Duration::from_millis(250))
        );
        assert!(ready_delay(env(&[(ENABLE_ENV, "1"), (READY_DELAY_ENV, "x")])).is_err());
    }
}
