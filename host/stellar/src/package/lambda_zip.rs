//! Artifact kind `lambda-zip`: build the Lambda `bootstrap`, zip it, pad the zip.
//!
//! AWS runs a `provided.al2023` function from a zip with an executable named `bootstrap` at its
//! root (Unix mode 0755). [`build_bootstrap`] builds the `stellar-measure-lambda` bin with
//! cargo-lambda (zig as the linker when it is available, so both architectures build from one
//! host and the binary needs at most glibc 2.30; plain cargo for the native architecture
//! otherwise). [`lambda_zip`] zips it deterministically and, for the image-size experiments
//! (STeLLAR's "function image size" axis), pads the zip with incompressible bytes up to a target
//! size, so the size that AWS fetches on a cold start is what the experiment asked for.
//!
//! Everything here runs on the host before provisioning; the plugin only uploads the bytes.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest as _, Sha256};
use std::ffi::OsString;
use std::fmt;
use std::io::{Cursor, Read as _, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use stellar_config::{Architecture, Plan, SubExperimentPlan};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// The package and bin cargo-lambda builds.
pub const PACKAGE: &str = "stellar-measure";
/// The Lambda entry point bin (feature `lambda` of [`PACKAGE`]).
pub const BIN: &str = "stellar-measure-lambda";
/// The executable's name inside the zip, as the `provided.*` runtimes require.
pub const BOOTSTRAP: &str = "bootstrap";
/// The padding entry's name inside the zip.
pub const FILLER: &str = "stellar-filler.bin";
/// How to get cargo-lambda (the PyPI wheel also installs zig).
pub const CARGO_LAMBDA_INSTALL: &str = "pip install cargo-lambda";
/// How to get zig alone.
pub const ZIG_INSTALL: &str = "pip install ziglang";
/// Unix mode of `bootstrap` in the zip.
const BOOTSTRAP_MODE: u32 = 0o755;
/// Unix mode of the filler.
const FILLER_MODE: u32 = 0o644;
/// Filler bytes generated and written per step.
const FILLER_CHUNK: usize = 64 * 1024;
/// The largest padding target: zip64 would change the entry overhead, and Lambda's own limit
/// (250 MB unzipped) is far below.
pub const MAX_PAD_BYTES: u64 = u32::MAX as u64 - 1024 * 1024;

/// A Lambda instruction-set architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LambdaArch {
    /// `x86_64` (Lambda's default).
    X86_64,
    /// `arm64` (Graviton).
    Arm64,
}

impl LambdaArch {
    /// The name Lambda's API uses (`Architectures`): `x86_64` or `arm64`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// The cargo-lambda flag selecting this architecture.
    #[must_use]
    pub fn cargo_lambda_flag(self) -> &'static str {
        match self {
            Self::X86_64 => "--x86-64",
            Self::Arm64 => "--arm64",
        }
    }

    /// The Rust target cargo-lambda builds for.
    #[must_use]
    pub fn rust_target(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-gnu",
            Self::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// True when this is the architecture of the machine running stellar (so plain cargo can
    /// build it without a cross linker).
    #[must_use]
    pub fn is_native(self) -> bool {
        match self {
            Self::X86_64 => std::env::consts::ARCH == "x86_64",
            Self::Arm64 => std::env::consts::ARCH == "aarch64",
        }
    }
}

impl fmt::Display for LambdaArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to build, from where, into where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaBuild {
    /// The target architecture.
    pub arch: LambdaArch,
    /// The repository root (the cargo workspace holding `measurement-fn`).
    pub source_dir: PathBuf,
    /// Cargo's target directory; `bootstrap` lands in `<target_dir>/lambda/<arch>/<bin>/`.
    pub target_dir: PathBuf,
}

impl LambdaBuild {
    /// Where cargo-lambda puts this architecture's binaries (one directory per architecture,
    /// so an arm64 build does not overwrite the x86_64 `bootstrap`).
    #[must_use]
    pub fn lambda_dir(&self) -> PathBuf {
        self.target_dir.join("lambda").join(self.arch.as_str())
    }

