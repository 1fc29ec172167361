//! Streams [`LatencyRow`]s to `latencies.csv` while a run is in progress, and reads them back.
//!
//! A benchmark run can last hours and cost money, so the file must survive a crash: the header
//! is written when the file is created and every row is flushed to the operating system as soon
//! as it is written. A crash then loses at most the requests still in flight.
//!
//! A write can also fail half-way (disk full, a file-size limit): then the file is cut back to
//! its last complete row and the writer refuses further rows, so what is on disk always reads
//! back with [`read_latencies`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Result, ResultsError};
use crate::row::{LATENCY_HEADERS, LATENCY_HEADERS_V1, LATENCY_HEADERS_V2, LatencyRow};

/// Writes `latencies.csv` one row at a time, flushing after each row.
#[derive(Debug)]
pub struct LatencyWriter {
    path: PathBuf,
    csv: csv::Writer<Counted>,
    rows: u64,
    /// File length after the last complete row.
    committed: u64,
    /// Shared with [`Counted`]: set after a failed write.
    failed: Arc<AtomicBool>,
    /// Flush every row to the operating system (off only for [`Self::create_buffered`]).
    flush_each_row: bool,
}

/// The file, counting the bytes that reached it; after a failed write it accepts nothing more
/// (so the CSV writer's flush on drop cannot append a torn row after the cut).
#[derive(Debug)]
struct Counted {
    file: fs_err::File,
    written: u64,
    failed: Arc<AtomicBool>,
}

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(
                "writing stopped after an earlier error",
            ));
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
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
            .from_writer(Counted {
                file,
                written: 0,
                failed: Arc::new(AtomicBool::new(false)),
            });
        csv.write_record(LATENCY_HEADERS)
            .map_err(|e| ResultsError::csv(&path, e))?;
        csv.flush()
            .map_err(|e| ResultsError::io(&path, "write", e))?;
        let committed = csv.get_ref().written;
        let failed = Arc::clone(&csv.get_ref().failed);
        Ok(Self {
            path,
            csv,
            rows: 0,
            committed,
            failed,
            flush_each_row: true,
        })
    }

    /// Like [`Self::create`], but rows are buffered rather than flushed one by one: for
    /// rewriting a finished file into a temporary one (a failure leaves that file incomplete,
    /// so it must only replace the original after [`Self::finish`] succeeded).
    pub fn create_buffered(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            flush_each_row: false,
            ..Self::create(path)?
        })
    }

    /// Continues a `latencies.csv` left by an interrupted run: reads its rows, drops a last
    /// line torn by a crash mid-write (one without its newline), rewrites the file in the
    /// current format (atomically, through a temporary file) and opens it for appending.
    /// Returns the writer, the rows already there, and whether a torn line was dropped.
    pub fn resume(path: impl AsRef<Path>) -> Result<(Self, Vec<LatencyRow>, bool)> {
        let path = path.as_ref().to_path_buf();
        let (rows, torn) = read_latencies_tolerating_torn_tail(&path)?;
        let tmp = path.with_extension("csv.resume-tmp");
        let mut rewrite = Self::create(&tmp)?;
        for row in &rows {
            rewrite.write(row)?;
        }
        rewrite.finish()?;
        fs_err::rename(&tmp, &path).map_err(|e| ResultsError::io(&path, "rename", e))?;
        let file = fs_err::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| ResultsError::io(&path, "open", e))?;
        let committed = file
            .metadata()
            .map_err(|e| ResultsError::io(&path, "open", e))?
            .len();
        let failed = Arc::new(AtomicBool::new(false));
        let csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Counted {
                file,
                written: committed,
                failed: Arc::clone(&failed),
            });
        Ok((
            Self {
                path,
                csv,
                rows: 0,
                committed,
                failed,
                flush_each_row: true,
            },
            rows,
            torn,
        ))
    }

    /// Appends one row and flushes it to the operating system. If that fails (disk full, file
    /// too large), the file is cut back to its last complete row and every later call fails.
    pub fn write(&mut self, row: &LatencyRow) -> Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(ResultsError::io(
                &self.path,
                "write",
                std::io::Error::other("an earlier write to this file failed"),
            ));
        }
        let written = self
            .csv
            .serialize(row)
            .map_err(|e| ResultsError::csv(&self.path, e))
            .and_then(|()| {
                if self.flush_each_row {
                    self.csv
                        .flush()
                        .map_err(|e| ResultsError::io(&self.path, "write", e))
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            self.cut_back();
            return Err(e);
        }
        self.committed = self.csv.get_ref().written;
        self.rows += 1;
        Ok(())
    }

    /// After a failed write: drops the torn row from the file and refuses further writes.
    /// The cut is best effort: the caller already reports the write error.
    fn cut_back(&mut self) {
        self.failed.store(true, Ordering::Relaxed);
        // Shrinking a file needs no space and is not limited by RLIMIT_FSIZE.
        let _ = self.csv.get_ref().file.set_len(self.committed);
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
        let Self {
            path, csv, rows, ..
        } = self;
        let counted = csv
            .into_inner()
            .map_err(|e| ResultsError::io(&path, "write", e.into_error()))?;
        counted
            .file
            .sync_all()
            .map_err(|e| ResultsError::io(&path, "sync", e))?;
        Ok(rows)
    }
}

