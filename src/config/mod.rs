//! Configuration file: parsing, validation with file:line:field errors, credential
//! resolution (inline, `<key>_file`, environment).

mod source;

pub use source::{RawValue, SourceCtx};

use crate::credentials::CredentialConfig;
use crate::model::Provider;
use crate::provider::Settings;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// What a source lists: one of its provider's views (the provider names them and
/// maps each to its list call), or `ids`, one get call per configured id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct View(pub &'static str);

impl View {
    /// GetHandshake / ShowHandshake / DescribeHandshake for each of `handshake_ids`.
    pub const IDS: View = View("ids");

    pub const fn as_str(self) -> &'static str {
        self.0
    }
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
    /// Page size of the list calls, within the provider's bounds.
    pub page_size: u32,
    /// The provider's own settings (see [`crate::provider::ProviderKind::parse_section`]).
    pub settings: Settings,
    pub credentials: CredentialConfig,
    /// API requests per second, if limited.
    pub rate_limit: Option<f64>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Line of the source in the file (0 for generated sources), for messages only.
    pub line: u64,
}

impl SourceConfig {
    /// A source built in code (tests, `--demo`): the provider's default view and
    /// section, default timeouts, no rate limit.
    pub fn new(
        provider: Provider,
        name: &str,
        endpoint: &str,
        credentials: impl Into<CredentialConfig>,
    ) -> SourceConfig {
        let kind = provider.kind();
        let section = kind.default_section();
        SourceConfig {
            name: name.into(),
            provider,
            view: View(kind.views()[0]),
            handshake_ids: Vec::new(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            page_size: section.page_size,
            settings: section.settings,
            credentials: credentials.into(),
            rate_limit: None,
            connect_timeout: std::time::Duration::from_secs(5),
            request_timeout: std::time::Duration::from_secs(10),
            line: 0,
        }
    }

    /// The same source with another view (and, for `ids`, these ids).
    pub fn with_view(mut self, view: &str, ids: &[&str]) -> SourceConfig {
        if let Some(v) = self.provider.kind().views().iter().find(|v| **v == view) {
            self.view = View(v);
        }
        self.handshake_ids = ids.iter().map(|s| s.to_string()).collect();
        self
    }

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
    sources: Vec<S<source::RawSource>>,
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
        let parsed = source::parse_source(&mut ctx, i, source)?;
        if !names.insert(parsed.name.clone()) {
            return Err(ctx.err(
                source
                    .value
                    .get("name")
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
        assert_eq!(
            a.settings
                .get::<crate::provider::alibaba::AlibabaSettings>()
                .map(|s| s.signature),
            Some(crate::provider::alibaba::AlibabaSignature::V3)
        );
        assert_eq!(a.line, 3);
        let h = &c.sources[1];
        assert_eq!(h.view, View::IDS);
        assert_eq!(h.handshake_ids, ["h-1", "h-2"]);
        assert_eq!(h.page_size, 100);
        assert_eq!(h.endpoint, crate::provider::huawei::DEFAULT_ENDPOINT);
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
    fn keys_of_another_provider_and_typos_are_refused_with_line_and_owner() {
        // Huawei's `limit` on an Alibaba source names its owner and Alibaba's keys.
        expect_err(
            &GOOD.replace("    view: resource_directory\n", "    limit: 10\n"),
            5,
            "limit is not used by alibaba sources (it belongs to huawei; alibaba sources take signature, page_size)",
        );
        // Alibaba's `signature` on a Huawei source.
        expect_err(
            &GOOD.replace("    limit: 100\n", "    signature: v1\n"),
            14,
            "sources[1].signature: source \"hw\": signature is not used by huawei sources",
        );
        // A key no provider knows.
        expect_err(
            &GOOD.replace("    limit: 100\n", "    regoin: x\n"),
            14,
            "unknown key \"regoin\"",
        );
        // Wrong shapes are named, not panicked on.
        expect_err(
            &GOOD.replace("    limit: 100\n", "    limit: [1]\n"),
            14,
            "limit must be a whole number, not a list",
        );
        expect_err(
            &GOOD.replace("handshake_ids: [h-1, h-2]", "handshake_ids: h-1"),
            13,
            "handshake_ids must be a list",
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
