//! Bounded retries with exponential backoff, for every adapter: clouds throttle, fail
//! transiently, and take a while to propagate what was just created. Written against a
//! [`Clock`] so an adapter's retry and polling logic runs natively in unit tests with
//! [`FakeClock`]; [`WasiClock`] is the real one (wasi:clocks, and [`crate::sleep`]).
//!
//! ```ignore
//! use stellar_guest_sdk::retry::{Backoff, WasiClock, retry};
//! let outcome = retry(
//!     &mut WasiClock::new(),
//!     Backoff::new(Duration::from_millis(250), Duration::from_secs(4)),
//!     5,                          // tries, the first included
//!     Duration::from_secs(60),    // never sleep past this
//!     || send_the_request(),
//!     |e| matches!(e, ProviderError::Throttled(_) | ProviderError::Transient(_)),
//! );
//! ```

use std::time::{Duration, Instant};

use crate::errors::CodedError;

/// Time as the retry logic sees it.
pub trait Clock {
    /// Monotonic time since some fixed start.
    fn now(&self) -> Duration;
    /// Blocks for `duration`.
    fn sleep(&mut self, duration: Duration);
}

/// The real clock: `Instant` (wasi monotonic clock) and the SDK's blocking sleep.
#[derive(Debug)]
pub struct WasiClock {
    start: Instant,
}

impl WasiClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for WasiClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for WasiClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&mut self, duration: Duration) {
        crate::sleep(duration);
    }
}

/// Delays that double from `first` up to `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self {
            next: first.min(cap),
            cap,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.cap);
        delay
    }
}

/// How a bounded retry ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome<T, E> {
    pub result: Result<T, E>,
    pub attempts: u32,
    pub elapsed: Duration,
}

/// Calls `attempt` until it succeeds, fails with an error `again` rejects, or the limits
/// are reached: at most `max_attempts` tries, and no sleep reaching past `budget` (the last
/// sleep is shortened to end at the budget, then one final try is made).
pub fn retry<T, E>(
    clock: &mut dyn Clock,
    mut backoff: Backoff,
    max_attempts: u32,
    budget: Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
    mut again: impl FnMut(&E) -> bool,
) -> Outcome<T, E> {
    let start = clock.now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = attempt();
        let elapsed = clock.now().saturating_sub(start);
        let retry = match &result {
            Ok(_) => false,
            Err(e) => attempts < max_attempts && elapsed < budget && again(e),
        };
        if !retry {
            return Outcome {
                result,
                attempts,
                elapsed,
            };
        }
        clock.sleep(backoff.next_delay().min(budget - elapsed));
    }
}

/// Tries of one cloud API request when the cloud throttles or fails transiently (first try
/// included), for [`retry_request`].
pub const REQUEST_ATTEMPTS: u32 = 5;
/// First delay before retrying a throttled or transient request.
pub const REQUEST_FIRST_DELAY: Duration = Duration::from_millis(250);
/// Longest delay between two tries of a request.
pub const REQUEST_MAX_DELAY: Duration = Duration::from_secs(4);
/// Longest time spent retrying one request.
pub const REQUEST_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// Sends one cloud API request with the adapters' common policy: `attempt` builds, signs and
/// sends a fresh request each time (signatures carry the time, some a nonce); throttled and
/// transient failures are retried with exponential backoff within [`REQUEST_ATTEMPTS`] and
/// [`REQUEST_RETRY_BUDGET`], each retry logged as a warning that starts with `shown` (the
/// request line, never a credential).
pub fn retry_request<T>(
    shown: &str,
    attempt: impl FnMut() -> Result<T, CodedError>,
) -> Result<T, CodedError> {
    retry_request_on(&mut WasiClock::new(), shown, attempt, crate::log::warn)
}

/// [`retry_request`] on any clock, reporting retries to `warn`.
fn retry_request_on<T>(
    clock: &mut dyn Clock,
    shown: &str,
    attempt: impl FnMut() -> Result<T, CodedError>,
    mut warn: impl FnMut(String),
) -> Result<T, CodedError> {
    retry(
        clock,
        Backoff::new(REQUEST_FIRST_DELAY, REQUEST_MAX_DELAY),
        REQUEST_ATTEMPTS,
        REQUEST_RETRY_BUDGET,
        attempt,
        |e| {
            let again = e.is_retryable();
            if again {
                warn(format!("{shown}: {}; retrying", e.message));
            }
            again
        },
    )
    .result
}

/// What one check of a long-running operation saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll<T> {
    /// Finished; polling stops with this value.
    Done(T),
    /// Not finished; the status seen (for the timeout message).
    Pending(String),
}

/// A wait that ran out of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// The status the last check saw.
    pub last_status: String,
    /// How long the wait lasted.
    pub waited: Duration,
}

/// Checks a long-running operation until `check` says it is done, fails (an `Err` from
/// `check` ends the wait at once), or `timeout` passes. The first check happens at once;
/// later ones are spaced by `backoff`, and no sleep reaches past `timeout` (the last one is
/// shortened, then one final check is made). Every adapter's "wait until Active / until the
/// operation is done" goes through here.
pub fn poll<T, E>(
    clock: &mut dyn Clock,
    mut backoff: Backoff,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Poll<T>, E>,
) -> Result<Result<T, TimedOut>, E> {
    let start = clock.now();
    loop {
        let status = match check()? {
            Poll::Done(value) => return Ok(Ok(value)),
            Poll::Pending(status) => status,
        };
        let waited = clock.now().saturating_sub(start);
        if waited >= timeout {
            return Ok(Err(TimedOut {
                last_status: status,
                waited,
            }));
        }
        clock.sleep(backoff.next_delay().min(timeout - waited));
    }
}

