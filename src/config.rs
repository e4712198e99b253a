//! Configuration file: parsing, validation with file:line:field errors, credential
//! resolution (inline, `<key>_file`, environment).

use crate::credentials::{CredCtx, CredentialConfig, RawCredentials};
use crate::model::Provider;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default Alibaba endpoint (one host serves every region).
pub const ALIBABA_DEFAULT_ENDPOINT: &str = "https://resourcemanager.aliyuncs.com";
/// Default Huawei endpoint (Organizations is a global service).
pub const HUAWEI_DEFAULT_ENDPOINT: &str = "https://organizations.myhuaweicloud.com";
/// Alibaba's maximum PageSize.
pub const ALIBABA_MAX_PAGE_SIZE: u32 = 100;
/// Huawei's documented maximum `limit`.
pub const HUAWEI_MAX_LIMIT: u32 = 2000;

/// A configuration problem, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<u64>,
    /// Dotted path of the offending field (`sources[1].view`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// What a source lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Alibaba ListHandshakesForResourceDirectory.
    ResourceDirectory,
    /// Alibaba ListHandshakesForAccount.
    Account,
    /// Huawei ListHandshakes (sent by the organization).
    Sent,
    /// Huawei ListReceivedHandshakes.
    Received,
    /// GetHandshake / ShowHandshake for each of `handshake_ids`.
    Ids,
}

impl View {
    pub const fn as_str(self) -> &'static str {
        match self {
            View::ResourceDirectory => "resource_directory",
            View::Account => "account",
            View::Sent => "sent",
            View::Received => "received",
            View::Ids => "ids",
        }
    }
}

/// Alibaba signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlibabaSignature {
    /// ACS3-HMAC-SHA256, what the official SDK uses by default.
    #[default]
    V3,
    /// Classic RPC HMAC-SHA1 (`SignatureVersion=1.0`).
    V1,
}

/// Which invitations get per-invitation series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PerInvitation {
    #[default]
    Pending,
    All,
    None,
}

/// How the invitee (`target` label and JSON field) is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TargetLabel {
    #[default]
    Masked,
    Full,
    None,
}

/// One `within` bucket of `handshake_pending_expiring`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpiryWindow {
    /// Label value as configured (`1h`, `3d`, `+Inf`).
    pub label: String,
    /// Window length; `None` is `+Inf`.
    pub seconds: Option<f64>,
}

/// A configured source, validated and with its credentials resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceConfig {
    pub name: String,
    pub provider: Provider,
    pub view: View,
    pub handshake_ids: Vec<String>,
    /// Base URL without trailing slash.
    pub endpoint: String,
    pub signature: AlibabaSignature,
    /// Page size: Alibaba PageSize (1–100, default 100) or Huawei limit (1–2000, default 2000).
    pub page_size: u32,
    pub credentials: CredentialConfig,
    /// API requests per second, if limited.
    pub rate_limit: Option<f64>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Line of the source in the file (0 for generated sources), for messages only.
    pub line: u64,
}

impl SourceConfig {
    /// Whether two configurations would fetch the same data the same way (line
    /// numbers aside). Reload keeps the cache of sources for which this holds.
    pub fn same_settings(&self, other: &SourceConfig) -> bool {
        let mut a = self.clone();
        a.line = other.line;
        a == *other
    }
}

/// The whole validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// A scrape that finds data older than this triggers a refresh.
    pub refresh_interval: Duration,
    /// A refresh (every page, every retry) is abandoned after this long.
    pub refresh_timeout: Duration,
    /// Subtracted from Prometheus' scrape timeout to leave time to answer.
    pub scrape_timeout_offset: Duration,
    /// How long a scrape without `X-Prometheus-Scrape-Timeout-Seconds` waits.
    pub default_scrape_timeout: Duration,
    pub expiring_windows: Vec<ExpiryWindow>,
    pub per_invitation: PerInvitation,
    pub target_label: TargetLabel,
    /// Process-wide cap on concurrent outbound API requests.
    pub max_concurrent_requests: usize,
    /// Per source, at most this many per-invitation series (the cardinality budget).
    pub max_invitation_series: usize,
    pub sources: Vec<SourceConfig>,
    /// Non-fatal findings (world-readable credential files); logged at start.
    pub warnings: Vec<String>,
}

