//! Streams [`LatencyRow`]s to `latencies.csv` while a run is in progress, and reads them back.
//!
//! A benchmark run can last hours and cost money, so the file must survive a crash: the header
//! is written when the file is created and every row is flushed to the operating system as soon
//! as it is written. A crash then loses at most the requests still in flight.

use std::path::{Path, PathBuf};

use crate::error::{Result, ResultsError};
use crate::row::{LATENCY_HEADERS, LatencyRow};

/// Writes `latencies.csv` one row at a time, flushing after each row.
#[derive(Debug)]
pub struct LatencyWriter {
    path: PathBuf,
    csv: csv::Writer<fs_err::File>,
    rows: u64,
}

impl LatencyWriter {
    /// Creates (or truncates) `path` and writes the header line straight away.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = fs_err::File::create(&path).map_err(|e| ResultsError::io(&path, "create", e))?;
        // The header is written by hand (not by serde on the first row) so that an empty run
        // still leaves a well-formed file.
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        csv.write_record(LATENCY_HEADERS)
            .map_err(|e| ResultsError::csv(&path, e))?;
        csv.flush()
            .map_err(|e| ResultsError::io(&path, "write", e))?;
        Ok(Self { path, csv, rows: 0 })
    }

    /// Appends one row and flushes it to the operating system.
    pub fn write(&mut self, row: &LatencyRow) -> Result<()> {
        self.csv
            .serialize(row)
            .map_err(|e| ResultsError::csv(&self.path, e))?;
        self.csv
            .flush()
            .map_err(|e| ResultsError::io(&self.path, "write", e))?;
        self.rows += 1;
        Ok(())
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many rows have been written so far.
    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Flushes, syncs the file to disk and closes it. Returns the number of rows written.
    pub fn finish(self) -> Result<u64> {
        let Self { path, csv, rows } = self;
        let file = csv
            .into_inner()
            .map_err(|e| ResultsError::io(&path, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| ResultsError::io(&path, "sync", e))?;
        Ok(rows)
    }
}

/// Reads every row of a `latencies.csv` written by [`LatencyWriter`].
///
/// The header must be exactly [`LATENCY_HEADERS`]; errors name the file and the line.
pub fn read_latencies(path: impl AsRef<Path>) -> Result<Vec<LatencyRow>> {
    let path = path.as_ref();
    let file = fs_err::File::open(path).map_err(|e| ResultsError::io(path, "open", e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(std::io::BufReader::new(file));
    let headers = reader
        .headers()
        .map_err(|e| ResultsError::csv(path, e))?
        .clone();
    if headers.iter().ne(LATENCY_HEADERS) {
        return Err(ResultsError::Header {
            path: path.to_path_buf(),
            expected: LATENCY_HEADERS.join(","),
            found: headers.iter().collect::<Vec<_>>().join(","),
        });
    }
    reader
        .deserialize()
        .map(|row| row.map_err(|e| ResultsError::csv(path, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::tests::sample_row;

    fn rows() -> Vec<LatencyRow> {
        let a = LatencyRow {
            client_latency_ms: Some(12.5),
            actual_send_ms: 1.25,
            send_lag_ms: 0.25,
            function_spin_ms: Some(10.5),
            ..sample_row()
        };
        let b = LatencyRow {
            request_index: 18,
            client_latency_ms: None,
            error_kind: "timeout".into(),
            error: "no response, after 15m".into(),
            cold: None,
            ..a.clone()
        };
        vec![a, b]
    }

    #[test]
    fn header_is_on_disk_before_any_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latencies.csv");
        let w = LatencyWriter::create(&path).expect("create");
        let text = fs_err::read_to_string(&path).expect("read");
        assert_eq!(text, format!("{}\n", LATENCY_HEADERS.join(",")));
        assert_eq!(w.finish().expect("finish"), 0);
        assert!(read_latencies(&path).expect("read back").is_empty());
    }

    #[test]
    fn each_row_is_flushed_before_finish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latencies.csv");
        let mut w = LatencyWriter::create(&path).expect("create");
        let rows = rows();
        for (i, row) in rows.iter().enumerate() {
            w.write(row).expect("write");
            // Read through a separate handle while the writer is still open.
            let seen = read_latencies(&path).expect("read while open");
            assert_eq!(seen, rows[..=i]);
        }
        assert_eq!(w.rows_written(), 2);
        assert_eq!(w.finish().expect("finish"), 2);
        assert_eq!(read_latencies(&path).expect("read"), rows);
    }

    #[test]
    fn create_in_missing_directory_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("latencies.csv");
        let err = LatencyWriter::create(&path).expect_err("must fail");
        assert!(matches!(
            err,
            ResultsError::Io {
                action: "create",
                ..
            }
        ));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn bad_row_error_names_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latencies.csv");
        let mut w = LatencyWriter::create(&path).expect("create");
        for row in rows() {
            w.write(&row).expect("write");
        }
        w.finish().expect("finish");
        let text = fs_err::read_to_string(&path).expect("read");
        // Corrupt the Burst ID (6th column) of the second data row, i.e. line 3.
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut fields: Vec<&str> = lines[2].split(',').collect();
        fields[5] = "not-a-number";
        lines[2] = fields.join(",");
        fs_err::write(&path, lines.join("\n")).expect("write");

        let err = read_latencies(&path).expect_err("must fail");
        match &err {
            ResultsError::Csv { line, .. } => assert_eq!(*line, Some(3)),
            other => panic!("unexpected error {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn foreign_header_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latencies.csv");
        // A Go STeLLAR file: only the first six columns.
        fs_err::write(
            &path,
            "Request ID,Host,Sent At,Received At,Client Latency (ms),Burst ID\nx,h,a,b,12,0\n",
        )
        .expect("write");
        let err = read_latencies(&path).expect_err("must fail");
        assert!(matches!(err, ResultsError::Header { .. }), "{err:?}");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope.csv");
        let err = read_latencies(&path).expect_err("must fail");
        assert!(err.to_string().contains("nope.csv"), "{err}");
    }
}
