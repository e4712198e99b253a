//! The HTTP layer: routes requests to the app. It owns no data and decides nothing
//! about freshness; it only turns requests into calls and results into responses.
//! Basic auth is [`crate::auth`]; the JSON API and the landing page are [`api`] and
//! [`landing`].

mod api;
mod landing;

pub use api::handshake_json;

use crate::app::App;
use crate::auth::{self, BasicAuth};
use crate::cache::SourceView;
use crate::clock::unix_now;
use crate::metrics::ExporterMetrics;
use crate::render::{self, RenderOptions};
use crate::webconfig::{self, WebConfig};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

/// A response body: a few chunks sent one after the other, with their total length
/// announced. A scrape's body is the shared rendering (the same `Bytes` for every
/// scrape of a wave, never copied per connection) followed by the scrape's own
/// registry text; hyper writes each chunk out as it is.
#[derive(Debug, Default)]
pub struct Body {
    chunks: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl Body {
    pub fn from_chunks(chunks: impl IntoIterator<Item = Bytes>) -> Body {
        let chunks: std::collections::VecDeque<Bytes> =
            chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Body { chunks, remaining }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::from_chunks([b])
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let next = self.chunks.pop_front();
        if let Some(c) = &next {
            self.remaining -= c.len() as u64;
        }
        std::task::Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Live lookups allowed in flight at once, process-wide; more get 429. Each one is
/// a signed cloud call, so this stays small whatever the client does.
pub const LIVE_LOOKUP_CONCURRENCY: usize = 4;

/// How long in-flight connections may finish their responses after shutdown
/// begins. Waiting scrapes are answered from the cache at once when it begins, so
/// this only covers writing those answers out.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// What `--web.config.file` sets: replaced whole when the file is re-read.
#[derive(Default)]
pub struct WebSecurity {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// `None` = no auth.
    pub auth: Option<Arc<BasicAuth>>,
}

impl WebSecurity {
    pub fn from_config(wc: WebConfig) -> WebSecurity {
        WebSecurity {
            tls: wc.tls,
            auth: BasicAuth::new(wc.basic_auth),
        }
    }
}

/// HTTP server settings from the command line and `--web.config.file`.
pub struct WebOptions {
    pub telemetry_path: String,
    /// Cap on concurrent `/metrics` and `/probe` requests; over it, 503.
    pub metrics_permits: Arc<Semaphore>,
    pub max_requests: usize,
    /// `--web.config.file`, re-read by [`reload`].
    pub web_config_file: Option<PathBuf>,
    security: RwLock<Arc<WebSecurity>>,
    /// `--web.enable-lifecycle`: `POST /-/reload` (as in Prometheus).
    pub enable_lifecycle: bool,
    /// `--web.enable-live-lookup`: `GET /api/v1/sources/{source}/handshakes/{id}`.
    pub enable_live_lookup: bool,
    live_permits: Semaphore,
    /// `--web.max-connections`: connections beyond it wait in the kernel's accept queue.
    pub max_connections: usize,
    /// `--web.read-header-timeout`: a request's headers must arrive within this long
    /// of the server starting to wait for them (which also closes idle keep-alive
    /// connections after this long).
    pub read_header_timeout: Duration,
    stop: watch::Sender<bool>,
}

impl WebOptions {
    pub fn new(telemetry_path: &str, max_requests: usize) -> WebOptions {
        WebOptions {
            telemetry_path: telemetry_path.to_string(),
            metrics_permits: Arc::new(Semaphore::new(max_requests.max(1))),
            max_requests,
            web_config_file: None,
            security: RwLock::new(Arc::new(WebSecurity::default())),
            enable_lifecycle: false,
            enable_live_lookup: false,
            live_permits: Semaphore::new(LIVE_LOOKUP_CONCURRENCY),
            max_connections: 512,
            read_header_timeout: Duration::from_secs(10),
            stop: watch::channel(false).0,
        }
    }

    /// The TLS and auth settings in force (cheap: an `Arc` clone).
    pub fn security(&self) -> Arc<WebSecurity> {
        self.security
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_security(&self, security: WebSecurity) {
        *self.security.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(security);
    }

    /// Re-read `--web.config.file` (certificate, key, users). On error the running
    /// settings stay and the error is returned (and logged).
    pub fn reload_web_config(&self) -> Result<(), String> {
        let Some(path) = &self.web_config_file else {
            return Ok(());
        };
        match webconfig::load(path) {
            Ok(wc) => {
                self.set_security(WebSecurity::from_config(wc));
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "web configuration reload failed; keeping the running one");
                Err(e)
            }
        }
    }

    /// Begin shutdown: stop accepting, answer waiting scrapes from the cache.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// Run `fut` unless shutdown begins first (`None` then): a scrape that waits on a
/// hung refresh is answered from the cache as soon as the process is told to stop.
async fn unless_stopping<F: std::future::Future>(web: &WebOptions, fut: F) -> Option<F::Output> {
    let mut stop = web.stopping();
    tokio::select! {
        out = fut => Some(out),
        _ = stop.wait_for(|s| *s) => None,
    }
}

/// Reload the configuration and the web configuration (SIGHUP and `POST /-/reload`).
/// Runs on the blocking pool: it reads files and may wait for another reload.
pub async fn reload(app: &Arc<App>, web: &Arc<WebOptions>) -> Result<(), String> {
    let (app, web) = (app.clone(), web.clone());
    tokio::task::spawn_blocking(move || {
        let config = app.reload();
        let webc = web
            .reload_web_config()
            .map_err(|e| format!("web configuration: {e}"));
        match (config, webc) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(a), Err(b)) => Err(format!("{a}; {b}")),
        }
    })
    .await
    .unwrap_or_else(|e| Err(format!("reload task failed: {e}")))
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    respond_chunks(status, content_type, Body::from(body.into()))
}

fn respond_chunks(status: StatusCode, content_type: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// How long a scrape may wait for fresh data: Prometheus' advertised timeout minus
/// the configured offset, or the configured default; never more than `max` (the
/// refresh timeout: no refresh outlives it, so waiting longer gains nothing).
///
/// The header is client input: huge values (`1e19`, `1e300`), `NaN`, negatives and
/// garbage must neither panic (`Duration::from_secs_f64` and `Instant + Duration`
/// both do on overflow) nor hold a connection for longer than a refresh may take.
pub fn scrape_deadline(
    headers: &HeaderMap,
    offset: Duration,
    default: Duration,
    max: Duration,
) -> Instant {
    let advertised = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        // Clamp before converting: a value beyond `max` is `max`.
        .and_then(|v| Duration::try_from_secs_f64(v.min(max.as_secs_f64())).ok());
    let budget = match advertised {
        Some(t) => t.saturating_sub(offset).max(Duration::from_millis(100)),
        None => default,
    }
    .min(max);
    let now = Instant::now();
    now.checked_add(budget).unwrap_or(now)
}

/// Route one request.
pub async fn handle(app: Arc<App>, web: Arc<WebOptions>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if !auth::is_open(&path) {
        if let Some(auth) = web.security().auth.clone() {
            if !auth.check(req.headers()).await {
                let mut r = respond(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized\n");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(auth::CHALLENGE),
                );
                return r;
            }
        }
    }
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, p) if p == web.telemetry_path => {
            metrics(&app, &web, req.headers(), None).await
        }
        (&Method::GET, "/probe") => {
            let source = crate::query::parse_query(&query, true)
                .into_iter()
                .find(|(k, _)| k == "source")
                .map(|(_, v)| v);
            match source {
                None => respond(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "missing ?source=NAME\n",
                ),
                Some(s) => metrics(&app, &web, req.headers(), Some(&s)).await,
            }
        }
        (&Method::GET, "/") => landing::landing(&app, &web, req.headers(), &query).await,
        (&Method::GET, "/-/healthy") => respond(StatusCode::OK, "text/plain", "Healthy\n"),
        // Ready once the configuration is loaded and the listener is up: readiness
        // never waits on a cloud API.
        (&Method::GET, "/-/ready") => respond(StatusCode::OK, "text/plain", "Ready\n"),
        (&Method::POST | &Method::PUT, "/-/reload") if !web.enable_lifecycle => respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            "Lifecycle API is not enabled: start the exporter with --web.enable-lifecycle, or send SIGHUP\n",
        ),
        (&Method::POST | &Method::PUT, "/-/reload") => match reload(&app, &web).await {
            Ok(()) => respond(StatusCode::OK, "text/plain", "configuration reloaded\n"),
            Err(e) => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("reload failed, running configuration kept: {e}\n"),
            ),
        },
        (_, "/-/reload") => respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use POST\n"),
        (&Method::GET, "/api/v1/handshakes") => {
            api::handshakes_json(&app, &web, req.headers()).await
        }
        (&Method::GET, p) if p.starts_with("/api/v1/sources/") => {
            api::live_get(&app, &web, p).await
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

async fn metrics(
    app: &App,
    web: &WebOptions,
    headers: &HeaderMap,
    only: Option<&str>,
) -> Response<Body> {
    let Ok(_permit) = web.metrics_permits.try_acquire() else {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!(
                "more than {} concurrent scrapes; try again\n",
                web.max_requests
            ),
        );
    };
    let rt = app.runtime();
    let deadline = scrape_deadline(
        headers,
        rt.config.scrape_timeout_offset,
        rt.config.default_scrape_timeout,
        rt.config.refresh_timeout,
    );
    let views: Vec<SourceView> = match only {
        None => match unless_stopping(web, rt.fresh_views(deadline)).await {
            Some(views) => views,
            None => rt.sources.iter().map(|s| s.view()).collect(),
        },
        Some(name) => match rt.source(name) {
            None => {
                return respond(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    format!("unknown source {name:?}\n"),
                );
            }
            Some(s) => {
                unless_stopping(web, s.ensure_fresh(deadline)).await;
                vec![s.view()]
            }
        },
    };
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let body = scrape_body(&rt, &app.metrics, &views, only, unix_now(), accepts_gzip).await;
    let mut r = respond_chunks(StatusCode::OK, TEXT_FORMAT, body.body);
    if body.gzip {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// A scrape's answer: its chunks, and whether they are gzip.
pub struct ScrapeBody {
    pub body: Body,
    pub gzip: bool,
}

/// What `/metrics` (or `/probe`, with `only`) sends at Unix time `now`: the snapshot
/// families shared by every scrape of the wave (rendered and, for gzip, compressed
/// once), then the exporter's own registry, encoded for this scrape so that its
/// counters are never stale.
pub async fn scrape_body(
    rt: &crate::app::Runtime,
    metrics: &ExporterMetrics,
    views: &[SourceView],
    only: Option<&str>,
    now: f64,
    gzip: bool,
) -> ScrapeBody {
    let shared = rt.exposition(views, only, now, metrics).await;
    let mut tail = Vec::new();
    match only {
        None => metrics.encode_into(&mut tail),
        Some(name) => metrics.encode_source_into(name, &mut tail),
    }
    if gzip {
        let deflated = shared
            .compressed(|text| match render::deflate(text) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "compressing the exposition failed; sending it uncompressed");
                    None
                }
            })
            .await;
        if let Some(chunks) = deflated.and_then(|d| render::gzip_chunks(&d, &tail).ok()) {
            return ScrapeBody {
                body: Body::from_chunks(chunks),
                gzip: true,
            };
        }
    }
    ScrapeBody {
        body: Body::from_chunks(shared.chunks().into_iter().chain([Bytes::from(tail)])),
        gzip: false,
    }
}

