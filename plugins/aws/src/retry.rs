//! Bounded retries and polling with exponential backoff, written against a [`Clock`] so the
//! logic runs natively in unit tests with a fake clock (the real one sleeps on wasi:clocks).

use std::time::{Duration, Instant};

/// Tries of one API request when AWS throttles or fails transiently (first try included).
pub(crate) const REQUEST_ATTEMPTS: u32 = 5;
/// First delay before retrying a throttled / transient request.
pub(crate) const REQUEST_FIRST_DELAY: Duration = Duration::from_millis(250);
/// Longest delay between two tries of a request.
pub(crate) const REQUEST_MAX_DELAY: Duration = Duration::from_secs(4);
/// Longest time spent waiting for a freshly created IAM role to become usable by Lambda.
pub(crate) const ROLE_PROPAGATION_BUDGET: Duration = Duration::from_secs(60);

/// Time as the retry logic sees it.
pub(crate) trait Clock {
    /// Monotonic time since some fixed start.
    fn now(&self) -> Duration;
    /// Blocks for `duration`.
    fn sleep(&mut self, duration: Duration);
}

/// The real clock: `Instant` (wasi monotonic clock) and the SDK's blocking sleep.
pub(crate) struct WasiClock {
    start: Instant,
}

impl WasiClock {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Clock for WasiClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&mut self, duration: Duration) {
        stellar_guest_sdk::sleep(duration);
    }
}

/// Delays that double from `first` up to `cap`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, cap: Duration) -> Self {
        Self {
            next: first.min(cap),
            cap,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.cap);
        delay
    }
}

/// How a bounded retry ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome<T, E> {
    pub(crate) result: Result<T, E>,
    pub(crate) attempts: u32,
    pub(crate) elapsed: Duration,
}

/// Calls `attempt` until it succeeds, fails with an error `again` rejects, or the limits
/// are reached: at most `max_attempts` tries, and no sleep reaching past `budget` (the last
/// sleep is shortened to end at the budget, then one final try is made).
pub(crate) fn retry<T, E>(
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A clock that only moves when slept on, recording the sleeps.
    #[derive(Debug, Default)]
    pub(crate) struct FakeClock {
        pub(crate) now: Duration,
        pub(crate) sleeps: Vec<Duration>,
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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
}
