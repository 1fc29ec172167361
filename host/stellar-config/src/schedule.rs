//! The request schedule of a sub-experiment: which burst goes to which endpoint, when, how big,
//! and how long each request should spin.
//!
//! Why: the whole schedule is computed up front from the experiment file and the seed, written
//! to `plan.json`, and then only *executed* by the driver. So a run can be inspected before it
//! starts, repeated exactly, and compared with what actually happened.
//!
//! # Schedule semantics
//!
//! A sub-experiment with `Bursts` = B and `Parallelism` = P deploys P identical functions
//! (endpoints 0 … P−1) and sends B bursts:
//!
//! - **Round-robin.** Burst `k` (0 ≤ k < B) goes to endpoint `k % P` in round `k / P`, as in
//!   STeLLAR. Its **size** is `BurstSizes[round % len]` (cycled; all endpoints of a round get the
//!   same size), its **service time** is `DesiredServiceTimes[min(round, len−1)]` (advances, then
//!   sticks at the last entry; this is what STeLLAR's code does, although its docs say cyclic),
//!   and, when `BusySpinIncrements` is given, its **increment limit** is
//!   `BusySpinIncrements[min(round, len−1)]`.
//! - **Independent timelines.** Each endpoint has its own absolute timeline: its j-th burst
//!   (round j) is due at `offset = gap₁ + … + gapⱼ` after the sub-experiment starts, where the
//!   gaps are drawn for that endpoint alone (see [`crate::iat`]). The first burst of every endpoint
//!   is at offset 0. All requests of a burst are released together.
//! - **Differences from STeLLAR.** STeLLAR sends a round's bursts one endpoint after another,
//!   each blocking until all its responses are back, so one slow burst delays every other
//!   endpoint and the effective gap is "sampled IAT + time spent on the other endpoints". It
//!   also sleeps one IAT *before* the first round. stellar does neither: offsets are absolute,
//!   so a slow burst never shifts another burst, and the first bursts start immediately.
//! - **Order.** The plan lists bursts sorted by `(offset_ms, burst_id)`, which is the order in
//!   which they are due.

use serde::{Deserialize, Serialize};

use crate::iat::{IatSampler, IatType, stream_rng};

/// One burst of the schedule: `size` concurrent requests to one endpoint at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedBurst {
    /// Global burst index within the sub-experiment, 0 … Bursts−1 (STeLLAR's `Burst ID`).
    pub burst_id: u64,
    /// Endpoint (function replica) index, 0 … Parallelism−1.
    pub endpoint: u32,
    /// Round of this burst (`burst_id / Parallelism`), i.e. the endpoint's own burst counter.
    pub round: u64,
    /// Number of concurrent requests.
    pub size: u32,
    /// When the burst is due, in ms after the sub-experiment starts.
    pub offset_ms: f64,
    /// Desired service time (busy spin) of each request, in ms.
    pub spin_ms: f64,
    /// Explicit busy-spin iteration count (`BusySpinIncrements`), when the file gives one.
    pub increment_limit: Option<u64>,
}

/// Validated inputs of [`build`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScheduleSpec<'a> {
    pub(crate) bursts: u64,
    pub(crate) parallelism: u32,
    /// Non-empty.
    pub(crate) burst_sizes: &'a [u32],
    /// Non-empty.
    pub(crate) service_times_ms: &'a [f64],
    /// Empty, or as long as `service_times_ms`.
    pub(crate) busy_spin_increments: &'a [u64],
    pub(crate) iat_type: IatType,
    pub(crate) iat_seconds: f64,
}

/// `slice[min(round, len-1)]`, or the default for an empty slice.
fn sticky<T: Copy + Default>(slice: &[T], round: u64) -> T {
    let index = usize::try_from(round)
        .unwrap_or(usize::MAX)
        .min(slice.len().saturating_sub(1));
    slice.get(index).copied().unwrap_or_default()
}

