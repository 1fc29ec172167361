//! Builds what the `stellar` binary embeds: the first-party provider plugins (wasm32-wasip2
//! components from `plugins/`) and the HTTP measurement function (`measurement-fn/`, release
//! build for this machine), so one `cargo build` yields a self-contained binary.
//!
//! Nested builds use their own target directory (`<target>/embedded`) so they never wait on the
//! outer build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.join("../..");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    // OUT_DIR = <target>[/<triple>]/<profile>/build/<pkg>/out
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR has the usual depth")
        .to_path_buf();
    let embedded = target_dir.join("embedded");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    for dir in ["plugins", "measurement-fn", "wit"] {
        watch(&root.join(dir));
    }
    println!("cargo:rerun-if-changed=../../Cargo.lock");

    // 1. Provider plugins (guests).
    run(
        Command::new(&cargo)
            .current_dir(root.join("plugins"))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
            .arg(embedded.join("plugins")),
        "building the wasm plugins (is the target installed? `rustup target add wasm32-wasip2`)",
    );
    let wasm_dir = embedded.join("plugins/wasm32-wasip2/release");
    for (env_name, file) in [
        ("STELLAR_PLUGIN_LOCAL_WASM", "stellar_plugin_local.wasm"),
        ("STELLAR_PLUGIN_AWS_WASM", "stellar_plugin_aws.wasm"),
        ("STELLAR_PLUGIN_AZURE_WASM", "stellar_plugin_azure.wasm"),
        ("STELLAR_PLUGIN_ALIYUN_WASM", "stellar_plugin_aliyun.wasm"),
        ("STELLAR_PLUGIN_GCR_WASM", "stellar_plugin_gcr.wasm"),
        ("STELLAR_PLUGIN_VHIVE_WASM", "stellar_plugin_vhive.wasm"),
        ("STELLAR_PLUGIN_HOSTILE_WASM", "stellar_plugin_hostile.wasm"),
        (
            "STELLAR_PLUGIN_STUCK_DESCRIBE_WASM",
            "stellar_plugin_stuck_describe.wasm",
        ),
        (
            "STELLAR_PLUGIN_OCI_PUSH_PROBE_WASM",
            "stellar_plugin_oci_push_probe.wasm",
        ),
    ] {
        let path = wasm_dir.join(file);
        assert!(
            path.is_file(),
            "expected {} after the plugin build",
            path.display()
        );
        println!("cargo:rustc-env={env_name}={}", path.display());
    }

    // 2. The HTTP measurement function, always optimised: it is what gets measured.
    run(
        Command::new(&cargo)
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "-p",
                "stellar-measure",
                "--bin",
                "stellar-measure-http",
                "--target-dir",
            ])
            .arg(embedded.join("native")),
        "building the measurement function",
    );
    let bin = embedded.join("native/release/stellar-measure-http");
    assert!(bin.is_file(), "expected {} after the build", bin.display());
    println!("cargo:rustc-env=STELLAR_MEASURE_HTTP_BIN={}", bin.display());
}

/// Re-run when any source file under `dir` changes (skipping build output).
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn run(cmd: &mut Command, what: &str) {
    // Flags meant for the outer (host) build must not leak into nested builds.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what}: could not start cargo: {e}"));
    assert!(status.success(), "{what} failed ({status})");
}
