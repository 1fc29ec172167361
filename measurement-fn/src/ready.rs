//! The `STELLAR-READY` line: how an entry point tells its parent it is listening.
//!
//! The local runtime spawns an instance and times exec-to-ready by waiting for this one stdout
//! line, instead of polling the port. The writer (the function) and the reader (the host) share
//! this module so the format is defined once.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Every READY line starts with this (note the trailing space); JSON follows.
pub const READY_PREFIX: &str = "STELLAR-READY ";

/// The JSON part of the READY line: `{"port":..,"instance_id":"..","pid":..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadySignal {
    /// The port actually bound (useful with port 0).
    pub port: u16,
    /// The instance id that responses will carry.
    pub instance_id: String,
    /// The process id.
    pub pid: u32,
}

impl ReadySignal {
    /// The line to print, without the trailing newline:
    /// `STELLAR-READY {"port":8080,"instance_id":"..","pid":42}`.
    #[must_use]
    pub fn to_line(&self) -> String {
        // Display of a JSON string value escapes it; the key order is fixed here.
        let id = serde_json::Value::String(self.instance_id.clone());
        format!(
            "{READY_PREFIX}{{\"port\":{},\"instance_id\":{id},\"pid\":{}}}",
            self.port, self.pid
        )
    }

    /// Parses a line written by [`ReadySignal::to_line`] (surrounding whitespace allowed).
    ///
    /// # Errors
    /// [`Error::NotReadyLine`] if the prefix is missing, [`Error::MalformedReadyLine`] if the
    /// JSON does not parse.
    pub fn parse_line(line: &str) -> Result<Self> {
        let trimmed = line.trim();
        let json = trimmed
            .strip_prefix(READY_PREFIX)
            .ok_or_else(|| Error::NotReadyLine {
                line: line.to_owned(),
            })?;
        serde_json::from_str(json).map_err(|source| Error::MalformedReadyLine {
            line: line.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_is_exact() {
        let r = ReadySignal {
            port: 41234,
            instance_id: "00aa11bb22cc33dd".into(),
            pid: 77,
        };
        assert_eq!(
            r.to_line(),
            r#"STELLAR-READY {"port":41234,"instance_id":"00aa11bb22cc33dd","pid":77}"#
        );
        assert_eq!(
            ReadySignal::parse_line(&format!("{}\n", r.to_line())).unwrap(),
            r
        );
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(matches!(
            ReadySignal::parse_line("hello"),
            Err(Error::NotReadyLine { .. })
        ));
        assert!(matches!(
            ReadySignal::parse_line("STELLAR-READY {\"port\":\"x\"}"),
            Err(Error::MalformedReadyLine { .. })
        ));
    }
}
