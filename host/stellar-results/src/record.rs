//! What the analysis reads of a row, and a 40-byte row that holds just that.
//!
//! Why: a run of a million requests must be analysed in tens of megabytes. A [`LatencyRow`]
//! carries ten strings and takes about half a kilobyte; the statistics, cold labels, fidelity
//! checks and plots need only a few numbers and flags of it. [`LatencyRecord`] names those, so
//! every analysis works on either type: on [`LatencyRow`]s (tests, small inputs) or on
//! [`CompactRow`]s read straight from `latencies.csv` ([`read_compact`]), which is how a run
//! is analysed. Latencies are kept exactly as `f32` (about 0.1 µs resolution at 1 s, 2 µs at
//! 16 s), so percentiles and their bootstrap intervals are computed from the real samples, not
//! from a sketch.

use std::path::Path;

use crate::cold::{ColdKind, ColdSource};
use crate::error::{Result, ResultsError};
use crate::labels::{KnownInstances, LabelSignal, StartLabel};
use crate::row::{ErrorKind, LatencyRow};
use crate::segments::SegmentSpans;

/// The fields of a request's outcome that analyses read, and the cold labels they write.
pub trait LatencyRecord {
    /// `Client Latency (ms)`, when a response arrived.
    fn client_latency_ms(&self) -> Option<f64>;
    /// `Error Kind`: empty for a success.
    fn error_kind(&self) -> &str;
    /// `Burst ID`.
    fn burst_id(&self) -> u64;
    /// `Burst Size`.
    fn burst_size(&self) -> u32;
    /// `Endpoint`.
    fn endpoint(&self) -> u32;
    /// `Planned Send (ms)`.
    fn planned_send_ms(&self) -> f64;
    /// `Actual Send (ms)`.
    fn actual_send_ms(&self) -> f64;
    /// `Segment`.
    fn segment(&self) -> u32;
    /// `Cold`: the function's own flag.
    fn cold(&self) -> Option<bool>;
    /// `Provider Cold`.
    fn provider_cold(&self) -> Option<bool>;
    /// `Cold Label`.
    fn cold_label(&self) -> Option<bool>;
    /// `Sub-experiment` (empty when the rows are known to be of one sub-experiment).
    fn sub_experiment(&self) -> &str;
    /// Sets `Cold Label` and `Cold Source`.
    fn set_cold_label(&mut self, label: Option<bool>, source: Option<ColdSource>);
    /// `Cold Kind`.
    fn cold_kind(&self) -> Option<ColdKind>;
    /// Sets `Cold Kind`.
    fn set_cold_kind(&mut self, kind: Option<ColdKind>);
    /// `Ready Gap (ms)`.
    fn ready_gap_ms(&self) -> Option<f64>;
    /// `First In Flight`.
    fn first_in_flight(&self) -> Option<bool>;
    /// True when `Init Type` says the process was restored from a snapshot.
    fn restored(&self) -> bool;
    /// `Provider Label`: empty when the platform gave none.
    fn provider_label(&self) -> &str;
    /// `Start Label`.
    fn start_label(&self) -> Option<StartLabel>;
    /// `Label Signal`.
    fn label_signal(&self) -> Option<LabelSignal>;
    /// Sets `Start Label` and `Label Signal`.
    fn set_start_label(&mut self, label: Option<StartLabel>, signal: Option<LabelSignal>);
    /// Per row of `rows`: whether its platform instance had answered from another process
    /// before the row was sent (see [`crate::labels::known_instances`]).
    fn known_instances(rows: &[Self]) -> Vec<bool>
    where
        Self: Sized;

    /// True when the request succeeded.
    fn is_ok(&self) -> bool {
        self.error_kind().is_empty()
    }

    /// The final cold label when labelling has run, else the function's own flag.
    fn is_cold(&self) -> Option<bool> {
        self.cold_label().or(self.cold())
    }

    /// The (finite) client latency of a successful request.
    fn ok_latency_ms(&self) -> Option<f64> {
        if self.is_ok() {
            self.client_latency_ms().filter(|v| v.is_finite())
        } else {
            None
        }
    }
}

