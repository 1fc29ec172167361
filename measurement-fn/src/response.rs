//! The response: what one invocation reports back, and [`handle`], which produces it.
//!
//! The type is shared by the function (which serializes it) and the host (which deserializes
//! it), so the JSON keys are defined in exactly one place. `RequestID` and `TimestampChain` keep
//! STeLLAR's names so STeLLAR's client can read the response too.

use crate::facts::{self, RuntimeFacts};
use crate::instance::{self, Instance};
use crate::request::Invocation;
use serde::{Deserialize, Serialize};

/// The JSON body of a successful invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementResponse {
    /// The request's `RequestID` parameter, or 16 random hex chars.
    #[serde(rename = "RequestID")]
    pub request_id: String,
    /// STeLLAR's chain: `[handler_received_unix_ns]` as a decimal string.
    #[serde(rename = "TimestampChain")]
    pub timestamp_chain: Vec<String>,
    /// The serving instance (process), 16 hex chars.
    pub instance_id: String,
    /// True exactly for the first invocation the instance handled.
    pub cold: bool,
    /// 1-based count of invocations on this instance, including this one.
    pub invocations_on_instance: u64,
    /// When the instance (process) started, Unix ns.
    pub instance_start_unix_ns: u64,
    /// When the handler received the request, Unix ns.
    pub handler_received_unix_ns: u64,
    /// When the handler finished its work, Unix ns.
    pub handler_done_unix_ns: u64,
    /// Monotonic time spent spinning (both phases), ns.
    pub spin_ns: u64,
    /// The `SpinMs` asked for (0 if absent).
    pub spin_requested_ms: f64,
    /// Increment-loop iterations done (`IncrementLimit`).
    pub increments: u64,
    /// The `PayloadLengthBytes` parameter.
    pub payload_length_bytes: u64,
    /// Where the instance runs.
    pub runtime: RuntimeFacts,
    /// When the process became ready to serve (listening, or about to poll the Lambda Runtime
    /// API), Unix ns on the function's clock; `handler_received_unix_ns` minus this is the
    /// gap that tells a platform's pre-started instance from a cold start.
    #[serde(default)]
    pub ready_unix_ns: Option<u64>,
    /// 16 hex chars drawn at the process's first request (not at start: copies of a restored
    /// snapshot differ).
    #[serde(default)]
    pub process_nonce: Option<String>,
    /// The platform's name for the instance, stable across a process restart in it (see
    /// [`crate::instance::PLATFORM_INSTANCE_ENV_VARS`]); `None` where the platform names none.
    #[serde(default)]
    pub platform_instance_id: Option<String>,
    /// Other requests in flight on the process when this one was received.
    #[serde(default)]
    pub in_flight_at_receipt: Option<u64>,
    /// The process's first request was still unanswered when this one was received.
    #[serde(default)]
    pub first_in_flight: Option<bool>,
    /// Data-transfer chains only: every hop's timestamps, instance ids and hash checks (see
    /// [`crate::chain`]); absent from ordinary replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::chain::ChainReport>,
}

/// Handles one invocation on the process-global instance, received now.
#[must_use]
pub fn handle(inv: &Invocation) -> MeasurementResponse {
    handle_received_at(inv, crate::unix_ns_now())
}

/// Handles one invocation on the process-global instance. `received_unix_ns` is when the entry
/// point got the request (taken before any queueing, e.g. before moving to a blocking thread).
#[must_use]
pub fn handle_received_at(inv: &Invocation, received_unix_ns: u64) -> MeasurementResponse {
    handle_with(instance::global(), facts::global(), inv, received_unix_ns)
}

/// Handles one invocation on a given instance with given facts: counts it, spins, timestamps.
#[must_use]
pub fn handle_with(
    instance: &Instance,
    facts: &RuntimeFacts,
    inv: &Invocation,
    received_unix_ns: u64,
) -> MeasurementResponse {
    let seq = instance.begin_invocation();
    let response = handle_begun(instance, facts, inv, received_unix_ns, seq);
    instance.end_invocation(seq);
    response
}

