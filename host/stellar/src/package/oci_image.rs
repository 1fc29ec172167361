//! Artifact kind `oci-image`: a container image of the HTTP measurement function, built here in
//! Rust (no Docker daemon, no base image), for clouds that run containers (Cloud Run,
//! Knative/vHive).
//!
//! The image is `FROM scratch`-style: one layer holding `/stellar-measure-http`, a static
//! x86_64 Linux (musl) build of the plain-HTTP measurement function, which is also the
//! entrypoint and listens on `$PORT` (the config sets `PORT=8080` for runtimes that do not);
//! for STeLLAR's image-size axis (`FunctionImageSizeMB`) a second layer holds
//! `stellar-filler.bin`, bytes from a seeded ChaCha8 stream, so the bytes a node pulls are
//! really that many (random bytes do not compress).
//!
//! Digests are reproducible: every tar entry has mtime 0, uid/gid 0, fixed modes and a fixed
//! order; layers are gzip (`application/vnd.oci.image.layer.v1.tar+gzip`, the one layer
//! encoding every registry and runtime accepts) from flate2 with a fixed level, gzip header
//! mtime 0 and OS "unknown", and the filler layer is gzip with stored (uncompressed) deflate
//! blocks, which is fast and keeps its size exact. The JSON documents are written with
//! sorted keys and no timestamps (`created` is the epoch). The same binary, size and seed give
//! the same manifest digest, on any machine.
//!
//! Two outputs: an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/...`: what `stellar build -o DIR` writes, readable by `skopeo copy oci:DIR`)
//! and an *oci-archive*, that layout packed in one tar, which is the artifact handed to
//! adapters. Its entries come in the order `oci-layout`, `index.json`, `blobs/`,
//! `blobs/sha256/`, the manifest, the config, then the layers in manifest order, so an
//! adapter reading the artifact front to back (the WIT artifact has only `read`/`rewind`)
//! knows what every blob is before its bytes arrive and can push it in one pass
//! (`plugins/oci-push`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use flate2::{Compression, GzBuilder};
use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use stellar_config::{Architecture, Plan};

use super::lambda_zip::{self, PackageError, PackagedArtifact};

/// The bin packaged as the entrypoint.
pub const BIN: &str = "stellar-measure-http";
/// Where it sits in the image (and the entrypoint).
pub const ENTRYPOINT: &str = "/stellar-measure-http";
/// The static target it is built for.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// How to get that target.
pub const MUSL_INSTALL: &str = "rustup target add x86_64-unknown-linux-musl";
/// The filler file's name in the filler layer.
pub const FILLER: &str = "stellar-filler.bin";
/// The port the config sets as `PORT` and exposes (Cloud Run sets `PORT` itself).
pub const DEFAULT_PORT: u16 = 8080;
/// Default output of `stellar build` for this kind: a layout directory.
pub const DEFAULT_OUTPUT: &str = "oci-image";

/// Media types (opencontainers/image-spec `media-types.md`).
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Gzip level of the binary layer.
const BINARY_LEVEL: u32 = 9;
/// Filler bytes generated per step.
const FILLER_CHUNK: usize = 64 * 1024;
/// Largest padding target (the Lambda packager's limit, far above what experiments use).
pub const MAX_PAD_BYTES: u64 = lambda_zip::MAX_PAD_BYTES;
/// The padded image lands within this many bytes at or above the target.
pub const PAD_TOLERANCE: u64 = 1024;

/// A blob of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
}

impl Blob {
    fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }

    fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// An image written as an OCI layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciImage {
    /// The layout directory.
    pub dir: PathBuf,
    pub manifest: Blob,
    pub config: Blob,
    /// Binary layer first, then the filler layer if any.
    pub layers: Vec<Blob>,
}

impl OciImage {
    /// Bytes a pull downloads: config plus layers (the manifest not counted). This is what
    /// `FunctionImageSizeMB` pads to.
    #[must_use]
    pub fn image_bytes(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }

    fn blob_path(&self, blob: &Blob) -> PathBuf {
        blobs_dir(&self.dir).join(blob.hex())
    }
}

