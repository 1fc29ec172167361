//! Instance identity: which process (= serverless instance) served a request, and whether the
//! request was its first (cold) one.
//!
//! Providers do not tell a function whether it is cold, so the function keeps a process-global
//! record created once at start: a random id, the start time and an atomic invocation counter.
//! The first invocation a process handles is cold; every later one is warm.
//!
//! Besides the flag it keeps the signals a client needs to tell *why* a first request was
//! first (see `stellar_results::labels`): when the process became ready to serve
//! ([`Instance::mark_ready`]), a nonce drawn at the first request (not at start, so copies of a
//! snapshot restored into several instances still differ), the platform's own name for the
//! instance (stable across a process restart in the same instance), the in-flight count at
//! receipt and whether the process's first request was still unanswered.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One instance's identity and invocation counter.
#[derive(Debug)]
pub struct Instance {
    id: String,
    start_unix_ns: u64,
    invocations: AtomicU64,
    /// Requests received and not finished.
    in_flight: AtomicU64,
    /// The first request has finished.
    first_done: AtomicBool,
    /// When the process could first serve (0 = not yet recorded).
    ready_unix_ns: AtomicU64,
    /// Drawn at the first request.
    nonce: OnceLock<String>,
    /// The platform's name for the instance, when it gives one.
    platform_id: Option<String>,
}