    /// The `bootstrap` a successful build produces.
    #[must_use]
    pub fn bootstrap_path(&self) -> PathBuf {
        self.lambda_dir().join(BIN).join(BOOTSTRAP)
    }
}

/// A packaged artifact on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagedArtifact {
    /// Where it was written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A tool is not installed (or not on `PATH`).
    #[error("{tool} is not available ({detail}); install it with `{install}`")]
    ToolMissing {
        /// The tool, e.g. `cargo-lambda`.
        tool: &'static str,
        /// The install command.
        install: &'static str,
        /// What was tried and what happened.
        detail: String,
    },
    /// A cross build was asked for but zig (the cross linker) was not found.
    #[error(
        "building for {arch} on this {host} machine needs zig, which was not found \
         (tried `zig version` and `python3 -m ziglang version`); install it with \
         `{ZIG_INSTALL}` (`{CARGO_LAMBDA_INSTALL}` brings it too)"
    )]
    ZigMissing {
        /// The requested architecture.
        arch: LambdaArch,
        /// This machine's architecture.
        host: &'static str,
    },
    /// `cargo lambda build` failed.
    #[error("`{command}` failed ({status}); its output ends with:\n{output}")]
    BuildFailed {
        /// The command line.
        command: String,
        /// The exit status.
        status: String,
        /// The last lines of its stderr.
        output: String,
    },
    /// The build reported success but `bootstrap` is not where it should be.
    #[error("cargo lambda build succeeded but {} does not exist", path.display())]
    BootstrapMissing {
        /// Where it was expected.
        path: PathBuf,
    },
    /// A padding target beyond [`MAX_PAD_BYTES`].
    #[error("pad target {requested} bytes is larger than the supported {MAX_PAD_BYTES} bytes")]
    PadTooLarge {
        /// The requested size.
        requested: u64,
    },
    /// File-system I/O failed (the source, from fs-err, names the path too).
    #[error("{action}: {source}")]
    Io {
        /// What was being done, e.g. "reading bootstrap".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing or re-reading the zip failed.
    #[error("writing zip {}: {source}", path.display())]
    Zip {
        /// The zip being written.
        path: PathBuf,
        /// The error.
        source: zip::result::ZipError,
    },
}

/// Builds `bootstrap` for `b.arch` with
/// `cargo lambda build --release -p stellar-measure --bin stellar-measure-lambda --features
/// lambda --arm64|--x86-64 --lambda-dir <target>/lambda/<arch>` in `b.source_dir` with
/// `CARGO_TARGET_DIR=b.target_dir`. Uses zig (cargo-lambda's default; found as `zig` or
/// `python3 -m ziglang`) when available, else `--compiler cargo`, which only builds the native
/// architecture. Blocks for the whole build (about a minute cold).
///
/// # Errors
/// [`PackageError::ToolMissing`] without cargo-lambda, [`PackageError::ZigMissing`] for a cross
/// build without zig, [`PackageError::BuildFailed`] with the build's output,
/// [`PackageError::BootstrapMissing`] if the binary is not where cargo-lambda puts it.
pub fn build_bootstrap(b: &LambdaBuild) -> Result<PathBuf, PackageError> {
    build_bin(b, BIN, LAMBDA_FEATURE_ARGS)
}

/// Features of the Lambda entry point: only it, the HTTP server stays out of the package.
const LAMBDA_FEATURE_ARGS: &[&str] = &["--no-default-features", "--features", "lambda"];

/// Builds `bin` of [`PACKAGE`] (with `feature_args`) for `b.arch` the way
/// [`build_bootstrap`] does: cargo-lambda with zig when available (glibc <= 2.30, any
/// architecture), else plain cargo for the native architecture. Other packagers (e.g. the
/// Azure custom handler) reuse it for their Linux executable.
///
/// # Errors
/// As [`build_bootstrap`].
pub fn build_bin(
    b: &LambdaBuild,
    bin: &str,
    feature_args: &[&str],
) -> Result<PathBuf, PackageError> {
    check_cargo_lambda()?;
    let use_zig = zig_available();
    if !use_zig && !b.arch.is_native() {
        return Err(PackageError::ZigMissing {
            arch: b.arch,
            host: std::env::consts::ARCH,
        });
    }
    run_build(b, bin, feature_args, use_zig)
}

