//! Huawei Cloud credentials as huaweicloudsdkcore resolves them
//! (`huaweicloudsdkcore/auth/{provider,internal,credentials}.py`,
//! huaweicloud-sdk-go-v3 `core/auth`): `access_key`, `metadata` (the ECS agency's
//! temporary keys), `federated` (CCE workload identity: id token → IAM token →
//! temporary keys), and the `default` chain. Organizations takes global
//! credentials: `domain_id` is sent as `X-Domain-Id`. See
//! `shared/reference/credentials.md`.
//!
//! Where the reference is silent this follows huaweicloud-sdk-go-v3
//! `core/auth/provider/{env,profile,credential}_provider.go` (which source wins,
//! which INI keys) and `core/auth/global_credentials.go` (the domain id lookup).

use super::DEFAULT_ENDPOINT as HUAWEI_DEFAULT_ENDPOINT;
use super::identity::{DomainLookup, FederatedFetcher, HuaweiFetcher, MetadataFetcher};
use crate::config::ConfigError;
use crate::credentials::{
    CredCtx, CredentialConfig, CredentialFetcher, FixedFetcher, RawCredentials, SecretSource,
    StaticKeyFetcher, StaticKeys,
};
use crate::secret::Secret;
use std::path::PathBuf;

/// Environment variables of the static key and domain, as the SDK reads them.
pub const ENV_KEYS: [&str; 3] = [
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
];
pub const ENV_DOMAIN_ID: &str = "HUAWEICLOUD_SDK_DOMAIN_ID";
/// Federated identity (CCE workload identity); both set take precedence over AK/SK.
pub const ENV_IDP_ID: &str = "HUAWEICLOUD_SDK_IDP_ID";
pub const ENV_ID_TOKEN_FILE: &str = "HUAWEICLOUD_SDK_ID_TOKEN_FILE";
/// The profile file's path (default `~/.huaweicloud/credentials`).
pub const ENV_CREDENTIALS_FILE: &str = "HUAWEICLOUD_SDK_CREDENTIALS_FILE";
/// The IAM endpoint override the SDK reads (`core/auth/internal/iam_helper.go`).
pub const ENV_IAM_ENDPOINT: &str = "HUAWEICLOUD_SDK_IAM_ENDPOINT";

/// Global IAM endpoint (the SDK's `DefaultIamEndpoint`).
pub const DEFAULT_IAM_ENDPOINT: &str = "https://iam.myhuaweicloud.com";
/// The ECS metadata service.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://169.254.169.254";
/// Section of the profile file that holds global credentials (the Go SDK's
/// `GlobalCredentialProfileProvider`, and Python's `get_global()`).
pub const PROFILE_SECTION: &str = "global";

/// The credential types of `provider: huawei`.
pub const TYPES: [&str; 4] = ["access_key", "metadata", "federated", "default"];

/// How the keys are obtained.
#[derive(Clone, Debug, PartialEq)]
pub enum HuaweiIdentity {
    AccessKey(StaticKeys),
    /// The ECS agency's temporary keys from the metadata service.
    Metadata {
        endpoint: String,
    },
    /// CCE workload identity: the id token in `id_token_file`, exchanged at IAM
    /// through identity provider `idp_id`.
    Federated {
        idp_id: String,
        id_token_file: PathBuf,
    },
}

/// Which link of the `default` chain supplied the identity (for logs and
/// `--config.check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainLink {
    Environment,
    CredentialsFile,
    Metadata,
}

/// A validated Huawei credentials block: the identity plus what belongs to every
/// type (`domain_id`, `iam_endpoint`).
#[derive(Clone, Debug, PartialEq)]
pub struct HuaweiCredentialConfig {
    pub identity: HuaweiIdentity,
    pub domain_id: Option<SecretSource>,
    /// Set explicitly (block, profile file or `HUAWEICLOUD_SDK_IAM_ENDPOINT` for
    /// `default`): where `domain_id` is looked up when absent, and where `federated`
    /// exchanges its id token. `None`: [`DEFAULT_IAM_ENDPOINT`], and no lookup
    /// unless the Organizations endpoint is the default one.
    pub iam_endpoint: Option<String>,
    /// `Some` for `type: default` (or no block): the link that was chosen.
    pub chain: Option<ChainLink>,
}

