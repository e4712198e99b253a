//! Turns cache snapshots into the Prometheus text exposition, fresh on every scrape.
//!
//! The per-invitation families are written directly rather than through the
//! `prometheus` crate's protobuf model: at 10,000 invitations that model allocates
//! hundreds of thousands of small objects per scrape, while this writer only appends
//! to one pre-sized buffer. The exporter's own counters still come from the registry.

use crate::cache::{Snapshot, SourceView};
use crate::config::{ExpiryWindow, PerInvitation, TargetLabel};
use crate::model::{Handshake, Provider, Status, TargetType};
use std::io::Write;
use std::sync::Arc;

/// Rendering choices from the configuration.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub per_invitation: PerInvitation,
    pub target_label: TargetLabel,
    pub windows: Vec<ExpiryWindow>,
    /// `max_invitation_series`: per source, at most this many per-invitation series
    /// (the soonest expiries are kept; see [`Selection`]).
    pub max_invitation_series: usize,
}

/// Target types each provider documents; `handshake_invitations` reports 0 for these.
pub fn known_target_types(provider: Provider) -> &'static [TargetType] {
    provider.kind().known_target_types()
}

/// Mask an invitee for display: `s***@example.com`, `1728****`.
pub fn mask(value: &str) -> String {
    if let Some((local, domain)) = value.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let kept: String = value.chars().take(4).collect();
    if value.chars().count() <= 4 {
        "****".to_string()
    } else {
        format!("{kept}****")
    }
}

/// How a target (or another identifying value) is shown under the configured rule.
pub fn show_target(value: Option<&str>, rule: TargetLabel) -> String {
    match (value, rule) {
        (None, _) | (_, TargetLabel::None) => String::new(),
        (Some(v), TargetLabel::Full) => v.to_string(),
        (Some(v), TargetLabel::Masked) => mask(v),
    }
}

/// Label values that are email addresses are masked like targets (Alibaba's
/// `MasterAccountName` often is one); other values are shown as they are.
pub fn show_maybe_email(value: Option<&str>, rule: TargetLabel) -> String {
    match value {
        Some(v) if v.contains('@') => show_target(Some(v), rule),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// Append `value` escaped for a label value (`\\`, `\"`, `\n`): runs of ordinary
/// bytes are found with SIMD and copied whole, which is nearly every value whole.
fn escape_into(out: &mut Vec<u8>, value: &str) {
    let mut rest = value.as_bytes();
    while let Some(i) = memchr::memchr3(b'\\', b'"', b'\n', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// [`mask`], written (escaped) straight into `out` instead of into a new String.
fn write_masked(out: &mut Vec<u8>, value: &str) {
    if let Some((local, domain)) = value.split_once('@') {
        let first = local.chars().next().map_or(0, char::len_utf8);
        escape_into(out, &local[..first]);
        out.extend_from_slice(b"***@");
        escape_into(out, domain);
        return;
    }
    match value.char_indices().nth(4) {
        // More than four characters: keep the first four.
        Some((cut, _)) => {
            escape_into(out, &value[..cut]);
            out.extend_from_slice(b"****");
        }
        None => out.extend_from_slice(b"****"),
    }
}

/// [`show_target`], written (escaped) into `out`.
fn write_target(out: &mut Vec<u8>, value: Option<&str>, rule: TargetLabel) {
    match (value, rule) {
        (None, _) | (_, TargetLabel::None) => {}
        (Some(v), TargetLabel::Full) => escape_into(out, v),
        (Some(v), TargetLabel::Masked) => write_masked(out, v),
    }
}

/// [`show_maybe_email`], written (escaped) into `out`.
fn write_maybe_email(out: &mut Vec<u8>, value: Option<&str>, rule: TargetLabel) {
    match value {
        Some(v) if v.contains('@') => write_target(out, Some(v), rule),
        Some(v) => escape_into(out, v),
        None => {}
    }
}

fn header(out: &mut Vec<u8>, name: &str, help: &str) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(help.as_bytes());
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" gauge\n");
}

/// Write `name{k="v",...} value\n`.
fn sample(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)], value: f64) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_into(out, v);
        out.push(b'"');
    }
    out.extend_from_slice(b"} ");
    write_value(out, value);
    out.push(b'\n');
}

fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        write_int(out, v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Decimal text built right to left in a stack buffer, then appended with one copy
/// (a scrape writes thousands of numbers; `fmt` costs several times more).
struct Num {
    buf: [u8; 32],
    start: usize,
}

impl Num {
    fn new() -> Num {
        Num {
            buf: [0; 32],
            start: 32,
        }
    }

    /// At most 26 bytes are ever pushed (sign, 20 digits, point, 3 decimals, newline).
    fn push_front(&mut self, b: u8) {
        self.start -= 1;
        self.buf[self.start] = b;
    }

    fn uint(&mut self, mut n: u64) {
        loop {
            self.push_front(b'0' + (n % 10) as u8);
            n /= 10;
            if n == 0 {
                break;
            }
        }
    }

    fn int(&mut self, v: i64) {
        self.uint(v.unsigned_abs());
        if v < 0 {
            self.push_front(b'-');
        }
    }

    /// `millis / 1000` with its trailing zeros dropped; `millis` below 10^15.
    fn millis(&mut self, millis: i64) {
        let abs = millis.unsigned_abs();
        let mut frac = abs % 1000;
        if frac != 0 {
            let mut digits = 3;
            while frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            for _ in 0..digits {
                self.push_front(b'0' + (frac % 10) as u8);
                frac /= 10;
            }
            self.push_front(b'.');
        }
        self.uint(abs / 1000);
        if millis < 0 {
            self.push_front(b'-');
        }
    }

    fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf[self.start..]);
    }
}

/// An integer in decimal, without going through `fmt`.
fn write_int(out: &mut Vec<u8>, v: i64) {
    let mut n = Num::new();
    n.int(v);
    n.append_to(out);
}

/// `v` and a newline.
fn int_line(out: &mut Vec<u8>, v: i64) {
    let mut n = Num::new();
    n.push_front(b'\n');
    n.int(v);
    n.append_to(out);
}

/// Whether [`Num::millis`] prints `millis / 1000` exactly as `write_value` would:
/// below 10^15 (15 significant digits) the shortest decimal that round-trips is the
/// number itself with its trailing zeros dropped.
fn millis_fit(millis: i64) -> bool {
    millis.unsigned_abs() < 1_000_000_000_000_000
}