fn blobs_dir(dir: &Path) -> PathBuf {
    dir.join("blobs").join("sha256")
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PackageError {
    let path = path.to_owned();
    move |source| PackageError::Io {
        action,
        path,
        source,
    }
}

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A ustar header: mtime 0, uid/gid 0, owner names empty.
fn tar_header(name: &str, size: u64, mode: u32, type_flag: u8) -> io::Result<[u8; 512]> {
    let mut h = [0_u8; 512];
    if name.len() > 100 {
        return Err(io::Error::other(format!(
            "tar entry name {name:?} is longer than 100 bytes"
        )));
    }
    if size >= 1 << 33 {
        return Err(io::Error::other(format!(
            "tar entry {name:?} of {size} bytes is too large for a ustar header (8 GiB)"
        )));
    }
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; 512], at: usize, width: usize, value: u64| {
        let text = format!("{value:0w$o}", w = width - 1);
        h[at..at + width - 1].copy_from_slice(text.as_bytes());
    };
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 0);
    h[156] = type_flag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// Zero bytes that pad `size` to a whole block.
fn tar_padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// What a layer holds: one file at the image's root.
enum LayerFile<'a> {
    Bytes {
        name: &'a str,
        bytes: &'a [u8],
        mode: u32,
    },
    Filler {
        len: u64,
        seed: u64,
    },
}

/// Writes one gzip layer into `blobs`, returning its blob and its diff id (the digest of the
/// uncompressed tar, for the config's `rootfs`).
fn write_layer(blobs: &Path, file: &LayerFile<'_>) -> Result<(Blob, String), PackageError> {
    let tmp = blobs.join(".layer.tmp");
    let out = fs_err::File::create(&tmp).map_err(io_err("writing a layer", &tmp))?;
    let level = match file {
        LayerFile::Bytes { .. } => Compression::new(BINARY_LEVEL),
        LayerFile::Filler { .. } => Compression::none(),
    };
    let compressed = Hashing::new(io::BufWriter::with_capacity(1 << 20, out));
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(compressed, level);
    let mut tar = Hashing::new(gz);
    let write = |tar: &mut Hashing<_>| -> io::Result<()> {
        let (name, len, mode) = match file {
            LayerFile::Bytes { name, bytes, mode } => (*name, bytes.len() as u64, *mode),
            LayerFile::Filler { len, .. } => (FILLER, *len, 0o644),
        };
        tar.write_all(&tar_header(name, len, mode, b'0')?)?;
        match file {
            LayerFile::Bytes { bytes, .. } => tar.write_all(bytes)?,
            LayerFile::Filler { len, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                let mut chunk = vec![0_u8; FILLER_CHUNK];
                let mut left = *len;
                while left > 0 {
                    let n = usize::try_from(left).map_or(FILLER_CHUNK, |l| l.min(FILLER_CHUNK));
                    let part = &mut chunk[..n];
                    rng.fill_bytes(part);
                    tar.write_all(part)?;
                    left -= n as u64;
                }
            }
        }
        tar.write_all(&vec![0_u8; tar_padding(len) + 1024])
    };
    write(&mut tar).map_err(io_err("writing a layer", &tmp))?;
    let (gz, diff_id, _) = tar.finish();
    let compressed = gz.finish().map_err(io_err("writing a layer", &tmp))?;
    let (mut buffered, digest, size) = compressed.finish();
    buffered.flush().map_err(io_err("writing a layer", &tmp))?;
    drop(buffered);
    let blob = Blob {
        media_type: MEDIA_LAYER_GZIP,
        digest,
        size,
    };
    let path = blobs.join(blob.hex());
    fs_err::rename(&tmp, &path).map_err(io_err("naming a layer after its digest", &path))?;
    Ok((blob, diff_id))
}

