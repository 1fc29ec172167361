//! Notes on a resumed run's segments, derived from the rows alone (so `stellar report` on the
//! files says the same as the run did).
//!
//! Why: a run resumed after a crash has a gap of unknown length in the middle. Its rows keep
//! their place on the planned schedule (planned and actual send times stay comparable), but
//! no instance lives through the gap, so a reader must be told where the gap is and that
//! cold/warm state across it is not comparable.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::LatencyRow;

/// Per segment: how many requests, and the first and last `Sent At` (wall clock). Filled
/// row by row, so a streaming reader needs no row kept ([`crate::record::read_compact`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentSpans {
    spans: BTreeMap<u32, (u64, Option<SystemTime>, Option<SystemTime>)>,
}

impl SegmentSpans {
    /// Counts one row of `segment` sent at the `Sent At` label `sent_at`.
    pub fn add(&mut self, segment: u32, sent_at: &str) {
        let entry = self.spans.entry(segment).or_insert((0, None, None));
        entry.0 += 1;
        if let Ok(at) = humantime::parse_rfc3339(sent_at) {
            entry.1 = Some(entry.1.map_or(at, |t| t.min(at)));
            entry.2 = Some(entry.2.map_or(at, |t| t.max(at)));
        }
    }

    /// See [`segment_notes`].
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut previous: Option<(u32, Option<SystemTime>)> = None;
        for (&segment, &(count, first, last)) in &self.spans {
            if let Some((before, before_last)) = previous {
                let gap = match (before_last, first) {
                    (Some(a), Some(b)) => format!(
                        ", {} after the last request of segment {before}",
                        human(b.duration_since(a).unwrap_or(Duration::ZERO))
                    ),
                    _ => String::new(),
                };
                notes.push(format!(
                    "resumed: {count} requests were sent in segment {segment} (stellar run \
                     --resume){gap}, by this machine's wall clock; no instance survives a resume, \
                     so cold/warm state across the gap is not comparable"
                ));
            }
            previous = Some((segment, last));
        }
        notes
    }
}

/// One sentence per resumed segment present in `rows`, in segment order; empty for a run that
/// was never resumed. The gap is measured between the `Sent At` labels of the last request of
/// the segment before and the first of this one: both are this machine's wall clock.
pub fn segment_notes(rows: &[LatencyRow]) -> Vec<String> {
    let mut spans = SegmentSpans::default();
    for row in rows {
        spans.add(row.segment, &row.sent_at);
    }
    spans.notes()
}

fn human(d: Duration) -> String {
    let seconds = d.as_secs_f64();
    if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(segment: u32, sent_at: &str) -> LatencyRow {
        LatencyRow {
            segment,
            sent_at: sent_at.into(),
            ..LatencyRow::default()
        }
    }

    #[test]
    fn a_run_never_resumed_has_no_notes() {
        assert!(segment_notes(&[row(0, "2026-12-01T10:00:00.000Z")]).is_empty());
        assert!(segment_notes(&[]).is_empty());
    }

    #[test]
    fn each_resume_gets_its_gap() {
        let rows = [
            row(0, "2026-12-01T10:00:00.000Z"),
            row(0, "2026-12-01T10:00:01.500Z"),
            row(1, "2026-12-01T10:00:09.000Z"),
            row(1, "2026-12-01T10:00:10.000Z"),
            row(2, "2026-12-01T10:10:10.000Z"),
        ];
        let notes = segment_notes(&rows);
        assert_eq!(notes.len(), 2);
        assert!(
            notes[0].starts_with(
                "resumed: 2 requests were sent in segment 1 (stellar run --resume), 7.5 s after \
                 the last request of segment 0"
            ),
            "{notes:?}"
        );
        assert!(
            notes[1].contains("10.0 min after the last request of segment 1"),
            "{notes:?}"
        );
        assert!(notes[1].contains("not comparable"));
    }
}
