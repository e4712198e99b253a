//! The pure renderer, read back with a real HTML parser (`scraper`, html5ever
//! underneath): what a browser would build from the page, not string search.

use super::*;
use crate::cache::Snapshot;
use crate::error::{ApiError, Reason};
use crate::model::{Handshake, Provider, Status};
use scraper::{ElementRef, Html, Selector};
use std::sync::Arc;

/// 2027-01-15T08:00:00Z: the clock every page here is rendered at.
const NOW: f64 = 1_800_000_000.0;
const MIN: f64 = 60.0;
const HOUR: f64 = 3_600.0;
const DAY: f64 = 86_400.0;

fn at(t: f64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t as i64, 0).expect("valid time")
}

fn inv(
    source: &str,
    provider: Provider,
    id: &str,
    status: Status,
    expires: Option<f64>,
) -> Handshake {
    let mut h = Handshake::new(provider, Arc::from(source), id);
    h.status = status;
    h.expires_at = expires.map(at);
    h
}

fn view(name: &str, provider: Provider, handshakes: Option<Vec<Handshake>>) -> SourceView {
    SourceView {
        name: Arc::from(name),
        provider,
        up: handshakes.is_some(),
        last_success: handshakes.as_ref().map(|_| NOW - 3.0 * MIN),
        snapshot: handshakes.map(|handshakes| {
            Arc::new(Snapshot {
                handshakes,
                fetched_at: NOW - 3.0 * MIN,
            })
        }),
        last_duration: Some(Duration::from_millis(20)),
        last_error: None,
        failing_since: None,
        refreshing: false,
        generation: 1,
    }
}

fn row(view: SourceView) -> SourceRow {
    SourceRow {
        view,
        view_name: "resource_directory",
        credentials: None,
    }
}

fn page(sources: &[SourceRow], query: &str, rule: TargetLabel) -> Html {
    let query = LandingQuery::parse(query);
    let html = render(&PageInput {
        sources,
        target_label: rule,
        refresh_interval: Duration::from_secs(60),
        telemetry_path: "/metrics",
        now: NOW,
        query: &query,
    });
    Html::parse_document(&html)
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("a valid selector")
}

fn all<'a>(doc: &'a Html, s: &str) -> Vec<ElementRef<'a>> {
    doc.select(&sel(s)).collect()
}

fn one<'a>(doc: &'a Html, s: &str) -> ElementRef<'a> {
    let found = all(doc, s);
    assert_eq!(found.len(), 1, "{s}: {} elements", found.len());
    found[0]
}

fn text(e: ElementRef) -> String {
    e.text().collect::<String>()
}

fn attr<'a>(e: ElementRef<'a>, name: &str) -> &'a str {
    e.value().attr(name).unwrap_or_default()
}

/// The source row of `name` in the sources table.
fn source_tr<'a>(doc: &'a Html, name: &str) -> ElementRef<'a> {
    let rows: Vec<_> = all(doc, "table.sources tbody tr")
        .into_iter()
        .filter(|r| attr(*r, "data-source") == name)
        .collect();
    assert_eq!(rows.len(), 1, "rows of {name:?}");
    rows[0]
}

fn cell<'a>(tr: ElementRef<'a>, class: &str) -> ElementRef<'a> {
    tr.select(&sel(&format!("td.{class}")))
        .next()
        .unwrap_or_else(|| panic!("no td.{class}"))
}

/// (source, id) of the "Expiring next" rows, in page order.
fn expiring(doc: &Html) -> Vec<(String, String)> {
    all(doc, "table.expiring tbody tr")
        .into_iter()
        .map(|r| (attr(r, "data-source").into(), attr(r, "data-id").into()))
        .collect()
}

