//! The landing page (`GET /`): links and one row per source.

use super::{Body, WebOptions, respond};
use crate::app::App;
use hyper::{Response, StatusCode};

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A source's credential type and, for temporary credentials, when they expire
/// (never the credentials themselves).
fn credentials_cell(status: Option<crate::credentials::CredentialStatus>) -> String {
    let Some(status) = status else {
        return String::new();
    };
    match status.expires_at {
        None => status.kind.to_string(),
        Some(t) => format!(
            "{}, expire {}",
            status.kind,
            chrono::DateTime::from_timestamp(t as i64, 0)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        ),
    }
}

pub(super) fn landing(app: &App, web: &WebOptions) -> Response<Body> {
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
            "<tr><td><a href=\"/probe?source={n}\">{n}</a></td><td>{p}</td><td>{view}</td><td>{creds}</td><td>{state}</td><td>{count}</td><td>{pending}</td><td>{last}</td><td>{err}</td></tr>\n",
            n = html_escape(&s.name),
            p = s.provider(),
            view = s.config.view.as_str(),
            creds = html_escape(&credentials_cell(s.credential_status())),
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
<table><tr><th>source</th><th>provider</th><th>view</th><th>credentials</th><th>state</th><th>invitations</th><th>pending</th><th>last success</th><th>last error</th></tr>\n{rows}</table></body></html>\n",
        version = crate::metrics::VERSION,
        metrics = html_escape(&web.telemetry_path),
        interval = rt.config.refresh_interval,
    );
    respond(StatusCode::OK, "text/html; charset=utf-8", page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credentials_cell_shows_type_and_expiry_only() {
        use crate::credentials::CredentialStatus;
        assert_eq!(credentials_cell(None), "");
        let fixed = CredentialStatus {
            kind: "access_key",
            expires_at: None,
        };
        assert_eq!(credentials_cell(Some(fixed)), "access_key");
        let role = CredentialStatus {
            kind: "ram_role_arn",
            expires_at: Some(1_798_761_600.0),
        };
        assert_eq!(
            credentials_cell(Some(role)),
            "ram_role_arn, expire 2027-01-01T00:00:00Z"
        );
    }
}
