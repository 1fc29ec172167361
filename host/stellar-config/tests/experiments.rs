//! Every experiment file shipped in the repository's `experiments/` directory must load and
//! plan, so the examples cannot rot; the quickstart must also stay quick. The copies of
//! STeLLAR's own files in `experiments/stellar-compat/` must stay byte-for-byte copies (checked
//! by their git blob ids) and plan, with the ignored fields and warnings expected of them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stellar_config::{PackageType, Plan, PlanOptions, ProviderKind, SeedSource};

fn experiments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

/// All `*.json` files under `dir`, recursively, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs_err::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("readable directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn plan(path: &Path) -> Plan {
    Plan::from_file(
        path,
        &PlanOptions {
            now_unix_ms: 1,
            ..PlanOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_experiment_file_plans() {
    let files = json_files(&experiments_dir());
    assert!(files.len() >= 5, "found only {files:?}");
    for file in &files {
        let plan = plan(file);
        assert!(plan.total_requests() > 0, "{}", file.display());
        for sub in &plan.sub_experiments {
            assert!(!sub.bursts.is_empty(), "{}: {}", file.display(), sub.slug);
        }
    }
}

#[test]
fn data_transfer_experiments_cover_the_papers_shapes() {
    let dir = experiments_dir().join("local");
    let inline = plan(&dir.join("data-transfer-inline.json"));
    let storage = plan(&dir.join("data-transfer-storage.json"));
    for (plan, stored) in [(&inline, false), (&storage, true)] {
        let lengths: Vec<u32> = plan
            .sub_experiments
            .iter()
            .map(|s| s.data_transfer_chain_length)
            .collect();
        assert!(lengths.contains(&2) && lengths.contains(&8), "{lengths:?}");
        assert!(
            plan.sub_experiments
                .iter()
                .all(|s| s.storage_transfer == stored)
        );
        assert!(plan.ignored.is_empty(), "{:?}", plan.ignored);
    }
    let payloads = |p: &Plan| -> Vec<u64> {
        p.sub_experiments
            .iter()
            .map(|s| s.payload_length_bytes)
            .collect()
    };
    assert_eq!(payloads(&inline).iter().min(), Some(&1024));
    assert_eq!(payloads(&inline).iter().max(), Some(&(4 << 20)));
    assert_eq!(payloads(&storage).iter().max(), Some(&(256 << 20)));
}

#[test]
fn local_experiments_are_seeded() {
    for file in json_files(&experiments_dir()) {
        let plan = plan(&file);
        if plan.provider.is_local() {
            assert_eq!(
                plan.seed_source,
                SeedSource::File,
                "{} needs a Stellar.Seed",
                file.display()
            );
        }
    }
}

#[test]
fn quickstart_is_quick_and_shows_warm_and_cold() {
    let plan = plan(&experiments_dir().join("quickstart.json"));
    assert_eq!(plan.provider, ProviderKind::Named("local".into()));
    assert!(plan.sequential);
    assert!(
        plan.duration_estimate() < Duration::from_secs(30),
        "{:?}",
        plan.duration_estimate()
    );
    let keep_alive_ms = plan.settings.local.keep_alive_ms as f64;
    // Some sub-experiment revisits its endpoints sooner than the keep-alive (warm) ...
    let min_gap = |sub: &stellar_config::SubExperimentPlan| {
        let mut gaps = Vec::new();
        for endpoint in 0..sub.parallelism {
            let mut offsets: Vec<f64> = sub
                .bursts
                .iter()
                .filter(|b| b.endpoint == endpoint)
                .map(|b| b.offset_ms)
                .collect();
            offsets.sort_by(f64::total_cmp);
            gaps.extend(offsets.windows(2).map(|w| w[1] - w[0]));
        }
        gaps.into_iter().fold(f64::INFINITY, f64::min)
    };
    assert!(
        plan.sub_experiments
            .iter()
            .any(|s| min_gap(s) < keep_alive_ms)
    );
    // ... and some only after it expired (cold again), with bursts larger than one request.
    assert!(
        plan.sub_experiments
            .iter()
            .any(|s| min_gap(s) > keep_alive_ms && s.bursts.iter().any(|b| b.size > 1))
    );
}

/// The byte-for-byte copies of STeLLAR's experiment files in `experiments/stellar-compat/`
/// (vhive-serverless/STeLLAR at 6e253425897f8d006f7f4e603049f8de61ec64c4): our name, the path
/// in STeLLAR's repository, its git blob id there, and the fields stellar lists as ignored.
const STELLAR_COPIES: [(&str, &str, &str, &[&str]); 13] = [
    (
        "aliyun-tests-hellopy.json",
        "experiments/tests/aliyun/hellopy.json",
        "0d7e687b1f112ed34435314c0fb0b4963205f639",
        &["Handler", "PackagePattern"],
    ),
    (
        "aws-burstiness-hellopy-warm-cold-cdfs.json",
        "experiments/burstiness/aws/hellopy/warm-cold-cdfs.json",
        "4be89e3afcd2ce26919421dad5c85263955f5379",
        &["Handler", "PackagePattern"],
    ),
    (
        "aws-coldboot-predictability-coldstart-cdfs.json",
        "experiments/coldboot-predictability/aws/coldstart-cdfs.json",
        "13c3abc29f08dc06bb3205216ad288cd53bb2b0a",
        &["Function", "Handler", "PackagePattern"],
    ),
    (
        "aws-data-transfer-s3-warm.json",
        "experiments/data-transfer/storage/aws-s3/warm.json",
        "c469fb795ce934423347cfab85fe2216c5e87162",
        &[],
    ),
    (
        "aws-imgsize-big-images-service-time-1s.json",
        "experiments/imgsize-burstsize-cold-starts/aws/big-images/service-time-1s.json",
        "11565b1a68bfa90f33bc5bdfbf8ad68091a448aa",
        &[],
    ),
    (
        "aws-tests-hellojava-snapstart.json",
        "experiments/tests/aws/hellojava-snapstart.json",
        "8bb9e89612cdb45fb0572c39e753ce3c3f681241",
        &["Function", "Handler", "Runtime", "SnapStartEnabled"],
    ),
    (
        "azure-burstiness-warm-cold-cdfs-reduced-parallelism.json",
        "experiments/burstiness/azure/warm-cold-cdfs-reduced-parallelism.json",
        "45f646d0f17a12853845a7810a35d8cdb3873a53",
        &[],
    ),
    (
        "cloudflare-tests-hellonode.json",
        "experiments/tests/cloudflare/hellonode.json",
        "243ea8bf0ccabba61440511f4c155c7d10b43582",
        &["Function", "Handler", "Runtime"],
    ),
    (
        "external-tests-test.json",
        "experiments/tests/test.json",
        "d43fd34507b73585dcd48c18c0502a2b988311fd",
        &[],
    ),
    (
        "gcr-tests-hellorust.json",
        "experiments/tests/gcr/hellorust.json",
        "02647a0c40b3b02fd79572b34d020d188f9c6f6f",
        &["Function", "Handler", "Runtime"],
    ),
    (
        "google-imgsize-burstsize-service-time-0ms.json",
        "experiments/imgsize-burstsize-cold-starts/google/service-time-0ms.json",
        "5b0287dca977faaab799d94b1a89421a11aa5227",
        &[],
    ),
    (
        "vhive-coldboot-predictability-coldstart-cdfs.json",
        "experiments/coldboot-predictability/vhive/coldstart-cdfs.json",
        "90571bbc130de3828c2690ff4de696e3e7c3c425",
        &["Function", "Handler", "PackagePattern"],
    ),
    (
        "vhive-data-transfer-inline-warm.json",
        "experiments/data-transfer/inline/vhive/warm.json",
        "4372972941f590b7a109c7bebf745ba9886459c2",
        &[],
    ),
];

/// The two STeLLAR files that repeat a key (Go keeps the last value).
const WITH_DUPLICATE_KEYS: [&str; 2] = [
    "aws-coldboot-predictability-coldstart-cdfs.json",
    "vhive-coldboot-predictability-coldstart-cdfs.json",
];

#[test]
fn only_stellars_two_files_with_repeated_keys_have_warnings() {
    for file in json_files(&experiments_dir()) {
        let plan = plan(&file);
        let name = file.file_name().expect("file name").to_string_lossy();
        let in_compat = file.parent().is_some_and(|d| d.ends_with("stellar-compat"));
        if in_compat && WITH_DUPLICATE_KEYS.contains(&&*name) {
            let paths: Vec<&str> = plan
                .duplicate_keys
                .iter()
                .map(|d| d.json_path.as_str())
                .collect();
            assert_eq!(paths, ["SubExperiments[2].PackageType"], "{name}");
            assert_eq!(plan.duplicate_keys[0].kept, "\"Image\"");
            assert_eq!(plan.sub_experiments[2].package_type, PackageType::Image);
            assert_eq!(plan.warnings().len(), 1);
        } else {
            assert!(
                plan.warnings().is_empty() && plan.duplicate_keys.is_empty(),
                "{}: {:?}",
                file.display(),
                plan.warnings()
            );
        }
    }
}

#[test]
fn stellar_copies_are_unchanged_and_plan_with_their_ignored_fields() {
    let dir = experiments_dir().join("stellar-compat");
    let files = json_files(&dir);
    for (name, stellar_path, blob, expected_ignored) in STELLAR_COPIES {
        let file = dir.join(name);
        let bytes = fs_err::read(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            git_blob_id(&bytes),
            blob,
            "{name} must stay a byte-for-byte copy of STeLLAR's {stellar_path}"
        );
        let plan = plan(&file);
        let mut ignored: Vec<&str> = plan
            .ignored
            .iter()
            .map(|f| f.json_path.rsplit('.').next().unwrap_or_default())
            .collect();
        ignored.sort_unstable();
        ignored.dedup();
        assert_eq!(ignored, expected_ignored, "{name}");
    }
    // Besides the copies: the two files adapted from STeLLAR's shapes (see the README there).
    let copies: Vec<PathBuf> = STELLAR_COPIES.iter().map(|c| dir.join(c.0)).collect();
    let adapted: Vec<&PathBuf> = files.iter().filter(|f| !copies.contains(f)).collect();
    assert_eq!(
        adapted,
        [
            &dir.join("aws-hellopy.json"),
            &dir.join("gcr-cold-hellogo-boosted.json")
        ]
    );
    for file in adapted {
        assert!(
            !plan(file).ignored.is_empty(),
            "{} should list ignored fields",
            file.display()
        );
    }
}

/// The id git gives a file's content (`git hash-object`): SHA-1 of `blob <len>\0<content>`.
fn git_blob_id(content: &[u8]) -> String {
    use sha1::Digest as _;
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(content);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn git_blob_ids_are_computed_as_git_does() {
    // `printf 'hello\n' | git hash-object --stdin`; `git hash-object /dev/null`.
    assert_eq!(
        git_blob_id(b"hello\n"),
        "ce013625030ba8dba906f756967f9e9ca394464a"
    );
    assert_eq!(git_blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}