/// Writes a JSON document as a blob.
fn write_json_blob(
    blobs: &Path,
    value: &serde_json::Value,
    media_type: &'static str,
) -> Result<(Blob, Vec<u8>), PackageError> {
    // serde_json's map is a BTreeMap here (no `preserve_order`): keys come out sorted.
    let bytes = serde_json::to_vec(value).map_err(|e| PackageError::Io {
        action: "encoding a JSON document",
        path: blobs.to_owned(),
        source: io::Error::other(e),
    })?;
    let blob = Blob {
        media_type,
        digest: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        size: bytes.len() as u64,
    };
    let path = blobs.join(blob.hex());
    fs_err::write(&path, &bytes).map_err(io_err("writing a blob", &path))?;
    Ok((blob, bytes))
}

/// The image config: linux/amd64, the entrypoint, `PORT`, the exposed port, the layers'
/// diff ids, no timestamps beyond the epoch.
#[must_use]
pub fn config_json(diff_ids: &[String], filler_bytes: Option<u64>) -> serde_json::Value {
    let mut history = vec![json!({
        "created": "1970-01-01T00:00:00Z",
        "created_by": format!("stellar build: {BIN} ({MUSL_TARGET}, static)"),
    })];
    if let Some(n) = filler_bytes {
        history.push(json!({
            "created": "1970-01-01T00:00:00Z",
            "created_by": format!("stellar build: {FILLER}, {n} seeded random bytes (FunctionImageSizeMB)"),
        }));
    }
    json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": [ENTRYPOINT],
            "Env": [format!("PORT={DEFAULT_PORT}")],
            "ExposedPorts": {format!("{DEFAULT_PORT}/tcp"): {}},
            "WorkingDir": "/",
            "Labels": {"org.opencontainers.image.title": "stellar-measure-http"}
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })
}

