//! Per-source TTL cache with single-flight refresh.
//!
//! A scrape that finds a source's data older than `refresh_interval` starts a refresh
//! (or joins the one already running: one refresh per source at a time), then waits
//! for it at most until the scrape's own deadline. The refresh runs in its own task,
//! so a scrape that gives up never cancels it; the next scrape gets its result. A
//! failed refresh keeps the last good snapshot and marks the source down.

use crate::clock::unix_now;
use crate::config::SourceConfig;
use crate::error::{ApiError, Reason};
use crate::metrics::ExporterMetrics;
use crate::model::{Anomalies, Handshake, Provider};
use crate::provider::{HandshakeProvider, Listing};
use crate::render::{Deflated, Filled, RenderOptions, Template};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// One successful refresh's result. Immutable once built; shared by every scrape.
#[derive(Debug)]
pub struct Snapshot {
    pub handshakes: Vec<Handshake>,
    /// Unix time the refresh finished.
    pub fetched_at: f64,
}

/// What rendering needs to know about a source at one instant.
#[derive(Clone, Debug)]
pub struct SourceView {
    pub name: Arc<str>,
    pub provider: Provider,
    pub snapshot: Option<Arc<Snapshot>>,
    /// Whether the last finished refresh succeeded (false before the first one).
    pub up: bool,
    pub last_success: Option<f64>,
    pub last_duration: Option<Duration>,
    pub last_error: Option<ApiError>,
    /// Unix time the first failed refresh since the last success finished (`None`
    /// while the last refresh succeeded): "failing since" on the landing page.
    pub failing_since: Option<f64>,
    pub refreshing: bool,
    /// Changes whenever anything rendered from this source changes (every finished
    /// refresh, successful or not); unique across sources and reloads. Rendered
    /// bodies are shared per generation (see [`RenderCache`]).
    pub generation: u64,
}

/// Source of [`SourceView::generation`] values: process-wide, so that a source
/// rebuilt by a reload never repeats a generation of the one it replaced.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATIONS.fetch_add(1, Ordering::Relaxed)
}

#[derive(Default)]
struct State {
    snapshot: Option<Arc<Snapshot>>,
    up: bool,
    last_attempt_end: Option<Instant>,
    last_duration: Option<Duration>,
    last_error: Option<ApiError>,
    failing_since: Option<f64>,
    /// Completion signal of the running refresh; scrapes clone it to wait.
    inflight: Option<watch::Receiver<bool>>,
    generation: u64,
}

pub struct SourceCache {
    pub config: SourceConfig,
    pub name: Arc<str>,
    client: Arc<dyn HandshakeProvider>,
    metrics: Arc<ExporterMetrics>,
    refresh_interval: Duration,
    refresh_timeout: Duration,
    state: Mutex<State>,
    /// Set when a reload removed this source: a refresh still in flight must not
    /// bring its series back when it finishes.
    retired: AtomicBool,
    /// What has been logged about the data itself, so that it is logged once and not
    /// on every refresh. Only the refresh task touches it; apart from `state` so that
    /// logging never holds the lock scrapes take.
    reported: Mutex<Reported>,
}

/// Findings already logged, kept while they last.
#[derive(Default)]
struct Reported {
    /// Configured ids the cloud said do not exist.
    missing: HashSet<String>,
    /// Invitations with a field that did not parse, and which fields.
    anomalies: HashMap<String, Anomalies>,
}

/// How a wait for fresh data ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Data was younger than the refresh interval; nothing was fetched.
    Fresh,
    /// A refresh finished (successfully or not) before the deadline.
    Refreshed,
    /// The deadline came first; the refresh goes on in the background.
    TimedOut,
}

impl SourceCache {
    pub fn new(
        config: SourceConfig,
        client: Arc<dyn HandshakeProvider>,
        metrics: Arc<ExporterMetrics>,
        refresh_interval: Duration,
        refresh_timeout: Duration,
    ) -> Arc<SourceCache> {
        metrics.init_source(config.provider, &config.name);
        Arc::new(SourceCache {
            name: Arc::from(config.name.as_str()),
            config,
            client,
            metrics,
            refresh_interval,
            refresh_timeout,
            state: Mutex::new(State {
                generation: next_generation(),
                ..State::default()
            }),
            retired: AtomicBool::new(false),
            reported: Mutex::new(Reported::default()),
        })
    }

