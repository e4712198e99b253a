//! The built-in simulated cloud: an HTTP server on loopback that speaks the Alibaba
//! Resource Manager RPC API (`POST /`) and the Huawei Organizations REST API
//! (`/v1/...`), verifies signatures, paginates, and injects faults on request.
//!
//! Tenants are keyed by access key id: each has its own secret and invitation sets,
//! so one simulator serves many sources. A small control API under `/_sim/` lets
//! scripts and benchmarks add tenants, delete invitations, inject faults and read
//! call counters; in-process tests use the same operations as Rust methods.

pub mod alibaba;
pub mod alibaba_identity;
pub mod aws;
pub mod aws_identity;
pub mod data;
pub mod huawei;
pub mod huawei_identity;
pub mod identity_log;
pub mod recorder;

use crate::model::Handshake;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Which invitation list of a tenant (`alibaba_resource_directory`, …). Each
/// provider's simulator module declares its own as associated constants
/// (`Dataset::HuaweiSent`) and lists them in [`SimProvider::datasets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dataset {
    name: &'static str,
    /// Mixed into the generator's seed, so that two datasets of one tenant differ.
    salt: u64,
}

impl Dataset {
    pub const fn new(name: &'static str, salt: u64) -> Dataset {
        Dataset { name, salt }
    }

    pub const fn name(self) -> &'static str {
        self.name
    }

    pub const fn salt(self) -> u64 {
        self.salt
    }

    /// The provider whose simulator serves this dataset.
    pub fn provider(self) -> Option<crate::model::Provider> {
        crate::model::Provider::ALL
            .iter()
            .copied()
            .find(|p| p.kind().sim().datasets().contains(&self))
    }

    /// The dataset called `name` by any provider's simulator.
    pub fn parse(name: &str) -> Option<Dataset> {
        crate::model::Provider::ALL
            .iter()
            .flat_map(|p| p.kind().sim().datasets().iter().copied())
            .find(|d| d.name == name)
    }
}

impl Serialize for Dataset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

impl<'de> Deserialize<'de> for Dataset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dataset, D::Error> {
        let name = String::deserialize(d)?;
        Dataset::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown dataset {name:?}")))
    }
}

/// One cloud's part of the simulator: its datasets, how their invitations look,
/// and the handlers of its API and identity services.
#[async_trait::async_trait]
pub trait SimProvider: Send + Sync {
    /// The invitation lists a tenant of this cloud may have.
    fn datasets(&self) -> &'static [Dataset];

    /// `n` invitations of `dataset` in this cloud's id and target formats
    /// (deterministic for a seed, times relative to `now`).
    fn generate(
        &self,
        dataset: Dataset,
        n: usize,
        seed: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Handshake>;

    /// Answer `req` if it is addressed to this cloud (its API, STS, metadata or
    /// IAM); `None` leaves it to the next provider in registry order.
    async fn handle(&self, sim: &Sim, req: &SimRequest) -> Option<SimResponse>;
}

/// A fault to inject into the next matching requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// HTTP 429 / `Throttling.User` (Alibaba), 429 `APIGW.0308` (Huawei), with a
    /// retry-after hint of `retry_after_ms` if set.
    Throttle { retry_after_ms: Option<u64> },
    /// HTTP 503 with a provider error body.
    ServerError,
    /// Answer only after this long (a hanging API).
    Hang { ms: u64 },
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with JSON cut off half way.
    Truncated,
    /// 200 with valid JSON of the wrong shape (list where an object belongs).
    WrongShape,
    /// Reject the signature as the provider does (Alibaba `SignatureDoesNotMatch`,
    /// Huawei 401 `APIGW.0301`).
    AuthFailure,
    /// Alibaba: claim a TotalCount larger than the data; Huawei: return the same
    /// `next_marker` again, forever.
    Lie,
    /// Alibaba only: answer with PageSize 0.
    ZeroPageSize,
    /// 200 with the answer's first invitation carrying values that do not parse:
    /// times that are not times, a status and a target type nobody knows.
    GarbledFields,
}

