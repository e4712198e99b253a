//! The landing page (`GET /`): what a person reads. Per source: state, counts,
//! soonest expiry, last success and credentials; then the pending invitations that
//! expire soonest across all sources.
//!
//! The handler only gathers input (fresh views, credential status, configuration,
//! the clock, the query); [`render`] is a pure function of it, tested without a
//! server. The page is plain HTML and CSS: no scripts, no external assets (it must
//! work air-gapped and behind basic auth), readable on a phone, light and dark.
//! Every value that reaches the page goes through [`escape`]: source names, ids,
//! targets, error messages and query values are all outside input.

use super::{Body, WebOptions, respond, scrape_deadline, unless_stopping};
use crate::app::App;
use crate::cache::SourceView;
use crate::clock::unix_now;
use crate::config::TargetLabel;
use crate::credentials::CredentialStatus;
use crate::model::{Handshake, Status};
use crate::provider::percent_encode;
use crate::render::show_target;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use std::fmt::Write as _;
use std::time::Duration;

/// "Expiring next" shows this many invitations unless `?limit=` says otherwise.
pub const DEFAULT_LIMIT: usize = 20;
/// The most `?limit=` may ask for: the page stays a page, not a dump (the JSON API
/// has everything).
pub const MAX_LIMIT: usize = 500;

/// No script may run and nothing may be loaded from anywhere: a value that slipped
/// past [`escape`] still could not execute. Inline styles are the page's only asset.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Escape `s` for HTML text and (double- or single-quoted) attribute values. The
/// one escaping function of the page: everything variable goes through it.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the query string asks of "Expiring next". Never an error: a bad `limit` is
/// the default, an unknown `source` or `provider` an empty list with a note.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LandingQuery {
    pub limit: usize,
    pub source: Option<String>,
    pub provider: Option<String>,
}

impl LandingQuery {
    /// Parse a raw query string (`limit=50&source=corp-rd`); the first of a repeated
    /// name counts, an empty value is no filter.
    pub fn parse(raw: &str) -> LandingQuery {
        let (mut limit, mut source, mut provider) = (None, None, None);
        for (k, v) in crate::query::parse_query(raw, true) {
            let slot = match k.as_str() {
                "limit" => {
                    limit.get_or_insert_with(|| parse_limit(&v));
                    continue;
                }
                "source" => &mut source,
                "provider" => &mut provider,
                _ => continue,
            };
            if slot.is_none() && !v.is_empty() {
                *slot = Some(v);
            }
        }
        LandingQuery {
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            source,
            provider,
        }
    }
}

/// A number of rows: digits only, 1 and up, clamped to [`MAX_LIMIT`] (also when too
/// large for an integer); anything else is [`DEFAULT_LIMIT`].
fn parse_limit(v: &str) -> usize {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return DEFAULT_LIMIT;
    }
    match v.parse::<usize>() {
        Ok(0) => DEFAULT_LIMIT,
        Ok(n) => n.min(MAX_LIMIT),
        Err(_) => MAX_LIMIT,
    }
}

/// One source as the page shows it: its state plus what the view does not carry.
#[derive(Clone, Debug)]
pub struct SourceRow {
    pub view: SourceView,
    /// The configured `view` (`resource_directory`, `ids`, …).
    pub view_name: &'static str,
    pub credentials: Option<CredentialStatus>,
}

/// Everything the page is made of.
pub struct PageInput<'a> {
    pub sources: &'a [SourceRow],
    pub target_label: TargetLabel,
    pub refresh_interval: Duration,
    pub telemetry_path: &'a str,
    /// Unix time the page is rendered for.
    pub now: f64,
    pub query: &'a LandingQuery,
}

/// A span of time in words: `45 s`, `3 min`, `2 h 5 min`, `1 day`, `14 days 3 h`.
/// Sign is ignored (see [`relative`]).
pub fn duration_words(secs: f64) -> String {
    // `as` saturates (NaN is 0): no panic on any clock value.
    let s = secs.abs().floor() as u64;
    let (days, hours, minutes) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if s < 60 {
        format!("{s} s")
    } else if s < 3_600 {
        format!("{minutes} min")
    } else if s < 86_400 {
        match minutes {
            0 => format!("{hours} h"),
            m => format!("{hours} h {m} min"),
        }
    } else {
        let unit = if days == 1 { "day" } else { "days" };
        match hours {
            0 => format!("{days} {unit}"),
            h => format!("{days} {unit} {h} h"),
        }
    }
}

