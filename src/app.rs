//! The running exporter: the current configuration and its source caches, and
//! atomic reload (a bad new configuration keeps the old one running).

use crate::cache::{RenderCache, RenderKey, Rendered, SourceCache, SourceView};
use crate::clock::unix_now;
use crate::config::{self, Config};
use crate::metrics::ExporterMetrics;
use crate::provider;
use crate::render::RenderOptions;
use crate::transport::{RetryPolicy, Transport, TransportSettings};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// One configuration with its live sources. Replaced whole on reload.
pub struct Runtime {
    pub config: Config,
    pub sources: Vec<Arc<SourceCache>>,
    pub render: RenderOptions,
    /// Rendered bodies shared by the scrapes of a wave (per runtime: a reload that
    /// changes the render options starts afresh).
    pub bodies: RenderCache,
}

impl Runtime {
    pub fn source(&self, name: &str) -> Option<&Arc<SourceCache>> {
        self.sources.iter().find(|s| *s.name == *name)
    }

    /// Bring every source up to date (concurrently), waiting at most until `deadline`,
    /// then return their views. A method of one runtime, so that a scrape renders the
    /// sources of the same configuration whose options it uses, even across a reload.
    pub async fn fresh_views(&self, deadline: Instant) -> Vec<SourceView> {
        let waits = self.sources.iter().map(|s| s.ensure_fresh(deadline));
        futures_util::future::join_all(waits).await;
        self.sources.iter().map(|s| s.view()).collect()
    }

    /// The snapshot families of `views` (all sources, or the one `/probe` asked for
    /// with `only`) at Unix time `now`, rendered once for every scrape that asks for
    /// the same data within the same second. `now` is cut to the second it falls in:
    /// `handshake_expires_in_seconds` is exact to that second, whichever scrape of
    /// the second rendered it.
    pub async fn exposition(
        &self,
        views: &[SourceView],
        only: Option<&str>,
        now: f64,
        metrics: &ExporterMetrics,
    ) -> Arc<Rendered> {
        let second = now.floor() as i64;
        let key = RenderKey {
            only: only.map(str::to_string),
            generations: views.iter().map(|v| v.generation).collect(),
            second,
        };
        // Shared until the second is over (a little past it: clocks read by
        // different tasks may differ by a few milliseconds).
        let keep = Duration::from_secs_f64(((second + 1) as f64 - now).clamp(0.0, 1.0))
            + Duration::from_millis(20);
        self.bodies
            .get_or_render(key, keep, views, &self.render, || metrics.renders.inc())
            .await
    }
}

/// Where the configuration comes from.
#[derive(Clone, Debug)]
pub enum ConfigOrigin {
    File(PathBuf),
    /// Built in code (`--demo`); reload re-applies it.
    Fixed(Box<Config>),
}

pub struct App {
    pub metrics: Arc<ExporterMetrics>,
    runtime: RwLock<Arc<Runtime>>,
    origin: ConfigOrigin,
    /// Process-wide cap on concurrent outbound API requests, resized on reload.
    outbound: Arc<Semaphore>,
    outbound_size: std::sync::Mutex<usize>,
    /// Held for a whole reload: SIGHUP and `POST /-/reload` apply one at a time, so
    /// two reloads cannot interleave their reads of the old runtime and their writes.
    reload_lock: std::sync::Mutex<()>,
    /// Applies running right now and the most seen at once (tests check it is 1).
    applying: std::sync::atomic::AtomicUsize,
    max_applying: std::sync::atomic::AtomicUsize,
    /// Retry policy for new sources (tests shorten it).
    retry: RetryPolicy,
}

impl App {
    /// Load the configuration and build every source. Fails on a bad configuration.
    pub fn new(origin: ConfigOrigin, metrics: Arc<ExporterMetrics>) -> Result<Arc<App>, String> {
        Self::with_retry(origin, metrics, RetryPolicy::default())
    }

    pub fn with_retry(
        origin: ConfigOrigin,
        metrics: Arc<ExporterMetrics>,
        retry: RetryPolicy,
    ) -> Result<Arc<App>, String> {
        let config = load(&origin)?;
        let outbound = Arc::new(Semaphore::new(config.max_concurrent_requests));
        let size = config.max_concurrent_requests;
        let placeholder = Arc::new(Runtime {
            render: render_options(&config),
            config: Config::with_sources(Vec::new()),
            sources: Vec::new(),
            bodies: RenderCache::default(),
        });
        let app = Arc::new(App {
            metrics,
            runtime: RwLock::new(placeholder),
            origin,
            outbound,
            outbound_size: std::sync::Mutex::new(size),
            reload_lock: std::sync::Mutex::new(()),
            applying: 0.into(),
            max_applying: 0.into(),
            retry,
        });
        app.apply(config)?;
        app.metrics.reload_successful.set(1);
        app.metrics.reload_success_timestamp.set(unix_now());
        Ok(app)
    }

