//! Comparing two runs: differences of medians and tails with bootstrap confidence intervals,
//! a Mann–Whitney U test, and a plain verdict that says when a difference is only noise.
//!
//! Why: "run B's p50 is 3 % higher" means nothing unless it is larger than the run-to-run
//! noise. `stellar compare RUN_A RUN_B` reports B relative to A with the evidence, and says
//! "within noise" rather than inventing a regression.
//!
//! # Method
//! - **Differences** are `B − A` of nearest-rank percentiles (see [`crate::stats`]); positive
//!   means B is slower. Their CIs are percentile bootstrap intervals (2000 resamples, 95 %),
//!   resampling A and B independently from one seeded `ChaCha8Rng` (A's draw first).
//! - **Mann–Whitney U** (two-sided) ranks both samples together, giving tied values their
//!   average rank. `U_A = R_A − n_A(n_A + 1)/2`, `U_B = n_A·n_B − U_A`. The p-value uses the
//!   normal approximation with tie correction and continuity correction, as SciPy's
//!   `mannwhitneyu(method="asymptotic")`:
//!   `σ² = n_A·n_B/12 · ((N + 1) − Σ(t³ − t)/(N(N − 1)))`,
//!   `z = sign(U_A − μ)·max(|U_A − μ| − ½, 0)/σ` with `μ = n_A·n_B/2`, `p = erfc(|z|/√2)`.
//! - **Verdict.** A difference is *real* when `p <` [`SIGNIFICANCE_LEVEL`] (0.01) **and** the
//!   whole CI of the median difference lies beyond the noise threshold, `± threshold × A's
//!   median` ([`DEFAULT_NOISE_THRESHOLD`] = 5 %, criterion's rule with a wider default).
//!   Otherwise the verdict is [`Verdict::WithinNoise`]. The threshold exists because two runs
//!   of one experiment are never exactly alike (a busier client machine, another hour on the
//!   cloud): with enough requests a test finds a 2 % shift "significant" that nobody should
//!   call a regression. Set it to 0 to get the bare statistical verdict.

use std::fmt;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::row::LatencyRow;
use crate::stats::{quantile_sorted, sorted_finite};
use crate::uncertainty::{
    BootstrapConfig, Group, Interval, SortedResampler, nearest_rank, percentile_interval,
};

/// The p-value below which (together with a median-difference CI beyond the noise threshold)
/// a difference counts as real.
pub const SIGNIFICANCE_LEVEL: f64 = 0.01;

/// The relative change of the median (a fraction of A's median) that a difference must
/// exceed, over its whole CI, to count as real.
pub const DEFAULT_NOISE_THRESHOLD: f64 = 0.05;

/// Why two groups could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// One side has no finite latency.
    #[error("group {side} has no finite latencies to compare")]
    EmptyGroup {
        /// `"A"` or `"B"`.
        side: &'static str,
    },
}

/// A percentile of both runs and the difference `B − A` with its bootstrap CI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    /// The percentile as a fraction, e.g. 0.5.
    pub p: f64,
    /// Its value in A (ms).
    pub a: f64,
    /// Its value in B (ms).
    pub b: f64,
    /// `b − a` (ms); positive means B is slower.
    pub diff: f64,
    /// Bootstrap CI of the difference; `None` when the bootstrap was disabled.
    pub ci: Option<Interval>,
}

/// Result of a two-sided Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MannWhitney {
    /// U statistic of A (number of pairs where A's value is larger, ties counting ½).
    pub u_a: f64,
    /// U statistic of B; `u_a + u_b = n_a·n_b`.
    pub u_b: f64,
    /// Standardised statistic of A (continuity-corrected); positive when A tends to be larger.
    pub z: f64,
    /// Two-sided p-value (normal approximation, tie-corrected), in `[0, 1]`.
    pub p_value: f64,
}

/// What the comparison concluded about B relative to A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// B's latencies are significantly lower.
    Faster,
    /// B's latencies are significantly higher.
    Slower,
    /// No difference beyond run-to-run noise.
    WithinNoise,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Faster => "faster",
            Self::Slower => "slower",
            Self::WithinNoise => "within noise",
        })
    }
}

