//! The pacer: announces each burst of a sub-experiment at its due instant, from a thread of
//! its own.
//!
//! Why: tokio's timer has millisecond granularity and a timer wake-up waits for a free
//! worker, so bursts due every 0.2 ms (5 000 requests/s) left up to several ms late. The
//! pacer sleeps with the operating system's high-resolution timer until shortly before each
//! due instant ([`SPIN`]), spins on the monotonic clock for the rest, and hands the burst to
//! the async side, which only spawns its requests. It can also announce a burst
//! [`PRECONNECT_LEAD`] early, so `Connection: preconnect` opens the burst's connections
//! before it is due.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::StopSignal;

/// How long before a due instant the pacer stops sleeping and spins (Linux wakes a sleeping
/// thread about 50–60 µs late by default).
const SPIN: Duration = Duration::from_micros(200);
/// Longest single sleep, so a stop is noticed promptly even before a 10-minute gap.
const MAX_NAP: Duration = Duration::from_millis(20);
/// How long before a burst is due its connections are opened in `preconnect` mode.
pub const PRECONNECT_LEAD: Duration = Duration::from_millis(250);

/// What the pacer tells the async side about burst `index` (in plan order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// The burst is due in [`PRECONNECT_LEAD`] (or less): open its connections.
    Prepare { index: usize, due: Instant },
    /// The burst is due now.
    Release { index: usize, due: Instant },
}

/// Starts the pacer over `dues` (one instant per burst, ascending: the plan's order). With
/// `prepare`, every burst is also announced [`PRECONNECT_LEAD`] before it is due. The thread
/// ends after the last release, when a stop signal fires, or when `cues` is closed.
pub fn spawn(
    dues: Vec<Instant>,
    prepare: bool,
    stops: [StopSignal; 2],
    cues: mpsc::UnboundedSender<Cue>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("stellar-pacer".into())
        .spawn(move || run(&dues, prepare, &stops, &cues))
}

fn run(
    dues: &[Instant],
    prepare: bool,
    stops: &[StopSignal; 2],
    cues: &mpsc::UnboundedSender<Cue>,
) {
    let stopped = || stops.iter().any(StopSignal::is_stopped);
    let mut prepared = 0;
    for (index, &due) in dues.iter().enumerate() {
        loop {
            if stopped() {
                return;
            }
            // Announce every burst whose preparation time has come (several may be close).
            while prepare && prepared < dues.len() {
                let at = dues[prepared].checked_sub(PRECONNECT_LEAD);
                if at.is_some_and(|at| at > Instant::now()) {
                    break;
                }
                let cue = Cue::Prepare {
                    index: prepared,
                    due: dues[prepared],
                };
                if cues.send(cue).is_err() {
                    return;
                }
                prepared += 1;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            let mut wake = due;
            if prepare && let Some(next) = dues.get(prepared) {
                wake = wake.min(next.checked_sub(PRECONNECT_LEAD).unwrap_or(now));
            }
            let left = wake.saturating_duration_since(now);
            if left > SPIN {
                std::thread::sleep((left - SPIN).min(MAX_NAP));
            } else {
                std::hint::spin_loop();
            }
        }
        if cues.send(Cue::Release { index, due }).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_order_never_early_and_prepares_first() {
        let start = Instant::now() + Duration::from_millis(5);
        let dues: Vec<Instant> = (0..20)
            .map(|i| start + Duration::from_micros(300 * i))
            .collect();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let stop = StopSignal::new();
        let handle = spawn(dues.clone(), true, [stop.clone(), stop], tx).unwrap();
        handle.join().unwrap();
        let mut released = Vec::new();
        let mut prepared = Vec::new();
        while let Ok(cue) = rx.try_recv() {
            match cue {
                Cue::Prepare { index, .. } => {
                    assert!(!released.contains(&index), "prepared after release");
                    prepared.push(index);
                }
                Cue::Release { index, due } => {
                    assert!(Instant::now() >= due);
                    assert_eq!(due, dues[index]);
                    released.push(index);
                }
            }
        }
        let all: Vec<usize> = (0..20).collect();
        assert_eq!(released, all);
        assert_eq!(prepared, all);
    }

    #[test]
    fn a_stop_ends_a_long_wait() {
        let dues = vec![Instant::now() + Duration::from_secs(600)];
        let (tx, mut rx) = mpsc::unbounded_channel();
        let stop = StopSignal::new();
        let handle = spawn(dues, false, [stop.clone(), StopSignal::new()], tx).unwrap();
        stop.stop();
        handle.join().unwrap();
        assert!(rx.try_recv().is_err());
    }
}
