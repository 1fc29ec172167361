//! The runtime's shared state: deployed functions, their instance slots, every instance record,
//! and the scheduling decisions made on them.
//!
//! Everything mutable sits behind one `std::sync::Mutex`, held only for bookkeeping (never
//! across an await), so the gateway's hot path costs two short critical sections per request:
//! one to admit it to an instance, one to release the instance when its response has ended.
//!
//! Scheduling policy: a request goes to the *most recently used* instance of the current
//! function version that has a free slot (`in_flight < instance_concurrency`). Concentrating
//! load on few instances lets the others reach their keep-alive and stop, the way clouds shrink
//! an idle fleet, so inter-arrival times above the keep-alive reliably see cold starts. With no
//! free slot, a new instance is spawned (a real cold start, reserved for the request that
//! caused it) unless the function already has `max_instances` live or starting instances of
//! its current version (then 429). Instances of older versions (after an update) are drained:
//! they get no new requests and stop once idle; they do not count against `max_instances`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::api::{
    ErrorKind, FunctionInfo, FunctionSpec, InstanceOrigin, InstanceRecord, StartTruth, StopReason,
};
use crate::artifacts::{ArtifactStore, is_sha256_hex};
use crate::error::ApiError;
use crate::instance::{self, SpawnPlan};

/// Longest function name.
const MAX_NAME_LEN: usize = 64;

/// What a ready instance reported, as the gateway needs it.
#[derive(Debug, Clone)]
pub(crate) struct ReadyInfo {
    /// Loopback port it listens on.
    pub(crate) port: u16,
    /// Its self-chosen id.
    pub(crate) instance_id: String,
    /// Spawn to READY, in milliseconds.
    pub(crate) init_ms: f64,
}

/// Outcome of a cold start, sent by the instance's supervisor to the request that caused it.
pub(crate) type ReadyResult = Result<ReadyInfo, String>;

/// Where a starting instance announces its outcome: `None` until it is ready or has failed.
pub(crate) type ReadyWatch = watch::Receiver<Option<ReadyResult>>;

/// How a request got its instance.
pub(crate) enum Admission {
    /// An instance that was already running.
    Warm(ReadyInfo),
    /// A new instance, started for this request; it resolves when the instance is ready.
    Cold(ReadyWatch),
    /// An instance another request started; it resolves when that instance is ready.
    Queued(ReadyWatch),
}

/// State shared by the servers, the instance supervisors and the [`crate::LocalRuntime`] handle.
pub(crate) struct Shared {
    /// Bearer token of the control API.
    pub(crate) token: String,
    /// Base URL of the gateway (for `FunctionInfo::url`).
    pub(crate) gateway_url: String,
    /// Working directory of instances.
    pub(crate) work_dir: PathBuf,
    /// Where executables are stored.
    pub(crate) artifacts: ArtifactStore,
    /// Longest wait for an instance's READY line.
    pub(crate) ready_timeout: Duration,
    /// Pooled HTTP/1 client towards instances; the pool is keyed by `127.0.0.1:<port>`, which
    /// makes it one keep-alive pool per instance.
    pub(crate) client: Client<HttpConnector, Incoming>,
    /// HTTP/2 (prior knowledge) client towards gRPC instances (`STELLAR_PROTOCOL=grpc`): a
    /// gRPC call arriving at the gateway is forwarded over h2c.
    pub(crate) grpc_client: Client<HttpConnector, Incoming>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    functions: BTreeMap<String, Function>,
    /// Every instance ever started, per function name; kept across delete and re-create so
    /// cold-start labels can still be checked after a teardown.
    history: BTreeMap<String, Vec<InstanceRecord>>,
    /// Supervisor tasks that may still be running (finished ones are pruned on spawn).
    supervisors: Vec<JoinHandle<()>>,
    next_key: u64,
    use_clock: u64,
    shutting_down: bool,
}

struct Function {
    spec: FunctionSpec,
    /// When it was first created (Unix ms; kept across updates), for orphan cleanup by age.
    created_unix_ms: u64,
    /// Bumped on each update; slots of older generations are draining.
    generation: u64,
    slots: Vec<Slot>,
}

