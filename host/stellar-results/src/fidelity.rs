//! Schedule fidelity: did the client send requests when the plan said, with the configured
//! gaps between bursts? And was the client itself the bottleneck?
//!
//! Why: a latency benchmark whose client falls behind measures the client. Requests released
//! late bunch up, change which instances are warm, and inflate the tail. So every run's
//! planned and actual send times are checked, and a run the client could not keep up with is
//! reported as such ("saturated") instead of as latency numbers.
//!
//! # Checks
//! - **Send lag** = actual − planned send offset, per request: p50 / p99 / max (nearest rank,
//!   see [`crate::stats`]). Requests more than the tolerance late are counted.
//! - **Saturation**: the client is called saturated when the p99 send lag exceeds the
//!   tolerance. The warning says whether the lag *grew* over the run (median lag of the last
//!   tenth of the requests, in planned order, above the tolerance while the first tenth's was
//!   within it), which is the signature of a client that cannot keep up.
//! - **Gaps between bursts** (realised IATs): a burst is released at the earliest actual send
//!   of its requests; per endpoint, bursts are ordered by planned offset and consecutive
//!   release times are differenced. For fixed and step gaps each realised gap is compared
//!   with the configured one; for the shifted exponential with the planned gap, and the pooled
//!   gaps of all endpoints are tested against the configured distribution with a one-sample
//!   Kolmogorov–Smirnov test.
//! - **KS p-value**: the asymptotic Kolmogorov distribution evaluated at Stephens' corrected
//!   statistic `λ = (√n + 0.12 + 0.11/√n)·D` (Stephens 1970; Numerical Recipes §14.3), accurate
//!   to a few per cent of p for `n >= 5`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::record::LatencyRecord;
use crate::stats::{quantile_sorted, sorted_finite};

/// Why a fidelity check could not be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FidelityError {
    /// There were no requests to check.
    #[error("no requests to check the schedule of")]
    NoRequests,
    /// A planned or actual send time is NaN or infinite.
    #[error("request {index} has a non-finite planned or actual send time")]
    NonFinite {
        /// Position of the request in the input.
        index: usize,
    },
    /// The IAT type name is not one stellar knows.
    #[error("unknown IAT type `{0}` (expected stochastic, deterministic or step)")]
    UnknownIatType(String),
    /// The IAT model's parameters are out of range.
    #[error("invalid IAT model: {0}")]
    InvalidModel(String),
    /// The check's settings are out of range.
    #[error("invalid fidelity settings: {0}")]
    InvalidConfig(String),
}

/// One request's place in the schedule (a projection of a [`crate::LatencyRow`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendRecord {
    /// Endpoint (stream) the request went to.
    pub endpoint: u32,
    /// Burst the request belonged to.
    pub burst_id: u64,
    /// Planned send offset, ms since the run's start.
    pub planned_ms: f64,
    /// Actual send offset, ms since the run's start.
    pub actual_ms: f64,
}

impl<R: LatencyRecord> From<&R> for SendRecord {
    fn from(row: &R) -> Self {
        Self {
            endpoint: row.endpoint(),
            burst_id: row.burst_id(),
            planned_ms: row.planned_send_ms(),
            actual_ms: row.actual_send_ms(),
        }
    }
}

/// Something that has a place in the schedule: a [`SendRecord`], or any row.
pub trait AsSendRecord {
    /// The projection.
    fn send_record(&self) -> SendRecord;
}

impl AsSendRecord for SendRecord {
    fn send_record(&self) -> SendRecord {
        *self
    }
}

impl<R: LatencyRecord> AsSendRecord for R {
    fn send_record(&self) -> SendRecord {
        SendRecord::from(self)
    }
}

/// The configured distribution of the gaps between one endpoint's bursts (mirrors the
/// samplers of `stellar-config`'s `iat` module; all values in ms).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum IatModel {
    /// `shift + scale·E` with `E ~ Exp(1)`: `F(x) = 1 − exp(−(x − shift)/scale)` for
    /// `x >= shift`. STeLLAR's `stochastic` with `F > 1` s: shift `F`, scale `ln F`.
    ShiftedExponential {
        /// Smallest possible gap (ms).
        shift_ms: f64,
        /// Mean excess over the shift (ms), > 0.
        scale_ms: f64,
    },
    /// Every gap is exactly this long (`deterministic`, and `stochastic` with `F <= 1` s).
    Fixed {
        /// The gap (ms).
        gap_ms: f64,
    },
    /// The j-th gap (j = 1, 2, …) is `min(j s, cap)` (`step`).
    Step {
        /// The cap (ms).
        cap_ms: f64,
    },
}

