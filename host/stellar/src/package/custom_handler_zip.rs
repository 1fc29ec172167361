//! Artifact kind `custom-handler-zip`: an Azure Functions custom handler package.
//!
//! Azure runs a custom handler from a zip holding `host.json` (which names the executable and
//! asks the Functions host to forward HTTP requests unchanged), one `<function>/function.json`
//! per function (an anonymous HTTP trigger) and the executable itself, here the HTTP
//! measurement function as `handler` (mode 0755). The Functions image is Linux x86_64, so the
//! executable is built the way the Lambda `bootstrap` is (cargo-lambda, with zig when
//! available, so it needs at most glibc 2.30); the zip writer and the `FunctionImageSizeMB`
//! padding are the Lambda packager's ([`lambda_zip::padded_zip_file`]).
//!
//! Layout and file shapes: MicrosoftDocs/azure-docs
//! `articles/azure-functions/functions-custom-handlers.md` (`customHandler.description`,
//! `enableForwardingHttpRequest`, `extensions.http.routePrefix`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use stellar_config::{Architecture, Plan};

use super::lambda_zip::{
    self, LambdaArch, LambdaBuild, PackageError, PackagedArtifact, ZipEntry, padded_zip_file,
};

/// The function's name inside the app; its URL is `https://<host>/api/<FUNCTION>`.
pub const FUNCTION: &str = "measure";
/// The executable's name in the zip (`customHandler.description.defaultExecutablePath`).
pub const HANDLER: &str = "handler";
/// The bin built as the handler.
pub const BIN: &str = "stellar-measure-http";
/// `functionTimeout` of a zip built by hand (`stellar build`): 5 minutes.
pub const DEFAULT_TIMEOUT_S: u64 = 300;
/// Unix mode of the handler.
const HANDLER_MODE: u32 = 0o755;
/// Unix mode of the JSON files.
const JSON_MODE: u32 = 0o644;

/// `host.json`: the custom handler, HTTP requests forwarded as they came (path `/api/<fn>`,
/// query, headers), the `api` route prefix, a function timeout of `timeout_s`.
#[must_use]
pub fn host_json(timeout_s: u64) -> serde_json::Value {
    let t = timeout_s.clamp(1, 24 * 3600);
    serde_json::json!({
        "version": "2.0",
        "customHandler": {
            "description": {
                "defaultExecutablePath": HANDLER,
                "workingDirectory": "",
                "arguments": []
            },
            "enableForwardingHttpRequest": true
        },
        "extensions": {"http": {"routePrefix": "api"}},
        "functionTimeout": format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    })
}

/// `<fn>/function.json`: an anonymous HTTP trigger (GET and POST) and its HTTP output `res`.
#[must_use]
pub fn function_json() -> serde_json::Value {
    serde_json::json!({
        "bindings": [
            {"type": "httpTrigger", "authLevel": "anonymous", "direction": "in", "name": "req",
             "methods": ["get", "post"]},
            {"type": "http", "direction": "out", "name": "res"}
        ]
    })
}

/// Zips `handler` with `host.json` and `measure/function.json` into `out`, padded to
/// `pad_to_bytes` like the Lambda zip.
///
/// # Errors
/// [`PackageError::Io`] naming the handler or the zip, [`PackageError::Zip`],
/// [`PackageError::PadTooLarge`].
pub fn custom_handler_zip(
    handler: &Path,
    out: &Path,
    timeout_s: u64,
    pad_to_bytes: Option<u64>,
    seed: u64,
) -> Result<PackagedArtifact, PackageError> {
    let binary = fs_err::read(handler).map_err(|source| PackageError::Io {
        action: "reading the custom handler executable",
        path: handler.to_owned(),
        source,
    })?;
    let host = pretty(&host_json(timeout_s));
    let function = pretty(&function_json());
    let function_path = format!("{FUNCTION}/function.json");
    let entries = [
        ZipEntry {
            name: "host.json",
            bytes: host.as_bytes(),
            mode: JSON_MODE,
        },
        ZipEntry {
            name: &function_path,
            bytes: function.as_bytes(),
            mode: JSON_MODE,
        },
        ZipEntry {
            name: HANDLER,
            bytes: &binary,
            mode: HANDLER_MODE,
        },
    ];
    padded_zip_file(&entries, out, pad_to_bytes, seed)
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()) + "\n"
}

