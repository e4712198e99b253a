//! The running exporter: the current configuration and its source caches, and
//! atomic reload (a bad new configuration keeps the old one running).

use crate::cache::{SourceCache, SourceView};
use crate::config::{self, Config};
use crate::metrics::ExporterMetrics;
use crate::provider;
use crate::render::RenderOptions;
use crate::transport::{RetryPolicy, Transport, TransportSettings};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// One configuration with its live sources. Replaced whole on reload.
pub struct Runtime {
    pub config: Config,
    pub sources: Vec<Arc<SourceCache>>,
    pub render: RenderOptions,
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
    /// Retry policy for new sources (tests shorten it).
    retry: RetryPolicy,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
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
        });
        let app = Arc::new(App {
            metrics,
            runtime: RwLock::new(placeholder),
            origin,
            outbound,
            outbound_size: std::sync::Mutex::new(size),
            reload_lock: std::sync::Mutex::new(()),
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

    fn apply(&self, config: Config) -> Result<(), String> {
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
    }
}

fn load(origin: &ConfigOrigin) -> Result<Config, String> {
    match origin {
        ConfigOrigin::File(path) => config::load_file(path).map_err(|e| e.to_string()),
        ConfigOrigin::Fixed(c) => Ok((**c).clone()),
    }
}