/// The whole `/metrics` body (or `/probe`'s, with `only`): the families rendered from
/// the snapshots, then the exporter's own registry. With [`gzip`], this is all the
/// work a scrape with a warm cache does; `benches/hot.rs` measures it.
pub fn metrics_body(
    views: &[SourceView],
    now: f64,
    opts: &RenderOptions,
    metrics: &ExporterMetrics,
    only: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::new();
    render::render(&mut out, views, now, opts);
    match only {
        None => metrics.encode_into(&mut out),
        Some(name) => metrics.encode_source_into(name, &mut out),
    }
    out
}

/// Gzip a body at the fast level: the exposition is repetitive, so level 1 already
/// shrinks it several times over at a fraction of the default level's cost.
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 6),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// Serve until [`WebOptions::shutdown`], then give in-flight connections
/// [`SHUTDOWN_GRACE`] to finish and drop the rest.
///
/// At most `max_connections` connections are open at once: beyond that the server
/// stops accepting and new connections wait in the kernel's accept queue (as Go's
/// `netutil.LimitListener` in exporter-toolkit), so a flood of idle connections
/// cannot exhaust file descriptors or memory; they are served as slots free up.
pub async fn serve(app: Arc<App>, web: Arc<WebOptions>, listener: TcpListener) {
    let mut shutdown = web.stopping();
    let slots = Arc::new(Semaphore::new(web.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Without it a response's last small chunk (the registry after a large shared
        // body) waits for the client's delayed ACK: 40 ms on Linux (Nagle).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        let app = app.clone();
        let web = web.clone();
        connections.spawn(async move {
            let _slot = slot;
            // Read per connection: a reloaded certificate applies to new connections.
            match web.security().tls.clone() {
                None => serve_connection(stream, app, web).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(web.read_header_timeout, handshake).await {
                        Ok(Ok(tls)) => serve_connection(tls, app, web).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    // Stop accepting: connections still in the queue are refused, not left hanging.
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
            remaining = connections.len(),
            "closing connections that did not finish within the shutdown grace"
        );
        connections.abort_all();
    }
}

async fn serve_connection<IO>(io: IO, app: Arc<App>, web: Arc<WebOptions>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut stop = web.stopping();
    let read_header_timeout = web.read_header_timeout;
    let svc = hyper::service::service_fn(move |req| {
        let app = app.clone();
        let web = web.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(app, web, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        // hyper starts this timer whenever it waits for a request's head: on a new
        // connection, between keep-alive requests, and while headers trickle in. So
        // it is both the slowloris guard and the keep-alive idle timeout.
        .header_read_timeout(read_header_timeout)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    tokio::pin!(conn);
    let stopping = tokio::select! {
        _ = conn.as_mut() => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    if stopping {
        // Finishes a response being written, then closes; a connection between
        // requests closes at once. `serve` bounds the whole by SHUTDOWN_GRACE.
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ConfigOrigin;
    use crate::cache::Snapshot;
    use crate::config::Config;
    use crate::model::Provider;
    use crate::sim::{Dataset, data};
    use http_body_util::BodyExt;

    /// An app with no sources of its own, and a view of `n` generated invitations
    /// (as the cache hands them to scrapes), for driving `scrape_body` directly.
    fn app_and_view(n: usize) -> (Arc<App>, SourceView) {
        let app = App::new(
            ConfigOrigin::Fixed(Box::new(Config::with_sources(Vec::new()))),
            Arc::new(ExporterMetrics::new(false)),
        )
        .expect("a configuration without sources is valid");
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
        let view = SourceView {
            name: Arc::from("rd"),
            provider: Provider::Alibaba,
            snapshot: Some(Arc::new(Snapshot {
                handshakes: data::generate(Dataset::AlibabaResourceDirectory, n, 5, now),
                fetched_at: 1_800_000_000.0,
            })),
            up: true,
            last_success: Some(1_800_000_000.0),
            last_duration: Some(Duration::from_millis(20)),
            last_error: None,
            failing_since: None,
            refreshing: false,
            generation: 7,
        };
        (app, view)
    }

    async fn text_of(body: ScrapeBody) -> String {
        let bytes = body
            .body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        if !body.gzip {
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .expect("a valid gzip stream");
        text
    }

    fn expires_in(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("handshake_expires_in_seconds{"))
            .map(str::to_string)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forty_concurrent_scrapes_of_unchanged_data_render_once() {
        let (app, view) = app_and_view(2_000);
        let rt = app.runtime();
        // One Unix second: the clock is passed in, so the test never straddles one.
        let second = 1_800_000_100.0;
        let scrapes: Vec<_> = (0..40)
            .map(|i| {
                let (app, rt, view) = (app.clone(), rt.clone(), view.clone());
                tokio::spawn(async move {
                    let now = second + f64::from(i) * 0.02;
                    let body = scrape_body(&rt, &app.metrics, &[view], None, now, i % 2 == 0).await;
                    text_of(body).await
                })
            })
            .collect();
        let mut texts = Vec::new();
        for s in scrapes {
            texts.push(s.await.expect("scrape task"));
        }
        // Failed before (every scrape rendered its own body): "left: 40".
        assert_eq!(rt.bodies.renders(), 1);
        assert_eq!(app.metrics.renders.get(), 1);
        // Gzip and plain scrapes got the same exposition (the gzip one is a single
        // valid member spliced from the shared blocks and the scrape's registry).
        let plain = &texts[1];
        assert!(
            plain.contains("handshake_exporter_renders_total 1\n"),
            "{plain}"
        );
        assert!(texts.iter().all(|t| t == plain));
        assert!(plain.ends_with('\n'));
        assert!(!expires_in(plain).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn probe_scrapes_share_per_source_apart_from_metrics() {
        let (app, view) = app_and_view(200);
        let rt = app.runtime();
        let views = [view];
        let now = 1_800_000_200.5;
        for gzip in [false, true, false] {
            scrape_body(&rt, &app.metrics, &views, Some("rd"), now, gzip).await;
        }
        // Failed with the key left without `only` ('left: 1 right: 2'): /metrics
        // would have been answered with the /probe body.
        assert_eq!(rt.bodies.renders(), 1);
        let all = text_of(scrape_body(&rt, &app.metrics, &views, None, now, false).await).await;
        assert_eq!(rt.bodies.renders(), 2);
        assert!(all.contains("handshake_exporter_build_info"));
        let probe =
            text_of(scrape_body(&rt, &app.metrics, &views, Some("rd"), now, true).await).await;
        assert_eq!(rt.bodies.renders(), 2);
        assert!(!probe.contains("handshake_exporter_build_info"));
        assert!(
            probe.contains(
                "handshake_source_series_dropped{provider=\"alibaba\",source=\"rd\"} 0\n"
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_scrape_in_the_next_second_renders_again_with_the_new_expires_in() {
        let (app, view) = app_and_view(300);
        let rt = app.runtime();
        let views = [view];
        let at = |now: f64, gzip: bool| scrape_body(&rt, &app.metrics, &views, None, now, gzip);
        let first = text_of(at(1_800_000_100.25, false).await).await;
        let same = text_of(at(1_800_000_100.99, true).await).await;
        assert_eq!(rt.bodies.renders(), 1);
        assert_eq!(expires_in(&first), expires_in(&same));
        let next = text_of(at(1_800_000_101.0, false).await).await;
        // Failed before the change in the way this checks: a shared body keyed
        // without the second kept "left: 1" renders and the old values.
        assert_eq!(rt.bodies.renders(), 2);
        let (a, b) = (expires_in(&first), expires_in(&next));
        assert_eq!(a.len(), b.len());
        assert!(!a.is_empty());
        for (a, b) in a.iter().zip(&b) {
            let value = |l: &str| l.rsplit(' ').next().and_then(|v| v.parse::<i64>().ok());
            // Exact to the second: whole seconds, one less.
            let (Some(va), Some(vb)) = (value(a), value(b)) else {
                panic!("not whole seconds: {a} / {b}");
            };
            assert_eq!(vb, va - 1, "{a} / {b}");
        }
        // The shared body is let go a second after it was made.
        assert!(rt.bodies.holds(None));
        tokio::time::sleep(crate::cache::RENDER_KEEP + Duration::from_millis(10)).await;
        assert!(!rt.bodies.holds(None));
        // A refresh (new generation) renders again within the same second.
        let mut changed = views[0].clone();
        changed.generation += 1;
        scrape_body(&rt, &app.metrics, &[changed], None, 1_800_000_101.5, false).await;
        assert_eq!(rt.bodies.renders(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn seconds_of_steady_scrapes_fill_in_one_template_and_an_idle_one_is_let_go() {
        let (app, view) = app_and_view(300);
        let rt = app.runtime();
        let views = [view];
        let start = 1_800_000_100.1;
        let mut last = String::new();
        // Five seconds of scrapes 350 ms apart, half of them gzip: the first scrape
        // of a second (which renders) can come more than a second after the one
        // before, but never more than a second after the last scrape.
        for i in 0..15 {
            let now = start + f64::from(i) * 0.35;
            last =
                text_of(scrape_body(&rt, &app.metrics, &views, None, now, i % 2 == 0).await).await;
            tokio::time::sleep(Duration::from_millis(350)).await;
        }
        assert_eq!(rt.bodies.renders(), 6);
        // Failed with the template kept for a second after it was last filled in
        // rather than after it was last wanted: "left: 5 right: 1".
        assert_eq!(rt.bodies.templates(), 1);
        let mut whole = Vec::new();
        render::render(&mut whole, &views, 1_800_000_105.0, &rt.render);
        assert!(last.starts_with(&String::from_utf8_lossy(&whole).into_owned()));
        // No scrape for a second: the template goes, and the next scrape makes one.
        tokio::time::sleep(crate::cache::TEMPLATE_KEEP + Duration::from_millis(10)).await;
        assert!(!rt.bodies.holds_template(None));
        scrape_body(&rt, &app.metrics, &views, None, start + 7.0, false).await;
        assert_eq!(rt.bodies.templates(), 2);
        assert!(rt.bodies.holds_template(None));
        // A refresh (new generation) makes a new one.
        let mut changed = views[0].clone();
        changed.generation += 1;
        scrape_body(&rt, &app.metrics, &[changed], None, start + 7.0, false).await;
        assert_eq!(rt.bodies.templates(), 3);
    }

    fn deadline_for(value: &[u8]) -> Duration {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(value) {
            h.insert("x-prometheus-scrape-timeout-seconds", v);
        }
        let start = Instant::now();
        scrape_deadline(
            &h,
            Duration::from_millis(500),
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
        .saturating_duration_since(start)
    }

    #[test]
    fn hostile_scrape_timeout_headers_never_panic_and_are_clamped() {
        // Failed before: `1e19` panicked with "overflow when adding duration to instant".
        for v in ["1e19", "1e300", "18446744073709551616", "1e10"] {
            let d = deadline_for(v.as_bytes());
            assert!(d <= Duration::from_millis(30_100), "{v}: {d:?}");
            assert!(d >= Duration::from_secs(29), "{v}: {d:?}");
        }
        // Not a usable timeout: the default applies.
        for v in [
            &b"NaN"[..],
            b"-1",
            b"garbage",
            b"0",
            b"-inf",
            b"inf",
            b"",
            b"\xff\xfe",
        ] {
            let d = deadline_for(v);
            assert!(
                d <= Duration::from_millis(10_100) && d >= Duration::from_secs(9),
                "{v:?}: {d:?}"
            );
        }
        // Tiny values still leave the minimum wait; a normal one is honoured.
        assert!(deadline_for(b"1e-300") <= Duration::from_millis(200));
        let d = deadline_for(b"15");
        assert!(d <= Duration::from_millis(14_600) && d >= Duration::from_millis(14_000));
    }
}