/// `t` relative to `now` in words: `3 min ago`, `in 2 days`, `just now`.
pub fn relative(t: f64, now: f64) -> String {
    let d = t - now;
    if d.abs() < 1.0 || !d.is_finite() {
        "just now".to_string()
    } else if d < 0.0 {
        format!("{} ago", duration_words(d))
    } else {
        format!("in {}", duration_words(d))
    }
}

fn rfc3339(t: f64) -> String {
    chrono::DateTime::from_timestamp(t.floor() as i64, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `<time>` with the relative words shown and the exact time on hover.
fn time_element(t: f64, now: f64) -> String {
    let exact = escape(&rfc3339(t));
    format!(
        "<time datetime=\"{exact}\" title=\"{exact}\">{}</time>",
        escape(&relative(t, now))
    )
}

fn unix(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp() as f64
}

/// `/?source=…&provider=…&limit=…#expiring`: a filter link, every value
/// percent-encoded (then escaped for the attribute by the caller's `escape`).
fn href(source: Option<&str>, provider: Option<&str>, limit: usize) -> String {
    let mut params = Vec::new();
    if let Some(s) = source {
        params.push(format!("source={}", percent_encode(s)));
    }
    if let Some(p) = provider {
        params.push(format!("provider={}", percent_encode(p)));
    }
    if limit != DEFAULT_LIMIT {
        params.push(format!("limit={limit}"));
    }
    if params.is_empty() {
        "/#expiring".to_string()
    } else {
        format!("/?{}#expiring", params.join("&"))
    }
}

/// The state column: `up`, `failing` (reason, since when, the error), `refreshing`
/// (the first fetch is running) or `not_fetched`; a refresh running on top of a
/// known state is a second badge.
fn state_cell(v: &SourceView, now: f64) -> String {
    let (state, mut html) = if v.up {
        ("up", "<span class=\"badge up\">up</span>".to_string())
    } else if let Some(e) = &v.last_error {
        let since = v
            .failing_since
            .map(|t| format!(" since {}", time_element(t, now)))
            .unwrap_or_default();
        (
            "failing",
            format!(
                "<span class=\"badge failing\">failing: {}</span>{since}<div class=\"err\">{}</div>",
                escape(e.reason.metric_label()),
                escape(&e.to_string()),
            ),
        )
    } else if v.refreshing {
        (
            "refreshing",
            "<span class=\"badge refreshing\">refreshing</span> (first fetch)".to_string(),
        )
    } else {
        (
            "not_fetched",
            "<span class=\"badge not_fetched\">not fetched yet</span>".to_string(),
        )
    };
    if v.refreshing && state != "refreshing" {
        html.push_str(" <span class=\"badge refreshing\">refreshing</span>");
    }
    format!(
        "<td data-label=\"State\" class=\"state\" data-state=\"{state}\" data-refreshing=\"{}\">{html}</td>",
        v.refreshing
    )
}

fn credentials_cell(status: Option<&CredentialStatus>, now: f64) -> String {
    let Some(status) = status else {
        return "<td data-label=\"Credentials\" class=\"creds\"><span class=\"muted\">—</span></td>"
            .to_string();
    };
    let expiry = status
        .expires_at
        .map(|t| {
            let verb = if t < now { "expired" } else { "expires" };
            format!(", {verb} {}", time_element(t, now))
        })
        .unwrap_or_default();
    format!(
        "<td data-label=\"Credentials\" class=\"creds\" data-kind=\"{}\">{}{expiry}</td>",
        escape(status.kind),
        escape(status.kind)
    )
}

/// A pending invitation with an expiry: its source, itself, and when (Unix time).
type Expiring<'a> = (&'a SourceView, &'a Handshake, f64);

fn pending_expiries<'a>(v: &'a SourceView) -> impl Iterator<Item = Expiring<'a>> {
    v.snapshot
        .iter()
        .flat_map(|s| s.handshakes.iter())
        .filter(|h| h.status == Status::Pending)
        .filter_map(move |h| h.expires_at.map(|e| (v, h, unix(e))))
}

/// Soonest first; ties by source, then id, so the order is stable.
fn soonest_first(a: &Expiring, b: &Expiring) -> std::cmp::Ordering {
    a.2.total_cmp(&b.2)
        .then_with(|| a.0.name.cmp(&b.0.name))
        .then_with(|| a.1.id.cmp(&b.1.id))
}