fn two_sources() -> Vec<SourceRow> {
    use Status::*;
    let a = vec![
        inv(
            "corp-rd",
            Provider::Alibaba,
            "h-a1",
            Pending,
            Some(NOW + 2.0 * DAY),
        ),
        inv(
            "corp-rd",
            Provider::Alibaba,
            "h-a2",
            Pending,
            Some(NOW + HOUR),
        ),
        inv(
            "corp-rd",
            Provider::Alibaba,
            "h-a3",
            Pending,
            Some(NOW - 2.0 * HOUR),
        ),
        inv(
            "corp-rd",
            Provider::Alibaba,
            "h-a4",
            Accepted,
            Some(NOW - DAY),
        ),
        inv("corp-rd", Provider::Alibaba, "h-a5", Accepted, None),
        inv(
            "corp-rd",
            Provider::Alibaba,
            "h-a6",
            Expired,
            Some(NOW - 9.0 * DAY),
        ),
        inv("corp-rd", Provider::Alibaba, "h-a7", Pending, None),
    ];
    let b = vec![
        inv(
            "hw-org",
            Provider::Huawei,
            "h-b1",
            Pending,
            Some(NOW + 30.0 * MIN),
        ),
        inv("hw-org", Provider::Huawei, "h-b2", Declined, None),
    ];
    let mut failing = view("hw-org", Provider::Huawei, Some(b));
    failing.up = false;
    failing.failing_since = Some(NOW - 12.0 * MIN);
    let mut e = ApiError::new(
        Reason::Auth,
        "ListHandshakes",
        "the signature does not match",
    );
    e.code = Some("APIGW.0301".into());
    e.http_status = Some(401);
    failing.last_error = Some(e);
    let mut rows = vec![
        row(view("corp-rd", Provider::Alibaba, Some(a))),
        row(failing),
    ];
    rows[0].credentials = Some(CredentialStatus {
        kind: "ram_role_arn",
        expires_at: Some(NOW + 50.0 * MIN),
    });
    rows[1].credentials = Some(CredentialStatus {
        kind: "access_key",
        expires_at: None,
    });
    rows[1].view_name = "sent";
    let mut fresh = view("new-one", Provider::Alibaba, None);
    fresh.refreshing = true;
    rows.push(row(fresh));
    rows
}

#[test]
fn each_source_shows_the_figures_of_its_data() {
    let doc = page(&two_sources(), "", TargetLabel::Masked);

    let a = source_tr(&doc, "corp-rd");
    assert_eq!(text(cell(a, "provider")), "alibaba");
    assert_eq!(text(cell(a, "view")), "resource_directory");
    assert_eq!(attr(cell(a, "state"), "data-state"), "up");
    let inv = cell(a, "invitations");
    assert_eq!(attr(inv, "data-total"), "7");
    let counts: Vec<(String, String)> = inv
        .select(&sel("li"))
        .map(|li| {
            (
                attr(li, "data-status").into(),
                attr(li, "data-count").into(),
            )
        })
        .collect();
    let expected = [("pending", "4"), ("accepted", "2"), ("expired", "1")];
    assert_eq!(
        counts,
        expected.map(|(s, n)| (s.to_string(), n.to_string())),
        "by status"
    );
    assert_eq!(text(cell(a, "pending")), "4");
    // The soonest expiry of a pending invitation is the one already past (marked).
    let soonest = cell(a, "soonest");
    assert_eq!(text(soonest), "2 h ago");
    assert!(soonest.value().classes().any(|c| c == "past"));
    assert_eq!(text(cell(a, "last")), "3 min ago");
    assert_eq!(text(cell(a, "creds")), "ram_role_arn, expires in 50 min");

    let b = source_tr(&doc, "hw-org");
    assert_eq!(text(cell(b, "provider")), "huawei");
    assert_eq!(text(cell(b, "view")), "sent");
    let state = cell(b, "state");
    assert_eq!(attr(state, "data-state"), "failing");
    let state_text = text(state);
    assert!(
        state_text.starts_with("failing: auth since 12 min ago"),
        "{state_text}"
    );
    assert!(
        state_text.contains("HTTP 401 APIGW.0301: the signature does not match"),
        "{state_text}"
    );
    // Stale data is still shown, with its age.
    assert_eq!(text(cell(b, "pending")), "1");
    assert_eq!(text(cell(b, "soonest")), "in 30 min");
    assert_eq!(text(cell(b, "creds")), "access_key");

    let c = source_tr(&doc, "new-one");
    assert_eq!(attr(cell(c, "state"), "data-state"), "refreshing");
    assert_eq!(attr(cell(c, "invitations"), "data-total"), "0");
    assert_eq!(text(cell(c, "last")), "never");
    assert_eq!(text(cell(c, "creds")), "—");
}

