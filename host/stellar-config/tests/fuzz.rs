//! Fuzzing the experiment parser and plan builder: whatever the bytes, `Plan::from_json_str` and
//! `Plan::from_file` return a plan or an error, never panic, and finish in bounded time.
//!
//! Why: experiment files come from users and from STeLLAR's repository; a panic there loses
//! the user's context, a hang or a huge allocation stalls a run before it starts. Three
//! generators, all seeded from the real files in `experiments/` and `tests/ui/`:
//! - arbitrary bytes (including invalid UTF-8, read through `from_file`);
//! - byte-level mutations of a real file (flip, insert, delete, truncate, splice);
//! - structure-aware mutations: parse a real file, replace a random node with a hostile value
//!   (huge, negative, NaN-like, wrong type, deep nesting, long strings), delete or rename a
//!   key, or duplicate one, then serialise it again.
//!
//! `cargo test -p stellar-config --test fuzz` runs `STELLAR_FUZZ_CASES` cases per generator
//! (default 256, about a second); set it higher for a long run, e.g.
//! `STELLAR_FUZZ_CASES=20000 cargo test --release -p stellar-config --test fuzz -- --nocapture`.
//! Each case must finish within [`MAX_CASE`]; the slowest case is printed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use stellar_config::{Plan, PlanOptions};

/// Longest a single parse + plan may take (debug build, busy 2-core machine).
const MAX_CASE: Duration = Duration::from_secs(10);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cases() -> u32 {
    std::env::var("STELLAR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Every `.json` under `experiments/` and `tests/ui/`, as text.
fn seeds() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<PathBuf> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(fs_err::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("experiments"), &mut out);
    walk(&repo_root().join("tests/ui"), &mut out);
    assert!(out.len() > 40, "found only {} seed files", out.len());
    out
}

fn options() -> PlanOptions {
    PlanOptions {
        now_unix_ms: 1_700_000_000_000,
        // Never create anything: relative output dirs are only resolved, not used.
        ..PlanOptions::default()
    }
}

/// The slowest case seen, for the report.
static SLOWEST: Mutex<Duration> = Mutex::new(Duration::ZERO);

/// Parses and plans `text`; an `Err` is fine, a panic fails the case, so does slowness. On
/// success the plan must serialise (it is written to plan.json).
fn check_text(text: &str) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let result = Plan::from_json_str(text, Path::new("fuzz.json"), &options());
    if let Ok(plan) = &result {
        prop_assert!(serde_json::to_string(plan).is_ok());
    } else if let Err(e) = &result {
        // Errors name the file.
        prop_assert!(e.to_string().contains("fuzz.json"), "{e}");
    }
    let took = started.elapsed();
    let mut slowest = SLOWEST.lock().unwrap();
    *slowest = (*slowest).max(took);
    prop_assert!(took < MAX_CASE, "took {took:?}");
    Ok(())
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn arbitrary_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.json");
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..2048), |bytes| {
            fs_err::write(&path, &bytes).unwrap();
            let started = Instant::now();
            let result = Plan::from_file(&path, &options());
            if let Err(e) = &result {
                prop_assert!(e.to_string().contains("fuzz.json"), "{e}");
            }
            prop_assert!(started.elapsed() < MAX_CASE);
            check_text(&String::from_utf8_lossy(&bytes))
        })
        .unwrap();
}

#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Splice(usize, usize, usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                Just(b"{".to_vec()),
                Just(b"[".to_vec()),
                Just(b"\"".to_vec()),
                Just(b",".to_vec()),
                Just(b"9999999999999999999999".to_vec()),
                Just(b"-1".to_vec()),
                Just(b"\\u0000".to_vec()),
                proptest::collection::vec(any::<u8>(), 1..8),
            ]
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        any::<usize>().prop_map(ByteEdit::Truncate),
        (any::<usize>(), any::<usize>(), 1usize..128)
            .prop_map(|(a, b, n)| ByteEdit::Splice(a, b, n)),
    ]
}

fn apply_bytes(text: &str, edits: &[ByteEdit]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            ByteEdit::Flip(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % len] ^= b | 1;
                }
            }
            ByteEdit::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            ByteEdit::Delete(i, n) => {
                let at = i % len.min(bytes.len() + 1);
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            ByteEdit::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            ByteEdit::Splice(from, to, n) => {
                // Copy a chunk of the file elsewhere (repeats keys, objects, numbers).
                let from = from % len;
                let end = (from + n).min(bytes.len());
                let chunk: Vec<u8> = bytes.get(from..end).unwrap_or_default().to_vec();
                let at = to % (bytes.len() + 1);
                bytes.splice(at..at, chunk);
            }
        }
    }
    bytes
}

#[test]
fn byte_mutations_of_real_files_never_panic() {
    let seeds = seeds();
    runner()
        .run(
            &(0..seeds.len(), proptest::collection::vec(byte_edit(), 1..6)),
            |(seed, edits)| {
                let bytes = apply_bytes(&seeds[seed], &edits);
                check_text(&String::from_utf8_lossy(&bytes))
            },
        )
        .unwrap();
}

