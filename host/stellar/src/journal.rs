//! The resource journal: every cloud resource stellar creates is written down *before* it is
//! created and again when it is removed, so a crashed run leaves a record a later cleanup can
//! act on. One JSON object per line in `resources.jsonl` in the run directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Serialize)]
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

pub struct Journal {
    path: PathBuf,
    file: fs_err::File,
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
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
