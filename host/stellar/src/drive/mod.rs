//! The driver: sends a sub-experiment's planned bursts on time and turns every outcome into a
//! result row.
//!
//! Every endpoint runs on its own absolute timeline (`sleep_until(start + offset)`), so a slow
//! burst on one endpoint never delays another and errors never accumulate into drift. All
//! requests of a burst are released together and the schedule is open-loop: the next burst
//! fires on time even if the previous one is still in flight (that is what the configured
//! arrival process means). Planned and actual send instants are both recorded.

pub mod client;
mod row;
mod stop;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use stellar_config::{PlannedBurst, SubExperimentPlan};
use stellar_results::LatencyRow;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use client::{ConnectionMode, Target, TimedClient};
pub use stop::StopSignal;

/// The run's two clocks: monotonic for every duration, wall-clock only for labels.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
    start_wall: SystemTime,
}

impl RunClock {
    pub fn start_now() -> Self {
        Self {
            start: Instant::now(),
            start_wall: SystemTime::now(),
        }
    }

    /// Milliseconds from the run's start to `t` on the monotonic clock.
    pub fn ms_since_start(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64() * 1e3
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
}

/// What happened to a sub-experiment's schedule.
#[derive(Debug, Default, Clone)]
pub struct DriveReport {
    pub planned: u64,
    pub sent: u64,
    pub failed: u64,
    /// Why sending stopped early, if it did.
    pub stopped_early: Option<String>,
}

/// Sends `plan`'s bursts to `endpoints` (indexed by the plan's endpoint number) and streams a
/// row per finished request into `rows`. Returns when every sent request has finished.
pub async fn drive_sub_experiment(
    plan: &SubExperimentPlan,
    endpoints: &[Target],
    client: Arc<TimedClient>,
    clock: RunClock,
    options: &DriveOptions,
    rows: mpsc::UnboundedSender<LatencyRow>,
    run_stop: StopSignal,
) -> DriveReport {
    let sub_start = Instant::now();
    let max_failures = plan.max_failures;
    let failures = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let sub_stop = StopSignal::new();
    let first_request_index = first_request_indices(&plan.bursts);

    let mut per_endpoint: Vec<Vec<(PlannedBurst, u64)>> = vec![Vec::new(); endpoints.len()];
    for burst in &plan.bursts {
        let first = first_request_index[burst.burst_id as usize];
        if let Some(list) = per_endpoint.get_mut(burst.endpoint as usize) {
            list.push((burst.clone(), first));
        }
    }

    let mut timelines = JoinSet::new();
    for (endpoint_index, bursts) in per_endpoint.into_iter().enumerate() {
        let ctx = RequestContext {
            client: Arc::clone(&client),
            target: endpoints[endpoint_index].clone(),
            clock,
            options: options.clone(),
            rows: rows.clone(),
            slug: plan.slug.clone(),
            failures: Arc::clone(&failures),
            max_failures,
            sub_stop: sub_stop.clone(),
        };
        let sent = Arc::clone(&sent);
        let run_stop = run_stop.clone();
        let sub_stop = sub_stop.clone();
        timelines.spawn(async move {
            let mut in_flight = JoinSet::new();
            for (burst, first_index) in bursts {
                let due = sub_start + Duration::from_secs_f64(burst.offset_ms.max(0.0) / 1e3);
                tokio::select! {
                    biased;
                    _ = run_stop.stopped() => break,
                    _ = sub_stop.stopped() => break,
                    _ = tokio::time::sleep_until(due.into()) => {}
                }
                let planned_ms = clock.ms_since_start(due);
                for i in 0..burst.size as u64 {
                    let ctx = ctx.clone();
                    let burst = burst.clone();
                    in_flight.spawn(async move {
                        ctx.send_one(&burst, first_index + i, planned_ms).await;
                    });
                }
                sent.fetch_add(burst.size as u64, Ordering::Relaxed);
            }
            while in_flight.join_next().await.is_some() {}
        });
    }
    while timelines.join_next().await.is_some() {}

    let planned: u64 = plan.bursts.iter().map(|b| b.size as u64).sum();
    let sent = sent.load(Ordering::Relaxed);
    let failed = failures.load(Ordering::Relaxed);
    let stopped_early = if sent == planned {
        None
    } else if sub_stop.is_stopped() {
        Some(format!(
            "stopped after {failed} failed requests (more than the allowed {max_failures})"
        ))
    } else {
        Some("interrupted".to_owned())
    };
    DriveReport {
        planned,
        sent,
        failed,
        stopped_early,
    }
}

/// Index (within the sub-experiment) of the first request of every burst, by burst id.
fn first_request_indices(bursts: &[PlannedBurst]) -> Vec<u64> {
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
    failures: Arc<AtomicU64>,
    max_failures: u64,
    sub_stop: StopSignal,
}

impl RequestContext {
    async fn send_one(&self, burst: &PlannedBurst, request_index: u64, planned_ms: f64) {
        let target = if self.options.send_measurement_query {
            self.target
                .with_query(&measurement_query(burst, self.options.payload_length_bytes))
        } else {
            self.target.clone()
        };
        let sent = Instant::now();
        let outcome = self.client.get(&target, sent).await;
        let row = row::build(
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
        if !row.is_ok() {
            let failed = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if failed > self.max_failures {
                self.sub_stop.stop();
            }
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
