//! One entry of `sources:`: the keys every provider shares, then the provider's own
//! section and credentials, each validated by the provider through [`SourceCtx`].
//!
//! A source is read as a map of located values rather than a fixed struct, because
//! which keys exist depends on the provider: a key no provider knows, or one that
//! belongs to another provider, is refused here with its line.

use super::{ConfigError, Ctx, S, SourceConfig, View};
use crate::credentials::{CredCtx, CredentialConfig, RawCredentials};
use crate::provider::Provider;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Keys every source may have, whatever its provider.
const COMMON_KEYS: [&str; 9] = [
    "name",
    "provider",
    "view",
    "handshake_ids",
    "endpoint",
    "rate_limit",
    "connect_timeout",
    "request_timeout",
    "credentials",
];

/// A value of a source key, as YAML gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// A list of scalars (`handshake_ids`), each with its own line.
    List(Vec<S<String>>),
    /// A map of scalars (`credentials`), each with its own line.
    Map(BTreeMap<String, S<String>>),
}

impl RawValue {
    fn describe(&self) -> &'static str {
        match self {
            RawValue::Null => "nothing",
            RawValue::Bool(_) => "a boolean",
            RawValue::Int(_) | RawValue::Float(_) => "a number",
            RawValue::Str(_) => "a string",
            RawValue::List(_) => "a list",
            RawValue::Map(_) => "a map",
        }
    }

    /// The scalar as text (numbers and booleans as YAML wrote them, near enough).
    fn text(&self) -> Option<String> {
        match self {
            RawValue::Str(s) => Some(s.clone()),
            RawValue::Int(i) => Some(i.to_string()),
            RawValue::Float(f) => Some(f.to_string()),
            RawValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawValue, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value, a list of values or a map of values")
            }
            fn visit_unit<E>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_none<E>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
                Ok(RawValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue::Int(i128::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
                Ok(RawValue::Int(i128::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
                Ok(RawValue::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
                Ok(RawValue::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<S<String>>()? {
                    items.push(item);
                }
                Ok(RawValue::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, S<String>>()? {
                    if entries.insert(k.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("duplicate key {k:?}")));
                    }
                }
                Ok(RawValue::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// One source as written: its keys with their values and lines.
pub type RawSource = BTreeMap<String, S<RawValue>>;

/// Validation context of one source: the shared helpers every provider uses for its
/// section, so that every message names file, line, field and source alike.
pub struct SourceCtx<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    raw: &'c RawSource,
    /// Index of the source in `sources`.
    pub index: usize,
    /// Line of the source.
    pub line: u64,
    /// `source "name"`, the prefix of every message.
    pub label: String,
    pub provider: Provider,
}

impl SourceCtx<'_, '_> {
    /// `sources[i].<key>`.
    pub fn field(&self, key: &str) -> String {
        format!("sources[{}].{key}", self.index)
    }

    /// An error about `key` at `line` (the source's line when 0).
    pub fn err(&self, line: u64, key: &str, message: impl AsRef<str>) -> ConfigError {
        let line = if line == 0 { self.line } else { line };
        self.ctx.err(
            line,
            self.field(key),
            format!("{}: {}", self.label, message.as_ref()),
        )
    }

    /// A non-fatal finding, logged at start.
    pub fn warn(&mut self, message: impl AsRef<str>) {
        self.ctx
            .warnings
            .push(format!("{}: {}", self.label, message.as_ref()));
    }

    /// Reads an environment variable (empty counts as unset).
    pub fn env(&self, name: &str) -> Option<String> {
        (self.ctx.env)(name).filter(|v| !v.trim().is_empty())
    }

    /// The line of `key`, or the source's line when it is absent.
    pub fn line_of(&self, key: &str) -> u64 {
        self.raw.get(key).map_or(self.line, |v| v.referenced.line())
    }

    /// Whether the source sets `key`.
    pub fn has(&self, key: &str) -> bool {
        self.raw.get(key).is_some_and(|v| v.value != RawValue::Null)
    }

    /// A scalar value as trimmed text, or `None` when absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.raw.get(key) {
            None => Ok(None),
            Some(v) if v.value == RawValue::Null => Ok(None),
            Some(v) => match v.value.text() {
                Some(t) => Ok(Some(t.trim().to_string())),
                None => Err(self.err(
                    v.referenced.line(),
                    key,
                    format!("{key} must be a single value, not {}", v.value.describe()),
                )),
            },
        }
    }

    /// One of `allowed`, or `default` when absent.
    pub fn choice(
        &self,
        key: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, ConfigError> {
        let Some(given) = self.string(key)? else {
            return Ok(default);
        };
        allowed
            .iter()
            .copied()
            .find(|a| *a == given)
            .ok_or_else(|| {
                self.err(
                    self.line_of(key),
                    key,
                    format!("unknown {key} {given:?} (use {})", allowed.join(" or ")),
                )
            })
    }

    /// A whole number in `min..=max`, or `default` when absent.
    pub fn uint(&self, key: &str, min: u32, max: u32, default: u32) -> Result<u32, ConfigError> {
        let Some(v) = self.raw.get(key) else {
            return Ok(default);
        };
        let bounded = || {
            self.err(
                v.referenced.line(),
                key,
                format!("{key} must be between {min} and {max}"),
            )
        };
        match &v.value {
            RawValue::Null => Ok(default),
            RawValue::Int(i) => u32::try_from(*i)
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(bounded),
            RawValue::Str(s) => s
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(bounded),
            other => Err(self.err(
                v.referenced.line(),
                key,
                format!("{key} must be a whole number, not {}", other.describe()),
            )),
        }
    }

    fn number(&self, key: &str) -> Result<Option<(f64, u64)>, ConfigError> {
        let Some(v) = self.raw.get(key) else {
            return Ok(None);
        };
        let line = v.referenced.line();
        match &v.value {
            RawValue::Null => Ok(None),
            RawValue::Int(i) => Ok(Some((*i as f64, line))),
            RawValue::Float(f) => Ok(Some((*f, line))),
            RawValue::Str(s) => s
                .trim()
                .parse::<f64>()
                .map(|f| Some((f, line)))
                .map_err(|_| self.err(line, key, format!("{key} must be a number, not {s:?}"))),
            other => Err(self.err(
                line,
                key,
                format!("{key} must be a number, not {}", other.describe()),
            )),
        }
    }

    /// A duration (`500ms`, `5s`, `1m`) with a default and a minimum.
    pub fn duration(
        &self,
        key: &str,
        default: Duration,
        min: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(text) = self.string(key)? else {
            return Ok(default);
        };
        let line = self.line_of(key);
        let d = super::parse_duration(&text).map_err(|m| self.err(line, key, m))?;
        if d < min {
            return Err(self.err(line, key, format!("must be at least {}ms", min.as_millis())));
        }
        Ok(d)
    }
}

/// Parse and validate one source.
pub(super) fn parse_source(
    ctx: &mut Ctx<'_>,
    index: usize,
    source: &S<RawSource>,
) -> Result<SourceConfig, ConfigError> {
    let line = source.referenced.line();
    let raw = &source.value;
    let (name, provider) = identity(ctx, index, line, raw)?;
    let mut sc = SourceCtx {
        ctx,
        raw,
        index,
        line,
        label: format!("source {name:?}"),
        provider,
    };
    refuse_foreign_keys(&sc)?;
    let kind = provider.kind();
    let (view, handshake_ids) = view_and_ids(&sc)?;
    let section = kind.parse_section(&mut sc)?;
    let endpoint = endpoint(&mut sc, &section.default_endpoint)?;
    let rate_limit = rate_limit(&sc)?;
    let min = Duration::from_millis(10);
    let connect_timeout = sc.duration("connect_timeout", Duration::from_secs(5), min)?;
    let request_timeout = sc.duration("request_timeout", Duration::from_secs(10), min)?;
    let credentials = credentials(&mut sc, &section)?;
    Ok(SourceConfig {
        name,
        provider,
        view,
        handshake_ids,
        endpoint,
        page_size: section.page_size,
        settings: section.settings,
        credentials,
        rate_limit,
        connect_timeout,
        request_timeout,
        line,
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `name` and `provider`, which every message after them refers to.
fn identity(
    ctx: &Ctx<'_>,
    i: usize,
    line: u64,
    raw: &RawSource,
) -> Result<(String, Provider), ConfigError> {
    let f = |key: &str| format!("sources[{i}].{key}");
    let text = |key: &str| {
        raw.get(key)
            .and_then(|v| v.value.text().map(|t| (t, v.referenced.line())))
    };
    let (name, name_line) = text("name").ok_or_else(|| {
        ctx.err(
            line,
            f("name"),
            "missing (every source needs a unique name)",
        )
    })?;
    if !valid_name(&name) {
        return Err(ctx.err(
            name_line,
            f("name"),
            format!("{name:?} must match [A-Za-z0-9_-]+ (at most 64 characters)"),
        ));
    }
    let label = format!("source {name:?}");
    let (given, provider_line) = text("provider").ok_or_else(|| {
        ctx.err(
            line,
            f("provider"),
            format!("{label}: missing ({})", Provider::names()),
        )
    })?;
    let provider = Provider::parse(given.trim()).ok_or_else(|| {
        ctx.err(
            provider_line,
            f("provider"),
            format!(
                "{label}: unknown provider {given:?} (use {})",
                Provider::names()
            ),
        )
    })?;
    Ok((name, provider))
}

/// A key is either common, the provider's own, another provider's (named as such),
/// or a typo.
fn refuse_foreign_keys(sc: &SourceCtx<'_, '_>) -> Result<(), ConfigError> {
    let own = sc.provider.kind().source_keys();
    for (key, value) in sc.raw {
        if COMMON_KEYS.contains(&key.as_str()) || own.contains(&key.as_str()) {
            continue;
        }
        let line = value.referenced.line();
        let owners: Vec<&str> = Provider::ALL
            .iter()
            .filter(|p| p.kind().source_keys().contains(&key.as_str()))
            .map(|p| p.as_str())
            .collect();
        let message = if owners.is_empty() {
            let mut known: Vec<&str> = COMMON_KEYS.to_vec();
            known.extend_from_slice(own);
            format!("unknown key {key:?} (expected one of {})", known.join(", "))
        } else {
            let hint = if own.is_empty() {
                String::new()
            } else {
                format!("; {} sources take {}", sc.provider, own.join(", "))
            };
            format!(
                "{key} is not used by {} sources (it belongs to {}{hint})",
                sc.provider,
                owners.join(", ")
            )
        };
        return Err(sc.err(line, key, message));
    }
    Ok(())
}

fn view_and_ids(sc: &SourceCtx<'_, '_>) -> Result<(View, Vec<String>), ConfigError> {
    let views = sc.provider.kind().views();
    let given = sc.string("view")?;
    let view_line = sc.line_of("view");
    let view = match given {
        None => views[0],
        Some(v) => views.iter().copied().find(|k| *k == v).ok_or_else(|| {
            sc.err(
                view_line,
                "view",
                format!(
                    "view {v:?} is not valid for provider {} (use {})",
                    sc.provider,
                    views.join(", ")
                ),
            )
        })?,
    };
    let view = View(view);
    let ids = match sc.raw.get("handshake_ids") {
        None => None,
        Some(v) => match &v.value {
            RawValue::Null => None,
            RawValue::List(items) => Some((items, v.referenced.line())),
            other => {
                return Err(sc.err(
                    v.referenced.line(),
                    "handshake_ids",
                    format!("handshake_ids must be a list, not {}", other.describe()),
                ));
            }
        },
    };
    match ids {
        None if view == View::IDS => Err(sc.err(
            view_line,
            "handshake_ids",
            "view ids needs a non-empty handshake_ids list",
        )),
        Some((items, _)) if view == View::IDS && items.is_empty() => Err(sc.err(
            view_line,
            "handshake_ids",
            "view ids needs a non-empty handshake_ids list",
        )),
        Some((_, line)) if view != View::IDS => Err(sc.err(
            line,
            "handshake_ids",
            "handshake_ids is only used with view: ids",
        )),
        None => Ok((view, Vec::new())),
        Some((items, _)) => {
            let mut ids = Vec::with_capacity(items.len());
            for (j, id) in items.iter().enumerate() {
                let v = id.value.trim();
                let field = format!("handshake_ids[{j}]");
                if v.is_empty() || v.len() > 64 || v.contains(char::is_whitespace) {
                    return Err(sc.err(
                        id.referenced.line(),
                        &field,
                        format!("invalid handshake id {v:?}"),
                    ));
                }
                if let Err(why) = sc.provider.kind().check_handshake_id(v) {
                    return Err(sc.err(
                        id.referenced.line(),
                        &field,
                        format!("invalid handshake id {v:?}: {why}"),
                    ));
                }
                ids.push(v.to_string());
            }
            Ok((view, ids))
        }
    }
}

fn endpoint(sc: &mut SourceCtx<'_, '_>, default: &str) -> Result<String, ConfigError> {
    let Some(given) = sc.string("endpoint")? else {
        return Ok(default.to_string());
    };
    let v = given.trim_end_matches('/').to_string();
    let ok = (v.starts_with("https://") || v.starts_with("http://"))
        && reqwest::Url::parse(&v).is_ok_and(|u| u.host_str().is_some() && u.query().is_none());
    if !ok {
        return Err(sc.err(
            sc.line_of("endpoint"),
            "endpoint",
            format!("endpoint {v:?} must be an http(s) URL such as https://host[:port]"),
        ));
    }
    if let Ok(url) = reqwest::Url::parse(&v)
        && url.scheme() == "http"
        && !crate::transport::is_loopback(&url)
    {
        sc.warn(format!(
            "endpoint {v:?} uses plain http:// to a host that is not loopback: \
             signed requests and security tokens cross the network unencrypted"
        ));
    }
    Ok(v)
}

fn rate_limit(sc: &SourceCtx<'_, '_>) -> Result<Option<f64>, ConfigError> {
    match sc.number("rate_limit")? {
        None => Ok(None),
        Some((r, _)) if r.is_finite() && r > 0.0 => Ok(Some(r)),
        Some((_, line)) => Err(sc.err(
            line,
            "rate_limit",
            "rate_limit must be a positive number of requests per second",
        )),
    }
}

fn credentials(
    sc: &mut SourceCtx<'_, '_>,
    section: &crate::provider::Section,
) -> Result<CredentialConfig, ConfigError> {
    let block = match sc.raw.get("credentials") {
        None => None,
        Some(v) => match &v.value {
            RawValue::Null => Some((RawCredentials::default(), v.referenced.line())),
            RawValue::Map(entries) => {
                Some((RawCredentials::new(entries.clone()), v.referenced.line()))
            }
            other => {
                return Err(sc.err(
                    v.referenced.line(),
                    "credentials",
                    format!(
                        "credentials must be a map of keys, not {}",
                        other.describe()
                    ),
                ));
            }
        },
    };
    let kind = sc.provider.kind();
    let label = sc.label.clone();
    let mut cctx = CredCtx {
        file: sc.ctx.file,
        env: sc.ctx.env,
        warnings: &mut sc.ctx.warnings,
        index: sc.index,
        label: label.clone(),
        line: block.as_ref().map_or(sc.line, |(_, line)| *line),
        has_block: block.is_some(),
    };
    let config = kind.parse_credentials(&mut cctx, block.as_ref().map(|(raw, _)| raw), section)?;
    for (key, url) in config.token_endpoints() {
        if let Ok(parsed) = reqwest::Url::parse(url)
            && parsed.scheme() == "http"
            && !crate::transport::is_loopback(&parsed)
        {
            sc.warn(format!(
                "credentials.{key} {url:?} uses plain http:// to a host that is not \
                 loopback: keys and tokens cross the network unencrypted"
            ));
        }
    }
    Ok(config)
}
