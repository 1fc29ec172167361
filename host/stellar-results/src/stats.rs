//! Summary statistics of latency samples, and `statistics.csv`.
//!
//! These are pure functions over `&[f64]` so they can be property-tested and re-run on a CSV
//! read back from disk.
//!
//! # Percentile method
//!
//! A percentile is the **inverse of the empirical CDF** ("nearest rank", no interpolation): for
//! `0 <= p <= 1` over `n` sorted samples `x[1] <= ... <= x[n]`, the `p`-quantile is `x[k]` for
//! the smallest `k` with `k >= p * n` (and `k >= 1`), i.e. the smallest sample `x` with
//! `ECDF(x) >= p`. It is always a member of the sample. This is exactly gonum's
//! `stat.Quantile(p, stat.Empirical, x, nil)`, which Go STeLLAR used, so numbers stay
//! comparable with STeLLAR's `statistics.csv`. Example: for `1..=100`, p50 = 50, p95 = 95,
//! p99 = 99.

use std::path::Path;

use serde::Serialize;

use crate::error::{Result, ResultsError};
use crate::record::LatencyRecord;

/// The header of `statistics.csv`: STeLLAR's columns first, then ours.
pub const STATISTICS_HEADERS: [&str; 11] = [
    "Count",
    "Mean",
    "Standard Deviation",
    "Min",
    "25%ile",
    "50%ile",
    "75%ile",
    "95%ile",
    "Max",
    "99%ile",
    "Subset",
];

/// Descriptive statistics of one sample (latencies in ms).
///
/// For an empty sample `count` is 0 and every other field is NaN (written as an empty field in
/// `statistics.csv`, `null` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of samples used (non-finite inputs are ignored).
    pub count: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divides by `n - 1`); 0 when there are fewer than two samples.
    pub std_dev: f64,
    /// Smallest sample.
    pub min: f64,
    /// 25th percentile (see the module doc for the method).
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Summary {
    /// The summary of an empty sample: count 0, every statistic NaN.
    pub const EMPTY: Self = Self {
        count: 0,
        mean: f64::NAN,
        std_dev: f64::NAN,
        min: f64::NAN,
        p25: f64::NAN,
        p50: f64::NAN,
        p75: f64::NAN,
        p95: f64::NAN,
        p99: f64::NAN,
        max: f64::NAN,
    };

    /// Summarises `samples`. NaN and infinite values are ignored (they cannot be latencies).
    pub fn from_samples(samples: &[f64]) -> Self {
        let sorted = sorted_finite(samples);
        Self::from_sorted(&sorted)
    }

    /// Summarises an already sorted, all-finite sample (as returned by [`sorted_finite`]).
    pub(crate) fn from_sorted(sorted: &[f64]) -> Self {
        let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
            return Self::EMPTY;
        };
        let n = sorted.len() as f64;
        // Two-pass mean and variance; rounding can push a mean of near-equal values just
        // outside [min, max], so clamp it back (the true mean is always inside).
        let mean = (sorted.iter().sum::<f64>() / n).clamp(min, max);
        let std_dev = if sorted.len() < 2 {
            0.0
        } else {
            let ss: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1.0)).sqrt()
        };
        let q = |p| quantile_sorted(sorted, p).unwrap_or(f64::NAN);
        Self {
            count: sorted.len() as u64,
            mean,
            std_dev,
            min,
            p25: q(0.25),
            p50: q(0.50),
            p75: q(0.75),
            p95: q(0.95),
            p99: q(0.99),
            max,
        }
    }
}

/// Returns the finite values of `samples`, sorted ascending.
pub fn sorted_finite(samples: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The `p`-quantile of `samples` by the inverse empirical CDF (see the module doc).
///
/// Returns `None` for an empty sample (after dropping non-finite values) or a `p` outside
/// `[0, 1]`.
pub fn quantile(samples: &[f64], p: f64) -> Option<f64> {
    quantile_sorted(&sorted_finite(samples), p)
}

/// [`quantile`] over a sample that is already sorted ascending.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&p) || sorted.is_empty() {
        return None;
    }
    // gonum: walk the cumulative count and stop at the first `cumsum >= p * n`.
    let target = p * sorted.len() as f64;
    let rank = (target.ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// Which requests a `statistics.csv` row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subset {
    /// Every successful request.
    All,
    /// Successful requests served by a cold instance (`cold == Some(true)`).
    Cold,
    /// Successful requests served by a warm instance (`cold == Some(false)`).
    Warm,
}

impl Subset {
    /// The subsets, in the order their rows are written.
    pub const ALL: [Self; 3] = [Self::All, Self::Cold, Self::Warm];

    /// The value of the `Subset` column (also the plot legend label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Cold => "cold",
            Self::Warm => "warm",
        }
    }

    /// Whether `row` (assumed successful) belongs to this subset. Rows whose cold flag is
    /// unknown belong to `All` only.
    pub fn contains(self, row: &impl LatencyRecord) -> bool {
        match self {
            Self::All => true,
            Self::Cold => row.is_cold() == Some(true),
            Self::Warm => row.is_cold() == Some(false),
        }
    }
}

