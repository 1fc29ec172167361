//! The one error type of this crate, [`ConfigError`].
//!
//! Why: configuration errors are a product feature. A user who mistypes a key in a 300-line
//! experiment file must be told which file, where in it (JSON path, and line:column when known)
//! and what was expected, in one line such as
//!
//! ```text
//! experiments/x.json: SubExperiments[0].BurstSizes: invalid type: string "5", expected a sequence (line 7, column 25)
//! experiments/x.json: SubExperiments[0].IATType: "gaussian" is not supported; expected one of stochastic, deterministic, step (line 9, column 18)
//! ```
//!
//! The message is complete on its own: the [`ConfigError::Io`] variant keeps the I/O error as a
//! field rather than as `source()`, so printing the error chain does not repeat the cause.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::json_path::JsonPath;

/// Why an experiment file could not be loaded or planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the file: {}", path.display(), describe_io(error))]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said (from `fs_err`, so it names the path too).
        error: std::io::Error,
    },
    /// The file is not JSON of the expected shape (syntax error, wrong type, unknown or missing
    /// key). Produced by serde; `message` is serde's, without its location suffix.
    #[error("{}", render(path, json_path, message, *line, *column))]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where in the document, e.g. `SubExperiments[1].IATType`; empty for the root.
        json_path: String,
        /// What is wrong and what was expected.
        message: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
    },
    /// The file parsed, but a value is not acceptable (e.g. a burst size of 0).
    #[error("{}", render(path, json_path, message, *line, *column))]
    Validation {
        /// The file.
        path: PathBuf,
        /// Where in the document, e.g. `SubExperiments[2].BurstSizes[1]`.
        json_path: String,
        /// What is wrong and what was expected.
        message: String,
        /// 1-based line of the offending value, when the source text was available.
        line: Option<usize>,
        /// 1-based column of the offending value, when the source text was available.
        column: Option<usize>,
    },
}

impl ConfigError {
    /// The experiment file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::Parse { path, .. } | Self::Validation { path, .. } => {
                path
            }
        }
    }

    /// The JSON path of the offending value (empty for I/O errors and for the document root).
    pub fn json_path(&self) -> &str {
        match self {
            Self::Io { .. } => "",
            Self::Parse { json_path, .. } | Self::Validation { json_path, .. } => json_path,
        }
    }

    /// Builds a parse error from what `serde_path_to_error` reports.
    pub(crate) fn from_serde(
        path: &Path,
        error: &serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let mut json_path = JsonPath::from_serde(error.path());
        // serde's "unknown field `X`" already names the key: point at the object containing it.
        if let Some(key) = json_path.last_key()
            && error
                .inner()
                .to_string()
                .starts_with(&format!("unknown field `{key}`"))
        {
            json_path = json_path.parent();
        }
        Self::from_json_error(path, json_path.to_string(), error.inner())
    }

    /// Builds a parse error from a bare serde_json error (e.g. trailing characters).
    pub(crate) fn from_json_error(
        path: &Path,
        json_path: String,
        error: &serde_json::Error,
    ) -> Self {
        use serde_json::error::Category;
        let (line, column) = (error.line(), error.column());
        let mut message = error.to_string();
        if line > 0 {
            let suffix = format!(" at line {line} column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        if matches!(error.classify(), Category::Syntax | Category::Eof) {
            message = format!("invalid JSON: {message}");
        }
        Self::Parse {
            path: path.to_owned(),
            json_path,
            message,
            line: (line > 0).then_some(line),
            // serde_json reports column 0 for an error before a line's first character.
            column: (line > 0).then_some(column.max(1)),
        }
    }
}

/// A validation problem before it is tied to a file: the JSON path and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub(crate) path: JsonPath,
    pub(crate) message: String,
}

impl Issue {
    pub(crate) fn new(path: JsonPath, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
        }
    }

    /// Ties the issue to a file; when the source text is given, adds the value's position.
    pub(crate) fn into_error(self, file: &Path, text: Option<&str>) -> ConfigError {
        let position = text.and_then(|text| crate::json_path::locate(text, &self.path));
        ConfigError::Validation {
            path: file.to_owned(),
            json_path: self.path.to_string(),
            message: self.message,
            line: position.map(|(line, _)| line),
            column: position.map(|(_, column)| column),
        }
    }
}

fn render(
    path: &Path,
    json_path: &str,
    message: &str,
    line: Option<usize>,
    column: Option<usize>,
) -> String {
    let mut out = format!("{}: ", path.display());
    if !json_path.is_empty() {
        out.push_str(json_path);
        out.push_str(": ");
    }
    out.push_str(message);
    if let (Some(line), Some(column)) = (line, column) {
        let _ = write!(out, " (line {line}, column {column})");
    }
    out
}

/// The reason an I/O error happened. `fs_err` messages name the path, which our message already
/// starts with, so the common cases get a short reason; anything else keeps `fs_err`'s text.
fn describe_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => "no such file or directory".to_owned(),
        ErrorKind::PermissionDenied => "permission denied".to_owned(),
        ErrorKind::IsADirectory => "it is a directory".to_owned(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_path_json_path_message_and_position() {
        let err = ConfigError::Validation {
            path: "experiments/x.json".into(),
            json_path: "SubExperiments[2].BurstSizes[1]".into(),
            message: "burst size must be at least 1".into(),
            line: Some(7),
            column: Some(25),
        };
        assert_eq!(
            err.to_string(),
            "experiments/x.json: SubExperiments[2].BurstSizes[1]: burst size must be at least 1 (line 7, column 25)"
        );
        assert_eq!(err.json_path(), "SubExperiments[2].BurstSizes[1]");
        assert_eq!(err.path(), Path::new("experiments/x.json"));
    }

    #[test]
    fn root_errors_omit_the_json_path_and_unknown_positions() {
        let err = ConfigError::Parse {
            path: "x.json".into(),
            json_path: String::new(),
            message: "expected value".into(),
            line: None,
            column: None,
        };
        assert_eq!(err.to_string(), "x.json: expected value");
    }

    #[test]
    fn io_errors_name_the_file_once() {
        let error = fs_err::read("/nonexistent/stellar/x.json").expect_err("file must not exist");
        let err = ConfigError::Io {
            path: "/nonexistent/stellar/x.json".into(),
            error,
        };
        let text = err.to_string();
        assert_eq!(
            text,
            "/nonexistent/stellar/x.json: cannot read the file: no such file or directory"
        );
        assert!(std::error::Error::source(&err).is_none());
    }
}
