//! The `credentials:` block of a source: its raw shape (keys and lines) and the
//! helpers providers use to validate it with file:line:field errors.

use super::{SecretSource, StaticKeys};
use crate::config::{ConfigError, EnvLookup, parse_duration};
use crate::secret::Secret;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

type S<T> = Spanned<T>;

/// A source's `credentials:` block as written: keys with their values and lines.
/// Which keys exist is each provider's business ([`CredCtx::only`] refuses keys
/// that do not belong to the chosen `type`, naming the line).
#[derive(Clone, Debug, Default)]
pub struct RawCredentials {
    entries: BTreeMap<String, S<String>>,
}

impl RawCredentials {
    pub fn new(entries: BTreeMap<String, S<String>>) -> RawCredentials {
        RawCredentials { entries }
    }

    /// The value of `key`, if the block sets it.
    pub fn get(&self, key: &str) -> Option<S<String>> {
        self.entries.get(key).cloned()
    }

    /// A `true`/`false` value of `key`.
    pub fn flag(&self, key: &str) -> Result<Option<S<bool>>, (u64, String)> {
        let Some(v) = self.entries.get(key) else {
            return Ok(None);
        };
        let value = match v.value.trim() {
            "true" | "True" | "TRUE" => true,
            "false" | "False" | "FALSE" => false,
            other => {
                return Err((
                    v.referenced.line(),
                    format!("{key} must be true or false, not {other:?}"),
                ));
            }
        };
        Ok(Some(S {
            value,
            referenced: v.referenced,
            defined: v.defined,
        }))
    }

    /// The keys present in the block, with their lines, in file order.
    pub fn present(&self) -> Vec<(&str, u64)> {
        let mut present: Vec<_> = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.referenced.line()))
            .collect();
        present.sort_by_key(|(_, l)| *l);
        present
    }
}

/// Validation context of one source's credentials block.
pub struct CredCtx<'a> {
    pub file: &'a Path,
    pub env: EnvLookup<'a>,
    pub warnings: &'a mut Vec<String>,
    /// Index of the source in `sources`.
    pub index: usize,
    /// `source "name"`, the prefix of every message.
    pub label: String,
    /// Line of the credentials block (or of the source when there is none).
    pub line: u64,
    /// Whether the file has a credentials block at all.
    pub has_block: bool,
}