/// A live or starting instance. Invariant: a slot is in its function's `slots` exactly until
/// it is told to stop (its `stop` sender is consumed when it is removed).
struct Slot {
    /// Unique within the runtime (names can be deleted and re-created; keys never repeat).
    key: u64,
    /// Index of its record in `history[name]`.
    record_idx: usize,
    generation: u64,
    /// `None` while starting.
    ready: Option<ReadyInfo>,
    /// Resolves when the current process is ready (for requests queued behind its start).
    ready_watch: ReadyWatch,
    /// Why the current process was started.
    origin: InstanceOrigin,
    /// Requests admitted to the current process.
    admitted: u64,
    /// An always-ready instance: never stopped for being idle.
    pinned: bool,
    in_flight: u32,
    /// Value of `use_clock` when it was last given a request (for most-recently-used choice).
    last_used: u64,
    /// Since when it has had no request in flight.
    idle_since: Option<Instant>,
    /// Old generation: stop as soon as idle.
    draining: bool,
    stop: oneshot::Sender<StopReason>,
    /// Wakes the supervisor when the slot becomes idle (to arm the keep-alive timer).
    idle: Arc<Notify>,
}

/// What the supervisor should do about keep-alive.
pub(crate) enum IdleState {
    /// A request is in flight (or the slot is gone): no timer.
    NoTimer,
    /// Stop at this instant unless a request arrives.
    ExpiresAt(Instant),
}

/// Identifies a slot and its record from outside the lock.
#[derive(Debug, Clone)]
pub(crate) struct SlotRef {
    pub(crate) name: String,
    pub(crate) key: u64,
    pub(crate) record_idx: usize,
}

/// A request's claim on an instance slot; releases it on drop.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    slot: SlotRef,
    served: bool,
    timeout: Duration,
    truth: StartTruth,
}

impl InFlight {
    /// The slot it holds.
    pub(crate) fn slot(&self) -> &SlotRef {
        &self.slot
    }

    /// The function's `timeout_s` when the request was admitted.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How the runtime served the request (ground truth for its label).
    pub(crate) fn truth(&self) -> StartTruth {
        self.truth
    }

    /// Counts the request as served by the instance (its response head arrived).
    pub(crate) fn mark_served(&mut self) {
        self.served = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.release(&self.slot, self.served);
    }
}

/// Current wall-clock time in Unix nanoseconds.
pub(crate) fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The record of a process being started in slot `key`.
fn new_record(key: u64, origin: InstanceOrigin, in_flight: u32) -> InstanceRecord {
    InstanceRecord {
        instance_id: None,
        pid: None,
        spawned_at_unix_ns: unix_ns(),
        ready_at_unix_ns: None,
        exec_to_ready_ms: None,
        requests_served: 0,
        in_flight,
        stopped_at_unix_ns: None,
        stop_reason: None,
        spawn_error: None,
        slot: slot_name(key),
        origin,
    }
}

/// The platform instance id of slot `key` (`STELLAR_LOCAL_INSTANCE_ID`).
pub(crate) fn slot_name(key: u64) -> String {
    format!("slot-{key}")
}

/// Whether `name` is a valid function name: `[a-zA-Z0-9-]{1,64}`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Index of the slot a new request should go to: among ready, non-draining slots of
/// `generation` with a free request slot, the most recently used one.
fn pick(slots: &[Slot], generation: u64, concurrency: u32) -> Option<usize> {
    slots
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.generation == generation
                && !s.draining
                && s.ready.is_some()
                && s.in_flight < concurrency
        })
        .max_by_key(|(_, s)| s.last_used)
        .map(|(i, _)| i)
}

/// Index of a starting slot a request may queue behind (instance concurrency above 1): a
/// non-draining slot of `generation`, started for a request, with a free request slot.
fn pick_starting(slots: &[Slot], generation: u64, concurrency: u32) -> Option<usize> {
    slots
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.generation == generation
                && !s.draining
                && s.ready.is_none()
                && s.origin == InstanceOrigin::Spawned
                && s.admitted > 0
                && s.in_flight < concurrency
        })
        .max_by_key(|(_, s)| s.last_used)
        .map(|(i, _)| i)
}