impl IatModel {
    /// The model stellar's sampler uses for `IATType = iat_type` and `IATSeconds =
    /// iat_seconds`.
    pub fn from_stellar(iat_type: &str, iat_seconds: f64) -> Result<Self, FidelityError> {
        if !(iat_seconds.is_finite() && iat_seconds >= 0.0) {
            return Err(FidelityError::InvalidModel(format!(
                "IATSeconds must be finite and >= 0, not {iat_seconds}"
            )));
        }
        let ms = iat_seconds * 1000.0;
        match iat_type {
            "stochastic" if iat_seconds > 1.0 => Ok(Self::ShiftedExponential {
                shift_ms: ms,
                scale_ms: iat_seconds.ln() * 1000.0,
            }),
            "stochastic" | "deterministic" => Ok(Self::Fixed { gap_ms: ms }),
            "step" => Ok(Self::Step { cap_ms: ms }),
            other => Err(FidelityError::UnknownIatType(other.to_owned())),
        }
    }

    /// The CDF of one gap at `x_ms`.
    pub fn cdf(&self, x_ms: f64) -> f64 {
        match *self {
            Self::ShiftedExponential { shift_ms, scale_ms } => {
                if x_ms <= shift_ms {
                    0.0
                } else {
                    -(-(x_ms - shift_ms) / scale_ms).exp_m1()
                }
            }
            Self::Fixed { gap_ms } => f64::from(u8::from(x_ms >= gap_ms)),
            // The gaps of a step schedule are not identically distributed; this is the CDF of
            // the long-run gap (the cap).
            Self::Step { cap_ms } => f64::from(u8::from(x_ms >= cap_ms)),
        }
    }

    /// The gap the model prescribes for an endpoint's `j`-th gap (1-based); `None` for a
    /// random model.
    pub fn expected_gap_ms(&self, j: u64) -> Option<f64> {
        match *self {
            Self::ShiftedExponential { .. } => None,
            Self::Fixed { gap_ms } => Some(gap_ms),
            Self::Step { cap_ms } => Some((j as f64 * 1000.0).min(cap_ms)),
        }
    }

    fn validate(&self) -> Result<(), FidelityError> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        let valid = match *self {
            Self::ShiftedExponential { shift_ms, scale_ms } => {
                ok(shift_ms) && ok(scale_ms) && scale_ms > 0.0
            }
            Self::Fixed { gap_ms } => ok(gap_ms),
            Self::Step { cap_ms } => ok(cap_ms),
        };
        if valid {
            Ok(())
        } else {
            Err(FidelityError::InvalidModel(format!(
                "{self} needs finite, non-negative parameters (and a positive scale)"
            )))
        }
    }
}

impl fmt::Display for IatModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShiftedExponential { shift_ms, scale_ms } => write!(
                f,
                "shifted exponential gap (at least {shift_ms:.1} ms, plus on average {scale_ms:.1} ms)"
            ),
            Self::Fixed { gap_ms } => write!(f, "fixed gap of {gap_ms:.1} ms"),
            Self::Step { cap_ms } => write!(f, "step gaps (1 s, 2 s, ... up to {cap_ms:.1} ms)"),
        }
    }
}

/// Settings of [`check_fidelity`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FidelityConfig {
    /// A request sent more than this late (ms) counts as late; also the tolerance for gaps.
    pub late_tolerance_ms: f64,
    /// KS p-values below this reject the configured distribution.
    pub significance: f64,
    /// The KS test is run only with at least this many gaps.
    pub min_ks_gaps: usize,
}

impl Default for FidelityConfig {
    /// 10 ms tolerance, significance 0.01, at least 8 gaps for KS.
    fn default() -> Self {
        Self {
            late_tolerance_ms: 10.0,
            significance: 0.01,
            min_ks_gaps: 8,
        }
    }
}

/// Send-lag percentiles (ms).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagSummary {
    /// Median lag.
    pub p50_ms: f64,
    /// 99th percentile lag.
    pub p99_ms: f64,
    /// Largest lag.
    pub max_ms: f64,
    /// Smallest lag (negative when a request went out early).
    pub min_ms: f64,
}