/// Everything `stellar compare` reports for one group of requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Number of finite latencies in A.
    pub n_a: u64,
    /// Number of finite latencies in B.
    pub n_b: u64,
    /// Medians and their difference.
    pub median: Difference,
    /// 99th percentiles and their difference.
    pub p99: Difference,
    /// `median B / median A`; `None` when A's median is not positive.
    pub median_ratio: Option<f64>,
    /// The rank test.
    pub mann_whitney: MannWhitney,
    /// The noise threshold applied, as a fraction of A's median.
    pub noise_threshold: f64,
    /// The conclusion.
    pub verdict: Verdict,
    /// The conclusion as a sentence, naming the runs "A" and "B" (see
    /// [`Comparison::describe`] for other names).
    pub sentence: String,
}

impl Comparison {
    /// The conclusion as one plain-English sentence, naming the runs `a` and `b`.
    pub fn describe(&self, a: &str, b: &str) -> String {
        let mw = &self.mann_whitney;
        let med = &self.median;
        let evidence = format!(
            "median {} ms{}, p99 {} ms{}; Mann-Whitney {}",
            signed(med.diff),
            ci_text(med.ci),
            signed(self.p99.diff),
            ci_text(self.p99.ci),
            p_text(mw.p_value),
        );
        match self.verdict {
            Verdict::Slower => format!("{b} is slower than {a}: {evidence}."),
            Verdict::Faster => format!("{b} is faster than {a}: {evidence}."),
            Verdict::WithinNoise => format!(
                "No significant difference between {a} and {b}; the difference is within noise \
                 ({evidence}; a real difference needs p < {SIGNIFICANCE_LEVEL} and a median CI \
                 beyond {}).",
                self.noise_band(a)
            ),
        }
    }
}

impl Comparison {
    /// `±0.32 ms (5% of A's median)` naming run `a`, or `0` when there is no threshold.
    fn noise_band(&self, a: &str) -> String {
        if self.noise_threshold <= 0.0 {
            return "0".to_owned();
        }
        let percent = self.noise_threshold * 100.0;
        format!(
            "±{:.2} ms ({percent:.0}% of {a}'s median)",
            self.noise_threshold * self.median.a.abs()
        )
    }
}

/// `+1.23` / `-1.23`.
fn signed(v: f64) -> String {
    format!("{v:+.2}")
}

/// ` (95% CI -1.00 to +2.00)`, or nothing.
fn ci_text(ci: Option<Interval>) -> String {
    ci.map(|ci| {
        let percent = (ci.confidence * 1000.0).round() / 10.0;
        format!(
            " ({percent}% CI {} to {} ms)",
            signed(ci.lower),
            signed(ci.upper)
        )
    })
    .unwrap_or_default()
}

/// `p = 0.123`, `p < 0.001`.
fn p_text(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_owned()
    } else {
        format!("p = {p:.3}")
    }
}

/// `0.123`, `<0.001` (a table cell).
fn p_cell(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_owned()
    } else {
        format!("{p:.3}")
    }
}

/// Compares latencies `b` against `a` (ms) with the default bootstrap seeded by `seed` and
/// the default noise threshold. Non-finite values are ignored.
pub fn compare_groups(a: &[f64], b: &[f64], seed: u64) -> Result<Comparison, CompareError> {
    compare_groups_with(a, b, &BootstrapConfig::new(seed), DEFAULT_NOISE_THRESHOLD)
}

