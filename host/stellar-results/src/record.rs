//! What the analysis reads of a row, and a 32-byte row that holds just that.
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
    /// Sets `Cold Kind`.
    fn set_cold_kind(&mut self, kind: Option<ColdKind>);

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
    fn set_cold_kind(&mut self, kind: Option<ColdKind>) {
        self.cold_kind = kind.map(|k| k.as_str().to_owned()).unwrap_or_default();
    }
}

/// The analysed fields of one row in 32 bytes (see the module doc).
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
}

/// [`CompactRow`]'s code for an `Error Kind` that is none of [`ErrorKind::ALL`].
const OTHER_ERROR: u8 = u8::MAX;
/// The name such a row reports.
const OTHER_ERROR_NAME: &str = "other";

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
const KINDS: [ColdKind; 2] = [ColdKind::Natural, ColdKind::ScaleOut];

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
        let source = SOURCES
            .iter()
            .position(|s| s.as_str() == row.cold_source)
            .map_or(0, |i| i as u8 + 1);
        let kind = KINDS
            .iter()
            .position(|k| k.as_str() == row.cold_kind)
            .map_or(0, |i| i as u8 + 1);
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
        })
    }

    /// The `Cold Source` this row was labelled with.
    pub fn cold_source(&self) -> Option<ColdSource> {
        SOURCES
            .get(usize::from(self.labels & 3).checked_sub(1)?)
            .copied()
    }

    /// The `Cold Kind` this row was labelled with.
    pub fn cold_kind(&self) -> Option<ColdKind> {
        KINDS
            .get(usize::from(self.labels >> 2 & 3).checked_sub(1)?)
            .copied()
    }

    /// Copies this row's cold labels into `row`.
    pub fn copy_labels_into(&self, row: &mut LatencyRow) {
        row.set_cold_label(self.cold_label(), self.cold_source());
        row.set_cold_kind(self.cold_kind());
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
        let source = source
            .and_then(|s| SOURCES.iter().position(|x| *x == s))
            .map_or(0, |i| i as u8 + 1);
        self.labels = (self.labels & !3) | source;
    }
    fn set_cold_kind(&mut self, kind: Option<ColdKind>) {
        let kind = kind
            .and_then(|k| KINDS.iter().position(|x| *x == k))
            .map_or(0, |i| i as u8 + 1);
        self.labels = (self.labels & 3) | kind << 2;
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

/// Reads `path` (a `latencies.csv`) row by row into [`CompactRows`]: memory grows by 32 bytes
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
        out.rows.push(compact);
        Ok(())
    })?;
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
    fn a_compact_row_is_32_bytes() {
        assert_eq!(std::mem::size_of::<CompactRow>(), 32);
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