/// `millis / 1000` as `write_value` would print that f64, without `fmt`.
#[cfg(test)]
fn write_millis(out: &mut Vec<u8>, millis: i64) {
    if !millis_fit(millis) {
        write_value(out, millis as f64 / 1000.0);
        return;
    }
    let mut n = Num::new();
    n.millis(millis);
    n.append_to(out);
}

/// `millis / 1000` and a newline.
fn millis_line(out: &mut Vec<u8>, millis: i64) {
    if !millis_fit(millis) {
        // 10^15 and beyond: let `fmt` decide, as it always did.
        write_value(out, millis as f64 / 1000.0);
        out.push(b'\n');
        return;
    }
    let mut n = Num::new();
    n.push_front(b'\n');
    n.millis(millis);
    n.append_to(out);
}

fn wants_series(h: &Handshake, rule: PerInvitation) -> bool {
    match rule {
        PerInvitation::All => true,
        PerInvitation::Pending => h.status == Status::Pending,
        PerInvitation::None => false,
    }
}

/// Per-invitation series one invitation gets: `handshake_info`, plus the created
/// time, plus the expiry time and `expires_in` when it has an expiry.
fn series_of(h: &Handshake) -> usize {
    1 + usize::from(h.created_at.is_some()) + 2 * usize::from(h.expires_at.is_some())
}

/// Which of a source's invitations get per-invitation series: every one that
/// `per_invitation` wants, unless their series exceed `max_invitation_series`; then
/// the invitations that expire soonest (already past ones first, none without an
/// expiry before any with one) up to the budget, and `dropped` counts the rest.
/// The counts (`handshake_invitations`, `handshake_pending_expiring`) always cover
/// every invitation.
struct Selection {
    /// `None`: every wanted invitation; else by index in the snapshot.
    keep: Option<Vec<bool>>,
    dropped: usize,
}

impl Selection {
    fn keeps(&self, i: usize) -> bool {
        self.keep
            .as_ref()
            .is_none_or(|k| k.get(i).copied().unwrap_or(false))
    }
}

fn select(snap: &Snapshot, opts: &RenderOptions) -> Selection {
    let all = Selection {
        keep: None,
        dropped: 0,
    };
    if opts.per_invitation == PerInvitation::None {
        return all;
    }
    let wanted = |h: &&Handshake| wants_series(h, opts.per_invitation);
    let total: usize = snap.handshakes.iter().filter(wanted).map(series_of).sum();
    if total <= opts.max_invitation_series {
        return all;
    }
    let mut order: Vec<usize> = snap
        .handshakes
        .iter()
        .enumerate()
        .filter(|(_, h)| wants_series(h, opts.per_invitation))
        .map(|(i, _)| i)
        .collect();
    let expiry = |i: usize| {
        snap.handshakes[i]
            .expires_at
            .map_or(i64::MAX, |t| t.timestamp())
    };
    // By expiry, then by position: the same invitations are kept on every scrape.
    order.sort_unstable_by_key(|&i| (expiry(i), i));
    let mut keep = vec![false; snap.handshakes.len()];
    let (mut used, mut kept) = (0, 0);
    for &i in &order {
        let cost = series_of(&snap.handshakes[i]);
        if used + cost > opts.max_invitation_series {
            break;
        }
        used += cost;
        kept += 1;
        keep[i] = true;
    }
    Selection {
        keep: Some(keep),
        dropped: order.len() - kept,
    }
}

/// Fixed bytes of one invitation's four series besides its label values: metric
/// names, label names, quotes and values (the info line's being the longest).
const FIXED_BYTES_PER_INVITATION: usize = 4 * 64 + 220;

/// Bytes the per-invitation families will take, closely enough to size the buffer
/// once (a short estimate would copy the whole body when the buffer grows).
fn estimate(sources: &[SourceView], selections: &[Selection], opts: &RenderOptions) -> usize {
    let mut total = 0;
    for (s, sel) in sources.iter().zip(selections) {
        let Some(snap) = &s.snapshot else { continue };
        // The provider and source labels are on every line.
        let per_line = 32 + s.name.len();
        for (_, h) in snap
            .handshakes
            .iter()
            .enumerate()
            .filter(|(i, h)| wants_series(h, opts.per_invitation) && sel.keeps(*i))
        {
            let len = |v: Option<&str>| v.map_or(0, str::len);
            total += FIXED_BYTES_PER_INVITATION
                + 4 * (per_line + h.id.len())
                + len(h.target_entity.as_deref())
                + len(h.directory_id.as_deref())
                + len(h.management_account_id.as_deref())
                + len(h.management_account_name.as_deref())
                + 11
                + h.action.as_str().len();
        }
    }
    total
}

/// Buffer size for [`render`]: the per-invitation estimate plus the fixed part
/// (headers, counts, expiring windows, health, and the registry that `/metrics`
/// appends after this).
fn reserve_for(sources: &[SourceView], selections: &[Selection], opts: &RenderOptions) -> usize {
    16_384
        + sources.len() * (2_048 + opts.windows.len() * 512)
        + estimate(sources, selections, opts)
}

fn selections(sources: &[SourceView], opts: &RenderOptions) -> Vec<Selection> {
    sources
        .iter()
        .map(|s| match &s.snapshot {
            Some(snap) => select(snap, opts),
            None => Selection {
                keep: None,
                dropped: 0,
            },
        })
        .collect()
}

/// Render every source's snapshot families. `now` is Unix seconds.
pub fn render(out: &mut Vec<u8>, sources: &[SourceView], now: f64, opts: &RenderOptions) {
    let selections = selections(sources, opts);
    out.reserve(reserve_for(sources, &selections, opts));

    render_counts(out, sources);
    render_expiring(out, sources, now, opts);
    render_per_invitation(out, sources, &selections, now, opts);
    render_source_health(out, sources, &selections);
}

