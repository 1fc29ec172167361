//! Live progress on the terminal: one bar per sub-experiment with requests done, errors, the
//! running median and a time-to-go computed from the plan (not from the request rate, which
//! says nothing about a schedule of 600 s gaps). Hidden when stderr is not a terminal.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stellar_config::SubExperimentPlan;
use stellar_results::LatencyRow;

use crate::drive::DriveReport;

pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(show: bool) -> Self {
        let show = show && std::io::IsTerminal::is_terminal(&std::io::stderr());
        Self {
            multi: show
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4))),
        }
    }

    pub fn add(&self, sub: &SubExperimentPlan) -> SubProgress {
        let bar = match &self.multi {
            Some(m) => {
                let bar = m.add(ProgressBar::new(sub.total_requests()));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos}/{len} req {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(sub.slug.clone());
                bar.enable_steady_tick(Duration::from_millis(250));
                Some(bar)
            }
            None => None,
        };
        SubProgress {
            bar,
            started: Instant::now(),
            planned: sub.duration_estimate(),
            state: Mutex::new(State::default()),
        }
    }

    pub fn finish(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

/// How many of the latest latencies the running median is taken over (memory stays flat).
const RECENT: usize = 10_000;

#[derive(Default)]
struct State {
    errors: u64,
    /// The latest [`RECENT`] latencies, as a ring (`next` is the oldest once it is full).
    latencies: Vec<f64>,
    next: usize,
    /// The running median and when it was computed: refreshed at most every
    /// [`P50_REFRESH`], so a long run does not sort all its latencies on every row.
    p50: Option<(f64, Instant)>,
}

/// How often the running median is recomputed (the bar redraws at 4 Hz anyway).
const P50_REFRESH: Duration = Duration::from_millis(250);

pub struct SubProgress {
    bar: Option<ProgressBar>,
    started: Instant,
    planned: Duration,
    state: Mutex<State>,
}

impl SubProgress {
    pub fn record(&self, row: &LatencyRow) {
        let Some(bar) = &self.bar else { return };
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match row.ok_latency_ms() {
            Some(ms) if state.latencies.len() < RECENT => state.latencies.push(ms),
            Some(ms) => {
                let at = state.next;
                state.latencies[at] = ms;
                state.next = (at + 1) % RECENT;
            }
            None => state.errors += 1,
        }
        bar.inc(1);
        let elapsed = self.started.elapsed();
        let to_go = self.planned.saturating_sub(elapsed);
        let mut msg = format!(
            "| {} err | elapsed {} | ETA {}",
            state.errors,
            fmt_duration(elapsed),
            fmt_duration(to_go)
        );
        let stale = state.p50.is_none_or(|(_, at)| at.elapsed() >= P50_REFRESH);
        if stale && !state.latencies.is_empty() {
            let mut values = state.latencies.clone();
            let middle = (values.len() - 1) / 2;
            let (_, p50, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
            state.p50 = Some((*p50, Instant::now()));
        }
        if let Some((p50, _)) = state.p50 {
            msg = format!("| p50 {p50:.1} ms {msg}");
        }
        bar.set_message(msg);
    }

    pub fn finish(&self, report: &DriveReport) {
        if let Some(bar) = &self.bar {
            let note = report.stopped_early.as_deref().unwrap_or("done");
            bar.finish_with_message(format!("| {} failed | {note}", report.failed));
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