/// Reads every row of a `latencies.csv` written by [`LatencyWriter`].
///
/// The header must be [`LATENCY_HEADERS`], or its first [`LATENCY_HEADERS_V2`] or
/// [`LATENCY_HEADERS_V1`] columns (files from before the last columns existed); errors name the
/// file and the line.
pub fn read_latencies(path: impl AsRef<Path>) -> Result<Vec<LatencyRow>> {
    let path = path.as_ref();
    let file = fs_err::File::open(path).map_err(|e| ResultsError::io(path, "open", e))?;
    read_rows(path, std::io::BufReader::new(file))
}

/// [`read_latencies`] for a file a crash may have cut mid-row: a last line without its
/// newline is left out (the `bool` says whether one was). Any other damage is an error.
pub fn read_latencies_tolerating_torn_tail(
    path: impl AsRef<Path>,
) -> Result<(Vec<LatencyRow>, bool)> {
    let path = path.as_ref();
    let mut bytes = fs_err::read(path).map_err(|e| ResultsError::io(path, "read", e))?;
    let torn = !bytes.is_empty() && !bytes.ends_with(b"\n");
    if torn {
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(keep);
    }
    Ok((read_rows(path, bytes.as_slice())?, torn))
}

fn read_rows(path: &Path, input: impl std::io::Read) -> Result<Vec<LatencyRow>> {
    let mut rows = Vec::new();
    each_row(path, input, |row| {
        rows.push(row);
        Ok(())
    })?;
    Ok(rows)
}

/// Calls `f` with every row of `path` (a `latencies.csv`, header as for [`read_latencies`])
/// in file order, one at a time, so a file of any length is read in constant memory.
/// Stops at the first error, from the file or from `f`.
pub fn for_each_latency(
    path: impl AsRef<Path>,
    f: impl FnMut(LatencyRow) -> Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let file = fs_err::File::open(path).map_err(|e| ResultsError::io(path, "open", e))?;
    each_row(path, std::io::BufReader::with_capacity(1 << 16, file), f)
}