/// What [`FaultKind::GarbledFields`] puts in the fields it garbles.
pub const GARBLED_TIME: &str = "next Tuesday";
pub const GARBLED_STATUS: &str = "Frozen";
pub const GARBLED_TARGET_TYPE: &str = "Carrier-Pigeon";

/// Garble the `time_keys`, `status` and target type (`target_type_path`, one key
/// or `[object, key]`) of the first invitation of `items`.
fn garble_first(
    items: &mut [serde_json::Value],
    time_keys: [&str; 3],
    status: &str,
    target_type_path: &[&str],
) {
    let Some(serde_json::Value::Object(first)) = items.first_mut() else {
        return;
    };
    for key in time_keys {
        first.insert(key.into(), GARBLED_TIME.into());
    }
    first.insert(status.into(), GARBLED_STATUS.into());
    match target_type_path {
        [key] => {
            first.insert((*key).into(), GARBLED_TARGET_TYPE.into());
        }
        [object, key] => {
            if let Some(serde_json::Value::Object(target)) = first.get_mut(*object) {
                target.insert((*key).into(), GARBLED_TARGET_TYPE.into());
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Only requests of this action (`ListHandshakes`, `GetHandshake`, …); all if absent.
    #[serde(default)]
    pub action: Option<String>,
    /// How many requests it affects; absent = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A dataset that changes while it is being listed, as a busy directory does: before
/// list request number `after + 1` of the dataset is answered (and, when `every` is
/// not 0, before every `every`-th list request after that), `insert` fresh
/// invitations go to the front of the list and `delete` invitations are removed from
/// its middle. Both shift the later invitations across page boundaries.
#[derive(Clone, Debug)]
pub struct Churn {
    pub dataset: Dataset,
    pub after: u64,
    pub every: u64,
    pub insert: usize,
    pub delete: usize,
    /// List requests of the dataset answered so far.
    pub seen: u64,
    /// Changes made so far.
    pub applied: u64,
}

impl Churn {
    /// One change before list request `after + 1`, none after it.
    pub fn once(dataset: Dataset, after: u64, insert: usize, delete: usize) -> Churn {
        Churn {
            dataset,
            after,
            every: 0,
            insert,
            delete,
            seen: 0,
            applied: 0,
        }
    }

    /// A change before every list request of the dataset.
    pub fn every_request(dataset: Dataset, insert: usize, delete: usize) -> Churn {
        Churn {
            every: 1,
            ..Churn::once(dataset, 0, insert, delete)
        }
    }
}

/// One simulated account.
#[derive(Clone, Debug, Default)]
pub struct Tenant {
    pub access_key_id: String,
    pub secret: String,
    pub security_token: Option<String>,
    pub datasets: HashMap<Dataset, Vec<Handshake>>,
    pub faults: Vec<Fault>,
    /// Requests per action that reached the tenant (signature checked or not).
    pub calls: BTreeMap<String, u64>,
    /// How the datasets change while they are listed, if they do.
    pub churn: Vec<Churn>,
    /// Invitations churn has added so far (keeps their ids unique in the tenant).
    pub churned: u64,
}

impl Tenant {
    pub fn new(access_key_id: &str, secret: &str) -> Tenant {
        Tenant {
            access_key_id: access_key_id.into(),
            secret: secret.into(),
            ..Tenant::default()
        }
    }

    pub fn dataset(&self, d: Dataset) -> &[Handshake] {
        self.datasets.get(&d).map_or(&[], Vec::as_slice)
    }

    /// Find an invitation by id in any dataset.
    pub fn find(&self, id: &str) -> Option<&Handshake> {
        self.datasets.values().flatten().find(|h| h.id == id)
    }

    /// Called by the list handlers before they read `dataset`: apply the churn due.
    pub fn before_list(&mut self, dataset: Dataset) {
        let Some(churn) = self.churn.iter_mut().find(|c| c.dataset == dataset) else {
            return;
        };
        churn.seen += 1;
        let since = churn.seen.saturating_sub(churn.after + 1);
        let due = churn.seen > churn.after
            && (since == 0 || (churn.every > 0 && since % churn.every == 0));
        if !due {
            return;
        }
        churn.applied += 1;
        let (round, insert, delete) = (churn.applied, churn.insert, churn.delete);
        let first_serial = self.churned;
        self.churned += insert as u64;
        let list = self.datasets.entry(dataset).or_default();
        for _ in 0..delete {
            if !list.is_empty() {
                list.remove(list.len() / 2);
            }
        }
        let fresh = data::generate(dataset, insert, round, chrono::Utc::now());
        for (i, mut h) in fresh.into_iter().enumerate() {
            // Letters and digits only: the Alibaba simulator checks id syntax.
            h.id = format!("h-churn{}", first_serial + i as u64);
            list.insert(0, h);
        }
    }

    /// Take the next fault for this action, counting it down.
    pub fn take_fault(&mut self, action: &str) -> Option<FaultKind> {
        let idx = self
            .faults
            .iter()
            .position(|f| f.action.as_deref().is_none_or(|a| a == action))?;
        let fault = &mut self.faults[idx];
        let kind = fault.kind.clone();
        if let Some(times) = &mut fault.times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.faults.remove(idx);
            }
        }
        Some(kind)
    }
}

/// Temporary credentials the simulator issued (STS, metadata, IAM): they sign
/// requests of their tenant until they expire.
#[derive(Clone, Debug)]
pub struct Session {
    /// Access key id of the tenant whose data they reach.
    pub tenant: String,
    pub access_key_id: String,
    pub secret: String,
    pub security_token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Lifetime of issued credentials unless a test sets another.
pub const DEFAULT_CREDENTIAL_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct SimState {
    tenants: HashMap<String, Tenant>,
    latency: Duration,
    /// Issued temporary credentials by access key id.
    sessions: HashMap<String, Session>,
    /// Lifetime of newly issued credentials; `None` = [`DEFAULT_CREDENTIAL_LIFETIME`].
    credential_lifetime: Option<Duration>,
    /// Each provider's own simulator state (its identity services' roles,
    /// metadata, identity providers), by type.
    provider_state: HashMap<std::any::TypeId, Box<dyn std::any::Any + Send>>,
}

/// The simulator's shared state.
#[derive(Default)]
pub struct Sim {
    state: Mutex<SimState>,
    /// API requests being answered right now, and the most seen at once: lets tests
    /// check the exporter's outbound concurrency cap.
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

/// Counts a request as in flight until dropped.
struct InFlight<'a>(&'a Sim);

impl<'a> InFlight<'a> {
    fn enter(sim: &'a Sim) -> InFlight<'a> {
        use std::sync::atomic::Ordering;
        let now = sim.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        sim.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(sim)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What a provider handler needs to know about a request.
#[derive(Clone)]
pub struct SimRequest {
    pub method: Method,
    pub path: String,
    /// Raw query string (not decoded).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What a provider handler answers.
pub struct SimResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SimResponse {
    pub fn json(status: u16, body: &serde_json::Value) -> SimResponse {
        SimResponse {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json;charset=UTF-8".into(),
            )],
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> SimResponse {
        SimResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> SimResponse {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl Sim {
    pub fn new() -> Arc<Sim> {
        Arc::new(Sim::default())
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock cannot leave the state half-written in a
        // way that matters to a simulator; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add or replace a tenant.
    pub fn add_tenant(&self, tenant: Tenant) {
        self.lock()
            .tenants
            .insert(tenant.access_key_id.clone(), tenant);
    }

    /// Run `f` on a tenant, if it exists.
    pub fn with_tenant<R>(
        &self,
        access_key_id: &str,
        f: impl FnOnce(&mut Tenant) -> R,
    ) -> Option<R> {
        self.lock().tenants.get_mut(access_key_id).map(f)
    }

    /// Replace a tenant's dataset.
    pub fn set_dataset(
        &self,
        access_key_id: &str,
        dataset: Dataset,
        items: Vec<Handshake>,
    ) -> bool {
        self.with_tenant(access_key_id, |t| {
            t.datasets.insert(dataset, items);
        })
        .is_some()
    }

    /// Delete an invitation from every dataset of a tenant.
    pub fn delete_handshake(&self, access_key_id: &str, id: &str) -> bool {
        self.with_tenant(access_key_id, |t| {
            let mut removed = false;
            for list in t.datasets.values_mut() {
                let before = list.len();
                list.retain(|h| h.id != id);
                removed |= list.len() != before;
            }
            removed
        })
        .unwrap_or(false)
    }

    /// Make a tenant's dataset change while it is listed (replacing any earlier
    /// churn of that dataset).
    pub fn set_churn(&self, access_key_id: &str, churn: Churn) -> bool {
        self.with_tenant(access_key_id, |t| {
            t.churn.retain(|c| c.dataset != churn.dataset);
            t.churn.push(churn);
        })
        .is_some()
    }

    /// Stop all churn of a tenant.
    pub fn clear_churn(&self, access_key_id: &str) {
        self.with_tenant(access_key_id, |t| t.churn.clear());
    }

    pub fn add_fault(&self, access_key_id: &str, fault: Fault) -> bool {
        self.with_tenant(access_key_id, |t| t.faults.push(fault))
            .is_some()
    }

    pub fn clear_faults(&self, access_key_id: &str) {
        self.with_tenant(access_key_id, |t| t.faults.clear());
    }

    /// Calls per action for a tenant.
    pub fn calls(&self, access_key_id: &str) -> BTreeMap<String, u64> {
        self.with_tenant(access_key_id, |t| t.calls.clone())
            .unwrap_or_default()
    }

    /// Calls of one action for a tenant.
    pub fn call_count(&self, access_key_id: &str, action: &str) -> u64 {
        self.calls(access_key_id).get(action).copied().unwrap_or(0)
    }

    pub fn reset_calls(&self, access_key_id: &str) {
        self.with_tenant(access_key_id, |t| t.calls.clear());
    }

    /// Extra delay added to every API answer (not to the control API).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn latency(&self) -> Duration {
        self.lock().latency
    }

    /// The most API requests answered at the same time since the last reset.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn reset_max_in_flight(&self) {
        self.max_in_flight
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }

    /// Look up a tenant's secret and token, count the call, and take a fault.
    /// `None` when the access key is unknown (the call is not counted anywhere).
    /// Temporary credentials the simulator issued count as their tenant's, with
    /// their own secret and token, and say whether they have expired.
    pub fn begin_call(&self, access_key_id: &str, action: &str) -> Option<CallContext> {
        let mut st = self.lock();
        let session = st.sessions.get(access_key_id).cloned();
        let tenant_key = session
            .as_ref()
            .map_or(access_key_id, |s| s.tenant.as_str());
        let t = st.tenants.get_mut(tenant_key)?;
        *t.calls.entry(action.to_string()).or_insert(0) += 1;
        let fault = t.take_fault(action);
        Some(match session {
            None => CallContext {
                secret: t.secret.clone(),
                security_token: t.security_token.clone(),
                fault,
                tenant: t.access_key_id.clone(),
                expired: false,
            },
            Some(s) => CallContext {
                secret: s.secret,
                security_token: Some(s.security_token),
                fault,
                tenant: t.access_key_id.clone(),
                expired: chrono::Utc::now() >= s.expires_at,
            },
        })
    }

    /// Issue temporary credentials for a tenant (with the current lifetime, or
    /// `lifetime` when given). `prefix` marks the issuer in the key id (`STS.`).
    pub fn issue_session(
        &self,
        tenant: &str,
        prefix: &str,
        lifetime: Option<Duration>,
    ) -> Option<Session> {
        let mut st = self.lock();
        if !st.tenants.contains_key(tenant) {
            return None;
        }
        let lifetime = lifetime
            .or(st.credential_lifetime)
            .unwrap_or(DEFAULT_CREDENTIAL_LIFETIME);
        let rand = |n: usize| -> String {
            std::iter::repeat_with(fastrand::alphanumeric)
                .take(n)
                .collect()
        };
        let session = Session {
            tenant: tenant.to_string(),
            access_key_id: format!("{prefix}{}", rand(20)),
            secret: rand(30),
            security_token: format!("{}{}", rand(40), "/+="),
            expires_at: chrono::Utc::now()
                + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1)),
        };
        st.sessions
            .insert(session.access_key_id.clone(), session.clone());
        Some(session)
    }

    /// Lifetime of credentials issued from now on (tests shorten it).
    pub fn set_credential_lifetime(&self, lifetime: Duration) {
        self.lock().credential_lifetime = Some(lifetime);
    }

    /// The temporary credentials issued for a tenant (tests check that none of
    /// them leaks).
    pub fn sessions(&self, tenant: &str) -> Vec<Session> {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.tenant == tenant)
            .cloned()
            .collect()
    }

    /// The lifetime a test set with [`Sim::set_credential_lifetime`], if any.
    pub fn credential_lifetime(&self) -> Option<Duration> {
        self.lock().credential_lifetime
    }

    /// How many temporary credentials have been issued for a tenant.
    pub fn sessions_issued(&self, tenant: &str) -> usize {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.tenant == tenant)
            .count()
    }

    /// The secrets and security tokens of every temporary credential issued for a
    /// tenant: what a test checks never shows in logs, metrics or pages.
    pub fn session_secrets(&self, tenant: &str) -> Vec<String> {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.tenant == tenant)
            .flat_map(|s| [s.secret.clone(), s.security_token.clone()])
            .collect()
    }

    /// Access key id, secret and provider of every tenant with data, sorted.
    pub fn tenant_keys(&self) -> Vec<(String, String, crate::model::Provider)> {
        let mut keys: Vec<_> = self
            .lock()
            .tenants
            .values()
            .filter_map(|t| {
                let provider = t.datasets.keys().find_map(|d| d.provider())?;
                Some((t.access_key_id.clone(), t.secret.clone(), provider))
            })
            .collect();
        keys.sort();
        keys
    }

    /// Run `f` on a provider's own simulator state of type `T` (created empty on
    /// first use).
    pub fn with_state<T: Default + Send + 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut state = self.lock();
        let entry = state
            .provider_state
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        match entry.downcast_mut::<T>() {
            Some(t) => f(t),
            // Unreachable (the entry is keyed by its type); a fresh value keeps the
            // simulator serving.
            None => f(&mut T::default()),
        }
    }

    /// A copy of a tenant's dataset.
    pub fn dataset(&self, access_key_id: &str, dataset: Dataset) -> Vec<Handshake> {
        self.with_tenant(access_key_id, |t| t.dataset(dataset).to_vec())
            .unwrap_or_default()
    }

    /// One invitation of a tenant, by id.
    pub fn find(&self, access_key_id: &str, id: &str) -> Option<Handshake> {
        self.with_tenant(access_key_id, |t| t.find(id).cloned())
            .flatten()
    }
}

/// Per-call facts a provider handler uses after [`Sim::begin_call`].
pub struct CallContext {
    pub secret: String,
    pub security_token: Option<String>,
    pub fault: Option<FaultKind>,
    /// The tenant the call reaches (the issuing tenant for temporary credentials).
    pub tenant: String,
    /// Temporary credentials past their expiry: the handler answers with the
    /// cloud's expired-token error.
    pub expired: bool,
}

/// A running simulator; dropping it (or calling [`SimServer::shutdown`]) stops it.
pub struct SimServer {
    pub addr: SocketAddr,
    pub sim: Arc<Sim>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Start the simulator on `addr` (use `127.0.0.1:0` for a free port).
pub async fn start(sim: Arc<Sim>, addr: SocketAddr) -> std::io::Result<SimServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let served = sim.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let sim = served.clone();
                    let mut stop_conn = stopped.clone();
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let svc = hyper::service::service_fn(move |req| {
                            let sim = sim.clone();
                            async move { Ok::<_, std::convert::Infallible>(route(&sim, req).await) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, svc);
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = stop_conn.changed() => {}
                        }
                    });
                }
            }
        }
    });
    Ok(SimServer {
        addr,
        sim,
        stop,
        task: Some(task),
    })
}

