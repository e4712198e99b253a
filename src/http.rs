//! The HTTP layer: routes requests to the app. It owns no data and decides nothing
//! about freshness; it only turns requests into calls and results into responses.

use crate::app::App;
use crate::cache::SourceView;
use crate::config::TargetLabel;
use crate::error::Reason;
use crate::metrics::ExporterMetrics;
use crate::model::Handshake;
use crate::render::{self, RenderOptions, show_maybe_email, show_target};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

pub type Body = Full<Bytes>;

/// HTTP server settings from the command line and `--web.config.file`.
pub struct WebOptions {
    pub telemetry_path: String,
    /// Cap on concurrent `/metrics` and `/probe` requests; over it, 503.
    pub metrics_permits: Arc<Semaphore>,
    pub max_requests: usize,
    /// Basic-auth users with bcrypt hashes; empty = no auth.
    pub basic_auth: Vec<(String, String)>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl WebOptions {
    pub fn new(telemetry_path: &str, max_requests: usize) -> WebOptions {
        WebOptions {
            telemetry_path: telemetry_path.to_string(),
            metrics_permits: Arc::new(Semaphore::new(max_requests.max(1))),
            max_requests,
            basic_auth: Vec::new(),
            tls: None,
        }
    }
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
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
    if !web.basic_auth.is_empty() && !authorized(&web.basic_auth, req.headers()) {
        let mut r = respond(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized\n");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"handshake_exporter\""),
        );
        return r;
    }
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, p) if p == web.telemetry_path => {
            metrics(&app, &web, req.headers(), None).await
        }
        (&Method::GET, "/probe") => {
            let source = crate::provider::parse_query(&query, true)
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
        (&Method::GET, "/") => landing(&app, &web),
        (&Method::GET, "/-/healthy") => respond(StatusCode::OK, "text/plain", "Healthy\n"),
        // Ready once the configuration is loaded and the listener is up: readiness
        // never waits on a cloud API.
        (&Method::GET, "/-/ready") => respond(StatusCode::OK, "text/plain", "Ready\n"),
        (&Method::POST | &Method::PUT, "/-/reload") => match app.reload() {
            Ok(()) => respond(StatusCode::OK, "text/plain", "configuration reloaded\n"),
            Err(e) => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("reload failed, running configuration kept: {e}\n"),
            ),
        },
        (_, "/-/reload") => respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use POST\n"),
        (&Method::GET, "/api/v1/handshakes") => handshakes_json(&app, req.headers()).await,
        (&Method::GET, p) if p.starts_with("/api/v1/sources/") => live_get(&app, p).await,
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

fn authorized(users: &[(String, String)], headers: &HeaderMap) -> bool {
    use base64::Engine;
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, password)) = decoded.split_once(':') else {
        return false;
    };
    users
        .iter()
        .any(|(u, hash)| u == user && bcrypt::verify(password, hash).unwrap_or(false))
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
        None => rt.fresh_views(deadline).await,
        Some(name) => match rt.source(name) {
            None => {
                return respond(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    format!("unknown source {name:?}\n"),
                );
            }
            Some(s) => {
                s.ensure_fresh(deadline).await;
                vec![s.view()]
            }
        },
    };
    let out = metrics_body(&views, unix_now(), &rt.render, &app.metrics, only);
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if accepts_gzip {
        if let Ok(compressed) = gzip(&out) {
            let mut r = respond(StatusCode::OK, TEXT_FORMAT, compressed);
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return r;
        }
    }
    respond(StatusCode::OK, TEXT_FORMAT, out)
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

/// One invitation as the JSON API shows it (target masked like in metrics).
pub fn handshake_json(h: &Handshake, rule: TargetLabel, now: f64) -> serde_json::Value {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let mut v = serde_json::json!({
        "source": &*h.source,
        "provider": h.provider.as_str(),
        "id": h.id,
        "status": h.status.as_str(),
        "target_type": h.target_type.as_str(),
        "target": show_target(h.target_entity.as_deref(), rule),
        "directory_id": h.directory_id,
        "management_account_id": h.management_account_id,
        "management_account_name": show_maybe_email(h.management_account_name.as_deref(), rule),
        "created_at": time(h.created_at),
        "modified_at": time(h.modified_at),
        "expires_at": time(h.expires_at),
        "expires_in_seconds": h.expires_at.map(|e| e.timestamp() as f64 - now.floor()),
    });
    // Notes are free text written by people (names, emails): shown only when the
    // operator chose to show targets in full.
    if rule == TargetLabel::Full {
        v["note"] = serde_json::json!(h.note);
    }
    v
}