fn each_row(
    path: &Path,
    input: impl std::io::Read,
    mut f: impl FnMut(LatencyRow) -> Result<()>,
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ResultsError::csv(path, e))?
        .clone();
    let known = [
        LATENCY_HEADERS.len(),
        LATENCY_HEADERS_V2,
        LATENCY_HEADERS_V1,
    ]
    .iter()
    .any(|&n| headers.iter().eq(LATENCY_HEADERS[..n].iter().copied()));
    if !known {
        return Err(ResultsError::Header {
            path: path.to_path_buf(),
            expected: LATENCY_HEADERS.join(","),
            found: headers.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| ResultsError::csv(path, e))?
    {
        let row: LatencyRow = record
            .deserialize(Some(&headers))
            .map_err(|e| ResultsError::csv(path, e))?;
        f(row)?;
    }
    Ok(())
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
    fn resume_drops_a_torn_last_row_and_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latencies.csv");
        let mut w = LatencyWriter::create(&path).expect("create");
        let rows = rows();
        w.write(&rows[0]).expect("write");
        w.finish().expect("finish");
        // A crash in the middle of the second row's write.
        let mut text = fs_err::read_to_string(&path).expect("read");
        text.push_str("req-2,host,2024-05-01T12:00");
        fs_err::write(&path, &text).expect("tear");
        assert!(
            read_latencies(&path).is_err(),
            "the strict reader refuses it"
        );
        let (mut w, before, torn) = LatencyWriter::resume(&path).expect("resume");
        assert!(torn);
        assert_eq!(before, rows[..1]);
        let resumed = LatencyRow {
            segment: 1,
            ..rows[1].clone()
        };
        w.write(&resumed).expect("append");
        w.finish().expect("finish");
        assert_eq!(
            read_latencies(&path).expect("read"),
            vec![rows[0].clone(), resumed]
        );
        // An intact file resumes with nothing dropped.
        let (w, again, torn) = LatencyWriter::resume(&path).expect("resume");
        assert!(!torn);
        assert_eq!(again.len(), 2);
        w.finish().expect("finish");
    }

    #[test]
    fn files_from_before_the_last_columns_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latencies.csv");
        let mut w = LatencyWriter::create(&path).expect("create");
        w.write(&rows()[0]).expect("write");
        w.finish().expect("finish");
        // Strip the last two columns from every line, as an older stellar wrote them.
        let old: String = fs_err::read_to_string(&path)
            .expect("read")
            .lines()
            .map(|l| {
                let mut fields: Vec<&str> = l.split(',').collect();
                fields.truncate(LATENCY_HEADERS_V1);
                fields.join(",") + "\n"
            })
            .collect();
        fs_err::write(&path, old).expect("write old");
        let read = read_latencies(&path).expect("old format reads");
        let expected = LatencyRow {
            ready_gap_ms: None,
            in_flight_at_receipt: None,
            first_in_flight: None,
            process_nonce: String::new(),
            boot_id: String::new(),
            boot_time_unix_s: None,
            provider_label: String::new(),
            ..rows()[0].clone()
        };
        assert_eq!(read, vec![expected]);
    }

    #[test]
    fn files_from_before_the_start_label_columns_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latencies.csv");
        let row = LatencyRow {
            ready_gap_ms: None,
            in_flight_at_receipt: None,
            first_in_flight: None,
            process_nonce: String::new(),
            boot_id: String::new(),
            boot_time_unix_s: None,
            provider_label: String::new(),
            ..rows()[0].clone()
        };
        let mut w = LatencyWriter::create(&path).expect("create");
        w.write(&row).expect("write");
        w.finish().expect("finish");
        let old: String = fs_err::read_to_string(&path)
            .expect("read")
            .lines()
            .map(|l| {
                let mut fields: Vec<&str> = l.split(',').collect();
                fields.truncate(LATENCY_HEADERS_V2);
                fields.join(",") + "\n"
            })
            .collect();
        fs_err::write(&path, old).expect("write old");
        assert_eq!(read_latencies(&path).expect("old format reads"), vec![row]);
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
    fn a_failed_write_leaves_only_complete_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latencies.csv");
        let mut w = LatencyWriter::create(&path).expect("create");
        let rows = rows();
        w.write(&rows[0]).expect("first row");
        // Simulate a write that reached the file only in part (as with a full disk): append
        // half a row behind the writer's back, then make the file refuse writes.
        let good_len = fs_err::metadata(&path).expect("stat").len();
        {
            use std::io::Write as _;
            let mut raw = fs_err::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open");
            raw.write_all(b"torn,row,with,too").expect("append");
        }
        // What `write` does when the flush fails (the real EFBIG is tested end to end in
        // tests/e2e/faults.rs under RLIMIT_FSIZE).
        w.cut_back();
        let err = w.write(&rows[1]).expect_err("refused after a failure");
        assert!(err.to_string().contains("latencies.csv"), "{err}");
        drop(w);
        assert_eq!(fs_err::metadata(&path).expect("stat").len(), good_len);
        assert_eq!(read_latencies(&path).expect("parseable"), rows[..1]);
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope.csv");
        let err = read_latencies(&path).expect_err("must fail");
        assert!(err.to_string().contains("nope.csv"), "{err}");
    }
}