    pub fn provider(&self) -> Provider {
        self.config.provider
    }

    pub fn refresh_timeout(&self) -> Duration {
        self.refresh_timeout
    }

    /// Mark the source removed (by a reload) and drop its series. A refresh still in
    /// flight finishes without touching metrics, and drops the series its requests
    /// re-created on the way.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.metrics.remove_source(self.config.provider, &self.name);
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// Whether `id` is an invitation this source knows: in its last snapshot or in
    /// its configured `handshake_ids`. The live lookup answers only for these.
    pub fn knows(&self, id: &str) -> bool {
        if self.config.handshake_ids.iter().any(|h| h == id) {
            return true;
        }
        let snapshot = self.lock().snapshot.clone();
        snapshot.is_some_and(|s| s.handshakes.iter().any(|h| h.id == id))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State updates are single assignments; a poisoned lock still holds
        // consistent data, and /metrics must keep answering.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current state, for rendering.
    pub fn view(&self) -> SourceView {
        let st = self.lock();
        SourceView {
            name: self.name.clone(),
            provider: self.config.provider,
            snapshot: st.snapshot.clone(),
            up: st.up,
            last_success: st.snapshot.as_ref().map(|s| s.fetched_at),
            last_duration: st.last_duration,
            last_error: st.last_error.clone(),
            failing_since: st.failing_since,
            refreshing: st.inflight.is_some(),
            generation: st.generation,
        }
    }

    /// Make sure the data is fresh, waiting for a refresh at most until `deadline`.
    pub async fn ensure_fresh(self: &Arc<Self>, deadline: Instant) -> Freshness {
        let mut done = {
            let mut st = self.lock();
            let fresh = st
                .last_attempt_end
                .is_some_and(|t| t.elapsed() < self.refresh_interval);
            if fresh {
                return Freshness::Fresh;
            }
            // A refresh task that died without signalling (a panic) must not block
            // every later refresh: a closed channel counts as no refresh running.
            let running = st
                .inflight
                .as_ref()
                .filter(|rx| rx.has_changed().is_ok())
                .cloned();
            match running {
                Some(rx) => rx,
                None => {
                    let rx = self.spawn_refresh();
                    st.inflight = Some(rx.clone());
                    rx
                }
            }
        };
        // Never wait longer than the refresh itself may take.
        let deadline = deadline.min(Instant::now() + self.refresh_timeout);
        match tokio::time::timeout_at(deadline, done.wait_for(|finished| *finished)).await {
            Ok(_) => Freshness::Refreshed,
            Err(_) => Freshness::TimedOut,
        }
    }

    fn spawn_refresh(self: &Arc<Self>) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let me = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let deadline = started + me.refresh_timeout;
            let result = match tokio::time::timeout_at(deadline, me.client.fetch(deadline)).await {
                Ok(r) => r,
                Err(_) => Err(ApiError::new(
                    Reason::Timeout,
                    "refresh",
                    format!("refresh did not finish within {:?}", me.refresh_timeout),
                )),
            };
            me.finish(result, started.elapsed());
            let _ = tx.send(true);
        });
        rx
    }

    fn finish(&self, result: Result<Listing, ApiError>, took: Duration) {
        let provider = self.config.provider.as_str();
        if self.is_retired() {
            // Removed by a reload while this refresh ran: no series may come back,
            // including the request counters the refresh's API calls re-created.
            let mut st = self.lock();
            st.inflight = None;
            drop(st);
            self.metrics.remove_source(self.config.provider, &self.name);
            tracing::debug!(source = %self.name, provider, "refresh of a removed source finished; result dropped");
            return;
        }
        self.metrics
            .refreshes
            .with_label_values(&[provider, &self.name])
            .inc();
        // Done before taking the lock that every scrape's `view` takes too: compaction,
        // the failure counter and the log lines (I/O) stay out of it.
        let result = result.map(|listing| {
            self.note_missing(&listing.missing_ids);
            let handshakes = self.prepare(listing.handshakes);
            self.note_anomalies(&handshakes);
            handshakes
        });
        match &result {
            Ok(handshakes) => tracing::debug!(
                source = %self.name, provider, invitations = handshakes.len(),
                took_ms = took.as_millis() as u64, "refresh succeeded"
            ),
            Err(e) => {
                self.metrics
                    .refresh_failures
                    .with_label_values(&[provider, &self.name, e.reason.metric_label()])
                    .inc();
                tracing::warn!(
                    source = %self.name,
                    provider,
                    action = e.action,
                    reason = e.reason.metric_label(),
                    code = e.code.as_deref().unwrap_or(""),
                    http_status = e.http_status.unwrap_or(0),
                    request_id = e.request_id.as_deref().unwrap_or(""),
                    error = %e,
                    "refresh failed; keeping the last good data"
                );
            }
        }
        let mut st = self.lock();
        st.inflight = None;
        st.generation = next_generation();
        st.last_attempt_end = Some(Instant::now());
        st.last_duration = Some(took);
        match result {
            Ok(handshakes) => {
                st.snapshot = Some(Arc::new(Snapshot {
                    handshakes,
                    fetched_at: unix_now(),
                }));
                st.up = true;
                st.last_error = None;
                st.failing_since = None;
            }
            Err(e) => {
                st.up = false;
                st.last_error = Some(e);
                // Kept through later failures: the outage began at the first one.
                st.failing_since.get_or_insert_with(unix_now);
            }
        }
    }

    /// `view: ids`: set the missing-ids gauge and log each missing id once, when it
    /// goes missing (not on every refresh while it stays missing).
    fn note_missing(&self, missing: &[String]) {
        let provider = self.config.provider.as_str();
        self.metrics
            .missing_ids
            .with_label_values(&[provider, &self.name])
            .set(i64::try_from(missing.len()).unwrap_or(i64::MAX));
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        // Ids that came back (or were dropped from the configuration) are forgotten,
        // so that going missing again is logged again.
        reported
            .missing
            .retain(|id| missing.iter().any(|m| m == id));
        for id in missing {
            if reported.missing.insert(id.clone()) {
                tracing::warn!(
                    source = %self.name, provider, handshake_id = %id,
                    "the cloud says this configured handshake id does not exist; \
                     leaving it out (finished invitations age out after about 30 days: \
                     remove it from handshake_ids)"
                );
            }
        }
    }

    /// Count every field that did not parse (on every refresh that sees it, so that
    /// `increase()` stays above 0 while the data stays broken) and log each
    /// invitation once when it gains an unreadable field, not on every refresh.
    fn note_anomalies(&self, handshakes: &[Handshake]) {
        let provider = self.config.provider.as_str();
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        let mut now: HashMap<String, Anomalies> = HashMap::new();
        for h in handshakes.iter().filter(|h| !h.anomalies.is_empty()) {
            for field in h.anomalies.iter() {
                self.metrics
                    .parse_anomalies
                    .with_label_values(&[provider, &self.name, field.as_str()])
                    .inc();
            }
            let known = reported.anomalies.get(&h.id).copied().unwrap_or_default();
            if h.anomalies.iter().any(|f| !known.contains(f)) {
                let fields: Vec<&str> = h.anomalies.iter().map(|f| f.as_str()).collect();
                tracing::warn!(
                    source = %self.name, provider, handshake_id = %h.id,
                    fields = %fields.join(","),
                    "invitation fields did not parse; kept without them (see the runbook: \
                     data findings)"
                );
            }
            now.insert(h.id.clone(), h.anomalies);
        }
        // Invitations that are gone or read cleanly now are forgotten.
        reported.anomalies = now;
    }

    /// A successful refresh's list as the snapshot keeps it: duplicates dropped, no
    /// spare capacity, every invitation labelled with this source's name.
    fn prepare(&self, mut handshakes: Vec<Handshake>) -> Vec<Handshake> {
        // Ids are the series identity: a duplicate would make the exposition invalid.
        // Providers take each id once; this is the last guard (first one kept). The
        // check borrows the ids instead of cloning 10,000 strings.
        let duplicates: Vec<usize> = {
            let mut seen = HashSet::with_capacity(handshakes.len());
            handshakes
                .iter()
                .enumerate()
                .filter(|(_, h)| !seen.insert(h.id.as_str()))
                .map(|(i, _)| i)
                .collect()
        };
        if !duplicates.is_empty() {
            let mut index = 0;
            handshakes.retain(|_| {
                let keep = duplicates.binary_search(&index).is_err();
                index += 1;
                keep
            });
        }
        // The snapshot lives until the next refresh: give back what paging
        // over-allocated (up to half the list when it grew by doubling).
        handshakes.shrink_to_fit();
        for h in &mut handshakes {
            if *h.source != *self.name {
                h.source = self.name.clone();
            }
        }
        handshakes
    }

    /// The source's credential type and expiry, for the landing page.
    pub fn credential_status(&self) -> Option<crate::credentials::CredentialStatus> {
        self.client.credential_status()
    }

    /// Fetch one invitation live through this source's credentials.
    pub async fn get_live(&self, id: &str, deadline: Instant) -> Result<Handshake, ApiError> {
        let mut h = self.client.get(id, deadline).await?;
        h.source = self.name.clone();
        Ok(h)
    }
}