/// Builds the handler (`stellar-measure-http`, Linux x86_64) from this checkout.
pub fn build_handler(arch: Architecture) -> anyhow::Result<PathBuf> {
    if arch == Architecture::Arm64 {
        bail!(
            "Stellar.Architecture: Azure Functions Flex Consumption runs Linux x86_64 only; \
             use \"x86_64\""
        );
    }
    let source_dir = lambda_zip::source_dir();
    if !source_dir.join("measurement-fn/Cargo.toml").is_file() {
        bail!(
            "this stellar binary was moved away from its source checkout ({}), so it cannot build \
             the custom handler; build one with `stellar build --provider azure` where the \
             source is, or set Stellar.FunctionBinary to a Linux x86_64 `stellar-measure-http`",
            source_dir.display()
        );
    }
    let build = LambdaBuild {
        arch: LambdaArch::X86_64,
        target_dir: source_dir.join("target"),
        source_dir,
    };
    tracing::info!("building the Azure custom handler with cargo-lambda");
    Ok(lambda_zip::build_bin(&build, BIN, &[])?)
}

/// One zip per sub-experiment of `plan` (shared between equal `FunctionImageSizeMB`), from
/// `Stellar.FunctionBinary` when given, else built from this checkout.
pub fn for_plan(plan: &Plan, work_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let handler = match &plan.settings.function_binary {
        Some(path) => {
            if !path.is_file() {
                bail!(
                    "Stellar.FunctionBinary: {} is not a file (expected the custom handler \
                     executable, a Linux x86_64 `stellar-measure-http`)",
                    path.display()
                );
            }
            path.clone()
        }
        None => build_handler(plan.settings.architecture)?,
    };
    let timeout_s = plan.settings.request_timeout_ms.div_ceil(1000);
    lambda_zip::per_image_size(
        plan,
        work_dir,
        "custom-handler",
        "the Azure custom handler",
        |out, pad| {
            custom_handler_zip(&handler, out, timeout_s, pad, plan.seed)
                .with_context(|| format!("packaging {}", handler.display()))
        },
    )
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use zip::ZipArchive;

    fn zip_of(dir: &Path, pad: Option<u64>) -> (PackagedArtifact, Vec<u8>) {
        let handler = dir.join("h");
        let binary = b"\x7fELF\x02\x01\x01 the handler".repeat(1000);
        fs_err::write(&handler, &binary).unwrap();
        let art = custom_handler_zip(&handler, &dir.join("out/app.zip"), 30, pad, 5).unwrap();
        (art, binary)
    }

    #[test]
    fn zip_holds_host_json_function_json_and_an_executable_handler() {
        let dir = tempfile::tempdir().unwrap();
        let (art, binary) = zip_of(dir.path(), None);
        let mut zip = ZipArchive::new(fs_err::File::open(&art.path).unwrap()).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(names, ["host.json", "measure/function.json", "handler"]);
        let mut read = |name: &str| {
            let mut entry = zip.by_name(name).unwrap();
            let mode = entry.unix_mode().map(|m| m & 0o7777);
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (mode, bytes)
        };
        let (mode, bytes) = read("handler");
        assert_eq!(mode, Some(0o755));
        assert_eq!(bytes, binary);
        let (mode, host) = read("host.json");
        assert_eq!(mode, Some(0o644));
        let host: serde_json::Value = serde_json::from_slice(&host).unwrap();
        assert_eq!(
            host["customHandler"]["description"]["defaultExecutablePath"],
            "handler"
        );
        assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
        assert_eq!(host["extensions"]["http"]["routePrefix"], "api");
        assert_eq!(host["version"], "2.0");
        assert_eq!(host["functionTimeout"], "00:00:30");
        let (_, function) = read("measure/function.json");
        let function: serde_json::Value = serde_json::from_slice(&function).unwrap();
        let trigger = &function["bindings"][0];
        assert_eq!(trigger["type"], "httpTrigger");
        assert_eq!(trigger["authLevel"], "anonymous");
        assert_eq!(trigger["methods"], serde_json::json!(["get", "post"]));
        assert_eq!(function["bindings"][1]["name"], "res");
    }

    #[test]
    fn padding_works_as_for_lambda() {
        let dir = tempfile::tempdir().unwrap();
        let target = 3 * 1024 * 1024;
        let (art, _) = zip_of(dir.path(), Some(target));
        assert!(
            art.size >= target && art.size <= target + 1024,
            "{}",
            art.size
        );
        let zip = ZipArchive::new(fs_err::File::open(&art.path).unwrap()).unwrap();
        assert_eq!(zip.len(), 4);
    }

    #[test]
    fn timeouts_are_written_as_timespans() {
        assert_eq!(host_json(3600)["functionTimeout"], "01:00:00");
        assert_eq!(host_json(0)["functionTimeout"], "00:00:01");
        assert_eq!(host_json(5432)["functionTimeout"], "01:30:32");
    }

    #[test]
    fn arm64_is_refused_with_the_field_name() {
        let err = build_handler(Architecture::Arm64).unwrap_err().to_string();
        assert!(err.contains("Stellar.Architecture"), "{err}");
    }
}