/// The arguments after `cargo` for a build of `b` (zig or plain cargo as the compiler).
#[must_use]
pub fn build_args(b: &LambdaBuild, use_zig: bool) -> Vec<OsString> {
    bin_build_args(b, BIN, LAMBDA_FEATURE_ARGS, use_zig)
}

/// The arguments after `cargo` for a build of `bin` with `feature_args`.
fn bin_build_args(
    b: &LambdaBuild,
    bin: &str,
    feature_args: &[&str],
    use_zig: bool,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["lambda", "build", "--release", "-p", PACKAGE, "--bin", bin]
        .into_iter()
        .chain(feature_args.iter().copied())
        .chain([b.arch.cargo_lambda_flag()])
        .map(OsString::from)
        .collect();
    if !use_zig {
        args.extend(["--compiler", "cargo"].map(OsString::from));
    }
    args.push("--lambda-dir".into());
    args.push(b.lambda_dir().into_os_string());
    args
}

/// Runs the build with the compiler chosen (no tool checks).
fn run_build(
    b: &LambdaBuild,
    bin: &str,
    feature_args: &[&str],
    use_zig: bool,
) -> Result<PathBuf, PackageError> {
    let args = bin_build_args(b, bin, feature_args, use_zig);
    let command = format!(
        "CARGO_TARGET_DIR={} cargo {}",
        b.target_dir.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    tracing::info!(%command, dir = %b.source_dir.display(), "building a Linux executable with cargo-lambda");
    let output = Command::new("cargo")
        .args(&args)
        .current_dir(&b.source_dir)
        .env("CARGO_TARGET_DIR", &b.target_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PackageError::ToolMissing {
            tool: "cargo",
            install: "rustup (https://rustup.rs)",
            detail: format!("running `cargo`: {e}"),
        })?;
    if !output.status.success() {
        return Err(PackageError::BuildFailed {
            command,
            status: output.status.to_string(),
            output: tail_lines(&String::from_utf8_lossy(&output.stderr), 40),
        });
    }
    let path = b.lambda_dir().join(bin).join(BOOTSTRAP);
    if path.is_file() {
        Ok(path)
    } else {
        Err(PackageError::BootstrapMissing { path })
    }
}

/// Fails with an install hint unless `cargo lambda --version` works.
fn check_cargo_lambda() -> Result<(), PackageError> {
    let missing = |detail: String| PackageError::ToolMissing {
        tool: "cargo-lambda",
        install: CARGO_LAMBDA_INSTALL,
        detail,
    };
    let out = Command::new("cargo")
        .args(["lambda", "--version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing(format!("running `cargo lambda --version`: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(missing(format!(
            "`cargo lambda --version` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// True if zig runs as `zig` or as the PyPI `ziglang` module (the places cargo-lambda looks).
fn zig_available() -> bool {
    let runs = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    runs("zig", &["version"]) || runs("python3", &["-m", "ziglang", "version"])
}

/// The last `n` lines of `text`.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n")
}

/// Zips `bootstrap` as `bootstrap` (mode 0755, deflate) at the zip root into `out` (parent
/// directories are created). With `pad_to_bytes` larger than that zip, adds [`FILLER`]
/// (stored, ChaCha8 bytes seeded by `seed`, so incompressible) sized so the zip is exactly
/// `pad_to_bytes` (at most 1 KiB above it when the filler's own headers do not fit). All
/// timestamps are 1980-01-01 00:00, so the same inputs give the same bytes.
///
/// # Errors
/// [`PackageError::Io`] naming the file that could not be read or written,
/// [`PackageError::Zip`], [`PackageError::PadTooLarge`].
pub fn lambda_zip(
    bootstrap: &Path,
    out: &Path,
    pad_to_bytes: Option<u64>,
    seed: u64,
) -> Result<PackagedArtifact, PackageError> {
    if let Some(requested) = pad_to_bytes.filter(|&p| p > MAX_PAD_BYTES) {
        return Err(PackageError::PadTooLarge { requested });
    }
    let binary = fs_err::read(bootstrap).map_err(|source| PackageError::Io {
        action: "reading bootstrap",
        path: bootstrap.to_owned(),
        source,
    })?;
    let entries = [ZipEntry {
        name: BOOTSTRAP,
        bytes: &binary,
        mode: BOOTSTRAP_MODE,
    }];
    padded_zip_file(&entries, out, pad_to_bytes, seed)
}

/// One file of a zip [`padded_zip_file`] writes.
#[derive(Debug, Clone, Copy)]
pub struct ZipEntry<'a> {
    /// Path inside the zip, `/`-separated.
    pub name: &'a str,
    pub bytes: &'a [u8],
    /// Unix mode (0o755 for executables).
    pub mode: u32,
}

/// Zips `entries` (deflate, in order, 1980-01-01 timestamps, their Unix modes) into `out`
/// (parent directories are created) and pads it with [`FILLER`] to `pad_to_bytes` exactly as
/// [`lambda_zip`] does. Shared by every zip-based artifact kind.
///
/// # Errors
/// [`PackageError::Io`] naming the file that could not be written, [`PackageError::Zip`],
/// [`PackageError::PadTooLarge`].
pub fn padded_zip_file(
    entries: &[ZipEntry<'_>],
    out: &Path,
    pad_to_bytes: Option<u64>,
    seed: u64,
) -> Result<PackagedArtifact, PackageError> {
    if let Some(requested) = pad_to_bytes.filter(|&p| p > MAX_PAD_BYTES) {
        return Err(PackageError::PadTooLarge { requested });
    }
    let zip_err = |source| PackageError::Zip {
        path: out.to_owned(),
        source,
    };

    // The plain zip, in memory: every entry compressed once.
    let mut plain = ZipWriter::new(Cursor::new(Vec::new()));
    for entry in entries {
        plain
            .start_file(
                entry.name,
                entry_options(CompressionMethod::Deflated, entry.mode),
            )
            .map_err(zip_err)?;
        plain
            .write_all(entry.bytes)
            .map_err(|e| zip_err(e.into()))?;
    }
    let plain = plain.finish().map_err(zip_err)?.into_inner();
    let plain_len = plain.len() as u64;

    if let Some(out_dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(out_dir).map_err(|source| PackageError::Io {
            action: "creating the output directory",
            path: out_dir.to_owned(),
            source,
        })?;
    }
    let write_err = |source| PackageError::Io {
        action: "writing the zip",
        path: out.to_owned(),
        source,
    };
    match pad_to_bytes.filter(|&target| target > plain_len) {
        None => fs_err::write(out, &plain).map_err(write_err)?,
        Some(target) => {
            // The filler's headers cost a fixed number of bytes (stored, < 4 GiB, no data
            // descriptor): measure them with an empty filler, then fill the rest exactly.
            let empty = padded_zip(&plain, Cursor::new(Vec::new()), 0, seed).map_err(zip_err)?;
            let filler_len = target.saturating_sub(empty.into_inner().len() as u64);
            let file = fs_err::File::create(out).map_err(write_err)?;
            let mut file = padded_zip(&plain, file, filler_len, seed).map_err(zip_err)?;
            file.flush().map_err(write_err)?;
        }
    }
    digest(out)
}

/// Options for one entry: fixed timestamp, Unix mode, no zip64.
fn entry_options(method: CompressionMethod, mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(DateTime::default())
        .unix_permissions(mode)
        .large_file(false)
}

/// Writes the entries of the zip `plain` (copied raw, not recompressed) plus a stored filler
/// of `filler_len` seeded bytes into `sink`.
fn padded_zip<W: Write + Seek>(
    plain: &[u8],
    sink: W,
    filler_len: u64,
    seed: u64,
) -> zip::result::ZipResult<W> {
    let mut source = ZipArchive::new(Cursor::new(plain))?;
    let mut zip = ZipWriter::new(sink);
    for i in 0..source.len() {
        zip.raw_copy_file(source.by_index_raw(i)?)?;
    }
    zip.start_file(
        FILLER,
        entry_options(CompressionMethod::Stored, FILLER_MODE),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chunk = vec![0_u8; FILLER_CHUNK];
    let mut left = filler_len;
    while left > 0 {
        let n = usize::try_from(left).map_or(FILLER_CHUNK, |l| l.min(FILLER_CHUNK));
        let part = chunk.get_mut(..n).unwrap_or_default();
        rng.fill_bytes(part);
        zip.write_all(part)?;
        left -= n as u64;
    }
    zip.finish()
}

/// Size and SHA-256 of the file at `path`.
fn digest(path: &Path) -> Result<PackagedArtifact, PackageError> {
    let read_err = |source| PackageError::Io {
        action: "hashing the zip",
        path: path.to_owned(),
        source,
    };
    let mut file = fs_err::File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 256 * 1024];
    let mut size = 0_u64;
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
    Ok(PackagedArtifact {
        path: path.to_owned(),
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// One zip per sub-experiment of `plan` (shared between equal `FunctionImageSizeMB`), from
/// `Stellar.FunctionBinary` when given, else built from this checkout.
pub fn for_plan(plan: &Plan, work_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let bootstrap = match &plan.settings.function_binary {
        Some(path) => {
            if !path.is_file() {
                bail!(
                    "Stellar.FunctionBinary: {} is not a file (expected the Lambda `bootstrap` \
                     executable, e.g. from `stellar build --provider aws`)",
                    path.display()
                );
            }
            path.clone()
        }
        None => build_for_arch(plan.settings.architecture)?,
    };
    per_image_size(
        plan,
        work_dir,
        "bootstrap",
        "the Lambda function",
        |out, pad| {
            lambda_zip(&bootstrap, out, pad, plan.seed)
                .with_context(|| format!("packaging {}", bootstrap.display()))
        },
    )
}

/// One package per sub-experiment of `plan`, made by `make(out, pad_to_bytes)` once per
/// distinct `FunctionImageSizeMB` as `<work_dir>/<stem>-<pad bytes>.zip` and shared between
/// the sub-experiments asking for that size. `what` names the package in the log.
pub fn per_image_size(
    plan: &Plan,
    work_dir: &Path,
    stem: &str,
    what: &str,
    make: impl FnMut(&Path, Option<u64>) -> anyhow::Result<PackagedArtifact>,
) -> anyhow::Result<Vec<PathBuf>> {
    per_image_size_as(plan, work_dir, stem, "zip", what, make)
}

/// [`per_image_size`] with another file extension (`<stem>-<pad bytes>.<extension>`).
pub fn per_image_size_as(
    plan: &Plan,
    work_dir: &Path,
    stem: &str,
    extension: &str,
    what: &str,
    mut make: impl FnMut(&Path, Option<u64>) -> anyhow::Result<PackagedArtifact>,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut by_size: BTreeMap<u64, PackagedArtifact> = BTreeMap::new();
    let mut zips = Vec::new();
    for sub in &plan.sub_experiments {
        let pad = pad_bytes(sub);
        let zip = match by_size.entry(pad.unwrap_or(0)) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let out = work_dir.join(format!("{stem}-{}.{extension}", e.key()));
                let zip = make(&out, pad)?;
                if let Some(pad) = pad
                    && zip.size > pad + 1024
                {
                    tracing::warn!(
                        sub_experiment = %sub.slug,
                        requested_mb = sub.function_image_size_mb,
                        actual_bytes = zip.size,
                        "the function package is already larger than FunctionImageSizeMB"
                    );
                }
                tracing::info!(path = %zip.path.display(), bytes = zip.size, sha256 = %zip.sha256,
                    "packaged {what}");
                e.insert(zip)
            }
        };
        zips.push(zip.path.clone());
    }
    Ok(zips)
}

/// `FunctionImageSizeMB` in bytes, when the sub-experiment asks for padding.
pub fn pad_bytes(sub: &SubExperimentPlan) -> Option<u64> {
    let mb = sub.function_image_size_mb;
    (mb.is_finite() && mb > 0.0).then(|| (mb * 1024.0 * 1024.0).round() as u64)
}

/// The checkout this binary was built from, which holds the measurement function's source.
pub(crate) fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the Lambda `bootstrap` for `arch` from this checkout with cargo-lambda.
pub fn build_for_arch(arch: Architecture) -> anyhow::Result<PathBuf> {
    let source_dir = source_dir();
    if !source_dir.join("measurement-fn/Cargo.toml").is_file() {
        bail!(
            "this stellar binary was moved away from its source checkout ({}), so it cannot build \
             the Lambda function; build one with `stellar build` where the source is, and set \
             Stellar.FunctionBinary to it",
            source_dir.display()
        );
    }
    let build = LambdaBuild {
        arch: match arch {
            Architecture::X86_64 => LambdaArch::X86_64,
            Architecture::Arm64 => LambdaArch::Arm64,
        },
        target_dir: source_dir.join("target"),
        source_dir,
    };
    tracing::info!(
        arch = arch.as_str(),
        "building the Lambda function with cargo-lambda"
    );
    Ok(build_bootstrap(&build)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// A fake bootstrap: an ELF-ish header then compressible text, like a real binary.
    fn fake_bootstrap(dir: &Path) -> PathBuf {
        let path = dir.join("bootstrap");
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        for i in 0..20_000_u32 {
            bytes.extend_from_slice(format!("symbol_{i}_stellar_measure\n").as_bytes());
        }
        fs_err::write(&path, bytes).unwrap();
        path
    }

    fn open(path: &Path) -> ZipArchive<fs_err::File> {
        ZipArchive::new(fs_err::File::open(path).unwrap()).unwrap()
    }

    #[test]
    fn zip_has_executable_bootstrap_at_root() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = fake_bootstrap(dir.path());
        let out = dir.path().join("out/fn.zip");
        let art = lambda_zip(&bootstrap, &out, None, 1).unwrap();
        assert_eq!(art.path, out);
        assert_eq!(art.size, fs_err::metadata(&out).unwrap().len());
        assert_eq!(art.sha256.len(), 64);
        let mut zip = open(&out);
        assert_eq!(zip.len(), 1);
        let mut entry = zip.by_name(BOOTSTRAP).unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o7777), Some(0o755));
        assert_eq!(entry.compression(), CompressionMethod::Deflated);
        assert!(entry.compressed_size() < entry.size());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, fs_err::read(&bootstrap).unwrap());
    }

    #[test]
    fn padding_lands_within_a_kib_at_or_above_target() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = fake_bootstrap(dir.path());
        for target in [5 * MIB, 20 * MIB, 5 * MIB + 12_345] {
            let out = dir.path().join(format!("pad-{target}.zip"));
            let art = lambda_zip(&bootstrap, &out, Some(target), 7).unwrap();
            assert!(
                art.size >= target && art.size <= target + 1024,
                "target {target}, got {}",
                art.size
            );
            let mut zip = open(&out);
            assert_eq!(zip.len(), 2);
            let mode = zip.by_name(BOOTSTRAP).unwrap().unix_mode();
            assert_eq!(
                mode.map(|m| m & 0o7777),
                Some(0o755),
                "raw copy keeps the mode"
            );
            let filler = zip.by_name(FILLER).unwrap();
            assert_eq!(filler.compression(), CompressionMethod::Stored);
        }
    }

    #[test]
    fn target_below_the_plain_zip_adds_no_filler() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = fake_bootstrap(dir.path());
        let plain = lambda_zip(&bootstrap, &dir.path().join("a.zip"), None, 1).unwrap();
        let small = lambda_zip(&bootstrap, &dir.path().join("b.zip"), Some(1000), 1).unwrap();
        assert_eq!(small.size, plain.size);
        assert_eq!(small.sha256, plain.sha256);
        assert_eq!(open(&small.path).len(), 1);
    }

    #[test]
    fn filler_is_incompressible() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = fake_bootstrap(dir.path());
        let out = dir.path().join("pad.zip");
        lambda_zip(&bootstrap, &out, Some(2 * MIB), 3).unwrap();
        let mut filler = Vec::new();
        open(&out)
            .by_name(FILLER)
            .unwrap()
            .read_to_end(&mut filler)
            .unwrap();
        assert!(filler.len() > MIB as usize, "{}", filler.len());
        // Deflate it (through the zip crate) and compare.
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file(
            "x",
            SimpleFileOptions::default().compression_method(CompressionMethod::Deflated),
        )
        .unwrap();
        zip.write_all(&filler).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let deflated = ZipArchive::new(Cursor::new(bytes))
            .unwrap()
            .by_name("x")
            .unwrap()
            .compressed_size();
        assert!(
            deflated as f64 >= 0.99 * filler.len() as f64,
            "deflated {deflated} of {}",
            filler.len()
        );
    }

    #[test]
    fn output_is_deterministic_per_seed() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = fake_bootstrap(dir.path());
        let zip = |name: &str, seed| {
            let out = dir.path().join(name);
            let art = lambda_zip(&bootstrap, &out, Some(3 * MIB), seed).unwrap();
            (art, fs_err::read(&out).unwrap())
        };
        let (a, a_bytes) = zip("a.zip", 42);
        let (b, b_bytes) = zip("b.zip", 42);
        let (c, _) = zip("c.zip", 43);
        assert_eq!(a_bytes, b_bytes);
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.size, c.size);
        assert_ne!(a.sha256, c.sha256, "another seed gives other filler bytes");
        assert_eq!(a.sha256, hex::encode(Sha256::digest(&a_bytes)));
    }

    #[test]
    fn missing_bootstrap_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-bootstrap");
        let err = lambda_zip(&missing, &dir.path().join("x.zip"), None, 0).unwrap_err();
        assert!(
            matches!(&err, PackageError::Io { path, .. } if *path == missing),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        assert!(!dir.path().join("x.zip").exists(), "no zip on failure");
    }

    #[test]
    fn pad_beyond_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = fake_bootstrap(dir.path());
        let err = lambda_zip(&bootstrap, &dir.path().join("x.zip"), Some(u64::MAX), 0).unwrap_err();
        assert!(matches!(err, PackageError::PadTooLarge { .. }), "{err}");
    }

    #[test]
    fn build_args_select_arch_and_compiler() {
        let b = LambdaBuild {
            arch: LambdaArch::Arm64,
            source_dir: "/src".into(),
            target_dir: "/t".into(),
        };
        let args: Vec<String> = build_args(&b, true)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "lambda",
                "build",
                "--release",
                "-p",
                "stellar-measure",
                "--bin",
                "stellar-measure-lambda",
                "--no-default-features",
                "--features",
                "lambda",
                "--arm64",
                "--lambda-dir",
                "/t/lambda/arm64"
            ]
        );
        assert_eq!(
            b.bootstrap_path(),
            Path::new("/t/lambda/arm64/stellar-measure-lambda/bootstrap")
        );
        let x86 = LambdaBuild {
            arch: LambdaArch::X86_64,
            ..b
        };
        let args = build_args(&x86, false);
        assert!(args.iter().any(|a| a == "--x86-64"));
        let pos = args.iter().position(|a| a == "--compiler").unwrap();
        assert_eq!(
            args.get(pos + 1).map(|a| a.to_string_lossy()),
            Some("cargo".into())
        );
    }

    #[test]
    fn zig_missing_error_says_how_to_install() {
        let msg = PackageError::ZigMissing {
            arch: LambdaArch::Arm64,
            host: "x86_64",
        }
        .to_string();
        assert!(msg.contains("pip install ziglang"), "{msg}");
        assert!(msg.contains("arm64"), "{msg}");
        let msg = PackageError::ToolMissing {
            tool: "cargo-lambda",
            install: CARGO_LAMBDA_INSTALL,
            detail: "no such command".into(),
        }
        .to_string();
        assert!(msg.contains("pip install cargo-lambda"), "{msg}");
    }
}