impl CredCtx<'_> {
    /// `sources[i].credentials.<key>`.
    pub fn field(&self, key: &str) -> String {
        format!("sources[{}].credentials.{key}", self.index)
    }

    /// An error at `line` (the block's line when 0) about `key`.
    pub fn err(&self, line: u64, key: &str, message: impl AsRef<str>) -> ConfigError {
        let line = if line == 0 { self.line } else { line };
        ConfigError {
            file: self.file.to_path_buf(),
            line: (line > 0).then_some(line),
            field: Some(self.field(key)),
            message: format!("{}: {}", self.label, message.as_ref()),
        }
    }

    /// Reads an environment variable (empty counts as unset).
    pub fn env(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }

    /// The credential type: `type` if given (validated against `known`), else
    /// `access_key` when the block has keys, else `default`.
    pub fn kind(&self, raw: &RawCredentials, known: &[&str]) -> Result<String, ConfigError> {
        match &raw.get("type") {
            Some(k) => {
                let v = k.value.trim();
                if known.contains(&v) {
                    Ok(v.to_string())
                } else {
                    Err(self.err(
                        k.referenced.line(),
                        "type",
                        format!("unknown credentials type {v:?} (use {})", known.join(", ")),
                    ))
                }
            }
            None if self.has_block && !raw.present().is_empty() => Ok("access_key".into()),
            None => Ok("default".into()),
        }
    }

    /// Refuse keys of the block that do not belong to `kind` (naming the first one's
    /// line and field).
    pub fn only(
        &self,
        raw: &RawCredentials,
        kind: &str,
        allowed: &[&str],
    ) -> Result<(), ConfigError> {
        for (key, line) in raw.present() {
            if key != "type" && !allowed.contains(&key) {
                return Err(self.err(
                    line,
                    key,
                    format!(
                        "{key} does not belong to credentials type {kind} (it takes: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A plain string value (trimmed), or `None`.
    pub fn string(&self, v: &Option<S<String>>) -> Option<String> {
        v.as_ref()
            .map(|s| s.value.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// A required string value: the key, else the environment variable `env`.
    pub fn required(
        &self,
        v: &Option<S<String>>,
        key: &str,
        kind: &str,
        env: Option<&str>,
    ) -> Result<String, ConfigError> {
        if let Some(s) = self.string(v) {
            return Ok(s);
        }
        if let Some(name) = env
            && let Some(value) = self.env(name)
        {
            return Ok(value.trim().to_string());
        }
        let hint = env.map_or(String::new(), |e| format!(" (or set {e})"));
        Err(self.err(
            v.as_ref().map_or(0, |s| s.referenced.line()),
            key,
            format!("{key} is required for credentials type {kind}{hint}"),
        ))
    }

    /// A duration value with a default and a minimum.
    pub fn duration(
        &self,
        v: &Option<S<String>>,
        key: &str,
        default: Duration,
        min: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = v else { return Ok(default) };
        let d = parse_duration(&raw.value).map_err(|m| self.err(raw.referenced.line(), key, m))?;
        if d < min {
            return Err(self.err(
                raw.referenced.line(),
                key,
                format!("must be at least {}s", min.as_secs()),
            ));
        }
        Ok(d)
    }

    /// An `http(s)://host[:port]` URL without query, trailing slash removed.
    pub fn endpoint(
        &self,
        v: &Option<S<String>>,
        key: &str,
    ) -> Result<Option<String>, ConfigError> {
        let Some(raw) = v else { return Ok(None) };
        let e = raw.value.trim().trim_end_matches('/');
        validate_url(e).map_err(|m| self.err(raw.referenced.line(), key, m))?;
        Ok(Some(e.to_string()))
    }

    /// A path to a file that must be readable now (it is read again at run time).
    pub fn readable_file(&mut self, v: &S<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let path = PathBuf::from(v.value.trim());
        if let Err(e) = std::fs::File::open(&path) {
            return Err(self.err(
                v.referenced.line(),
                key,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
        if world_readable(&path) {
            self.warnings.push(format!(
                "{}: credential file {} is readable by every user; chmod 600 it",
                self.label,
                path.display()
            ));
        }
        Ok(path)
    }

    /// `<key>` inline or `<key>_file`, not both; `None` when neither is given.
    pub fn secret(
        &mut self,
        key: &str,
        inline: &Option<S<String>>,
        file: &Option<S<String>>,
    ) -> Result<Option<SecretSource>, ConfigError> {
        match (inline, file) {
            (Some(a), Some(_)) => Err(self.err(
                a.referenced.line(),
                key,
                format!("set {key} or {key}_file, not both"),
            )),
            (Some(v), None) => Ok(Some(SecretSource::Value(Secret::new(v.value.trim()))))
                .map(|s| s.filter(|s| !matches!(s, SecretSource::Value(v) if v.is_empty()))),
            (None, Some(p)) => {
                let path = self.readable_file(p, &format!("{key}_file"))?;
                Ok(Some(SecretSource::File(path)))
            }
            (None, None) => Ok(None),
        }
    }

    /// The static key of `type: access_key` (block keys only; the environment is
    /// the `default` chain's business).
    pub fn static_keys(&mut self, raw: &RawCredentials) -> Result<StaticKeys, ConfigError> {
        let id = self.secret(
            "access_key_id",
            &raw.get("access_key_id"),
            &raw.get("access_key_id_file"),
        )?;
        let secret = self.secret(
            "access_key_secret",
            &raw.get("access_key_secret"),
            &raw.get("access_key_secret_file"),
        )?;
        let token = self.secret(
            "security_token",
            &raw.get("security_token"),
            &raw.get("security_token_file"),
        )?;
        let id = id.ok_or_else(|| {
            self.err(
                0,
                "access_key_id",
                "access key id missing in its credentials block",
            )
        })?;
        let secret = secret.ok_or_else(|| {
            self.err(
                0,
                "access_key_secret",
                "access key secret missing in its credentials block",
            )
        })?;
        Ok(StaticKeys {
            access_key_id: id,
            access_key_secret: secret,
            security_token: token,
        })
    }

    /// Static keys from environment variables `[id, secret, token]`, if id and
    /// secret are both set.
    pub fn env_keys(&self, names: [&str; 3]) -> Option<StaticKeys> {
        let id = self.env(names[0])?;
        let secret = self.env(names[1])?;
        Some(StaticKeys {
            access_key_id: SecretSource::Value(Secret::new(id.trim())),
            access_key_secret: SecretSource::Value(Secret::new(secret.trim())),
            security_token: self
                .env(names[2])
                .map(|t| SecretSource::Value(Secret::new(t.trim()))),
        })
    }
}

/// `http(s)://host[:port][/path]` with no query.
pub fn validate_url(v: &str) -> Result<(), String> {
    let ok = (v.starts_with("https://") || v.starts_with("http://"))
        && reqwest::Url::parse(v).is_ok_and(|u| u.host_str().is_some() && u.query().is_none());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{v:?} must be an http(s) URL such as https://host[:port]"
        ))
    }
}

#[cfg(unix)]
pub fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
pub fn world_readable(_path: &Path) -> bool {
    false
}