/// What a shared rendered body depends on, besides the render options (which are
/// fixed for the [`RenderCache`] of one runtime): which source (`/probe`) or all,
/// the generation of every source rendered, and the Unix second it was rendered
/// for (`handshake_expires_in_seconds` is exact to that second).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RenderKey {
    pub only: Option<String>,
    pub generations: Vec<u64>,
    pub second: i64,
}

/// One rendered body of the snapshot families, shared by every scrape of a wave:
/// the [`Template`] of its data and the parts filled in for its second, and their
/// compressed form, made once by the first scrape that asks for it.
pub struct Rendered {
    template: Arc<Template>,
    filled: Filled,
    compressed: tokio::sync::OnceCell<Option<Vec<Deflated>>>,
}

/// Bodies up to this size are deflated whole once per body rather than in parts:
/// each part deflated on its own starts without history and carries its own
/// Huffman tables, which costs a small body a good share of its compressed size
/// (100 invitations: 4,958 against 6,944 bytes), while compressing a small body
/// again every second costs little.
const DEFLATE_WHOLE_BELOW: usize = 256 * 1024;

impl Rendered {
    /// The body, as the chunks to send (most of them shared with other seconds).
    pub fn chunks(&self) -> [bytes::Bytes; 5] {
        self.template.chunks(&self.filled)
    }