/// The `limit` pending invitations that expire soonest, in order, and how many
/// there are in all. Only those shown are sorted: a page over 100,000 invitations
/// sorts 20.
fn soonest<'a>(
    sources: impl Iterator<Item = &'a SourceView>,
    limit: usize,
) -> (Vec<Expiring<'a>>, usize) {
    let mut list: Vec<Expiring> = sources.flat_map(pending_expiries).collect();
    let total = list.len();
    if limit < list.len() {
        list.select_nth_unstable_by(limit, soonest_first);
        list.truncate(limit);
    }
    list.sort_unstable_by(soonest_first);
    (list, total)
}

fn source_row(out: &mut String, row: &SourceRow, input: &PageInput) {
    let v = &row.view;
    let now = input.now;
    let handshakes = v.snapshot.as_ref().map_or(&[][..], |s| &s.handshakes[..]);
    let mut by_status = [0usize; Status::ALL.len()];
    for h in handshakes {
        by_status[h.status.index()] += 1;
    }
    let pending = by_status[Status::Pending.index()];
    let soonest = pending_expiries(v).map(|x| x.2).min_by(f64::total_cmp);
    let name = escape(&v.name);
    let provider = escape(v.provider.as_str());
    let _ = write!(
        out,
        "<tr data-source=\"{name}\">\
<td data-label=\"Source\" class=\"name\"><a href=\"{}\">{name}</a></td>\
<td data-label=\"Provider\" class=\"provider\"><a href=\"{}\">{provider}</a></td>\
<td data-label=\"View\" class=\"view\">{}</td>{}",
        escape(&href(Some(&v.name), None, input.query.limit)),
        escape(&href(None, Some(v.provider.as_str()), input.query.limit)),
        escape(row.view_name),
        state_cell(v, now),
    );
    let _ = write!(
        out,
        "<td data-label=\"Invitations\" class=\"invitations\" data-total=\"{}\"><strong>{}</strong>",
        handshakes.len(),
        handshakes.len()
    );
    if v.snapshot.is_some() {
        out.push_str("<ul class=\"counts\">");
        for status in Status::ALL {
            let n = by_status[status.index()];
            if n > 0 {
                let _ = write!(
                    out,
                    "<li data-status=\"{s}\" data-count=\"{n}\">{n} {s}</li>",
                    s = status.as_str()
                );
            }
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        "</td><td data-label=\"Pending\" class=\"pending num\" data-pending=\"{pending}\">{pending}</td>"
    );
    match soonest {
        Some(t) => {
            let past = if t < now { " past" } else { "" };
            let _ = write!(
                out,
                "<td data-label=\"Soonest expiry\" class=\"soonest{past}\" data-at=\"{}\">{}</td>",
                t, time_element(t, now)
            );
        }
        None => out.push_str(
            "<td data-label=\"Soonest expiry\" class=\"soonest\"><span class=\"muted\">—</span></td>",
        ),
    }
    match v.last_success {
        Some(t) => {
            let _ = write!(
                out,
                "<td data-label=\"Last success\" class=\"last\">{}</td>",
                time_element(t, now)
            );
        }
        None => out.push_str(
            "<td data-label=\"Last success\" class=\"last\"><span class=\"muted\">never</span></td>",
        ),
    }
    out.push_str(&credentials_cell(row.credentials.as_ref(), now));
    out.push_str("</tr>\n");
}

/// A row of filter links: "all" and each value, the current one marked.
fn filter_links<'a>(
    out: &mut String,
    label: &str,
    current: Option<&str>,
    values: impl Iterator<Item = &'a str>,
    link: impl Fn(Option<&str>) -> String,
) {
    let _ = write!(
        out,
        "<p class=\"filter\"><span class=\"muted\">{label}:</span> "
    );
    let on = |yes: bool| if yes { " class=\"on\"" } else { "" };
    let _ = write!(
        out,
        "<a href=\"{}\"{}>all</a>",
        escape(&link(None)),
        on(current.is_none())
    );
    for value in values {
        let _ = write!(
            out,
            " <a href=\"{}\"{}>{}</a>",
            escape(&link(Some(value))),
            on(current == Some(value)),
            escape(value)
        );
    }
    out.push_str("</p>");
}