fn render_counts(out: &mut Vec<u8>, sources: &[SourceView]) {
    header(
        out,
        "handshake_invitations",
        "Invitations by status and target type, from the cached result of the source's list action (ListHandshakesForResourceDirectory/ListHandshakesForAccount, ListHandshakes/ListReceivedHandshakes, or GetHandshake/ShowHandshake per id).",
    );
    for s in sources {
        let Some(snap) = &s.snapshot else { continue };
        let mut counts = [[0u64; TargetType::ALL.len()]; Status::ALL.len()];
        for h in &snap.handshakes {
            counts[h.status.index()][h.target_type.index()] += 1;
        }
        let known = known_target_types(s.provider);
        for status in Status::ALL {
            for t in TargetType::ALL {
                let n = counts[status.index()][t.index()];
                if n == 0 && !known.contains(&t) {
                    continue;
                }
                sample(
                    out,
                    "handshake_invitations",
                    &[
                        ("provider", s.provider.as_str()),
                        ("source", &s.name),
                        ("status", status.as_str()),
                        ("target_type", t.as_str()),
                    ],
                    n as f64,
                );
            }
        }
    }
}

/// What `handshake_pending_expiring` needs of a source: its pending invitations'
/// target types and expiries (a few bytes each, where a [`Handshake`] is hundreds:
/// a [`Template`] counts them again every second).
struct Pending {
    provider: Provider,
    name: Arc<str>,
    expiries: Vec<(TargetType, Option<i64>)>,
}

fn pending_of(sources: &[SourceView]) -> Vec<Pending> {
    sources
        .iter()
        .filter_map(|s| {
            let snap = s.snapshot.as_ref()?;
            Some(Pending {
                provider: s.provider,
                name: s.name.clone(),
                expiries: snap
                    .handshakes
                    .iter()
                    .filter(|h| h.status == Status::Pending)
                    .map(|h| (h.target_type, h.expires_at.map(|e| e.timestamp())))
                    .collect(),
            })
        })
        .collect()
}

fn render_expiring(out: &mut Vec<u8>, sources: &[SourceView], now: f64, opts: &RenderOptions) {
    write_expiring(out, &pending_of(sources), now, opts);
}

fn write_expiring(out: &mut Vec<u8>, sources: &[Pending], now: f64, opts: &RenderOptions) {
    header(
        out,
        "handshake_pending_expiring",
        "Pending invitations whose expiry is at most `within` away (already past ones count in every window; +Inf counts every pending invitation), from the cached list action.",
    );
    for s in sources {
        let known = known_target_types(s.provider);
        // counts[target_type][window]
        let mut counts = vec![[0u64; TargetType::ALL.len()]; opts.windows.len()];
        for &(target_type, expiry) in &s.expiries {
            let left = expiry.map(|e| e as f64 - now);
            for (w, window) in opts.windows.iter().enumerate() {
                let inside = match (window.seconds, left) {
                    (None, _) => true,
                    (Some(limit), Some(left)) => left <= limit,
                    (Some(_), None) => false,
                };
                if inside {
                    counts[w][target_type.index()] += 1;
                }
            }
        }
        for t in TargetType::ALL {
            let any = counts.iter().any(|row| row[t.index()] > 0);
            if !any && !known.contains(&t) {
                continue;
            }
            for (w, window) in opts.windows.iter().enumerate() {
                sample(
                    out,
                    "handshake_pending_expiring",
                    &[
                        ("provider", s.provider.as_str()),
                        ("source", &s.name),
                        ("target_type", t.as_str()),
                        ("within", &window.label),
                    ],
                    counts[w][t.index()] as f64,
                );
            }
        }
    }
}

/// `provider="…",source="…"`, escaped once per source rather than once per line.
fn source_labels(s: &SourceView) -> Vec<u8> {
    let mut labels = Vec::with_capacity(32 + s.name.len());
    labels.extend_from_slice(b"provider=\"");
    labels.extend_from_slice(s.provider.as_str().as_bytes());
    labels.extend_from_slice(b"\",source=\"");
    escape_into(&mut labels, &s.name);
    labels.push(b'"');
    labels
}

/// `name{provider="…",source="…",handshake_id="`: how every per-invitation line of
/// a family and source starts.
fn line_prefix(name: &str, source: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(name.len() + source.len() + 20);
    prefix.extend_from_slice(name.as_bytes());
    prefix.push(b'{');
    prefix.extend_from_slice(source);
    prefix.extend_from_slice(b",handshake_id=\"");
    prefix
}

/// `",status="…",target_type="…"` and then `end`, for every status and target type
/// (see [`tail`]): one copy per line instead of five.
fn tails(end: &[u8]) -> Vec<Vec<u8>> {
    let mut tails = Vec::with_capacity(Status::ALL.len() * TargetType::ALL.len());
    for status in Status::ALL {
        for t in TargetType::ALL {
            let mut tail = Vec::with_capacity(48 + end.len());
            tail.extend_from_slice(b"\",status=\"");
            tail.extend_from_slice(status.as_str().as_bytes());
            tail.extend_from_slice(b"\",target_type=\"");
            tail.extend_from_slice(t.as_str().as_bytes());
            tail.push(b'"');
            tail.extend_from_slice(end);
            tails.push(tail);
        }
    }
    tails
}

fn tail<'a>(tails: &'a [Vec<u8>], h: &Handshake) -> &'a [u8] {
    tails
        .get(h.status.index() * TargetType::ALL.len() + h.target_type.index())
        .map_or(&[], Vec::as_slice)
}

/// Which value a per-invitation family's line carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Value {
    Expiry,
    Created,
    ExpiresIn,
}

const EXPIRES_IN: &str = "handshake_expires_in_seconds";

/// The numeric per-invitation families, in the order they are written.
const NUMERIC_FAMILIES: [(&str, &str, Value); 3] = [
    (
        "handshake_expiry_timestamp_seconds",
        "Expiry time of the invitation (Unix seconds), from the cached list action.",
        Value::Expiry,
    ),
    (
        "handshake_created_timestamp_seconds",
        "Creation time of the invitation (Unix seconds), from the cached list action.",
        Value::Created,
    ),
    (
        EXPIRES_IN,
        "Seconds from this scrape until the invitation expires (negative once past), from the cached list action.",
        Value::ExpiresIn,
    ),
];

/// One `handshake_expires_in_seconds` line of a [`Template`]: its labels are the
/// ones of the expiry line of the same invitation, at `start..end` of
/// [`Template::per_invitation`] (from after the `{` through the `} `).
struct Hole {
    start: usize,
    end: usize,
    expiry: i64,
}

/// `handshake_expires_in_seconds`'s value: milliseconds, rounded as the seconds
/// value always was (whole seconds when `now` is, as it is for scrapes).
fn expires_in_millis(expiry: i64, now: f64) -> i64 {
    ((expiry as f64 - now) * 1000.0).round() as i64
}

