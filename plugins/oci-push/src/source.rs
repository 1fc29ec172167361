//! Sequential access to the artifact: what the WIT `artifact` resource offers (`read(max)`,
//! `rewind`, `size`), behind a trait so the archive reader is tested natively on bytes in
//! memory, plus a cursor that knows its position and can skip or go back (rewind + skip).

use stellar_guest_sdk::Artifact;

use crate::PushError;

/// Largest read asked of the source at once.
pub(crate) const READ_BYTES: u32 = 1 << 20;

/// A byte source read front to back, restartable from the first byte.
pub trait ArtifactSource {
    /// Up to `max` bytes from the current position; empty at the end.
    fn read(&self, max: u32) -> Vec<u8>;
    /// Back to the first byte.
    fn rewind(&self);
    /// Total size in bytes.
    fn size(&self) -> u64;
    /// A name for messages.
    fn file_name(&self) -> String;
}

impl ArtifactSource for Artifact {
    fn read(&self, max: u32) -> Vec<u8> {
        Artifact::read(self, max)
    }
    fn rewind(&self) {
        Artifact::rewind(self);
    }
    fn size(&self) -> u64 {
        Artifact::size(self)
    }
    fn file_name(&self) -> String {
        Artifact::file_name(self)
    }
}

/// An in-memory source, for tests.
#[cfg(test)]
pub(crate) struct MemorySource {
    pub(crate) bytes: Vec<u8>,
    pub(crate) position: std::cell::Cell<usize>,
    pub(crate) rewinds: std::cell::Cell<u32>,
}

#[cfg(test)]
impl MemorySource {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            position: std::cell::Cell::new(0),
            rewinds: std::cell::Cell::new(0),
        }
    }
}

#[cfg(test)]
impl ArtifactSource for MemorySource {
    fn read(&self, max: u32) -> Vec<u8> {
        let start = self.position.get();
        let end = (start + max as usize).min(self.bytes.len());
        self.position.set(end);
        self.bytes[start..end].to_vec()
    }
    fn rewind(&self) {
        self.position.set(0);
        self.rewinds.set(self.rewinds.get() + 1);
    }
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn file_name(&self) -> String {
        "image.tar".into()
    }
}

/// A position-aware reader over a source. Reads never go past the source's declared size
/// without an error.
pub(crate) struct Cursor<'a> {
    source: &'a dyn ArtifactSource,
    position: u64,
    /// Bytes read from the source but not consumed yet.
    pending: Vec<u8>,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(source: &'a dyn ArtifactSource) -> Self {
        source.rewind();
        Self {
            source,
            position: 0,
            pending: Vec::new(),
        }
    }

    /// The offset of the next byte.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    pub(crate) fn size(&self) -> u64 {
        self.source.size()
    }

    pub(crate) fn bad(&self, what: impl Into<String>) -> PushError {
        PushError::BadArtifact {
            file_name: self.source.file_name(),
            what: what.into(),
        }
    }

    /// Hands the next `len` bytes to `sink` in pieces of at most [`READ_BYTES`]; fails if the
    /// source ends first.
    pub(crate) fn stream(
        &mut self,
        len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), PushError>,
    ) -> Result<(), PushError> {
        let mut left = len;
        while left > 0 {
            if self.pending.is_empty() {
                let want = u32::try_from(left.min(u64::from(READ_BYTES))).unwrap_or(READ_BYTES);
                self.pending = self.source.read(want);
                if self.pending.is_empty() {
                    return Err(self.bad(format!(
                        "ends at byte {} but {left} more bytes were expected",
                        self.position
                    )));
                }
            }
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.pending.len());
            let rest = self.pending.split_off(take);
            let piece = std::mem::replace(&mut self.pending, rest);
            self.position += take as u64;
            left -= take as u64;
            sink(&piece)?;
        }
        Ok(())
    }

    /// The next `len` bytes, in memory (only for small documents).
    pub(crate) fn read_exact(&mut self, len: u64) -> Result<Vec<u8>, PushError> {
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        self.stream(len, &mut |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })?;
        Ok(out)
    }

    /// Skips `len` bytes (read and dropped: the source cannot seek).
    pub(crate) fn skip(&mut self, len: u64) -> Result<(), PushError> {
        self.stream(len, &mut |_| Ok(()))
    }

    /// Moves to `offset`: forward by skipping, backward by rewinding first.
    pub(crate) fn seek(&mut self, offset: u64) -> Result<(), PushError> {
        if offset < self.position {
            self.source.rewind();
            self.position = 0;
            self.pending.clear();
        }
        self.skip(offset - self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_streams_skips_and_seeks_back() {
        let bytes: Vec<u8> = (0..=255)
            .cycle()
            .take(3 * READ_BYTES as usize + 17)
            .collect();
        let source = MemorySource::new(bytes.clone());
        let mut cursor = Cursor::new(&source);
        assert_eq!(cursor.read_exact(3).unwrap(), [0, 1, 2]);
        cursor.skip(READ_BYTES as u64).unwrap();
        let at = cursor.position() as usize;
        assert_eq!(cursor.read_exact(2).unwrap(), bytes[at..at + 2]);
        cursor.seek(10).unwrap();
        assert_eq!(cursor.read_exact(1).unwrap(), [10]);
        let mut seen = 0u64;
        cursor
            .stream(2 * READ_BYTES as u64, &mut |p| {
                assert!(p.len() <= READ_BYTES as usize);
                seen += p.len() as u64;
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, 2 * READ_BYTES as u64);
        let err = cursor.skip(READ_BYTES as u64 * 2).unwrap_err();
        assert!(
            err.to_string().contains("more bytes were expected"),
            "{err}"
        );
    }
}