    /// The body deflated, as parts to send in order: a large body's template parts
    /// by `deflate` once per template and this second's parts once per body; a
    /// small body whole, once per body; however many scrapes ask at the same time
    /// (`None` when it failed: those scrapes get the plain body).
    pub async fn compressed<F>(&self, deflate: F) -> Option<Vec<&Deflated>>
    where
        F: Fn(&[u8]) -> Option<Deflated>,
    {
        let chunks = self.chunks();
        if chunks.iter().map(bytes::Bytes::len).sum::<usize>() < DEFLATE_WHOLE_BELOW {
            let whole = self
                .compressed
                .get_or_init(|| async { Some(vec![deflate(&chunks.concat())?]) })
                .await
                .as_ref()?;
            return Some(whole.iter().collect());
        }
        let [counts, per_invitation, rest] = self.template.deflated(&deflate).await?;
        let own = self
            .compressed
            .get_or_init(|| async {
                let [expiring, expires_in] = self.filled.parts();
                Some(vec![deflate(expiring)?, deflate(expires_in)?])
            })
            .await
            .as_ref()?;
        let [expiring, expires_in] = own.as_slice() else {
            return None;
        };
        Some(vec![counts, expiring, per_invitation, expires_in, rest])
    }
}

/// The longest a rendered body stays shared after it was made: until the end of
/// the second it is for, which its key carries anyway. Keeping it no longer gives
/// its memory back between scrapes (a 100,000-invitation body is megabytes, and
/// Prometheus scrapes every 15–60 s).
pub const RENDER_KEEP: Duration = Duration::from_secs(1);

