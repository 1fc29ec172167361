//! The start barrier: one absolute wall-clock start `T0` for every shard.
//!
//! A broadcast "go" turns its own latency into start skew (k6-operator releases runners one
//! curl after another; Artillery polls object storage every 2 s). An absolute `T0` needs no
//! message at all: each shard reads its wall clock once, maps `T0` onto its monotonic clock,
//! and from then on waits and measures with the monotonic clock only. The error left between
//! shards is the difference between their wall clocks ([`super::clock`]).
//!
//! A shard that is not ready to send by `T0 + grace` sends nothing and exits with
//! [`MISSED_START_EXIT_CODE`]: firing its part late would put requests off the schedule the
//! other shards keep, and a retried shard must never fire late either.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Exit code of a shard that was not ready by `T0 + grace` and sent nothing.
pub const MISSED_START_EXIT_CODE: i32 = 3;
/// Exit code of a shard that refused to start because its clock is not trustworthy.
pub const CLOCK_REFUSED_EXIT_CODE: i32 = 4;

/// `--start-at`: an RFC 3339 time (`2026-05-01T12:00:00Z`, fractions allowed), `now`, or
/// `now+DURATION` (`now+5s`), read as a wall-clock time.
pub fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(SystemTime::now());
    }
    if let Some(after) = text.strip_prefix("now+") {
        let d = humantime::parse_duration(after).map_err(|e| {
            format!("--start-at {text:?}: {e} (expected now+DURATION, e.g. now+5s)")
        })?;
        return Ok(SystemTime::now() + d);
    }
    humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!(
            "--start-at {text:?}: {e}; expected an RFC 3339 UTC time such as \
             2026-05-01T12:00:00Z, `now` or `now+5s`"
        )
    })
}

/// `T0` mapped onto this process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    /// The monotonic instant of `T0`.
    pub instant: Instant,
    /// `T0` itself (wall clock).
    pub wall: SystemTime,
}

impl Anchor {
    /// Maps `t0` onto the monotonic clock from one reading of both clocks. `T0` may lie in
    /// the past (then the instant is in the past too, when the platform allows it).
    pub fn at(t0: SystemTime) -> Self {
        let (now_instant, now_wall) = (Instant::now(), SystemTime::now());
        let instant = match t0.duration_since(now_wall) {
            Ok(ahead) => now_instant + ahead,
            Err(behind) => now_instant
                .checked_sub(behind.duration())
                .unwrap_or(now_instant),
        };
        Self { instant, wall: t0 }
    }

    /// `Err` with how late this shard is, when it is past `T0 + grace` already.
    pub fn check_ready(&self, grace: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        let deadline = self.instant + grace;
        if now > deadline {
            Err(now - self.instant)
        } else {
            Ok(())
        }
    }

    /// Milliseconds since the Unix epoch of `T0`.
    pub fn unix_ms(&self) -> f64 {
        self.wall
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }
}

/// RFC 3339 (UTC, milliseconds) of a wall-clock time.
pub fn rfc3339(t: SystemTime) -> String {
    stellar_results::row::rfc3339_millis(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_parse_or_name_what_is_expected() {
        let t = parse_start_at("2026-05-01T12:00:00.250Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_millis(),
            1_777_636_800_250
        );
        let soon = parse_start_at("now+2s").unwrap();
        assert!(soon > SystemTime::now() + Duration::from_secs(1));
        let err = parse_start_at("tomorrow").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn a_past_start_beyond_the_grace_is_missed() {
        let anchor = Anchor::at(SystemTime::now() - Duration::from_secs(3));
        let late = anchor.check_ready(Duration::from_secs(1)).unwrap_err();
        assert!(late >= Duration::from_secs(3), "{late:?}");
        let ahead = Anchor::at(SystemTime::now() + Duration::from_secs(3));
        assert!(ahead.check_ready(Duration::ZERO).is_ok());
    }
}