/// Median send lag at the start and at the end of the run (in planned order).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagTrend {
    /// Median lag of the first tenth of the requests (ms).
    pub first_decile_p50_ms: f64,
    /// Median lag of the last tenth of the requests (ms).
    pub last_decile_p50_ms: f64,
}

/// A one-sample Kolmogorov–Smirnov test result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KsResult {
    /// `D = sup |ECDF(x) − F(x)|`, in `[0, 1]`.
    pub statistic: f64,
    /// Asymptotic p-value with Stephens' correction, in `[0, 1]`.
    pub p_value: f64,
    /// Number of samples.
    pub n: u64,
}

/// What [`check_fidelity`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FidelityReport {
    /// Number of requests checked.
    pub requests: u64,
    /// Send-lag percentiles.
    pub send_lag: LagSummary,
    /// Requests sent more than `late_tolerance_ms` late.
    pub late_count: u64,
    /// The tolerance used (ms).
    pub late_tolerance_ms: f64,
    /// Lag at the start vs the end of the run; `None` with fewer than 10 requests.
    pub lag_trend: Option<LagTrend>,
    /// Number of realised gaps between bursts examined.
    pub gaps: u64,
    /// Largest `|realised − expected|` gap (ms): expected is the configured gap for fixed and
    /// step models, the planned gap for the shifted exponential. `None` without gaps.
    pub gap_max_deviation_ms: Option<f64>,
    /// KS test of the realised gaps against the shifted exponential; `None` for other models
    /// or too few gaps.
    pub ks: Option<KsResult>,
    /// The client could not keep to the schedule; its latency numbers should not be trusted.
    pub saturated: bool,
    /// Problems found, in plain English; empty for a faithful run.
    pub warnings: Vec<String>,
}

impl FidelityReport {
    /// True when no problem was found.
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty()
    }
}

/// [`check_fidelity`] over the rows of one sub-experiment.
pub fn check_rows<R: LatencyRecord>(
    rows: &[R],
    model: &IatModel,
    config: &FidelityConfig,
) -> Result<FidelityReport, FidelityError> {
    check_fidelity(rows, model, config)
}

