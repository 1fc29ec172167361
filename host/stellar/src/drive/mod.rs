//! The driver: sends a sub-experiment's planned bursts on time and turns every outcome into a
//! result row.
//!
//! Every burst is due at an absolute instant (`start + offset`), announced by the [`pacer`]
//! thread, so a slow burst on one endpoint never delays another and errors never accumulate
//! into drift. All requests of a burst are released together and the schedule is open-loop:
//! the next burst fires on time even if the previous one is still in flight (that is what the
//! configured arrival process means). Planned and actual send instants are both recorded.
//! Memory does not grow with the number of requests sent: finished requests leave at once,
//! and their rows go to the row channel.

pub mod client;
mod grpc;
pub mod pacer;
mod row;
mod stop;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use pacer::PRECONNECT_LEAD;
use std::time::{Duration, Instant, SystemTime};

use stellar_config::{PlannedBurst, SubExperimentPlan};
use stellar_results::{ErrorKind, LatencyRow};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use client::{ConnectionMode, Target, TimedClient};
pub use stop::StopSignal;

/// The run's two clocks: monotonic for every duration, wall-clock only for labels.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
    start_wall: SystemTime,
    /// Added to every [`RunClock::ms_since_start`]: where on the schedule this clock's start
    /// lies. 0 for a run as started; for a resumed sub-experiment, the planned offset of its
    /// first remaining burst, so planned and actual send times stay on the original schedule.
    origin_ms: f64,
}

impl RunClock {
    pub fn start_now() -> Self {
        Self {
            start: Instant::now(),
            start_wall: SystemTime::now(),
            origin_ms: 0.0,
        }
    }

    /// A clock whose zero is `start` (monotonic), labelled `start_wall` on the wall clock: the
    /// schedule anchored at a shard run's `T0` ([`crate::shard::start`]).
    pub fn anchored(start: Instant, start_wall: SystemTime) -> Self {
        Self {
            start,
            start_wall,
            origin_ms: 0.0,
        }
    }

    /// The same clock, reading `origin_ms` more (see the field).
    pub fn with_origin(self, origin_ms: f64) -> Self {
        Self { origin_ms, ..self }
    }

    /// Milliseconds from the run's start to `t` on the monotonic clock, plus the origin.
    pub fn ms_since_start(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64() * 1e3 + self.origin_ms
    }

    /// RFC 3339 (UTC, milliseconds) label of a monotonic instant, anchored at the run's start.
    pub fn wall_label(&self, t: Instant) -> String {
        let wall = self.start_wall + t.saturating_duration_since(self.start);
        stellar_results::row::rfc3339_millis(wall)
    }

    pub fn start_wall(&self) -> SystemTime {
        self.start_wall
    }
}

/// How requests of one sub-experiment are built and judged.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// Append STeLLAR's query (`IncrementLimit`, `SpinMs`, ...); off for external URLs, as in STeLLAR.
    pub send_measurement_query: bool,
    /// Whether replies are stellar measurement-function JSON (a reply that is not is an error).
    pub expect_measurement_reply: bool,
    pub payload_length_bytes: u64,
    /// Tests only: query parameters appended after the measurement query (fault knobs).
    pub extra_query: Option<String>,
    /// Written to every row's `Segment` (0 unless resumed).
    pub segment: u32,
    /// Which part of every burst to send and where the schedule's zero is
    /// ([`crate::shard::Slice::WHOLE`] for an unsharded run: everything, from now).
    pub slice: crate::shard::Slice,
    /// Data-transfer chains: every finished request's row and reply body go here too
    /// (see [`crate::chain::transfers`]).
    pub reply_tap: Option<mpsc::UnboundedSender<TappedReply>>,
}

/// A finished request's row and the reply body it was built from.
#[derive(Debug, Clone)]
pub struct TappedReply {
    pub row: LatencyRow,
    /// Empty when the request got no response.
    pub body: bytes::Bytes,
}

/// The requests of a sub-experiment that a resumed run still has to send.
#[derive(Debug, Clone, Default)]
pub struct Remaining {
    /// Request indices that already have a row; they are not sent again.
    pub done: std::collections::HashSet<u64>,
    /// Where the sub-experiment's schedule started on the run's axis in the first segment
    /// (`Planned Send (ms)` minus the burst's planned offset), so resumed rows continue that
    /// axis; 0 when it has no rows yet.
    pub axis_shift_ms: f64,
}