/// The lines of one numeric per-invitation family (header included). With
/// `holes`, the expiry family also notes where each line's labels are.
#[allow(clippy::too_many_arguments)]
fn numeric_family(
    out: &mut Vec<u8>,
    sources: &[SourceView],
    labels: &[Vec<u8>],
    selections: &[Selection],
    opts: &RenderOptions,
    (name, help, value): (&str, &str, Value),
    now: f64,
    mut holes: Option<&mut Vec<Hole>>,
) {
    header(out, name, help);
    let numeric_tails = tails(b"} ");
    for ((s, source), sel) in sources.iter().zip(labels).zip(selections) {
        let Some(snap) = &s.snapshot else { continue };
        let prefix = line_prefix(name, source);
        for (_, h) in snap
            .handshakes
            .iter()
            .enumerate()
            .filter(|(i, h)| wants_series(h, opts.per_invitation) && sel.keeps(*i))
        {
            let time = match value {
                Value::Expiry | Value::ExpiresIn => h.expires_at,
                Value::Created => h.created_at,
            };
            let Some(time) = time else { continue };
            let start = out.len() + name.len() + 1;
            out.extend_from_slice(&prefix);
            escape_into(out, &h.id);
            out.extend_from_slice(tail(&numeric_tails, h));
            if let Some(holes) = holes.as_deref_mut() {
                holes.push(Hole {
                    start,
                    end: out.len(),
                    expiry: time.timestamp(),
                });
            }
            match value {
                Value::Expiry | Value::Created => int_line(out, time.timestamp()),
                Value::ExpiresIn => millis_line(out, expires_in_millis(time.timestamp(), now)),
            }
        }
    }
}

fn info_family(
    out: &mut Vec<u8>,
    sources: &[SourceView],
    labels: &[Vec<u8>],
    selections: &[Selection],
    opts: &RenderOptions,
) {
    header(
        out,
        "handshake_info",
        "Descriptive labels of an invitation (target masked by default); always 1. From the cached list action.",
    );
    let info_tails = tails(b",target=\"");
    for ((s, source), sel) in sources.iter().zip(labels).zip(selections) {
        let Some(snap) = &s.snapshot else { continue };
        let prefix = line_prefix("handshake_info", source);
        for (_, h) in snap
            .handshakes
            .iter()
            .enumerate()
            .filter(|(i, h)| wants_series(h, opts.per_invitation) && sel.keeps(*i))
        {
            out.extend_from_slice(&prefix);
            escape_into(out, &h.id);
            out.extend_from_slice(tail(&info_tails, h));
            write_target(out, h.target_entity.as_deref(), opts.target_label);
            out.extend_from_slice(b"\",directory_id=\"");
            escape_into(out, h.directory_id.as_deref().unwrap_or(""));
            out.extend_from_slice(b"\",management_account_id=\"");
            escape_into(out, h.management_account_id.as_deref().unwrap_or(""));
            out.extend_from_slice(b"\",management_account_name=\"");
            write_maybe_email(out, h.management_account_name.as_deref(), opts.target_label);
            out.extend_from_slice(b"\",action=\"");
            out.extend_from_slice(h.action.as_str().as_bytes());
            out.extend_from_slice(b"\"} 1\n");
        }
    }
}

fn render_per_invitation(
    out: &mut Vec<u8>,
    sources: &[SourceView],
    selections: &[Selection],
    now: f64,
    opts: &RenderOptions,
) {
    if opts.per_invitation == PerInvitation::None {
        return;
    }
    let labels: Vec<Vec<u8>> = sources.iter().map(source_labels).collect();
    for family in NUMERIC_FAMILIES {
        numeric_family(out, sources, &labels, selections, opts, family, now, None);
    }
    info_family(out, sources, &labels, selections, opts);
}

/// Everything of a body that does not depend on the time of the scrape, made once
/// per (source generations, render options) and kept while scrapes keep coming
/// (see `cache::RenderCache`): each second then only fills in the values of
/// `handshake_expires_in_seconds` and the `handshake_pending_expiring` counts
/// ([`Template::fill`]), a copy of the expiry lines' labels and a number each,
/// instead of rendering the whole body again. Its parts are shared `Bytes`, sent
/// as they are by every scrape, and deflated once ([`Template::deflated`]).
///
/// [`Template::chunks`] of a fill are byte for byte what [`render`] writes for the
/// same `now` (`the_template_fills_in_what_render_writes`).
pub struct Template {
    /// `handshake_invitations`.
    counts: bytes::Bytes,
    /// The expiry and creation families, and the header of the `expires_in` one.
    per_invitation: bytes::Bytes,
    /// `handshake_info` and the source health families.
    rest: bytes::Bytes,
    holes: Vec<Hole>,
    /// Bytes the filled `expires_in` lines take, numbers left aside.
    expires_in_len: usize,
    /// For `handshake_pending_expiring`, counted again every second.
    pending: Vec<Pending>,
    opts: RenderOptions,
    deflated: tokio::sync::OnceCell<Option<[Deflated; 3]>>,
}

/// The parts of a body that depend on `now` (see [`Template::fill`]).
pub struct Filled {
    expiring: bytes::Bytes,
    expires_in: bytes::Bytes,
}

impl Filled {
    /// The two parts, in the order they are sent.
    pub fn parts(&self) -> [&[u8]; 2] {
        [&self.expiring, &self.expires_in]
    }
}

impl Template {
    pub fn new(sources: &[SourceView], opts: &RenderOptions) -> Template {
        let selections = selections(sources, opts);
        let mut counts = Vec::with_capacity(4_096 + sources.len() * 2_048);
        render_counts(&mut counts, sources);
        let mut per_invitation = Vec::new();
        let mut rest = Vec::new();
        let mut holes = Vec::new();
        if opts.per_invitation != PerInvitation::None {
            // Two of the four per-invitation families here, two in `rest`.
            let estimate = estimate(sources, &selections, opts);
            per_invitation.reserve(estimate / 2);
            rest.reserve(estimate / 2 + sources.len() * 1_024);
            let labels: Vec<Vec<u8>> = sources.iter().map(source_labels).collect();
            let [expiry, created, (name, help, _)] = NUMERIC_FAMILIES;
            let family = |out: &mut Vec<u8>, f, holes| {
                numeric_family(out, sources, &labels, &selections, opts, f, 0.0, holes);
            };
            family(&mut per_invitation, expiry, Some(&mut holes));
            family(&mut per_invitation, created, None);
            header(&mut per_invitation, name, help);
            info_family(&mut rest, sources, &labels, &selections, opts);
        }
        render_source_health(&mut rest, sources, &selections);
        let expires_in_len = holes
            .iter()
            .map(|h| EXPIRES_IN.len() + 1 + (h.end - h.start))
            .sum();
        Template {
            counts: counts.into(),
            per_invitation: per_invitation.into(),
            rest: rest.into(),
            holes,
            expires_in_len,
            pending: pending_of(sources),
            opts: opts.clone(),
            deflated: tokio::sync::OnceCell::new(),
        }
    }