impl HuaweiCredentialConfig {
    /// Endpoints that receive a signed request or an id token (IAM), by config key.
    /// The metadata service is left out: plain HTTP on a link-local address by
    /// design.
    pub fn token_endpoints(&self) -> Vec<(&'static str, &str)> {
        self.iam_endpoint
            .as_deref()
            .map(|e| vec![("iam_endpoint", e)])
            .unwrap_or_default()
    }

    /// The type that fetches the keys (`default` resolves to one of the others).
    pub fn kind(&self) -> &'static str {
        match self.identity {
            HuaweiIdentity::AccessKey(_) => "access_key",
            HuaweiIdentity::Metadata { .. } => "metadata",
            HuaweiIdentity::Federated { .. } => "federated",
        }
    }

    /// The IAM endpoint the domain id is looked up at, when it is looked up at all:
    /// with `iam_endpoint` set, or with the default Organizations endpoint (the
    /// SDK's `with_region`); an explicit `endpoint` alone means no lookup and no
    /// `X-Domain-Id`, as the SDK's `with_endpoint`.
    pub fn domain_lookup_endpoint(&self, organizations_endpoint: &str) -> Option<String> {
        if self.domain_id.is_some() {
            return None;
        }
        match &self.iam_endpoint {
            Some(iam) => Some(iam.clone()),
            None if organizations_endpoint.trim_end_matches('/') == HUAWEI_DEFAULT_ENDPOINT => {
                Some(DEFAULT_IAM_ENDPOINT.to_string())
            }
            None => None,
        }
    }
}

/// Keys every Huawei type takes.
const COMMON: [&str; 3] = ["domain_id", "domain_id_file", "iam_endpoint"];
const ACCESS_KEY_KEYS: [&str; 6] = [
    "access_key_id",
    "access_key_id_file",
    "access_key_secret",
    "access_key_secret_file",
    "security_token",
    "security_token_file",
];