/// A clock for native unit tests: it only moves when slept on, and records the sleeps.
#[derive(Debug, Default)]
pub struct FakeClock {
    pub now: Duration,
    pub sleeps: Vec<Duration>,
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        self.now
    }
    fn sleep(&mut self, duration: Duration) {
        self.now += duration;
        self.sleeps.push(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn request_policy_retries_throttling_and_stops_on_final_errors() {
        use crate::ProviderError;
        let throttled = CodedError {
            code: "TooManyRequests".into(),
            message: "slow down".into(),
            error: ProviderError::Throttled("slow down".into()),
        };
        let mut clock = FakeClock::default();
        let mut warnings = Vec::new();
        let mut left = 2;
        let out = retry_request_on(
            &mut clock,
            "POST /fns",
            || {
                if left == 0 {
                    return Ok("created");
                }
                left -= 1;
                Err(throttled.clone())
            },
            |w| warnings.push(w),
        );
        assert_eq!(out, Ok("created"));
        assert_eq!(clock.sleeps, vec![ms(250), ms(500)]);
        assert_eq!(warnings, vec!["POST /fns: slow down; retrying"; 2]);

        let invalid = CodedError::local(ProviderError::Invalid("bad name".into()));
        let mut tries = 0;
        let out: Result<(), _> = retry_request_on(
            &mut FakeClock::default(),
            "POST /fns",
            || {
                tries += 1;
                Err(invalid.clone())
            },
            |_| panic!("a final error is not retried"),
        );
        assert_eq!(out, Err(invalid));
        assert_eq!(tries, 1);

        let mut tries = 0;
        let out: Result<(), _> = retry_request_on(
            &mut FakeClock::default(),
            "GET /fns",
            || {
                tries += 1;
                Err(throttled.clone())
            },
            |_| {},
        );
        assert!(out.is_err());
        assert_eq!(tries, REQUEST_ATTEMPTS);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(ms(250), ms(1000));
        let got: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(got, vec![ms(250), ms(500), ms(1000), ms(1000), ms(1000)]);
    }

    #[test]
    fn retries_until_success() {
        let mut clock = FakeClock::default();
        let mut left = 2;
        let out = retry(
            &mut clock,
            Backoff::new(ms(100), ms(1000)),
            5,
            Duration::from_secs(60),
            || {
                if left == 0 {
                    Ok("done")
                } else {
                    left -= 1;
                    Err("busy")
                }
            },
            |_| true,
        );
        assert_eq!(out.result, Ok("done"));
        assert_eq!(out.attempts, 3);
        assert_eq!(clock.sleeps, vec![ms(100), ms(200)]);
    }

    #[test]
    fn stops_at_max_attempts_and_on_final_errors() {
        let mut clock = FakeClock::default();
        let out: Outcome<(), &str> = retry(
            &mut clock,
            Backoff::new(ms(100), ms(150)),
            4,
            Duration::from_secs(60),
            || Err("busy"),
            |_| true,
        );
        assert_eq!(out.attempts, 4);
        assert_eq!(clock.sleeps, vec![ms(100), ms(150), ms(150)]);

        let mut clock = FakeClock::default();
        let out: Outcome<(), &str> = retry(
            &mut clock,
            Backoff::new(ms(100), ms(150)),
            4,
            Duration::from_secs(60),
            || Err("fatal"),
            |e| *e != "fatal",
        );
        assert_eq!(out.attempts, 1);
        assert!(clock.sleeps.is_empty());
    }

    #[test]
    fn never_sleeps_past_the_budget() {
        let mut clock = FakeClock::default();
        let out: Outcome<(), &str> = retry(
            &mut clock,
            Backoff::new(Duration::from_secs(1), Duration::from_secs(8)),
            u32::MAX,
            Duration::from_millis(2500),
            || Err("role not ready"),
            |_| true,
        );
        assert_eq!(clock.sleeps, vec![ms(1000), ms(1500)]);
        assert_eq!(out.attempts, 3);
        assert_eq!(out.elapsed, ms(2500));
    }

    #[test]
    fn poll_checks_at_once_then_backs_off_until_done() {
        let mut clock = FakeClock::default();
        let mut answers = vec![Poll::Pending("Pending".into()); 3];
        answers.push(Poll::Done(7));
        let mut answers = answers.into_iter();
        let got: Result<_, ()> = poll(
            &mut clock,
            Backoff::new(ms(100), ms(300)),
            ms(10_000),
            || Ok(answers.next().unwrap()),
        );
        assert_eq!(got, Ok(Ok(7)));
        assert_eq!(clock.sleeps, vec![ms(100), ms(200), ms(300)]);
    }

    #[test]
    fn poll_stops_at_the_timeout_with_the_last_status() {
        let mut clock = FakeClock::default();
        let mut n = 0;
        let got: Result<Result<(), _>, ()> =
            poll(&mut clock, Backoff::new(ms(400), ms(400)), ms(1000), || {
                n += 1;
                Ok(Poll::Pending(format!("check {n}")))
            });
        let timed_out = got.unwrap().unwrap_err();
        assert_eq!(timed_out.last_status, "check 4");
        assert_eq!(timed_out.waited, ms(1000));
        // The last sleep is shortened so the final check lands on the timeout.
        assert_eq!(clock.sleeps, vec![ms(400), ms(400), ms(200)]);
    }

    #[test]
    fn poll_ends_at_the_first_error() {
        let mut clock = FakeClock::default();
        let got: Result<Result<(), TimedOut>, &str> =
            poll(&mut clock, Backoff::new(ms(1), ms(1)), ms(1000), || {
                Err("Failed")
            });
        assert_eq!(got, Err("Failed"));
        assert!(clock.sleeps.is_empty());
    }
}