async fn handshakes_json(app: &App, headers: &HeaderMap) -> Response<Body> {
    let rt = app.runtime();
    let deadline = scrape_deadline(
        headers,
        rt.config.scrape_timeout_offset,
        rt.config.default_scrape_timeout,
        rt.config.refresh_timeout,
    );
    let views = rt.fresh_views(deadline).await;
    let now = unix_now();
    let items: Vec<serde_json::Value> = views
        .iter()
        .filter_map(|v| v.snapshot.as_ref())
        .flat_map(|s| s.handshakes.iter())
        .map(|h| handshake_json(h, rt.config.target_label, now))
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "handshakes": items }))
}

async fn live_get(app: &App, path: &str) -> Response<Body> {
    // /api/v1/sources/{source}/handshakes/{id}
    let rest = path.trim_start_matches("/api/v1/sources/");
    let parts: Vec<&str> = rest.split('/').collect();
    let [source, "handshakes", id] = parts.as_slice() else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    };
    let source = crate::provider::percent_decode(source, false);
    let id = crate::provider::percent_decode(id, false);
    let rt = app.runtime();
    let Some(cache) = rt.source(&source) else {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": {"reason": "unknown_source", "message": format!("no source named {source:?}")}}),
        );
    };
    let deadline = Instant::now() + cache.refresh_timeout().min(Duration::from_secs(30));
    match cache.get_live(&id, deadline).await {
        Ok(h) => json(
            StatusCode::OK,
            &serde_json::json!({"handshake": handshake_json(&h, rt.config.target_label, unix_now())}),
        ),
        Err(e) => {
            let status = match e.reason {
                Reason::NotFound => StatusCode::NOT_FOUND,
                Reason::BadRequest => StatusCode::BAD_REQUEST,
                Reason::Timeout => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            };
            json(
                status,
                &serde_json::json!({"error": {
                    "reason": e.reason.metric_label(),
                    "action": e.action,
                    "code": e.code,
                    "message": e.message,
                    "request_id": e.request_id,
                }}),
            )
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn landing(app: &App, web: &WebOptions) -> Response<Body> {
    let rt = app.runtime();
    let mut rows = String::new();
    for s in &rt.sources {
        let v = s.view();
        let count = v.snapshot.as_ref().map_or(0, |s| s.handshakes.len());
        let pending = v.snapshot.as_ref().map_or(0, |s| {
            s.handshakes
                .iter()
                .filter(|h| h.status == crate::model::Status::Pending)
                .count()
        });
        let last = v.last_success.map_or_else(
            || "never".to_string(),
            |t| {
                chrono::DateTime::from_timestamp(t as i64, 0)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            },
        );
        let state = if v.refreshing {
            "refreshing"
        } else if v.up {
            "up"
        } else if v.last_duration.is_none() {
            "not yet fetched (scrape /metrics)"
        } else {
            "down"
        };
        let error = v
            .last_error
            .as_ref()
            .map(|e| {
                format!(
                    "{} ({}{})",
                    e.reason,
                    e.action,
                    e.code
                        .as_ref()
                        .map(|c| format!(", {c}"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td><a href=\"/probe?source={n}\">{n}</a></td><td>{p}</td><td>{view}</td><td>{state}</td><td>{count}</td><td>{pending}</td><td>{last}</td><td>{err}</td></tr>\n",
            n = html_escape(&s.name),
            p = s.provider(),
            view = s.config.view.as_str(),
            err = html_escape(&error),
        ));
    }
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>handshake_exporter</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>\
<body><h1>handshake_exporter</h1><p>Prometheus exporter for cloud organization invitations (handshakes). Version {version}.</p>\
<ul><li><a href=\"{metrics}\">Metrics</a></li><li><a href=\"/api/v1/handshakes\">Cached invitations (JSON)</a></li>\
<li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\
<h2>Sources</h2><p>Refresh interval {interval:?}. Data is fetched when a scrape finds it older than that.</p>\
<table><tr><th>source</th><th>provider</th><th>view</th><th>state</th><th>invitations</th><th>pending</th><th>last success</th><th>last error</th></tr>\n{rows}</table></body></html>\n",
        version = crate::metrics::VERSION,
        metrics = html_escape(&web.telemetry_path),
        interval = rt.config.refresh_interval,
    );
    respond(StatusCode::OK, "text/html; charset=utf-8", page)
}

/// Serve until `shutdown` turns true, then finish in-flight requests (at most 5 s).
pub async fn serve(
    app: Arc<App>,
    web: Arc<WebOptions>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let app = app.clone();
                let web = web.clone();
                let stop = shutdown.clone();
                connections.spawn(async move {
                    match web.tls.clone() {
                        None => serve_connection(stream, app, web, stop).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => serve_connection(tls, app, web, stop).await,
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        }
                    }
                });
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
        }
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within 5s of shutdown");
    }
}

async fn serve_connection<IO>(
    io: IO,
    app: Arc<App>,
    web: Arc<WebOptions>,
    mut stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let app = app.clone();
        let web = web.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(app, web, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(Duration::from_secs(30))
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    tokio::pin!(conn);
    let stopping = tokio::select! {
        _ = conn.as_mut() => false,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => true,
    };
    if stopping {
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
