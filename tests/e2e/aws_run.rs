//! `stellar run` with `"Provider": "aws"` as close to end to end as a machine without an AWS
//! account allows: the embedded aws adapter deploys to moto (the Lambda control plane: create,
//! function URL, permissions, remove), and the timed requests go to `cargo lambda watch` (the
//! Lambda runtime emulator running the real Lambda build of the measurement function) through
//! the adapter's `function-url-override`. Then `stellar cleanup` removes what a run's journal
//! says may have been left behind.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stellar_results::read_latencies;

use crate::aws::{Moto, base64, write_zip};
use crate::lambda_watch::{FIRST_REQUEST_TIMEOUT, Watcher};

fn stellar(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stellar"))
        .current_dir(dir)
        .args(args)
        // Credentials the way a user gives them; HOME points away from any real ~/.aws.
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("HOME", dir)
        .env("STELLAR_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap()
}

fn lambda_functions(moto: &Moto) -> Vec<String> {
    let (status, body) = moto.lambda_get("/2015-03-31/functions/");
    assert_eq!(status, 200, "{body}");
    body["Functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn stellar_run_on_aws_against_moto_and_the_lambda_emulator() {
    let moto = Moto::start();
    let role = moto.create_role("stellar-e2e");
    let watcher = Watcher::start();
    // The emulator builds the function on its first request (minutes on a busy machine); do
    // that before the run so no timed request waits for a compiler.
    let (status, warmup) = watcher.get("SpinMs=0&RequestID=warmup", FIRST_REQUEST_TIMEOUT);
    assert_eq!(status, 200, "{warmup}");
    let instance = warmup["instance_id"].as_str().unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    // moto stores the zip but never runs it; the emulator runs the real Lambda build.
    fs_err::write(dir.path().join("bootstrap"), b"#!/bin/sh\nexit 1\n").unwrap();
    let experiment = serde_json::json!({
        "Provider": "aws",
        "Runtime": "provided.al2023",
        "Stellar": {
            "Seed": 3,
            "FunctionBinary": "bootstrap",
            "ProviderSettings": {
                "region": "us-east-1",
                "role-arn": role,
                "endpoint": moto.url(),
                "function-url-override": watcher.function_url(),
            }
        },
        "SubExperiments": [{
            "Title": "warm",
            "Function": "hellopy",
            "Handler": "main.lambda_handler",
            "Bursts": 5,
            "BurstSizes": [1],
            "IATSeconds": 0.2,
            "IATType": "deterministic",
            "DesiredServiceTimes": ["5ms"],
            "FunctionMemoryMB": 256,
            "FunctionImageSizeMB": 2
        }]
    });
    let file = dir.path().join("aws.json");
    fs_err::write(&file, serde_json::to_string_pretty(&experiment).unwrap()).unwrap();
    let out = dir.path().join("results");
    let output = stellar(
        &[
            "run",
            file.to_str().unwrap(),
            "--json",
            "-o",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stdout.contains("testing-secret-value") && !stderr.contains("testing-secret-value"),
        "the secret leaked"
    );
    let analysis: Value = serde_json::from_str(&stdout).unwrap();
    let run_dir = Path::new(analysis["run_dir"].as_str().unwrap()).to_owned();

    // Every timed request reached the real function through the emulator.
    let rows = read_latencies(run_dir.join("00-warm/latencies.csv")).unwrap();
    assert_eq!(rows.len(), 5);
    for row in &rows {
        assert!(row.is_ok(), "{row:?}");
        assert_eq!(row.instance_id, instance, "{row:?}");
        assert_eq!(row.cold, Some(false), "{row:?}");
        assert_eq!(row.cold_source, "function");
        assert!(row.function_spin_ms.unwrap() >= 5.0, "{row:?}");
    }
    // The deployment went through moto and was removed at the end; nothing secret was kept.
    let journal = fs_err::read_to_string(run_dir.join("resources.jsonl")).unwrap();
    for event in ["\"creating\"", "\"created\"", "\"removed\""] {
        assert!(journal.contains(event), "{journal}");
    }
    assert!(lambda_functions(&moto).is_empty());
    for entry in fs_err::read_dir(&run_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&fs_err::read(&path).unwrap()).into_owned();
            assert!(!text.contains("testing-secret-value"), "{}", path.display());
        }
    }
    let log = fs_err::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(log.contains("packaged the Lambda function"), "{log}");

    // A crashed run leaves functions behind: fake one (journaled, created in moto) plus one
    // that was journaled but never created, and let `stellar cleanup` find both.
    let (_, zip) = write_zip(dir.path(), "orphan.zip", b"#!/bin/sh\n");
    let create = serde_json::json!({
        "FunctionName": "st-orphan-00-00", "Runtime": "provided.al2023", "Handler": "bootstrap",
        "Role": role, "Code": {"ZipFile": base64(&zip)}
    });
    let (status, body) = moto.call(
        "lambda",
        "POST",
        "/2015-03-31/functions",
        "application/json",
        create.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let mut journal = fs_err::OpenOptions::new()
        .append(true)
        .open(run_dir.join("resources.jsonl"))
        .unwrap();
    use std::io::Write as _;
    for name in ["st-orphan-00-00", "st-ghost-00-00"] {
        writeln!(
            journal,
            r#"{{"unix_ms":1,"event":"creating","provider":"aws","function":"{name}"}}"#
        )
        .unwrap();
    }
    drop(journal);
    assert_eq!(lambda_functions(&moto), vec!["st-orphan-00-00"]);
    let output = stellar(&["cleanup", run_dir.to_str().unwrap()], dir.path());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("1 removed, 1 already gone, 0 failed"),
        "{text}"
    );
    assert!(lambda_functions(&moto).is_empty());
    let output = stellar(&["remove", run_dir.to_str().unwrap()], dir.path());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("0 removed, 0 already gone, 0 failed"),
        "{text}"
    );
}
