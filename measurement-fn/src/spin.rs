//! The busy spin: the CPU work a request asks for.
//!
//! STeLLAR calibrates service time on the client as a count (`IncrementLimit`) and the function
//! loops that many times; that is only faithful on a CPU like the client's. `SpinMs` spins for a
//! wall-clock duration on the monotonic clock instead, so the service time is the same on every
//! provider. Both loops go through [`std::hint::black_box`] so the optimiser cannot remove them,
//! and neither yields the CPU (no sleeping, no `spin_loop` hint).

use std::hint::black_box;
use std::time::{Duration, Instant};

/// What a spin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpinOutcome {
    /// Monotonic time spent in both phases (time-based spin, then the increment loop).
    pub elapsed: Duration,
    /// Increment-loop iterations done (equals the requested count).
    pub increments: u64,
}

/// Spins for at least `spin_ms` milliseconds, then runs `increments` loop iterations.
/// `spin_ms` that is negative, NaN or too large for a [`Duration`] spins for zero time
/// ([`crate::Invocation`] parsing rejects such values before they get here).
#[must_use]
pub fn spin(spin_ms: f64, increments: u64) -> SpinOutcome {
    let target = Duration::try_from_secs_f64(spin_ms / 1000.0).unwrap_or(Duration::ZERO);
    let start = Instant::now();
    spin_for(start, target);
    let increments = increment_loop(increments);
    SpinOutcome {
        elapsed: start.elapsed(),
        increments,
    }
}

/// Burns CPU until `target` has elapsed since `start`.
fn spin_for(start: Instant, target: Duration) {
    let mut work: u64 = 0;
    while start.elapsed() < target {
        // A little work between clock reads, kept alive by black_box.
        for _ in 0..64 {
            work = black_box(work.wrapping_add(1));
        }
    }
    black_box(work);
}

/// STeLLAR's `for i := 0; i < incrementLimit; i++ {}`. Returns the iterations done.
fn increment_loop(limit: u64) -> u64 {
    let mut i: u64 = 0;
    while i < limit {
        i = black_box(i + 1);
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_ms_is_honoured() {
        let out = spin(20.0, 0);
        assert!(out.elapsed >= Duration::from_millis(20), "{out:?}");
        assert_eq!(out.increments, 0);
    }

    #[test]
    fn fractional_spin_ms_is_honoured() {
        let out = spin(1.5, 0);
        assert!(out.elapsed >= Duration::from_micros(1500), "{out:?}");
    }

    #[test]
    fn increments_loop_counts() {
        assert_eq!(spin(0.0, 0).increments, 0);
        assert_eq!(spin(0.0, 1).increments, 1);
        assert_eq!(spin(0.0, 1_000_000).increments, 1_000_000);
    }

    #[test]
    fn both_phases_run() {
        let out = spin(5.0, 10_000);
        assert!(out.elapsed >= Duration::from_millis(5), "{out:?}");
        assert_eq!(out.increments, 10_000);
    }

    #[test]
    fn invalid_spin_ms_spins_zero_time() {
        // No upper-bound timing assert: just that it returns and counts nothing.
        assert_eq!(spin(f64::NAN, 0).increments, 0);
        assert_eq!(spin(-5.0, 0).increments, 0);
    }
}
