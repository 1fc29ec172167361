//! `stellar k8s job RUN_DIR --shards N`: a Kubernetes Indexed Job that runs a prepared run's
//! shards, one pod per shard.
//!
//! Users who run vHive or Knative already run Kubernetes, so stellar uses it rather than a
//! scheduler of its own: the Job's completion index is the shard index, every pod runs
//! `stellar run /plan --shard $(index)/N --start-at T0`, and rows go to a shared volume
//! (a PersistentVolumeClaim) for `stellar merge`. A failed pod is never retried
//! (`backoffLimitPerIndex: 0`): a retried shard would start after `T0 + grace` and exit 3
//! anyway, and must never fire late. A bad plan (exit 1) would be bad on every shard, so it
//! fails the whole Job; a shard that missed its start or stopped early fails only its index.
//! The manifest is printed, not applied: no cluster credentials pass through stellar.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::prepared::{PLAN_JSON, PreparedRun};
use super::start::{CLOCK_REFUSED_EXIT_CODE, MISSED_START_EXIT_CODE, rfc3339};

/// Largest `plan.json` a ConfigMap holds (Kubernetes caps an object at 1 MiB).
pub const MAX_CONFIGMAP_BYTES: usize = 1_000_000;
/// The environment variable each pod gets its completion index in (from the pod annotation
/// the Job controller sets), expanded in the container's arguments.
pub const INDEX_ENV: &str = "STELLAR_SHARD_INDEX";
const INDEX_ANNOTATION: &str = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

/// `stellar k8s job` options.
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// The prepared run directory (from `stellar prepare`).
    pub run_dir: PathBuf,
    /// Number of shards (pods), one completion index each.
    #[arg(long)]
    pub shards: u32,
    /// Container image holding the `stellar` binary (on its PATH or as the entrypoint).
    #[arg(long, default_value = "stellar:latest")]
    pub image: String,
    /// T0 is this long after now: time for the pods to be scheduled and pull the image.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    pub start_in: Duration,
    /// A shard not ready by T0 plus this sends nothing (exit 3).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub start_grace: Duration,
    /// PersistentVolumeClaim (ReadWriteMany when pods land on several nodes) for the rows.
    #[arg(long, default_value = "stellar-results")]
    pub pvc: String,
    #[arg(long)]
    pub namespace: Option<String>,
    /// CPU (whole cores) and memory each shard requests and is limited to (Guaranteed QoS).
    #[arg(long, default_value = "2")]
    pub cpu: String,
    #[arg(long, default_value = "2Gi")]
    pub memory: String,
}

/// Why no manifest was printed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Prepared(#[from] super::prepared::PreparedError),
    #[error("--shards {0}: expected 1 to 100000 shards")]
    Shards(u32),
    #[error(
        "{path} is {bytes} bytes, more than a ConfigMap holds ({MAX_CONFIGMAP_BYTES}); copy the \
         run directory onto the volume and mount it instead"
    )]
    PlanTooLarge { path: PathBuf, bytes: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The manifests (ConfigMap with the plan, then the Job) and the T0 written into them.
#[derive(Debug, Clone)]
pub struct JobManifests {
    pub config_map: Value,
    pub job: Value,
    pub name: String,
    pub start_at: String,
}

/// Builds the manifests for `args`, with T0 = `now + args.start_in`.
pub fn manifests(args: &JobArgs, now: SystemTime) -> Result<JobManifests, JobError> {
    let n = args.shards;
    if n == 0 || n > 100_000 {
        return Err(JobError::Shards(n));
    }
    let prepared = PreparedRun::read(&args.run_dir)?;
    let path = args.run_dir.join(PLAN_JSON);
    let plan_text = fs_err::read_to_string(&path).map_err(|source| JobError::Io {
        path: path.clone(),
        source,
    })?;
    if plan_text.len() > MAX_CONFIGMAP_BYTES {
        return Err(JobError::PlanTooLarge {
            path,
            bytes: plan_text.len(),
        });
    }
    let run_id = prepared.prepared.run_id.clone();
    let name = format!("stellar-{run_id}");
    let start_at = rfc3339(now + args.start_in);
    let duration = prepared.plan.duration_estimate().as_secs()
        + prepared
            .prepared
            .sub_start_ms
            .iter()
            .fold(0.0, |a: f64, b| a.max(*b)) as u64
            / 1000;
    let timeout_s = prepared.plan.settings.request_timeout_ms.div_ceil(1000);
    let deadline = args.start_in.as_secs() + duration + timeout_s + 300;
    let labels = json!({"stellar-run": run_id});
    let mut metadata = json!({"name": name, "labels": labels});
    if let Some(ns) = &args.namespace {
        metadata["namespace"] = json!(ns);
    }
    let mut cm_metadata = json!({"name": format!("{name}-plan"), "labels": labels});
    if let Some(ns) = &args.namespace {
        cm_metadata["namespace"] = json!(ns);
    }
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": cm_metadata,
        "data": {PLAN_JSON: plan_text},
    });
    let index = format!("$({INDEX_ENV})");
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            "backoffLimitPerIndex": 0,
            "maxFailedIndexes": n,
            "activeDeadlineSeconds": deadline,
            "podFailurePolicy": {"rules": [
                {"action": "FailJob",
                 "onExitCodes": {"containerName": "stellar", "operator": "In", "values": [1]}},
                {"action": "FailIndex",
                 "onExitCodes": {"containerName": "stellar", "operator": "In",
                                 "values": [2, MISSED_START_EXIT_CODE, CLOCK_REFUSED_EXIT_CODE]}},
            ]},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "affinity": {"podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [{
                            "weight": 100,
                            "podAffinityTerm": {
                                "labelSelector": {"matchLabels": labels},
                                "topologyKey": "kubernetes.io/hostname",
                            },
                        }],
                    }},
                    "containers": [{
                        "name": "stellar",
                        "image": args.image,
                        "command": ["stellar"],
                        "args": [
                            "run", "/plan", "--quiet",
                            "--shard", format!("{index}/{n}"),
                            "--start-at", start_at,
                            "--start-grace", humantime::format_duration(args.start_grace).to_string(),
                            "-o", format!("/out/shards/{index}"),
                        ],
                        "env": [
                            {"name": INDEX_ENV,
                             "valueFrom": {"fieldRef": {"fieldPath": INDEX_ANNOTATION}}},
                            {"name": "STELLAR_CLIENT",
                             "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        ],
                        "resources": {
                            "requests": {"cpu": args.cpu, "memory": args.memory},
                            "limits": {"cpu": args.cpu, "memory": args.memory},
                        },
                        "volumeMounts": [
                            {"name": "plan", "mountPath": "/plan", "readOnly": true},
                            {"name": "out", "mountPath": "/out"},
                        ],
                    }],
                    "volumes": [
                        {"name": "plan", "configMap": {"name": format!("{name}-plan")}},
                        {"name": "out", "persistentVolumeClaim": {"claimName": args.pvc}},
                    ],
                },
            },
        },
    });
    Ok(JobManifests {
        config_map,
        job,
        name,
        start_at,
    })
}