#[test]
fn expiring_next_is_soonest_first_across_sources_with_past_ones_marked() {
    let doc = page(&two_sources(), "", TargetLabel::Masked);
    let ids: Vec<String> = expiring(&doc).into_iter().map(|(_, id)| id).collect();
    // Pending with an expiry only; no accepted/expired ones, none without a time.
    assert_eq!(ids, ["h-a3", "h-b1", "h-a2", "h-a1"]);
    let rows = all(&doc, "table.expiring tbody tr");
    let past = rows[0];
    assert!(past.value().classes().any(|c| c == "past"));
    assert_eq!(
        text(past.select(&sel(".mark")).next().expect("mark")),
        "past expiry"
    );
    assert!(text(cell(past, "left")).starts_with("expired 2 h ago"));
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.select(&sel(".mark")).next().is_none())
    );
    let left: Vec<String> = rows[1..].iter().map(|r| text(cell(*r, "left"))).collect();
    assert_eq!(left, ["in 30 min", "in 1 h", "in 2 days"]);
    // Bars are proportional to the time left (the longest is the full width).
    let widths: Vec<f64> = rows
        .iter()
        .map(|r| {
            let fill = r.select(&sel(".fill")).next().expect("a bar");
            let style = attr(fill, "style");
            style
                .trim_start_matches("width:")
                .trim_end_matches('%')
                .parse()
                .unwrap_or_else(|_| panic!("width in {style:?}"))
        })
        .collect();
    assert_eq!(widths[0], 0.0, "past expiry: no bar");
    let expected = [30.0 * MIN, HOUR, 2.0 * DAY].map(|l| l / (2.0 * DAY) * 100.0);
    for (w, e) in widths[1..].iter().zip(expected) {
        assert!((w - e).abs() < 0.06, "{w} vs {e}");
    }
    let count = one(&doc, "p.count");
    assert_eq!(
        (attr(count, "data-shown"), attr(count, "data-total")),
        ("4", "4")
    );
}

fn many() -> Vec<SourceRow> {
    let make = |name: &str, provider, n: usize, offset: f64| {
        (0..n)
            .map(|i| {
                let left = offset + i as f64 * 7.0 * MIN;
                inv(
                    name,
                    provider,
                    &format!("{name}-{i:03}"),
                    Status::Pending,
                    Some(NOW + left),
                )
            })
            .collect()
    };
    vec![
        row(view(
            "one",
            Provider::Alibaba,
            Some(make("one", Provider::Alibaba, 300, 0.0)),
        )),
        row(view(
            "two",
            Provider::Huawei,
            Some(make("two", Provider::Huawei, 400, 3.0 * MIN)),
        )),
    ]
}

#[test]
fn the_limit_defaults_to_20_is_clamped_and_bad_values_are_the_default() {
    let rows = many();
    let shown = |q: &str| expiring(&page(&rows, q, TargetLabel::Masked)).len();
    assert_eq!(shown(""), DEFAULT_LIMIT);
    assert_eq!(shown("limit=3"), 3);
    assert_eq!(shown("limit=650"), MAX_LIMIT);
    assert_eq!(shown("limit=99999999999999999999999999"), MAX_LIMIT);
    for bad in [
        "limit=0",
        "limit=-5",
        "limit=abc",
        "limit=",
        "limit=1e3",
        "limit=%00",
    ] {
        assert_eq!(shown(bad), DEFAULT_LIMIT, "{bad}");
    }
    // Interleaved across sources, soonest first, as many as asked.
    let doc = page(&rows, "limit=4", TargetLabel::Masked);
    let ids: Vec<String> = expiring(&doc).into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, ["one-000", "two-000", "one-001", "two-001"]);
    let count = one(&doc, "p.count");
    assert_eq!(
        (attr(count, "data-shown"), attr(count, "data-total")),
        ("4", "700")
    );
    let more = count.select(&sel("a")).next().expect("a link to more");
    assert_eq!(attr(more, "href"), "/?limit=8#expiring");
}

