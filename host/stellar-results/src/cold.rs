//! Cold-start labels from three signals, and whether each cold start was natural or scale-out.
//!
//! STeLLAR called a request cold when its latency passed a fixed threshold (300 ms). That is a
//! guess: a slow warm request looks cold, and a fast cold start (a native function on a quick
//! platform) looks warm. stellar has better evidence and uses the best one a row carries:
//!
//! 1. **function**: the measurement function's own `Cold` flag (true on the first request an
//!    instance serves). This is ground truth wherever the function replies.
//! 2. **provider**: the platform's init signal (`Provider Cold`), where an adapter or gateway
//!    supplies one.
//! 3. **threshold**: client latency at or above the configured threshold, the fallback when
//!    neither of the others is known (e.g. an external endpoint that is not stellar's function).
//!
//! Every signal present is also compared with the others, and [`SignalAgreement`] counts
//! disagreements so a report can say how far the threshold rule would have been wrong.
//!
//! A cold start is **scale-out** when the endpoint still had instances: another request of the
//! same burst was served warm, or a request sent earlier to the same endpoint was still in
//! flight when this one was sent (its instance was busy). Otherwise it is **natural**: every
//! instance had gone (idle timeout, first request, redeployment).
//!
//! [`label_rows_with`] also fills the start labels of [`crate::labels`]: where the function
//! answered, its receipt signals refine its flag (a pre-started instance's first request is
//! not cold; a request queued behind a starting instance is), and `Cold Label` follows the
//! start label.

use std::collections::BTreeMap;

use crate::labels::{self, Decision, LabelSignal, StartLabel, StartThresholds};

use serde::Serialize;

use crate::record::LatencyRecord;
#[cfg(test)]
use crate::row::LatencyRow;

/// Where a row's cold label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColdSource {
    /// The measurement function's own `Cold` flag.
    Function,
    /// The provider's init signal.
    Provider,
    /// Client latency against the threshold.
    Threshold,
}

impl ColdSource {
    /// The value of the `Cold Source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Function => "function",
            Self::Provider => "provider",
            Self::Threshold => "threshold",
        }
    }
}

/// Why a cold start happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColdKind {
    /// The endpoint had no instance left (first request, idle timeout).
    Natural,
    /// The endpoint had instances, but not enough free ones.
    ScaleOut,
    /// Queued behind an instance another request started (see [`crate::labels`]).
    Queued,
}

impl ColdKind {
    /// The value of the `Cold Kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Natural => "natural",
            Self::ScaleOut => "scale-out",
            Self::Queued => "queued",
        }
    }
}

/// How often the signals agreed, over the successful rows where both of a pair were known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SignalAgreement {
    /// Rows labelled by the function's flag.
    pub from_function: usize,
    /// Rows labelled by the provider's signal.
    pub from_provider: usize,
    /// Rows labelled by the latency threshold.
    pub from_threshold: usize,
    /// Rows with both the function's and the provider's signal.
    pub function_provider_compared: usize,
    /// Of those, rows where the two disagree.
    pub function_provider_disagree: usize,
    /// Rows with the function's signal (the threshold is always known).
    pub function_threshold_compared: usize,
    /// Of those, rows the threshold rule would label differently from the function.
    pub function_threshold_disagree: usize,
    /// Natural cold starts.
    pub natural: usize,
    /// Scale-out cold starts.
    pub scale_out: usize,
}

/// Fills `Cold Label`, `Cold Source` and `Cold Kind` of every successful row (failed rows get
/// empty values) and returns the agreement counts. `threshold_ms` is the latency rule's limit.
/// Rows may be in any order; scale-out detection looks at send and receive times. Start labels
/// use the default [`StartThresholds`]; see [`label_rows_with`].
pub fn label_rows<R: LatencyRecord>(rows: &mut [R], threshold_ms: f64) -> SignalAgreement {
    label_rows_with(rows, threshold_ms, &StartThresholds::default())
}