/// Client latencies (ms) of the successful rows in `subset`, allocated once at their exact
/// count (a million-row sub-experiment needs no second, doubled buffer).
pub fn subset_latencies<R: LatencyRecord>(rows: &[R], subset: Subset) -> Vec<f64> {
    let wanted = |r: &&R| subset.contains(*r) && r.ok_latency_ms().is_some();
    let mut out = Vec::with_capacity(rows.iter().filter(wanted).count());
    out.extend(rows.iter().filter(wanted).filter_map(R::ok_latency_ms));
    out
}

/// Summary of the client latency of the successful rows in `subset` (sorted in place: no
/// copy of the sample).
pub fn subset_summary<R: LatencyRecord>(rows: &[R], subset: Subset) -> Summary {
    let mut latencies = subset_latencies(rows, subset);
    latencies.sort_unstable_by(f64::total_cmp);
    Summary::from_sorted(&latencies)
}

/// Formats one value for `statistics.csv`: `%.2f`, or empty for NaN.
fn fmt2(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v:.2}")
    }
}

/// The cells of one `statistics.csv` row, in [`STATISTICS_HEADERS`] order.
pub fn statistics_record(summary: &Summary, subset: &str) -> [String; 11] {
    let s = summary;
    [
        s.count.to_string(),
        fmt2(s.mean),
        fmt2(s.std_dev),
        fmt2(s.min),
        fmt2(s.p25),
        fmt2(s.p50),
        fmt2(s.p75),
        fmt2(s.p95),
        fmt2(s.max),
        fmt2(s.p99),
        subset.to_owned(),
    ]
}

