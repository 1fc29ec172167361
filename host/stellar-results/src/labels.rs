//! Start labels: *why* a request was or was not slowed by an instance start, per request.
//!
//! "The first request a process serves is cold" is exact only where instances start on demand.
//! Real platforms start instances ahead of requests (Lambda proactive initialisation, Azure
//! always-ready, Cloud Run and FC minimum instances, Knative initial scale), queue several
//! requests behind one starting instance (instance concurrency above 1), restart crashed
//! processes in place and restore snapshots. Each request gets one label:
//!
//! | label | meaning |
//! | --- | --- |
//! | `cold-natural` | an instance started for it while the endpoint had none to offer |
//! | `cold-scaleout` | an instance started for it because the live ones were busy |
//! | `cold-queued` | not its instance's first request, but it waited for that instance to start |
//! | `prewarmed` | first request of an instance the platform had started well before |
//! | `process-restart` | first request of a new process in an instance already seen |
//! | `restored` | first request after a snapshot restore (where the platform says so) |
//! | `warm` | everything else |
//!
//! Decision order for a row the measurement function answered ([`decide`]), from signals the
//! function measures on its own clock (never compared with the client's):
//! 1. the platform's init type says `snap-start` on a process-first request → `restored`;
//! 2. not process-first → `cold-queued` when the process's first request was still unanswered
//!    and the request arrived at most `queued_gap_ms` after the process became ready, else
//!    `warm`;
//! 3. process-first on a platform instance id the client already saw answer from another
//!    process → `process-restart`;
//! 4. process-first with a ready-to-receipt gap above `prewarm_gap_ms` → `prewarmed`;
//! 5. otherwise a cold start: `cold-scaleout` when the endpoint still had instances (another
//!    request of the burst was served by a ready instance, or an earlier request was still in
//!    flight, see [`crate::cold`]), else `cold-natural`.
//!
//! Rows without the function's signals (an external endpoint) are labelled from `Cold Label`
//! (provider signal or latency threshold) and its `Cold Kind`. The three `cold-*` labels are
//! exactly the rows with `Cold Label` true. The deciding signal goes to `Label Signal`, and every
//! input stays in its own column, so a reader can relabel with other thresholds.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use serde::Serialize;

use crate::record::LatencyRecord;
use crate::row::LatencyRow;

/// One request's start label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartLabel {
    /// A new instance started for this request; the endpoint had none left.
    ColdNatural,
    /// A new instance started for this request; the live ones were busy.
    ColdScaleout,
    /// Waited for an instance another request started.
    ColdQueued,
    /// First request of an instance started ahead of requests.
    Prewarmed,
    /// First request of a new process in an instance already seen.
    ProcessRestart,
    /// First request after a snapshot restore.
    Restored,
    /// A later request of a running process.
    Warm,
}

impl StartLabel {
    /// Every label, in column-value order.
    pub const ALL: [Self; 7] = [
        Self::ColdNatural,
        Self::ColdScaleout,
        Self::ColdQueued,
        Self::Prewarmed,
        Self::ProcessRestart,
        Self::Restored,
        Self::Warm,
    ];

    /// The value of the `Start Label` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ColdNatural => "cold-natural",
            Self::ColdScaleout => "cold-scaleout",
            Self::ColdQueued => "cold-queued",
            Self::Prewarmed => "prewarmed",
            Self::ProcessRestart => "process-restart",
            Self::Restored => "restored",
            Self::Warm => "warm",
        }
    }

    /// Whether the request paid for an instance start (`Cold Label` is true exactly then).
    pub fn is_cold(self) -> bool {
        matches!(
            self,
            Self::ColdNatural | Self::ColdScaleout | Self::ColdQueued
        )
    }
}

impl std::fmt::Display for StartLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `Start Label` value that is not a label name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown start label `{0}`")]
pub struct UnknownStartLabel(pub String);

impl FromStr for StartLabel {
    type Err = UnknownStartLabel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownStartLabel(s.to_owned()))
    }
}