    /// The parts that depend on `now` (Unix seconds).
    pub fn fill(&self, now: f64) -> Filled {
        let mut expiring =
            Vec::with_capacity(1_024 + self.pending.len() * (512 + self.opts.windows.len() * 512));
        write_expiring(&mut expiring, &self.pending, now, &self.opts);
        // Numbers: at most 20 digits, a sign, a point, 3 decimals and a newline.
        let mut lines = Vec::with_capacity(self.expires_in_len + self.holes.len() * 26);
        for h in &self.holes {
            lines.extend_from_slice(EXPIRES_IN.as_bytes());
            lines.push(b'{');
            lines.extend_from_slice(self.per_invitation.get(h.start..h.end).unwrap_or_default());
            millis_line(&mut lines, expires_in_millis(h.expiry, now));
        }
        Filled {
            expiring: expiring.into(),
            expires_in: lines.into(),
        }
    }

    /// The body's chunks for one fill, in order: shared parts and the fill's own.
    pub fn chunks(&self, filled: &Filled) -> [bytes::Bytes; 5] {
        [
            self.counts.clone(),
            filled.expiring.clone(),
            self.per_invitation.clone(),
            filled.expires_in.clone(),
            self.rest.clone(),
        ]
    }

    /// The shared parts deflated (see [`deflate`]), by `deflate` at most once
    /// however many scrapes ask at the same time; `None` when it failed.
    pub async fn deflated<F>(&self, deflate: F) -> Option<&[Deflated; 3]>
    where
        F: Fn(&[u8]) -> Option<Deflated>,
    {
        self.deflated
            .get_or_init(|| async {
                Some([
                    deflate(&self.counts)?,
                    deflate(&self.per_invitation)?,
                    deflate(&self.rest)?,
                ])
            })
            .await
            .as_ref()
    }
}

fn render_source_health(out: &mut Vec<u8>, sources: &[SourceView], selections: &[Selection]) {
    header(
        out,
        "handshake_source_series_dropped",
        "Invitations left out of the per-invitation families by max_invitation_series (the ones expiring soonest are kept; the counts still cover every invitation).",
    );
    for (s, sel) in sources.iter().zip(selections) {
        if s.snapshot.is_some() {
            sample(
                out,
                "handshake_source_series_dropped",
                &[("provider", s.provider.as_str()), ("source", &s.name)],
                sel.dropped as f64,
            );
        }
    }
    header(
        out,
        "handshake_source_up",
        "Whether the source's last refresh succeeded (1) or failed (0); 0 before its first refresh finished.",
    );
    for s in sources {
        sample(
            out,
            "handshake_source_up",
            &[("provider", s.provider.as_str()), ("source", &s.name)],
            if s.up { 1.0 } else { 0.0 },
        );
    }
    header(
        out,
        "handshake_source_last_success_timestamp_seconds",
        "Time of the source's last successful refresh (Unix seconds); absent before the first.",
    );
    for s in sources {
        if let Some(t) = s.last_success {
            sample(
                out,
                "handshake_source_last_success_timestamp_seconds",
                &[("provider", s.provider.as_str()), ("source", &s.name)],
                (t * 1000.0).round() / 1000.0,
            );
        }
    }
    header(
        out,
        "handshake_source_refresh_duration_seconds",
        "Wall time of the source's last refresh, successful or not.",
    );
    for s in sources {
        if let Some(d) = s.last_duration {
            sample(
                out,
                "handshake_source_refresh_duration_seconds",
                &[("provider", s.provider.as_str()), ("source", &s.name)],
                (d.as_secs_f64() * 1e6).round() / 1e6,
            );
        }
    }
}

/// A body compressed as the start of a gzip stream: raw deflate blocks ending in a
/// sync flush (byte-aligned, not final), so that more blocks can follow. Made once
/// per shared body; every gzip scrape then only compresses its own small tail (the
/// exporter's registry) and sends the shared blocks as they are.
pub struct Deflated {
    pub blocks: bytes::Bytes,
    crc: flate2::Crc,
}