impl Remaining {
    /// The planned offset (ms) of the first burst with a request left, if any: the resumed
    /// schedule starts there.
    pub fn first_offset_ms(&self, bursts: &[PlannedBurst]) -> Option<f64> {
        let firsts = first_request_indices(bursts);
        bursts
            .iter()
            .filter(|b| {
                let first = firsts[b.burst_id as usize];
                (first..first + u64::from(b.size)).any(|i| !self.done.contains(&i))
            })
            .map(|b| b.offset_ms)
            .reduce(f64::min)
    }
}

/// What happened to a sub-experiment's schedule.
#[derive(Debug, Default, Clone)]
pub struct DriveReport {
    /// Requests this drive was to send (for a resumed run: those without a row yet).
    pub planned: u64,
    pub sent: u64,
    pub failed: u64,
    /// Of `failed`, how many were throttled.
    pub throttled: u64,
    /// Why sending stopped early, if it did.
    pub stopped_early: Option<String>,
}

/// Sends `plan`'s bursts to `endpoints` (indexed by the plan's endpoint number) and streams a
/// row per finished request into `rows`. Returns when every sent request has finished.
///
/// With `remaining` (a resumed run) only requests without a row are sent, and the schedule
/// restarts now at the first burst that has one: later bursts keep their planned spacing.
pub async fn drive_sub_experiment(
    (plan, remaining): (&SubExperimentPlan, Option<&Remaining>),
    endpoints: &[Target],
    client: Arc<TimedClient>,
    clock: RunClock,
    options: &DriveOptions,
    rows: mpsc::UnboundedSender<LatencyRow>,
    run_stop: StopSignal,
) -> DriveReport {
    let sub_start = options.slice.anchor.unwrap_or_else(Instant::now);
    let origin_ms = remaining
        .and_then(|r| Some(r.first_offset_ms(&plan.bursts)? + r.axis_shift_ms))
        .unwrap_or(0.0);
    let shift_ms = remaining.map_or(0.0, |r| r.axis_shift_ms);
    let clock = clock.with_origin(origin_ms);
    let budget = Budget {
        failures: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        max_failures: plan.max_failures,
        max_throttled: plan.max_throttled,
        stop: StopSignal::new(),
    };
    let budget = Arc::new(budget);
    let sub_stop = budget.stop.clone();
    let first_request_index = first_request_indices(&plan.bursts);
    let is_done = |i: u64| remaining.is_some_and(|r| r.done.contains(&i));
    let slice = options.slice;

    // Bursts are announced by the pacer thread (see [`pacer`]) in plan order, which is due
    // order; this task only spawns their requests, so one slow burst delays no other.
    // A resumed run waits only for bursts with a request left (`wanted` maps the pacer's
    // indices to the plan's); a fresh run sends every burst.
    let wanted: Option<Vec<usize>> = remaining.map(|_| {
        (0..plan.bursts.len())
            .filter(|&k| {
                let b = &plan.bursts[k];
                let first = first_request_index[b.burst_id as usize];
                (first..first + u64::from(b.size)).any(|i| !is_done(i))
            })
            .collect()
    });
    let due_of = |b: &PlannedBurst| {
        let offset_ms = (b.offset_ms + shift_ms - origin_ms).max(0.0);
        sub_start + Duration::from_secs_f64(offset_ms / 1e3)
    };
    let dues: Vec<Instant> = match &wanted {
        Some(list) => list.iter().map(|&k| due_of(&plan.bursts[k])).collect(),
        None => plan.bursts.iter().map(due_of).collect(),
    };
    let preconnect = client.mode() == ConnectionMode::Preconnect;
    let (cue_tx, mut cues) = mpsc::unbounded_channel();
    let pacer = pacer::spawn(
        dues,
        preconnect,
        [run_stop.clone(), sub_stop.clone()],
        cue_tx,
    );
    let contexts: Vec<RequestContext> = endpoints
        .iter()
        .map(|target| RequestContext {
            client: Arc::clone(&client),
            target: target.clone(),
            clock,
            options: options.clone(),
            rows: rows.clone(),
            slug: plan.slug.clone(),
            budget: Arc::clone(&budget),
        })
        .collect();
    drop(rows);
    let mut in_flight = JoinSet::new();
    // Connections opened ahead of their burst (`preconnect`), by burst index.
    let mut ready: std::collections::HashMap<usize, Vec<client::Prepared>> =
        std::collections::HashMap::new();
    let mut sent = 0u64;
    if let Err(e) = &pacer {
        tracing::error!(error = %e, "could not start the pacer thread; nothing was sent");
    }
    while let Some(cue) = cues.recv().await {
        let (index, due, release) = match cue {
            pacer::Cue::Prepare { index, due } => (index, due, false),
            pacer::Cue::Release { index, due } => (index, due, true),
        };
        if release && (run_stop.is_stopped() || sub_stop.is_stopped()) {
            break;
        }
        let Some(index) = wanted
            .as_ref()
            .map_or(Some(index), |w| w.get(index).copied())
        else {
            continue;
        };
        let Some(burst) = plan.bursts.get(index) else {
            continue;
        };
        let Some(ctx) = contexts.get(burst.endpoint as usize) else {
            continue;
        };
        let first = first_request_index[burst.burst_id as usize];
        let todo = (first..first + u64::from(burst.size))
            .filter(|&i| slice.owns(burst.burst_id, i - first) && !is_done(i));
        if !release {
            if ctx.target.is_grpc() {
                // gRPC calls open their own connections at the due instant (see `client`).
                continue;
            }
            let opened = todo.map(|_| client.prepare(&ctx.target)).collect();
            ready.insert(index, opened);
            continue;
        }
        let planned_ms = clock.ms_since_start(due);
        let mut prepared = ready.remove(&index).unwrap_or_default().into_iter();
        for request_index in todo {
            let ctx = ctx.clone();
            let burst = burst.clone();
            let connection = prepared.next();
            in_flight.spawn(async move {
                ctx.send_one(&burst, request_index, planned_ms, connection)
                    .await;
            });
            sent += 1;
        }
        // Finished requests leave the set at once: its size is what is in flight, not what
        // was ever sent.
        while in_flight.try_join_next().is_some() {}
    }
    drop(contexts);
    while in_flight.join_next().await.is_some() {}
    if let Ok(handle) = pacer {
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }

    let planned: u64 = plan
        .bursts
        .iter()
        .map(|b| {
            let ordinal = slice.burst_base + b.burst_id;
            slice.shard.share_of_burst(ordinal, u64::from(b.size))
        })
        .sum::<u64>()
        - remaining.map_or(0, |r| r.done.len() as u64);
    let counted = budget.failures.load(Ordering::Relaxed);
    let throttled = budget.throttled.load(Ordering::Relaxed);
    let stopped_early = if sent == planned {
        None
    } else if sub_stop.is_stopped() {
        Some(budget.why_stopped())
    } else {
        Some("interrupted".to_owned())
    };
    DriveReport {
        planned,
        sent,
        failed: counted + budget.max_throttled.map_or(0, |_| throttled),
        throttled,
        stopped_early,
    }
}