#[test]
fn filters_by_source_and_provider_with_links_and_a_note_for_unknown_values() {
    let rows = many();
    let sources = |q: &str| -> Vec<String> {
        let doc = page(&rows, q, TargetLabel::Masked);
        let mut s: Vec<String> = expiring(&doc).into_iter().map(|(s, _)| s).collect();
        s.sort();
        s.dedup();
        s
    };
    assert_eq!(sources(""), ["one", "two"]);
    assert_eq!(sources("source=two"), ["two"]);
    assert_eq!(sources("provider=alibaba"), ["one"]);
    assert_eq!(sources("provider=huawei&source=two"), ["two"]);
    assert!(sources("provider=alibaba&source=two").is_empty());

    let doc = page(&rows, "source=two&limit=50", TargetLabel::Masked);
    assert_eq!(expiring(&doc).len(), 50);
    assert!(all(&doc, "p.note").is_empty());
    // Links keep the other filter and the limit; the current value is marked.
    let links: Vec<(String, String, bool)> = all(&doc, "p.filter a")
        .into_iter()
        .map(|a| {
            (
                text(a),
                attr(a, "href").to_string(),
                attr(a, "class") == "on",
            )
        })
        .collect();
    let expected = [
        ("all", "/?limit=50#expiring", false),
        ("one", "/?source=one&limit=50#expiring", false),
        ("two", "/?source=two&limit=50#expiring", true),
        ("all", "/?source=two&limit=50#expiring", true),
        (
            "alibaba",
            "/?source=two&provider=alibaba&limit=50#expiring",
            false,
        ),
        (
            "huawei",
            "/?source=two&provider=huawei&limit=50#expiring",
            false,
        ),
    ];
    assert_eq!(
        links,
        expected.map(|(t, h, on)| (t.to_string(), h.to_string(), on))
    );
    // The sources table links each source and provider to its filter.
    let a = one(&doc, "tr[data-source=one] td.name a");
    assert_eq!(attr(a, "href"), "/?source=one&limit=50#expiring");
    let p = one(&doc, "tr[data-source=two] td.provider a");
    assert_eq!(attr(p, "href"), "/?provider=huawei&limit=50#expiring");

    for (q, note) in [
        ("source=nope", "No configured source is named “nope”."),
        (
            "provider=aws",
            "No configured source has the provider “aws”.",
        ),
    ] {
        let doc = page(&rows, q, TargetLabel::Masked);
        assert!(expiring(&doc).is_empty(), "{q}");
        assert_eq!(text(one(&doc, "p.note")), note);
        // The page is still whole: every source listed.
        assert_eq!(all(&doc, "table.sources tbody tr").len(), 2);
    }
}

#[test]
fn targets_are_masked_by_the_configured_rule() {
    let email = "alice.smith@example.com";
    let mut h = inv(
        "s",
        Provider::Alibaba,
        "h-1",
        Status::Pending,
        Some(NOW + HOUR),
    );
    h.target_entity = Some(email.into());
    let mut k = inv(
        "s",
        Provider::Alibaba,
        "h-2",
        Status::Pending,
        Some(NOW + 2.0 * HOUR),
    );
    k.target_entity = Some("1728394056".into());
    let rows = [row(view("s", Provider::Alibaba, Some(vec![h, k])))];
    let target_texts = |rule| -> (Vec<String>, String) {
        let doc = page(&rows, "", rule);
        let targets = all(&doc, "td.target").into_iter().map(text).collect();
        (targets, doc.html())
    };
    let (masked, whole) = target_texts(TargetLabel::Masked);
    assert_eq!(masked, ["a***@example.com", "1728****"]);
    assert!(!whole.contains(email) && !whole.contains("1728394056"));
    let (full, _) = target_texts(TargetLabel::Full);
    assert_eq!(full, [email, "1728394056"]);
    let (none, whole) = target_texts(TargetLabel::None);
    assert_eq!(none, ["—", "—"]);
    assert!(!whole.contains("example.com"));
}