/// How long a [`Template`] stays after the last scrape of its data: as long as
/// scrapes keep coming, each second only fills in its numbers; when they stop, its
/// memory goes back like a body's.
pub const TEMPLATE_KEEP: Duration = RENDER_KEEP;

type Slots =
    Arc<Mutex<HashMap<Option<String>, (RenderKey, Arc<tokio::sync::OnceCell<Arc<Rendered>>>)>>>;

/// The template per `/metrics` or `/probe` source: for which generations, and when
/// a scrape last wanted it.
struct TemplateSlot {
    generations: Vec<u64>,
    cell: Arc<tokio::sync::OnceCell<Arc<Template>>>,
    used: Instant,
}

type TemplateSlots = Arc<Mutex<HashMap<Option<String>, TemplateSlot>>>;

/// Whether views with generations `theirs` were read before the ones of `ours`
/// (each source's generation only grows): an older view, not a change.
fn older(theirs: &[u64], ours: &[u64]) -> bool {
    theirs.len() == ours.len() && theirs != ours && theirs.iter().zip(ours).all(|(t, o)| t <= o)
}

/// Single-flight rendering: scrapes that want the same [`RenderKey`] share one
/// render (the first one renders, the others wait for it) and one body. A render
/// fills in the [`Template`] of the same generations, made once while scrapes keep
/// coming. One per runtime, since the render options are part of what a body
/// depends on.
#[derive(Default)]
pub struct RenderCache {
    /// The latest body per `/metrics` or `/probe` source.
    slots: Slots,
    templates: TemplateSlots,
    renders: AtomicU64,
    built: AtomicU64,
}

impl RenderCache {
    /// Bodies rendered so far (tests and benchmarks count them per scrape wave).
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    /// Templates made so far.
    pub fn templates(&self) -> u64 {
        self.built.load(Ordering::Relaxed)
    }