impl LatencyRecord for LatencyRow {
    fn client_latency_ms(&self) -> Option<f64> {
        self.client_latency_ms
    }
    fn error_kind(&self) -> &str {
        &self.error_kind
    }
    fn burst_id(&self) -> u64 {
        self.burst_id
    }
    fn burst_size(&self) -> u32 {
        self.burst_size
    }
    fn endpoint(&self) -> u32 {
        self.endpoint
    }
    fn planned_send_ms(&self) -> f64 {
        self.planned_send_ms
    }
    fn actual_send_ms(&self) -> f64 {
        self.actual_send_ms
    }
    fn segment(&self) -> u32 {
        self.segment
    }
    fn cold(&self) -> Option<bool> {
        self.cold
    }
    fn provider_cold(&self) -> Option<bool> {
        self.provider_cold
    }
    fn cold_label(&self) -> Option<bool> {
        self.cold_label
    }
    fn sub_experiment(&self) -> &str {
        &self.sub_experiment
    }
    fn set_cold_label(&mut self, label: Option<bool>, source: Option<ColdSource>) {
        self.cold_label = label;
        self.cold_source = source.map(|s| s.as_str().to_owned()).unwrap_or_default();
    }
    fn cold_kind(&self) -> Option<ColdKind> {
        KINDS.into_iter().find(|k| k.as_str() == self.cold_kind)
    }
    fn set_cold_kind(&mut self, kind: Option<ColdKind>) {
        self.cold_kind = kind.map(|k| k.as_str().to_owned()).unwrap_or_default();
    }
    fn ready_gap_ms(&self) -> Option<f64> {
        self.ready_gap_ms
    }
    fn first_in_flight(&self) -> Option<bool> {
        self.first_in_flight
    }
    fn restored(&self) -> bool {
        crate::labels::is_restore_init_type(&self.init_type)
    }
    fn provider_label(&self) -> &str {
        &self.provider_label
    }
    fn start_label(&self) -> Option<StartLabel> {
        self.start_label.parse().ok()
    }
    fn label_signal(&self) -> Option<LabelSignal> {
        LabelSignal::from_name(&self.label_signal)
    }
    fn set_start_label(&mut self, label: Option<StartLabel>, signal: Option<LabelSignal>) {
        self.start_label = label.map(|l| l.as_str().to_owned()).unwrap_or_default();
        self.label_signal = signal.map(|s| s.as_str().to_owned()).unwrap_or_default();
    }
    fn known_instances(rows: &[Self]) -> Vec<bool> {
        crate::labels::known_instances(rows)
    }
}

/// The analysed fields of one row in 40 bytes (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactRow {
    planned_send_ms: f64,
    /// `Actual Send (ms)` minus `Planned Send (ms)`.
    send_lag_ms: f32,
    /// NaN when no response arrived.
    latency_ms: f32,
    burst_id: u32,
    burst_size: u32,
    endpoint: u16,
    segment: u16,
    /// 0 for a success, else 1 + the index in [`ErrorKind::ALL`] ([`OTHER_ERROR`]: any
    /// other value).
    error: u8,
    /// Two bits each: `Cold`, `Provider Cold`, `Cold Label` (0 none, 1 false, 2 true).
    flags: u8,
    /// Cold source (two bits) and cold kind (two bits above them); 0 for none.
    labels: u8,
    /// `Ready Gap (ms)`; NaN when none was reported.
    ready_gap_ms: f32,
    /// `First In Flight` (two bits, as in `flags`), restored (bit 2), known instance (bit 3).
    signals: u8,
    /// `Provider Label`: 0 for none, else 1 + the index in [`StartLabel::ALL`]
    /// ([`OTHER_LABEL`]: any other value).
    provider_label: u8,
    /// `Start Label` (low four bits) and `Label Signal` (high four bits): 0 for none, else 1 +
    /// the index in [`StartLabel::ALL`] / [`LabelSignal::ALL`].
    start: u8,
}