/// [`label_rows`], and `Start Label` / `Label Signal` of every successful row with the given
/// thresholds (see [`crate::labels`]).
pub fn label_rows_with<R: LatencyRecord>(
    rows: &mut [R],
    threshold_ms: f64,
    starts: &StartThresholds,
) -> SignalAgreement {
    let mut agreement = SignalAgreement::default();
    let known = R::known_instances(rows);
    for (row, known_instance) in rows.iter_mut().zip(known) {
        row.set_cold_label(None, None);
        row.set_cold_kind(None);
        row.set_start_label(None, None);
        let Some(latency) = row.ok_latency_ms() else {
            continue;
        };
        let by_threshold = latency >= threshold_ms;
        let (label, source) = match (row.cold(), row.provider_cold()) {
            (Some(cold), _) => (cold, ColdSource::Function),
            (None, Some(cold)) => (cold, ColdSource::Provider),
            (None, None) => (by_threshold, ColdSource::Threshold),
        };
        match source {
            ColdSource::Function => agreement.from_function += 1,
            ColdSource::Provider => agreement.from_provider += 1,
            ColdSource::Threshold => agreement.from_threshold += 1,
        }
        if let (Some(function), Some(provider)) = (row.cold(), row.provider_cold()) {
            agreement.function_provider_compared += 1;
            agreement.function_provider_disagree += usize::from(function != provider);
        }
        if let Some(function) = row.cold() {
            agreement.function_threshold_compared += 1;
            agreement.function_threshold_disagree += usize::from(function != by_threshold);
        }
        let mut label = label;
        let mut start = None;
        let signal = match source {
            ColdSource::Function => labels::signals_of(row, known_instance).map(|signals| {
                let (decision, signal) = labels::decide(&signals, starts);
                if let Decision::Label(decided) = decision {
                    start = Some(decided);
                    label = decided.is_cold();
                }
                signal
            }),
            ColdSource::Provider => Some(LabelSignal::Provider),
            ColdSource::Threshold => Some(LabelSignal::Threshold),
        };
        row.set_start_label(start, signal);
        row.set_cold_label(Some(label), Some(source));
    }
    classify_kinds(rows, &mut agreement);
    for row in rows.iter_mut() {
        if row.cold_label().is_none() || row.start_label().is_some() {
            continue;
        }
        let start = match (row.cold_label(), row.cold_kind()) {
            (Some(true), Some(ColdKind::ScaleOut)) => StartLabel::ColdScaleout,
            (Some(true), _) => StartLabel::ColdNatural,
            _ => StartLabel::Warm,
        };
        let signal = row.label_signal();
        row.set_start_label(Some(start), signal);
    }
    agreement
}

/// Marks each labelled cold start natural or scale-out (see the module docs).
fn classify_kinds<R: LatencyRecord>(rows: &mut [R], agreement: &mut SignalAgreement) {
    // Per (sub-experiment, endpoint): row indices (u32 keeps a million rows in 4 MB) in send
    // order.
    let mut streams: BTreeMap<(&str, u32), Vec<u32>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        streams
            .entry((row.sub_experiment(), row.endpoint()))
            .or_default()
            .push(i as u32);
    }
    let streams: Vec<Vec<u32>> = streams.into_values().collect();
    for mut indices in streams {
        indices.sort_by(|&a, &b| {
            rows[a as usize]
                .actual_send_ms()
                .total_cmp(&rows[b as usize].actual_send_ms())
        });
        // Bursts of this stream with a cold request, and those of them that also had a warm
        // (successful, labelled warm) one: only bursts with a cold start are kept.
        let cold_bursts: std::collections::BTreeSet<u64> = indices
            .iter()
            .map(|&i| &rows[i as usize])
            .filter(|r| r.cold_label() == Some(true))
            .map(|r| r.burst_id())
            .collect();
        let warm_bursts: std::collections::BTreeSet<u64> = indices
            .iter()
            .map(|&i| &rows[i as usize])
            .filter(|r| r.cold_label() == Some(false) && cold_bursts.contains(&r.burst_id()))
            .map(|r| r.burst_id())
            .collect();
        for (position, &i) in indices.iter().enumerate() {
            let i = i as usize;
            if rows[i].cold_label() != Some(true) {
                continue;
            }
            if rows[i].start_label() == Some(StartLabel::ColdQueued) {
                // It waited for an instance another request of the endpoint started.
                rows[i].set_cold_kind(Some(ColdKind::Queued));
                continue;
            }
            let sent = rows[i].actual_send_ms();
            let burst = rows[i].burst_id();
            let busy_before = indices[..position].iter().any(|&j| {
                let earlier = &rows[j as usize];
                earlier.burst_id() != burst && finished_at(earlier).is_none_or(|done| done > sent)
            });
            let kind = if warm_bursts.contains(&burst) || busy_before {
                agreement.scale_out += 1;
                ColdKind::ScaleOut
            } else {
                agreement.natural += 1;
                ColdKind::Natural
            };
            rows[i].set_cold_kind(Some(kind));
        }
    }
}

