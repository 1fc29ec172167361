//! Latency statistics with their uncertainty: percentiles with bootstrap confidence intervals
//! and the tail-to-median ratio, for all requests, cold, warm and per burst size.
//!
//! Why: a p99 from a few hundred requests can move by tens of percent between two runs of the
//! same experiment. Publishing it without an interval invites reading noise as a result, so
//! every percentile here comes with a seeded, reproducible 95 % confidence interval.
//!
//! # Method
//! - **Percentiles** are the inverse empirical CDF ("nearest rank"), exactly as
//!   [`crate::stats`] documents: gonum's `stat.Quantile(p, stat.Empirical, ..)`.
//! - **Confidence intervals** are *percentile bootstrap* intervals: draw `B` resamples of size
//!   `n` with replacement, compute the statistic on each, and report the `α/2` and `1 − α/2`
//!   quantiles (same nearest-rank method) of the `B` values, with `α = 1 − confidence`.
//!   Defaults: `B = 2000`, confidence 0.95. Resamples whose statistic is not finite are dropped.
//! - **Randomness** comes from `ChaCha8Rng::seed_from_u64(seed)`; indices are drawn from its
//!   32-bit outputs with Lemire's unbiased multiply-and-reject method, so the same seed and the
//!   same sample give the same interval (ChaCha8's stream is fixed by its specification).
//! - **TMR** (tail-to-median ratio, the STeLLAR paper's measure of tail variability) is
//!   `p99 / p50`; undefined when `p50 <= 0`.
//!
//! # Speed
//! Percentile statistics do not sort resamples at all: the sample is sorted once, and a
//! resample is drawn as a vector of multiplicities over the sorted values. Walking the
//! cumulative multiplicities finds every requested rank in one `O(n)` pass, which gives exactly
//! the nearest-rank percentile of the resample.
//!
//! From [`ORDER_STATISTICS_FROM`] samples on (a million-request run would otherwise draw two
//! billion indices per group), a resample's percentiles are drawn directly, in `O(1)`: the
//! `r`-th smallest of `n` indices drawn uniformly from the sorted sample is
//! `⌊n·U₍ᵣ₎⌋`, where `U₍ᵣ₎` is the `r`-th order statistic of `n` uniforms, distributed
//! `Beta(r, n − r + 1)`; given it, the next requested rank `s` lies
//! `(1 − U₍ᵣ₎)·Beta(s − r, n − s + 1)` above it. This is the same distribution as the
//! multiplicity walk (exactly, not an approximation), from a different random stream, so
//! smaller samples keep the intervals they always had.

use std::fmt;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, Serializer};

use crate::record::LatencyRecord;
use crate::stats::{Subset, Summary, quantile_sorted, sorted_finite};

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound (`>= lower`).
    pub upper: f64,
    /// Nominal coverage, e.g. 0.95.
    pub confidence: f64,
}

impl Interval {
    /// Whether `x` lies inside the interval (bounds included).
    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }

    /// Whether 0 lies strictly outside the interval.
    pub fn excludes_zero(&self) -> bool {
        self.lower > 0.0 || self.upper < 0.0
    }
}

/// How many bootstrap resamples to draw, the interval's confidence and the random seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapConfig {
    /// Number of resamples (`B`); 0 gives no intervals.
    pub resamples: usize,
    /// Confidence level, strictly between 0 and 1.
    pub confidence: f64,
    /// Seed of the `ChaCha8Rng` the resamples are drawn from.
    pub seed: u64,
}

impl BootstrapConfig {
    /// Default number of resamples.
    pub const DEFAULT_RESAMPLES: usize = 2000;
    /// Default confidence level.
    pub const DEFAULT_CONFIDENCE: f64 = 0.95;

    /// The defaults (2000 resamples, 95 %) with the given seed.
    pub fn new(seed: u64) -> Self {
        Self {
            resamples: Self::DEFAULT_RESAMPLES,
            confidence: Self::DEFAULT_CONFIDENCE,
            seed,
        }
    }

    /// Whether intervals can be computed with this configuration.
    fn is_usable(&self) -> bool {
        self.resamples > 0 && self.confidence > 0.0 && self.confidence < 1.0
    }
}