/// Where one invocation falls in its instance's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvocationSeq {
    /// True exactly for the instance's first invocation.
    pub cold: bool,
    /// 1-based count of invocations on this instance, including this one.
    pub invocations_on_instance: u64,
    /// Other requests in flight on this process when this one was received.
    pub in_flight_at_receipt: u64,
    /// The process's first request had not finished when this one was received (false for
    /// the first request itself).
    pub first_in_flight: bool,
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
            in_flight: AtomicU64::new(0),
            first_done: AtomicBool::new(false),
            ready_unix_ns: AtomicU64::new(0),
            nonce: OnceLock::new(),
            platform_id: None,
        }
    }

    /// The same identity with the platform's name for the instance.
    #[must_use]
    pub fn with_platform_id(mut self, platform_id: Option<String>) -> Self {
        self.platform_id = platform_id;
        self
    }

    /// The platform's name for the instance (see [`PLATFORM_INSTANCE_ENV_VARS`]).
    #[must_use]
    pub fn platform_id(&self) -> Option<&str> {
        self.platform_id.as_deref()
    }

    /// Records that the process can serve from now on (listening, or about to poll the
    /// Runtime API). Only the first call counts.
    pub fn mark_ready(&self) {
        self.mark_ready_at(crate::unix_ns_now());
    }

    /// [`Self::mark_ready`] at a given time (Unix ns).
    pub fn mark_ready_at(&self, unix_ns: u64) {
        let _ = self.ready_unix_ns.compare_exchange(
            0,
            unix_ns.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// When the process became ready to serve, if recorded.
    #[must_use]
    pub fn ready_unix_ns(&self) -> Option<u64> {
        Some(self.ready_unix_ns.load(Ordering::Relaxed)).filter(|&ns| ns != 0)
    }

    /// The per-process nonce; `None` before the first request.
    #[must_use]
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.get().map(String::as_str)
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
    /// Call it when the request is received and pair it with [`Self::end_invocation`]; the
    /// first call also draws the process nonce.
    pub fn begin_invocation(&self) -> InvocationSeq {
        let before = self.invocations.fetch_add(1, Ordering::SeqCst);
        let in_flight_at_receipt = self.in_flight.fetch_add(1, Ordering::SeqCst);
        if before == 0 {
            self.nonce.get_or_init(crate::random_hex_id);
        }
        InvocationSeq {
            cold: before == 0,
            invocations_on_instance: before.saturating_add(1),
            in_flight_at_receipt,
            first_in_flight: before > 0 && !self.first_done.load(Ordering::SeqCst),
        }
    }

    /// The invocation `seq` has finished (replied or failed).
    pub fn end_invocation(&self, seq: InvocationSeq) {
        if seq.cold {
            self.first_done.store(true, Ordering::SeqCst);
        }
        // Never below zero, even if a caller ends more than it began.
        let _ = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
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

/// Variables naming the platform's instance (its sandbox, container or slot) rather than the
/// process, in priority order: Azure Flex/Linux consumption (`CONTAINER_NAME`,
/// `WEBSITE_POD_NAME`), Azure dedicated (`WEBSITE_INSTANCE_ID`), Alibaba FC (`FC_INSTANCE_ID`),
/// AWS Lambda (`AWS_LAMBDA_LOG_STREAM_NAME`: one log stream per execution environment) and
/// stellar's local runtime (`STELLAR_LOCAL_INSTANCE_ID`: the instance slot, kept when the
/// process in it is restarted). A process that is first on an instance id already seen is a
/// process restart, not a new instance.
pub const PLATFORM_INSTANCE_ENV_VARS: [&str; 6] = [
    "CONTAINER_NAME",
    "WEBSITE_POD_NAME",
    "WEBSITE_INSTANCE_ID",
    "FC_INSTANCE_ID",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "STELLAR_LOCAL_INSTANCE_ID",
];

/// The first non-empty [`PLATFORM_INSTANCE_ENV_VARS`].
pub fn platform_id_from_env(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    PLATFORM_INSTANCE_ENV_VARS.iter().find_map(|var| {
        env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

impl Instance {
    /// A new identity named by the platform where it names instances (Azure's container,
    /// else Knative's pod name, else the first non-empty [`INSTANCE_ID_ENV_VARS`], else Cloud
    /// Run's metadata server, which is not asked on Knative),
    /// else a random id. The platform instance id is the first of
    /// [`PLATFORM_INSTANCE_ENV_VARS`], else Cloud Run's instance id (it names the container
    /// instance, so a process restarted in it keeps it).
    #[must_use]
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let knative_id = crate::knative::instance_id_from_env(&env);
        let cloud_run_id = if crate::knative::on_knative(&env) {
            None
        } else {
            crate::cloud_run::instance_id_from_env(&env)
        };
        let id = crate::azure::instance_id_from_env(&env)
            .or_else(|| knative_id.clone())
            .or_else(|| {
                INSTANCE_ID_ENV_VARS.iter().find_map(|var| {
                    env(var)
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                })
            })
            .or_else(|| cloud_run_id.clone())
            .unwrap_or_else(crate::random_hex_id);
        let platform_id = platform_id_from_env(&env).or(knative_id).or(cloud_run_id);
        Self::with_id(id, crate::unix_ns_now()).with_platform_id(platform_id)
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
    fn receipt_signals_follow_the_first_request() {
        let inst = Instance::with_id("x".into(), 5);
        assert_eq!(inst.nonce(), None, "no nonce before the first request");
        assert_eq!(inst.ready_unix_ns(), None);
        inst.mark_ready_at(7);
        inst.mark_ready_at(9);
        assert_eq!(inst.ready_unix_ns(), Some(7), "only the first mark counts");
        let first = inst.begin_invocation();
        let nonce = inst.nonce().map(str::to_owned);
        assert_eq!(nonce.as_deref().map(str::len), Some(16));
        let queued = inst.begin_invocation();
        assert!(first.cold && !first.first_in_flight);
        assert_eq!(first.in_flight_at_receipt, 0);
        assert!(!queued.cold && queued.first_in_flight);
        assert_eq!(queued.in_flight_at_receipt, 1);
        inst.end_invocation(first);
        let later = inst.begin_invocation();
        assert!(!later.first_in_flight);
        assert_eq!(later.in_flight_at_receipt, 1);
        inst.end_invocation(queued);
        inst.end_invocation(later);
        inst.end_invocation(later);
        assert_eq!(inst.begin_invocation().in_flight_at_receipt, 0);
        assert_eq!(inst.nonce().map(str::to_owned), nonce, "drawn once");
    }

    #[test]
    fn platform_ids_come_from_the_first_variable_set() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |v: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == v)
                    .map(|(_, val)| (*val).to_owned())
            }
        };
        assert_eq!(platform_id_from_env(env(&[])), None);
        assert_eq!(
            platform_id_from_env(env(&[
                ("STELLAR_LOCAL_INSTANCE_ID", "slot-3"),
                ("FC_INSTANCE_ID", " c-1 ")
            ])),
            Some("c-1".to_owned())
        );
        let local = Instance::from_env(env(&[("STELLAR_LOCAL_INSTANCE_ID", "slot-3")]));
        assert_eq!(local.platform_id(), Some("slot-3"));
        assert_eq!(local.id().len(), 16, "the process id stays random");
    }

    #[test]
    fn new_instances_get_distinct_ids() {
        assert_ne!(Instance::new().id(), Instance::new().id());
    }
}