/// The text `stellar k8s job` prints: both manifests as YAML, then the commands to collect
/// the rows and merge (as YAML comments, so the output can be applied as it is).
pub fn job(args: &JobArgs) -> Result<String, JobError> {
    let m = manifests(args, SystemTime::now())?;
    let ns = args
        .namespace
        .as_ref()
        .map(|n| format!(" -n {n}"))
        .unwrap_or_default();
    let run_dir = args.run_dir.display();
    let name = &m.name;
    let pvc = &args.pvc;
    let mut text = format!(
        "# stellar: {} shards of {run_dir}, T0 = {}\n---\n",
        args.shards, m.start_at
    );
    text.push_str(&to_yaml(&m.config_map));
    text.push_str("---\n");
    text.push_str(&to_yaml(&m.job));
    text.push_str(&format!(
        "# Apply before T0 (pods must be scheduled and pull the image in time):\n\
         #   kubectl{ns} apply -f job.yaml\n\
         #   kubectl{ns} wait --for=condition=complete --timeout=1h job/{name}\n\
         # Collect the rows from the volume, then merge (a failed index: merge --allow-partial):\n\
         #   kubectl{ns} run {name}-collect --image=busybox --restart=Never --overrides='{{\"spec\":{{\"volumes\":[{{\"name\":\"out\",\"persistentVolumeClaim\":{{\"claimName\":\"{pvc}\"}}}}],\"containers\":[{{\"name\":\"c\",\"image\":\"busybox\",\"command\":[\"sleep\",\"3600\"],\"volumeMounts\":[{{\"name\":\"out\",\"mountPath\":\"/out\"}}]}}]}}}}'\n\
         #   kubectl{ns} wait --for=condition=Ready pod/{name}-collect\n\
         #   kubectl{ns} cp {name}-collect:/out/shards {run_dir}/shards\n\
         #   kubectl{ns} delete pod/{name}-collect job/{name} configmap/{name}-plan\n\
         #   stellar merge {run_dir}\n\
         #   stellar cleanup {run_dir}\n"
    ));
    Ok(text)
}

/// Block-style YAML of a JSON value: strings double-quoted with JSON escapes (valid YAML),
/// keys plain when they are simple.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    emit_map_or_seq(value, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if plain {
        k.to_owned()
    } else {
        Value::String(k.to_owned()).to_string()
    }
}