/// Percentile bootstrap confidence interval of `statistic` over `samples`.
///
/// Draws `resamples` resamples of `samples.len()` values with replacement from a
/// `ChaCha8Rng` seeded with `seed`, evaluates `statistic` on each (in draw order, unsorted) and
/// returns the `(1 − confidence)/2` and `(1 + confidence)/2` nearest-rank quantiles of the
/// finite results. Returns `None` for an empty sample, `resamples == 0`, a confidence outside
/// `(0, 1)`, or when no resample gave a finite statistic.
///
/// For percentiles prefer [`LatencyStats`] or [`bootstrap_percentile_cis`], which avoid
/// materialising and sorting the resamples.
pub fn bootstrap_ci(
    samples: &[f64],
    statistic: impl Fn(&[f64]) -> f64,
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Option<Interval> {
    let config = BootstrapConfig {
        resamples,
        confidence,
        seed,
    };
    if samples.is_empty() || !config.is_usable() {
        return None;
    }
    let n = samples.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0.0; n];
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in &mut buf {
            *slot = samples[index_below(&mut rng, n)];
        }
        values.push(statistic(&buf));
    }
    percentile_interval(values, confidence)
}

/// Percentile bootstrap intervals of several nearest-rank percentiles at once.
///
/// `ps` are the percentiles as fractions in `[0, 1]`, in any order; the result has one entry
/// per `p`, `None` where `p` is outside `[0, 1]`. Non-finite samples are ignored; an empty
/// sample or an unusable `config` gives all `None`.
pub fn bootstrap_percentile_cis(
    samples: &[f64],
    ps: &[f64],
    config: &BootstrapConfig,
) -> Vec<Option<Interval>> {
    let sorted = sorted_finite(samples);
    let valid: Vec<(usize, f64)> = ps
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, p)| (0.0..=1.0).contains(p))
        .collect();
    let mut out = vec![None; ps.len()];
    if sorted.is_empty() || !config.is_usable() || valid.is_empty() {
        return out;
    }
    let mut order = valid;
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let ranks: Vec<usize> = order
        .iter()
        .map(|&(_, p)| nearest_rank(p, sorted.len()))
        .collect();
    let mut resampler = SortedResampler::new(&sorted);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut draws = vec![Vec::with_capacity(config.resamples); ranks.len()];
    let mut q = vec![0.0; ranks.len()];
    for _ in 0..config.resamples {
        resampler.draw(&mut rng, &ranks, &mut q);
        for (d, &v) in draws.iter_mut().zip(&q) {
            d.push(v);
        }
    }
    for ((index, _), d) in order.iter().zip(draws) {
        if let Some(slot) = out.get_mut(*index) {
            *slot = percentile_interval(d, config.confidence);
        }
    }
    out
}

/// The tail-to-median ratio `p99 / p50` (nearest-rank percentiles) of the finite values of
/// `samples`; `None` for an empty sample or when `p50 <= 0`.
pub fn tail_to_median_ratio(samples: &[f64]) -> Option<f64> {
    let sorted = sorted_finite(samples);
    ratio(
        quantile_sorted(&sorted, 0.99)?,
        quantile_sorted(&sorted, 0.50)?,
    )
}

/// `p99 / p50` when `p50 > 0`.
fn ratio(p99: f64, p50: f64) -> Option<f64> {
    (p50 > 0.0).then(|| p99 / p50).filter(|r| r.is_finite())
}

/// One percentile of a sample with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PercentileEstimate {
    /// The percentile as a fraction, e.g. 0.99.
    pub p: f64,
    /// Its nearest-rank value in the sample.
    pub value: f64,
    /// Its bootstrap confidence interval; `None` when no interval could be computed.
    pub ci: Option<Interval>,
}

/// Latency statistics of one group of requests (ms), with uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Number of (finite) latencies.
    pub n: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest latency.
    pub min: f64,
    /// Largest latency.
    pub max: f64,
    /// Median with its CI.
    pub p50: PercentileEstimate,
    /// 95th percentile with its CI.
    pub p95: PercentileEstimate,
    /// 99th percentile with its CI.
    pub p99: PercentileEstimate,
    /// Tail-to-median ratio `p99 / p50`; `None` when `p50 <= 0`.
    pub tmr: Option<f64>,
    /// Bootstrap CI of the TMR (resamples with `p50 <= 0` are dropped).
    pub tmr_ci: Option<Interval>,
    /// The bootstrap settings used, so the numbers can be reproduced.
    pub bootstrap: BootstrapConfig,
}