fn expiring_section(out: &mut String, input: &PageInput) {
    let q = input.query;
    let now = input.now;
    out.push_str("<section id=\"expiring\"><h2>Expiring next</h2>");
    let names = input.sources.iter().map(|r| &*r.view.name);
    filter_links(out, "Source", q.source.as_deref(), names, |s| {
        href(s, q.provider.as_deref(), q.limit)
    });
    let mut providers: Vec<&str> = Vec::new();
    for r in input.sources {
        let p = r.view.provider.as_str();
        if !providers.contains(&p) {
            providers.push(p);
        }
    }
    filter_links(
        out,
        "Provider",
        q.provider.as_deref(),
        providers.iter().copied(),
        |p| href(q.source.as_deref(), p, q.limit),
    );
    // Unknown values are shown as what they are (escaped) with an empty list.
    if let Some(s) = &q.source {
        if !input.sources.iter().any(|r| *r.view.name == **s) {
            let _ = write!(
                out,
                "<p class=\"note\">No configured source is named “{}”.</p>",
                escape(s)
            );
        }
    }
    if let Some(p) = &q.provider {
        if !providers.contains(&p.as_str()) {
            let _ = write!(
                out,
                "<p class=\"note\">No configured source has the provider “{}”.</p>",
                escape(p)
            );
        }
    }
    let selected = input.sources.iter().map(|r| &r.view).filter(|v| {
        q.source.as_deref().is_none_or(|s| *v.name == *s)
            && q.provider
                .as_deref()
                .is_none_or(|p| v.provider.as_str() == p)
    });
    let (shown, total) = soonest(selected, q.limit);
    // Bars share one scale: the longest time left shown is the full width.
    let scale = shown.iter().map(|x| x.2 - now).fold(0.0_f64, f64::max);
    if shown.is_empty() {
        out.push_str("<p class=\"empty muted\">No pending invitation with an expiry time.</p>");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table class=\"expiring rsp\"><thead><tr><th>Source</th><th>Provider</th><th>Invitation</th><th>Target</th><th>Time left</th><th class=\"barcol\">&nbsp;</th></tr></thead><tbody>\n",
        );
        for (v, h, at) in &shown {
            let left = at - now;
            let past = left < 0.0;
            let width = if past || scale <= 0.0 {
                0.0
            } else {
                left / scale * 100.0
            };
            let target = show_target(h.target_entity.as_deref(), input.target_label);
            let target = if target.is_empty() {
                "<span class=\"muted\">—</span>".to_string()
            } else {
                escape(&target)
            };
            let words = if past {
                format!(
                    "expired {} ago <span class=\"mark\">past expiry</span>",
                    escape(&duration_words(left))
                )
            } else {
                format!("in {}", escape(&duration_words(left)))
            };
            let _ = writeln!(
                out,
                "<tr class=\"{cls}\" data-source=\"{src}\" data-id=\"{id}\" data-left=\"{left:.0}\">\
<td data-label=\"Source\">{src}</td><td data-label=\"Provider\">{prov}</td>\
<td data-label=\"Invitation\" class=\"id\">{id}</td><td data-label=\"Target\" class=\"target\">{target}</td>\
<td data-label=\"Time left\" class=\"left\" title=\"{exact}\">{words}</td>\
<td data-label=\"\" class=\"barcol\"><div class=\"track\"><div class=\"fill\" style=\"width:{width:.1}%\"></div></div></td></tr>",
                cls = if past { "past" } else { "ahead" },
                src = escape(&v.name),
                prov = escape(v.provider.as_str()),
                id = escape(&h.id),
                exact = escape(&rfc3339(*at)),
            );
        }
        out.push_str("</tbody></table></div>");
    }
    let _ = write!(
        out,
        "<p class=\"count muted\" data-shown=\"{}\" data-total=\"{}\">Showing {} of {} pending invitations with an expiry time",
        shown.len(),
        total,
        shown.len(),
        total
    );
    if total > shown.len() && q.limit < MAX_LIMIT {
        let more = (q.limit * 2).min(MAX_LIMIT);
        let _ = write!(
            out,
            " · <a href=\"{}\">show {more}</a>",
            escape(&href(q.source.as_deref(), q.provider.as_deref(), more))
        );
    }
    out.push_str(".</p></section>\n");
}

