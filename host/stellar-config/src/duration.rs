//! A parser for Go's `time.ParseDuration` syntax, used by `DesiredServiceTimes`.
//!
//! Why: STeLLAR's experiment files write service times as Go duration strings (`"0ms"`,
//! `"500ms"`, `"1.5s"`, `"1m30s"`), so stellar must accept exactly that syntax. The parser
//! follows Go's algorithm (integer nanoseconds, decimal fractions, concatenated components,
//! units `ns`, `us`, `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`, a bare `"0"`, an optional
//! sign, a maximum of 2^63−1 ns) with one difference: negative durations are rejected, because a
//! service time cannot be negative (`"-0s"` is still zero and accepted).

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {kind}")]
pub struct DurationError {
    /// The rejected input.
    pub input: String,
    /// What is wrong with it.
    pub kind: DurationErrorKind,
}

/// The reason a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationErrorKind {
    /// Not of the form `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` (or the bare `"0"`).
    Syntax,
    /// A number without a unit, e.g. `"10"`.
    MissingUnit,
    /// A unit Go does not know, e.g. `"10sec"` or `"10 ms"` (unit `" ms"`).
    UnknownUnit(String),
    /// More than 2^63−1 nanoseconds (about 292 years).
    OutOfRange,
    /// A negative duration.
    Negative,
}

impl fmt::Display for DurationErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax => f.write_str("not a number followed by a unit"),
            Self::MissingUnit => f.write_str("missing unit"),
            Self::UnknownUnit(unit) => write!(f, "unknown unit {unit:?}"),
            Self::OutOfRange => f.write_str("out of range (at most 2^63-1 ns)"),
            Self::Negative => f.write_str("negative durations are not allowed"),
        }
    }
}

const MAX_NANOS: u64 = 1 << 63;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration string (`time.ParseDuration` syntax) into a [`Duration`].
///
/// ```
/// # use std::time::Duration;
/// # use stellar_config::parse_go_duration;
/// assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_go_duration("100us"), Ok(Duration::from_micros(100)));
/// assert!(parse_go_duration("10").is_err()); // a unit is required (except for "0")
/// ```
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |kind| DurationError {
        input: input.to_owned(),
        kind,
    };
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(fail(DurationErrorKind::Syntax));
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(fail(DurationErrorKind::Syntax));
        }
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        s = rest;
        let mut value: u64 = 0;
        for digit in int_digits.bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .filter(|v| *v <= MAX_NANOS)
                .ok_or_else(|| fail(DurationErrorKind::OutOfRange))?;
        }
        // Fraction: digits past what fits are dropped, as Go does.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (frac_digits, rest) = rest.split_at(frac_len);
            s = rest;
            let mut overflow = false;
            for digit in frac_digits.bytes() {
                if overflow {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                    .filter(|v| *v <= MAX_NANOS)
                {
                    Some(next) => {
                        fraction = next;
                        scale *= 10.0;
                    }
                    None => overflow = true,
                }
            }
        }
        if int_len == 0 && frac_len == 0 {
            return Err(fail(DurationErrorKind::Syntax));
        }
        // Unit: everything up to the next digit or '.'.
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(fail(DurationErrorKind::MissingUnit));
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let unit = unit_nanos(unit)
            .ok_or_else(|| fail(DurationErrorKind::UnknownUnit(unit.to_owned())))?;
        let mut component = value
            .checked_mul(unit)
            .filter(|v| *v <= MAX_NANOS)
            .ok_or_else(|| fail(DurationErrorKind::OutOfRange))?;
        if fraction > 0 {
            // Go's `uint64(float64(f) * (float64(unit) / scale))`; the cast saturates and the
            // sum is range-checked below.
            let extra = (fraction as f64 * (unit as f64 / scale)) as u64;
            component = component
                .checked_add(extra)
                .filter(|v| *v <= MAX_NANOS)
                .ok_or_else(|| fail(DurationErrorKind::OutOfRange))?;
        }
        total = total
            .checked_add(component)
            .filter(|v| *v <= MAX_NANOS)
            .ok_or_else(|| fail(DurationErrorKind::OutOfRange))?;
    }
    if negative && total > 0 {
        return Err(fail(DurationErrorKind::Negative));
    }
    if total > MAX_NANOS - 1 {
        return Err(fail(DurationErrorKind::OutOfRange));
    }
    Ok(Duration::from_nanos(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Duration {
        parse_go_duration(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn kind(s: &str) -> DurationErrorKind {
        parse_go_duration(s).expect_err("should be rejected").kind
    }

    #[test]
    fn accepts_stellar_style_service_times() {
        assert_eq!(ok("0ms"), Duration::ZERO);
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1000ms"), Duration::from_secs(1));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("100us"), Duration::from_micros(100));
        assert_eq!(ok("100µs"), Duration::from_micros(100));
        assert_eq!(ok("100μs"), Duration::from_micros(100));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
    }

    #[test]
    fn accepts_go_corner_cases() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h2m3s4ms5us6ns"), Duration::new(3723, 4_005_006));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("5.s"), Duration::from_secs(5));
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("-0s"), Duration::ZERO);
        assert_eq!(ok("1.000000001s"), Duration::new(1, 1));
        // Go's maximum.
        assert_eq!(
            ok("9223372036854775807ns"),
            Duration::from_nanos(i64::MAX as u64)
        );
        // Extra fraction digits are dropped, not an error.
        assert_eq!(
            ok("0.100000000000000000000000001s"),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(kind(""), DurationErrorKind::Syntax);
        assert_eq!(kind("-"), DurationErrorKind::Syntax);
        assert_eq!(kind("ms"), DurationErrorKind::Syntax);
        assert_eq!(kind(".s"), DurationErrorKind::Syntax);
        assert_eq!(kind("1s "), DurationErrorKind::UnknownUnit("s ".into()));
        assert_eq!(kind("10"), DurationErrorKind::MissingUnit);
        assert_eq!(kind("1s2"), DurationErrorKind::MissingUnit);
        assert_eq!(kind("10sec"), DurationErrorKind::UnknownUnit("sec".into()));
        assert_eq!(kind("10 ms"), DurationErrorKind::UnknownUnit(" ms".into()));
        assert_eq!(kind("10MS"), DurationErrorKind::UnknownUnit("MS".into()));
        assert_eq!(kind("9223372036854775808ns"), DurationErrorKind::OutOfRange);
        assert_eq!(kind("3000000h"), DurationErrorKind::OutOfRange);
        assert_eq!(kind("99999999999999999999s"), DurationErrorKind::OutOfRange);
    }

    #[test]
    fn rejects_negative_durations() {
        assert_eq!(kind("-1s"), DurationErrorKind::Negative);
        let err = parse_go_duration("-5ms").expect_err("negative");
        assert_eq!(
            err.to_string(),
            "invalid duration \"-5ms\": negative durations are not allowed"
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn whole_milliseconds_round_trip(ms in 0u64..10_000_000) {
            prop_assert_eq!(parse_go_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
        }

        #[test]
        fn components_add_up(m in 0u64..1000, s in 0u64..60, ms in 0u64..1000) {
            prop_assert_eq!(
                parse_go_duration(&format!("{m}m{s}s{ms}ms")),
                Ok(Duration::from_millis(m * 60_000 + s * 1000 + ms))
            );
        }
    }
}