impl LatencyStats {
    /// Statistics of `latencies_ms` with the default bootstrap (2000 resamples, 95 %) seeded
    /// with `seed`. Non-finite values are ignored; `None` when none is left.
    pub fn compute(latencies_ms: &[f64], seed: u64) -> Option<Self> {
        Self::compute_with(latencies_ms, &BootstrapConfig::new(seed))
    }

    /// [`LatencyStats::compute`] with explicit bootstrap settings. An unusable `config`
    /// (0 resamples, confidence outside `(0, 1)`) gives point estimates without intervals.
    pub fn compute_with(latencies_ms: &[f64], config: &BootstrapConfig) -> Option<Self> {
        Self::from_sorted(&sorted_finite(latencies_ms), config)
    }

    /// [`LatencyStats::compute_with`] of a sample that is already sorted and all finite.
    pub fn from_sorted(sorted: &[f64], config: &BootstrapConfig) -> Option<Self> {
        let summary = Summary::from_sorted(sorted);
        if summary.count == 0 {
            return None;
        }
        const PS: [f64; 3] = [0.50, 0.95, 0.99];
        let ranks = PS.map(|p| nearest_rank(p, sorted.len()));
        let mut cis = [None; 3];
        let mut tmr_ci = None;
        if config.is_usable() {
            let mut draws: [Vec<f64>; 4] =
                std::array::from_fn(|_| Vec::with_capacity(config.resamples));
            let mut resampler = SortedResampler::new(sorted);
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            let mut q = [0.0; 3];
            for _ in 0..config.resamples {
                resampler.draw(&mut rng, &ranks, &mut q);
                let [p50, p95, p99] = q;
                let [d50, d95, d99, dtmr] = &mut draws;
                d50.push(p50);
                d95.push(p95);
                d99.push(p99);
                dtmr.push(ratio(p99, p50).unwrap_or(f64::NAN));
            }
            let [d50, d95, d99, dtmr] = draws;
            cis = [d50, d95, d99].map(|d| percentile_interval(d, config.confidence));
            tmr_ci = percentile_interval(dtmr, config.confidence);
        }
        let [ci50, ci95, ci99] = cis;
        let estimate = |p: f64, ci| PercentileEstimate {
            p,
            value: quantile_sorted(sorted, p).unwrap_or(f64::NAN),
            ci,
        };
        let (p50, p95, p99) = (
            estimate(0.50, ci50),
            estimate(0.95, ci95),
            estimate(0.99, ci99),
        );
        Some(Self {
            n: summary.count,
            mean: summary.mean,
            min: summary.min,
            max: summary.max,
            tmr: ratio(p99.value, p50.value),
            tmr_ci,
            p50,
            p95,
            p99,
            bootstrap: *config,
        })
    }
}

/// A group of requests that statistics are reported for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Every successful request.
    All,
    /// Successful requests served cold.
    Cold,
    /// Successful requests served warm.
    Warm,
    /// Successful requests of bursts of this size.
    BurstSize(u32),
    /// Successful requests with this start label (see [`crate::labels`]).
    Label(crate::labels::StartLabel),
}

impl Group {
    /// Whether `row` (assumed successful) belongs to the group.
    pub fn contains(self, row: &impl LatencyRecord) -> bool {
        match self {
            Self::All => Subset::All.contains(row),
            Self::Cold => Subset::Cold.contains(row),
            Self::Warm => Subset::Warm.contains(row),
            Self::BurstSize(size) => row.burst_size() == size,
            Self::Label(label) => row.start_label() == Some(label),
        }
    }

