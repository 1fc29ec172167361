//! Instance identity: which process (= serverless instance) served a request, and whether the
//! request was its first (cold) one.
//!
//! Providers do not tell a function whether it is cold, so the function keeps a process-global
//! record created once at start: a random id, the start time and an atomic invocation counter.
//! The first invocation a process handles is cold; every later one is warm.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// One instance's identity and invocation counter.
#[derive(Debug)]
pub struct Instance {
    id: String,
    start_unix_ns: u64,
    invocations: AtomicU64,
}

/// Where one invocation falls in its instance's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvocationSeq {
    /// True exactly for the instance's first invocation.
    pub cold: bool,
    /// 1-based count of invocations on this instance, including this one.
    pub invocations_on_instance: u64,
}

impl Instance {
    /// A new identity: 16 random hex chars (OS-seeded RNG) and the current time.
    #[must_use]
    pub fn new() -> Self {
        Self::with_id(crate::random_hex_id(), crate::unix_ns_now())
    }

    /// An identity with a given id and start time (for tests and embedding).
    #[must_use]
    pub fn with_id(id: String, start_unix_ns: u64) -> Self {
        Self {
            id,
            start_unix_ns,
            invocations: AtomicU64::new(0),
        }
    }

    /// The instance id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the instance identity was created, in Unix nanoseconds.
    #[must_use]
    pub fn start_unix_ns(&self) -> u64 {
        self.start_unix_ns
    }

    /// Counts one invocation and says whether it is the first. Safe to call concurrently:
    /// exactly one caller ever sees `cold == true`.
    pub fn begin_invocation(&self) -> InvocationSeq {
        let before = self.invocations.fetch_add(1, Ordering::Relaxed);
        InvocationSeq {
            cold: before == 0,
            invocations_on_instance: before.saturating_add(1),
        }
    }

    /// Invocations counted so far.
    #[must_use]
    pub fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::Relaxed)
    }
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

/// Variables a platform sets to the id of the instance a process runs in (Alibaba FC's
/// `FC_INSTANCE_ID`); the first non-empty one is the instance id, so rows can be matched with
/// the platform's own records. Azure's container name is read by
/// [`crate::azure::instance_id_from_env`] (only under a custom handler), Cloud Run's instance
/// id by [`crate::cloud_run::instance_id_from_env`] (only when `K_SERVICE` is set).
pub const INSTANCE_ID_ENV_VARS: [&str; 1] = ["FC_INSTANCE_ID"];

impl Instance {
    /// A new identity named by the platform where it names instances (Azure's container,
    /// else the first non-empty [`INSTANCE_ID_ENV_VARS`], else Cloud Run's metadata server),
    /// else a random id.
    #[must_use]
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let id = crate::azure::instance_id_from_env(&env)
            .or_else(|| {
                INSTANCE_ID_ENV_VARS.iter().find_map(|var| {
                    env(var)
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                })
            })
            .or_else(|| crate::cloud_run::instance_id_from_env(&env))
            .unwrap_or_else(crate::random_hex_id);
        Self::with_id(id, crate::unix_ns_now())
    }
}

/// The process-global instance, created on first call ([`Instance::from_env`]). Entry points
/// call this at process start (before announcing readiness) so `start_unix_ns` is the process
/// start.
pub fn global() -> &'static Instance {
    static INSTANCE: OnceLock<Instance> = OnceLock::new();
    INSTANCE.get_or_init(|| Instance::from_env(|var| std::env::var(var).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_only_on_first_invocation_and_counter_increments() {
        let inst = Instance::with_id("x".into(), 5);
        assert_eq!(inst.invocations(), 0);
        let seqs: Vec<_> = (0..4).map(|_| inst.begin_invocation()).collect();
        assert_eq!(
            seqs.iter().map(|s| s.cold).collect::<Vec<_>>(),
            [true, false, false, false]
        );
        assert_eq!(
            seqs.iter()
                .map(|s| s.invocations_on_instance)
                .collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(inst.invocations(), 4);
        assert_eq!(inst.id(), "x");
        assert_eq!(inst.start_unix_ns(), 5);
    }

    #[test]
    fn exactly_one_cold_under_concurrency() {
        let inst = Instance::new();
        let colds: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..100).filter(|_| inst.begin_invocation().cold).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(colds, 1);
        assert_eq!(inst.invocations(), 800);
    }

    #[test]
    fn platform_instance_ids_are_used() {
        let fc = Instance::from_env(|v| (v == "FC_INSTANCE_ID").then(|| "c-65f1a2b3".to_owned()));
        assert_eq!(fc.id(), "c-65f1a2b3");
        let blank = Instance::from_env(|_| Some("  ".to_owned()));
        assert_eq!(blank.id().len(), 16);
    }

    #[test]
    fn global_is_created_once() {
        assert!(std::ptr::eq(global(), global()));
        assert_eq!(global().id().len(), 16);
    }

    #[test]
    fn new_instances_get_distinct_ids() {
        assert_ne!(Instance::new().id(), Instance::new().id());
    }
}