/// Prepares `dir` for a layout: creates it, or clears an earlier layout there; refuses a
/// non-empty directory that is not a layout.
fn prepare_dir(dir: &Path) -> Result<(), PackageError> {
    if dir.exists() {
        let is_layout = dir.join("oci-layout").is_file();
        let empty = fs_err::read_dir(dir)
            .map_err(io_err("reading the output directory", dir))?
            .next()
            .is_none();
        if !is_layout && !empty {
            return Err(PackageError::Io {
                action: "writing the OCI image layout",
                path: dir.to_owned(),
                source: io::Error::other(
                    "the directory exists, is not empty and is not an OCI image layout; \
                     choose a new or empty directory",
                ),
            });
        }
        if is_layout {
            for stale in ["blobs", "index.json", "oci-layout"] {
                let path = dir.join(stale);
                let removed = if path.is_dir() {
                    fs_err::remove_dir_all(&path)
                } else {
                    fs_err::remove_file(&path)
                };
                removed
                    .or_else(|e| {
                        if e.kind() == io::ErrorKind::NotFound {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(io_err("clearing the earlier layout", &path))?;
            }
        }
    }
    let blobs = blobs_dir(dir);
    fs_err::create_dir_all(&blobs).map_err(io_err("creating the layout", &blobs))
}

/// Writes the image of `binary` as an OCI image layout in `dir`, padded with a filler layer so
/// that [`OciImage::image_bytes`] is within [`PAD_TOLERANCE`] at or above `pad_to_bytes`
/// (no filler when the image is already that large).
///
/// # Errors
/// [`PackageError::Io`] naming the file, [`PackageError::PadTooLarge`].
pub fn write_layout(
    binary: &Path,
    dir: &Path,
    pad_to_bytes: Option<u64>,
    seed: u64,
) -> Result<OciImage, PackageError> {
    if let Some(pad) = pad_to_bytes
        && pad > MAX_PAD_BYTES
    {
        return Err(PackageError::PadTooLarge { requested: pad });
    }
    let bytes = fs_err::read(binary).map_err(io_err("reading the measurement function", binary))?;
    prepare_dir(dir)?;
    let blobs = blobs_dir(dir);
    let (binary_layer, binary_diff) = write_layer(
        &blobs,
        &LayerFile::Bytes {
            name: ENTRYPOINT.trim_start_matches('/'),
            bytes: &bytes,
            mode: 0o755,
        },
    )?;

    // Filler: aim, measure, correct (stored deflate blocks add a few bytes per 64 KiB).
    let base = |filler: Option<(u64, &str)>| -> Result<u64, PackageError> {
        let mut diffs = vec![binary_diff.clone()];
        diffs.extend(filler.map(|(_, d)| d.to_string()));
        let config = serde_json::to_vec(&config_json(&diffs, filler.map(|(n, _)| n)))
            .map(|v| v.len() as u64)
            .unwrap_or(0);
        Ok(binary_layer.size + config)
    };
    let mut filler: Option<(u64, Blob, String)> = None;
    if let Some(target) = pad_to_bytes {
        let without = base(None)?;
        if target > without + PAD_TOLERANCE {
            let mut len = (target - without).saturating_sub(2048).max(1);
            for _ in 0..8 {
                let (blob, diff) = write_layer(&blobs, &LayerFile::Filler { len, seed })?;
                let total = base(Some((len, &diff)))? + blob.size;
                let previous = filler.replace((len, blob.clone(), diff));
                if let Some((_, old, _)) = previous
                    && old.digest != blob.digest
                {
                    let _ = fs_err::remove_file(blobs.join(old.hex()));
                }
                if total >= target && total <= target + PAD_TOLERANCE {
                    break;
                }
                // Aim a little above the target: a stored block boundary can add a few bytes.
                len = (len + target + 64).saturating_sub(total).max(1);
            }
        }
    }

    let mut layers = vec![binary_layer];
    let mut diffs = vec![binary_diff];
    let filler_len = filler.as_ref().map(|(n, _, _)| *n);
    if let Some((_, blob, diff)) = filler {
        layers.push(blob);
        diffs.push(diff);
    }
    let (config, _) = write_json_blob(&blobs, &config_json(&diffs, filler_len), MEDIA_CONFIG)?;
    let manifest_json = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    let (manifest, _) = write_json_blob(&blobs, &manifest_json, MEDIA_MANIFEST)?;
    let mut descriptor = manifest.descriptor();
    descriptor["platform"] = json!({"architecture": "amd64", "os": "linux"});
    descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [descriptor]});
    let index_path = dir.join("index.json");
    fs_err::write(&index_path, serde_json::to_vec(&index).unwrap_or_default())
        .map_err(io_err("writing index.json", &index_path))?;
    let layout_path = dir.join("oci-layout");
    fs_err::write(&layout_path, br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io_err("writing oci-layout", &layout_path))?;
    Ok(OciImage {
        dir: dir.to_owned(),
        manifest,
        config,
        layers,
    })
}

/// Packs the layout of `image` into the oci-archive `out`, in the one-pass order (see the
/// module docs): mtime 0, uid/gid 0, files 0644, directories 0755.
///
/// # Errors
/// [`PackageError::Io`] naming the file.
pub fn write_archive(image: &OciImage, out: &Path) -> Result<PackagedArtifact, PackageError> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent).map_err(io_err("creating the output directory", parent))?;
    }
    let file = fs_err::File::create(out).map_err(io_err("writing the oci-archive", out))?;
    let mut tar = Hashing::new(io::BufWriter::with_capacity(1 << 20, file));
    let mut files: Vec<(String, PathBuf)> = vec![
        ("oci-layout".into(), image.dir.join("oci-layout")),
        ("index.json".into(), image.dir.join("index.json")),
    ];
    let dirs = ["blobs/", "blobs/sha256/"];
    for blob in std::iter::once(&image.manifest)
        .chain(std::iter::once(&image.config))
        .chain(&image.layers)
    {
        files.push((
            format!("blobs/sha256/{}", blob.hex()),
            image.blob_path(blob),
        ));
    }
    let mut write = || -> Result<(), PackageError> {
        let w = |r: io::Result<()>| r.map_err(io_err("writing the oci-archive", out));
        for (i, (name, path)) in files.iter().enumerate() {
            if i == 2 {
                for dir in dirs {
                    w(tar_header(dir, 0, 0o755, b'5').and_then(|h| tar.write_all(&h)))?;
                }
            }
            let mut source = fs_err::File::open(path).map_err(io_err("reading a blob", path))?;
            let len = source
                .metadata()
                .map_err(io_err("reading a blob", path))?
                .len();
            w(tar_header(name, len, 0o644, b'0').and_then(|h| tar.write_all(&h)))?;
            let copied = io::copy(&mut source, &mut tar).map_err(io_err("reading a blob", path))?;
            if copied != len {
                return Err(PackageError::Io {
                    action: "reading a blob",
                    path: path.clone(),
                    source: io::Error::other("the file changed size while being archived"),
                });
            }
            w(tar.write_all(&vec![0_u8; tar_padding(len)]))?;
        }
        w(tar.write_all(&[0_u8; 1024]))
    };
    write()?;
    let (mut buffered, digest, size) = tar.finish();
    buffered
        .flush()
        .map_err(io_err("writing the oci-archive", out))?;
    Ok(PackagedArtifact {
        path: out.to_owned(),
        size,
        sha256: digest.trim_start_matches("sha256:").to_string(),
    })
}

