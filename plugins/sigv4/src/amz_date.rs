//! The signing timestamp, computed from unix seconds without a date library.
//!
//! SigV4 needs the instant twice: as `YYYYMMDD'T'HHMMSS'Z'` in the `x-amz-date` header and as
//! `YYYYMMDD` in the credential scope. The signer never reads a clock (a wasm guest may not have
//! one, and tests need fixed instants), so the caller passes unix seconds and this module does
//! the civil-calendar arithmetic itself rather than pulling in chrono for one conversion.

/// `9999-12-31T23:59:59Z`, the last instant the fixed-width SigV4 format can spell.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

const SECONDS_PER_DAY: u64 = 86_400;

/// A UTC instant formatted the way SigV4 spells it.
///
/// Built only from unix seconds, so it is always well formed: instants after the year 9999
/// saturate to `99991231T235959Z` instead of growing a fifth year digit (AWS would reject the
/// request for clock skew either way; the point is that no input can make it panic or produce
/// a malformed date).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AmzDate {
    date_time: String,
    date: String,
}

impl AmzDate {
    /// The UTC instant `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_seconds(secs: u64) -> Self {
        let secs = secs.min(MAX_UNIX_SECONDS);
        let (year, month, day) = civil_from_days(secs / SECONDS_PER_DAY);
        let in_day = secs % SECONDS_PER_DAY;
        let (hour, minute, second) = (in_day / 3600, in_day % 3600 / 60, in_day % 60);
        let date = format!("{year:04}{month:02}{day:02}");
        let date_time = format!("{date}T{hour:02}{minute:02}{second:02}Z");
        Self { date_time, date }
    }

    /// The `x-amz-date` form, e.g. `20150830T123600Z`.
    pub fn date_time(&self) -> &str {
        &self.date_time
    }

    /// The credential-scope form, e.g. `20150830`.
    pub fn date(&self) -> &str {
        &self.date
    }
}

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`, restricted to non-negative day counts so it can stay in
/// unsigned arithmetic: eras are 400-year blocks of 146 097 days starting on 0000-03-01, which
/// puts the leap day at the end of each (March-based) year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::AmzDate;

    fn at(secs: u64) -> (String, String) {
        let d = AmzDate::from_unix_seconds(secs);
        (d.date_time().to_owned(), d.date().to_owned())
    }

    // Expected unix seconds were computed independently with Python's `calendar.timegm`.

    #[test]
    fn the_epoch_is_1970_01_01() {
        assert_eq!(at(0), ("19700101T000000Z".into(), "19700101".into()));
    }

    #[test]
    fn the_suite_instant_is_2015_08_30_12_36() {
        assert_eq!(
            at(1_440_938_160),
            ("20150830T123600Z".into(), "20150830".into())
        );
    }

    #[test]
    fn leap_days_exist_in_leap_years() {
        assert_eq!(at(68_169_600).0, "19720229T000000Z");
        assert_eq!(at(951_782_400).0, "20000229T000000Z"); // divisible by 400: leap
        assert_eq!(at(1_456_704_000).0, "20160229T000000Z");
    }

    #[test]
    fn a_century_not_divisible_by_400_has_no_leap_day() {
        assert_eq!(at(4_107_542_399).0, "21000228T235959Z");
        assert_eq!(at(4_107_542_400).0, "21000301T000000Z");
    }

    #[test]
    fn the_last_second_of_a_year_rolls_over() {
        assert_eq!(at(1_735_689_599).0, "20241231T235959Z");
        assert_eq!(at(1_735_689_600).0, "20250101T000000Z");
    }

    #[test]
    fn instants_past_year_9999_saturate() {
        assert_eq!(at(253_402_300_799).0, "99991231T235959Z");
        assert_eq!(at(253_402_300_800).0, "99991231T235959Z");
        assert_eq!(at(u64::MAX).0, "99991231T235959Z");
    }

    #[test]
    fn every_instant_has_the_fixed_width_shape() {
        for secs in (0..400 * 366 * 86_400_u64).step_by(7_919_993) {
            let d = AmzDate::from_unix_seconds(secs);
            assert_eq!(d.date_time().len(), 16, "{secs}");
            assert!(d.date_time().starts_with(d.date()), "{secs}");
        }
    }
}