/// A sub-experiment's failure budgets: `MaxFailures`, and `MaxThrottled` when throttling has
/// a budget of its own. Exceeding one stops the sub-experiment.
struct Budget {
    /// Failures counted against `max_failures` (throttled ones too when there is no
    /// separate throttling budget).
    failures: AtomicU64,
    /// Every throttled request (counted against `max_throttled` when it is set).
    throttled: AtomicU64,
    max_failures: u64,
    max_throttled: Option<u64>,
    stop: StopSignal,
}

impl Budget {
    fn record_failure(&self, throttled: bool) {
        let throttled_so_far = if throttled {
            self.throttled.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            0
        };
        let over = match self.max_throttled {
            Some(max) if throttled => throttled_so_far > max,
            _ => self.failures.fetch_add(1, Ordering::Relaxed) + 1 > self.max_failures,
        };
        if over {
            self.stop.stop();
        }
    }

    fn why_stopped(&self) -> String {
        let throttled = self.throttled.load(Ordering::Relaxed);
        match self.max_throttled {
            Some(max) if throttled > max => format!(
                "stopped after {throttled} throttled requests (more than the allowed {max}, \
                 Stellar.MaxThrottled)"
            ),
            _ => format!(
                "stopped after {} failed requests (more than the allowed {})",
                self.failures.load(Ordering::Relaxed),
                self.max_failures
            ),
        }
    }
}

/// Index (within the sub-experiment) of the first request of every burst, by burst id.
pub(crate) fn first_request_indices(bursts: &[PlannedBurst]) -> Vec<u64> {
    let mut sizes = vec![0u64; bursts.len()];
    for b in bursts {
        if let Some(s) = sizes.get_mut(b.burst_id as usize) {
            *s = b.size as u64;
        }
    }
    let mut next = 0;
    sizes
        .into_iter()
        .map(|s| {
            let first = next;
            next += s;
            first
        })
        .collect()
}

