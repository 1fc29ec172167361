//! The host side of the WIT `artifact` resource: a build output on disk that a plugin reads
//! in bounded chunks, so a 100 MB package is never copied whole into guest memory.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::bindings::ArtifactKind;

/// Largest chunk one `read` call may return, whatever the guest asks for.
pub(crate) const MAX_READ_CHUNK: u32 = 4 << 20;

/// An artifact file opened for streaming into a plugin.
#[derive(Debug)]
pub struct ArtifactHandle {
    kind: ArtifactKind,
    path: PathBuf,
    file_name: String,
    size: u64,
    sha256: String,
    file: fs_err::File,
}

impl ArtifactHandle {
    /// Opens `path`, hashing it once so the plugin can send the digest before the bytes.
    pub fn open(path: &Path, kind: ArtifactKind) -> std::io::Result<Self> {
        let mut file = fs_err::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
        file.seek(SeekFrom::Start(0))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artifact".to_owned());
        Ok(Self {
            kind,
            path: path.to_owned(),
            file_name,
            size,
            sha256: hex::encode(hasher.finalize()),
            file,
        })
    }

    pub fn kind(&self) -> ArtifactKind {
        self.kind
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub(crate) fn file_name(&self) -> &str {
        &self.file_name
    }

    pub(crate) fn read_chunk(&mut self, max: u32) -> std::io::Result<Vec<u8>> {
        let want = max.min(MAX_READ_CHUNK) as usize;
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let n = self.file.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub(crate) fn rewind(&mut self) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(0)).map(|_| ())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounded_chunks_and_rewinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        fs_err::write(&path, &data).unwrap();
        let mut a = ArtifactHandle::open(&path, ArtifactKind::NativeBinary).unwrap();
        assert_eq!(a.size(), 10_000);
        assert_eq!(a.sha256(), hex::encode(Sha256::digest(&data)));
        let mut back = Vec::new();
        loop {
            let c = a.read_chunk(3000).unwrap();
            if c.is_empty() {
                break;
            }
            assert!(c.len() <= 3000);
            back.extend(c);
        }
        assert_eq!(back, data);
        a.rewind().unwrap();
        assert_eq!(a.read_chunk(u32::MAX).unwrap(), data);
    }
}