/// The signal that decided a label (the `Label Signal` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelSignal {
    /// The platform's init type (`snap-start`).
    InitType,
    /// Not process-first, arrived right after ready while the first request ran.
    FirstInFlight,
    /// Not process-first.
    NotFirst,
    /// Process-first on an instance id already seen from another process.
    KnownInstance,
    /// Process-first; the ready-to-receipt gap decided prewarmed or cold.
    ReadyGap,
    /// Process-first with no ready time reported (an older function): cold.
    ProcessFirst,
    /// No function signals: the provider's cold signal.
    Provider,
    /// No function or provider signal: the latency threshold.
    Threshold,
}

impl LabelSignal {
    /// Every signal, in the decision order of the module docs.
    pub const ALL: [Self; 8] = [
        Self::InitType,
        Self::FirstInFlight,
        Self::NotFirst,
        Self::KnownInstance,
        Self::ReadyGap,
        Self::ProcessFirst,
        Self::Provider,
        Self::Threshold,
    ];

    /// The signal named by a `Label Signal` value; `None` for an empty or unknown one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The value of the `Label Signal` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InitType => "init-type",
            Self::FirstInFlight => "first-in-flight",
            Self::NotFirst => "not-first",
            Self::KnownInstance => "known-instance",
            Self::ReadyGap => "ready-gap",
            Self::ProcessFirst => "process-first",
            Self::Provider => "provider",
            Self::Threshold => "threshold",
        }
    }
}

/// The thresholds of [`decide`] (from the plan: `PrewarmGapMs`, `QueuedGapMs`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StartThresholds {
    /// A process-first request later than this after its process became ready is `prewarmed`.
    pub prewarm_gap_ms: f64,
    /// A non-first request at most this long after ready, while the first runs, is queued.
    pub queued_gap_ms: f64,
}

impl Default for StartThresholds {
    /// 10 s (Datadog's proactive-initialisation rule, the fallback without a calibration) and
    /// 50 ms.
    fn default() -> Self {
        Self {
            prewarm_gap_ms: 10_000.0,
            queued_gap_ms: 50.0,
        }
    }
}

/// The function-side signals of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartSignals {
    /// The function's process-first flag.
    pub process_first: bool,
    /// Receipt minus ready, ms (function clock).
    pub ready_gap_ms: Option<f64>,
    /// The process's first request was still unanswered at receipt.
    pub first_in_flight: Option<bool>,
    /// The platform says the process was restored from a snapshot.
    pub restored: bool,
    /// The platform instance id was seen earlier from another process.
    pub known_instance: bool,
}

/// What [`decide`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A final label.
    Label(StartLabel),
    /// A cold start of a new instance; natural or scale-out depends on the endpoint's history.
    ColdStart,
}

/// The label of one request from its function-side signals (decision order in the module
/// docs).
pub fn decide(s: &StartSignals, t: &StartThresholds) -> (Decision, LabelSignal) {
    if s.process_first && s.restored {
        return (Decision::Label(StartLabel::Restored), LabelSignal::InitType);
    }
    if !s.process_first {
        let queued = s.first_in_flight == Some(true)
            && s.ready_gap_ms.is_some_and(|gap| gap <= t.queued_gap_ms);
        return if queued {
            (
                Decision::Label(StartLabel::ColdQueued),
                LabelSignal::FirstInFlight,
            )
        } else {
            (Decision::Label(StartLabel::Warm), LabelSignal::NotFirst)
        };
    }
    if s.known_instance {
        return (
            Decision::Label(StartLabel::ProcessRestart),
            LabelSignal::KnownInstance,
        );
    }
    match s.ready_gap_ms {
        Some(gap) if gap > t.prewarm_gap_ms => (
            Decision::Label(StartLabel::Prewarmed),
            LabelSignal::ReadyGap,
        ),
        Some(_) => (Decision::ColdStart, LabelSignal::ReadyGap),
        None => (Decision::ColdStart, LabelSignal::ProcessFirst),
    }
}

/// The init types that mean the process was restored from a snapshot.
const RESTORE_INIT_TYPES: [&str; 1] = ["snap-start"];

