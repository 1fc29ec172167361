//! Runtime facts: where an instance runs (provider, region, memory, CPU, VM/boot id, host).
//!
//! They let a result row be split by hardware or host after the fact (e.g. "were the slow cold
//! starts all on one CPU model?"). They are gathered once per process; anything that cannot be
//! read is `null`, never an error, because a sandbox may hide `/proc`.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Facts about the runtime an instance runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeFacts {
    /// `STELLAR_PROVIDER`, or `"unknown"`.
    pub provider: String,
    /// `STELLAR_REGION`, else `AWS_REGION`.
    pub region: Option<String>,
    /// `STELLAR_MEMORY_MB`, else `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (if an integer).
    pub memory_mb: Option<u64>,
    /// `std::env::consts::ARCH`, e.g. `x86_64`.
    pub arch: String,
    /// The first `model name` in `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`: distinguishes VMs/kernels.
    pub boot_id: Option<String>,
    /// `/proc/sys/kernel/hostname`.
    pub hostname: Option<String>,
    /// The process id.
    pub pid: u32,
    /// `std::thread::available_parallelism`.
    pub num_cpus: Option<u64>,
    /// `btime` of `/proc/stat`: when the kernel booted (Unix seconds). With `boot_id` it names
    /// the VM an instance runs in (SAAF uses it as a VM id).
    #[serde(default)]
    pub boot_time_unix_s: Option<u64>,
    /// The platform's initialisation type where it says one (`AWS_LAMBDA_INITIALIZATION_TYPE`:
    /// `on-demand`, `provisioned-concurrency`, `snap-start`, ...).
    #[serde(default)]
    pub init_type: Option<String>,
}

/// Default provider name when `STELLAR_PROVIDER` is unset.
pub const UNKNOWN_PROVIDER: &str = "unknown";

const CPUINFO: &str = "/proc/cpuinfo";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
const HOSTNAME: &str = "/proc/sys/kernel/hostname";
const STAT: &str = "/proc/stat";
/// Variables that name how the platform initialised the instance.
pub const INIT_TYPE_ENV_VARS: [&str; 1] = ["AWS_LAMBDA_INITIALIZATION_TYPE"];

impl RuntimeFacts {
    /// Reads the facts of this process from the environment and `/proc`.
    #[must_use]
    pub fn gather() -> Self {
        Self::from_sources(
            |var| std::env::var(var).ok(),
            |path| fs_err::read_to_string(path).ok(),
        )
    }

    /// Builds the facts from an environment lookup and a file reader (both return `None` when
    /// unavailable). `arch`, `pid` and `num_cpus` always come from this process.
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        read: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let env = |var: &str| env(var).filter(|v| !v.trim().is_empty());
        let first_env = |vars: &[&str]| vars.iter().find_map(|v| env(v));
        Self {
            provider: env("STELLAR_PROVIDER").unwrap_or_else(|| UNKNOWN_PROVIDER.to_owned()),
            region: first_env(&["STELLAR_REGION", "AWS_REGION"]),
            memory_mb: first_env(&["STELLAR_MEMORY_MB", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
                .and_then(|v| v.trim().parse().ok()),
            arch: std::env::consts::ARCH.to_owned(),
            cpu_model: read(CPUINFO).and_then(|text| cpu_model(&text)),
            boot_id: read(BOOT_ID).and_then(trimmed),
            hostname: read(HOSTNAME).and_then(trimmed),
            pid: std::process::id(),
            num_cpus: std::thread::available_parallelism()
                .ok()
                .and_then(|n| u64::try_from(n.get()).ok()),
            boot_time_unix_s: read(STAT).and_then(|text| boot_time(&text)),
            init_type: first_env(&INIT_TYPE_ENV_VARS),
        }
    }
}

/// The process-global facts, gathered on first call.
pub fn global() -> &'static RuntimeFacts {
    static FACTS: OnceLock<RuntimeFacts> = OnceLock::new();
    FACTS.get_or_init(RuntimeFacts::gather)
}

fn trimmed(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// The `btime <seconds>` line of `/proc/stat`.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The value of the first `model name : ...` line.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if key.trim() == "model name" {
            trimmed(value.to_owned())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn facts(env: &[(&str, &str)], files: &[(&str, &str)]) -> RuntimeFacts {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let files: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RuntimeFacts::from_sources(|k| env.get(k).cloned(), |p| files.get(p).cloned())
    }

    #[test]
    fn nothing_readable_gives_nulls() {
        let f = facts(&[], &[]);
        assert_eq!(f.provider, "unknown");
        assert_eq!(f.region, None);
        assert_eq!(f.memory_mb, None);
        assert_eq!(f.cpu_model, None);
        assert_eq!(f.boot_id, None);
        assert_eq!(f.hostname, None);
        assert_eq!(f.boot_time_unix_s, None);
        assert_eq!(f.init_type, None);
        assert_eq!(f.arch, std::env::consts::ARCH);
        assert_eq!(f.pid, std::process::id());
    }

    #[test]
    fn stellar_vars_win_over_aws_vars() {
        let f = facts(
            &[
                ("STELLAR_PROVIDER", "aws"),
                ("STELLAR_REGION", "eu-west-1"),
                ("AWS_REGION", "us-west-1"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1536"),
            ],
            &[],
        );
        assert_eq!(f.provider, "aws");
        assert_eq!(f.region.as_deref(), Some("eu-west-1"));
        assert_eq!(f.memory_mb, Some(1536));
        let f = facts(&[("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")], &[]);
        assert_eq!(f.init_type.as_deref(), Some("snap-start"));
        let f = facts(
            &[("AWS_REGION", "us-west-1"), ("STELLAR_MEMORY_MB", "x")],
            &[],
        );
        assert_eq!(f.region.as_deref(), Some("us-west-1"));
        assert_eq!(f.memory_mb, None);
    }

    #[test]
    fn proc_files_are_parsed() {
        let f = facts(
            &[],
            &[
                (
                    CPUINFO,
                    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nmodel name\t: other\n",
                ),
                (BOOT_ID, "5f1c2e3a-0000-4000-8000-000000000001\n"),
                (HOSTNAME, "sandbox-1\n"),
                (STAT, "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            ],
        );
        assert_eq!(f.boot_time_unix_s, Some(1_700_000_000));
        assert_eq!(
            f.cpu_model.as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(
            f.boot_id.as_deref(),
            Some("5f1c2e3a-0000-4000-8000-000000000001")
        );
        assert_eq!(f.hostname.as_deref(), Some("sandbox-1"));
    }

    #[test]
    fn cpuinfo_without_model_name_is_null() {
        let f = facts(&[], &[(CPUINFO, "processor : 0\nCPU part : 0xd0c\n")]);
        assert_eq!(f.cpu_model, None);
    }

    #[test]
    fn gather_does_not_fail() {
        let f = RuntimeFacts::gather();
        assert_eq!(f.pid, std::process::id());
        assert!(f.num_cpus.is_some_and(|n| n >= 1));
    }
}