/// [`compare_groups`] with explicit bootstrap settings and noise threshold (a fraction of A's
/// median; 0 for none).
pub fn compare_groups_with(
    a: &[f64],
    b: &[f64],
    config: &BootstrapConfig,
    noise_threshold: f64,
) -> Result<Comparison, CompareError> {
    let a = sorted_finite(a);
    let b = sorted_finite(b);
    if a.is_empty() {
        return Err(CompareError::EmptyGroup { side: "A" });
    }
    if b.is_empty() {
        return Err(CompareError::EmptyGroup { side: "B" });
    }
    let mann_whitney = mann_whitney_sorted(&a, &b);
    const PS: [f64; 2] = [0.5, 0.99];
    let [median_ci, p99_ci] = diff_cis(&a, &b, PS, config);
    let difference = |p: f64, ci| {
        let qa = quantile_sorted(&a, p).unwrap_or(f64::NAN);
        let qb = quantile_sorted(&b, p).unwrap_or(f64::NAN);
        Difference {
            p,
            a: qa,
            b: qb,
            diff: qb - qa,
            ci,
        }
    };
    let median = difference(0.5, median_ci);
    let p99 = difference(0.99, p99_ci);
    let noise_threshold = noise_threshold.max(0.0);
    let band = noise_threshold * median.a.abs();
    let verdict = match median_ci {
        _ if mann_whitney.p_value >= SIGNIFICANCE_LEVEL => Verdict::WithinNoise,
        Some(ci) if ci.lower > band => Verdict::Slower,
        Some(ci) if ci.upper < -band => Verdict::Faster,
        _ => Verdict::WithinNoise,
    };
    let mut comparison = Comparison {
        n_a: a.len() as u64,
        n_b: b.len() as u64,
        median_ratio: (median.a > 0.0).then(|| median.b / median.a),
        median,
        p99,
        mann_whitney,
        noise_threshold,
        verdict,
        sentence: String::new(),
    };
    comparison.sentence = comparison.describe("A", "B");
    Ok(comparison)
}

/// Bootstrap CIs of `quantile(B, p) − quantile(A, p)` for each `p` (ascending).
fn diff_cis<const K: usize>(
    a: &[f64],
    b: &[f64],
    ps: [f64; K],
    config: &BootstrapConfig,
) -> [Option<Interval>; K] {
    if config.resamples == 0 || !(config.confidence > 0.0 && config.confidence < 1.0) {
        return [None; K];
    }
    let ranks_a = ps.map(|p| nearest_rank(p, a.len()));
    let ranks_b = ps.map(|p| nearest_rank(p, b.len()));
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut ra = SortedResampler::new(a);
    let mut rb = SortedResampler::new(b);
    let (mut qa, mut qb) = ([0.0; K], [0.0; K]);
    let mut draws: [Vec<f64>; K] = std::array::from_fn(|_| Vec::with_capacity(config.resamples));
    for _ in 0..config.resamples {
        ra.draw(&mut rng, &ranks_a, &mut qa);
        rb.draw(&mut rng, &ranks_b, &mut qb);
        for ((d, x), y) in draws.iter_mut().zip(qa).zip(qb) {
            d.push(y - x);
        }
    }
    draws.map(|d| percentile_interval(d, config.confidence))
}

/// Two-sided Mann–Whitney U test of `a` against `b` (see the module doc). Non-finite values
/// are ignored; `None` when either side is then empty.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let a = sorted_finite(a);
    let b = sorted_finite(b);
    (!a.is_empty() && !b.is_empty()).then(|| mann_whitney_sorted(&a, &b))
}

/// Mann–Whitney over two non-empty, sorted, finite samples (merged in one pass).
fn mann_whitney_sorted(a: &[f64], b: &[f64]) -> MannWhitney {
    let (na, nb) = (a.len(), b.len());
    let n = (na + nb) as f64;
    let (mut i, mut j) = (0, 0);
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut next_rank = 1.0;
    while i < na || j < nb {
        // The smallest remaining value and how many of each sample share it.
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let ta = a[i..].iter().take_while(|&&x| x == v).count();
        let tb = b[j..].iter().take_while(|&&y| y == v).count();
        let t = (ta + tb) as f64;
        let average_rank = next_rank + (t - 1.0) / 2.0;
        rank_sum_a += ta as f64 * average_rank;
        tie_term += t * t * t - t;
        next_rank += t;
        i += ta;
        j += tb;
    }
    let (na_f, nb_f) = (na as f64, nb as f64);
    let u_a = rank_sum_a - na_f * (na_f + 1.0) / 2.0;
    let u_b = na_f * nb_f - u_a;
    let mu = na_f * nb_f / 2.0;
    let variance = if n > 1.0 {
        na_f * nb_f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))
    } else {
        0.0
    };
    let (z, p_value) = if variance > 0.0 {
        let d = u_a - mu;
        let z = d.signum() * (d.abs() - 0.5).max(0.0) / variance.sqrt();
        (z, erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0))
    } else {
        (0.0, 1.0)
    };
    MannWhitney {
        u_a,
        u_b,
        z,
        p_value,
    }
}

