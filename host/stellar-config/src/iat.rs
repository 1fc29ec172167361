//! Inter-arrival time (IAT) samplers and the seeded random streams they draw from.
//!
//! Why: the gap between an endpoint's bursts decides whether its requests find warm or cold
//! instances, so it must follow STeLLAR's distributions (where they are sound) and be
//! reproducible: the same seed must give the same schedule, and one endpoint's schedule must not
//! depend on how many samples another endpoint drew.
//!
//! # Random streams
//! Every (sub-experiment, endpoint) pair has its own [`ChaCha8Rng`], seeded with
//! `ChaCha8Rng::seed_from_u64(stream_seed(seed, sub_experiment, endpoint))` where
//!
//! ```text
//! stream_seed(seed, s, e) = splitmix64(splitmix64(splitmix64(seed) ^ s) ^ e)
//! ```
//!
//! and `splitmix64` is the finaliser of Vigna's SplitMix64 generator (see [`splitmix64`]).
//! Streams are independent of each other, so adding an endpoint or a sub-experiment never
//! changes the gaps drawn for the existing ones. The same seed gives the same schedule with the
//! same build of stellar (the exponential sampler is `rand_distr::Exp1`, pinned by `Cargo.lock`).
//!
//! # Distributions (`F` = `IATSeconds`)
//! - **`stochastic`** (STeLLAR's default): STeLLAR's shifted exponential `F + ln(F)·E` with
//!   `E ~ Exp(1)`, for `F >= 1`: every gap is at least `F`, the mean is `F + ln F` (e.g. F = 600 s
//!   gives mean 606.4 s) and `F = 1` gives exactly 1 s. For `0 < F < 1` STeLLAR's formula breaks
//!   (`ln F < 0` gives gaps *below* `F`, about half of them negative, i.e. no wait at all), so
//!   stellar uses the deterministic gap `F` there instead. `F = 0` gives 0. Gaps keep their full
//!   `f64` precision (STeLLAR truncated them to whole ms).
//! - **`deterministic`**: exactly `F` seconds (STeLLAR truncated to whole seconds, so 0.5 became 0).
//! - **`step`**: the ramp STeLLAR intended: the j-th gap (j = 1, 2, …) is `min(j, F)` seconds,
//!   i.e. 1 s, 2 s, 3 s, … capped at `F`. (STeLLAR's code started the ramp at the cap, so every
//!   gap was `F`; its source marks the mode "TODO: TEST THIS".)

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};

/// Largest accepted `IATSeconds` (one year): keeps every offset of a schedule finite.
pub const MAX_IAT_SECONDS: f64 = 31_536_000.0;

/// How the gaps between an endpoint's bursts are drawn (`IATType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IatType {
    /// STeLLAR's shifted exponential `F + ln(F)·E` (deterministic `F` for `F < 1`).
    Stochastic,
    /// Exactly `F` seconds.
    Deterministic,
    /// 1 s, 2 s, 3 s, … capped at `F`.
    Step,
}

impl IatType {
    /// The names accepted in experiment files, in documentation order.
    pub const NAMES: [&'static str; 3] = ["stochastic", "deterministic", "step"];

    /// Parses an `IATType` value (case-sensitive, as STeLLAR).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "stochastic" => Some(Self::Stochastic),
            "deterministic" => Some(Self::Deterministic),
            "step" => Some(Self::Step),
            _ => None,
        }
    }

    /// The name used in experiment files (the inverse of [`IatType::from_name`]).
    pub fn name(self) -> &'static str {
        match self {
            Self::Stochastic => "stochastic",
            Self::Deterministic => "deterministic",
            Self::Step => "step",
        }
    }
}

/// SplitMix64's output function: a bijective 64-bit mixer that turns structured inputs
/// (seed, small indices) into well-spread seeds.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of the random stream of one (sub-experiment, endpoint) pair.
pub fn stream_seed(seed: u64, sub_experiment: usize, endpoint: u32) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ sub_experiment as u64) ^ u64::from(endpoint))
}

/// The random stream of one (sub-experiment, endpoint) pair.
pub fn stream_rng(seed: u64, sub_experiment: usize, endpoint: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(stream_seed(seed, sub_experiment, endpoint))
}

/// Draws the successive gaps of one endpoint.
#[derive(Debug, Clone)]
pub struct IatSampler {
    kind: IatType,
    seconds: f64,
    rng: ChaCha8Rng,
    drawn: u64,
}