#[test]
fn hostile_names_targets_messages_and_query_values_stay_text() {
    let name = "<script>alert(\"n\")</script>&amp;'x\" onmouseover=\"alert(1)";
    let target = "\"><img src=x onerror=alert(1)>@evil.example";
    let id = "h-<b>bold</b>&\"'";
    let message = "<iframe src=//evil></iframe> & \"quoted\" 'single'";
    let mut h = inv(
        name,
        Provider::Alibaba,
        id,
        Status::Pending,
        Some(NOW + HOUR),
    );
    h.target_entity = Some(target.into());
    let mut v = view(name, Provider::Alibaba, Some(vec![h]));
    v.up = false;
    v.failing_since = Some(NOW - MIN);
    v.last_error = Some(ApiError::new(Reason::Server, "ListHandshakes", message));
    let mut rows = [row(v)];
    rows[0].credentials = Some(CredentialStatus {
        kind: "<kind>",
        expires_at: None,
    });
    for rule in [TargetLabel::Full, TargetLabel::Masked] {
        for q in [
            "",
            "source=%3Cscript%3Ealert(2)%3C%2Fscript%3E%22&provider=%22%3E%3Cimg%20src%3Dx%3E",
        ] {
            let doc = page(&rows, q, rule);
            // Nothing the input said became markup.
            for tag in [
                "script", "img", "iframe", "b", "link", "object", "embed", "form",
            ] {
                assert!(
                    all(&doc, tag).is_empty(),
                    "a <{tag}> element ({rule:?}, {q})"
                );
            }
            let handlers = doc
                .root_element()
                .descendants()
                .filter_map(ElementRef::wrap)
                .filter(|e| e.value().attrs().any(|(k, _)| k.starts_with("on")))
                .count();
            assert_eq!(handlers, 0, "an on* attribute");
            // ... and the values read back exactly as they were.
            let tr = source_tr(&doc, name);
            assert_eq!(text(cell(tr, "name")), name);
            assert!(text(cell(tr, "state")).contains(message));
            assert_eq!(text(cell(tr, "creds")), "<kind>");
            if q.is_empty() {
                assert_eq!(expiring(&doc), [(name.to_string(), id.to_string())]);
                assert_eq!(text(one(&doc, "table.expiring td.id")), id);
                if rule == TargetLabel::Full {
                    assert_eq!(text(one(&doc, "td.target")), target);
                } else {
                    assert_eq!(text(one(&doc, "td.target")), "\"***@evil.example");
                }
            } else {
                let notes: Vec<String> = all(&doc, "p.note").into_iter().map(text).collect();
                assert_eq!(
                    notes,
                    [
                        "No configured source is named “<script>alert(2)</script>\"”.",
                        "No configured source has the provider “\"><img src=x>”."
                    ]
                );
            }
            // Links to the hostile source's filter carry it percent-encoded.
            let link = attr(
                cell(tr, "name").select(&sel("a")).next().expect("a"),
                "href",
            );
            assert!(
                link.starts_with("/?source=%3Cscript%3Ealert%28%22n%22%29"),
                "{link}"
            );
            let decoded =
                LandingQuery::parse(link.trim_start_matches("/?").trim_end_matches("#expiring"));
            assert_eq!(decoded.source.as_deref(), Some(name));
        }
    }
}

#[test]
fn the_page_is_self_contained_responsive_and_has_both_colour_schemes() {
    let html = render(&PageInput {
        sources: &two_sources(),
        target_label: TargetLabel::Masked,
        refresh_interval: Duration::from_secs(30),
        telemetry_path: "/metrics",
        now: NOW,
        query: &LandingQuery::parse(""),
    });
    let doc = Html::parse_document(&html);
    assert!(all(&doc, "script").is_empty());
    let viewport = one(&doc, "meta[name=viewport]");
    assert_eq!(
        attr(viewport, "content"),
        "width=device-width, initial-scale=1"
    );
    // No external assets: every link stays on this server, nothing is loaded.
    for a in all(&doc, "a") {
        assert!(attr(a, "href").starts_with('/'), "{}", attr(a, "href"));
    }
    for tag in ["img", "link", "iframe", "object"] {
        assert!(all(&doc, tag).is_empty());
    }
    let style = text(one(&doc, "style"));
    assert!(style.contains("@media (prefers-color-scheme:dark)"));
    assert!(style.contains("@media (max-width:760px)"));
    assert!(!style.contains("url("), "no fetched resources in CSS");
    let nav: Vec<&str> = all(&doc, "nav a")
        .into_iter()
        .map(|a| attr(a, "href"))
        .collect();
    assert_eq!(
        nav,
        ["/metrics", "/api/v1/handshakes", "/-/healthy", "/-/ready"]
    );
}

#[test]
fn times_read_as_words() {
    let cases = [
        (0.0, "0 s"),
        (45.9, "45 s"),
        (60.0, "1 min"),
        (3.0 * MIN + 59.0, "3 min"),
        (HOUR, "1 h"),
        (2.0 * HOUR + 5.0 * MIN, "2 h 5 min"),
        (DAY, "1 day"),
        (DAY + 3.0 * HOUR + 10.0, "1 day 3 h"),
        (14.0 * DAY + 3.0 * HOUR, "14 days 3 h"),
        (-5.0 * MIN, "5 min"),
        (f64::NAN, "0 s"),
        (f64::INFINITY, "213503982334601 days 7 h"),
    ];
    for (secs, words) in cases {
        assert_eq!(duration_words(secs), words, "{secs}");
    }
    assert_eq!(relative(NOW - 3.0 * MIN, NOW), "3 min ago");
    assert_eq!(relative(NOW + 2.0 * DAY, NOW), "in 2 days");
    assert_eq!(relative(NOW + 0.4, NOW), "just now");
    assert_eq!(relative(f64::NAN, NOW), "just now");
}

#[test]
fn one_escape_function_covers_text_and_both_attribute_quotes() {
    assert_eq!(
        escape("<a href=\"x\" title='y'>&amp;</a>"),
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
    );
    assert_eq!(escape("plain ü"), "plain ü");
}