    /// The current runtime (cheap: an `Arc` clone).
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-read the configuration and apply it; on error the old one stays.
    pub fn reload(&self) -> Result<(), String> {
        let _one_at_a_time = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = load(&self.origin).and_then(|c| self.apply(c));
        match &result {
            Ok(()) => {
                self.metrics.reload_successful.set(1);
                self.metrics.reload_success_timestamp.set(unix_now());
                tracing::info!("configuration reloaded");
            }
            Err(e) => {
                self.metrics.reload_successful.set(0);
                tracing::error!(error = %e, "configuration reload failed; keeping the running configuration");
            }
        }
        result
    }

    /// The most reloads seen applying a configuration at the same time (1 when
    /// serialised as they must be).
    pub fn max_concurrent_applies(&self) -> usize {
        self.max_applying.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn apply(&self, config: Config) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        let now = self.applying.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_applying.fetch_max(now, Ordering::SeqCst);
        let result = self.apply_inner(config);
        self.applying.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn apply_inner(&self, config: Config) -> Result<(), String> {
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        let old = self.runtime();
        let mut sources = Vec::with_capacity(config.sources.len());
        for sc in &config.sources {
            // An unchanged source keeps its cache (and so its data and freshness);
            // a changed one starts empty because its old data may not apply.
            let kept = old.source(&sc.name).filter(|c| {
                c.config.same_settings(sc)
                    && old.config.refresh_interval == config.refresh_interval
                    && old.config.refresh_timeout == config.refresh_timeout
            });
            if let Some(c) = kept {
                sources.push(c.clone());
                continue;
            }
            let transport = Transport::new(
                sc.provider,
                Arc::from(sc.name.as_str()),
                TransportSettings {
                    connect_timeout: sc.connect_timeout,
                    request_timeout: sc.request_timeout,
                    rate_limit: sc.rate_limit,
                    retry: self.retry.clone(),
                },
                self.metrics.clone(),
                self.outbound.clone(),
            )
            .map_err(|e| format!("source {:?}: {e}", sc.name))?;
            let client = provider::build(sc, transport);
            sources.push(SourceCache::new(
                sc.clone(),
                client,
                self.metrics.clone(),
                config.refresh_interval,
                config.refresh_timeout,
            ));
        }
        for gone in old
            .sources
            .iter()
            .filter(|o| config.source(&o.name).is_none())
        {
            gone.retire();
        }
        self.resize_outbound(config.max_concurrent_requests);
        let runtime = Arc::new(Runtime {
            render: render_options(&config),
            config,
            sources,
            bodies: RenderCache::default(),
        });
        *self.runtime.write().unwrap_or_else(|p| p.into_inner()) = runtime;
        Ok(())
    }

    /// Follow a new `max_concurrent_requests` at once. Raising adds permits. Lowering
    /// forgets the free permits now and, for the ones held by requests in flight, queues
    /// a claim for them that is served before any request that starts after the reload
    /// (tokio's semaphore is fair): so no new request starts until fewer than the new
    /// cap are in flight, and the claimed permits are then forgotten for good.
    /// (Requests already waiting when the reload came are ahead in the queue.)
    fn resize_outbound(&self, want: usize) {
        let mut size = self.outbound_size.lock().unwrap_or_else(|p| p.into_inner());
        if want > *size {
            // A pending claim from an earlier lowering takes these first, which is
            // what the arithmetic needs: the cap ends at `want` either way.
            self.outbound.add_permits(want - *size);
        } else if want < *size {
            let excess = *size - want;
            let forgotten = self.outbound.forget_permits(excess);
            let owed = excess - forgotten;
            if owed > 0 {
                let mut claim = Box::pin(
                    self.outbound
                        .clone()
                        .acquire_many_owned(u32::try_from(owed).unwrap_or(u32::MAX)),
                );
                // Poll once here so the claim joins the queue now, ahead of every
                // request that comes after this reload, not when a task first runs.
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                match claim.as_mut().poll(&mut cx) {
                    std::task::Poll::Ready(Ok(permits)) => permits.forget(),
                    std::task::Poll::Ready(Err(_)) => {}
                    std::task::Poll::Pending => match tokio::runtime::Handle::try_current() {
                        Ok(rt) => {
                            rt.spawn(async move {
                                if let Ok(permits) = claim.await {
                                    permits.forget();
                                }
                            });
                        }
                        // Outside a runtime nothing can be in flight.
                        Err(_) => {
                            tracing::warn!(owed, "cannot lower the outbound cap outside a runtime")
                        }
                    },
                }
            }
        }
        *size = want;
    }
}

fn render_options(config: &Config) -> RenderOptions {
    RenderOptions {
        per_invitation: config.per_invitation,
        target_label: config.target_label,
        windows: config.expiring_windows.clone(),
        max_invitation_series: config.max_invitation_series,
    }
}

fn load(origin: &ConfigOrigin) -> Result<Config, String> {
    match origin {
        ConfigOrigin::File(path) => config::load_file(path).map_err(|e| e.to_string()),
        ConfigOrigin::Fixed(c) => Ok((**c).clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{self, Dataset, Fault, FaultKind, Sim, SimServer, Tenant};
    use std::time::Duration;

    const AK: &str = "LTAI5tAppTests000000";
    const SK: &str = "app-tests-secret";
    const LIST: &str = "ListHandshakesForResourceDirectory";

    async fn sim_with_tenant() -> SimServer {
        crate::init_crypto();
        let s = Sim::new();
        let mut t = Tenant::new(AK, SK);
        t.datasets.insert(
            Dataset::AlibabaResourceDirectory,
            sim::data::generate(Dataset::AlibabaResourceDirectory, 3, 7, chrono::Utc::now()),
        );
        s.add_tenant(t);
        sim::start(s, "127.0.0.1:0".parse().expect("static address"))
            .await
            .expect("simulator binds loopback")
    }

    fn config(url: &str, max: usize, names: &[&str]) -> String {
        let mut c = format!("refresh_interval: 1s\nmax_concurrent_requests: {max}\nsources:\n");
        for n in names {
            c.push_str(&format!(
                "  - name: {n}\n    provider: alibaba\n    view: resource_directory\n    endpoint: {url}\n    credentials: {{access_key_id: {AK}, access_key_secret: {SK}}}\n"
            ));
        }
        c
    }

    fn app(path: &std::path::Path) -> Arc<App> {
        App::with_retry(
            ConfigOrigin::File(path.to_path_buf()),
            Arc::new(ExporterMetrics::new(false)),
            RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
        )
        .expect("valid config")
    }

    fn exposition(app: &App) -> String {
        let mut out = Vec::new();
        app.metrics.encode_into(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn reloads_apply_one_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yml");
        std::fs::write(&path, config("http://127.0.0.1:9", 4, &["a", "b", "c"])).expect("write");
        let app = app(&path);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..25 {
                        let _ = app.reload();
                    }
                });
            }
        });
        // Failed without the reload lock: "left: 3 (or more), right: 1".
        assert_eq!(app.max_concurrent_applies(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refresh_in_flight_for_a_removed_source_brings_no_series_back() {
        let server = sim_with_tenant().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yml");
        std::fs::write(&path, config(&server.url(), 8, &["keep", "gone"])).expect("write");
        let app = app(&path);
        server.sim.add_fault(
            AK,
            Fault {
                kind: FaultKind::Hang { ms: 1_500 },
                action: Some(LIST.into()),
                times: Some(2),
            },
        );
        let rt = app.runtime();
        let gone = rt.source("gone").expect("configured").clone();
        // Both refreshes start and hang; the scrape gives up at once.
        rt.fresh_views(Instant::now() + Duration::from_millis(50))
            .await;
        assert!(gone.view().refreshing);
        std::fs::write(&path, config(&server.url(), 8, &["keep"])).expect("write");
        app.reload().expect("reload");
        assert!(!exposition(&app).contains("source=\"gone\""));
        for _ in 0..100 {
            if !gone.view().refreshing {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!gone.view().refreshing, "the hung refresh finished");
        // Failed before: handshake_source_refreshes_total{source="gone"} 1 came back.
        let text = exposition(&app);
        let back: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains("source=\"gone\""))
            .collect();
        assert!(back.is_empty(), "series of the removed source: {back:?}");
        assert!(text.contains("source=\"keep\""));
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lowering_max_concurrent_requests_takes_effect_while_requests_are_in_flight() {
        let server = sim_with_tenant().await;
        server.sim.set_latency(Duration::from_millis(400));
        let names = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yml");
        std::fs::write(&path, config(&server.url(), 8, &names)).expect("write");
        let app = app(&path);
        let far = || Instant::now() + Duration::from_secs(20);
        // Eight sources, one request each, all at once under a cap of 8.
        let views = app.runtime().fresh_views(far()).await;
        assert!(views.iter().all(|v| v.up));
        assert_eq!(server.sim.max_in_flight(), 8);

        // Next round: reload to a cap of 2 while all eight are in flight.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        server.sim.reset_max_in_flight();
        let rt = app.runtime();
        let round = tokio::spawn(async move {
            rt.fresh_views(Instant::now() + Duration::from_secs(20))
                .await
        });
        for _ in 0..200 {
            if server.sim.max_in_flight() == 8 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(server.sim.max_in_flight(), 8, "eight requests in flight");
        std::fs::write(&path, config(&server.url(), 2, &names)).expect("write");
        app.reload().expect("reload");
        let views = round.await.expect("round finishes");
        assert!(views.iter().all(|v| v.up));

        // From now on at most two at once. Failed before: "left: 8" (the permits of
        // the requests in flight came back and the cap stayed 8).
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        server.sim.reset_max_in_flight();
        let views = app.runtime().fresh_views(far()).await;
        assert!(views.iter().all(|v| v.up), "{views:?}");
        assert_eq!(server.sim.max_in_flight(), 2);

        // Raising it again works too.
        std::fs::write(&path, config(&server.url(), 4, &names)).expect("write");
        app.reload().expect("reload");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        server.sim.reset_max_in_flight();
        let views = app.runtime().fresh_views(far()).await;
        assert!(views.iter().all(|v| v.up));
        assert!(server.sim.max_in_flight() <= 4);
        server.shutdown().await;
    }
}