impl IatSampler {
    /// A sampler for `IATSeconds = seconds` drawing from `rng`. The plan only passes validated
    /// values (`0 ..= MAX_IAT_SECONDS`); anything else is clamped into that range (NaN to 0).
    pub fn new(kind: IatType, seconds: f64, rng: ChaCha8Rng) -> Self {
        let seconds = if seconds > 0.0 {
            seconds.min(MAX_IAT_SECONDS)
        } else {
            0.0
        };
        Self {
            kind,
            seconds,
            rng,
            drawn: 0,
        }
    }

    /// The next gap, in milliseconds (always finite and >= 0).
    pub fn next_gap_ms(&mut self) -> f64 {
        self.drawn += 1;
        let f = self.seconds;
        let seconds = match self.kind {
            IatType::Deterministic => f,
            IatType::Step => (self.drawn as f64).min(f),
            IatType::Stochastic if f >= 1.0 => {
                let e: f64 = Exp1.sample(&mut self.rng);
                f + f.ln() * e
            }
            IatType::Stochastic => f,
        };
        seconds * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gaps(kind: IatType, seconds: f64, seed: u64, n: usize) -> Vec<f64> {
        let mut sampler = IatSampler::new(kind, seconds, stream_rng(seed, 0, 0));
        (0..n).map(|_| sampler.next_gap_ms()).collect()
    }

    #[test]
    fn names_round_trip() {
        for name in IatType::NAMES {
            let kind = IatType::from_name(name).expect("known");
            assert_eq!(serde_json::to_value(kind).expect("serializes"), name);
            assert_eq!(kind.name(), name);
        }
        assert_eq!(IatType::from_name("gaussian"), None);
        assert_eq!(IatType::from_name("Stochastic"), None);
    }

    #[test]
    fn deterministic_keeps_fractions() {
        assert_eq!(
            gaps(IatType::Deterministic, 0.25, 1, 3),
            [250.0, 250.0, 250.0]
        );
    }

    #[test]
    fn step_ramps_up_to_the_cap() {
        assert_eq!(
            gaps(IatType::Step, 3.0, 1, 5),
            [1000.0, 2000.0, 3000.0, 3000.0, 3000.0]
        );
        assert_eq!(
            gaps(IatType::Step, 2.5, 1, 4),
            [1000.0, 2000.0, 2500.0, 2500.0]
        );
        assert_eq!(gaps(IatType::Step, 0.5, 1, 2), [500.0, 500.0]);
        assert_eq!(gaps(IatType::Step, 0.0, 1, 2), [0.0, 0.0]);
    }

    #[test]
    fn stochastic_corner_cases() {
        assert_eq!(
            gaps(IatType::Stochastic, 1.0, 9, 3),
            [1000.0, 1000.0, 1000.0]
        );
        assert_eq!(gaps(IatType::Stochastic, 0.5, 9, 3), [500.0, 500.0, 500.0]);
        assert_eq!(gaps(IatType::Stochastic, 0.0, 9, 2), [0.0, 0.0]);
        assert_eq!(gaps(IatType::Stochastic, f64::NAN, 9, 1), [0.0]);
    }

    #[test]
    fn stochastic_mean_is_f_plus_ln_f() {
        for f in [3.0_f64, 10.0, 600.0] {
            let n = 20_000;
            let mean_s =
                gaps(IatType::Stochastic, f, 12345, n).iter().sum::<f64>() / n as f64 / 1000.0;
            let expected = f + f.ln();
            // Std of the mean is ln(F)/sqrt(n) < 0.05 for F <= 600; allow ~5 sigma.
            assert!(
                (mean_s - expected).abs() < 0.25,
                "F={f}: mean {mean_s}, expected {expected}"
            );
        }
    }

    #[test]
    fn streams_are_independent_and_distinct() {
        let seeds: Vec<u64> = (0..4u32)
            .flat_map(|e| (0..4usize).map(move |s| stream_seed(42, s, e)))
            .collect();
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert_ne!(stream_seed(1, 0, 0), stream_seed(2, 0, 0));
    }

    proptest! {
        #[test]
        fn stochastic_gaps_are_at_least_f(f in 1.0f64..10_000.0, seed: u64) {
            for gap in gaps(IatType::Stochastic, f, seed, 50) {
                prop_assert!(gap >= f * 1000.0, "gap {} < F {}", gap, f);
                prop_assert!(gap.is_finite());
            }
        }

        #[test]
        fn every_kind_gives_finite_non_negative_gaps(kind_index in 0usize..3, f in proptest::num::f64::ANY, seed: u64) {
            let kind = [IatType::Stochastic, IatType::Deterministic, IatType::Step][kind_index];
            for gap in gaps(kind, f, seed, 10) {
                prop_assert!(gap.is_finite() && gap >= 0.0, "gap {} for F {}", gap, f);
            }
        }
    }
}