/// True when the platform's init type (`Init Type`) says the process was restored from a
/// snapshot.
pub fn is_restore_init_type(init_type: &str) -> bool {
    RESTORE_INIT_TYPES.contains(&init_type)
}

/// The signals of `row` (which the function answered); `known_instance` comes from
/// [`known_instances`].
pub fn signals_of(row: &impl LatencyRecord, known_instance: bool) -> Option<StartSignals> {
    Some(StartSignals {
        process_first: row.cold()?,
        ready_gap_ms: row.ready_gap_ms().filter(|g| g.is_finite()),
        first_in_flight: row.first_in_flight(),
        restored: row.restored(),
        known_instance,
    })
}

/// Tells, per platform instance, whether a row's instance had already answered from another
/// process before the row was sent. Fed every answered row first ([`Self::answered`]), then
/// asked per row ([`Self::known`]); it keeps one time per (instance, process), not per row.
#[derive(Debug)]
pub struct KnownInstances<I, N> {
    /// Per platform instance: per process nonce, when its first answer arrived.
    first_answer: HashMap<I, HashMap<N, f64>>,
}

impl<I, N> Default for KnownInstances<I, N> {
    fn default() -> Self {
        Self {
            first_answer: HashMap::new(),
        }
    }
}

impl<I: Eq + std::hash::Hash, N: Eq + std::hash::Hash> KnownInstances<I, N> {
    /// Records that process `nonce` on `instance` answered at `done` (client clock).
    pub fn answered(&mut self, instance: I, nonce: N, done: f64) {
        let first = self
            .first_answer
            .entry(instance)
            .or_default()
            .entry(nonce)
            .or_insert(done);
        *first = first.min(done);
    }

    /// Whether a process of `instance` other than `nonce` had answered by `sent`.
    pub fn known(&self, instance: &I, nonce: &N, sent: f64) -> bool {
        self.first_answer.get(instance).is_some_and(|processes| {
            processes
                .iter()
                .any(|(other, &done)| other != nonce && done <= sent)
        })
    }
}

/// For each row: whether its `Platform Instance` had already answered, from another process
/// (`Process Nonce`), before this request was sent (client clock: send + latency of the
/// earlier row against this row's send). Rows without a platform instance or nonce: false.
pub fn known_instances(rows: &[LatencyRow]) -> Vec<bool> {
    let has_ids =
        |row: &LatencyRow| !row.platform_instance.is_empty() && !row.process_nonce.is_empty();
    let mut answered = KnownInstances::default();
    for row in rows.iter().filter(|r| has_ids(r)) {
        if let Some(latency) = row.ok_latency_ms() {
            answered.answered(
                (row.sub_experiment.as_str(), row.platform_instance.as_str()),
                row.process_nonce.as_str(),
                row.actual_send_ms + latency,
            );
        }
    }
    rows.iter()
        .map(|row| {
            has_ids(row)
                && answered.known(
                    &(row.sub_experiment.as_str(), row.platform_instance.as_str()),
                    &row.process_nonce.as_str(),
                    row.actual_send_ms,
                )
        })
        .collect()
}

/// Counts and disagreements of the start labels of one sub-experiment (in `analysis.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StartLabelSummary {
    /// The thresholds used.
    pub thresholds: Option<StartThresholds>,
    /// Successful requests per label (labels with no request are left out).
    pub counts: BTreeMap<StartLabel, usize>,
    /// Rows whose platform gave its own label (`Provider Label`).
    pub provider_compared: usize,
    /// Of those, rows where it differs from `Start Label`.
    pub provider_disagree: usize,
    /// `(start label, provider label) -> rows` for the disagreements.
    pub provider_confusion: BTreeMap<String, usize>,
    /// Process-first rows not labelled cold (prewarmed, restarted, restored): what the
    /// "first request is cold" rule alone gets wrong.
    pub first_request_not_cold: usize,
    /// Non-first rows labelled cold (queued): what that rule misses.
    pub cold_not_first_request: usize,
    /// Rows where the latency threshold disagrees with the label's cold/warm.
    pub threshold_disagree: usize,
    /// Twice the p99 of the ready gaps of this sub-experiment's `cold-natural` and
    /// `cold-scaleout` rows: a `PrewarmGapMs` calibrated from it when it is a forced-cold run.
    pub calibrated_prewarm_gap_ms: Option<f64>,
}