fn emit_map_or_seq(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if is_block(v) {
                    out.push_str(&format!("{pad}{}:\n", key(k)));
                    emit_map_or_seq(v, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{}: {}\n", key(k), scalar(v)));
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_block(item) {
                    let mut inner = String::new();
                    emit_map_or_seq(item, indent + 2, &mut inner);
                    // "- " takes the place of the first line's indentation.
                    out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::prepared::{PREPARED_SCHEMA, Prepared};
    use stellar_config::{Plan, PlanOptions};

    fn prepared_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"Provider": "http://127.0.0.1:9/", "Stellar": {"Seed": 7,
            "RequestTimeoutSeconds": 30}, "SubExperiments": [{"Title": "a", "Bursts": 3,
            "BurstSizes": [4], "IATSeconds": 2, "IATType": "deterministic", "DesiredServiceTimes": ["1ms"]}]}"#;
        let plan = Plan::from_json_str(
            text,
            std::path::Path::new("x.json"),
            &PlanOptions::default(),
        )
        .unwrap();
        let prepared = Prepared {
            schema: PREPARED_SCHEMA.into(),
            run_id: "0a1b2c".into(),
            prepared_unix_ms: 1,
            endpoints: vec![vec!["http://127.0.0.1:9/".into()]],
            measurement_function: false,
            extra_query: None,
            sub_start_ms: vec![0.0],
            plan_sha256: String::new(),
        };
        PreparedRun::write(&plan, prepared, dir.path()).unwrap();
        dir
    }

    fn args(dir: &std::path::Path, shards: u32) -> JobArgs {
        JobArgs {
            run_dir: dir.to_owned(),
            shards,
            image: "registry.example/stellar:1".into(),
            start_in: Duration::from_secs(300),
            start_grace: Duration::from_secs(2),
            pvc: "rows".into(),
            namespace: Some("bench".into()),
            cpu: "2".into(),
            memory: "2Gi".into(),
        }
    }

    /// The rules the API schema cannot express.
    #[test]
    fn the_job_keeps_the_rules_the_schema_cannot_see() {
        let dir = prepared_dir();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let m = manifests(&args(dir.path(), 8), now).unwrap();
        let spec = &m.job["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["completions"], 8);
        assert_eq!(spec["parallelism"], spec["completions"]);
        assert_eq!(spec["backoffLimitPerIndex"], 0, "a shard is never retried");
        assert_eq!(spec["maxFailedIndexes"], 8, "other shards keep running");
        let pod = &spec["template"]["spec"];
        assert_eq!(
            pod["restartPolicy"], "Never",
            "podFailurePolicy needs Never"
        );
        let rules = spec["podFailurePolicy"]["rules"].as_array().unwrap();
        assert_eq!(rules[0]["action"], "FailJob");
        assert_eq!(rules[0]["onExitCodes"]["values"], json!([1]));
        assert_eq!(rules[1]["action"], "FailIndex");
        assert_eq!(rules[1]["onExitCodes"]["values"], json!([2, 3, 4]));
        let c = &pod["containers"][0];
        for rule in rules {
            assert_eq!(rule["onExitCodes"]["containerName"], c["name"]);
        }
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
        assert_eq!(after("--shard"), "$(STELLAR_SHARD_INDEX)/8");
        assert_eq!(after("-o"), "/out/shards/$(STELLAR_SHARD_INDEX)");
        assert_eq!(after("--start-at"), "2027-01-15T08:05:00.000Z");
        assert_eq!(m.start_at, after("--start-at"));
        // The variable the arguments expand is declared in the container, from the index.
        let env = c["env"].as_array().unwrap();
        let index_env = env.iter().find(|e| e["name"] == INDEX_ENV).unwrap();
        assert_eq!(
            index_env["valueFrom"]["fieldRef"]["fieldPath"],
            INDEX_ANNOTATION
        );
        // Guaranteed QoS: requests equal limits.
        assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
        // Every mount names a volume; the plan comes from the ConfigMap printed beside it.
        let volumes = pod["volumes"].as_array().unwrap();
        for mount in c["volumeMounts"].as_array().unwrap() {
            assert!(
                volumes.iter().any(|v| v["name"] == mount["name"]),
                "{mount}"
            );
        }
        assert_eq!(
            volumes[0]["configMap"]["name"],
            m.config_map["metadata"]["name"]
        );
        assert_eq!(volumes[1]["persistentVolumeClaim"]["claimName"], "rows");
        let plan_text = m.config_map["data"][PLAN_JSON].as_str().unwrap();
        assert!(plan_text.contains("plan_sha256"));
        // The deadline leaves room for the lead time, the schedule and a request timeout.
        assert!(spec["activeDeadlineSeconds"].as_u64().unwrap() >= 300 + 4 + 30);
        assert_eq!(m.job["metadata"]["namespace"], "bench");
        assert_eq!(m.config_map["metadata"]["namespace"], "bench");
    }

    #[test]
    fn refuses_zero_shards_and_unprepared_dirs() {
        let dir = prepared_dir();
        let err = manifests(&args(dir.path(), 0), SystemTime::now()).unwrap_err();
        assert!(err.to_string().contains("--shards 0"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = manifests(&args(empty.path(), 2), SystemTime::now()).unwrap_err();
        assert!(err.to_string().contains("plan.json"), "{err}");
    }

    #[test]
    fn yaml_of_nested_values() {
        let v = json!({"a": [{"b": 1, "c": ["x"]}, 2], "d": {}, "e f": "q\"\n"});
        assert_eq!(
            to_yaml(&v),
            "a:\n  - b: 1\n    c:\n      - \"x\"\n  - 2\nd: {}\n\"e f\": \"q\\\"\\n\"\n"
        );
    }
}