/// The image of `binary` as an oci-archive `out` (the layout is written beside it, in
/// `<out>.layout/`, and kept: `skopeo copy oci:<out>.layout` reads it).
///
/// # Errors
/// As [`write_layout`] and [`write_archive`].
pub fn oci_archive(
    binary: &Path,
    out: &Path,
    pad_to_bytes: Option<u64>,
    seed: u64,
) -> Result<(OciImage, PackagedArtifact), PackageError> {
    let mut layout = out.as_os_str().to_owned();
    layout.push(".layout");
    let image = write_layout(binary, Path::new(&layout), pad_to_bytes, seed)?;
    let archive = write_archive(&image, out)?;
    Ok((image, archive))
}

/// Builds the static measurement function: `cargo build --release -p stellar-measure --bin
/// stellar-measure-http --target x86_64-unknown-linux-musl` in `source_dir`, into
/// `target_dir` (its own directory, so it never waits on the lock of a build running stellar).
///
/// # Errors
/// [`PackageError::ToolMissing`] when the musl target is not installed,
/// [`PackageError::BuildFailed`] with the build's output (also when the binary is not where
/// cargo puts it).
pub fn build_static(source_dir: &Path, target_dir: &Path) -> Result<PathBuf, PackageError> {
    let args = [
        "build",
        "--release",
        "-p",
        lambda_zip::PACKAGE,
        "--bin",
        BIN,
        "--target",
        MUSL_TARGET,
    ];
    let command = format!(
        "CARGO_TARGET_DIR={} cargo {}",
        target_dir.display(),
        args.join(" ")
    );
    tracing::info!(%command, "building the static measurement function for the OCI image");
    let output = Command::new("cargo")
        .args(args)
        .current_dir(source_dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PackageError::ToolMissing {
            tool: "cargo",
            install: "https://rustup.rs",
            detail: e.to_string(),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("may not be installed") || stderr.contains("can't find crate for `std`")
        {
            return Err(PackageError::ToolMissing {
                tool: "the x86_64-unknown-linux-musl Rust target",
                install: MUSL_INSTALL,
                detail: "the standard library for it is not installed".into(),
            });
        }
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        return Err(PackageError::BuildFailed {
            command,
            status: output.status.to_string(),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let path = target_dir.join(MUSL_TARGET).join("release").join(BIN);
    if !path.is_file() {
        return Err(PackageError::BuildFailed {
            command,
            status: output.status.to_string(),
            output: format!("the build succeeded but {} does not exist", path.display()),
        });
    }
    Ok(path)
}

/// Builds the static measurement function from this checkout (x86_64 only).
pub fn build_for_arch(arch: Architecture) -> anyhow::Result<PathBuf> {
    if arch != Architecture::X86_64 {
        bail!("Stellar.Architecture: the OCI image is built for linux/amd64 only; use \"x86_64\"");
    }
    let source_dir = lambda_zip::source_dir();
    if !source_dir.join("measurement-fn/Cargo.toml").is_file() {
        bail!(
            "this stellar binary was moved away from its source checkout ({}), so it cannot build \
             the image's measurement function; build one with `stellar build` where the source \
             is, or set Stellar.FunctionBinary to a static x86_64 Linux `stellar-measure-http`",
            source_dir.display()
        );
    }
    let target_dir = source_dir.join("target").join("oci-musl");
    Ok(build_static(&source_dir, &target_dir)?)
}

/// One oci-archive per sub-experiment of `plan` (shared between equal `FunctionImageSizeMB`),
/// from `Stellar.FunctionBinary` when given, else built from this checkout.
pub fn for_plan(plan: &Plan, work_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let binary = match &plan.settings.function_binary {
        Some(path) => {
            if !path.is_file() {
                bail!(
                    "Stellar.FunctionBinary: {} is not a file (expected a static x86_64 Linux \
                     `stellar-measure-http`, e.g. from `stellar build` for an oci-image adapter)",
                    path.display()
                );
            }
            path.clone()
        }
        None => build_for_arch(plan.settings.architecture)?,
    };
    lambda_zip::per_image_size_as(
        plan,
        work_dir,
        "oci-image",
        "tar",
        "the OCI image",
        |out, pad| {
            let (image, archive) = oci_archive(&binary, out, pad, plan.seed)
                .with_context(|| format!("building the OCI image of {}", binary.display()))?;
            tracing::info!(manifest = %image.manifest.digest, image_bytes = image.image_bytes(),
                "built the OCI image");
            Ok(archive)
        },
    )
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn fake_binary(dir: &Path) -> PathBuf {
        let path = dir.join("stellar-measure-http");
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        for i in 0..20_000_u32 {
            bytes.extend_from_slice(format!("symbol_{i}_stellar_measure\n").as_bytes());
        }
        fs_err::write(&path, bytes).unwrap();
        path
    }

    /// `(name, size, mode, type)` of every entry of a tar, and the data of files.
    fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>, u32, u8)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|&b| b != 0) {
            let h = &bytes[at..at + 512];
            let text = |r: std::ops::Range<usize>| {
                String::from_utf8_lossy(&h[r])
                    .trim_matches(['\0', ' '])
                    .to_string()
            };
            let name = text(0..100);
            let size = u64::from_str_radix(&text(124..136), 8).unwrap() as usize;
            let mode = u32::from_str_radix(&text(100..108), 8).unwrap();
            assert_eq!(text(136..148), "00000000000", "mtime 0");
            assert_eq!(text(108..116), "0000000", "uid 0");
            assert_eq!(text(116..124), "0000000", "gid 0");
            let data = bytes[at + 512..at + 512 + size].to_vec();
            out.push((name, data, mode, h[156]));
            at += 512 + size.div_ceil(512) * 512;
        }
        out
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn two_builds_give_the_same_digests_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_binary(dir.path());
        let (a, a_tar) = oci_archive(&binary, &dir.path().join("a.tar"), Some(2 * MIB), 7).unwrap();
        let (b, b_tar) = oci_archive(&binary, &dir.path().join("b.tar"), Some(2 * MIB), 7).unwrap();
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(a.layers, b.layers);
        assert_eq!(a_tar.sha256, b_tar.sha256);
        assert_eq!(
            fs_err::read(&a_tar.path).unwrap(),
            fs_err::read(&b_tar.path).unwrap()
        );
        let (c, _) = oci_archive(&binary, &dir.path().join("c.tar"), Some(2 * MIB), 8).unwrap();
        assert_eq!(
            a.layers[0], c.layers[0],
            "the binary layer does not depend on the seed"
        );
        assert_ne!(
            a.manifest.digest, c.manifest.digest,
            "another seed, other filler"
        );
    }

    #[test]
    fn archive_lists_documents_before_layers_and_every_blob_matches_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_binary(dir.path());
        let (image, archive) =
            oci_archive(&binary, &dir.path().join("img.tar"), Some(MIB), 1).unwrap();
        let bytes = fs_err::read(&archive.path).unwrap();
        assert_eq!(archive.size, bytes.len() as u64);
        assert_eq!(archive.sha256, hex::encode(Sha256::digest(&bytes)));
        let entries = tar_entries(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let blob = |b: &Blob| format!("blobs/sha256/{}", b.hex());
        assert_eq!(
            names,
            [
                "oci-layout".to_string(),
                "index.json".into(),
                "blobs/".into(),
                "blobs/sha256/".into(),
                blob(&image.manifest),
                blob(&image.config),
                blob(&image.layers[0]),
                blob(&image.layers[1]),
            ]
        );
        for (name, data, mode, kind) in &entries {
            if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                assert_eq!(hex::encode(Sha256::digest(data)), *hex, "{name}");
                assert_eq!((*mode, *kind), (0o644, b'0'));
            }
        }
        let index: serde_json::Value = serde_json::from_slice(&entries[1].1).unwrap();
        assert_eq!(index["manifests"][0]["digest"], image.manifest.digest);
        assert_eq!(index["manifests"][0]["platform"]["architecture"], "amd64");
        let manifest: serde_json::Value = serde_json::from_slice(&entries[4].1).unwrap();
        assert_eq!(manifest["mediaType"], MEDIA_MANIFEST);
        assert_eq!(manifest["layers"][0]["mediaType"], MEDIA_LAYER_GZIP);
        let config: serde_json::Value = serde_json::from_slice(&entries[5].1).unwrap();
        assert_eq!(config["config"]["Entrypoint"][0], ENTRYPOINT);
        assert_eq!(
            (config["os"].as_str(), config["architecture"].as_str()),
            (Some("linux"), Some("amd64"))
        );

        // The binary layer: one executable at the root, byte for byte, and its diff id.
        let layer = gunzip(&entries[6].1);
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", hex::encode(Sha256::digest(&layer)))
        );
        let files = tar_entries(&layer);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "stellar-measure-http");
        assert_eq!(files[0].2, 0o755);
        assert_eq!(files[0].1, fs_err::read(&binary).unwrap());
    }

    #[test]
    fn filler_pads_the_image_to_the_target_with_incompressible_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_binary(dir.path());
        for target in [3 * MIB, 5 * MIB + 12_345, 20 * MIB] {
            let image = write_layout(
                &binary,
                &dir.path().join(format!("l{target}")),
                Some(target),
                3,
            )
            .unwrap();
            let size = image.image_bytes();
            assert!(
                size >= target && size <= target + PAD_TOLERANCE,
                "target {target}, image {size}"
            );
            let filler = fs_err::read(image.blob_path(&image.layers[1])).unwrap();
            let files = tar_entries(&gunzip(&filler));
            assert_eq!(files[0].0, FILLER);
            // Deflated again at the highest level, the filler does not shrink.
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
            enc.write_all(&files[0].1).unwrap();
            let recompressed = enc.finish().unwrap().len();
            assert!(recompressed as f64 >= 0.99 * files[0].1.len() as f64);
            // Only the files the layout should hold: no leftovers of the sizing passes.
            let blobs = fs_err::read_dir(blobs_dir(&image.dir)).unwrap().count();
            assert_eq!(blobs, 4, "manifest, config, two layers");
        }
        let small = write_layout(&binary, &dir.path().join("small"), Some(1000), 3).unwrap();
        assert_eq!(small.layers.len(), 1, "no filler below the unpadded size");
    }

    #[test]
    fn existing_directories_are_reused_only_when_they_hold_a_layout() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_binary(dir.path());
        let out = dir.path().join("layout");
        let big = write_layout(&binary, &out, Some(2 * MIB), 1).unwrap();
        let plain = write_layout(&binary, &out, None, 1).unwrap();
        assert_eq!(plain.layers.len(), 1);
        assert!(
            !big.blob_path(&big.layers[1]).exists(),
            "stale blobs removed"
        );
        let other = dir.path().join("other");
        fs_err::create_dir_all(&other).unwrap();
        fs_err::write(other.join("notes.txt"), "keep me").unwrap();
        let err = write_layout(&binary, &other, None, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an OCI image layout"), "{err}");
        assert!(other.join("notes.txt").exists());
    }

    #[test]
    fn missing_binary_and_huge_pad_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = write_layout(&missing, &dir.path().join("o"), None, 0).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        let binary = fake_binary(dir.path());
        let err = write_layout(&binary, &dir.path().join("o"), Some(u64::MAX), 0).unwrap_err();
        assert!(matches!(err, PackageError::PadTooLarge { .. }), "{err}");
    }
}