/// Default `max_invitation_series`: 12,500 invitations at four series each.
pub const DEFAULT_MAX_INVITATION_SERIES: usize = 50_000;
/// Upper bound of `max_invitation_series` (a typo guard, not a recommendation).
pub const MAX_MAX_INVITATION_SERIES: u64 = 100_000_000;

pub const DEFAULT_WINDOWS: [&str; 6] = ["1h", "6h", "1d", "3d", "7d", "14d"];

impl Config {
    /// Defaults with the given sources (used by `--demo` and tests).
    pub fn with_sources(sources: Vec<SourceConfig>) -> Config {
        Config {
            refresh_interval: Duration::from_secs(60),
            refresh_timeout: Duration::from_secs(30),
            scrape_timeout_offset: Duration::from_millis(500),
            default_scrape_timeout: Duration::from_secs(10),
            expiring_windows: default_windows(),
            per_invitation: PerInvitation::Pending,
            target_label: TargetLabel::Masked,
            max_concurrent_requests: 64,
            max_invitation_series: DEFAULT_MAX_INVITATION_SERIES,
            sources,
            warnings: Vec::new(),
        }
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }
}

pub fn default_windows() -> Vec<ExpiryWindow> {
    let mut windows: Vec<ExpiryWindow> = DEFAULT_WINDOWS
        .iter()
        .map(|w| ExpiryWindow {
            label: (*w).to_string(),
            seconds: parse_duration(w).ok().map(|d| d.as_secs_f64()),
        })
        .collect();
    windows.push(ExpiryWindow {
        label: "+Inf".into(),
        seconds: None,
    });
    windows
}

/// Parse a Prometheus-style duration: `500ms`, `60s`, `1m30s`, `1h`, `3d`, `2w`;
/// a bare number is seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(format!("invalid duration {raw:?}"))
        };
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {raw:?}: expected a number like 60s, 5m, 1h, 3d"
            ));
        }
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let (unit, tail) = tail.split_at(unit_len);
        let n: u128 = num
            .parse()
            .map_err(|_| format!("invalid duration {raw:?}"))?;
        let ms_per: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => {
                return Err(format!(
                    "invalid duration {raw:?}: unknown unit {unit:?} (use ms, s, m, h, d, w, y)"
                ));
            }
        };
        total_ms = total_ms
            .checked_add(n.saturating_mul(ms_per))
            .ok_or_else(|| format!("duration {raw:?} is too large"))?;
        rest = tail;
    }
    let ms = u64::try_from(total_ms).map_err(|_| format!("duration {raw:?} is too large"))?;
    Ok(Duration::from_millis(ms))
}

// ---------------------------------------------------------------------------
// Raw file shape

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    refresh_interval: Option<S<String>>,
    refresh_timeout: Option<S<String>>,
    scrape_timeout_offset: Option<S<String>>,
    default_scrape_timeout: Option<S<String>>,
    expiring_windows: Option<S<Vec<S<String>>>>,
    per_invitation: Option<S<String>>,
    target_label: Option<S<String>>,
    max_concurrent_requests: Option<S<u64>>,
    max_invitation_series: Option<S<u64>>,
    #[serde(default)]
    sources: Vec<S<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Option<S<String>>,
    provider: Option<S<String>>,
    view: Option<S<String>>,
    handshake_ids: Option<S<Vec<S<String>>>>,
    endpoint: Option<S<String>>,
    signature: Option<S<String>>,
    page_size: Option<S<u64>>,
    limit: Option<S<u64>>,
    rate_limit: Option<S<f64>>,
    connect_timeout: Option<S<String>>,
    request_timeout: Option<S<String>>,
    credentials: Option<S<RawCredentials>>,
}

/// Reads the environment; injectable so tests do not depend on the real one.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn real_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Load and validate a configuration file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        field: None,
        message: format!("cannot read configuration file: {e}"),
    })?;
    load_str(&text, path, &real_env)
}