/// Writes `statistics.csv` at `path` with rows `all`, `cold` and `warm`, computed from the
/// successful rows. Returns the three summaries in that order.
pub fn write_statistics<R: LatencyRecord>(
    path: impl AsRef<Path>,
    rows: &[R],
) -> Result<[Summary; 3]> {
    let path = path.as_ref();
    let summaries = Subset::ALL.map(|s| subset_summary(rows, s));
    let file = fs_err::File::create(path).map_err(|e| ResultsError::io(path, "create", e))?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(file);
    w.write_record(STATISTICS_HEADERS)
        .map_err(|e| ResultsError::csv(path, e))?;
    for (subset, summary) in Subset::ALL.iter().zip(&summaries) {
        w.write_record(statistics_record(summary, subset.as_str()))
            .map_err(|e| ResultsError::csv(path, e))?;
    }
    w.flush().map_err(|e| ResultsError::io(path, "write", e))?;
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::LatencyRow;
    use crate::row::tests::sample_row;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn one_to_hundred_by_nearest_rank() {
        let x: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::from_samples(&x);
        assert_eq!(s.count, 100);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.p25, 25.0);
        assert_eq!(s.p50, 50.0);
        assert_eq!(s.p75, 75.0);
        assert_eq!(s.p95, 95.0);
        assert_eq!(s.p99, 99.0);
        assert_eq!(s.max, 100.0);
        assert!(close(s.mean, 50.5));
        // Sample std dev of 1..=100: sqrt(100 * 101 / 12) = 29.011491975882016.
        assert!(close(s.std_dev, 29.011_491_975_882_016), "{}", s.std_dev);
    }

    #[test]
    fn small_fixture_matches_gonum_empirical() {
        // gonum stat.Quantile(p, Empirical) on [3, 1, 4, 1, 5] (sorted 1 1 3 4 5), n = 5:
        // p=0.2 -> 1 (k=1), 0.21 -> 1 (k=2), 0.5 -> 3 (k=3), 0.8 -> 4, 0.81 -> 5, 1 -> 5, 0 -> 1.
        let x = [3.0, 1.0, 4.0, 1.0, 5.0];
        for (p, want) in [
            (0.0, 1.0),
            (0.2, 1.0),
            (0.21, 1.0),
            (0.41, 3.0),
            (0.5, 3.0),
            (0.8, 4.0),
            (0.81, 5.0),
            (1.0, 5.0),
        ] {
            assert_eq!(quantile(&x, p), Some(want), "p = {p}");
        }
    }

    #[test]
    fn bad_inputs_give_none_or_empty() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[1.0], -0.1), None);
        assert_eq!(quantile(&[1.0], 1.1), None);
        assert_eq!(quantile(&[1.0], f64::NAN), None);
        assert_eq!(quantile(&[f64::NAN, f64::INFINITY], 0.5), None);
        let s = Summary::from_samples(&[]);
        assert_eq!(s.count, 0);
        assert!(s.mean.is_nan() && s.p50.is_nan() && s.max.is_nan() && s.std_dev.is_nan());
        let one = Summary::from_samples(&[7.0, f64::NAN]);
        assert_eq!(one.count, 1);
        assert_eq!(one.std_dev, 0.0);
        assert_eq!(
            (one.min, one.p50, one.p99, one.max, one.mean),
            (7.0, 7.0, 7.0, 7.0, 7.0)
        );
    }

    #[test]
    fn statistics_csv_has_subsets_and_empty_cells_for_nan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("statistics.csv");
        let row = |lat: f64, cold: Option<bool>, err: &str| LatencyRow {
            client_latency_ms: Some(lat),
            cold,
            error_kind: err.into(),
            ..sample_row()
        };
        let rows = [
            row(10.0, Some(false), ""),
            row(20.0, Some(false), ""),
            row(30.0, None, ""),
            row(999.0, Some(true), "http-status"), // failed: ignored
        ];
        let [all, cold, warm] = write_statistics(&path, &rows).expect("write");
        assert_eq!((all.count, cold.count, warm.count), (3, 0, 2));
        let text = fs_err::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "Count,Mean,Standard Deviation,Min,25%ile,50%ile,75%ile,95%ile,Max,99%ile,Subset\n\
             3,20.00,10.00,10.00,10.00,20.00,30.00,30.00,30.00,30.00,all\n\
             0,,,,,,,,,,cold\n\
             2,15.00,7.07,10.00,10.00,10.00,20.00,20.00,20.00,20.00,warm\n"
        );
    }

    fn sample() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(-1.0e6..1.0e6f64, 1..200)
    }

    proptest! {
        #[test]
        fn percentiles_are_monotone_and_bounded(x in sample()) {
            let s = Summary::from_samples(&x);
            prop_assert_eq!(quantile(&x, 0.0), Some(s.min));
            prop_assert_eq!(quantile(&x, 1.0), Some(s.max));
            let chain = [s.min, s.p25, s.p50, s.p75, s.p95, s.p99, s.max];
            for w in chain.windows(2) {
                prop_assert!(w[0] <= w[1], "{:?}", chain);
            }
        }

        #[test]
        fn quantile_is_monotone_in_p(x in sample(), a in 0.0..=1.0f64, b in 0.0..=1.0f64) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(quantile(&x, lo) <= quantile(&x, hi));
        }

        #[test]
        fn quantile_is_a_member_with_ecdf_at_least_p(x in sample(), p in 0.0..=1.0f64) {
            let q = quantile(&x, p).expect("non-empty");
            prop_assert!(x.contains(&q));
            // Inverse ECDF: ECDF(q) >= p, and every smaller sample has ECDF < p (compared as
            // counts against p * n, the way gonum does, to avoid a division).
            let target = p * x.len() as f64;
            let count_le = |v: f64| x.iter().filter(|&&y| y <= v).count() as f64;
            prop_assert!(count_le(q) >= target);
            for &y in x.iter().filter(|&&y| y < q) {
                prop_assert!(count_le(y) < target, "smaller sample {} already reaches p", y);
            }
        }

        #[test]
        fn summary_is_permutation_invariant(x in sample(), seed in any::<u64>()) {
            let mut shuffled = x.clone();
            // Deterministic Fisher-Yates from the seed (no extra dependency needed).
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let j = (state % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            let a = Summary::from_samples(&x);
            let b = Summary::from_samples(&shuffled);
            prop_assert_eq!(
                (a.count, a.min, a.p25, a.p50, a.p75, a.p95, a.p99, a.max),
                (b.count, b.min, b.p25, b.p50, b.p75, b.p95, b.p99, b.max)
            );
            // Mean and std dev are summed in sorted order, so they are identical too.
            prop_assert_eq!(a.mean, b.mean);
            prop_assert_eq!(a.std_dev, b.std_dev);
        }

        #[test]
        fn constant_sample_has_equal_percentiles(v in -1.0e6..1.0e6f64, n in 1usize..100) {
            let s = Summary::from_samples(&vec![v; n]);
            for stat in [s.min, s.p25, s.p50, s.p75, s.p95, s.p99, s.max, s.mean] {
                prop_assert_eq!(stat, v);
            }
            prop_assert!(s.std_dev.abs() < 1e-6 * v.abs().max(1.0));
        }

        #[test]
        fn mean_within_min_max_and_std_dev_non_negative(x in sample()) {
            let s = Summary::from_samples(&x);
            prop_assert!(s.min <= s.mean && s.mean <= s.max);
            prop_assert!(s.std_dev >= 0.0);
        }

        #[test]
        fn non_finite_values_never_panic(x in prop::collection::vec(any::<f64>(), 0..50), p in any::<f64>()) {
            let s = Summary::from_samples(&x);
            let finite = x.iter().filter(|v| v.is_finite()).count() as u64;
            prop_assert_eq!(s.count, finite);
            let _ = quantile(&x, p);
        }
    }
}