#[derive(Clone)]
struct RequestContext {
    client: Arc<TimedClient>,
    target: Target,
    clock: RunClock,
    options: DriveOptions,
    rows: mpsc::UnboundedSender<LatencyRow>,
    slug: String,
    budget: Arc<Budget>,
}

impl RequestContext {
    async fn send_one(
        &self,
        burst: &PlannedBurst,
        request_index: u64,
        planned_ms: f64,
        connection: Option<client::Prepared>,
    ) {
        let target = if self.options.send_measurement_query {
            let mut query = measurement_query(burst, self.options.payload_length_bytes);
            if let Some(extra) = &self.options.extra_query {
                query = format!("{query}&{extra}");
            }
            self.target.with_query(&query)
        } else {
            self.target.clone()
        };
        let sent = Instant::now();
        let outcome = self.client.get(&target, sent, connection).await;
        let tapped_body = self
            .options
            .reply_tap
            .as_ref()
            .and_then(|_| outcome.as_ref().ok())
            .map(|x| x.body.clone());
        let mut row = row::build(
            row::Sent {
                slug: &self.slug,
                burst,
                request_index,
                host: target.host(),
                planned_ms,
                sent,
                clock: &self.clock,
                expect_measurement: self.options.expect_measurement_reply,
            },
            outcome,
        );
        row.segment = self.options.segment;
        if !row.is_ok() {
            self.budget
                .record_failure(row.error_kind == ErrorKind::Throttled.as_str());
        }
        if let Some(tap) = &self.options.reply_tap {
            let body = tapped_body.unwrap_or_default();
            let _ = tap.send(TappedReply {
                row: row.clone(),
                body,
            });
        }
        // The receiver only goes away when the run is being torn down.
        let _ = self.rows.send(row);
    }
}

/// STeLLAR's query string plus the time-based spin. With `BusySpinIncrements` the function
/// loops `IncrementLimit` times (STeLLAR's method); otherwise it spins `SpinMs` on its clock.
pub fn measurement_query(burst: &PlannedBurst, payload_length_bytes: u64) -> String {
    let (increments, spin_ms) = match burst.increment_limit {
        Some(n) => (n, 0.0),
        None => (0, burst.spin_ms),
    };
    format!(
        "IncrementLimit={increments}&SpinMs={spin_ms}&PayloadLengthBytes={payload_length_bytes}&DataTransferChainIDs=%5B%5D"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max_failures: u64, max_throttled: Option<u64>) -> Budget {
        Budget {
            failures: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            max_failures,
            max_throttled,
            stop: StopSignal::new(),
        }
    }

    #[test]
    fn without_max_throttled_throttling_spends_the_failure_budget() {
        let b = budget(2, None);
        b.record_failure(true);
        b.record_failure(false);
        assert!(!b.stop.is_stopped());
        b.record_failure(true);
        assert!(b.stop.is_stopped());
        assert_eq!(
            b.why_stopped(),
            "stopped after 3 failed requests (more than the allowed 2)"
        );
    }

    #[test]
    fn max_throttled_is_a_budget_of_its_own() {
        let b = budget(1, Some(3));
        for _ in 0..3 {
            b.record_failure(true);
        }
        b.record_failure(false);
        assert!(
            !b.stop.is_stopped(),
            "3 throttled and 1 failure are within budget"
        );
        b.record_failure(true);
        assert!(b.stop.is_stopped());
        assert_eq!(
            b.why_stopped(),
            "stopped after 4 throttled requests (more than the allowed 3, Stellar.MaxThrottled)"
        );
    }

    #[test]
    fn remaining_starts_at_the_first_burst_with_a_request_left() {
        let burst = |id: u64, offset_ms: f64| PlannedBurst {
            burst_id: id,
            endpoint: 0,
            round: id,
            size: 2,
            offset_ms,
            spin_ms: 0.0,
            increment_limit: None,
        };
        let bursts = vec![burst(0, 0.0), burst(1, 100.0), burst(2, 200.0)];
        let firsts = first_request_indices(&bursts);
        assert_eq!(firsts, vec![0, 2, 4]);
        // Requests 0, 1 and 3 have rows: burst 1 still lacks request 2.
        let remaining = Remaining {
            done: [0, 1, 3].into_iter().collect(),
            axis_shift_ms: 0.0,
        };
        assert_eq!(remaining.first_offset_ms(&bursts), Some(100.0));
        let all = Remaining {
            done: (0..6).collect(),
            axis_shift_ms: 0.0,
        };
        assert_eq!(all.first_offset_ms(&bursts), None);
    }
}