struct Ctx<'a> {
    file: &'a Path,
    env: EnvLookup<'a>,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn err(&self, line: u64, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: (line > 0).then_some(line),
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        raw: &Option<S<String>>,
        field: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match raw {
            None => Ok(default),
            Some(v) => {
                parse_duration(&v.value).map_err(|m| self.err(v.referenced.line(), field, m))
            }
        }
    }
}

/// Parse and validate configuration text. `file` is only used in messages.
pub fn load_str(text: &str, file: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: e.location().map(|l| l.line()),
        field: None,
        // The rendered message carries the snippet; keep only its first line here.
        message: first_line(&e.to_string()),
    })?;
    let mut ctx = Ctx {
        file,
        env,
        warnings: Vec::new(),
    };

    let mut config = Config::with_sources(Vec::new());
    config.refresh_interval = ctx.duration(
        &raw.refresh_interval,
        "refresh_interval",
        config.refresh_interval,
    )?;
    if config.refresh_interval < Duration::from_secs(1) {
        let line = raw
            .refresh_interval
            .as_ref()
            .map_or(0, |v| v.referenced.line());
        return Err(ctx.err(line, "refresh_interval", "must be at least 1s"));
    }
    config.refresh_timeout = ctx.duration(
        &raw.refresh_timeout,
        "refresh_timeout",
        config.refresh_timeout,
    )?;
    if config.refresh_timeout < Duration::from_millis(100) {
        let line = raw
            .refresh_timeout
            .as_ref()
            .map_or(0, |v| v.referenced.line());
        return Err(ctx.err(line, "refresh_timeout", "must be at least 100ms"));
    }
    config.scrape_timeout_offset = ctx.duration(
        &raw.scrape_timeout_offset,
        "scrape_timeout_offset",
        config.scrape_timeout_offset,
    )?;
    config.default_scrape_timeout = ctx.duration(
        &raw.default_scrape_timeout,
        "default_scrape_timeout",
        config.default_scrape_timeout,
    )?;
    if let Some(windows) = &raw.expiring_windows {
        config.expiring_windows = parse_windows(&ctx, windows)?;
    }
    if let Some(v) = &raw.per_invitation {
        config.per_invitation = match v.value.as_str() {
            "pending" => PerInvitation::Pending,
            "all" => PerInvitation::All,
            "none" => PerInvitation::None,
            other => {
                return Err(ctx.err(
                    v.referenced.line(),
                    "per_invitation",
                    format!("unknown value {other:?} (use pending, all or none)"),
                ));
            }
        };
    }
    if let Some(v) = &raw.target_label {
        config.target_label = match v.value.as_str() {
            "masked" => TargetLabel::Masked,
            "full" => TargetLabel::Full,
            "none" => TargetLabel::None,
            other => {
                return Err(ctx.err(
                    v.referenced.line(),
                    "target_label",
                    format!("unknown value {other:?} (use masked, full or none)"),
                ));
            }
        };
    }
    if let Some(v) = &raw.max_concurrent_requests {
        if v.value == 0 || v.value > 1024 {
            return Err(ctx.err(
                v.referenced.line(),
                "max_concurrent_requests",
                "must be between 1 and 1024",
            ));
        }
        config.max_concurrent_requests = v.value as usize;
    }
    if let Some(v) = &raw.max_invitation_series {
        if v.value > MAX_MAX_INVITATION_SERIES {
            return Err(ctx.err(
                v.referenced.line(),
                "max_invitation_series",
                format!("must be between 0 and {MAX_MAX_INVITATION_SERIES}"),
            ));
        }
        config.max_invitation_series = usize::try_from(v.value).unwrap_or(usize::MAX);
    }

    let mut names = HashSet::new();
    for (i, source) in raw.sources.iter().enumerate() {
        let parsed = parse_source(&mut ctx, i, source)?;
        if !names.insert(parsed.name.clone()) {
            return Err(ctx.err(
                source
                    .value
                    .name
                    .as_ref()
                    .map_or(source.referenced.line(), |n| n.referenced.line()),
                format!("sources[{i}].name"),
                format!("duplicate source name {:?}", parsed.name),
            ));
        }
        config.sources.push(parsed);
    }
    config.warnings = ctx.warnings;
    Ok(config)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