/// Checks one sub-experiment's send times against its schedule and IAT model (see the module
/// doc for what is checked).
pub fn check_fidelity<S: AsSendRecord>(
    sends: &[S],
    model: &IatModel,
    config: &FidelityConfig,
) -> Result<FidelityReport, FidelityError> {
    let tol = config.late_tolerance_ms;
    if !(tol.is_finite() && tol >= 0.0) {
        return Err(FidelityError::InvalidConfig(format!(
            "late tolerance must be finite and >= 0 ms, not {tol}"
        )));
    }
    if !(config.significance > 0.0 && config.significance < 1.0) {
        return Err(FidelityError::InvalidConfig(format!(
            "significance must be between 0 and 1, not {}",
            config.significance
        )));
    }
    model.validate()?;
    if sends.is_empty() {
        return Err(FidelityError::NoRequests);
    }
    if let Some(index) = sends.iter().position(|s| {
        let s = s.send_record();
        !(s.planned_ms.is_finite() && s.actual_ms.is_finite())
    }) {
        return Err(FidelityError::NonFinite { index });
    }

    let mut lags: Vec<f64> = sends
        .iter()
        .map(|s| {
            let s = s.send_record();
            s.actual_ms - s.planned_ms
        })
        .collect();
    let late_count = lags.iter().filter(|&&l| l > tol).count();
    let early_count = lags.iter().filter(|&&l| l < -tol).count();
    let lag_trend = lag_trend(sends, &lags);
    // Sorted in place (the lags are all finite, checked above): one copy fewer of a
    // million-request run.
    lags.sort_unstable_by(f64::total_cmp);
    let sorted = lags;
    let q = |p| quantile_sorted(&sorted, p).unwrap_or(f64::NAN);
    let send_lag = LagSummary {
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: q(1.0),
        min_ms: q(0.0),
    };

    let (gaps, deviations) = burst_gaps(sends, model);
    let gap_max_deviation_ms = deviations.iter().copied().reduce(f64::max);
    let ks = match model {
        IatModel::ShiftedExponential { .. } if gaps.len() >= config.min_ks_gaps.max(1) => {
            ks_one_sample(&gaps, |x| model.cdf(x))
        }
        _ => None,
    };

    let n = sends.len();
    let mut warnings = Vec::new();
    let saturated = send_lag.p99_ms > tol;
    if saturated {
        let how = match lag_trend {
            Some(t) if t.last_decile_p50_ms > tol && t.first_decile_p50_ms <= tol => format!(
                "its send lag grew from a median of {:.1} ms in the first tenth of the run to \
                 {:.1} ms in the last tenth",
                t.first_decile_p50_ms, t.last_decile_p50_ms
            ),
            _ => format!(
                "the p99 send lag is {:.1} ms (max {:.1} ms), above the {tol} ms tolerance",
                send_lag.p99_ms, send_lag.max_ms
            ),
        };
        warnings.push(format!(
            "The client could not keep to the schedule (saturated): {how}. {late_count} of {n} \
             requests were sent more than {tol} ms late. These latencies partly measure the \
             client, not the function; do not publish them. Send fewer requests at once or use \
             a faster (or more) client machines."
        ));
    } else if late_count > 0 {
        warnings.push(format!(
            "{late_count} of {n} requests ({:.1} %) were sent more than {tol} ms late \
             (max {:.1} ms).",
            100.0 * late_count as f64 / n as f64,
            send_lag.max_ms
        ));
    }
    if early_count > 0 {
        warnings.push(format!(
            "{early_count} of {n} requests were sent more than {tol} ms before their planned \
             time (min lag {:.1} ms): the scheduler did not follow the plan.",
            send_lag.min_ms
        ));
    }
    if let Some(dev) = gap_max_deviation_ms.filter(|&d| d > tol) {
        let against = match model {
            IatModel::ShiftedExponential { .. } => "the planned gaps".to_owned(),
            _ => format!("the configured {model}"),
        };
        warnings.push(format!(
            "The gaps between bursts differ from {against} by up to {dev:.1} ms (tolerance \
             {tol} ms)."
        ));
    }
    if let Some(ks) = ks.filter(|k| k.p_value < config.significance) {
        warnings.push(format!(
            "The gaps between bursts do not follow the configured {model}: Kolmogorov-Smirnov \
             D = {:.3} over {} gaps, p = {:.2e} (below {}).",
            ks.statistic, ks.n, ks.p_value, config.significance
        ));
    }

    Ok(FidelityReport {
        requests: n as u64,
        send_lag,
        late_count: late_count as u64,
        late_tolerance_ms: tol,
        lag_trend,
        gaps: gaps.len() as u64,
        gap_max_deviation_ms,
        ks,
        saturated,
        warnings,
    })
}

/// Median lag of the first and last tenth of the requests in planned order (>= 10 requests).
fn lag_trend<S: AsSendRecord>(sends: &[S], lags: &[f64]) -> Option<LagTrend> {
    let n = sends.len();
    if n < 10 {
        return None;
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (
            sends[i as usize].send_record(),
            sends[j as usize].send_record(),
        );
        a.planned_ms
            .total_cmp(&b.planned_ms)
            .then(a.actual_ms.total_cmp(&b.actual_ms))
    });
    let k = n.div_ceil(10);
    let median = |idx: &[u32]| {
        let v: Vec<f64> = idx
            .iter()
            .filter_map(|&i| lags.get(i as usize).copied())
            .collect();
        quantile_sorted(&sorted_finite(&v), 0.5)
    };
    Some(LagTrend {
        first_decile_p50_ms: median(order.get(..k)?)?,
        last_decile_p50_ms: median(order.get(n - k..)?)?,
    })
}

/// Realised gaps between consecutive bursts of each endpoint (pooled), and each gap's
/// absolute deviation from the expected gap (configured, or planned for random models).
fn burst_gaps<S: AsSendRecord>(sends: &[S], model: &IatModel) -> (Vec<f64>, Vec<f64>) {
    // (endpoint, burst) -> (planned release, actual release) = earliest send of the burst.
    let mut bursts: BTreeMap<(u32, u64), (f64, f64)> = BTreeMap::new();
    for s in sends {
        let s = s.send_record();
        bursts
            .entry((s.endpoint, s.burst_id))
            .and_modify(|(p, a)| {
                *p = p.min(s.planned_ms);
                *a = a.min(s.actual_ms);
            })
            .or_insert((s.planned_ms, s.actual_ms));
    }
    let mut per_endpoint: BTreeMap<u32, Vec<(f64, u64, f64)>> = BTreeMap::new();
    for (&(endpoint, burst), &(planned, actual)) in &bursts {
        per_endpoint
            .entry(endpoint)
            .or_default()
            .push((planned, burst, actual));
    }
    let mut gaps = Vec::new();
    let mut deviations = Vec::new();
    for releases in per_endpoint.values_mut() {
        releases.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (j, pair) in (1u64..).zip(releases.windows(2)) {
            let [(p0, _, a0), (p1, _, a1)] = pair else {
                continue;
            };
            let realised = a1 - a0;
            let expected = model.expected_gap_ms(j).unwrap_or(p1 - p0);
            gaps.push(realised);
            deviations.push((realised - expected).abs());
        }
    }
    (gaps, deviations)
}