fn validate(name: &str, spec: &FunctionSpec) -> Result<(), ApiError> {
    if !is_valid_name(name) {
        return Err(ApiError::invalid(format!(
            "function name `{name}` must be 1 to {MAX_NAME_LEN} characters of [a-zA-Z0-9-]"
        )));
    }
    if !is_sha256_hex(&spec.artifact_sha256) {
        return Err(ApiError::invalid(format!(
            "artifact_sha256 `{}` is not a SHA-256 in lowercase hex",
            spec.artifact_sha256
        )));
    }
    for (field, value) in [
        ("memory_mb", spec.memory_mb),
        ("timeout_s", spec.timeout_s),
        ("instance_concurrency", spec.instance_concurrency),
        ("max_instances", spec.max_instances),
    ] {
        if value == 0 {
            return Err(ApiError::invalid(format!("{field} must be at least 1")));
        }
    }
    if spec.min_instances > spec.max_instances {
        return Err(ApiError::invalid(format!(
            "min_instances ({}) must not exceed max_instances ({})",
            spec.min_instances, spec.max_instances
        )));
    }
    for (key, value) in &spec.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(ApiError::invalid(format!(
                "env variable `{key}` is not usable (empty, or contains `=` or NUL)"
            )));
        }
    }
    Ok(())
}

impl Shared {
    pub(crate) fn new(
        token: String,
        gateway_url: String,
        work_dir: PathBuf,
        artifacts: ArtifactStore,
        ready_timeout: Duration,
        client: Client<HttpConnector, Incoming>,
    ) -> Self {
        Self {
            token,
            gateway_url,
            work_dir,
            artifacts,
            ready_timeout,
            client,
            grpc_client: {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                Client::builder(hyper_util::rt::TokioExecutor::new())
                    .http2_only(true)
                    .pool_timer(hyper_util::rt::TokioTimer::new())
                    .build(connector)
            },
            state: Mutex::new(State::default()),
        }
    }