    /// The body for `key`, the snapshot families of `views`: the shared one if a
    /// scrape already rendered (or is rendering) it, else the one rendered now
    /// (`rendering` is called then). A new body is shared for `keep` (at most
    /// [`RENDER_KEEP`]): the rest of its second.
    pub async fn get_or_render(
        &self,
        key: RenderKey,
        keep: Duration,
        views: &[SourceView],
        opts: &RenderOptions,
        rendering: impl FnOnce(),
    ) -> Arc<Rendered> {
        self.touch(&key);
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match slots.get(&key.only) {
                Some((k, cell)) if *k == key => cell.clone(),
                // A scrape that read the clock just before a newer one rendered:
                // rendered on its own rather than evicting the newer body.
                Some((k, _)) if k.second > key.second => Arc::new(tokio::sync::OnceCell::new()),
                _ => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    slots.insert(key.only.clone(), (key.clone(), cell.clone()));
                    self.forget_later(key.only.clone(), &cell, keep.min(RENDER_KEEP));
                    cell
                }
            }
        };
        cell.get_or_init(|| async {
            self.renders.fetch_add(1, Ordering::Relaxed);
            rendering();
            let template = self.template(&key, views, opts).await;
            let filled = template.fill(key.second as f64);
            Arc::new(Rendered {
                template,
                filled,
                compressed: tokio::sync::OnceCell::new(),
            })
        })
        .await
        .clone()
    }

    /// Note that a scrape wants the template of `key`'s generations.
    fn touch(&self, key: &RenderKey) {
        let mut slots = self.templates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get_mut(&key.only)
            && slot.generations == key.generations
        {
            slot.used = Instant::now();
        }
    }

    /// The template of `key`'s generations: the kept one, or one made now.
    async fn template(
        &self,
        key: &RenderKey,
        views: &[SourceView],
        opts: &RenderOptions,
    ) -> Arc<Template> {
        let cell = {
            let mut slots = self.templates.lock().unwrap_or_else(|p| p.into_inner());
            match slots.get_mut(&key.only) {
                Some(slot) if slot.generations == key.generations => {
                    slot.used = Instant::now();
                    slot.cell.clone()
                }
                // Views read before a refresh finished: made on their own rather
                // than evicting the newer template.
                Some(slot) if older(&key.generations, &slot.generations) => {
                    Arc::new(tokio::sync::OnceCell::new())
                }
                _ => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    slots.insert(
                        key.only.clone(),
                        TemplateSlot {
                            generations: key.generations.clone(),
                            cell: cell.clone(),
                            used: Instant::now(),
                        },
                    );
                    self.forget_template_later(key.only.clone(), &cell);
                    cell
                }
            }
        };
        cell.get_or_init(|| async {
            self.built.fetch_add(1, Ordering::Relaxed);
            Arc::new(Template::new(views, opts))
        })
        .await
        .clone()
    }

    /// Drop the template [`TEMPLATE_KEEP`] after the last scrape that wanted it
    /// (unless a newer one replaced it already): bodies still being sent keep their
    /// own references to its parts.
    fn forget_template_later(
        &self,
        only: Option<String>,
        cell: &Arc<tokio::sync::OnceCell<Arc<Template>>>,
    ) {
        let slots = Arc::downgrade(&self.templates);
        let cell = Arc::downgrade(cell);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let mut until = Instant::now() + TEMPLATE_KEEP;
            loop {
                tokio::time::sleep_until(until).await;
                let Some(slots) = slots.upgrade() else { return };
                let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
                let Some(slot) = slots.get(&only) else { return };
                if !cell.upgrade().is_some_and(|c| Arc::ptr_eq(&slot.cell, &c)) {
                    return;
                }
                let due = slot.used + TEMPLATE_KEEP;
                if due <= Instant::now() {
                    slots.remove(&only);
                    return;
                }
                until = due;
            }
        });
    }

    /// Drop the shared body `keep` after it was made (unless a newer one replaced
    /// it already): scrapes still sending it keep their own reference.
    fn forget_later(
        &self,
        only: Option<String>,
        cell: &Arc<tokio::sync::OnceCell<Arc<Rendered>>>,
        keep: Duration,
    ) {
        let slots = Arc::downgrade(&self.slots);
        let cell = Arc::downgrade(cell);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            tokio::time::sleep(keep).await;
            let Some(slots) = slots.upgrade() else { return };
            let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
            let ours = slots
                .get(&only)
                .is_some_and(|(_, c)| cell.upgrade().is_some_and(|cell| Arc::ptr_eq(c, &cell)));
            if ours {
                slots.remove(&only);
            }
        });
    }

    /// Whether a template is held for `only` right now.
    pub fn holds_template(&self, only: Option<&str>) -> bool {
        let slots = self.templates.lock().unwrap_or_else(|p| p.into_inner());
        slots.contains_key(&only.map(str::to_string))
    }

    /// Whether a body is held for `only` right now.
    pub fn holds(&self, only: Option<&str>) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.contains_key(&only.map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::secret::{Credentials, Secret};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A provider double counting calls: the cache logic is tested without HTTP here;
    /// the integration tests run the same paths against the simulator.
    struct Counting {
        calls: AtomicU32,
        delay: Duration,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl HandshakeProvider for Counting {
        fn provider(&self) -> Provider {
            Provider::Alibaba
        }
        async fn fetch(&self, _deadline: Instant) -> Result<Listing, ApiError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(ApiError::new(Reason::Server, "List", "boom"));
            }
            Ok((0..n)
                .map(|i| Handshake::new(Provider::Alibaba, Arc::from("x"), format!("h-{i}")))
                .collect::<Vec<_>>()
                .into())
        }
        async fn get(&self, id: &str, _deadline: Instant) -> Result<Handshake, ApiError> {
            Ok(Handshake::new(Provider::Alibaba, Arc::from("x"), id))
        }
    }

    fn source() -> SourceConfig {
        let mut s = SourceConfig::new(
            Provider::Alibaba,
            "s1",
            "http://127.0.0.1:1",
            Credentials {
                access_key_id: "AK".into(),
                access_key_secret: Secret::new("SK"),
                security_token: None,
                domain_id: None,
            },
        );
        s.connect_timeout = Duration::from_secs(1);
        s.request_timeout = Duration::from_secs(1);
        s
    }

    fn cache(delay_ms: u64, interval: Duration) -> (Arc<SourceCache>, Arc<Counting>) {
        let client = Arc::new(Counting {
            calls: AtomicU32::new(0),
            delay: Duration::from_millis(delay_ms),
            fail: false.into(),
        });
        let c = SourceCache::new(
            source(),
            client.clone(),
            Arc::new(ExporterMetrics::new(false)),
            interval,
            Duration::from_secs(5),
        );
        (c, client)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_scrapes_share_one_refresh_and_ttl_holds() {
        let (c, client) = cache(100, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(10);
        let waits: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.ensure_fresh(deadline).await })
            })
            .collect();
        for w in waits {
            assert_eq!(w.await.ok(), Some(Freshness::Refreshed));
        }
        assert_eq!(client.calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.ensure_fresh(deadline).await, Freshness::Fresh);
        assert_eq!(client.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            c.ensure_fresh(Instant::now() + Duration::from_secs(10))
                .await,
            Freshness::Refreshed
        );
        assert_eq!(client.calls.load(Ordering::SeqCst), 2);
        let view = c.view();
        assert!(view.up);
        assert_eq!(view.snapshot.map(|s| s.handshakes.len()), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_refresh_times_the_scrape_out_and_finishes_in_the_background() {
        let (c, client) = cache(3_000, Duration::from_secs(60));
        let r = c
            .ensure_fresh(Instant::now() + Duration::from_secs(1))
            .await;
        assert_eq!(r, Freshness::TimedOut);
        assert!(c.view().refreshing);
        assert!(c.view().snapshot.is_none());
        // A second scrape joins the same refresh instead of starting another.
        let r = c
            .ensure_fresh(Instant::now() + Duration::from_secs(5))
            .await;
        assert_eq!(r, Freshness::Refreshed);
        assert_eq!(client.calls.load(Ordering::SeqCst), 1);
        assert!(c.view().snapshot.is_some());
    }

    #[test]
    fn duplicates_are_dropped_first_kept_and_the_list_compacted() {
        let (c, _) = cache(0, Duration::from_secs(60));
        let mut list = Vec::with_capacity(64);
        for id in ["a", "b", "a", "c", "b", "a"] {
            let mut h = Handshake::new(Provider::Alibaba, Arc::from("other"), id);
            h.note = Some(format!("{}", list.len()));
            list.push(h);
        }
        let kept = c.prepare(list);
        let ids: Vec<(&str, Option<&str>)> = kept
            .iter()
            .map(|h| (h.id.as_str(), h.note.as_deref()))
            .collect();
        assert_eq!(ids, [("a", Some("0")), ("b", Some("1")), ("c", Some("3"))]);
        assert!(kept.capacity() < 64, "spare capacity kept");
        assert!(kept.iter().all(|h| *h.source == *"s1"));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_keep_the_last_good_snapshot() {
        let (c, client) = cache(0, Duration::from_secs(1));
        c.ensure_fresh(Instant::now() + Duration::from_secs(5))
            .await;
        assert!(c.view().up);
        client.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(2)).await;
        c.ensure_fresh(Instant::now() + Duration::from_secs(5))
            .await;
        let v = c.view();
        assert!(!v.up);
        assert_eq!(v.snapshot.map(|s| s.handshakes.len()), Some(1));
        assert_eq!(v.last_error.map(|e| e.reason), Some(Reason::Server));
    }

    #[tokio::test(start_paused = true)]
    async fn failing_since_is_the_first_failure_after_the_last_success() {
        let (c, client) = cache(0, Duration::from_secs(1));
        let refresh = || async {
            tokio::time::advance(Duration::from_secs(2)).await;
            c.ensure_fresh(Instant::now() + Duration::from_secs(5))
                .await;
        };
        refresh().await;
        assert_eq!(c.view().failing_since, None);
        client.fail.store(true, Ordering::SeqCst);
        let before = unix_now();
        refresh().await;
        let first = c.view().failing_since;
        assert!(first.is_some_and(|t| t >= before), "{first:?}");
        // A later failure keeps the start of the outage.
        std::thread::sleep(Duration::from_millis(5));
        refresh().await;
        assert_eq!(c.view().failing_since, first);
        client.fail.store(false, Ordering::SeqCst);
        refresh().await;
        assert_eq!(c.view().failing_since, None);
    }
}