const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--head:#f6f8fa;\
--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--link:#0969da;--bar:#0969da;--track:#e7ecf0}\
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#30363d;\
--head:#151b23;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--link:#4493f8;--bar:#4493f8;--track:#262c36}}\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:82rem;padding:1rem;background:var(--bg);color:var(--fg);\
font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif}\
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem}\
a{color:var(--link)}nav a{margin-right:1rem}\
.muted{color:var(--muted)}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;width:100%}\
th,td{padding:.45rem .6rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\
thead th{background:var(--head);font-weight:600;white-space:nowrap}\
.num{text-align:right;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;border:1px solid currentColor;font-size:.85em;font-weight:600;white-space:nowrap}\
.up{color:var(--ok)}.failing{color:var(--bad)}.refreshing,.not_fetched{color:var(--warn)}\
.err{color:var(--muted);font-size:.85em;overflow-wrap:anywhere;max-width:28rem}\
.counts{list-style:none;margin:0;padding:0;font-size:.9em;color:var(--muted)}\
.id,.target{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}\
.past,tr.past td{color:var(--bad)}\
.mark{display:inline-block;margin-left:.3rem;padding:0 .4rem;border-radius:3px;background:var(--bad);color:var(--bg);font-size:.8em;font-weight:600}\
.barcol{width:30%}\
.track{background:var(--track);border-radius:3px;height:.65rem;min-width:5rem;margin-top:.35rem}\
.fill{background:var(--bar);height:100%;border-radius:3px}\
.filter{margin:.3rem 0}.filter a{margin-right:.6rem}.filter a.on{font-weight:700;text-decoration:none;color:var(--fg)}\
.note{border-left:4px solid var(--warn);padding:.3rem .7rem;background:var(--head)}\
@media (max-width:760px){body{padding:.6rem}\
table.rsp thead{display:none}\
table.rsp tr{display:block;border:1px solid var(--line);border-radius:6px;margin:0 0 .7rem;padding:.3rem 0}\
table.rsp td{display:block;position:relative;border:0;padding:.2rem .6rem .2rem 9.4rem;width:auto;min-height:1.8rem;text-align:left}\
table.rsp td::before{content:attr(data-label);position:absolute;left:.6rem;width:8.6rem;white-space:nowrap;overflow:hidden;font-weight:600;color:var(--muted)}}";

/// The whole page, from its input alone.
pub fn render(input: &PageInput) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<title>handshake_exporter</title><style>{STYLE}</style></head><body>\n\
<header><h1>handshake_exporter</h1>\
<p class=\"muted\">Cloud organization invitations (handshakes). Version {version}. \
As of {at}; a source's data is fetched again when it is older than {interval} (opening this page does that too).</p>\
<nav><a href=\"{metrics}\">Metrics</a><a href=\"/api/v1/handshakes\">Invitations (JSON)</a>\
<a href=\"/-/healthy\">Health</a><a href=\"/-/ready\">Readiness</a></nav></header>\n<main>\
<section id=\"sources\"><h2>Sources</h2>",
        version = escape(crate::metrics::VERSION),
        at = escape(&rfc3339(input.now)),
        interval = escape(&duration_words(input.refresh_interval.as_secs_f64())),
        metrics = escape(input.telemetry_path),
    );
    if input.sources.is_empty() {
        out.push_str("<p class=\"muted\">No sources are configured.</p>");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table class=\"sources rsp\"><thead><tr><th>Source</th><th>Provider</th><th>View</th><th>State</th>\
<th>Invitations</th><th class=\"num\">Pending</th><th>Soonest expiry</th><th>Last success</th><th>Credentials</th></tr></thead><tbody>\n",
        );
        for row in input.sources {
            source_row(&mut out, row, input);
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("</section>\n");
    expiring_section(&mut out, input);
    out.push_str("</main></body></html>\n");
    out
}

/// `GET /`: refresh stale sources as the JSON API does (same single flight, same
/// deadline), so the first visit is never empty and a fresh cache costs no cloud
/// call; then render.
pub(super) async fn landing(
    app: &App,
    web: &WebOptions,
    headers: &HeaderMap,
    query: &str,
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
    // `fresh_views` returns the views in the order of `rt.sources`.
    let sources: Vec<SourceRow> = rt
        .sources
        .iter()
        .zip(views)
        .map(|(s, view)| SourceRow {
            view,
            view_name: s.config.view.as_str(),
            credentials: s.credential_status(),
        })
        .collect();
    let query = LandingQuery::parse(query);
    let page = render(&PageInput {
        sources: &sources,
        target_label: rt.config.target_label,
        refresh_interval: rt.config.refresh_interval,
        telemetry_path: &web.telemetry_path,
        now: unix_now(),
        query: &query,
    });
    let mut r = respond(StatusCode::OK, "text/html; charset=utf-8", page);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests;