    /// Locks the state. Nothing panics while holding the lock, but if something ever did, the
    /// bookkeeping is still the best information there is, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn info(&self, name: &str, f: &Function) -> FunctionInfo {
        FunctionInfo {
            name: name.to_owned(),
            url: format!("{}/{name}", self.gateway_url),
            artifact_sha256: f.spec.artifact_sha256.clone(),
            memory_mb: f.spec.memory_mb,
            timeout_s: f.spec.timeout_s,
            instance_concurrency: f.spec.instance_concurrency,
            keep_alive_ms: f.spec.keep_alive_ms,
            max_instances: f.spec.max_instances,
            min_instances: f.spec.min_instances,
            restart_on_crash: f.spec.restart_on_crash,
            tags: f.spec.tags.clone(),
            live_instances: u32::try_from(f.slots.len()).unwrap_or(u32::MAX),
            created_unix_ms: f.created_unix_ms,
        }
    }

    // ---- control plane -------------------------------------------------------------------

    /// Creates or updates a function. Returns its info and whether it was created.
    /// An update drains the existing instances: idle ones stop now, busy ones when idle.
    /// The function's `min_instances` are started (ahead of any request) before it returns.
    pub(crate) fn put_function(
        self: &Arc<Self>,
        name: &str,
        spec: FunctionSpec,
    ) -> Result<(FunctionInfo, bool), ApiError> {
        let (info, created) = self.store_function(name, spec)?;
        let mut guard = self.lock();
        let st = &mut *guard;
        for _ in 0..info.min_instances {
            self.start_slot(st, name, InstanceOrigin::Prestarted, 0);
        }
        let info = st.functions.get(name).map_or(info, |f| self.info(name, f));
        Ok((info, created))
    }

    fn store_function(
        &self,
        name: &str,
        mut spec: FunctionSpec,
    ) -> Result<(FunctionInfo, bool), ApiError> {
        spec.artifact_sha256 = spec.artifact_sha256.to_ascii_lowercase();
        validate(name, &spec)?;
        if !self.artifacts.contains(&spec.artifact_sha256) {
            return Err(ApiError::invalid(format!(
                "unknown artifact {}: upload it first with PUT /v1/artifacts/<sha256>",
                spec.artifact_sha256
            )));
        }
        let mut st = self.lock();
        if st.shutting_down {
            return Err(shutting_down());
        }
        match st.functions.get_mut(name) {
            Some(f) => {
                f.spec = spec;
                f.generation += 1;
                for slot in &mut f.slots {
                    slot.draining = true;
                }
                let (idle, busy): (Vec<Slot>, Vec<Slot>) =
                    f.slots.drain(..).partition(|s| s.in_flight == 0);
                f.slots = busy;
                for slot in idle {
                    let _ = slot.stop.send(StopReason::Updated);
                }
                tracing::info!(
                    function = name,
                    "updated; draining {} instance(s)",
                    f.slots.len()
                );
                Ok((self.info(name, f), false))
            }
            None => {
                let f = Function {
                    spec,
                    created_unix_ms: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    generation: 0,
                    slots: Vec::new(),
                };
                let info = self.info(name, &f);
                st.functions.insert(name.to_owned(), f);
                tracing::info!(function = name, "created");
                Ok((info, true))
            }
        }
    }

    /// Deletes a function and tells its instances to stop. Returns whether it existed.
    pub(crate) fn delete_function(&self, name: &str) -> bool {
        let removed = self.lock().functions.remove(name);
        match removed {
            Some(f) => {
                for slot in f.slots {
                    let _ = slot.stop.send(StopReason::Deleted);
                }
                tracing::info!(function = name, "deleted");
                true
            }
            None => false,
        }
    }

    pub(crate) fn function(&self, name: &str) -> Option<FunctionInfo> {
        let st = self.lock();
        st.functions.get(name).map(|f| self.info(name, f))
    }

    pub(crate) fn functions(&self) -> Vec<FunctionInfo> {
        let st = self.lock();
        st.functions
            .iter()
            .map(|(name, f)| self.info(name, f))
            .collect()
    }

    /// Every instance ever started under `name`, or `None` if the name was never deployed.
    pub(crate) fn instances(&self, name: &str) -> Option<Vec<InstanceRecord>> {
        let st = self.lock();
        match st.history.get(name) {
            Some(records) => Some(records.clone()),
            None => st.functions.contains_key(name).then(Vec::new),
        }
    }

    /// Refuses new work and tells every instance to stop; returns the supervisor tasks to
    /// await (each ends once its process has been killed and reaped).
    pub(crate) fn begin_shutdown(&self) -> Vec<JoinHandle<()>> {
        let mut st = self.lock();
        st.shutting_down = true;
        for f in st.functions.values_mut() {
            for slot in f.slots.drain(..) {
                let _ = slot.stop.send(StopReason::Shutdown);
            }
        }
        std::mem::take(&mut st.supervisors)
    }

    // ---- data plane ----------------------------------------------------------------------

    /// Admits a request to function `name`: claims a slot on a warm instance or starts a new
    /// one. See the module docs for the policy.
    pub(crate) fn admit(self: &Arc<Self>, name: &str) -> Result<(Admission, InFlight), ApiError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return Err(shutting_down());
        }
        let Some(f) = st.functions.get_mut(name) else {
            return Err(ApiError::not_found(format!("no function named `{name}`")));
        };
        st.use_clock += 1;
        let timeout = Duration::from_secs(f.spec.timeout_s.into());
        let concurrency = f.spec.instance_concurrency;
        if let Some(i) = pick(&f.slots, f.generation, concurrency) {
            let slot = &mut f.slots[i];
            slot.in_flight += 1;
            slot.last_used = st.use_clock;
            slot.idle_since = None;
            slot.admitted += 1;
            let truth = match (slot.admitted, slot.origin) {
                (1, InstanceOrigin::Restarted) => StartTruth::ProcessRestart,
                (1, _) => StartTruth::Prewarmed,
                _ => StartTruth::Warm,
            };
            let ready = slot.ready.clone();
            let slot_ref = SlotRef {
                name: name.to_owned(),
                key: slot.key,
                record_idx: slot.record_idx,
            };
            if let Some(record) = Self::record_mut(st, &slot_ref) {
                record.in_flight += 1;
            }
            let in_flight = InFlight {
                shared: Arc::clone(self),
                slot: slot_ref,
                served: false,
                timeout,
                truth,
            };
            // `pick` only returns ready slots.
            return match ready {
                Some(info) => Ok((Admission::Warm(info), in_flight)),
                None => Err(ApiError::internal("picked an instance that is not ready")),
            };
        }
        if let Some(i) = pick_starting(&f.slots, f.generation, concurrency) {
            let slot = &mut f.slots[i];
            slot.in_flight += 1;
            slot.last_used = st.use_clock;
            slot.admitted += 1;
            let watch = slot.ready_watch.clone();
            let slot_ref = SlotRef {
                name: name.to_owned(),
                key: slot.key,
                record_idx: slot.record_idx,
            };
            if let Some(record) = Self::record_mut(st, &slot_ref) {
                record.in_flight += 1;
            }
            let in_flight = InFlight {
                shared: Arc::clone(self),
                slot: slot_ref,
                served: false,
                timeout,
                truth: StartTruth::ColdQueued,
            };
            return Ok((Admission::Queued(watch), in_flight));
        }
        let live = f
            .slots
            .iter()
            .filter(|s| s.generation == f.generation)
            .count();
        if live >= f.spec.max_instances as usize {
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::Quota,
                format!(
                    "function `{name}` is at its max_instances ({}) and every instance is busy",
                    f.spec.max_instances
                ),
            );
            err.retry_after_s = Some(1);
            return Err(err);
        }

        let truth = if f
            .slots
            .iter()
            .any(|s| s.generation == f.generation && !s.draining && s.ready.is_some())
        {
            StartTruth::ColdScaleout
        } else {
            StartTruth::ColdNatural
        };
        let Some((slot_ref, ready_rx)) = self.start_slot(st, name, InstanceOrigin::Spawned, 1)
        else {
            return Err(ApiError::internal("the function vanished while starting"));
        };
        let in_flight = InFlight {
            shared: Arc::clone(self),
            slot: slot_ref,
            served: false,
            timeout,
            truth,
        };
        Ok((Admission::Cold(ready_rx), in_flight))
    }

    /// Adds a slot for a new process of `name` with `in_flight` requests already admitted (the
    /// lock is held) and starts its supervisor. `None` if there is no such function.
    fn start_slot(
        self: &Arc<Self>,
        st: &mut State,
        name: &str,
        origin: InstanceOrigin,
        in_flight: u32,
    ) -> Option<(SlotRef, ReadyWatch)> {
        let f = st.functions.get_mut(name)?;
        st.use_clock += 1;
        let key = st.next_key;
        st.next_key += 1;
        let records = st.history.entry(name.to_owned()).or_default();
        let record_idx = records.len();
        records.push(new_record(key, origin, in_flight));
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = watch::channel(None);
        let idle = Arc::new(Notify::new());
        f.slots.push(Slot {
            key,
            record_idx,
            generation: f.generation,
            ready: None,
            ready_watch: ready_rx.clone(),
            origin,
            admitted: u64::from(in_flight),
            pinned: origin == InstanceOrigin::Prestarted,
            in_flight,
            last_used: st.use_clock,
            idle_since: None,
            draining: false,
            stop: stop_tx,
            idle: Arc::clone(&idle),
        });
        let slot_ref = SlotRef {
            name: name.to_owned(),
            key,
            record_idx,
        };
        let plan = SpawnPlan {
            slot: slot_ref.clone(),
            program: self.artifacts.path(&f.spec.artifact_sha256),
            env: f.spec.env.clone(),
            memory_mb: f.spec.memory_mb,
            keep_alive: Duration::from_millis(f.spec.keep_alive_ms),
            ready_timeout: self.ready_timeout,
            restart_on_crash: f.spec.restart_on_crash,
            ready_tx,
            stop_rx,
            idle,
        };
        st.supervisors.retain(|h| !h.is_finished());
        st.supervisors
            .push(tokio::spawn(instance::supervise(Arc::clone(self), plan)));
        Some((slot_ref, ready_rx))
    }

    /// The process of `slot_ref` crashed and its function restarts crashed processes: keeps
    /// the slot, gives it a new record and a new ready channel. `None` when the slot is gone
    /// or draining (then the caller finishes it as crashed).
    pub(crate) fn restart_in_place(
        &self,
        slot_ref: &SlotRef,
    ) -> Option<(SlotRef, watch::Sender<Option<ReadyResult>>)> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return None;
        }
        if let Some(record) = Self::record_mut(st, slot_ref) {
            record.stopped_at_unix_ns = Some(unix_ns());
            record.stop_reason = Some(StopReason::Crashed);
        }
        let slot = st
            .functions
            .get_mut(&slot_ref.name)
            .and_then(|f| f.slots.iter_mut().find(|s| s.key == slot_ref.key))
            .filter(|s| !s.draining)?;
        let records = st.history.entry(slot_ref.name.clone()).or_default();
        let record_idx = records.len();
        records.push(new_record(slot_ref.key, InstanceOrigin::Restarted, 0));
        let (ready_tx, ready_rx) = watch::channel(None);
        slot.record_idx = record_idx;
        slot.ready = None;
        slot.ready_watch = ready_rx;
        slot.origin = InstanceOrigin::Restarted;
        slot.admitted = 0;
        slot.idle_since = None;
        Some((
            SlotRef {
                name: slot_ref.name.clone(),
                key: slot_ref.key,
                record_idx,
            },
            ready_tx,
        ))
    }

    /// Gives a request's slot back (see [`InFlight`]).
    fn release(&self, slot_ref: &SlotRef, served: bool) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some(record) = Self::record_mut(st, slot_ref) {
            record.in_flight = record.in_flight.saturating_sub(1);
            if served {
                record.requests_served += 1;
            }
        }
        let Some(f) = st.functions.get_mut(&slot_ref.name) else {
            return;
        };
        let Some(i) = f.slots.iter().position(|s| s.key == slot_ref.key) else {
            return;
        };
        let slot = &mut f.slots[i];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if slot.in_flight > 0 {
            return;
        }
        if slot.draining {
            let slot = f.slots.swap_remove(i);
            let _ = slot.stop.send(StopReason::Updated);
        } else {
            slot.idle_since = Some(Instant::now());
            slot.idle.notify_one();
        }
    }

    /// Removes a slot and tells its supervisor to stop it.
    pub(crate) fn stop_instance(&self, slot_ref: &SlotRef, reason: StopReason) {
        let mut st = self.lock();
        if let Some(f) = st.functions.get_mut(&slot_ref.name)
            && let Some(i) = f.slots.iter().position(|s| s.key == slot_ref.key)
        {
            let slot = f.slots.swap_remove(i);
            let _ = slot.stop.send(reason);
        }
    }

    // ---- supervisor callbacks --------------------------------------------------------------

    fn record_mut<'a>(st: &'a mut State, slot_ref: &SlotRef) -> Option<&'a mut InstanceRecord> {
        st.history
            .get_mut(&slot_ref.name)
            .and_then(|r| r.get_mut(slot_ref.record_idx))
    }

    fn slot_mut<'a>(st: &'a mut State, slot_ref: &SlotRef) -> Option<&'a mut Slot> {
        st.functions
            .get_mut(&slot_ref.name)
            .and_then(|f| f.slots.iter_mut().find(|s| s.key == slot_ref.key))
    }

    /// The process was spawned with this pid.
    pub(crate) fn record_pid(&self, slot_ref: &SlotRef, pid: Option<u32>) {
        let mut st = self.lock();
        if let Some(record) = Self::record_mut(&mut st, slot_ref) {
            record.pid = pid;
        }
    }

    /// The instance printed its READY line: make it schedulable.
    pub(crate) fn mark_ready(&self, slot_ref: &SlotRef, info: &ReadyInfo) {
        let mut st = self.lock();
        if let Some(record) = Self::record_mut(&mut st, slot_ref) {
            record.instance_id = Some(info.instance_id.clone());
            record.ready_at_unix_ns = Some(unix_ns());
            record.exec_to_ready_ms = Some(info.init_ms);
        }
        if let Some(slot) = Self::slot_mut(&mut st, slot_ref) {
            slot.ready = Some(info.clone());
            // The request that started it may have given up already.
            if slot.in_flight == 0 && slot.idle_since.is_none() {
                slot.idle_since = Some(Instant::now());
            }
        }
    }

    /// When the instance's keep-alive runs out, as things stand.
    pub(crate) fn idle_state(&self, slot_ref: &SlotRef, keep_alive: Duration) -> IdleState {
        let mut st = self.lock();
        match Self::slot_mut(&mut st, slot_ref) {
            Some(slot) if slot.in_flight == 0 && !slot.pinned => match slot.idle_since {
                Some(since) => IdleState::ExpiresAt(since + keep_alive),
                None => IdleState::NoTimer,
            },
            _ => IdleState::NoTimer,
        }
    }

    /// If the instance is still idle past its keep-alive, removes its slot (so no request can
    /// pick it any more) and returns true: the caller then stops the process.
    pub(crate) fn try_expire(&self, slot_ref: &SlotRef, keep_alive: Duration) -> bool {
        let mut st = self.lock();
        let Some(f) = st.functions.get_mut(&slot_ref.name) else {
            return false;
        };
        let Some(i) = f.slots.iter().position(|s| s.key == slot_ref.key) else {
            return false;
        };
        let slot = &f.slots[i];
        let expired = !slot.pinned
            && slot.in_flight == 0
            && slot
                .idle_since
                .is_some_and(|since| since + keep_alive <= Instant::now());
        if expired {
            f.slots.swap_remove(i);
        }
        expired
    }

    /// The instance is gone (stopped, crashed or never started): drop its slot if still
    /// present and complete its record.
    pub(crate) fn finish(
        &self,
        slot_ref: &SlotRef,
        reason: Option<StopReason>,
        spawn_error: Option<String>,
    ) {
        let mut st = self.lock();
        if let Some(f) = st.functions.get_mut(&slot_ref.name) {
            f.slots.retain(|s| s.key != slot_ref.key);
        }
        if let Some(record) = Self::record_mut(&mut st, slot_ref) {
            record.stopped_at_unix_ns = Some(unix_ns());
            record.stop_reason = reason;
            record.spawn_error = spawn_error;
        }
    }
}