/// Complementary error function (Numerical Recipes' Chebyshev fit `erfcc`; fractional error
/// below 1.2e-7 everywhere, enough for p-values).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The comparison of one [`Group`] of two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupComparison {
    /// The group.
    pub group: Group,
    /// The comparison; `None` when either run has no successful request in the group.
    pub comparison: Option<Comparison>,
}

/// Compares every group of two runs' rows: all, cold, warm, and each burst size present in
/// both. Each group's bootstrap is seeded with [`Group::seed`]`(seed)`; `noise_threshold` as in
/// [`compare_groups_with`].
pub fn compare_rows(
    a: &[LatencyRow],
    b: &[LatencyRow],
    seed: u64,
    noise_threshold: f64,
) -> Vec<GroupComparison> {
    let groups_b = Group::of_rows(b);
    Group::of_rows(a)
        .into_iter()
        .filter(|g| groups_b.contains(g))
        .map(|group| GroupComparison {
            group,
            comparison: compare_groups_with(
                &group.latencies(a),
                &group.latencies(b),
                &BootstrapConfig::new(group.seed(seed)),
                noise_threshold,
            )
            .ok(),
        })
        .collect()
}

/// Renders group comparisons as plain text: an aligned table (medians, p99s, differences
/// with CIs, p-value, verdict), then one sentence per compared group naming the runs `a` and
/// `b`. Groups without data show `-`. Ends with a newline.
pub fn render_comparison(a: &str, b: &str, groups: &[GroupComparison]) -> String {
    let headers = [
        "group".to_owned(),
        "n A".to_owned(),
        "n B".to_owned(),
        "p50 A ms".to_owned(),
        "p50 B ms".to_owned(),
        "p50 B-A ms [CI]".to_owned(),
        "p99 A ms".to_owned(),
        "p99 B ms".to_owned(),
        "p99 B-A ms [CI]".to_owned(),
        "MW p".to_owned(),
        "verdict".to_owned(),
    ];
    let mut rows = vec![headers];
    for g in groups {
        let row = match &g.comparison {
            Some(c) => {
                let diff = |d: &Difference| match d.ci {
                    Some(ci) => format!(
                        "{} [{}, {}]",
                        signed(d.diff),
                        signed(ci.lower),
                        signed(ci.upper)
                    ),
                    None => signed(d.diff),
                };
                [
                    g.group.to_string(),
                    c.n_a.to_string(),
                    c.n_b.to_string(),
                    format!("{:.2}", c.median.a),
                    format!("{:.2}", c.median.b),
                    diff(&c.median),
                    format!("{:.2}", c.p99.a),
                    format!("{:.2}", c.p99.b),
                    diff(&c.p99),
                    p_cell(c.mann_whitney.p_value),
                    c.verdict.to_string(),
                ]
            }
            None => std::array::from_fn(|i| {
                if i == 0 {
                    g.group.to_string()
                } else {
                    "-".to_owned()
                }
            }),
        };
        rows.push(row);
    }
    let mut out = crate::summary::align_columns(&rows);
    for g in groups {
        if let Some(c) = &g.comparison {
            out.push_str(&format!("{}: {}\n", g.group, c.describe(a, b)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::tests::sample_row;
    use crate::uncertainty::tests::shifted_exp;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn mann_whitney_textbook_example() {
        // SciPy's documentation example (Conover): males vs females. U_males = 17; SciPy's
        // asymptotic p with continuity correction is 0.11134688653314041.
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let mw = mann_whitney_u(&males, &females).expect("non-empty");
        assert_eq!((mw.u_a, mw.u_b), (17.0, 3.0));
        assert!(close(mw.p_value, 0.111_346_886_533_140_41, 1e-7), "{mw:?}");
        assert!(mw.z > 0.0);
    }

    #[test]
    fn mann_whitney_with_ties_matches_scipy() {
        // scipy.stats.mannwhitneyu(a, b, method="asymptotic") -> U = 8.5, p = 0.025144761173357368
        let a = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0];
        let b = [2.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0];
        let mw = mann_whitney_u(&a, &b).expect("non-empty");
        assert_eq!(mw.u_a, 8.5);
        assert!(close(mw.p_value, 0.025_144_761_173_357_368, 1e-7), "{mw:?}");
        assert!(mw.z < 0.0);
    }

    #[test]
    fn mann_whitney_degenerate_cases() {
        let same = mann_whitney_u(&[5.0; 4], &[5.0; 3]).expect("non-empty");
        assert_eq!(
            (same.u_a, same.u_b, same.z, same.p_value),
            (6.0, 6.0, 0.0, 1.0)
        );
        let one = mann_whitney_u(&[1.0], &[2.0]).expect("non-empty");
        assert_eq!((one.u_a, one.u_b), (0.0, 1.0));
        assert!((0.0..=1.0).contains(&one.p_value));
        assert_eq!(mann_whitney_u(&[], &[1.0]), None);
        assert_eq!(mann_whitney_u(&[f64::NAN], &[1.0]), None);
    }

    #[test]
    fn erfc_reference_values() {
        // erfc(0) = 1, erfc(1) = 0.15729920705028513, erfc(3) = 2.209049699858544e-05.
        assert!(close(erfc(0.0), 1.0, 1e-7));
        assert!(close(erfc(1.0), 0.157_299_207_050_285_13, 1e-7));
        assert!((erfc(3.0) / 2.209_049_699_858_544e-5 - 1.0).abs() < 1e-6);
        assert!(close(erfc(-1.0), 2.0 - 0.157_299_207_050_285_13, 1e-7));
    }

    #[test]
    fn finds_a_ten_ms_shift() {
        // Same shape (40 ms + Exp(mean 15 ms)), B shifted by +10 ms, independent draws.
        let a = shifted_exp(400, 40.0, 15.0, 1);
        let b = shifted_exp(400, 50.0, 15.0, 2);
        let c = compare_groups(&a, &b, 7).expect("compare");
        assert_eq!(c.verdict, Verdict::Slower, "{}", c.sentence);
        let ci = c.median.ci.expect("ci");
        assert!(ci.lower > 0.0 && ci.contains(10.0), "{ci:?}");
        assert!(c.mann_whitney.p_value < 1e-6);
        assert!(
            c.sentence.starts_with("B is slower than A"),
            "{}",
            c.sentence
        );
        let back = compare_groups(&b, &a, 7).expect("compare");
        assert_eq!(back.verdict, Verdict::Faster, "{}", back.sentence);
    }

    #[test]
    fn same_distribution_is_within_noise() {
        for seed in 0..5 {
            let a = shifted_exp(400, 40.0, 15.0, 100 + seed);
            let b = shifted_exp(400, 40.0, 15.0, 200 + seed);
            let c = compare_groups(&a, &b, seed).expect("compare");
            assert_eq!(c.verdict, Verdict::WithinNoise, "{}", c.sentence);
            assert!(c.sentence.contains("within noise"), "{}", c.sentence);
        }
    }

    #[test]
    fn a_small_significant_shift_is_noise_under_the_threshold_only() {
        // Two runs 2 % apart (medians 5.69 ms and 5.82 ms) with many requests: the rank test
        // calls it significant, but the CI lies inside ±5 % of A's median.
        let a = shifted_exp(2000, 5.0, 1.0, 11);
        let b: Vec<f64> = shifted_exp(2000, 5.0, 1.0, 12)
            .iter()
            .map(|x| x * 1.02)
            .collect();
        let strict = compare_groups_with(&a, &b, &BootstrapConfig::new(3), 0.0).expect("compare");
        assert!(
            strict.mann_whitney.p_value < SIGNIFICANCE_LEVEL,
            "{}",
            strict.sentence
        );
        assert_eq!(strict.verdict, Verdict::Slower, "{}", strict.sentence);
        let c = compare_groups(&a, &b, 3).expect("compare");
        assert_eq!(c.verdict, Verdict::WithinNoise, "{}", c.sentence);
        assert!(
            c.sentence
                .contains("a median CI beyond ±0.28 ms (5% of A's median)"),
            "{}",
            c.sentence
        );
        // A 20 % shift is beyond the threshold.
        let slower: Vec<f64> = a.iter().map(|x| x * 1.2).collect();
        let c = compare_groups(&a, &slower, 3).expect("compare");
        assert_eq!(c.verdict, Verdict::Slower, "{}", c.sentence);
    }

    #[test]
    fn empty_groups_are_errors() {
        assert_eq!(
            compare_groups(&[], &[1.0], 1),
            Err(CompareError::EmptyGroup { side: "A" })
        );
        assert_eq!(
            compare_groups(&[1.0], &[f64::NAN], 1),
            Err(CompareError::EmptyGroup { side: "B" })
        );
    }

    #[test]
    fn compare_rows_and_render() {
        let rows = |lats: &[f64], cold: bool| -> Vec<LatencyRow> {
            lats.iter()
                .map(|&l| LatencyRow {
                    client_latency_ms: Some(l),
                    cold: Some(cold),
                    burst_size: 1,
                    ..sample_row()
                })
                .collect()
        };
        let a = rows(&shifted_exp(300, 40.0, 15.0, 1), false);
        let b = rows(&shifted_exp(300, 60.0, 15.0, 2), false);
        let groups = compare_rows(&a, &b, 3, DEFAULT_NOISE_THRESHOLD);
        let names: Vec<String> = groups.iter().map(|g| g.group.to_string()).collect();
        assert_eq!(names, ["all", "cold", "warm", "burst-size-1"]);
        assert!(groups[1].comparison.is_none());
        let all = groups[0].comparison.as_ref().expect("all");
        assert_eq!(all.verdict, Verdict::Slower);
        let text = render_comparison("run-1", "run-2", &groups);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("group         n A  n B  p50 A ms"),
            "{text}"
        );
        let cold: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            cold,
            ["cold", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"]
        );
        let all_cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(all_cells[all_cells.len() - 2..], ["<0.001", "slower"]);
        assert!(
            text.contains("all: run-2 is slower than run-1: median +"),
            "{text}"
        );
        assert!(text.ends_with('\n') && !text.lines().any(|l| l.ends_with(' ')));
    }

    fn sample() -> impl Strategy<Value = Vec<f64>> {
        // Few distinct values so that ties are common.
        prop::collection::vec((0u8..30).prop_map(f64::from), 1..60)
    }

    proptest! {
        #[test]
        fn u_statistics_add_up_and_p_is_a_probability(a in sample(), b in sample()) {
            let mw = mann_whitney_u(&a, &b).expect("non-empty");
            prop_assert_eq!(mw.u_a + mw.u_b, (a.len() * b.len()) as f64);
            prop_assert!(mw.u_a >= 0.0 && mw.u_b >= 0.0);
            prop_assert!((0.0..=1.0).contains(&mw.p_value), "{:?}", mw);
        }

        #[test]
        fn mann_whitney_is_symmetric(a in sample(), b in sample()) {
            let ab = mann_whitney_u(&a, &b).expect("non-empty");
            let ba = mann_whitney_u(&b, &a).expect("non-empty");
            prop_assert_eq!((ab.u_a, ab.u_b), (ba.u_b, ba.u_a));
            prop_assert_eq!(ab.z, -ba.z);
            prop_assert_eq!(ab.p_value, ba.p_value);
        }

        #[test]
        fn u_counts_pairs(a in sample(), b in sample()) {
            // U_A = #{(x, y): x > y} + 0.5 #{x == y}, by brute force.
            let mut pairs = 0.0;
            for x in &a {
                for y in &b {
                    pairs += if x > y { 1.0 } else if x == y { 0.5 } else { 0.0 };
                }
            }
            prop_assert_eq!(mann_whitney_u(&a, &b).expect("non-empty").u_a, pairs);
        }

        #[test]
        fn comparison_is_consistent(a in sample(), b in sample(), seed: u64, percent in 0u8..20) {
            let threshold = f64::from(percent) / 100.0;
            let config = BootstrapConfig { resamples: 200, ..BootstrapConfig::new(seed) };
            let c = compare_groups_with(&a, &b, &config, threshold).expect("non-empty");
            let ci = c.median.ci.expect("ci");
            prop_assert!(ci.lower <= ci.upper);
            prop_assert_eq!(c.median.diff, c.median.b - c.median.a);
            let band = threshold * c.median.a.abs();
            let significant = c.mann_whitney.p_value < SIGNIFICANCE_LEVEL;
            match c.verdict {
                Verdict::Slower => prop_assert!(ci.lower > band && significant),
                Verdict::Faster => prop_assert!(ci.upper < -band && significant),
                Verdict::WithinNoise => prop_assert!(!significant || (ci.lower <= band && ci.upper >= -band)),
            }
            prop_assert_eq!(&c, &compare_groups_with(&a, &b, &config, threshold).expect("again"));
        }
    }
}