/// Compress `text` at the fast level (the exposition is repetitive: level 1 already
/// shrinks it several times over at a fraction of the default level's cost).
pub fn deflate(text: &[u8]) -> std::io::Result<Deflated> {
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(text.len() / 6 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(text)?;
    // A sync flush, not `finish`: the stream stays open for the tail's blocks.
    enc.flush()?;
    let blocks = std::mem::take(enc.get_mut());
    let mut crc = flate2::Crc::new();
    crc.update(text);
    Ok(Deflated {
        blocks: blocks.into(),
        crc,
    })
}

/// The fixed gzip header: deflate, no name, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One gzip stream (a single member, as every client expects) of the shared
/// parts, in order, followed by `tail`, as the chunks to send: header, each part's
/// blocks (the same `Bytes` for every scrape: no copy), the tail's blocks, trailer.
pub fn gzip_chunks(shared: &[&Deflated], tail: &[u8]) -> std::io::Result<Vec<bytes::Bytes>> {
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(tail.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(tail)?;
    let tail_blocks = enc.finish()?;
    let mut crc = flate2::Crc::new();
    for part in shared {
        crc.combine(&part.crc);
    }
    let mut tail_crc = flate2::Crc::new();
    tail_crc.update(tail);
    crc.combine(&tail_crc);
    let mut trailer = Vec::with_capacity(8);
    trailer.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the length modulo 2^32, which is what `amount` keeps.
    trailer.extend_from_slice(&crc.amount().to_le_bytes());
    let mut chunks = Vec::with_capacity(shared.len() + 3);
    chunks.push(bytes::Bytes::from_static(&GZIP_HEADER));
    chunks.extend(shared.iter().map(|part| part.blocks.clone()));
    chunks.push(tail_blocks.into());
    chunks.push(trailer.into());
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Snapshot;
    use crate::config::default_windows;
    use chrono::DateTime;
    use std::sync::Arc;

    fn hs(
        id: &str,
        status: Status,
        t: TargetType,
        expires: Option<i64>,
        target: &str,
    ) -> Handshake {
        let mut h = Handshake::new(Provider::Alibaba, Arc::from("rd"), id);
        h.status = status;
        h.target_type = t;
        h.target_entity = Some(target.into());
        h.expires_at = expires.and_then(|e| DateTime::from_timestamp(e, 0));
        h.created_at = DateTime::from_timestamp(1_000, 0);
        h.management_account_name = Some("ops-admin@example.com".into());
        h
    }

    fn view(handshakes: Vec<Handshake>) -> SourceView {
        SourceView {
            name: Arc::from("rd"),
            provider: Provider::Alibaba,
            snapshot: Some(Arc::new(Snapshot {
                handshakes,
                fetched_at: 5_000.5,
            })),
            up: true,
            last_success: Some(5_000.5),
            last_duration: Some(std::time::Duration::from_millis(1500)),
            last_error: None,
            failing_since: None,
            refreshing: false,
            generation: 1,
        }
    }

    fn opts() -> RenderOptions {
        RenderOptions {
            per_invitation: PerInvitation::Pending,
            target_label: TargetLabel::Masked,
            windows: default_windows(),
            max_invitation_series: crate::config::DEFAULT_MAX_INVITATION_SERIES,
        }
    }

    fn text(sources: &[SourceView], now: f64, o: &RenderOptions) -> String {
        let mut out = Vec::new();
        render(&mut out, sources, now, o);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn counts_cover_every_status_and_known_target_type() {
        let now = 100_000.0;
        let t = text(
            &[view(vec![hs(
                "h-1",
                Status::Pending,
                TargetType::Email,
                Some(103_600),
                "sam@example.com",
            )])],
            now,
            &opts(),
        );
        assert!(t.contains("handshake_invitations{provider=\"alibaba\",source=\"rd\",status=\"pending\",target_type=\"email\"} 1\n"), "{t}");
        assert!(t.contains("handshake_invitations{provider=\"alibaba\",source=\"rd\",status=\"declined\",target_type=\"account\"} 0\n"));
        assert!(!t.contains("target_type=\"name\""));
        let count_lines = t
            .lines()
            .filter(|l| l.starts_with("handshake_invitations{"))
            .count();
        assert_eq!(count_lines, 6 * 2);
    }

    #[test]
    fn expiring_windows_count_past_items_in_every_window() {
        let now = 100_000.0;
        let items = vec![
            hs(
                "h-past",
                Status::Pending,
                TargetType::Account,
                Some(90_000),
                "1728000011",
            ),
            hs(
                "h-2h",
                Status::Pending,
                TargetType::Account,
                Some(107_200),
                "1728000012",
            ),
            hs(
                "h-2d",
                Status::Pending,
                TargetType::Account,
                Some(272_800),
                "1728000013",
            ),
            hs(
                "h-none",
                Status::Pending,
                TargetType::Account,
                None,
                "1728000014",
            ),
            hs(
                "h-acc",
                Status::Accepted,
                TargetType::Account,
                Some(100_100),
                "1728000015",
            ),
        ];
        let t = text(&[view(items)], now, &opts());
        let get = |within: &str| {
            let prefix = format!(
                "handshake_pending_expiring{{provider=\"alibaba\",source=\"rd\",target_type=\"account\",within=\"{within}\"}} "
            );
            t.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .map(str::to_string)
        };
        assert_eq!(get("1h").as_deref(), Some("1"));
        assert_eq!(get("6h").as_deref(), Some("2"));
        assert_eq!(get("1d").as_deref(), Some("2"));
        assert_eq!(get("3d").as_deref(), Some("3"));
        assert_eq!(get("+Inf").as_deref(), Some("4"));
        assert!(t.contains("handshake_expires_in_seconds{provider=\"alibaba\",source=\"rd\",handshake_id=\"h-past\",status=\"pending\",target_type=\"account\"} -10000\n"));
        // Accepted invitations get no per-invitation series by default.
        assert!(!t.contains("handshake_id=\"h-acc\""));
    }

    #[test]
    fn targets_are_masked_and_labels_escaped() {
        assert_eq!(mask("sam@example.com"), "s***@example.com");
        assert_eq!(mask("1728422852740000"), "1728****");
        assert_eq!(mask("abc"), "****");
        let mut h = hs(
            "h-\"x\"\n",
            Status::Pending,
            TargetType::Email,
            Some(1),
            "sam@example.com",
        );
        h.directory_id = Some("rd\\1".into());
        let t = text(&[view(vec![h])], 0.0, &opts());
        assert!(t.contains("handshake_id=\"h-\\\"x\\\"\\n\""), "{t}");
        assert!(t.contains("target=\"s***@example.com\""));
        assert!(t.contains("management_account_name=\"o***@example.com\""));
        assert!(t.contains("directory_id=\"rd\\\\1\""));
        assert!(t.contains("management_account_name=\"o***@example.com\",action=\"invite\"} 1\n"));
        assert!(!t.contains("sam@example.com\""));
        let mut full = opts();
        full.target_label = TargetLabel::Full;
        full.per_invitation = PerInvitation::All;
        let h = hs(
            "h-1",
            Status::Accepted,
            TargetType::Email,
            Some(1),
            "sam@example.com",
        );
        let mut enable = hs("h-2", Status::Pending, TargetType::Account, Some(1), "1234");
        enable.action = crate::model::Action::parse_lenient("ENABLE_ALL_FEATURES");
        let t = text(&[view(vec![h, enable])], 0.0, &full);
        assert!(t.contains("target=\"sam@example.com\""));
        assert!(t.contains("action=\"enable_all_features\"} 1\n"), "{t}");
    }

    /// What `write_value` printed before it had its own integer writer.
    fn fmt_value(v: f64) -> String {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    }

    #[test]
    fn number_writers_print_what_fmt_prints() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut fixed = vec![0, 1, -1, 999, -999, 1000, -1000, 1500, -1500, 1_050, 1_005];
        fixed.extend([
            i64::MAX,
            i64::MIN,
            999_999_999_999_999,
            -999_999_999_999_999,
        ]);
        fixed.extend([1_000_000_000_000_000, 123_456_789_012_345_678]);
        let random = (0..200_000).map(|i| match i % 4 {
            0 => rng.i64(-100_000..100_000),
            1 => rng.i64(-3_000_000_000_000..3_000_000_000_000),
            2 => rng.i64(-999_999_999_999_999..=999_999_999_999_999),
            _ => rng.i64(..),
        });
        for k in fixed.into_iter().chain(random) {
            let mut out = Vec::new();
            write_millis(&mut out, k);
            assert_eq!(
                String::from_utf8_lossy(&out),
                fmt_value(k as f64 / 1000.0),
                "{k}"
            );
            out.clear();
            write_int(&mut out, k);
            assert_eq!(String::from_utf8_lossy(&out), k.to_string());
            out.clear();
            write_value(&mut out, k as f64);
            assert_eq!(String::from_utf8_lossy(&out), fmt_value(k as f64));
        }
    }

    /// The per-invitation families as the generic `sample` writer renders them: the
    /// direct writer must produce exactly these bytes.
    fn generic_per_invitation(sources: &[SourceView], now: f64, opts: &RenderOptions) -> String {
        type Value = fn(&Handshake, f64) -> Option<f64>;
        let families: [(&str, Value); 3] = [
            ("handshake_expiry_timestamp_seconds", |h, _| {
                h.expires_at.map(|t| t.timestamp() as f64)
            }),
            ("handshake_created_timestamp_seconds", |h, _| {
                h.created_at.map(|t| t.timestamp() as f64)
            }),
            ("handshake_expires_in_seconds", |h, now| {
                h.expires_at
                    .map(|t| ((t.timestamp() as f64 - now) * 1000.0).round() / 1000.0)
            }),
        ];
        let mut out = Vec::new();
        let wanted = |s: &SourceView| -> Vec<Handshake> {
            s.snapshot.as_ref().map_or(Vec::new(), |snap| {
                snap.handshakes
                    .iter()
                    .filter(|h| wants_series(h, opts.per_invitation))
                    .cloned()
                    .collect()
            })
        };
        for (name, value) in families {
            for s in sources {
                for h in wanted(s) {
                    if let Some(v) = value(&h, now) {
                        sample(
                            &mut out,
                            name,
                            &[
                                ("provider", s.provider.as_str()),
                                ("source", &s.name),
                                ("handshake_id", &h.id),
                                ("status", h.status.as_str()),
                                ("target_type", h.target_type.as_str()),
                            ],
                            v,
                        );
                    }
                }
            }
        }
        for s in sources {
            for h in wanted(s) {
                let target = show_target(h.target_entity.as_deref(), opts.target_label);
                let mgmt =
                    show_maybe_email(h.management_account_name.as_deref(), opts.target_label);
                sample(
                    &mut out,
                    "handshake_info",
                    &[
                        ("provider", s.provider.as_str()),
                        ("source", &s.name),
                        ("handshake_id", &h.id),
                        ("status", h.status.as_str()),
                        ("target_type", h.target_type.as_str()),
                        ("target", &target),
                        ("directory_id", h.directory_id.as_deref().unwrap_or("")),
                        (
                            "management_account_id",
                            h.management_account_id.as_deref().unwrap_or(""),
                        ),
                        ("management_account_name", &mgmt),
                        ("action", h.action.as_str()),
                    ],
                    1.0,
                );
            }
        }
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn the_direct_writer_matches_the_generic_one() {
        use crate::sim::{Dataset, data};
        let now_t = chrono::Utc::now();
        let now = now_t.timestamp_millis() as f64 / 1000.0 + 0.000_4;
        let mut odd = data::generate(Dataset::AlibabaResourceDirectory, 300, 9, now_t);
        // Values that need escaping or masking edge cases, in every field.
        let weird = [
            "a\\b",
            "q\"uote",
            "new\nline",
            "é",
            "ab",
            "abcdé@x\"y",
            "@",
            "",
            "日本語です",
        ];
        for (i, h) in odd.iter_mut().enumerate().take(weird.len() * 4) {
            let w = weird[i % weird.len()];
            match i / weird.len() {
                0 => h.target_entity = Some(w.to_string()),
                1 => h.management_account_name = Some(format!("{w}@{w}").into()),
                2 => h.directory_id = Some(w.into()),
                _ => h.id = format!("{}-{w}", h.id),
            }
            h.status = Status::Pending;
        }
        odd[1].expires_at = None;
        odd[2].created_at = None;
        odd[3].target_entity = None;
        odd[4].management_account_name = None;
        let mut second = view(data::generate(Dataset::HuaweiReceived, 200, 4, now_t));
        second.name = Arc::from("hw \"recv\"\n");
        second.provider = Provider::Huawei;
        let sources = [view(odd), second];
        for per_invitation in [
            PerInvitation::Pending,
            PerInvitation::All,
            PerInvitation::None,
        ] {
            for target_label in [TargetLabel::Masked, TargetLabel::Full, TargetLabel::None] {
                let o = RenderOptions {
                    per_invitation,
                    target_label,
                    windows: default_windows(),
                    max_invitation_series: crate::config::DEFAULT_MAX_INVITATION_SERIES,
                };
                let mut direct = Vec::new();
                render_per_invitation(&mut direct, &sources, &selections(&sources, &o), now, &o);
                let direct: String = String::from_utf8(direct)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(|l| format!("{l}\n"))
                    .collect();
                assert_eq!(direct, generic_per_invitation(&sources, now, &o));
            }
        }
    }

    #[test]
    fn the_template_fills_in_what_render_writes() {
        use crate::sim::{Dataset, data};
        let base = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
        let mut odd = data::generate(Dataset::AlibabaResourceDirectory, 400, 9, base);
        odd[0].id = "h-\"x\"\n".into();
        odd[1].expires_at = None;
        odd[2].created_at = None;
        let mut second = view(data::generate(Dataset::HuaweiReceived, 300, 4, base));
        second.name = Arc::from("hw \"recv\"\n");
        second.provider = Provider::Huawei;
        let mut empty = view(vec![]);
        empty.name = Arc::from("empty");
        empty.snapshot = None;
        let sources = [view(odd), second, empty];
        let t0 = base.timestamp() as f64;
        // Before, at and long after the expiries (negative `expires_in`), whole
        // seconds as scrapes use, and fractions the renderer rounds.
        let nows = [
            0.0,
            t0,
            t0 + 1.0,
            t0 + 86_400.0 * 3.0 + 7.0,
            t0 + 1e8,
            t0 + 0.2505,
            -1.5,
        ];
        let mut checked_negative = false;
        for per_invitation in [
            PerInvitation::Pending,
            PerInvitation::All,
            PerInvitation::None,
        ] {
            // Within the budget, and a budget that drops most invitations.
            for max_invitation_series in [crate::config::DEFAULT_MAX_INVITATION_SERIES, 150] {
                let o = RenderOptions {
                    per_invitation,
                    target_label: TargetLabel::Masked,
                    windows: default_windows(),
                    max_invitation_series,
                };
                let template = Template::new(&sources, &o);
                for now in nows {
                    let filled: Vec<u8> = template
                        .chunks(&template.fill(now))
                        .iter()
                        .flat_map(|c| c.iter().copied())
                        .collect();
                    let filled = String::from_utf8(filled).unwrap_or_default();
                    let want = text(&sources, now, &o);
                    assert_eq!(
                        filled, want,
                        "{per_invitation:?} {max_invitation_series} {now}"
                    );
                    checked_negative |=
                        want.contains("handshake_expires_in_seconds{") && want.contains("} -");
                }
                if max_invitation_series == 150 && per_invitation != PerInvitation::None {
                    assert!(
                        !text(&sources, t0, &o)
                            .contains("series_dropped{provider=\"alibaba\",source=\"rd\"} 0\n")
                    );
                }
            }
        }
        assert!(checked_negative);
    }

    #[test]
    fn the_buffer_is_sized_once() {
        use crate::sim::{Dataset, data};
        let now = chrono::Utc::now();
        for n in [0, 10, 1_000, 5_000] {
            for d in [Dataset::AlibabaAccount, Dataset::HuaweiSent] {
                let sources = [view(data::generate(d, n, 1, now))];
                let want = reserve_for(&sources, &selections(&sources, &opts()), &opts());
                let mut out = Vec::new();
                render(&mut out, &sources, 0.0, &opts());
                // A Vec that outgrows its buffer at least doubles it.
                assert!(out.capacity() < 2 * want, "{n}: grew past the estimate");
                // Room for the registry, and not much more.
                assert!(out.len() + 8_192 <= want, "{n}: {want} for {}", out.len());
                assert!(
                    want <= out.len() * 5 / 4 + 40_000,
                    "{n}: {want} for {}",
                    out.len()
                );
            }
        }
    }

    /// The values of one family's lines, by `handshake_id`.
    fn by_id<'a>(t: &'a str, family: &str) -> Vec<(&'a str, &'a str)> {
        t.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .filter_map(|l| {
                let id = l.split("handshake_id=\"").nth(1)?.split('"').next()?;
                Some((id, l.rsplit(' ').next()?))
            })
            .collect()
    }

    #[test]
    fn the_series_budget_keeps_the_soonest_expiries_and_counts_the_rest() {
        let now = 100_000.0;
        // Pending invitations in no particular order of expiry; "h-never" has none.
        let expiries = [
            ("h-5", Some(105_000)),
            ("h-1", Some(90_000)),
            ("h-9", Some(109_000)),
            ("h-never", None),
            ("h-3", Some(103_000)),
            ("h-7", Some(107_000)),
            ("h-2", Some(102_000)),
            ("h-8", Some(108_000)),
            ("h-4", Some(104_000)),
            ("h-6", Some(106_000)),
            ("h-10", Some(110_000)),
        ];
        let mut items: Vec<Handshake> = expiries
            .iter()
            .map(|(id, e)| hs(id, Status::Pending, TargetType::Account, *e, "1728000011"))
            .collect();
        items.push(hs(
            "h-acc",
            Status::Accepted,
            TargetType::Account,
            Some(95_000),
            "1728000099",
        ));
        let mut o = opts();
        // Four series per invitation: room for three (12), not four (16).
        o.max_invitation_series = 14;
        let t = text(&[view(items.clone())], now, &o);
        let kept: Vec<&str> = by_id(&t, "handshake_expires_in_seconds")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        // Failed before (no budget): all eleven pending invitations were rendered.
        assert_eq!(kept, ["h-1", "h-3", "h-2"], "{t}");
        for family in [
            "handshake_info",
            "handshake_expiry_timestamp_seconds",
            "handshake_created_timestamp_seconds",
        ] {
            assert_eq!(by_id(&t, family).len(), 3, "{family}");
        }
        assert!(
            t.contains("handshake_source_series_dropped{provider=\"alibaba\",source=\"rd\"} 8\n")
        );
        // The counts stay exact.
        assert!(t.contains("handshake_invitations{provider=\"alibaba\",source=\"rd\",status=\"pending\",target_type=\"account\"} 11\n"));
        assert!(t.contains("handshake_pending_expiring{provider=\"alibaba\",source=\"rd\",target_type=\"account\",within=\"+Inf\"} 11\n"));
        assert!(t.contains("handshake_pending_expiring{provider=\"alibaba\",source=\"rd\",target_type=\"account\",within=\"3d\"} 10\n"));

        // With `all`, the accepted one (expired before h-1) comes first.
        o.per_invitation = PerInvitation::All;
        let t = text(&[view(items.clone())], now, &o);
        let kept: Vec<&str> = by_id(&t, "handshake_info")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(kept, ["h-1", "h-2", "h-acc"]);
        assert!(
            t.contains("handshake_source_series_dropped{provider=\"alibaba\",source=\"rd\"} 9\n")
        );

        // Within the budget nothing is dropped, and the gauge says 0.
        o.max_invitation_series = 48;
        let t = text(&[view(items)], now, &o);
        assert_eq!(by_id(&t, "handshake_info").len(), 12);
        assert!(
            t.contains("handshake_source_series_dropped{provider=\"alibaba\",source=\"rd\"} 0\n")
        );
    }

    #[test]
    fn sources_without_data_only_report_health() {
        let mut v = view(vec![]);
        v.snapshot = None;
        v.up = false;
        v.last_success = None;
        let t = text(&[v], 0.0, &opts());
        assert!(t.contains("handshake_source_up{provider=\"alibaba\",source=\"rd\"} 0\n"));
        assert!(!t.contains("handshake_invitations{"));
        assert!(!t.contains("handshake_source_last_success_timestamp_seconds{"));
        assert!(t.contains(
            "handshake_source_refresh_duration_seconds{provider=\"alibaba\",source=\"rd\"} 1.5\n"
        ));
    }
}