    /// The groups of `rows`: all, cold, warm, then every burst size that occurs in `rows`
    /// (ascending), then every start label that occurs in `rows` (in label order).
    pub fn of_rows<R: LatencyRecord>(rows: &[R]) -> Vec<Self> {
        let sizes: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.burst_size()).collect();
        let present: std::collections::BTreeSet<crate::labels::StartLabel> =
            rows.iter().filter_map(|r| r.start_label()).collect();
        let labels = crate::labels::StartLabel::ALL
            .into_iter()
            .filter(|l| present.contains(l));
        [Self::All, Self::Cold, Self::Warm]
            .into_iter()
            .chain(sizes.into_iter().map(Self::BurstSize))
            .chain(labels.map(Self::Label))
            .collect()
    }

    /// Client latencies (ms) of the successful rows of the group, allocated once at their
    /// exact count.
    pub fn latencies<R: LatencyRecord>(self, rows: &[R]) -> Vec<f64> {
        let wanted = |r: &&R| self.contains(*r) && r.ok_latency_ms().is_some();
        let mut out = Vec::with_capacity(rows.iter().filter(wanted).count());
        out.extend(rows.iter().filter(wanted).filter_map(R::ok_latency_ms));
        out
    }

    /// The seed of this group's bootstrap, derived from a run seed so that groups draw
    /// independent resamples and adding a group never changes another group's intervals.
    pub fn seed(self, seed: u64) -> u64 {
        let salt = match self {
            Self::All => 0,
            Self::Cold => 1,
            Self::Warm => 2,
            Self::BurstSize(size) => (1 << 32) | u64::from(size),
            Self::Label(label) => (2 << 32) | label as u64,
        };
        splitmix64(splitmix64(seed) ^ salt)
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Cold => f.write_str("cold"),
            Self::Warm => f.write_str("warm"),
            Self::BurstSize(size) => write!(f, "burst-size-{size}"),
            Self::Label(label) => write!(f, "label-{label}"),
        }
    }
}

impl Serialize for Group {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// [`LatencyStats`] of one [`Group`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GroupStats {
    /// The group.
    pub group: Group,
    /// Its statistics; `None` when it has no successful request.
    pub stats: Option<LatencyStats>,
}

/// Statistics of every [`Group::of_rows`] group of `rows` (one sub-experiment), each with the
/// default bootstrap seeded by [`Group::seed`]`(seed)`.
pub fn grouped_latency_stats<R: LatencyRecord>(rows: &[R], seed: u64) -> Vec<GroupStats> {
    Group::of_rows(rows)
        .into_iter()
        .map(|group| {
            // Sorted in place, so computing the statistics copies nothing.
            let mut latencies = group.latencies(rows);
            latencies.sort_unstable_by(f64::total_cmp);
            GroupStats {
                group,
                stats: LatencyStats::from_sorted(
                    &latencies,
                    &BootstrapConfig::new(group.seed(seed)),
                ),
            }
        })
        .collect()
}

/// SplitMix64's output function (a bijective 64-bit mixer) for deriving seeds.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 1-based nearest rank of percentile `p` (in `[0, 1]`) among `n >= 1` values, as in
/// [`quantile_sorted`].
pub(crate) fn nearest_rank(p: f64, n: usize) -> usize {
    ((p * n as f64).ceil() as usize).clamp(1, n)
}

/// The percentile interval of bootstrap draws (non-finite draws are dropped).
pub(crate) fn percentile_interval(mut draws: Vec<f64>, confidence: f64) -> Option<Interval> {
    draws.retain(|v| v.is_finite());
    draws.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    Some(Interval {
        lower: quantile_sorted(&draws, alpha / 2.0)?,
        upper: quantile_sorted(&draws, 1.0 - alpha / 2.0)?,
        confidence,
    })
}

/// A uniform index in `0..n` (`n >= 1`): Lemire's nearly divisionless method on 32-bit
/// outputs of the stream (unbiased; falls back to `rand`'s sampler above `u32::MAX`).
#[inline]
pub(crate) fn index_below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let Ok(n32) = u32::try_from(n) else {
        return rng.random_range(0..n);
    };
    let mut m = u64::from(rng.next_u32()) * u64::from(n32);
    if (m as u32) < n32 {
        let threshold = n32.wrapping_neg() % n32;
        while (m as u32) < threshold {
            m = u64::from(rng.next_u32()) * u64::from(n32);
        }
    }
    (m >> 32) as usize
}

/// Draws bootstrap resamples of a sorted sample as multiplicities and reads nearest-rank
/// percentiles off them without sorting (see the module doc).
pub(crate) struct SortedResampler<'a> {
    sorted: &'a [f64],
    /// Multiplicities; empty for samples drawn as order statistics.
    counts: Vec<u32>,
}

/// Sample size from which resamples are drawn as order statistics (see the module doc).
pub const ORDER_STATISTICS_FROM: usize = 100_000;