/// [`handle_with`] for an invocation already counted with [`Instance::begin_invocation`] at
/// receipt (the caller ends it): spins and timestamps.
#[must_use]
pub fn handle_begun(
    instance: &Instance,
    facts: &RuntimeFacts,
    inv: &Invocation,
    received_unix_ns: u64,
    seq: crate::instance::InvocationSeq,
) -> MeasurementResponse {
    let outcome = crate::spin::spin(inv.spin_ms, inv.increment_limit);
    let done = crate::unix_ns_now();
    MeasurementResponse {
        request_id: inv.request_id.clone().unwrap_or_else(crate::random_hex_id),
        timestamp_chain: vec![received_unix_ns.to_string()],
        instance_id: instance.id().to_owned(),
        cold: seq.cold,
        invocations_on_instance: seq.invocations_on_instance,
        instance_start_unix_ns: instance.start_unix_ns(),
        handler_received_unix_ns: received_unix_ns,
        handler_done_unix_ns: done,
        spin_ns: u64::try_from(outcome.elapsed.as_nanos()).unwrap_or(u64::MAX),
        spin_requested_ms: inv.spin_ms,
        increments: outcome.increments,
        payload_length_bytes: inv.payload_length_bytes,
        runtime: facts.clone(),
        ready_unix_ns: instance.ready_unix_ns(),
        process_nonce: instance.nonce().map(str::to_owned),
        platform_instance_id: instance.platform_id().map(str::to_owned),
        in_flight_at_receipt: Some(seq.in_flight_at_receipt),
        first_in_flight: Some(seq.first_in_flight),
        chain: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn test_facts() -> RuntimeFacts {
        RuntimeFacts::from_sources(|_| None, |_| None)
    }

    #[test]
    fn cold_then_warm_with_counter() {
        let inst = Instance::with_id("abcdef0123456789".into(), 1);
        let facts = test_facts();
        let inv = Invocation::default();
        let a = handle_with(&inst, &facts, &inv, 10);
        let b = handle_with(&inst, &facts, &inv, 20);
        assert!(a.cold);
        assert!(!b.cold);
        assert_eq!(a.invocations_on_instance, 1);
        assert_eq!(b.invocations_on_instance, 2);
        assert_eq!(a.instance_id, "abcdef0123456789");
        assert_eq!(b.instance_id, a.instance_id);
        assert_eq!(a.instance_start_unix_ns, 1);
        assert_eq!(a.timestamp_chain, vec!["10".to_owned()]);
        assert_eq!(a.handler_received_unix_ns, 10);
        assert!(a.handler_done_unix_ns >= a.handler_received_unix_ns);
        assert_eq!(a.request_id.len(), 16);
        assert_ne!(a.request_id, b.request_id);
    }

    #[test]
    fn spin_and_parameters_are_reported() {
        let inst = Instance::new();
        let inv = Invocation::from_query(
            "SpinMs=20&IncrementLimit=1000&PayloadLengthBytes=77&RequestID=req-9",
        )
        .unwrap();
        let r = handle_with(&inst, &test_facts(), &inv, crate::unix_ns_now());
        assert!(r.spin_ns >= 20_000_000, "{}", r.spin_ns);
        assert!(r.handler_done_unix_ns - r.handler_received_unix_ns >= 20_000_000);
        assert_eq!(r.spin_requested_ms, 20.0);
        assert_eq!(r.increments, 1000);
        assert_eq!(r.payload_length_bytes, 77);
        assert_eq!(r.request_id, "req-9");
    }

    #[test]
    fn json_keys_are_exact_and_round_trip() {
        let inst = Instance::with_id("0011223344556677".into(), 3);
        let r = handle_with(&inst, &test_facts(), &Invocation::default(), 42);
        let v = serde_json::to_value(&r).unwrap();
        let Value::Object(map) = &v else {
            panic!("not an object: {v}")
        };
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let mut expected = vec![
            "RequestID",
            "TimestampChain",
            "instance_id",
            "cold",
            "invocations_on_instance",
            "instance_start_unix_ns",
            "handler_received_unix_ns",
            "handler_done_unix_ns",
            "spin_ns",
            "spin_requested_ms",
            "increments",
            "payload_length_bytes",
            "runtime",
            "ready_unix_ns",
            "process_nonce",
            "platform_instance_id",
            "in_flight_at_receipt",
            "first_in_flight",
        ];
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected);
        let Some(Value::Object(rt)) = map.get("runtime") else {
            panic!("runtime missing: {v}")
        };
        let mut rt_keys: Vec<&str> = rt.keys().map(String::as_str).collect();
        rt_keys.sort_unstable();
        assert_eq!(
            rt_keys,
            [
                "arch",
                "boot_id",
                "boot_time_unix_s",
                "cpu_model",
                "hostname",
                "init_type",
                "memory_mb",
                "num_cpus",
                "pid",
                "provider",
                "region"
            ]
        );
        assert_eq!(rt.get("region"), Some(&Value::Null));
        assert_eq!(v.get("TimestampChain"), Some(&serde_json::json!(["42"])));

        let text = serde_json::to_string(&r).unwrap();
        let back: MeasurementResponse = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        // Replies of functions from before the receipt signals still parse.
        let mut old = v.clone();
        for key in [
            "ready_unix_ns",
            "process_nonce",
            "platform_instance_id",
            "in_flight_at_receipt",
            "first_in_flight",
        ] {
            old.as_object_mut().unwrap().remove(key);
        }
        let old: MeasurementResponse = serde_json::from_value(old).unwrap();
        assert_eq!(old.process_nonce, None);
        assert_eq!(old.first_in_flight, None);
    }

    #[test]
    fn receipt_signals_are_reported() {
        let inst =
            Instance::with_id("abcdef0123456789".into(), 1).with_platform_id(Some("slot-1".into()));
        inst.mark_ready_at(5);
        let facts = test_facts();
        let first_seq = inst.begin_invocation();
        let queued = handle_with(&inst, &facts, &Invocation::default(), 20);
        let first = handle_begun(&inst, &facts, &Invocation::default(), 10, first_seq);
        inst.end_invocation(first_seq);
        assert!(first.cold && !queued.cold);
        assert_eq!(queued.first_in_flight, Some(true));
        assert_eq!(first.first_in_flight, Some(false));
        assert_eq!(queued.in_flight_at_receipt, Some(1));
        assert_eq!(first.ready_unix_ns, Some(5));
        assert_eq!(first.platform_instance_id.as_deref(), Some("slot-1"));
        assert!(first.process_nonce.is_some());
        assert_eq!(first.process_nonce, queued.process_nonce);
    }

    #[test]
    fn global_handle_uses_one_instance() {
        let a = handle(&Invocation::default());
        let b = handle(&Invocation::default());
        assert_eq!(a.instance_id, b.instance_id);
        assert_eq!(a.instance_id, instance::global().id());
        assert!(b.invocations_on_instance > a.invocations_on_instance);
        assert!(!b.cold);
    }
}