/// [`CompactRow`]'s code for an `Error Kind` that is none of [`ErrorKind::ALL`].
const OTHER_ERROR: u8 = u8::MAX;
/// The name such a row reports.
const OTHER_ERROR_NAME: &str = "other";
/// [`CompactRow`]'s code for a `Provider Label` that is none of [`StartLabel::ALL`].
const OTHER_LABEL: u8 = u8::MAX;
/// The name such a row reports.
const OTHER_LABEL_NAME: &str = "other";
/// `signals` bit: the init type says a snapshot restore.
const RESTORED: u8 = 1 << 2;
/// `signals` bit: the platform instance was known from another process.
const KNOWN_INSTANCE: u8 = 1 << 3;

/// 0 for `None`, else 1 + the position of `value` in `all`.
fn code_of<T: PartialEq>(all: &[T], value: Option<T>) -> u8 {
    value
        .and_then(|v| all.iter().position(|x| *x == v))
        .map_or(0, |i| i as u8 + 1)
}

/// The value [`code_of`] encoded.
fn of_code<T: Copy>(all: &[T], code: u8) -> Option<T> {
    all.get(usize::from(code).checked_sub(1)?).copied()
}

fn tri(v: Option<bool>) -> u8 {
    match v {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

fn untri(bits: u8) -> Option<bool> {
    match bits & 3 {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    }
}

const SOURCES: [ColdSource; 3] = [
    ColdSource::Function,
    ColdSource::Provider,
    ColdSource::Threshold,
];
const KINDS: [ColdKind; 3] = [ColdKind::Natural, ColdKind::ScaleOut, ColdKind::Queued];

impl CompactRow {
    /// The compact form of `row`; an error names what does not fit (a burst id beyond
    /// 2³²−1, an endpoint or segment beyond 65 535).
    pub fn from_row(row: &LatencyRow) -> std::result::Result<Self, String> {
        let error = if row.error_kind.is_empty() {
            0
        } else {
            ErrorKind::ALL
                .iter()
                .position(|k| k.as_str() == row.error_kind)
                .map_or(OTHER_ERROR, |i| i as u8 + 1)
        };
        let narrow = |what: &str, v: u64, max: u64| {
            if v > max {
                Err(format!("{what} {v} is larger than {max}"))
            } else {
                Ok(v)
            }
        };
        let source = code_of(
            &SOURCES,
            SOURCES.into_iter().find(|s| s.as_str() == row.cold_source),
        );
        let kind = code_of(&KINDS, LatencyRecord::cold_kind(row));
        Ok(Self {
            planned_send_ms: row.planned_send_ms,
            send_lag_ms: (row.actual_send_ms - row.planned_send_ms) as f32,
            latency_ms: row.client_latency_ms.map_or(f32::NAN, |v| v as f32),
            burst_id: narrow("Burst ID", row.burst_id, u64::from(u32::MAX))? as u32,
            burst_size: row.burst_size,
            endpoint: narrow("Endpoint", row.endpoint.into(), u16::MAX.into())? as u16,
            segment: narrow("Segment", row.segment.into(), u16::MAX.into())? as u16,
            error,
            flags: tri(row.cold) | tri(row.provider_cold) << 2 | tri(row.cold_label) << 4,
            labels: source | kind << 2,
            ready_gap_ms: row.ready_gap_ms.map_or(f32::NAN, |v| v as f32),
            signals: tri(row.first_in_flight) | if row.restored() { RESTORED } else { 0 },
            provider_label: if row.provider_label.is_empty() {
                0
            } else {
                match code_of(&StartLabel::ALL, row.provider_label.parse().ok()) {
                    0 => OTHER_LABEL,
                    code => code,
                }
            },
            start: code_of(&StartLabel::ALL, row.start_label())
                | code_of(&LabelSignal::ALL, row.label_signal()) << 4,
        })
    }

    /// The `Cold Source` this row was labelled with.
    pub fn cold_source(&self) -> Option<ColdSource> {
        of_code(&SOURCES, self.labels & 3)
    }

    /// Copies this row's cold and start labels into `row`.
    pub fn copy_labels_into(&self, row: &mut LatencyRow) {
        row.set_cold_label(self.cold_label(), self.cold_source());
        row.set_cold_kind(self.cold_kind());
        row.set_start_label(self.start_label(), self.label_signal());
    }
}

impl LatencyRecord for CompactRow {
    fn client_latency_ms(&self) -> Option<f64> {
        (!self.latency_ms.is_nan()).then_some(f64::from(self.latency_ms))
    }
    fn error_kind(&self) -> &str {
        match self.error {
            0 => "",
            OTHER_ERROR => OTHER_ERROR_NAME,
            i => ErrorKind::ALL
                .get(usize::from(i - 1))
                .map_or(OTHER_ERROR_NAME, |k| k.as_str()),
        }
    }
    fn is_ok(&self) -> bool {
        self.error == 0
    }
    fn burst_id(&self) -> u64 {
        self.burst_id.into()
    }
    fn burst_size(&self) -> u32 {
        self.burst_size
    }
    fn endpoint(&self) -> u32 {
        self.endpoint.into()
    }
    fn planned_send_ms(&self) -> f64 {
        self.planned_send_ms
    }
    fn actual_send_ms(&self) -> f64 {
        self.planned_send_ms + f64::from(self.send_lag_ms)
    }
    fn segment(&self) -> u32 {
        self.segment.into()
    }
    fn cold(&self) -> Option<bool> {
        untri(self.flags)
    }
    fn provider_cold(&self) -> Option<bool> {
        untri(self.flags >> 2)
    }
    fn cold_label(&self) -> Option<bool> {
        untri(self.flags >> 4)
    }
    fn sub_experiment(&self) -> &str {
        ""
    }
    fn set_cold_label(&mut self, label: Option<bool>, source: Option<ColdSource>) {
        self.flags = (self.flags & 0b00_1111) | tri(label) << 4;
        self.labels = (self.labels & !3) | code_of(&SOURCES, source);
    }
    fn cold_kind(&self) -> Option<ColdKind> {
        of_code(&KINDS, self.labels >> 2 & 3)
    }
    fn set_cold_kind(&mut self, kind: Option<ColdKind>) {
        self.labels = (self.labels & 3) | code_of(&KINDS, kind) << 2;
    }
    fn ready_gap_ms(&self) -> Option<f64> {
        (!self.ready_gap_ms.is_nan()).then_some(f64::from(self.ready_gap_ms))
    }
    fn first_in_flight(&self) -> Option<bool> {
        untri(self.signals)
    }
    fn restored(&self) -> bool {
        self.signals & RESTORED != 0
    }
    fn provider_label(&self) -> &str {
        match self.provider_label {
            0 => "",
            OTHER_LABEL => OTHER_LABEL_NAME,
            code => of_code(&StartLabel::ALL, code).map_or(OTHER_LABEL_NAME, |l| l.as_str()),
        }
    }
    fn start_label(&self) -> Option<StartLabel> {
        of_code(&StartLabel::ALL, self.start & 0x0f)
    }
    fn label_signal(&self) -> Option<LabelSignal> {
        of_code(&LabelSignal::ALL, self.start >> 4)
    }
    fn set_start_label(&mut self, label: Option<StartLabel>, signal: Option<LabelSignal>) {
        self.start = code_of(&StartLabel::ALL, label) | code_of(&LabelSignal::ALL, signal) << 4;
    }
    fn known_instances(rows: &[Self]) -> Vec<bool> {
        rows.iter()
            .map(|r| r.signals & KNOWN_INSTANCE != 0)
            .collect()
    }
}

/// The rows of one `latencies.csv` in compact form, read in one streaming pass.
#[derive(Debug, Default)]
pub struct CompactRows {
    /// The rows, in file order.
    pub rows: Vec<CompactRow>,
    /// The `Sub-experiment` of the first row (empty for an empty file).
    pub sub_experiment: String,
    /// Per segment: requests and first/last `Sent At` (for [`crate::segments`]).
    pub segments: SegmentSpans,
}

/// Reads `path` (a `latencies.csv`) row by row into [`CompactRows`]: memory grows by 40 bytes
/// a row, never by a whole [`LatencyRow`]. Errors name the file and the line.
pub fn read_compact(path: impl AsRef<Path>) -> Result<CompactRows> {
    let path = path.as_ref();
    let mut out = CompactRows {
        // One quick pass for the row count, so the rows are allocated once, exactly (growing
        // by doubling would hold one and a half copies at the end).
        rows: Vec::with_capacity(count_lines(path)?.saturating_sub(1)),
        ..CompactRows::default()
    };
    let mut line = 1u64;
    // Per row: interned (platform instance, process nonce), for the known-instance signal
    // (8 bytes a row while reading; the strings are kept once per instance and process).
    let mut ids: Vec<Option<(u32, u32)>> = Vec::with_capacity(out.rows.capacity());
    let mut interned: std::collections::HashMap<String, u32> = Default::default();
    let mut intern = |s: &str| {
        let next = interned.len() as u32;
        *interned.entry(s.to_owned()).or_insert(next)
    };
    let mut answered = KnownInstances::default();
    crate::writer::for_each_latency(path, |row| {
        line += 1;
        if out.rows.is_empty() {
            out.sub_experiment = row.sub_experiment.clone();
        }
        out.segments.add(row.segment, &row.sent_at);
        let compact = CompactRow::from_row(&row).map_err(|what| ResultsError::Value {
            path: path.to_path_buf(),
            line,
            what,
        })?;
        let id = (!row.platform_instance.is_empty() && !row.process_nonce.is_empty())
            .then(|| (intern(&row.platform_instance), intern(&row.process_nonce)));
        if let (Some((instance, nonce)), Some(latency)) = (id, compact.ok_latency_ms()) {
            answered.answered(instance, nonce, compact.actual_send_ms() + latency);
        }
        ids.push(id);
        out.rows.push(compact);
        Ok(())
    })?;
    for (row, id) in out.rows.iter_mut().zip(ids) {
        if let Some((instance, nonce)) = id
            && answered.known(&instance, &nonce, row.actual_send_ms())
        {
            row.signals |= KNOWN_INSTANCE;
        }
    }
    Ok(out)
}

/// Newlines in `path`, counted in 64 KiB blocks.
fn count_lines(path: &Path) -> Result<usize> {
    use std::io::Read;
    let mut file = fs_err::File::open(path).map_err(|e| ResultsError::io(path, "open", e))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ResultsError::io(path, "read", e))?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::tests::sample_row;

    #[test]
    fn a_compact_row_is_40_bytes() {
        assert_eq!(std::mem::size_of::<CompactRow>(), 40);
    }

    #[test]
    fn compact_rows_read_what_the_row_says() {
        let mut row = sample_row();
        row.cold = Some(true);
        row.provider_cold = None;
        row.cold_label = Some(false);
        row.cold_source = "provider".into();
        row.cold_kind = "scale-out".into();
        row.planned_send_ms = 1234.5;
        row.actual_send_ms = 1234.75;
        let c = CompactRow::from_row(&row).unwrap();
        let latency = c.client_latency_ms().unwrap();
        assert!((latency - row.client_latency_ms.unwrap()).abs() < 1e-5);
        assert_eq!(c.error_kind(), row.error_kind);
        assert_eq!(
            (c.burst_id(), c.burst_size(), c.endpoint(), c.segment()),
            (row.burst_id, row.burst_size, row.endpoint, row.segment)
        );
        assert_eq!((c.planned_send_ms(), c.actual_send_ms()), (1234.5, 1234.75));
        assert_eq!(
            (c.cold(), c.provider_cold(), c.cold_label()),
            (Some(true), None, Some(false))
        );
        assert_eq!(
            (c.cold_source(), c.cold_kind()),
            (Some(ColdSource::Provider), Some(ColdKind::ScaleOut))
        );
        for kind in ErrorKind::ALL {
            let failed = LatencyRow {
                error_kind: kind.as_str().into(),
                client_latency_ms: None,
                ..sample_row()
            };
            let c = CompactRow::from_row(&failed).unwrap();
            assert!(!c.is_ok());
            assert_eq!(c.error_kind(), kind.as_str());
            assert_eq!(c.ok_latency_ms(), None);
        }
    }

    #[test]
    fn labels_round_trip_into_a_row() {
        let mut c = CompactRow::from_row(&sample_row()).unwrap();
        c.set_cold_label(Some(true), Some(ColdSource::Threshold));
        c.set_cold_kind(Some(ColdKind::Natural));
        let mut row = sample_row();
        c.copy_labels_into(&mut row);
        assert_eq!(
            (
                row.cold_label,
                row.cold_source.as_str(),
                row.cold_kind.as_str()
            ),
            (Some(true), "threshold", "natural")
        );
        c.set_cold_label(None, None);
        c.set_cold_kind(None);
        c.copy_labels_into(&mut row);
        assert_eq!(
            (
                row.cold_label,
                row.cold_source.as_str(),
                row.cold_kind.as_str()
            ),
            (None, "", "")
        );
    }

    #[test]
    fn start_labels_and_their_signals_round_trip() {
        let row = LatencyRow {
            ready_gap_ms: Some(12.5),
            first_in_flight: Some(true),
            init_type: "snap-start".into(),
            provider_label: "prewarmed".into(),
            start_label: "cold-queued".into(),
            label_signal: "first-in-flight".into(),
            cold_kind: "queued".into(),
            ..sample_row()
        };
        let c = CompactRow::from_row(&row).unwrap();
        assert_eq!(
            (c.ready_gap_ms(), c.first_in_flight(), c.restored()),
            (Some(12.5), Some(true), true)
        );
        assert_eq!(c.provider_label(), "prewarmed");
        assert_eq!(c.start_label(), Some(StartLabel::ColdQueued));
        assert_eq!(c.label_signal(), Some(LabelSignal::FirstInFlight));
        assert_eq!(c.cold_kind(), Some(ColdKind::Queued));
        let mut back = sample_row();
        c.copy_labels_into(&mut back);
        assert_eq!(
            (back.start_label.as_str(), back.label_signal.as_str()),
            ("cold-queued", "first-in-flight")
        );
        let odd = LatencyRow {
            provider_label: "thawed".into(),
            ready_gap_ms: None,
            ..sample_row()
        };
        let c = CompactRow::from_row(&odd).unwrap();
        assert_eq!((c.provider_label(), c.ready_gap_ms()), ("other", None));
    }

    #[test]
    fn compact_rows_know_an_instance_answered_from_another_process_before() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("latencies.csv");
        let answered = |nonce: &str, sent: f64, latency: f64| LatencyRow {
            platform_instance: "vm-1".into(),
            process_nonce: nonce.into(),
            actual_send_ms: sent,
            planned_send_ms: sent,
            client_latency_ms: Some(latency),
            error_kind: String::new(),
            ..sample_row()
        };
        let rows = [
            answered("a", 0.0, 10.0),
            // Another process of the same instance, sent before "a" answered.
            answered("b", 5.0, 1.0),
            // Sent after "a" answered at 10 ms.
            answered("b", 20.0, 1.0),
            answered("a", 30.0, 1.0),
        ];
        let mut writer = crate::LatencyWriter::create(&csv).unwrap();
        for row in &rows {
            writer.write(row).unwrap();
        }
        writer.finish().unwrap();
        let compact = read_compact(&csv).unwrap();
        let from_compact = CompactRow::known_instances(&compact.rows);
        assert_eq!(from_compact, vec![false, false, true, true]);
        assert_eq!(from_compact, crate::labels::known_instances(&rows));
    }

    #[test]
    fn values_that_do_not_fit_are_errors() {
        let row = LatencyRow {
            endpoint: 70_000,
            ..sample_row()
        };
        assert_eq!(
            CompactRow::from_row(&row).unwrap_err(),
            "Endpoint 70000 is larger than 65535"
        );
    }
}