/// One-sample Kolmogorov–Smirnov test of `samples` against the continuous CDF `cdf` (values
/// are clamped into `[0, 1]`). `None` for an empty sample, a non-finite sample or a CDF that
/// returns NaN.
pub fn ks_one_sample(samples: &[f64], cdf: impl Fn(f64) -> f64) -> Option<KsResult> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let sorted = sorted_finite(samples);
    let n = sorted.len() as f64;
    let mut d: f64 = 0.0;
    for (i, &x) in sorted.iter().enumerate() {
        let f = cdf(x);
        if f.is_nan() {
            return None;
        }
        let f = f.clamp(0.0, 1.0);
        d = d.max((i as f64 + 1.0) / n - f).max(f - i as f64 / n);
    }
    let statistic = d.clamp(0.0, 1.0);
    Some(KsResult {
        statistic,
        p_value: ks_p_value(statistic, sorted.len()),
        n: sorted.len() as u64,
    })
}

/// The asymptotic p-value of a one-sample KS statistic `d` over `n` samples, with Stephens'
/// small-sample correction (see the module doc).
pub fn ks_p_value(d: f64, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let sqrt_n = (n as f64).sqrt();
    kolmogorov_survival((sqrt_n + 0.12 + 0.11 / sqrt_n) * d)
}

