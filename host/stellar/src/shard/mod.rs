//! Sharded runs: one frozen plan, many client machines.
//!
//! One client machine runs out before the clouds do, so a prepared run (`stellar prepare`)
//! can be sent by N shards, each on its own machine: shard `I/N` sends exactly its part of
//! every burst, on the plan's absolute schedule anchored at one wall-clock start `T0`, and
//! writes raw rows; `stellar merge` concatenates the rows and reruns the whole analysis.
//! An ordinary `stellar run EXPERIMENT` is the one-shard case: [`Shard::WHOLE`] with the
//! schedule anchored when the driver starts.
//!
//! The partition rule: plan bursts get a global ordinal `b` in plan order (sub-experiment,
//! then burst id, which is round then endpoint), and request `r` of burst `b` (0-based within
//! the burst) belongs to shard `(r + b) mod N`. Each burst splits into N parts whose sizes
//! differ by at most one, and a burst of one rotates over the shards. The rule depends only on
//! the plan and N, so no coordinator is needed.

pub mod clock;
pub mod k8s;
pub mod merge;
pub mod prepare;
pub mod prepared;
pub mod send;
pub mod start;

use std::fmt;
use std::str::FromStr;

use stellar_config::Plan;

/// Which part of every burst a process sends: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole plan: what an unsharded run sends.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether request `request_in_burst` (0-based within its burst) of the burst with global
    /// ordinal `burst_ordinal` belongs to this shard.
    pub fn owns(self, burst_ordinal: u64, request_in_burst: u64) -> bool {
        self.owner(burst_ordinal, request_in_burst) == self.index
    }

    /// The shard (of `self.count`) that sends that request.
    pub fn owner(self, burst_ordinal: u64, request_in_burst: u64) -> u32 {
        let n = u64::from(self.count.max(1));
        ((request_in_burst % n + burst_ordinal % n) % n) as u32
    }

    /// How many of a burst's `size` requests this shard sends.
    pub fn share_of_burst(self, burst_ordinal: u64, size: u64) -> u64 {
        let n = u64::from(self.count.max(1));
        // The smallest r with (r + b) mod n == index, then every n-th one.
        let first = (u64::from(self.index) % n + n - burst_ordinal % n) % n;
        if first >= size {
            0
        } else {
            (size - 1 - first) / n + 1
        }
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A `--shard` value that is not `I/N` with `0 <= I < N`.
#[derive(Debug, thiserror::Error)]
#[error("--shard {given:?}: expected I/N with 0 <= I < N and 1 <= N <= 100000 (for example 2/4)")]
pub struct BadShard {
    pub given: String,
}

impl FromStr for Shard {
    type Err = BadShard;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadShard {
            given: text.to_owned(),
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > 100_000 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The global ordinal of each sub-experiment's first burst (plan order): burst `k` of
/// sub-experiment `s` has ordinal `bases[s] + k`.
pub fn burst_ordinal_bases(plan: &Plan) -> Vec<u64> {
    let mut next = 0u64;
    plan.sub_experiments
        .iter()
        .map(|sub| {
            let base = next;
            next += sub.bursts.len() as u64;
            base
        })
        .collect()
}

/// Requests shard `shard` owns in each sub-experiment of `plan` (plan order).
pub fn planned_requests(plan: &Plan, shard: Shard) -> Vec<u64> {
    plan.sub_experiments
        .iter()
        .zip(burst_ordinal_bases(plan))
        .map(|(sub, base)| {
            sub.bursts
                .iter()
                .map(|b| shard.share_of_burst(base + b.burst_id, u64::from(b.size)))
                .sum()
        })
        .collect()
}

/// Which requests of one sub-experiment a drive sends: this shard's part of every burst, on a
/// schedule anchored at `anchor` (`None`: when the driver starts, as an unsharded run does).
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    pub shard: Shard,
    /// Global ordinal of the sub-experiment's first burst ([`burst_ordinal_bases`]).
    pub burst_base: u64,
    /// The monotonic instant of the schedule's zero.
    pub anchor: Option<std::time::Instant>,
}

impl Slice {
    /// Everything, anchored when the driver starts: an unsharded run.
    pub const WHOLE: Slice = Slice {
        shard: Shard::WHOLE,
        burst_base: 0,
        anchor: None,
    };

    /// Whether request `request_in_burst` of burst `burst_id` of this sub-experiment is ours.
    pub fn owns(&self, burst_id: u64, request_in_burst: u64) -> bool {
        self.shard
            .owns(self.burst_base + burst_id, request_in_burst)
    }
}

impl Default for Slice {
    fn default() -> Self {
        Self::WHOLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses_shard_values() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "1/0", "x/2", "1", "-1/2", "1/2/3"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.to_string().contains("expected I/N"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_burst_of_one_rotates_over_the_shards() {
        let owners: Vec<u32> = (0..6)
            .map(|b| Shard { index: 0, count: 3 }.owner(b, 0))
            .collect();
        assert_eq!(owners, vec![0, 1, 2, 0, 1, 2]);
    }

    proptest! {
        #[test]
        fn every_request_goes_to_exactly_one_shard_and_bursts_split_evenly(
            count in 1u32..=64,
            sizes in proptest::collection::vec(1u64..300, 1..40),
            base in 0u64..1_000_000,
        ) {
            let mut per_shard_total = vec![0u64; count as usize];
            for (k, &size) in sizes.iter().enumerate() {
                let ordinal = base + k as u64;
                let mut shares = Vec::new();
                for r in 0..size {
                    let owners: Vec<u32> = (0..count)
                        .filter(|&i| Shard { index: i, count }.owns(ordinal, r))
                        .collect();
                    prop_assert_eq!(owners.len(), 1, "request {} of burst {}", r, ordinal);
                }
                for i in 0..count {
                    let counted = (0..size)
                        .filter(|&r| Shard { index: i, count }.owns(ordinal, r))
                        .count() as u64;
                    let share = Shard { index: i, count }.share_of_burst(ordinal, size);
                    prop_assert_eq!(share, counted);
                    per_shard_total[i as usize] += share;
                    shares.push(share);
                }
                prop_assert_eq!(shares.iter().sum::<u64>(), size);
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                prop_assert!(hi - lo <= 1, "burst {} of {} split {:?}", ordinal, size, shares);
            }
            let total: u64 = sizes.iter().sum();
            prop_assert_eq!(per_shard_total.iter().sum::<u64>(), total);
            // Each burst gives any shard at most one request more than another, and the
            // extra request rotates, so totals stay within the number of bursts.
            let (lo, hi) = (
                per_shard_total.iter().min().unwrap(),
                per_shard_total.iter().max().unwrap(),
            );
            prop_assert!(hi - lo <= sizes.len() as u64);
        }
    }
}
