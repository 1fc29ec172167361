//! Golden tests of what users read: every `tests/ui/*.json` (at the repository root) is either
//! a bad experiment file whose sibling `.err` holds the exact error message, or, when it has a
//! sibling `.warn`, a file that plans with exactly the warnings in it (one per line);
//! `tests/ui/stellar-compat.warn` holds the warnings of every file in
//! `experiments/stellar-compat/`, and `tests/ui/quickstart.plan.json` is the exact plan of
//! `experiments/quickstart.json`.
//!
//! Why: error messages and `plan.json` are product surfaces; a change to either must be a
//! deliberate, reviewed diff. Run with `STELLAR_BLESS=1` to rewrite the golden files after an
//! intended change, then review `git diff tests/ui`.
//!
//! Files are loaded from their absolute path but reported under the repository-relative path
//! (`tests/ui/x.json`), so the messages do not depend on where the repository is checked out.

use std::path::{Path, PathBuf};

use stellar_config::{Plan, PlanOptions};

/// Fixed clock for golden plans.
const NOW_UNIX_MS: u64 = 1_700_000_000_000;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bless() -> bool {
    std::env::var_os("STELLAR_BLESS").is_some_and(|v| v == "1")
}

fn options() -> PlanOptions {
    PlanOptions {
        now_unix_ms: NOW_UNIX_MS,
        ..PlanOptions::default()
    }
}

/// Compares `actual` with the golden file, or rewrites it when blessing. Returns a failure
/// description instead of panicking so that all mismatches are reported at once.
fn check_golden(golden: &Path, actual: &str) -> Option<String> {
    if bless() {
        if let Err(e) = fs_err::write(golden, actual) {
            return Some(e.to_string());
        }
        return None;
    }
    match fs_err::read_to_string(golden) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{}: mismatch\n--- expected\n{expected}--- actual\n{actual}",
            golden.display()
        )),
        Err(e) => Some(format!("{e} (run with STELLAR_BLESS=1 to create it)")),
    }
}

#[test]
fn messages_match_golden_files() {
    let dir = repo_root().join("tests/ui");
    let mut inputs: Vec<PathBuf> = fs_err::read_dir(&dir)
        .expect("tests/ui exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".plan.json")
        })
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 12,
        "expected the golden inputs in {}",
        dir.display()
    );

    let mut failures = Vec::new();
    for input in &inputs {
        let name = input
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let shown = PathBuf::from("tests/ui").join(&name);
        let text = fs_err::read_to_string(input).expect("readable input");
        let warn = input.with_extension("warn");
        if warn.exists() {
            match Plan::from_json_str(&text, &shown, &options()) {
                Ok(plan) => failures.extend(check_golden(&warn, &lines(&plan.warnings()))),
                Err(e) => failures.push(format!("{e}: rejected but should plan with warnings")),
            }
            continue;
        }
        let message = match Plan::from_json_str(&text, &shown, &options()) {
            Ok(_) => {
                failures.push(format!(
                    "{}: planned successfully but should be rejected (or give it a .warn file)",
                    shown.display()
                ));
                continue;
            }
            Err(e) => e.to_string(),
        };
        assert!(
            message.starts_with(&format!("{}: ", shown.display())),
            "{message}"
        );
        failures.extend(check_golden(
            &input.with_extension("err"),
            &format!("{message}\n"),
        ));
    }

    // No orphaned .err or .warn files (stellar-compat.warn is checked below).
    for entry in fs_err::read_dir(&dir).expect("tests/ui exists") {
        let path = entry.expect("readable directory entry").path();
        if path.extension().is_some_and(|e| e == "err" || e == "warn")
            && !path.ends_with("stellar-compat.warn")
            && !path.with_extension("json").exists()
        {
            failures.push(format!("{}: no matching .json input", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One line per entry, each ending in a newline.
fn lines(entries: &[String]) -> String {
    entries.iter().map(|entry| format!("{entry}\n")).collect()
}

#[test]
fn stellar_compat_warnings_match_golden_file() {
    let root = repo_root();
    let mut files: Vec<PathBuf> = fs_err::read_dir(root.join("experiments/stellar-compat"))
        .expect("experiments/stellar-compat exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut warnings = Vec::new();
    for file in &files {
        let name = file.file_name().expect("file name").to_string_lossy();
        let shown = PathBuf::from("experiments/stellar-compat").join(&*name);
        let text = fs_err::read_to_string(file).expect("readable file");
        let plan = Plan::from_json_str(&text, &shown, &options()).unwrap_or_else(|e| panic!("{e}"));
        warnings.extend(plan.warnings());
    }
    if let Some(failure) = check_golden(
        &root.join("tests/ui/stellar-compat.warn"),
        &lines(&warnings),
    ) {
        panic!("{failure}");
    }
}

#[test]
fn quickstart_plan_matches_golden_file() {
    let root = repo_root();
    let text = fs_err::read_to_string(root.join("experiments/quickstart.json"))
        .expect("quickstart exists");
    let plan = Plan::from_json_str(&text, Path::new("experiments/quickstart.json"), &options())
        .unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_string_pretty(&plan).expect("plan serializes") + "\n";
    if let Some(failure) = check_golden(&root.join("tests/ui/quickstart.plan.json"), &json) {
        panic!("{failure}");
    }
    // The checked-in plan is also a valid plan document.
    let back: Plan = serde_json::from_str(&json).expect("plan deserializes");
    assert_eq!(back, plan);
}
