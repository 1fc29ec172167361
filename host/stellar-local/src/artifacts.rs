//! Content-addressed store of function executables under `<work_dir>/artifacts/`.
//!
//! Uploads are streamed to a temporary file while hashing, so a 100+ MB artifact never sits in
//! memory; only a verified, executable file is renamed to its final `<sha256>` name, so an
//! instance can never exec a partial upload.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Body;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::api::{ArtifactInfo, ErrorKind};
use crate::error::ApiError;

/// Largest artifact accepted (the size filler of STeLLAR goes to a few hundred MB).
pub const MAX_ARTIFACT_BYTES: u64 = 512 * 1024 * 1024;

/// The artifact directory.
#[derive(Debug)]
pub(crate) struct ArtifactStore {
    dir: PathBuf,
}

/// Whether `s` is a SHA-256 in lowercase hex.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ArtifactStore {
    /// Uses (and creates) `dir`.
    pub(crate) fn open(dir: PathBuf) -> std::io::Result<Self> {
        fs_err::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Where the artifact with this hash lives (whether or not it exists).
    pub(crate) fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// Whether a verified artifact with this hash is stored.
    pub(crate) fn contains(&self, sha256: &str) -> bool {
        is_sha256_hex(sha256) && self.path(sha256).is_file()
    }

    /// Streams `body` (of announced length `content_length`) into the store, checks that it
    /// hashes to `sha256`, and makes it executable. Storing the same bytes again is harmless.
    pub(crate) async fn store<B>(
        &self,
        sha256: &str,
        content_length: u64,
        mut body: B,
    ) -> Result<ArtifactInfo, ApiError>
    where
        B: Body<Data = bytes::Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        if !is_sha256_hex(sha256) {
            return Err(ApiError::invalid(format!(
                "`{sha256}` is not a SHA-256 in lowercase hex (64 characters)"
            )));
        }
        if content_length > MAX_ARTIFACT_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorKind::Invalid,
                format!(
                    "artifact of {content_length} bytes exceeds the cap of {MAX_ARTIFACT_BYTES} bytes"
                ),
            ));
        }
        // A random suffix keeps concurrent uploads of the same artifact apart.
        let suffix: u64 = rand::random();
        let tmp = TempPath(self.dir.join(format!("{sha256}.{suffix:016x}.tmp")));
        let io_err = |e: std::io::Error| ApiError::internal(format!("storing artifact: {e}"));
        // `create_new` (O_EXCL) never follows a symlink planted at the temporary name; the
        // final rename replaces whatever is at `<sha256>` (even a symlink) instead of writing
        // through it, so an upload never writes outside this directory.
        let mut file = fs_err::tokio::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp.0)
            .await
            .map_err(io_err)?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::invalid(format!("reading upload: {e}")))?;
            if let Ok(data) = frame.into_data() {
                size += data.len() as u64;
                if size > content_length {
                    return Err(ApiError::invalid("body is longer than its content-length"));
                }
                hasher.update(&data);
                file.write_all(&data).await.map_err(io_err)?;
            }
        }
        file.flush().await.map_err(io_err)?;
        drop(file);
        if size != content_length {
            return Err(ApiError::invalid(format!(
                "body has {size} bytes but content-length says {content_length}"
            )));
        }
        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            return Err(ApiError::invalid(format!(
                "artifact hashes to {actual}, not to {sha256} as its path says"
            )));
        }
        fs_err::set_permissions(&tmp.0, std::fs::Permissions::from_mode(0o755)).map_err(io_err)?;
        fs_err::rename(&tmp.0, self.path(sha256)).map_err(io_err)?;
        tmp.keep();
        Ok(ArtifactInfo {
            sha256: sha256.to_owned(),
            size,
        })
    }
}

/// A temporary file removed on drop unless kept.
struct TempPath(PathBuf);

impl TempPath {
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        remove_quietly(&self.0);
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs_err::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::Full;

    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn sha_syntax() {
        assert!(is_sha256_hex(&sha(b"x")));
        assert!(!is_sha256_hex(&sha(b"x").to_uppercase()));
        assert!(!is_sha256_hex("abc"));
        assert!(!is_sha256_hex(&format!("{}g", &sha(b"x")[..63])));
    }

    #[tokio::test]
    async fn stores_verified_executable_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path().join("a")).unwrap();
        let bytes = b"#!/bin/sh\nexit 0\n";
        let hash = sha(bytes);
        for _ in 0..2 {
            let info = store
                .store(
                    &hash,
                    bytes.len() as u64,
                    Full::new(Bytes::from_static(bytes)),
                )
                .await
                .unwrap();
            assert_eq!(info.size, bytes.len() as u64);
        }
        assert!(store.contains(&hash));
        let mode = fs_err::metadata(store.path(&hash))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // Only the artifact remains: no temporary files.
        assert_eq!(fs_err::read_dir(dir.path().join("a")).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn rejects_wrong_hash_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path().to_owned()).unwrap();
        let hash = sha(b"other");
        let err = store
            .store(&hash, 3, Full::new(Bytes::from_static(b"abc")))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("hashes to"), "{}", err.message);
        assert!(!store.contains(&hash));
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn rejects_length_mismatch_and_oversize() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path().to_owned()).unwrap();
        let hash = sha(b"abc");
        let short = store
            .store(&hash, 4, Full::new(Bytes::from_static(b"abc")))
            .await
            .unwrap_err();
        assert_eq!(short.status, StatusCode::BAD_REQUEST);
        let big = store
            .store(
                &hash,
                MAX_ARTIFACT_BYTES + 1,
                Full::new(Bytes::from_static(b"abc")),
            )
            .await
            .unwrap_err();
        assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 0);
    }
}