/// When a request's response arrived, on the run's monotonic clock; `None` if it never did.
fn finished_at(row: &impl LatencyRecord) -> Option<f64> {
    row.client_latency_ms().map(|l| row.actual_send_ms() + l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(burst: u64, sent: f64, latency: f64, cold: Option<bool>) -> LatencyRow {
        LatencyRow {
            sub_experiment: "00-s".into(),
            burst_id: burst,
            actual_send_ms: sent,
            planned_send_ms: sent,
            client_latency_ms: Some(latency),
            cold,
            ..LatencyRow::default()
        }
    }

    #[test]
    fn function_beats_provider_beats_threshold() {
        let mut rows = vec![
            row(0, 0.0, 5.0, Some(true)),
            LatencyRow {
                provider_cold: Some(true),
                ..row(1, 1000.0, 5.0, None)
            },
            row(2, 2000.0, 500.0, None),
            row(3, 3000.0, 5.0, None),
        ];
        let agreement = label_rows(&mut rows, 300.0);
        let labels: Vec<_> = rows
            .iter()
            .map(|r| (r.cold_label, r.cold_source.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![
                (Some(true), "function"),
                (Some(true), "provider"),
                (Some(true), "threshold"),
                (Some(false), "threshold"),
            ]
        );
        assert_eq!(agreement.from_function, 1);
        assert_eq!(agreement.from_provider, 1);
        assert_eq!(agreement.from_threshold, 2);
        // The fast cold start is one the 300 ms rule would have called warm.
        assert_eq!(agreement.function_threshold_disagree, 1);
    }

    #[test]
    fn disagreement_between_function_and_provider_is_counted() {
        let mut rows = vec![LatencyRow {
            provider_cold: Some(false),
            ..row(0, 0.0, 5.0, Some(true))
        }];
        let agreement = label_rows(&mut rows, 300.0);
        assert_eq!(agreement.function_provider_compared, 1);
        assert_eq!(agreement.function_provider_disagree, 1);
        assert_eq!(rows[0].cold_label, Some(true));
    }

    #[test]
    fn idle_cold_starts_are_natural_and_burst_growth_is_scale_out() {
        let mut rows = vec![
            // Burst 0: one request, first ever: natural.
            row(0, 0.0, 10.0, Some(true)),
            // Burst 1 (warm instance left): one warm, two more instances needed: scale-out.
            row(1, 100.0, 2.0, Some(false)),
            row(1, 100.1, 9.0, Some(true)),
            row(1, 100.2, 9.0, Some(true)),
            // Burst 2 after every instance idled out: all cold, natural.
            row(2, 9000.0, 9.0, Some(true)),
            row(2, 9000.1, 9.0, Some(true)),
        ];
        let agreement = label_rows(&mut rows, 300.0);
        let kinds: Vec<&str> = rows.iter().map(|r| r.cold_kind.as_str()).collect();
        assert_eq!(
            kinds,
            vec![
                "natural",
                "",
                "scale-out",
                "scale-out",
                "natural",
                "natural"
            ]
        );
        assert_eq!((agreement.natural, agreement.scale_out), (3, 2));
    }

    #[test]
    fn a_cold_start_while_the_previous_burst_is_busy_is_scale_out() {
        let mut rows = vec![
            row(0, 0.0, 500.0, Some(true)),
            // Sent while burst 0's request is still in flight.
            row(1, 100.0, 50.0, Some(true)),
        ];
        label_rows(&mut rows, 300.0);
        assert_eq!(rows[1].cold_kind, "scale-out");
    }

    #[test]
    fn failed_rows_get_no_label() {
        let mut rows = vec![LatencyRow {
            error_kind: "timeout".into(),
            client_latency_ms: None,
            ..row(0, 0.0, 0.0, None)
        }];
        let agreement = label_rows(&mut rows, 300.0);
        assert_eq!(rows[0].cold_label, None);
        assert_eq!(rows[0].cold_source, "");
        assert_eq!(agreement, SignalAgreement::default());
    }
}