/// Validate a Huawei source's credentials block (`None`: no block).
pub fn parse(
    ctx: &mut CredCtx<'_>,
    raw: Option<&RawCredentials>,
) -> Result<HuaweiCredentialConfig, ConfigError> {
    let empty = RawCredentials::default();
    let raw = raw.unwrap_or(&empty);
    let kind = ctx.kind(raw, &TYPES)?;
    let with_common = |extra: &[&'static str]| -> Vec<&'static str> {
        extra.iter().copied().chain(COMMON).collect()
    };
    let block_domain = ctx.secret(
        "domain_id",
        &raw.get("domain_id"),
        &raw.get("domain_id_file"),
    )?;
    let block_iam = ctx.endpoint(&raw.get("iam_endpoint"), "iam_endpoint")?;
    let (identity, chain, found) = match kind.as_str() {
        "access_key" => {
            ctx.only(raw, "access_key", &with_common(&ACCESS_KEY_KEYS))?;
            (
                HuaweiIdentity::AccessKey(ctx.static_keys(raw)?),
                None,
                Found::default(),
            )
        }
        "metadata" => {
            ctx.only(raw, "metadata", &with_common(&["metadata_endpoint"]))?;
            let endpoint = ctx
                .endpoint(&raw.get("metadata_endpoint"), "metadata_endpoint")?
                .unwrap_or_else(|| DEFAULT_METADATA_ENDPOINT.to_string());
            (
                HuaweiIdentity::Metadata { endpoint },
                None,
                Found::default(),
            )
        }
        "federated" => {
            ctx.only(raw, "federated", &with_common(&["idp_id", "id_token_file"]))?;
            let idp_id =
                ctx.required(&raw.get("idp_id"), "idp_id", "federated", Some(ENV_IDP_ID))?;
            let path = ctx.required(
                &raw.get("id_token_file"),
                "id_token_file",
                "federated",
                Some(ENV_ID_TOKEN_FILE),
            )?;
            let line = raw.get("id_token_file").map_or(0, |v| v.referenced.line());
            let id_token_file = token_file(ctx, line, &path, ENV_ID_TOKEN_FILE)?;
            (
                HuaweiIdentity::Federated {
                    idp_id,
                    id_token_file,
                },
                None,
                Found::default(),
            )
        }
        _ => {
            ctx.only(raw, "default", &with_common(&[]))?;
            let (identity, link, found) = default_chain(ctx)?;
            (identity, Some(link), found)
        }
    };
    // `default` only: the environment and the profile file fill what the block
    // leaves out. An explicit type takes its settings from the block alone.
    let domain_id = block_domain
        .or(found.domain_id.map(secret_value))
        .or_else(|| {
            chain
                .is_some()
                .then(|| ctx.env(ENV_DOMAIN_ID))
                .flatten()
                .map(secret_value)
        });
    let iam_endpoint = match block_iam {
        Some(e) => Some(e),
        None => match found.iam_endpoint {
            Some(e) => Some(e),
            None if chain.is_some() => match ctx.env(ENV_IAM_ENDPOINT) {
                Some(e) => Some(env_endpoint(ctx, &e, ENV_IAM_ENDPOINT)?),
                None => None,
            },
            None => None,
        },
    };
    Ok(HuaweiCredentialConfig {
        identity,
        domain_id,
        iam_endpoint,
        chain,
    })
}

fn secret_value(v: String) -> SecretSource {
    SecretSource::Value(Secret::new(v.trim()))
}

/// What a link of the default chain found besides the identity.
#[derive(Default)]
struct Found {
    domain_id: Option<String>,
    iam_endpoint: Option<String>,
}

/// The SDK's default chain for global credentials (Go `provider_chain.go`):
/// environment → profile file → metadata. Resolved when the configuration is
/// loaded (and again on every reload).
fn default_chain(ctx: &mut CredCtx<'_>) -> Result<(HuaweiIdentity, ChainLink, Found), ConfigError> {
    // 1. Environment. IdP + id token file win over AK/SK when both are set
    //    (`fillCommonAttrs` in `credential_provider.go`).
    if let (Some(idp_id), Some(path)) = (ctx.env(ENV_IDP_ID), ctx.env(ENV_ID_TOKEN_FILE)) {
        let id_token_file = token_file(ctx, 0, path.trim(), ENV_ID_TOKEN_FILE)?;
        return Ok((
            HuaweiIdentity::Federated {
                idp_id: idp_id.trim().to_string(),
                id_token_file,
            },
            ChainLink::Environment,
            Found::default(),
        ));
    }
    if let Some(keys) = ctx.env_keys(ENV_KEYS) {
        return Ok((
            HuaweiIdentity::AccessKey(keys),
            ChainLink::Environment,
            Found::default(),
        ));
    }
    // 2. The profile file, section [global].
    if let Some(found) = profile(ctx)? {
        return Ok(found);
    }
    // 3. The ECS metadata service: the SDK's last resort. Nothing can be checked
    //    before the first fetch; a host that is not an ECS fails then, with
    //    `reason="credentials"`, which a forgotten credentials block should not look
    //    like: say so at load.
    ctx.warnings.push(format!(
        "{}: no credentials in a block, the environment or ~/.huaweicloud/credentials; using the ECS agency from the metadata service",
        ctx.label
    ));
    Ok((
        HuaweiIdentity::Metadata {
            endpoint: DEFAULT_METADATA_ENDPOINT.to_string(),
        },
        ChainLink::Metadata,
        Found::default(),
    ))
}

/// Credentials from the profile file, or `None` to go on down the chain (no file,
/// or no usable `[global]` section: the SDK moves on in both cases; a file that
/// was named explicitly but cannot be used gets a warning).
fn profile(
    ctx: &mut CredCtx<'_>,
) -> Result<Option<(HuaweiIdentity, ChainLink, Found)>, ConfigError> {
    let explicit = ctx.env(ENV_CREDENTIALS_FILE);
    let path = match &explicit {
        Some(p) => PathBuf::from(p.trim()),
        // HOME through the injected lookup too: tests give a fake one.
        None => match ctx.env("HOME") {
            Some(home) => PathBuf::from(home.trim())
                .join(".huaweicloud")
                .join("credentials"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            if explicit.is_some() {
                ctx.warnings.push(format!(
                    "{}: {ENV_CREDENTIALS_FILE} names {}, which cannot be read ({e}); trying the metadata service",
                    ctx.label,
                    path.display()
                ));
            }
            return Ok(None);
        }
    };
    let ini = match crate::credentials::ini::parse(&text) {
        Ok(ini) => ini,
        Err(m) => {
            // The INI error names a line, never a value.
            return Err(ctx.err(
                0,
                "type",
                format!("credentials file {}: {m}", path.display()),
            ));
        }
    };
    let Some(section) = ini.get(PROFILE_SECTION) else {
        ctx.warnings.push(format!(
            "{}: credentials file {} has no [{PROFILE_SECTION}] section; trying the metadata service",
            ctx.label,
            path.display()
        ));
        return Ok(None);
    };
    let get = |k: &str| {
        section
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let where_ = format!("credentials file {} [{PROFILE_SECTION}]", path.display());
    let iam_endpoint = match get("iam_endpoint") {
        None => None,
        Some(e) => Some(env_endpoint(ctx, &e, &format!("{where_} iam_endpoint"))?),
    };
    let found = Found {
        domain_id: get("domain_id"),
        iam_endpoint,
    };
    if let (Some(idp_id), Some(file)) = (get("idp_id"), get("id_token_file")) {
        let id_token_file = token_file(ctx, 0, &file, &format!("{where_} id_token_file"))?;
        return Ok(Some((
            HuaweiIdentity::Federated {
                idp_id,
                id_token_file,
            },
            ChainLink::CredentialsFile,
            found,
        )));
    }
    if let (Some(ak), Some(sk)) = (get("ak"), get("sk")) {
        return Ok(Some((
            HuaweiIdentity::AccessKey(StaticKeys {
                access_key_id: secret_value(ak),
                access_key_secret: secret_value(sk),
                security_token: get("security_token").map(secret_value),
            }),
            ChainLink::CredentialsFile,
            found,
        )));
    }
    ctx.warnings.push(format!(
        "{}: {where_} has neither ak and sk nor idp_id and id_token_file; trying the metadata service",
        ctx.label
    ));
    Ok(None)
}

/// An id token file that must be readable now (it is read again for every
/// exchange). Projected service-account tokens are often mode 0644, so no
/// world-readable warning. `origin` says where the path came from when not the
/// block.
fn token_file(
    ctx: &CredCtx<'_>,
    line: u64,
    path: &str,
    origin: &str,
) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(path);
    match std::fs::File::open(&path) {
        Ok(_) => Ok(path),
        Err(e) => {
            let from = if line == 0 {
                format!(" (from {origin})")
            } else {
                String::new()
            };
            Err(ctx.err(
                line,
                "id_token_file",
                format!("cannot read id token file {}{from}: {e}", path.display()),
            ))
        }
    }
}

/// An endpoint from the environment or the profile file. As the SDK does
/// (`GetIamEndpoint`), a bare host gets `https://`.
fn env_endpoint(ctx: &CredCtx<'_>, value: &str, origin: &str) -> Result<String, ConfigError> {
    let v = value.trim().trim_end_matches('/');
    let v = if v.starts_with("http://") || v.starts_with("https://") {
        v.to_string()
    } else {
        format!("https://{v}")
    };
    crate::credentials::config::validate_url(&v)
        .map_err(|m| ctx.err(0, "iam_endpoint", format!("{origin}: {m}")))?;
    Ok(v)
}

/// The fetcher for a source's credentials. `organizations_endpoint` decides
/// whether a missing domain id is looked up (see
/// [`HuaweiCredentialConfig::domain_lookup_endpoint`]).
pub fn fetcher(
    config: &CredentialConfig,
    organizations_endpoint: &str,
) -> Box<dyn CredentialFetcher> {
    if let CredentialConfig::Static(c) = config {
        return Box::new(FixedFetcher(c.clone()));
    }
    match config.provider_config::<HuaweiCredentialConfig>() {
        Some(c) => {
            let lookup = c.domain_lookup_endpoint(organizations_endpoint);
            let iam = c
                .iam_endpoint
                .clone()
                .unwrap_or_else(|| DEFAULT_IAM_ENDPOINT.to_string());
            let (inner, domain): (Box<dyn CredentialFetcher>, _) = match &c.identity {
                // The static fetcher reads `domain_id` (inline or file) itself.
                HuaweiIdentity::AccessKey(keys) => (
                    Box::new(StaticKeyFetcher::new(keys.clone(), c.domain_id.clone())),
                    None,
                ),
                HuaweiIdentity::Metadata { endpoint } => (
                    Box::new(MetadataFetcher::new(endpoint.clone())),
                    c.domain_id.clone(),
                ),
                HuaweiIdentity::Federated {
                    idp_id,
                    id_token_file,
                } => (
                    Box::new(FederatedFetcher::new(
                        idp_id.clone(),
                        id_token_file.clone(),
                        iam,
                    )),
                    c.domain_id.clone(),
                ),
            };
            Box::new(HuaweiFetcher::new(
                inner,
                domain,
                lookup.map(DomainLookup::new),
            ))
        }
        // Another provider's block on a Huawei source cannot come out of the parser.
        None => Box::new(crate::credentials::Misconfigured),
    }
}

impl crate::credentials::ProviderCredentials for HuaweiCredentialConfig {
    fn kind(&self) -> &'static str {
        HuaweiCredentialConfig::kind(self)
    }

    fn token_endpoints(&self) -> Vec<(&'static str, &str)> {
        HuaweiCredentialConfig::token_endpoints(self)
    }

    fn read_static(&self) -> Option<crate::secret::Credentials> {
        match &self.identity {
            HuaweiIdentity::AccessKey(k) => {
                StaticKeyFetcher::new(k.clone(), self.domain_id.clone())
                    .read_now()
                    .ok()
            }
            _ => None,
        }
    }

    fn domain_id(&self) -> Option<String> {
        match &self.domain_id {
            Some(crate::credentials::SecretSource::Value(v)) => Some(v.expose().to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, load_str};
    use std::collections::HashMap;
    use std::path::Path;

    fn load_env(text: &str, env: &HashMap<&str, String>) -> Result<Config, ConfigError> {
        let lookup = |k: &str| env.get(k).cloned();
        load_str(text, Path::new("hw.yml"), &lookup)
    }

    fn huawei(c: &Config) -> Option<&HuaweiCredentialConfig> {
        c.sources
            .first()?
            .credentials
            .provider_config::<HuaweiCredentialConfig>()
    }

    fn block(lines: &str) -> String {
        format!("sources:\n  - name: hw\n    provider: huawei\n    credentials:\n{lines}")
    }

    #[test]
    fn each_type_takes_its_keys_and_the_common_ones() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let token = dir.path().join("id-token");
        std::fs::write(&token, "eyJhbGciOi.fake.jwt\n")?;
        let env = HashMap::new();

        let c = load_env(
            &block(
                "      type: metadata\n      domain_id: d1\n      iam_endpoint: https://iam.example/\n",
            ),
            &env,
        )?;
        let h = huawei(&c).ok_or("huawei")?;
        assert_eq!(
            h.identity,
            HuaweiIdentity::Metadata {
                endpoint: DEFAULT_METADATA_ENDPOINT.into()
            }
        );
        assert_eq!(h.iam_endpoint.as_deref(), Some("https://iam.example"));
        assert_eq!(h.kind(), "metadata");

        let c = load_env(
            &block(&format!(
                "      type: federated\n      idp_id: cce-idp\n      id_token_file: {}\n",
                token.display()
            )),
            &env,
        )?;
        let h = huawei(&c).ok_or("huawei")?;
        assert_eq!(
            h.identity,
            HuaweiIdentity::Federated {
                idp_id: "cce-idp".into(),
                id_token_file: token.clone()
            }
        );
        assert_eq!(h.iam_endpoint, None);
        // The default endpoint looks the domain up at the default IAM; an explicit
        // one does not, unless iam_endpoint is set.
        assert_eq!(
            h.domain_lookup_endpoint(HUAWEI_DEFAULT_ENDPOINT).as_deref(),
            Some(DEFAULT_IAM_ENDPOINT)
        );
        assert_eq!(h.domain_lookup_endpoint("http://127.0.0.1:1"), None);

        // Federated from the SDK's environment variables.
        let env: HashMap<&str, String> = [
            (ENV_IDP_ID, "env-idp".to_string()),
            (ENV_ID_TOKEN_FILE, token.display().to_string()),
        ]
        .into();
        let c = load_env(&block("      type: federated\n"), &env)?;
        assert!(matches!(
            &huawei(&c).ok_or("huawei")?.identity,
            HuaweiIdentity::Federated { idp_id, .. } if idp_id == "env-idp"
        ));
        Ok(())
    }

    #[test]
    fn errors_name_file_line_and_field() -> Result<(), Box<dyn std::error::Error>> {
        let env = HashMap::new();
        let cases = [
            (
                block("      type: assume_role\n"),
                5,
                "type",
                "unknown credentials type",
            ),
            (
                block("      type: metadata\n      access_key_id: AK\n"),
                6,
                "access_key_id",
                "does not belong to credentials type metadata",
            ),
            (
                block(
                    "      type: access_key\n      access_key_id: AK\n      access_key_secret: SK\n      idp_id: x\n",
                ),
                8,
                "idp_id",
                "does not belong to credentials type access_key",
            ),
            (
                block(
                    "      type: federated\n      id_token_file: /nonexistent\n      metadata_endpoint: http://x\n",
                ),
                7,
                "metadata_endpoint",
                "does not belong to credentials type federated",
            ),
            (
                block("      type: federated\n      id_token_file: /nonexistent/token\n"),
                5,
                "idp_id",
                "idp_id is required for credentials type federated (or set HUAWEICLOUD_SDK_IDP_ID)",
            ),
            (
                block(
                    "      type: federated\n      idp_id: i\n      id_token_file: /nonexistent/token\n",
                ),
                7,
                "id_token_file",
                "cannot read id token file /nonexistent/token",
            ),
            (
                block("      type: metadata\n      metadata_endpoint: ftp://x\n"),
                6,
                "metadata_endpoint",
                "must be an http(s) URL",
            ),
            (
                block("      type: default\n      role_arn: x\n"),
                6,
                "role_arn",
                "does not belong to credentials type default",
            ),
        ];
        for (text, line, field, message) in cases {
            let e = load_env(&text, &env).err().ok_or("expected an error")?;
            assert_eq!(e.file, Path::new("hw.yml"), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
            assert_eq!(
                e.field.as_deref(),
                Some(format!("sources[0].credentials.{field}").as_str()),
                "{e}"
            );
            assert!(e.to_string().contains(message), "{e}");
        }
        Ok(())
    }

    #[test]
    fn the_default_chain_goes_environment_then_profile_then_metadata()
    -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let token = home.path().join("token");
        std::fs::write(&token, "jwt")?;
        let no_block = "sources:\n  - name: hw\n    provider: huawei\n";

        // Nothing anywhere: the metadata service, as the SDK's last resort.
        let mut env: HashMap<&str, String> = [("HOME", home.path().display().to_string())].into();
        let c = load_env(no_block, &env)?;
        let h = huawei(&c).ok_or("huawei")?;
        assert_eq!(h.chain, Some(ChainLink::Metadata));
        assert_eq!(h.kind(), "metadata");
        // Said at load: off an ECS this would only show as reason="credentials" later.
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("using the ECS agency from the metadata service")),
            "{:?}",
            c.warnings
        );

        // ~/.huaweicloud/credentials, section [global] (a [basic] section is not ours).
        let dir = home.path().join(".huaweicloud");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("credentials"),
            "[basic]\nak = BASICAK\nsk = basicsk\n[global]\nak = FILEAK\nsk = filesk\nsecurity_token = filetoken\ndomain_id = filedomain\niam_endpoint = iam.example.com\n",
        )?;
        let c = load_env(no_block, &env)?;
        let h = huawei(&c).ok_or("huawei")?;
        assert_eq!(h.chain, Some(ChainLink::CredentialsFile));
        assert_eq!(h.iam_endpoint.as_deref(), Some("https://iam.example.com"));
        let keys = c.sources[0]
            .credentials
            .read_static_for_tests()
            .ok_or("static keys")?;
        assert_eq!(keys.access_key_id, "FILEAK");
        assert_eq!(keys.access_key_secret.expose(), "filesk");
        assert_eq!(
            keys.security_token.as_ref().map(|t| t.expose()),
            Some("filetoken")
        );
        assert_eq!(keys.domain_id.as_deref(), Some("filedomain"));

        // HUAWEICLOUD_SDK_CREDENTIALS_FILE points elsewhere; idp_id + id_token_file
        // win over ak/sk there as in the environment.
        let other = home.path().join("other.ini");
        std::fs::write(
            &other,
            format!(
                "[global]\nak = X\nsk = Y\nidp_id = file-idp\nid_token_file = {}\n",
                token.display()
            ),
        )?;
        env.insert(ENV_CREDENTIALS_FILE, other.display().to_string());
        let c = load_env(no_block, &env)?;
        let h = huawei(&c).ok_or("huawei")?;
        assert!(
            matches!(&h.identity, HuaweiIdentity::Federated { idp_id, .. } if idp_id == "file-idp")
        );

        // The environment before the file; IdP before AK/SK.
        env.insert(ENV_KEYS[0], "ENVAK".into());
        env.insert(ENV_KEYS[1], "envsk".into());
        env.insert(ENV_DOMAIN_ID, "envdomain".into());
        let c = load_env(no_block, &env)?;
        let h = huawei(&c).ok_or("huawei")?;
        assert_eq!(h.chain, Some(ChainLink::Environment));
        assert_eq!(h.kind(), "access_key");
        assert_eq!(
            c.sources[0].credentials.domain_id_for_tests().as_deref(),
            Some("envdomain")
        );
        env.insert(ENV_IDP_ID, "env-idp".into());
        env.insert(ENV_ID_TOKEN_FILE, token.display().to_string());
        let c = load_env(
            &block("      type: default\n      domain_id: blockdomain\n"),
            &env,
        )?;
        let h = huawei(&c).ok_or("huawei")?;
        assert!(
            matches!(&h.identity, HuaweiIdentity::Federated { idp_id, .. } if idp_id == "env-idp")
        );
        assert_eq!(
            c.sources[0].credentials.domain_id_for_tests().as_deref(),
            Some("blockdomain")
        );

        // An explicitly named file that is missing: warned, and on to metadata.
        let env: HashMap<&str, String> = [(
            ENV_CREDENTIALS_FILE,
            "/nonexistent/hw-credentials".to_string(),
        )]
        .into();
        let c = load_env(no_block, &env)?;
        assert_eq!(huawei(&c).and_then(|h| h.chain), Some(ChainLink::Metadata));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("/nonexistent/hw-credentials")),
            "{:?}",
            c.warnings
        );
        Ok(())
    }

    #[test]
    fn profile_errors_never_show_values() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("credentials");
        std::fs::write(&file, "[global]\nak = A\nsk-without-equals-SECRETVALUE\n")?;
        let env: HashMap<&str, String> =
            [(ENV_CREDENTIALS_FILE, file.display().to_string())].into();
        let e = load_env("sources:\n  - name: hw\n    provider: huawei\n", &env)
            .err()
            .ok_or("expected an error")?;
        let shown = e.to_string();
        assert!(shown.contains("line 3"), "{shown}");
        assert!(!shown.contains("SECRETVALUE"), "{shown}");
        Ok(())
    }
}
