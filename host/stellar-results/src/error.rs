//! The crate's one error type. Results are written at the end of long, costly runs, so every
//! failure names the file it concerns (and the line, when reading), and none of them panics.

use std::path::PathBuf;

/// Everything that can go wrong while writing or reading result files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultsError {
    /// Creating, writing or reading a file failed at the operating-system level.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done, e.g. "create" or "write".
        action: &'static str,
        /// The underlying error (from `fs_err`, so it repeats the path).
        #[source]
        source: std::io::Error,
    },
    /// A CSV record could not be written or parsed.
    #[error("{}{}: bad CSV data", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Csv {
        /// The CSV file concerned.
        path: PathBuf,
        /// The 1-based line of the offending record, when known.
        line: Option<u64>,
        /// The underlying CSV error.
        #[source]
        source: csv::Error,
    },
    /// A CSV file's header line is not the one this version of stellar writes.
    #[error(
        "{}, line 1: unexpected header; expected `{expected}`, found `{found}` \
         (was this file written by another version of stellar?)",
        path.display()
    )]
    Header {
        /// The CSV file concerned.
        path: PathBuf,
        /// The header this crate writes.
        expected: String,
        /// The header found in the file.
        found: String,
    },
    /// A row's value does not fit what reading it needs (e.g. a burst id beyond 2³²−1).
    #[error("{}, line {line}: {what}", path.display())]
    Value {
        /// The CSV file concerned.
        path: PathBuf,
        /// The 1-based line of the row.
        line: u64,
        /// What does not fit.
        what: String,
    },
    /// Drawing or saving a plot failed.
    #[error("cannot draw plot `{}`: {message}", path.display())]
    Plot {
        /// The image file being drawn.
        path: PathBuf,
        /// What the plotting library reported.
        message: String,
    },
}

impl ResultsError {
    /// Wraps a CSV error, taking the line number from the error's position when it has one.
    pub(crate) fn csv(path: impl Into<PathBuf>, source: csv::Error) -> Self {
        let line = source.position().map(csv::Position::line);
        Self::Csv {
            path: path.into(),
            line,
            source,
        }
    }

    /// Wraps an I/O error.
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = ResultsError> = std::result::Result<T, E>;