type Body = Full<Bytes>;

fn to_response(r: SimResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in r.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(Full::new(Bytes::from(r.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"bad response"))))
}

async fn route(sim: &Arc<Sim>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let request = SimRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    };
    if request.path.starts_with("/_sim/") {
        return to_response(control(sim, &request));
    }
    let _in_flight = InFlight::enter(sim);
    let latency = sim.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    // Each provider claims its own requests, in registry order.
    for provider in crate::model::Provider::ALL {
        if let Some(response) = provider.kind().sim().handle(sim, &request).await {
            return to_response(response);
        }
    }
    to_response(SimResponse::json(
        404,
        &serde_json::json!({"error": "no simulated cloud serves this request"}),
    ))
}

/// Tenant to create through the control API.
#[derive(Deserialize)]
struct TenantSpec {
    access_key_id: String,
    secret: String,
    #[serde(default)]
    security_token: Option<String>,
    #[serde(default)]
    seed: u64,
    /// Invitations to generate per dataset (`alibaba_resource_directory: 100`, …).
    #[serde(flatten)]
    datasets: BTreeMap<String, usize>,
}

fn control(sim: &Sim, req: &SimRequest) -> SimResponse {
    let segments: Vec<&str> = req.path.trim_start_matches("/_sim/").split('/').collect();
    let not_found = || {
        SimResponse::json(
            404,
            &serde_json::json!({"error": "no such tenant or route"}),
        )
    };
    let bad = |m: String| SimResponse::json(400, &serde_json::json!({"error": m}));
    match (&req.method, segments.as_slice()) {
        (&Method::GET, ["tenants"]) => {
            let state = sim.lock();
            let tenants: Vec<_> = state
                .tenants
                .values()
                .map(|t| {
                    serde_json::json!({
                        "access_key_id": t.access_key_id,
                        "calls": t.calls,
                        "faults": t.faults.len(),
                        "datasets": t.datasets.iter().map(|(k, v)| (serde_json::to_value(k).unwrap_or_default().as_str().unwrap_or_default().to_string(), v.len())).collect::<BTreeMap<_, _>>(),
                    })
                })
                .collect();
            SimResponse::json(200, &serde_json::json!({ "tenants": tenants }))
        }
        (&Method::POST, ["tenants"]) => match serde_json::from_slice::<TenantSpec>(&req.body) {
            Err(e) => bad(format!("bad tenant spec: {e}")),
            Ok(spec) => {
                let mut t = Tenant::new(&spec.access_key_id, &spec.secret);
                t.security_token = spec.security_token;
                let now = chrono::Utc::now();
                for (name, n) in spec.datasets {
                    let Some(d) = Dataset::parse(&name) else {
                        return bad(format!("unknown dataset {name:?}"));
                    };
                    if n > 0 {
                        t.datasets.insert(d, data::generate(d, n, spec.seed, now));
                    }
                }
                sim.add_tenant(t);
                SimResponse::json(201, &serde_json::json!({"ok": true}))
            }
        },
        (&Method::POST, ["tenants", ak, "faults"]) => {
            match serde_json::from_slice::<Fault>(&req.body) {
                Err(e) => bad(format!("bad fault: {e}")),
                Ok(f) => {
                    if sim.add_fault(ak, f) {
                        SimResponse::json(201, &serde_json::json!({"ok": true}))
                    } else {
                        not_found()
                    }
                }
            }
        }
        (&Method::DELETE, ["tenants", ak, "faults"]) => {
            sim.clear_faults(ak);
            SimResponse::json(200, &serde_json::json!({"ok": true}))
        }
        (&Method::DELETE, ["tenants", ak, "handshakes", id]) => {
            if sim.delete_handshake(ak, id) {
                SimResponse::json(200, &serde_json::json!({"ok": true}))
            } else {
                not_found()
            }
        }
        (&Method::GET, ["tenants", ak, "calls"]) => {
            SimResponse::json(200, &serde_json::json!(sim.calls(ak)))
        }
        (&Method::DELETE, ["tenants", ak, "calls"]) => {
            sim.reset_calls(ak);
            SimResponse::json(200, &serde_json::json!({"ok": true}))
        }
        (&Method::PUT, ["latency"]) => {
            let ms = serde_json::from_slice::<serde_json::Value>(&req.body)
                .ok()
                .and_then(|v| v.get("ms").and_then(serde_json::Value::as_u64));
            match ms {
                Some(ms) => {
                    sim.set_latency(Duration::from_millis(ms));
                    SimResponse::json(200, &serde_json::json!({"ok": true}))
                }
                None => bad("expected {\"ms\": N}".into()),
            }
        }
        _ => not_found(),
    }
}