fn parse_windows(ctx: &Ctx<'_>, raw: &S<Vec<S<String>>>) -> Result<Vec<ExpiryWindow>, ConfigError> {
    let mut windows = Vec::new();
    let mut last = 0.0f64;
    for (i, w) in raw.value.iter().enumerate() {
        let field = format!("expiring_windows[{i}]");
        if w.value == "+Inf" {
            continue; // always appended last
        }
        let d = parse_duration(&w.value).map_err(|m| ctx.err(w.referenced.line(), &field, m))?;
        let secs = d.as_secs_f64();
        if secs <= last {
            return Err(ctx.err(
                w.referenced.line(),
                &field,
                "windows must be positive and in increasing order",
            ));
        }
        last = secs;
        windows.push(ExpiryWindow {
            label: w.value.trim().to_string(),
            seconds: Some(secs),
        });
    }
    windows.push(ExpiryWindow {
        label: "+Inf".into(),
        seconds: None,
    });
    Ok(windows)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_source(
    ctx: &mut Ctx<'_>,
    i: usize,
    source: &S<RawSource>,
) -> Result<SourceConfig, ConfigError> {
    let src = &source.value;
    let line = source.referenced.line();
    let f = |name: &str| format!("sources[{i}].{name}");

    let name = src.name.as_ref().ok_or_else(|| {
        ctx.err(
            line,
            f("name"),
            "missing (every source needs a unique name)",
        )
    })?;
    if !valid_name(&name.value) {
        return Err(ctx.err(
            name.referenced.line(),
            f("name"),
            format!(
                "{:?} must match [A-Za-z0-9_-]+ (at most 64 characters)",
                name.value
            ),
        ));
    }
    let label = format!("source {:?}", name.value);
    let provider = src.provider.as_ref().ok_or_else(|| {
        ctx.err(
            line,
            f("provider"),
            format!("{label}: missing (alibaba or huawei)"),
        )
    })?;
    let provider_kind = match provider.value.as_str() {
        "alibaba" => Provider::Alibaba,
        "huawei" => Provider::Huawei,
        other => {
            return Err(ctx.err(
                provider.referenced.line(),
                f("provider"),
                format!("{label}: unknown provider {other:?} (use alibaba or huawei)"),
            ));
        }
    };

    let (default_view, allowed): (&str, &[&str]) = match provider_kind {
        Provider::Alibaba => (
            "resource_directory",
            &["resource_directory", "account", "ids"],
        ),
        Provider::Huawei => ("sent", &["sent", "received", "ids"]),
    };
    let (view_str, view_line) = src.view.as_ref().map_or((default_view, line), |v| {
        (v.value.as_str(), v.referenced.line())
    });
    if !allowed.contains(&view_str) {
        return Err(ctx.err(
            view_line,
            f("view"),
            format!(
                "{label}: view {view_str:?} is not valid for provider {} (use {})",
                provider_kind,
                allowed.join(", ")
            ),
        ));
    }
    let view = match view_str {
        "resource_directory" => View::ResourceDirectory,
        "account" => View::Account,
        "sent" => View::Sent,
        "received" => View::Received,
        _ => View::Ids,
    };

    let handshake_ids: Vec<String> = src
        .handshake_ids
        .as_ref()
        .map(|ids| {
            ids.value
                .iter()
                .map(|s| s.value.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    match (view, &src.handshake_ids) {
        (View::Ids, _) if handshake_ids.is_empty() => {
            return Err(ctx.err(
                view_line,
                f("handshake_ids"),
                format!("{label}: view ids needs a non-empty handshake_ids list"),
            ));
        }
        (View::Ids, Some(ids)) => {
            for (j, id) in ids.value.iter().enumerate() {
                let v = id.value.trim();
                if v.is_empty() || v.len() > 64 || v.contains(char::is_whitespace) {
                    return Err(ctx.err(
                        id.referenced.line(),
                        format!("sources[{i}].handshake_ids[{j}]"),
                        format!("{label}: invalid handshake id {v:?}"),
                    ));
                }
            }
        }
        (_, Some(ids)) => {
            return Err(ctx.err(
                ids.referenced.line(),
                f("handshake_ids"),
                format!("{label}: handshake_ids is only used with view: ids"),
            ));
        }
        _ => {}
    }

    let endpoint = match &src.endpoint {
        None => match provider_kind {
            Provider::Alibaba => ALIBABA_DEFAULT_ENDPOINT.to_string(),
            Provider::Huawei => HUAWEI_DEFAULT_ENDPOINT.to_string(),
        },
        Some(e) => {
            let v = e.value.trim().trim_end_matches('/');
            let ok = (v.starts_with("https://") || v.starts_with("http://"))
                && reqwest::Url::parse(v)
                    .is_ok_and(|u| u.host_str().is_some() && u.query().is_none());
            if !ok {
                return Err(ctx.err(
                    e.referenced.line(),
                    f("endpoint"),
                    format!(
                        "{label}: endpoint {v:?} must be an http(s) URL such as https://host[:port]"
                    ),
                ));
            }
            if let Ok(url) = reqwest::Url::parse(v)
                && url.scheme() == "http"
                && !crate::transport::is_loopback(&url)
            {
                ctx.warnings.push(format!(
                    "{label}: endpoint {v:?} uses plain http:// to a host that is not loopback: \
                     signed requests and security tokens cross the network unencrypted"
                ));
            }
            v.to_string()
        }
    };

    let signature = match &src.signature {
        None => AlibabaSignature::V3,
        Some(s) if provider_kind != Provider::Alibaba => {
            return Err(ctx.err(
                s.referenced.line(),
                f("signature"),
                format!("{label}: signature applies to alibaba sources only"),
            ));
        }
        Some(s) => match s.value.as_str() {
            "v3" => AlibabaSignature::V3,
            "v1" => AlibabaSignature::V1,
            other => {
                return Err(ctx.err(
                    s.referenced.line(),
                    f("signature"),
                    format!("{label}: unknown signature {other:?} (use v3 or v1)"),
                ));
            }
        },
    };

    let (size_field, max, default) = match provider_kind {
        Provider::Alibaba => ("page_size", ALIBABA_MAX_PAGE_SIZE, ALIBABA_MAX_PAGE_SIZE),
        Provider::Huawei => ("limit", HUAWEI_MAX_LIMIT, HUAWEI_MAX_LIMIT),
    };
    let (given, wrong) = match provider_kind {
        Provider::Alibaba => (&src.page_size, src.limit.as_ref().map(|l| ("limit", l))),
        Provider::Huawei => (&src.limit, src.page_size.as_ref().map(|p| ("page_size", p))),
    };
    if let Some((wrong_name, w)) = wrong {
        return Err(ctx.err(
            w.referenced.line(),
            f(wrong_name),
            format!(
                "{label}: {wrong_name} is not used by {provider_kind} sources (use {size_field})"
            ),
        ));
    }
    let page_size = match given {
        None => default,
        Some(p) if p.value >= 1 && p.value <= u64::from(max) => p.value as u32,
        Some(p) => {
            return Err(ctx.err(
                p.referenced.line(),
                f(size_field),
                format!("{label}: {size_field} must be between 1 and {max}"),
            ));
        }
    };

    let rate_limit = match &src.rate_limit {
        None => None,
        Some(r) if r.value.is_finite() && r.value > 0.0 => Some(r.value),
        Some(r) => {
            return Err(ctx.err(
                r.referenced.line(),
                f("rate_limit"),
                format!("{label}: rate_limit must be a positive number of requests per second"),
            ));
        }
    };
    let connect_timeout = ctx.duration(
        &src.connect_timeout,
        &f("connect_timeout"),
        Duration::from_secs(5),
    )?;
    let request_timeout = ctx.duration(
        &src.request_timeout,
        &f("request_timeout"),
        Duration::from_secs(10),
    )?;
    for (value, raw, field) in [
        (connect_timeout, &src.connect_timeout, "connect_timeout"),
        (request_timeout, &src.request_timeout, "request_timeout"),
    ] {
        if value < Duration::from_millis(10) {
            let l = raw.as_ref().map_or(line, |v| v.referenced.line());
            return Err(ctx.err(l, f(field), format!("{label}: must be at least 10ms")));
        }
    }

    let credentials = resolve_credentials(
        ctx,
        i,
        line,
        &label,
        provider_kind,
        src.credentials.as_ref(),
    )?;

    Ok(SourceConfig {
        name: name.value.clone(),
        provider: provider_kind,
        view,
        handshake_ids,
        endpoint,
        signature,
        page_size,
        credentials,
        rate_limit,
        connect_timeout,
        request_timeout,
        line,
    })
}

fn resolve_credentials(
    ctx: &mut Ctx<'_>,
    i: usize,
    source_line: u64,
    label: &str,
    provider: Provider,
    raw: Option<&S<RawCredentials>>,
) -> Result<CredentialConfig, ConfigError> {
    let mut cctx = CredCtx {
        file: ctx.file,
        env: ctx.env,
        warnings: &mut ctx.warnings,
        index: i,
        label: label.to_string(),
        line: raw.map_or(source_line, |c| c.referenced.line()),
        has_block: raw.is_some(),
    };
    let raw = raw.map(|c| &c.value);
    let config = match provider {
        Provider::Alibaba => CredentialConfig::Alibaba(
            crate::provider::alibaba::credentials::parse(&mut cctx, raw)?,
        ),
        Provider::Huawei => {
            CredentialConfig::Huawei(crate::provider::huawei::credentials::parse(&mut cctx, raw)?)
        }
    };
    for (key, url) in config.token_endpoints() {
        if let Ok(parsed) = reqwest::Url::parse(url)
            && parsed.scheme() == "http"
            && !crate::transport::is_loopback(&parsed)
        {
            ctx.warnings.push(format!(
                "{label}: credentials.{key} {url:?} uses plain http:// to a host that is not \
                 loopback: keys and tokens cross the network unencrypted"
            ));
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        load_str(text, Path::new("test.yml"), &no_env)
    }

    const GOOD: &str = "\
refresh_interval: 2m
sources:
  - name: corp-rd
    provider: alibaba
    view: resource_directory
    endpoint: http://127.0.0.1:18080/
    credentials:
      access_key_id: AK1
      access_key_secret: SK1
  - name: hw
    provider: huawei
    view: ids
    handshake_ids: [h-1, h-2]
    limit: 100
    credentials:
      access_key_id: AK2
      access_key_secret: SK2
      domain_id: d1
";

    #[test]
    fn parses_a_full_config() -> Result<(), ConfigError> {
        let c = load(GOOD)?;
        assert_eq!(c.refresh_interval, Duration::from_secs(120));
        assert_eq!(c.sources.len(), 2);
        let a = &c.sources[0];
        assert_eq!(a.endpoint, "http://127.0.0.1:18080");
        assert_eq!(a.page_size, 100);
        assert_eq!(a.signature, AlibabaSignature::V3);
        assert_eq!(a.line, 3);
        let h = &c.sources[1];
        assert_eq!(h.view, View::Ids);
        assert_eq!(h.handshake_ids, ["h-1", "h-2"]);
        assert_eq!(h.page_size, 100);
        assert_eq!(h.endpoint, HUAWEI_DEFAULT_ENDPOINT);
        assert_eq!(h.credentials.domain_id_for_tests().as_deref(), Some("d1"));
        assert_eq!(c.expiring_windows.len(), 7);
        assert_eq!(c.expiring_windows[6].label, "+Inf");
        Ok(())
    }

    fn expect_err(text: &str, line: u64, needle: &str) {
        match load(text) {
            Ok(_) => panic!("expected an error containing {needle:?}"),
            Err(e) => {
                let shown = e.to_string();
                assert_eq!(e.line, Some(line), "{shown}");
                assert!(shown.contains(needle), "{shown}");
                assert!(shown.starts_with("test.yml:"), "{shown}");
            }
        }
    }

    #[test]
    fn max_invitation_series_defaults_and_is_validated_with_line_and_field()
    -> Result<(), ConfigError> {
        assert_eq!(load(GOOD)?.max_invitation_series, 50_000);
        let c = load(&format!("max_invitation_series: 0\n{GOOD}"))?;
        assert_eq!(c.max_invitation_series, 0);
        let c = load(&format!("max_invitation_series: 200000\n{GOOD}"))?;
        assert_eq!(c.max_invitation_series, 200_000);
        expect_err(
            &format!("{GOOD}max_invitation_series: 100000001\n"),
            19,
            "max_invitation_series: must be between 0 and 100000000",
        );
        // Not a whole number: the parser's own error, with its line.
        match load(&format!("max_invitation_series: -5\n{GOOD}")) {
            Ok(_) => panic!("a negative budget was accepted"),
            Err(e) => assert_eq!(e.line, Some(1), "{e}"),
        }
        Ok(())
    }

    #[test]
    fn errors_name_the_line_and_field() {
        expect_err(
            &GOOD.replace("view: resource_directory", "view: sent"),
            5,
            "sources[0].view",
        );
        expect_err(
            &GOOD.replace("name: hw", "name: corp-rd"),
            10,
            "duplicate source name",
        );
        expect_err(
            &GOOD.replace("name: hw", "name: \"bad name\""),
            10,
            "must match",
        );
        expect_err(
            &GOOD.replace("limit: 100", "limit: 5000"),
            14,
            "between 1 and 2000",
        );
        expect_err(
            &GOOD.replace("refresh_interval: 2m", "refresh_interval: 2 minutes"),
            1,
            "refresh_interval",
        );
        expect_err(
            &GOOD.replace("provider: huawei", "provider: gcp"),
            11,
            "unknown provider",
        );
        expect_err(
            &GOOD.replace("endpoint: http://127.0.0.1:18080/", "endpoint: ftp://x"),
            6,
            "endpoint",
        );
        expect_err(
            &GOOD.replace("      access_key_secret: SK1\n", ""),
            8,
            "access key secret missing",
        );
    }

    #[test]
    fn unknown_keys_and_bad_yaml_are_located() {
        let e = load(&GOOD.replace("    view: ids", "    veiw: ids")).err();
        assert!(e.as_ref().is_some_and(|e| e.line == Some(12)), "{e:?}");
        let e = load("sources:\n  - name: [unclosed\n").err();
        assert!(e.as_ref().is_some_and(|e| e.line.is_some()), "{e:?}");
    }

    #[test]
    fn credentials_come_from_env_when_no_block() -> Result<(), ConfigError> {
        let env = |k: &str| match k {
            "HUAWEICLOUD_SDK_AK" => Some("envak".to_string()),
            "HUAWEICLOUD_SDK_SK" => Some("envsk".to_string()),
            "HUAWEICLOUD_SDK_DOMAIN_ID" => Some("dom".to_string()),
            _ => None,
        };
        let c = load_str(
            "sources:\n  - name: x\n    provider: huawei\n",
            Path::new("t.yml"),
            &env,
        )?;
        let keys = c.sources[0].credentials.read_static_for_tests();
        assert_eq!(
            keys.as_ref().map(|k| k.access_key_id.as_str()),
            Some("envak")
        );
        assert_eq!(
            keys.as_ref().map(|k| k.access_key_secret.expose()),
            Some("envsk")
        );
        assert_eq!(keys.and_then(|k| k.domain_id).as_deref(), Some("dom"));
        // Alibaba's default chain ends with the ECS RAM role; with that disabled and
        // nothing else found, the error names the variables to set.
        let disabled =
            |k: &str| (k == "ALIBABA_CLOUD_ECS_METADATA_DISABLED").then(|| "true".to_string());
        let e = load_str(
            "sources:\n  - name: x\n    provider: alibaba\n",
            Path::new("t.yml"),
            &disabled,
        )
        .err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.to_string().contains("ALIBABA_CLOUD_ACCESS_KEY_ID")),
            "{e:?}"
        );
        Ok(())
    }

    #[test]
    fn credential_files_are_read_and_world_readable_ones_warned()
    -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let secret = dir.path().join("sk");
        std::fs::write(&secret, "file-secret\n")?;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644))?;
        let text = format!(
            "sources:\n  - name: x\n    provider: alibaba\n    credentials:\n      access_key_id: AK\n      access_key_secret_file: {}\n",
            secret.display()
        );
        let c = load(&text)?;
        assert_eq!(
            c.sources[0]
                .credentials
                .read_static_for_tests()
                .map(|k| k.access_key_secret.expose().to_string())
                .as_deref(),
            Some("file-secret")
        );
        assert_eq!(c.warnings.len(), 1);
        assert!(!c.warnings[0].contains("file-secret"));
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
        assert!(load(&text)?.warnings.is_empty());
        let missing = text.replace(&secret.display().to_string(), "/nonexistent/sk");
        assert!(load(&missing).err().is_some_and(|e| e.line == Some(6)));
        Ok(())
    }

    #[test]
    fn plain_http_identity_endpoints_off_loopback_are_warned_about_but_metadata_is_not()
    -> Result<(), ConfigError> {
        let alibaba = |sts: &str| {
            format!(
                "sources:\n  - name: x\n    provider: alibaba\n    credentials:\n      type: ram_role_arn\n      role_arn: acs:ram::1234567890123456:role/r\n      access_key_id: AK\n      access_key_secret: SK\n      sts_endpoint: {sts}\n"
            )
        };
        let huawei = |iam: &str| {
            format!(
                "sources:\n  - name: x\n    provider: huawei\n    credentials:\n      type: metadata\n      iam_endpoint: {iam}\n"
            )
        };
        for quiet in [
            alibaba("https://sts.aliyuncs.com"),
            alibaba("http://127.0.0.1:9"),
            huawei("http://[::1]:9"),
        ] {
            let c = load(&quiet)?;
            assert!(c.warnings.is_empty(), "{quiet}: {:?}", c.warnings);
        }
        for (text, key) in [
            (alibaba("http://sts.internal"), "credentials.sts_endpoint"),
            (
                huawei("http://iam.internal:8080"),
                "credentials.iam_endpoint",
            ),
        ] {
            let c = load(&text)?;
            assert_eq!(c.warnings.len(), 1, "{text}: {:?}", c.warnings);
            assert!(
                c.warnings[0].contains(key) && c.warnings[0].contains("plain http://"),
                "{}",
                c.warnings[0]
            );
        }
        // The metadata services are plain HTTP on link-local addresses by design.
        let metadata = "sources:\n  - name: x\n    provider: alibaba\n    credentials:\n      type: ecs_ram_role\n      metadata_endpoint: http://100.100.100.200\n";
        assert!(load(metadata)?.warnings.is_empty());
        Ok(())
    }

    #[test]
    fn plain_http_endpoints_off_loopback_are_warned_about() -> Result<(), ConfigError> {
        let with = |endpoint: &str| {
            format!(
                "sources:\n  - name: x\n    provider: alibaba\n    endpoint: {endpoint}\n    credentials:\n      access_key_id: AK\n      access_key_secret: SK\n"
            )
        };
        for quiet in [
            "https://resourcemanager.aliyuncs.com",
            "http://127.0.0.1:8080",
            "http://127.3.4.5",
            "http://[::1]:9000",
            "http://localhost:8080/base",
        ] {
            let c = load(&with(quiet))?;
            assert!(c.warnings.is_empty(), "{quiet}: {:?}", c.warnings);
        }
        for loud in [
            "http://proxy.internal:8080",
            "http://10.0.0.1",
            "http://[::2]",
            "http://localhost.example.com",
        ] {
            let c = load(&with(loud))?;
            assert_eq!(c.warnings.len(), 1, "{loud}");
            assert!(
                c.warnings[0].contains("plain http://") && c.warnings[0].contains(loud),
                "{}",
                c.warnings[0]
            );
        }
        Ok(())
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(3 * 86400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("1x").is_err());
    }

    #[test]
    fn windows_must_increase() {
        assert!(load("expiring_windows: [1d, 1h]\n").is_err());
        let c = load("expiring_windows: [2h, 2d]\n").ok();
        let labels: Vec<_> = c
            .map(|c| c.expiring_windows.into_iter().map(|w| w.label).collect())
            .unwrap_or_default();
        assert_eq!(labels, ["2h", "2d", "+Inf"]);
    }
}