/// `Q_KS(λ) = P(K > λ)` of the Kolmogorov distribution, `2 Σ_{k>=1} (−1)^{k−1} e^{−2k²λ²}`
/// (for `λ < 1.18` through its Jacobi-theta form, which converges fast there). Clamped into
/// `[0, 1]`; 1 for `λ <= 0.1` (and NaN).
pub fn kolmogorov_survival(lambda: f64) -> f64 {
    if lambda.is_nan() || lambda <= 0.1 {
        return 1.0;
    }
    let q = if lambda < 1.18 {
        let y = (-std::f64::consts::PI.powi(2) / (8.0 * lambda * lambda)).exp();
        let series = y + y.powi(9) + y.powi(25) + y.powi(49);
        1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * series
    } else {
        let x = (-2.0 * lambda * lambda).exp();
        2.0 * (x - x.powi(4) + x.powi(9) - x.powi(16))
    };
    q.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::tests::sample_row;
    use crate::uncertainty::tests::shifted_exp;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A round-robin schedule: `endpoints` endpoints, each with `gaps.len() + 1` bursts of
    /// `size` requests (gaps assigned to endpoints in turn), the first at offset 0. Each
    /// request's actual send is `planned + lag(request index)`.
    fn schedule(
        endpoints: u32,
        size: u32,
        gaps: &[f64],
        lag: impl Fn(usize) -> f64,
    ) -> Vec<SendRecord> {
        let per_endpoint = gaps.len() / endpoints as usize;
        let mut out = Vec::new();
        for e in 0..endpoints {
            let mut offset = 0.0;
            for round in 0..=per_endpoint {
                if round > 0 {
                    offset += gaps[(round - 1) * endpoints as usize + e as usize];
                }
                for _ in 0..size {
                    let planned = offset;
                    out.push(SendRecord {
                        endpoint: e,
                        burst_id: round as u64 * u64::from(endpoints) + u64::from(e),
                        planned_ms: planned,
                        actual_ms: planned + lag(out.len()),
                    });
                }
            }
        }
        out
    }

    /// Sub-ms pseudo-random lag, as an honest client shows.
    fn honest_lag(i: usize) -> f64 {
        0.05 + (splitmix(i as u64) % 750) as f64 / 1000.0
    }

    fn splitmix(x: u64) -> u64 {
        crate::uncertainty::splitmix64(x)
    }

    fn stochastic_3s() -> IatModel {
        IatModel::from_stellar("stochastic", 3.0).expect("model")
    }

    fn check(sends: &[SendRecord], model: &IatModel) -> FidelityReport {
        check_fidelity(sends, model, &FidelityConfig::default()).expect("check")
    }

    #[test]
    fn honest_run_passes() {
        let gaps = shifted_exp(200, 3000.0, 3.0f64.ln() * 1000.0, 1);
        let sends = schedule(4, 5, &gaps, honest_lag);
        let r = check(&sends, &stochastic_3s());
        assert!(r.is_clean(), "{:?}", r.warnings);
        assert!(!r.saturated);
        assert_eq!((r.requests, r.late_count, r.gaps), (1020, 0, 200));
        assert!(r.send_lag.max_ms < 1.0 && r.send_lag.p50_ms > 0.0);
        assert!(r.gap_max_deviation_ms.expect("gaps") < 1.0);
        let ks = r.ks.expect("ks");
        assert!(ks.p_value > 0.01, "{ks:?}");
    }

    #[test]
    fn every_send_fifty_ms_late_is_flagged() {
        let gaps = shifted_exp(200, 3000.0, 3.0f64.ln() * 1000.0, 1);
        let sends = schedule(4, 5, &gaps, |_| 50.0);
        let r = check(&sends, &stochastic_3s());
        assert!(r.saturated);
        assert_eq!(r.late_count, 1020);
        assert_eq!(r.send_lag.p50_ms, 50.0);
        assert!(
            r.warnings[0].contains("could not keep to the schedule"),
            "{:?}",
            r.warnings
        );
        assert!(
            r.warnings[0].contains("1020 of 1020 requests"),
            "{:?}",
            r.warnings
        );
        // A constant lag leaves the gaps intact: only the lag is reported.
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    }

    #[test]
    fn uniform_gaps_are_not_a_shifted_exponential() {
        // Same support start and mean as the configured model, wrong shape.
        let scale = 3.0f64.ln() * 1000.0;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let gaps: Vec<f64> = (0..200)
            .map(|_| 3000.0 + rng.random_range(0.0..2.0 * scale))
            .collect();
        let r = check(&schedule(1, 1, &gaps, honest_lag), &stochastic_3s());
        let ks = r.ks.expect("ks");
        assert_eq!(ks.n, 200);
        assert!(ks.p_value < 0.01, "{ks:?}");
        assert!(!r.saturated);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("do not follow the configured shifted exponential")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn true_shifted_exponential_gaps_pass_ks() {
        let scale = 3.0f64.ln() * 1000.0;
        for seed in 10..20 {
            let gaps = shifted_exp(200, 3000.0, scale, seed);
            let r = check(&schedule(1, 1, &gaps, honest_lag), &stochastic_3s());
            let ks = r.ks.expect("ks");
            assert!(ks.p_value > 0.01, "seed {seed}: {ks:?}");
            assert!(r.is_clean(), "{:?}", r.warnings);
        }
    }

    #[test]
    fn a_wrong_fixed_gap_is_flagged() {
        let model = IatModel::from_stellar("deterministic", 1.0).expect("model");
        let mut gaps = vec![1000.0; 30];
        let honest = check(&schedule(2, 3, &gaps, honest_lag), &model);
        assert!(honest.is_clean() && honest.ks.is_none(), "{honest:?}");
        gaps[7] = 1500.0;
        let r = check(&schedule(2, 3, &gaps, honest_lag), &model);
        assert!(!r.saturated);
        let dev = r.gap_max_deviation_ms.expect("gaps");
        assert!((dev - 500.0).abs() < 1.0, "{dev}");
        assert!(
            r.warnings[0].contains("fixed gap of 1000.0 ms"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn step_gaps_follow_the_ramp() {
        let model = IatModel::from_stellar("step", 3.0).expect("model");
        let sends = schedule(1, 2, &[1000.0, 2000.0, 3000.0, 3000.0], honest_lag);
        assert!(check(&sends, &model).is_clean());
        let flat = schedule(1, 2, &[3000.0; 4], honest_lag);
        let r = check(&flat, &model);
        assert_eq!(r.gap_max_deviation_ms.map(f64::round), Some(2000.0));
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    }

    #[test]
    fn growing_lag_is_reported_as_saturation() {
        let gaps = vec![1000.0; 99];
        let sends = schedule(1, 1, &gaps, |i| i as f64 * 2.0);
        let model = IatModel::Fixed { gap_ms: 1000.0 };
        let r = check(&sends, &model);
        assert!(r.saturated);
        let trend = r.lag_trend.expect("trend");
        assert!(trend.first_decile_p50_ms < 10.0 && trend.last_decile_p50_ms > 180.0);
        assert!(r.warnings[0].contains("send lag grew"), "{:?}", r.warnings);
    }

    #[test]
    fn few_late_requests_are_counted_but_not_saturation() {
        let gaps = vec![1000.0; 199];
        let sends = schedule(1, 1, &gaps, |i| if i == 100 { 25.0 } else { 0.1 });
        let r = check(&sends, &IatModel::Fixed { gap_ms: 1000.0 });
        assert!(!r.saturated);
        assert_eq!(r.late_count, 1);
        assert!(
            r.warnings[0].starts_with("1 of 200 requests (0.5 %)"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn early_sends_are_flagged() {
        let sends = schedule(1, 1, &[1000.0; 20], |i| if i == 3 { -40.0 } else { 0.2 });
        let r = check(&sends, &IatModel::Fixed { gap_ms: 1000.0 });
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("before their planned time")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn models_mirror_stellars_samplers() {
        assert_eq!(
            IatModel::from_stellar("stochastic", 600.0),
            Ok(IatModel::ShiftedExponential {
                shift_ms: 600_000.0,
                scale_ms: 600f64.ln() * 1000.0
            })
        );
        assert_eq!(
            IatModel::from_stellar("stochastic", 1.0),
            Ok(IatModel::Fixed { gap_ms: 1000.0 })
        );
        assert_eq!(
            IatModel::from_stellar("stochastic", 0.5),
            Ok(IatModel::Fixed { gap_ms: 500.0 })
        );
        assert_eq!(
            IatModel::from_stellar("deterministic", 2.0),
            Ok(IatModel::Fixed { gap_ms: 2000.0 })
        );
        assert_eq!(
            IatModel::from_stellar("step", 2.5),
            Ok(IatModel::Step { cap_ms: 2500.0 })
        );
        assert_eq!(
            IatModel::from_stellar("gaussian", 1.0),
            Err(FidelityError::UnknownIatType("gaussian".into()))
        );
        assert!(matches!(
            IatModel::from_stellar("step", -1.0),
            Err(FidelityError::InvalidModel(_))
        ));
        let step = IatModel::Step { cap_ms: 2500.0 };
        let expected: Vec<Option<f64>> = (1..=4).map(|j| step.expected_gap_ms(j)).collect();
        assert_eq!(
            expected,
            [Some(1000.0), Some(2000.0), Some(2500.0), Some(2500.0)]
        );
        let exp = IatModel::ShiftedExponential {
            shift_ms: 100.0,
            scale_ms: 10.0,
        };
        assert_eq!(exp.cdf(50.0), 0.0);
        assert!((exp.cdf(110.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let model = IatModel::Fixed { gap_ms: 1.0 };
        let cfg = FidelityConfig::default();
        assert_eq!(
            check_fidelity(&[] as &[SendRecord], &model, &cfg),
            Err(FidelityError::NoRequests)
        );
        let mut sends = schedule(1, 1, &[1.0; 3], |_| 0.0);
        sends[2].actual_ms = f64::NAN;
        assert_eq!(
            check_fidelity(&sends, &model, &cfg),
            Err(FidelityError::NonFinite { index: 2 })
        );
        let bad_cfg = FidelityConfig {
            late_tolerance_ms: -1.0,
            ..cfg
        };
        assert!(matches!(
            check_fidelity(&sends, &model, &bad_cfg),
            Err(FidelityError::InvalidConfig(_))
        ));
        let bad_model = IatModel::ShiftedExponential {
            shift_ms: 1.0,
            scale_ms: 0.0,
        };
        assert!(matches!(
            check_fidelity(&sends, &bad_model, &cfg),
            Err(FidelityError::InvalidModel(_))
        ));
    }

    #[test]
    fn rows_project_to_send_records() {
        let row = sample_row();
        let s = SendRecord::from(&row);
        assert_eq!(
            (s.endpoint, s.burst_id, s.planned_ms, s.actual_ms),
            (1, 3, 3000.0, 3000.4567)
        );
        let r = check_rows(
            &[row],
            &IatModel::Fixed { gap_ms: 1.0 },
            &FidelityConfig::default(),
        )
        .expect("check");
        assert_eq!(
            (r.requests, r.gaps, r.gap_max_deviation_ms, r.lag_trend),
            (1, 0, None, None)
        );
    }

    #[test]
    fn kolmogorov_distribution_matches_scipy() {
        // scipy.special.kolmogorov(x)
        for (x, want) in [
            (0.1, 1.0),
            (0.3, 0.999_990_694_198_665_5),
            (0.5, 0.963_945_244),
            (1.0, 0.269_999_672),
            (1.17, 0.129_390_042_185_618_84),
            (1.19, 0.117_742_292_879_771_66),
            (1.3581, 0.049_999_630_4),
            (1.6276, 0.010_001_537_3),
        ] {
            let got = kolmogorov_survival(x);
            assert!((got - want).abs() < 1e-9, "Q({x}) = {got}, want {want}");
        }
        let tail = kolmogorov_survival(3.0);
        assert!(
            (tail / 3.045_995_948_942_526e-8 - 1.0).abs() < 1e-9,
            "{tail}"
        );
        assert_eq!(kolmogorov_survival(0.0), 1.0);
        assert_eq!(kolmogorov_survival(f64::NAN), 1.0);
    }

    #[test]
    fn ks_small_example_matches_scipy() {
        // scipy.stats.kstest(x, "expon").statistic = 0.2768698398515702; Stephens' λ =
        // 0.7238476938526756 and scipy.special.kolmogorov(λ) = 0.6712565368125657.
        let x = [0.1, 0.5, 0.9, 1.5, 2.0, 3.1];
        let ks = ks_one_sample(&x, |v| 1.0 - (-v).exp()).expect("ks");
        assert!(
            (ks.statistic - 0.276_869_839_851_570_2).abs() < 1e-12,
            "{ks:?}"
        );
        assert!(
            (ks.p_value - 0.671_256_536_812_565_7).abs() < 1e-9,
            "{ks:?}"
        );
        assert_eq!(ks.n, 6);
        assert_eq!(ks_one_sample(&[], |_| 0.5), None);
        assert_eq!(ks_one_sample(&[f64::NAN], |_| 0.5), None);
        assert_eq!(ks_one_sample(&[1.0], |_| f64::NAN), None);
    }

    proptest! {
        #[test]
        fn ks_statistic_and_p_value_are_probabilities(
            x in prop::collection::vec(-1.0e4..1.0e5f64, 1..300),
            shift in 0.0..1.0e4f64,
            scale in 1.0e-3..1.0e4f64,
        ) {
            let model = IatModel::ShiftedExponential { shift_ms: shift, scale_ms: scale };
            let ks = ks_one_sample(&x, |v| model.cdf(v)).expect("ks");
            prop_assert!((0.0..=1.0).contains(&ks.statistic), "{:?}", ks);
            prop_assert!((0.0..=1.0).contains(&ks.p_value), "{:?}", ks);
            // D is at least the largest single-step gap forced by n points: 1/(2n).
            prop_assert!(ks.statistic >= 0.5 / x.len() as f64 - 1e-12);
        }

        #[test]
        fn ks_p_value_falls_as_d_grows(d1 in 0.0..=1.0f64, d2 in 0.0..=1.0f64, n in 1usize..5000) {
            let (lo, hi) = if d1 <= d2 { (d1, d2) } else { (d2, d1) };
            prop_assert!(ks_p_value(lo, n) >= ks_p_value(hi, n));
        }

        #[test]
        fn fidelity_never_panics(
            lags in prop::collection::vec(-100.0..100.0f64, 1..100),
            gap in 0.0..5000.0f64,
        ) {
            let gaps = vec![gap; lags.len().saturating_sub(1)];
            let sends = schedule(1, 1, &gaps, |i| lags[i % lags.len()]);
            let r = check_fidelity(&sends, &IatModel::Fixed { gap_ms: gap }, &FidelityConfig::default())
                .expect("check");
            prop_assert_eq!(r.requests as usize, lags.len());
            prop_assert_eq!(r.saturated, r.send_lag.p99_ms > 10.0);
            prop_assert!(r.send_lag.min_ms <= r.send_lag.p50_ms && r.send_lag.p50_ms <= r.send_lag.max_ms);
        }
    }
}
