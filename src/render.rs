//! Turns cache snapshots into the Prometheus text exposition, fresh on every scrape.
//!
//! The per-invitation families are written directly rather than through the
//! `prometheus` crate's protobuf model: at 10,000 invitations that model allocates
//! hundreds of thousands of small objects per scrape, while this writer only appends
//! to one pre-sized buffer. The exporter's own counters still come from the registry.

use crate::cache::SourceView;
use crate::config::{ExpiryWindow, PerInvitation, TargetLabel};
use crate::model::{Handshake, Provider, Status, TargetType};
use std::io::Write;

/// Rendering choices from the configuration.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub per_invitation: PerInvitation,
    pub target_label: TargetLabel,
    pub windows: Vec<ExpiryWindow>,
}

/// Target types each provider documents; `handshake_invitations` reports 0 for these.
pub fn known_target_types(provider: Provider) -> &'static [TargetType] {
    match provider {
        Provider::Alibaba => &[TargetType::Account, TargetType::Email],
        Provider::Huawei => &[TargetType::Account, TargetType::Name],
    }
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

fn escape_into(out: &mut Vec<u8>, value: &str) {
    for b in value.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

fn header(out: &mut Vec<u8>, name: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
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
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn wants_series(h: &Handshake, rule: PerInvitation) -> bool {
    match rule {
        PerInvitation::All => true,
        PerInvitation::Pending => h.status == Status::Pending,
        PerInvitation::None => false,
    }
}

/// Rough bytes per invitation series line, to size the buffer once.
const BYTES_PER_INVITATION: usize = 900;

/// Render every source's snapshot families. `now` is Unix seconds.
pub fn render(out: &mut Vec<u8>, sources: &[SourceView], now: f64, opts: &RenderOptions) {
    let total: usize = sources
        .iter()
        .filter_map(|s| s.snapshot.as_ref())
        .map(|s| s.handshakes.len())
        .sum();
    out.reserve(8_192 + sources.len() * 4_096 + total * BYTES_PER_INVITATION);

    render_counts(out, sources);
    render_expiring(out, sources, now, opts);
    render_per_invitation(out, sources, now, opts);
    render_source_health(out, sources);
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

fn render_expiring(out: &mut Vec<u8>, sources: &[SourceView], now: f64, opts: &RenderOptions) {
    header(
        out,
        "handshake_pending_expiring",
        "Pending invitations whose expiry is at most `within` away (already past ones count in every window; +Inf counts every pending invitation), from the cached list action.",
    );
    for s in sources {
        let Some(snap) = &s.snapshot else { continue };
        let known = known_target_types(s.provider);
        // counts[target_type][window]
        let mut counts = vec![[0u64; TargetType::ALL.len()]; opts.windows.len()];
        for h in snap
            .handshakes
            .iter()
            .filter(|h| h.status == Status::Pending)
        {
            let left = h.expires_at.map(|e| e.timestamp() as f64 - now);
            for (w, window) in opts.windows.iter().enumerate() {
                let inside = match (window.seconds, left) {
                    (None, _) => true,
                    (Some(limit), Some(left)) => left <= limit,
                    (Some(_), None) => false,
                };
                if inside {
                    counts[w][h.target_type.index()] += 1;
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

fn render_per_invitation(
    out: &mut Vec<u8>,
    sources: &[SourceView],
    now: f64,
    opts: &RenderOptions,
) {
    if opts.per_invitation == PerInvitation::None {
        return;
    }
    type Value = fn(&Handshake, f64) -> Option<f64>;
    let families: [(&str, &str, Value); 3] = [
        (
            "handshake_expiry_timestamp_seconds",
            "Expiry time of the invitation (Unix seconds), from the cached list action.",
            |h, _| h.expires_at.map(|t| t.timestamp() as f64),
        ),
        (
            "handshake_created_timestamp_seconds",
            "Creation time of the invitation (Unix seconds), from the cached list action.",
            |h, _| h.created_at.map(|t| t.timestamp() as f64),
        ),
        (
            "handshake_expires_in_seconds",
            "Seconds from this scrape until the invitation expires (negative once past), from the cached list action.",
            |h, now| {
                h.expires_at
                    .map(|t| ((t.timestamp() as f64 - now) * 1000.0).round() / 1000.0)
            },
        ),
    ];
    for (name, help, value) in families {
        header(out, name, help);
        for s in sources {
            let Some(snap) = &s.snapshot else { continue };
            for h in snap
                .handshakes
                .iter()
                .filter(|h| wants_series(h, opts.per_invitation))
            {
                if let Some(v) = value(h, now) {
                    sample(
                        out,
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
    header(
        out,
        "handshake_info",
        "Descriptive labels of an invitation (target masked by default); always 1. From the cached list action.",
    );
    for s in sources {
        let Some(snap) = &s.snapshot else { continue };
        for h in snap
            .handshakes
            .iter()
            .filter(|h| wants_series(h, opts.per_invitation))
        {
            let target = show_target(h.target_entity.as_deref(), opts.target_label);
            let mgmt_name =
                show_maybe_email(h.management_account_name.as_deref(), opts.target_label);
            sample(
                out,
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
                    ("management_account_name", &mgmt_name),
                ],
                1.0,
            );
        }
    }
}

fn render_source_health(out: &mut Vec<u8>, sources: &[SourceView]) {
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
            refreshing: false,
        }
    }

    fn opts() -> RenderOptions {
        RenderOptions {
            per_invitation: PerInvitation::Pending,
            target_label: TargetLabel::Masked,
            windows: default_windows(),
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
        let t = text(&[view(vec![h])], 0.0, &full);
        assert!(t.contains("target=\"sam@example.com\""));
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
