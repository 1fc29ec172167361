//! The resource journal: every cloud resource stellar creates is written down *before* it is
//! created and again when it is removed, so a crashed run leaves a record a later cleanup can
//! act on. One JSON object per line in `resources.jsonl` in the run directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalEvent {
    /// About to ask the provider to create this function.
    Creating,
    /// The provider created it; `url` is its endpoint.
    Created,
    /// The provider removed it.
    Removed,
    /// Removal failed; the resource may still exist.
    RemoveFailed,
}

#[derive(Debug, Serialize)]
struct Entry<'a> {
    unix_ms: u128,
    event: JournalEvent,
    provider: &'a str,
    function: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// One line of a journal as read back.
#[derive(Debug, Deserialize)]
struct ReadEntry {
    event: JournalEvent,
    provider: String,
    function: String,
}

/// A resource a journal says may still exist.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Outstanding {
    pub provider: String,
    pub function: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}, line {line}: not a journal entry: {source}")]
    Parse {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
}

pub struct Journal {
    path: PathBuf,
    file: fs_err::File,
    /// Latest event per (provider, function) written by this process.
    state: BTreeMap<Outstanding, JournalEvent>,
}

/// Whether a resource whose latest event is `event` may still exist.
fn may_exist(event: JournalEvent) -> bool {
    !matches!(event, JournalEvent::Removed)
}

/// Reads a journal and returns every resource that was (or was being) created and not removed,
/// in name order. A torn last line (a crash mid-write) is skipped.
pub fn outstanding_in(path: &Path) -> Result<Vec<Outstanding>, JournalError> {
    let text = fs_err::read_to_string(path)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut state = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: ReadEntry = match serde_json::from_str(line) {
            Ok(entry) => entry,
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(source) => {
                return Err(JournalError::Parse {
                    path: path.to_owned(),
                    line: i + 1,
                    source,
                });
            }
        };
        state.insert(
            Outstanding {
                provider: entry.provider,
                function: entry.function,
            },
            entry.event,
        );
    }
    Ok(state
        .into_iter()
        .filter(|(_, event)| may_exist(*event))
        .map(|(resource, _)| resource)
        .collect())
}

impl Journal {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            state: BTreeMap::new(),
        })
    }

    pub fn record(
        &mut self,
        event: JournalEvent,
        provider: &str,
        function: &str,
        url: Option<&str>,
        error: Option<&str>,
    ) -> std::io::Result<()> {
        let entry = Entry {
            unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            event,
            provider,
            function,
            url,
            error,
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.state.insert(
            Outstanding {
                provider: provider.to_owned(),
                function: function.to_owned(),
            },
            event,
        );
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    /// Functions this journal's writer created (or tried to) and has not removed.
    pub fn outstanding(&self) -> Vec<String> {
        self.state
            .iter()
            .filter(|(_, event)| may_exist(**event))
            .map(|(resource, _)| resource.function.clone())
            .collect()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outstanding_follows_the_latest_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("resources.jsonl");
        let mut journal = Journal::create(&path).expect("create");
        journal
            .record(JournalEvent::Creating, "aws", "st-a", None, None)
            .expect("write");
        journal
            .record(
                JournalEvent::Created,
                "aws",
                "st-a",
                Some("https://a"),
                None,
            )
            .expect("write");
        journal
            .record(JournalEvent::Creating, "aws", "st-b", None, None)
            .expect("write");
        journal
            .record(JournalEvent::Creating, "aws", "st-c", None, None)
            .expect("write");
        journal
            .record(JournalEvent::Removed, "aws", "st-c", None, None)
            .expect("write");
        journal
            .record(
                JournalEvent::RemoveFailed,
                "aws",
                "st-a",
                None,
                Some("boom"),
            )
            .expect("write");
        assert_eq!(journal.outstanding(), vec!["st-a", "st-b"]);
        let read = outstanding_in(&path).expect("read");
        let names: Vec<&str> = read.iter().map(|o| o.function.as_str()).collect();
        assert_eq!(names, vec!["st-a", "st-b"]);
        for outstanding in &read {
            assert_eq!(outstanding.provider, "aws");
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_but_garbage_elsewhere_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("resources.jsonl");
        let good = r#"{"unix_ms":1,"event":"creating","provider":"aws","function":"st-a"}"#;
        fs_err::write(&path, format!("{good}\n{{\"unix_ms\":2,\"ev")).expect("write");
        assert_eq!(outstanding_in(&path).expect("read").len(), 1);
        fs_err::write(&path, format!("nonsense\n{good}\n")).expect("write");
        let err = outstanding_in(&path).expect_err("garbage");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