fn shutting_down() -> ApiError {
    ApiError::other(
        StatusCode::SERVICE_UNAVAILABLE,
        "the local runtime is shutting down",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(key: u64, generation: u64, ready: bool, in_flight: u32, last_used: u64) -> Slot {
        Slot {
            key,
            record_idx: 0,
            generation,
            ready: ready.then(|| ReadyInfo {
                port: 1,
                instance_id: format!("{key:016x}"),
                init_ms: 1.0,
            }),
            ready_watch: watch::channel(None).1,
            origin: InstanceOrigin::Spawned,
            admitted: 1,
            pinned: false,
            in_flight,
            last_used,
            idle_since: None,
            draining: false,
            stop: oneshot::channel().0,
            idle: Arc::new(Notify::new()),
        }
    }

    #[test]
    fn picks_most_recently_used_free_instance() {
        let slots = vec![
            slot(0, 0, true, 0, 5),
            slot(1, 0, true, 0, 9),
            slot(2, 0, true, 1, 12),
        ];
        assert_eq!(pick(&slots, 0, 1), Some(1));
        // With a concurrency of 2 the busy one still has room and is the most recent.
        assert_eq!(pick(&slots, 0, 2), Some(2));
    }

    #[test]
    fn never_picks_starting_draining_or_old_instances() {
        let mut draining = slot(1, 0, true, 0, 3);
        draining.draining = true;
        let slots = vec![slot(0, 0, false, 0, 9), draining, slot(2, 0, true, 0, 1)];
        assert_eq!(pick(&slots, 1, 1), None, "all are of generation 0");
        assert_eq!(pick(&slots, 0, 1), Some(2));
        assert_eq!(pick(&[], 0, 1), None);
    }

    #[test]
    fn names_follow_the_documented_pattern() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("Warm-Cold-01"));
        assert!(is_valid_name(&"x".repeat(64)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"x".repeat(65)));
        assert!(!is_valid_name("a_b"));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name("é"));
    }

    #[test]
    fn spec_validation() {
        let sha = "a".repeat(64);
        assert!(validate("f", &FunctionSpec::new(sha.clone())).is_ok());
        let mut zero = FunctionSpec::new(sha.clone());
        zero.instance_concurrency = 0;
        assert!(
            validate("f", &zero)
                .unwrap_err()
                .message
                .contains("instance_concurrency")
        );
        let mut env = FunctionSpec::new(sha.clone());
        env.env.insert("A=B".into(), "x".into());
        assert!(validate("f", &env).is_err());
        assert!(validate("f", &FunctionSpec::new("nothex")).is_err());
        assert!(validate("bad name", &FunctionSpec::new(sha)).is_err());
    }
}