/// `slice[round % len]`, or the default for an empty slice.
fn cyclic<T: Copy + Default>(slice: &[T], round: u64) -> T {
    let len = slice.len() as u64;
    if len == 0 {
        return T::default();
    }
    usize::try_from(round % len)
        .ok()
        .and_then(|i| slice.get(i))
        .copied()
        .unwrap_or_default()
}

/// Builds the schedule of sub-experiment `sub_experiment` (its index in the file, which keys
/// the random streams) with the run's `seed`.
pub(crate) fn build(
    spec: &ScheduleSpec<'_>,
    seed: u64,
    sub_experiment: usize,
) -> Vec<PlannedBurst> {
    let parallelism = u64::from(spec.parallelism.max(1));
    let mut bursts = Vec::with_capacity(usize::try_from(spec.bursts).unwrap_or(0));
    // Endpoints beyond the number of bursts receive nothing.
    let active_endpoints = parallelism.min(spec.bursts);
    for endpoint in 0..active_endpoints {
        let endpoint_u32 = u32::try_from(endpoint).unwrap_or(u32::MAX);
        let mut sampler = IatSampler::new(
            spec.iat_type,
            spec.iat_seconds,
            stream_rng(seed, sub_experiment, endpoint_u32),
        );
        let mut offset_ms = 0.0;
        let mut round = 0u64;
        loop {
            let burst_id = round * parallelism + endpoint;
            if burst_id >= spec.bursts {
                break;
            }
            if round > 0 {
                offset_ms += sampler.next_gap_ms();
            }
            bursts.push(PlannedBurst {
                burst_id,
                endpoint: endpoint_u32,
                round,
                size: cyclic(spec.burst_sizes, round),
                offset_ms,
                spin_ms: sticky(spec.service_times_ms, round),
                increment_limit: (!spec.busy_spin_increments.is_empty())
                    .then(|| sticky(spec.busy_spin_increments, round)),
            });
            round += 1;
        }
    }
    bursts.sort_by(|a, b| {
        a.offset_ms
            .total_cmp(&b.offset_ms)
            .then(a.burst_id.cmp(&b.burst_id))
    });
    bursts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec<'a>(
        bursts: u64,
        parallelism: u32,
        burst_sizes: &'a [u32],
        service_times_ms: &'a [f64],
        iat_type: IatType,
        iat_seconds: f64,
    ) -> ScheduleSpec<'a> {
        ScheduleSpec {
            bursts,
            parallelism,
            burst_sizes,
            service_times_ms,
            busy_spin_increments: &[],
            iat_type,
            iat_seconds,
        }
    }

    #[test]
    fn round_robin_sizes_and_sticky_service_times() {
        let s = spec(7, 2, &[1, 5, 9], &[0.0, 10.0], IatType::Deterministic, 3.0);
        let plan = build(&s, 1, 0);
        let by_id = |id: u64| {
            plan.iter()
                .find(|b| b.burst_id == id)
                .expect("present")
                .clone()
        };
        let b = by_id(0);
        assert_eq!(
            (b.endpoint, b.round, b.size, b.offset_ms, b.spin_ms),
            (0, 0, 1, 0.0, 0.0)
        );
        let b = by_id(1);
        assert_eq!(
            (b.endpoint, b.round, b.size, b.offset_ms, b.spin_ms),
            (1, 0, 1, 0.0, 0.0)
        );
        let b = by_id(3);
        assert_eq!(
            (b.endpoint, b.round, b.size, b.offset_ms, b.spin_ms),
            (1, 1, 5, 3000.0, 10.0)
        );
        let b = by_id(6);
        assert_eq!(
            (b.endpoint, b.round, b.size, b.offset_ms, b.spin_ms),
            (0, 3, 1, 9000.0, 10.0)
        );
        assert!(plan.iter().all(|b| b.increment_limit.is_none()));
        let order: Vec<u64> = plan.iter().map(|b| b.burst_id).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn increment_limits_follow_the_service_time_index() {
        let mut s = spec(3, 1, &[1], &[0.0, 5.0], IatType::Deterministic, 0.0);
        s.busy_spin_increments = &[0, 77];
        let limits: Vec<_> = build(&s, 1, 0).iter().map(|b| b.increment_limit).collect();
        assert_eq!(limits, [Some(0), Some(77), Some(77)]);
    }

    #[test]
    fn more_endpoints_than_bursts() {
        let s = spec(2, 5, &[1], &[0.0], IatType::Stochastic, 10.0);
        let plan = build(&s, 3, 0);
        assert_eq!(plan.len(), 2);
        assert!(plan.iter().all(|b| b.offset_ms == 0.0 && b.round == 0));
    }

    #[test]
    fn endpoint_streams_do_not_depend_on_parallelism() {
        // Endpoint 0's gaps are the same whether 1 or 3 endpoints share the bursts.
        let one = build(&spec(4, 1, &[1], &[0.0], IatType::Stochastic, 5.0), 11, 2);
        let three = build(&spec(12, 3, &[1], &[0.0], IatType::Stochastic, 5.0), 11, 2);
        let offsets = |plan: &[PlannedBurst]| -> Vec<f64> {
            plan.iter()
                .filter(|b| b.endpoint == 0)
                .map(|b| b.offset_ms)
                .collect()
        };
        assert_eq!(offsets(&one), offsets(&three));
    }

    fn kinds() -> impl Strategy<Value = IatType> {
        prop_oneof![
            Just(IatType::Stochastic),
            Just(IatType::Deterministic),
            Just(IatType::Step)
        ]
    }

    proptest! {
        #[test]
        fn schedule_invariants(
            bursts in 0u64..200,
            parallelism in 1u32..8,
            sizes in proptest::collection::vec(1u32..50, 1..5),
            kind in kinds(),
            iat in 0.0f64..100.0,
            seed: u64,
        ) {
            let s = spec(bursts, parallelism, &sizes, &[0.0], kind, iat);
            let plan = build(&s, seed, 0);
            // Every burst id appears exactly once.
            let mut ids: Vec<u64> = plan.iter().map(|b| b.burst_id).collect();
            ids.sort_unstable();
            prop_assert_eq!(ids, (0..bursts).collect::<Vec<_>>());
            // Total requests = sum of the cycled sizes.
            let total: u64 = plan.iter().map(|b| u64::from(b.size)).sum();
            let expected: u64 = (0..bursts)
                .map(|k| u64::from(sizes[((k / u64::from(parallelism)) % sizes.len() as u64) as usize]))
                .sum();
            prop_assert_eq!(total, expected);
            // Sorted by (offset, id); each endpoint's offsets never decrease with its rounds.
            for pair in plan.windows(2) {
                prop_assert!((pair[0].offset_ms, pair[0].burst_id) < (pair[1].offset_ms, pair[1].burst_id));
            }
            for endpoint in 0..parallelism {
                let mut mine: Vec<&PlannedBurst> = plan.iter().filter(|b| b.endpoint == endpoint).collect();
                mine.sort_by_key(|b| b.round);
                for pair in mine.windows(2) {
                    prop_assert!(pair[0].offset_ms <= pair[1].offset_ms);
                    prop_assert_eq!(pair[0].round + 1, pair[1].round);
                }
                if let Some(first) = mine.first() {
                    prop_assert_eq!(first.offset_ms, 0.0);
                }
            }
            // Same seed, same schedule.
            prop_assert_eq!(&build(&s, seed, 0), &plan);
        }

        #[test]
        fn different_seeds_give_different_stochastic_schedules(
            f in 1.5f64..1000.0,
            seed in 0u64..u64::MAX,
        ) {
            let s = spec(20, 2, &[1], &[0.0], IatType::Stochastic, f);
            prop_assert_ne!(build(&s, seed, 0), build(&s, seed + 1, 0));
        }
    }
}
