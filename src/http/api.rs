//! The JSON API: `/api/v1/handshakes` (the cached invitations) and the opt-in live
//! lookup `/api/v1/sources/{source}/handshakes/{id}`.

use super::{Body, LIVE_LOOKUP_CONCURRENCY, WebOptions, respond, scrape_deadline, unless_stopping};
use crate::app::App;
use crate::clock::unix_now;
use crate::config::TargetLabel;
use crate::error::Reason;
use crate::model::Handshake;
use crate::render::{show_maybe_email, show_target};
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use std::time::Duration;
use tokio::time::Instant;

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
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

pub(super) async fn handshakes_json(
    app: &App,
    web: &WebOptions,
    headers: &HeaderMap,
) -> Response<Body> {
    let rt = app.runtime();
    let deadline = scrape_deadline(
        headers,
        rt.config.scrape_timeout_offset,
        rt.config.default_scrape_timeout,
        rt.config.refresh_timeout,
    );
    let views = match unless_stopping(web, rt.fresh_views(deadline)).await {
        Some(views) => views,
        None => rt.sources.iter().map(|s| s.view()).collect(),
    };
    let now = unix_now();
    let items: Vec<serde_json::Value> = views
        .iter()
        .filter_map(|v| v.snapshot.as_ref())
        .flat_map(|s| s.handshakes.iter())
        .map(|h| handshake_json(h, rt.config.target_label, now))
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "handshakes": items }))
}

fn json_error(status: StatusCode, reason: &str, message: String) -> Response<Body> {
    json(
        status,
        &serde_json::json!({"error": {"reason": reason, "message": message}}),
    )
}

/// `GET /api/v1/sources/{source}/handshakes/{id}`: one invitation fetched live
/// through the source's credentials. Every answer it gives costs a signed cloud call
/// from the organization's quota, so: off unless `--web.enable-live-lookup`; only
/// ids the source already knows (its cache or `handshake_ids`), never made-up ones;
/// through the source's transport (its `rate_limit` and the outbound cap); and at
/// most [`LIVE_LOOKUP_CONCURRENCY`] at once (429 beyond).
pub(super) async fn live_get(app: &App, web: &WebOptions, path: &str) -> Response<Body> {
    // /api/v1/sources/{source}/handshakes/{id}
    let rest = path.trim_start_matches("/api/v1/sources/");
    let parts: Vec<&str> = rest.split('/').collect();
    let [source, "handshakes", id] = parts.as_slice() else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    };
    if !web.enable_live_lookup {
        return json_error(
            StatusCode::FORBIDDEN,
            "disabled",
            "the live lookup is disabled: start the exporter with --web.enable-live-lookup (cached data: /api/v1/handshakes)".into(),
        );
    }
    let source = crate::query::percent_decode(source, false);
    let id = crate::query::percent_decode(id, false);
    let rt = app.runtime();
    let Some(cache) = rt.source(&source) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!("no source named {source:?}"),
        );
    };
    if !cache.knows(&id) {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "invitation {id:?} is neither in source {source:?}'s cache nor in its handshake_ids; the live lookup only re-reads known invitations"
            ),
        );
    }
    let Ok(_permit) = web.live_permits.try_acquire() else {
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("more than {LIVE_LOOKUP_CONCURRENCY} live lookups in flight; try again"),
        );
    };
    let deadline = Instant::now() + cache.refresh_timeout().min(Duration::from_secs(30));
    let Some(result) = unless_stopping(web, cache.get_live(&id, deadline)).await else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the exporter is shutting down".into(),
        );
    };
    match result {
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