impl<'a> SortedResampler<'a> {
    /// A resampler over `sorted` (ascending, non-empty for [`Self::draw`] to do anything).
    pub(crate) fn new(sorted: &'a [f64]) -> Self {
        let multiplicities = sorted.len() < ORDER_STATISTICS_FROM;
        Self {
            sorted,
            counts: if multiplicities {
                vec![0; sorted.len()]
            } else {
                Vec::new()
            },
        }
    }

    /// [`Self::draw`] by order statistics (see the module doc), for any sample size.
    pub(crate) fn draw_order_statistics(
        &self,
        rng: &mut ChaCha8Rng,
        ranks: &[usize],
        out: &mut [f64],
    ) {
        let n = self.sorted.len();
        let mut below = 0usize;
        let mut u = 0.0f64;
        let mut value = f64::NAN;
        for (&rank, slot) in ranks.iter().zip(out.iter_mut()) {
            if rank > below && rank <= n {
                let step = rand_distr::Beta::new((rank - below) as f64, (n - rank + 1) as f64)
                    .map_or(0.5, |beta| rand_distr::Distribution::sample(&beta, rng));
                u += (1.0 - u) * step;
                below = rank;
                let index = ((u * n as f64) as usize).min(n - 1);
                value = self.sorted[index];
            }
            *slot = value;
        }
    }