/// Values that stress validation: extremes, wrong types, special strings, deep nesting.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(999_999),
            Just(1_000_000),
            Just(1_000_001),
            Just(i64::from(i32::MAX)),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(Value::from),
        prop_oneof![
            Just(1e300),
            Just(-1e300),
            Just(1e-300),
            Just(0.5),
            Just(-0.0)
        ]
        .prop_map(Value::from),
        prop_oneof![
            Just(String::new()),
            Just("x".repeat(10_000)),
            Just("1ms".to_owned()),
            Just("-5s".to_owned()),
            Just("99999999999h".to_owned()),
            Just("1e400ms".to_owned()),
            Just("local".to_owned()),
            Just("http://127.0.0.1:1/x".to_owned()),
            Just("stochastic".to_owned()),
            Just("step".to_owned()),
            Just("bar-1".to_owned()),
            Just("\u{0}\u{202e}é".to_owned()),
            Just("../../etc/passwd".to_owned()),
            ".{0,20}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[A-Za-z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum TreeEdit {
    /// Replace the node at this pick with a value.
    Replace(usize, Value),
    /// Remove a key (or element) at this pick.
    Remove(usize),
    /// Give the key at this pick another (known) name.
    Rename(usize, &'static str),
}

/// Keys of the schema, so renames produce known keys in wrong places.
const KEYS: [&str; 16] = [
    "Sequential",
    "Provider",
    "SubExperiments",
    "Title",
    "Bursts",
    "BurstSizes",
    "IATSeconds",
    "IATType",
    "DesiredServiceTimes",
    "Parallelism",
    "Stellar",
    "Local",
    "FaultQuery",
    "MaxFailures",
    "RequestTimeoutSeconds",
    "ProviderSettings",
];

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    prop_oneof![
        4 => (any::<usize>(), hostile_value()).prop_map(|(i, v)| TreeEdit::Replace(i, v)),
        1 => any::<usize>().prop_map(TreeEdit::Remove),
        1 => (any::<usize>(), proptest::sample::select(KEYS.to_vec()))
            .prop_map(|(i, k)| TreeEdit::Rename(i, k)),
    ]
}

/// Number of nodes below (and including) `v`.
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// Applies `edit` to the `pick`-th node (pre-order); `pick` counts down as nodes are passed.
fn edit_at(v: &mut Value, pick: &mut usize, edit: &TreeEdit) -> bool {
    if *pick == 0
        && let TreeEdit::Replace(_, new) = edit
    {
        *v = new.clone();
        return true;
    }
    *pick = pick.saturating_sub(1);
    match v {
        Value::Array(items) => {
            for i in 0..items.len() {
                if *pick == 0 && matches!(edit, TreeEdit::Remove(_)) {
                    items.remove(i);
                    return true;
                }
                if edit_at(&mut items[i], pick, edit) {
                    return true;
                }
            }
        }
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if *pick == 0 {
                    match edit {
                        TreeEdit::Remove(_) => {
                            map.remove(&key);
                            return true;
                        }
                        TreeEdit::Rename(_, new) => {
                            if let Some(value) = map.remove(&key) {
                                map.insert((*new).to_owned(), value);
                            }
                            return true;
                        }
                        TreeEdit::Replace(..) => {}
                    }
                }
                if let Some(child) = map.get_mut(&key)
                    && edit_at(child, pick, edit)
                {
                    return true;
                }
            }
        }
        _ => {}
    }
    false
}

#[test]
#[expect(
    clippy::print_stderr,
    reason = "reports the case count and the slowest case"
)]
fn structure_aware_mutations_never_panic() {
    let seeds: Vec<Value> = seeds()
        .iter()
        .filter_map(|text| serde_json::from_str(text).ok())
        .collect();
    runner()
        .run(
            &(
                0..seeds.len(),
                proptest::collection::vec(tree_edit(), 1..5),
                any::<bool>(),
            ),
            |(seed, edits, duplicate)| {
                let mut value = seeds[seed].clone();
                for edit in &edits {
                    let index = match edit {
                        TreeEdit::Replace(i, _) | TreeEdit::Remove(i) | TreeEdit::Rename(i, _) => {
                            *i
                        }
                    };
                    let mut pick = index % count(&value);
                    edit_at(&mut value, &mut pick, edit);
                }
                let mut text = serde_json::to_string_pretty(&value).unwrap();
                if duplicate {
                    // A key given twice (STeLLAR's files do this): repeat the first member.
                    if let Some(open) = text.find('{')
                        && let Some(end) = text[open..].find(",\n")
                    {
                        let member = text[open + 1..open + end].to_owned();
                        text.insert_str(open + 1, &format!("{member},"));
                    }
                }
                check_text(&text)
            },
        )
        .unwrap();
    eprintln!(
        "fuzz: {} cases per generator, slowest case {:?}",
        cases(),
        *SLOWEST.lock().unwrap()
    );
}