impl StartLabelSummary {
    /// Summarises labelled `rows`; `cold_threshold_ms` is the latency rule's limit.
    pub fn of_rows<R: LatencyRecord>(
        rows: &[R],
        thresholds: StartThresholds,
        cold_threshold_ms: f64,
    ) -> Self {
        let mut summary = Self {
            thresholds: Some(thresholds),
            ..Self::default()
        };
        let mut cold_gaps = Vec::new();
        for row in rows {
            let Some(label) = row.start_label() else {
                continue;
            };
            *summary.counts.entry(label).or_default() += 1;
            let provider_label = row.provider_label();
            if !provider_label.is_empty() {
                summary.provider_compared += 1;
                if provider_label != label.as_str() {
                    summary.provider_disagree += 1;
                    *summary
                        .provider_confusion
                        .entry(format!("{label} vs {provider_label}"))
                        .or_default() += 1;
                }
            }
            match row.cold() {
                Some(true) if !label.is_cold() => summary.first_request_not_cold += 1,
                Some(false) if label.is_cold() => summary.cold_not_first_request += 1,
                _ => {}
            }
            if let Some(latency) = row.ok_latency_ms()
                && (latency >= cold_threshold_ms) != label.is_cold()
            {
                summary.threshold_disagree += 1;
            }
            if matches!(label, StartLabel::ColdNatural | StartLabel::ColdScaleout)
                && let Some(gap) = row.ready_gap_ms().filter(|g| g.is_finite())
            {
                cold_gaps.push(gap);
            }
        }
        summary.calibrated_prewarm_gap_ms = crate::stats::quantile(&cold_gaps, 0.99)
            .map(|p99| (2.0 * p99.max(0.0) * 1000.0).round() / 1000.0);
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: StartThresholds = StartThresholds {
        prewarm_gap_ms: 1000.0,
        queued_gap_ms: 50.0,
    };

    fn sig(first: bool, gap: Option<f64>, in_flight: Option<bool>) -> StartSignals {
        StartSignals {
            process_first: first,
            ready_gap_ms: gap,
            first_in_flight: in_flight,
            restored: false,
            known_instance: false,
        }
    }

    #[test]
    fn the_decision_order_of_the_module_docs() {
        let label = |s: StartSignals| decide(&s, &T);
        use Decision::{ColdStart, Label};
        assert_eq!(
            label(sig(true, Some(2.0), None)),
            (ColdStart, LabelSignal::ReadyGap)
        );
        assert_eq!(
            label(sig(true, Some(5000.0), None)),
            (Label(StartLabel::Prewarmed), LabelSignal::ReadyGap)
        );
        assert_eq!(
            label(sig(true, None, None)),
            (ColdStart, LabelSignal::ProcessFirst)
        );
        assert_eq!(
            label(sig(false, Some(30.0), Some(true))).0,
            Label(StartLabel::ColdQueued)
        );
        assert_eq!(
            label(sig(false, Some(80.0), Some(true))).0,
            Label(StartLabel::Warm),
            "arrived long after the start"
        );
        assert_eq!(
            label(sig(false, Some(30.0), Some(false))).0,
            Label(StartLabel::Warm),
            "the first request had finished"
        );
        let restart = StartSignals {
            known_instance: true,
            ..sig(true, Some(5000.0), None)
        };
        assert_eq!(label(restart).0, Label(StartLabel::ProcessRestart));
        let restored = StartSignals {
            restored: true,
            ..restart
        };
        assert_eq!(label(restored).0, Label(StartLabel::Restored));
    }

    fn any_signals() -> impl Strategy<Value = StartSignals> {
        (
            any::<bool>(),
            proptest::option::of(0.0..20_000.0f64),
            proptest::option::of(any::<bool>()),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(process_first, ready_gap_ms, first_in_flight, restored, known_instance)| {
                    StartSignals {
                        process_first,
                        ready_gap_ms,
                        first_in_flight,
                        restored,
                        known_instance,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn first_requests_are_never_warm_or_queued_and_later_ones_never_start_an_instance(
            s in any_signals()
        ) {
            let (decision, _) = decide(&s, &T);
            if s.process_first {
                prop_assert!(!matches!(
                    decision,
                    Decision::Label(StartLabel::Warm | StartLabel::ColdQueued)
                ));
            } else {
                prop_assert!(matches!(
                    decision,
                    Decision::Label(StartLabel::Warm | StartLabel::ColdQueued)
                ));
            }
        }

        #[test]
        fn a_larger_prewarm_threshold_never_turns_a_cold_start_prewarmed(
            s in any_signals(), extra in 0.0..10_000.0f64
        ) {
            let wider = StartThresholds { prewarm_gap_ms: T.prewarm_gap_ms + extra, ..T };
            let (narrow, _) = decide(&s, &T);
            let (wide, _) = decide(&s, &wider);
            if narrow == Decision::ColdStart {
                prop_assert_eq!(wide, Decision::ColdStart);
            }
            if wide == Decision::Label(StartLabel::Prewarmed) {
                prop_assert_eq!(narrow, Decision::Label(StartLabel::Prewarmed));
            }
        }

        #[test]
        fn labels_round_trip_through_their_names(i in 0..StartLabel::ALL.len()) {
            let label = StartLabel::ALL[i];
            prop_assert_eq!(label.as_str().parse::<StartLabel>(), Ok(label));
            prop_assert_eq!(label.is_cold(), label.as_str().starts_with("cold-"));
        }
    }

    fn answered(instance: &str, nonce: &str, sent: f64, latency: f64) -> LatencyRow {
        LatencyRow {
            sub_experiment: "s".into(),
            platform_instance: instance.into(),
            process_nonce: nonce.into(),
            actual_send_ms: sent,
            client_latency_ms: Some(latency),
            ..LatencyRow::default()
        }
    }

    #[test]
    fn an_instance_is_known_once_another_process_answered_from_it() {
        let rows = vec![
            answered("slot-1", "a", 0.0, 5.0),
            answered("slot-1", "a", 10.0, 5.0),
            // New process in the same slot, sent after the old one answered.
            answered("slot-1", "b", 100.0, 5.0),
            // Another slot: never seen.
            answered("slot-2", "c", 100.0, 5.0),
            // No platform id: unknown.
            answered("", "d", 200.0, 5.0),
        ];
        assert_eq!(
            known_instances(&rows),
            vec![false, false, true, false, false]
        );
    }

    #[test]
    fn the_summary_counts_labels_and_disagreements() {
        let row = |label: &str, provider: &str, cold: bool, latency: f64, gap: f64| LatencyRow {
            start_label: label.into(),
            provider_label: provider.into(),
            cold: Some(cold),
            client_latency_ms: Some(latency),
            ready_gap_ms: Some(gap),
            ..LatencyRow::default()
        };
        let rows = vec![
            row("cold-natural", "cold-natural", true, 400.0, 3.0),
            row("prewarmed", "prewarmed", true, 5.0, 4000.0),
            row("cold-queued", "warm", false, 400.0, 20.0),
            row("warm", "", false, 5.0, 9000.0),
        ];
        let s = StartLabelSummary::of_rows(&rows, T, 300.0);
        assert_eq!(s.counts.values().sum::<usize>(), 4);
        assert_eq!(s.counts[&StartLabel::Prewarmed], 1);
        assert_eq!((s.provider_compared, s.provider_disagree), (3, 1));
        assert_eq!(s.provider_confusion["cold-queued vs warm"], 1);
        assert_eq!(s.first_request_not_cold, 1);
        assert_eq!(s.cold_not_first_request, 1);
        assert_eq!(s.threshold_disagree, 0);
        assert_eq!(s.calibrated_prewarm_gap_ms, Some(6.0));
    }
}