    /// Draws one resample of `n` values with replacement and writes the values at the 1-based
    /// `ranks` (ascending, each in `1..=n`) of the sorted resample into `out` (same length).
    pub(crate) fn draw(&mut self, rng: &mut ChaCha8Rng, ranks: &[usize], out: &mut [f64]) {
        let n = self.sorted.len();
        if n == 0 {
            return;
        }
        if self.counts.len() != n {
            self.draw_order_statistics(rng, ranks, out);
            return;
        }
        self.counts.fill(0);
        for _ in 0..n {
            if let Some(c) = self.counts.get_mut(index_below(rng, n)) {
                *c += 1;
            }
        }
        let mut targets = ranks.iter().zip(out.iter_mut()).peekable();
        let mut cumulative = 0usize;
        for (&count, &value) in self.counts.iter().zip(self.sorted) {
            cumulative += count as usize;
            while let Some((_, slot)) = targets.next_if(|(rank, _)| cumulative >= **rank) {
                *slot = value;
            }
            if targets.peek().is_none() {
                break;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::row::LatencyRow;
    use crate::row::tests::sample_row;
    use crate::stats::quantile;
    use proptest::prelude::*;
    use rand::Rng;

    /// `n` draws of `shift + Exp(mean)` from a seeded stream (inverse transform).
    pub(crate) fn shifted_exp(n: usize, shift: f64, mean: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| shift - mean * (1.0 - rng.random::<f64>()).ln())
            .collect()
    }

    #[test]
    fn resampler_matches_sorting_the_resample() {
        // Draw the same resample both ways: multiplicities, and materialised + sorted.
        let sample: Vec<f64> = sorted_finite(&shifted_exp(101, 5.0, 20.0, 7));
        let ps = [0.0, 0.01, 0.5, 0.95, 0.99, 1.0];
        let ranks: Vec<usize> = ps.iter().map(|&p| nearest_rank(p, sample.len())).collect();
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = ChaCha8Rng::seed_from_u64(3);
        let mut resampler = SortedResampler::new(&sample);
        for _ in 0..50 {
            let mut fast = vec![0.0; ps.len()];
            resampler.draw(&mut a, &ranks, &mut fast);
            let slow_sample: Vec<f64> = (0..sample.len())
                .map(|_| sample[index_below(&mut b, sample.len())])
                .collect();
            let slow: Vec<f64> = ps
                .iter()
                .map(|&p| quantile(&slow_sample, p).expect("non-empty"))
                .collect();
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn order_statistics_have_the_distribution_of_the_multiplicity_walk() {
        // Both ways of drawing a resample's percentiles, 4000 times each over the same sample:
        // the means and spreads of the drawn p50 and p99 agree.
        let sorted = sorted_finite(&shifted_exp(1001, 10.0, 5.0, 3));
        let ranks = [
            nearest_rank(0.5, sorted.len()),
            nearest_rank(0.99, sorted.len()),
        ];
        let mut walk = SortedResampler::new(&sorted);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut q = [0.0; 2];
        for _ in 0..4000 {
            walk.draw(&mut rng, &ranks, &mut q);
            a.push(q);
            walk.draw_order_statistics(&mut rng, &ranks, &mut q);
            b.push(q);
        }
        for k in 0..2 {
            let mean = |v: &[[f64; 2]]| v.iter().map(|x| x[k]).sum::<f64>() / v.len() as f64;
            let sd = |v: &[[f64; 2]]| {
                let m = mean(v);
                (v.iter().map(|x| (x[k] - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
            };
            let (ma, mb, sa, sb) = (mean(&a), mean(&b), sd(&a), sd(&b));
            assert!(
                (ma - mb).abs() < 0.1 * sa.max(sb) + 1e-9,
                "means {ma} {mb} (sd {sa})"
            );
            assert!((sa / sb - 1.0).abs() < 0.1, "spreads {sa} {sb}");
        }
    }

    #[test]
    fn latency_stats_of_one_to_hundred() {
        let x: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = LatencyStats::compute(&x, 1).expect("non-empty");
        assert_eq!((s.n, s.min, s.max), (100, 1.0, 100.0));
        assert_eq!((s.p50.value, s.p95.value, s.p99.value), (50.0, 95.0, 99.0));
        assert_eq!(s.tmr, Some(99.0 / 50.0));
        let ci = s.p50.ci.expect("ci");
        // The median of 100 uniform ranks: its 95 % CI spans roughly +-10 ranks.
        assert!(ci.lower >= 35.0 && ci.lower <= 45.0, "{ci:?}");
        assert!(ci.upper >= 55.0 && ci.upper <= 65.0, "{ci:?}");
        assert_eq!(ci.confidence, 0.95);
        let tmr_ci = s.tmr_ci.expect("tmr ci");
        assert!(tmr_ci.contains(99.0 / 50.0), "{tmr_ci:?}");
    }

    #[test]
    fn ci_width_shrinks_with_sample_size() {
        let width = |n| {
            let s = LatencyStats::compute(&shifted_exp(n, 10.0, 5.0, 11), 2).expect("stats");
            let ci = s.p50.ci.expect("ci");
            ci.upper - ci.lower
        };
        assert!(width(4000) < width(100) / 3.0);
    }

    #[test]
    fn generic_bootstrap_agrees_with_the_fast_path_in_distribution() {
        let x = shifted_exp(300, 10.0, 5.0, 5);
        let median = |s: &[f64]| quantile(s, 0.5).unwrap_or(f64::NAN);
        let generic = bootstrap_ci(&x, median, 2000, 0.95, 9).expect("ci");
        let fast = LatencyStats::compute(&x, 10)
            .and_then(|s| s.p50.ci)
            .expect("ci");
        // Different random streams, same target: the bounds agree to within Monte-Carlo noise.
        let scale = fast.upper - fast.lower;
        assert!(
            (generic.lower - fast.lower).abs() < 0.25 * scale,
            "{generic:?} {fast:?}"
        );
        assert!(
            (generic.upper - fast.upper).abs() < 0.25 * scale,
            "{generic:?} {fast:?}"
        );
        let multi = bootstrap_percentile_cis(&x, &[0.99, 2.0, 0.5], &BootstrapConfig::new(10));
        assert_eq!(multi[2], Some(fast));
        assert_eq!(multi[1], None);
    }

    #[test]
    fn bad_inputs_give_none() {
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        assert_eq!(bootstrap_ci(&[], mean, 100, 0.95, 1), None);
        assert_eq!(bootstrap_ci(&[1.0], mean, 0, 0.95, 1), None);
        assert_eq!(bootstrap_ci(&[1.0], mean, 10, 1.0, 1), None);
        assert_eq!(bootstrap_ci(&[1.0], mean, 10, f64::NAN, 1), None);
        assert_eq!(bootstrap_ci(&[1.0], |_| f64::NAN, 10, 0.9, 1), None);
        assert_eq!(LatencyStats::compute(&[], 1), None);
        assert_eq!(LatencyStats::compute(&[f64::NAN, f64::INFINITY], 1), None);
        assert_eq!(tail_to_median_ratio(&[]), None);
        assert_eq!(tail_to_median_ratio(&[0.0, 0.0, 2.0]), None); // p50 = 0
        assert_eq!(tail_to_median_ratio(&[1.0, 2.0, 4.0]), Some(2.0));
        let no_boot = BootstrapConfig {
            resamples: 0,
            ..BootstrapConfig::new(1)
        };
        let s = LatencyStats::compute_with(&[1.0, 2.0], &no_boot).expect("stats");
        assert_eq!((s.p50.value, s.p50.ci, s.tmr_ci), (1.0, None, None));
        let single = LatencyStats::compute(&[4.0], 1).expect("stats");
        let ci = single.p99.ci.expect("ci");
        assert_eq!((ci.lower, ci.upper), (4.0, 4.0));
    }

    #[test]
    fn groups_cover_subsets_and_burst_sizes() {
        let row = |lat: f64, cold: Option<bool>, size: u32, err: &str| LatencyRow {
            client_latency_ms: Some(lat),
            cold,
            burst_size: size,
            error_kind: err.into(),
            ..sample_row()
        };
        let rows = [
            row(10.0, Some(true), 5, ""),
            row(20.0, Some(false), 5, ""),
            row(30.0, Some(false), 1, ""),
            row(40.0, None, 1, ""),
            row(99.0, Some(false), 7, "timeout"),
        ];
        let stats = grouped_latency_stats(&rows, 42);
        let summary: Vec<(String, u64)> = stats
            .iter()
            .map(|g| (g.group.to_string(), g.stats.map_or(0, |s| s.n)))
            .collect();
        let expected = [
            ("all", 4),
            ("cold", 1),
            ("warm", 2),
            ("burst-size-1", 2),
            ("burst-size-5", 2),
            ("burst-size-7", 0),
        ]
        .map(|(g, n)| (g.to_owned(), n));
        assert_eq!(summary, expected);
        let json = serde_json::to_value(stats[3]).expect("serializes");
        assert_eq!(json["group"], "burst-size-1");
        assert_ne!(Group::All.seed(1), Group::Cold.seed(1));
        assert_ne!(Group::BurstSize(0).seed(1), Group::All.seed(1));
    }

    fn sample() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0.0..1.0e4f64, 1..120)
    }

    fn quick(seed: u64) -> BootstrapConfig {
        BootstrapConfig {
            resamples: 400,
            ..BootstrapConfig::new(seed)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn p50_ci_contains_the_point_estimate(x in sample(), seed: u64) {
            // Each side of the sample median holds >= ~half of the bootstrap medians, so the
            // 2.5 % and 97.5 % bootstrap quantiles bracket it (up to negligible MC error).
            let s = LatencyStats::compute_with(&x, &quick(seed)).expect("stats");
            let ci = s.p50.ci.expect("ci");
            prop_assert!(ci.contains(s.p50.value), "{:?} vs {}", ci, s.p50.value);
        }

        #[test]
        fn intervals_are_ordered_and_within_the_sample_range(x in sample(), seed: u64) {
            let s = LatencyStats::compute_with(&x, &quick(seed)).expect("stats");
            for est in [s.p50, s.p95, s.p99] {
                let ci = est.ci.expect("ci");
                prop_assert!(ci.lower <= ci.upper);
                prop_assert!(s.min <= ci.lower && ci.upper <= s.max);
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let ci = bootstrap_ci(&x, mean, 200, 0.9, seed).expect("ci");
            prop_assert!(ci.lower <= ci.upper);
        }

        #[test]
        fn same_seed_same_result(x in sample(), seed: u64) {
            let a = LatencyStats::compute_with(&x, &quick(seed));
            let b = LatencyStats::compute_with(&x, &quick(seed));
            prop_assert_eq!(a, b);
            let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
            prop_assert_eq!(
                bootstrap_ci(&x, max, 100, 0.95, seed),
                bootstrap_ci(&x, max, 100, 0.95, seed)
            );
        }

        #[test]
        fn point_estimates_match_summary(x in sample()) {
            let s = LatencyStats::compute_with(&x, &quick(0)).expect("stats");
            let summary = Summary::from_samples(&x);
            prop_assert_eq!(
                (s.n, s.min, s.max, s.p50.value, s.p95.value, s.p99.value),
                (summary.count, summary.min, summary.max, summary.p50, summary.p95, summary.p99)
            );
            prop_assert_eq!(s.tmr, tail_to_median_ratio(&x));
        }
    }
}
