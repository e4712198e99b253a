//! Alibaba Cloud credentials as alibabacloud-credentials resolves them
//! (aliyun/credentials-go `credentials/providers/*.go`; Python
//! `alibabacloud_credentials/provider`): `access_key`, `ram_role_arn` (STS
//! AssumeRole), `oidc_role_arn` (ACK RRSA, STS AssumeRoleWithOIDC), `ecs_ram_role`
//! (the instance metadata service), and the `default` chain. See
//! `shared/reference/credentials.md`. The fetchers are in [`super::sts`] and
//! [`super::metadata`].

use crate::config::ConfigError;
use crate::credentials::config::validate_url;
use crate::credentials::{
    CredCtx, CredentialConfig, CredentialFetcher, FixedFetcher, RawCredentials, SecretSource,
    StaticKeyFetcher, StaticKeys, ini,
};
use crate::secret::Secret;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variables of the static key, as the SDK reads them.
pub const ENV_KEYS: [&str; 3] = [
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
];
/// What ACK's pod identity webhook injects for RRSA.
pub const ENV_ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
pub const ENV_OIDC_PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
pub const ENV_OIDC_TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";
pub const ENV_STS_ENDPOINT: &str = "ALIBABA_CLOUD_STS_ENDPOINT";
pub const ENV_STS_REGION: &str = "ALIBABA_CLOUD_STS_REGION";
pub const ENV_VPC_ENDPOINT_ENABLED: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";
pub const ENV_CREDENTIALS_FILE: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";
pub const ENV_PROFILE: &str = "ALIBABA_CLOUD_PROFILE";
pub const ENV_ECS_METADATA_DISABLED: &str = "ALIBABA_CLOUD_ECS_METADATA_DISABLED";
/// The instance's role name (credentials-go `ecs_ram_role.go` reads it as the
/// default `role_name`).
pub const ENV_ECS_METADATA: &str = "ALIBABA_CLOUD_ECS_METADATA";
/// credentials-go `ecs_ram_role.go`: `true` turns the IMDSv1 fallback off.
pub const ENV_IMDSV1_DISABLED: &str = "ALIBABA_CLOUD_IMDSV1_DISABLED";

pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.100.100.200";
pub const DEFAULT_ROLE_SESSION_NAME: &str = "handshake-exporter";
/// The SDK's `DurationSeconds` default and minimum.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
pub const MIN_DURATION: Duration = Duration::from_secs(900);

/// The credential types of `provider: alibaba`.
pub const TYPES: [&str; 5] = [
    "access_key",
    "ram_role_arn",
    "oidc_role_arn",
    "ecs_ram_role",
    "default",
];

const ACCESS_KEY_KEYS: [&str; 6] = [
    "access_key_id",
    "access_key_id_file",
    "access_key_secret",
    "access_key_secret_file",
    "security_token",
    "security_token_file",
];
const ROLE_KEYS: [&str; 6] = [
    "role_arn",
    "role_session_name",
    "external_id",
    "policy",
    "duration",
    "sts_endpoint",
];
const OIDC_KEYS: [&str; 7] = [
    "role_arn",
    "oidc_provider_arn",
    "oidc_token_file",
    "role_session_name",
    "policy",
    "duration",
    "sts_endpoint",
];
const ECS_KEYS: [&str; 3] = ["role_name", "metadata_endpoint", "imdsv1_fallback"];

/// A validated Alibaba credentials block (the `default` chain is resolved to one
/// of these at load).
#[derive(Clone, Debug, PartialEq)]
pub enum AlibabaCredentialConfig {
    AccessKey(StaticKeys),
    RamRoleArn(RamRoleArn),
    OidcRoleArn(OidcRoleArn),
    EcsRamRole(EcsRamRole),
}

/// `type: ram_role_arn`: STS AssumeRole signed with a base key.
#[derive(Clone, Debug, PartialEq)]
pub struct RamRoleArn {
    /// The key AssumeRole is signed with (an STS token too, sent as `SecurityToken`).
    pub base: StaticKeys,
    pub role_arn: String,
    pub role_session_name: String,
    /// Not a secret (RAM documents it as an identifier against the confused
    /// deputy), but it is never logged either.
    pub external_id: Option<String>,
    pub policy: Option<String>,
    pub duration: Duration,
    /// `https://host[:port]`.
    pub sts_endpoint: String,
}

/// `type: oidc_role_arn`: STS AssumeRoleWithOIDC with a token file (ACK RRSA).
#[derive(Clone, Debug, PartialEq)]
pub struct OidcRoleArn {
    pub role_arn: String,
    pub oidc_provider_arn: String,
    /// Read afresh for every AssumeRoleWithOIDC: Kubernetes rotates it in place.
    pub oidc_token_file: PathBuf,
    pub role_session_name: String,
    pub policy: Option<String>,
    pub duration: Duration,
    pub sts_endpoint: String,
}

/// `type: ecs_ram_role`: the instance's RAM role from the metadata service.
#[derive(Clone, Debug, PartialEq)]
pub struct EcsRamRole {
    /// Discovered from the metadata service when `None`.
    pub role_name: Option<String>,
    pub metadata_endpoint: String,
    pub imdsv1_fallback: bool,
}

impl AlibabaCredentialConfig {
    /// Endpoints that receive a key, a signed request or an OIDC token (STS), by
    /// config key. The metadata service is left out: it is plain HTTP on a
    /// link-local address by design.
    pub fn token_endpoints(&self) -> Vec<(&'static str, &str)> {
        match self {
            AlibabaCredentialConfig::RamRoleArn(r) => {
                vec![("sts_endpoint", r.sts_endpoint.as_str())]
            }
            AlibabaCredentialConfig::OidcRoleArn(o) => {
                vec![("sts_endpoint", o.sts_endpoint.as_str())]
            }
            AlibabaCredentialConfig::AccessKey(_) | AlibabaCredentialConfig::EcsRamRole(_) => {
                Vec::new()
            }
        }
    }

    /// The `type` it came from, for the landing page and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AlibabaCredentialConfig::AccessKey(_) => "access_key",
            AlibabaCredentialConfig::RamRoleArn(_) => "ram_role_arn",
            AlibabaCredentialConfig::OidcRoleArn(_) => "oidc_role_arn",
            AlibabaCredentialConfig::EcsRamRole(_) => "ecs_ram_role",
        }
    }
}

/// Validate an Alibaba source's credentials block (`None`: no block).
pub fn parse(
    ctx: &mut CredCtx<'_>,
    raw: Option<&RawCredentials>,
) -> Result<AlibabaCredentialConfig, ConfigError> {
    let empty = RawCredentials::default();
    let raw = raw.unwrap_or(&empty);
    let kind = ctx.kind(raw, &TYPES)?;
    match kind.as_str() {
        "access_key" => {
            ctx.only(raw, "access_key", &ACCESS_KEY_KEYS)?;
            Ok(AlibabaCredentialConfig::AccessKey(ctx.static_keys(raw)?))
        }
        "ram_role_arn" => {
            let allowed: Vec<&str> = ACCESS_KEY_KEYS.iter().chain(&ROLE_KEYS).copied().collect();
            ctx.only(raw, "ram_role_arn", &allowed)?;
            ram_role_arn(ctx, raw).map(AlibabaCredentialConfig::RamRoleArn)
        }
        "oidc_role_arn" => {
            ctx.only(raw, "oidc_role_arn", &OIDC_KEYS)?;
            oidc_role_arn(ctx, raw).map(AlibabaCredentialConfig::OidcRoleArn)
        }
        "ecs_ram_role" => {
            ctx.only(raw, "ecs_ram_role", &ECS_KEYS)?;
            ecs_ram_role(ctx, raw).map(AlibabaCredentialConfig::EcsRamRole)
        }
        _ => {
            ctx.only(raw, "default", &[])?;
            default_chain(ctx)
        }
    }
}

fn line_of<T>(v: &Option<serde_saphyr::Spanned<T>>) -> u64 {
    v.as_ref().map_or(0, |s| s.referenced.line())
}

/// A role ARN as RAM writes it, `acs:ram::<account>:role/<name>`: a typo caught at
/// load instead of by every AssumeRole.
fn check_role_arn(ctx: &CredCtx<'_>, line: u64, key: &str, arn: &str) -> Result<(), ConfigError> {
    if is_role_arn(arn) {
        Ok(())
    } else {
        Err(ctx.err(
            line,
            key,
            format!("{arn:?} is not a RAM role ARN (acs:ram::<account id>:role/<role name>)"),
        ))
    }
}

fn is_role_arn(arn: &str) -> bool {
    arn.strip_prefix("acs:ram::")
        .and_then(|rest| rest.split_once(":role/"))
        .is_some_and(|(account, name)| !account.is_empty() && !name.is_empty())
}

/// STS's rule for RoleSessionName: 2 to 64 of `A-Za-z0-9.@-_`.
fn role_session_name(ctx: &CredCtx<'_>, raw: &RawCredentials) -> Result<String, ConfigError> {
    let Some(name) = ctx.string(&raw.get("role_session_name")) else {
        return Ok(DEFAULT_ROLE_SESSION_NAME.into());
    };
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if ok {
        Ok(name)
    } else {
        Err(ctx.err(
            line_of(&raw.get("role_session_name")),
            "role_session_name",
            "must be 2 to 64 characters of A-Z a-z 0-9 . @ - _",
        ))
    }
}

/// An endpoint given as a URL or, as the SDK and ACK's webhook write it, a bare
/// host (`sts-vpc.cn-hangzhou.aliyuncs.com`), which means HTTPS.
fn endpoint_url(value: &str) -> Result<String, String> {
    let v = value.trim().trim_end_matches('/');
    let url = if v.contains("://") {
        v.to_string()
    } else {
        format!("https://{v}")
    };
    validate_url(&url)?;
    Ok(url)
}

/// Where STS calls go (credentials-go `ram_role_arn.go` / `oidc.go` `Build`): the
/// `sts_endpoint` key, else `ALIBABA_CLOUD_STS_ENDPOINT`, else
/// `sts[-vpc].<region>.aliyuncs.com` from `ALIBABA_CLOUD_STS_REGION` and
/// `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED`, else `https://sts.aliyuncs.com`. Clusters
/// without internet egress reach only the VPC endpoint.
pub fn sts_endpoint(ctx: &CredCtx<'_>, raw: &RawCredentials) -> Result<String, ConfigError> {
    if let Some(v) = &raw.get("sts_endpoint") {
        return endpoint_url(&v.value).map_err(|m| ctx.err(v.referenced.line(), "sts_endpoint", m));
    }
    if let Some(v) = ctx.env(ENV_STS_ENDPOINT) {
        return endpoint_url(&v)
            .map_err(|m| ctx.err(0, "sts_endpoint", format!("{ENV_STS_ENDPOINT}: {m}")));
    }
    if let Some(region) = ctx.env(ENV_STS_REGION) {
        let region = region.trim();
        let vpc = ctx
            .env(ENV_VPC_ENDPOINT_ENABLED)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let prefix = if vpc { "sts-vpc" } else { "sts" };
        return endpoint_url(&format!("{prefix}.{region}.aliyuncs.com"))
            .map_err(|m| ctx.err(0, "sts_endpoint", format!("{ENV_STS_REGION}: {m}")));
    }
    Ok(DEFAULT_STS_ENDPOINT.into())
}

fn ram_role_arn(ctx: &mut CredCtx<'_>, raw: &RawCredentials) -> Result<RamRoleArn, ConfigError> {
    let role_arn = ctx.required(&raw.get("role_arn"), "role_arn", "ram_role_arn", None)?;
    check_role_arn(ctx, line_of(&raw.get("role_arn")), "role_arn", &role_arn)?;
    // The base key: in the block when any of its keys is there, else the
    // environment, as the SDK's RAMRoleARNCredentialsProvider builder does.
    let in_block = [
        &raw.get("access_key_id"),
        &raw.get("access_key_id_file"),
        &raw.get("access_key_secret"),
        &raw.get("access_key_secret_file"),
        &raw.get("security_token"),
        &raw.get("security_token_file"),
    ]
    .iter()
    .any(|k| k.is_some());
    let base = if in_block {
        ctx.static_keys(raw)?
    } else {
        ctx.env_keys(ENV_KEYS).ok_or_else(|| {
            ctx.err(
                0,
                "access_key_id",
                format!(
                    "ram_role_arn needs a base access key: access_key_id and access_key_secret (or their _file keys) in the block, or {} and {}",
                    ENV_KEYS[0], ENV_KEYS[1]
                ),
            )
        })?
    };
    Ok(RamRoleArn {
        base,
        role_arn,
        role_session_name: role_session_name(ctx, raw)?,
        external_id: ctx.string(&raw.get("external_id")),
        policy: ctx.string(&raw.get("policy")),
        duration: ctx.duration(
            &raw.get("duration"),
            "duration",
            DEFAULT_DURATION,
            MIN_DURATION,
        )?,
        sts_endpoint: sts_endpoint(ctx, raw)?,
    })
}

/// A token file named by an environment variable must be readable now (it is read
/// again for every AssumeRoleWithOIDC).
fn readable_env_file(
    ctx: &CredCtx<'_>,
    key: &str,
    env: &str,
    path: &str,
) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(path.trim());
    std::fs::File::open(&path).map_err(|e| {
        ctx.err(
            0,
            key,
            format!("cannot read {} (from {env}): {e}", path.display()),
        )
    })?;
    Ok(path)
}

fn oidc_role_arn(ctx: &mut CredCtx<'_>, raw: &RawCredentials) -> Result<OidcRoleArn, ConfigError> {
    let kind = "oidc_role_arn";
    let role_arn = ctx.required(&raw.get("role_arn"), "role_arn", kind, Some(ENV_ROLE_ARN))?;
    check_role_arn(ctx, line_of(&raw.get("role_arn")), "role_arn", &role_arn)?;
    let oidc_provider_arn = ctx.required(
        &raw.get("oidc_provider_arn"),
        "oidc_provider_arn",
        kind,
        Some(ENV_OIDC_PROVIDER_ARN),
    )?;
    // Projected service-account tokens are mode 0644 by default; unlike key files,
    // no warning about that (the token is short-lived and audience-bound).
    let oidc_token_file = match &raw.get("oidc_token_file") {
        Some(v) => {
            let path = PathBuf::from(v.value.trim());
            std::fs::File::open(&path).map_err(|e| {
                ctx.err(
                    v.referenced.line(),
                    "oidc_token_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            path
        }
        None => {
            let path = ctx.required(&None, "oidc_token_file", kind, Some(ENV_OIDC_TOKEN_FILE))?;
            readable_env_file(ctx, "oidc_token_file", ENV_OIDC_TOKEN_FILE, &path)?
        }
    };
    Ok(OidcRoleArn {
        role_arn,
        oidc_provider_arn,
        oidc_token_file,
        role_session_name: role_session_name(ctx, raw)?,
        policy: ctx.string(&raw.get("policy")),
        duration: ctx.duration(
            &raw.get("duration"),
            "duration",
            DEFAULT_DURATION,
            MIN_DURATION,
        )?,
        sts_endpoint: sts_endpoint(ctx, raw)?,
    })
}

fn ecs_ram_role(ctx: &mut CredCtx<'_>, raw: &RawCredentials) -> Result<EcsRamRole, ConfigError> {
    let metadata_endpoint = ctx
        .endpoint(&raw.get("metadata_endpoint"), "metadata_endpoint")?
        .unwrap_or_else(|| DEFAULT_METADATA_ENDPOINT.into());
    let flag = raw
        .flag("imdsv1_fallback")
        .map_err(|(line, m)| ctx.err(line, "imdsv1_fallback", m))?;
    let imdsv1_fallback = match flag {
        Some(v) => v.value,
        None => !ctx
            .env(ENV_IMDSV1_DISABLED)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
    };
    Ok(EcsRamRole {
        role_name: ctx
            .string(&raw.get("role_name"))
            .or_else(|| ctx.env(ENV_ECS_METADATA).map(|v| v.trim().to_string())),
        metadata_endpoint,
        imdsv1_fallback,
    })
}

/// The SDK's default chain (credentials-go `default.go`), resolved at load:
/// environment → OIDC (RRSA) → the credentials file → the ECS RAM role. The CLI's
/// `~/.aliyun/config.json` and the credentials URI are not followed.
fn default_chain(ctx: &mut CredCtx<'_>) -> Result<AlibabaCredentialConfig, ConfigError> {
    if let Some(keys) = ctx.env_keys(ENV_KEYS) {
        return Ok(AlibabaCredentialConfig::AccessKey(keys));
    }
    let empty = RawCredentials::default();
    if ctx.env(ENV_ROLE_ARN).is_some()
        && ctx.env(ENV_OIDC_PROVIDER_ARN).is_some()
        && ctx.env(ENV_OIDC_TOKEN_FILE).is_some()
    {
        return oidc_role_arn(ctx, &empty).map(AlibabaCredentialConfig::OidcRoleArn);
    }
    if let Some(found) = credentials_file(ctx)? {
        return Ok(found);
    }
    if ctx
        .env(ENV_ECS_METADATA_DISABLED)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Err(ctx.err(
            0,
            "access_key_id",
            format!(
                "no credentials found: no credentials block, {} / {} are not set, {ENV_ROLE_ARN} / {ENV_OIDC_PROVIDER_ARN} / {ENV_OIDC_TOKEN_FILE} are not all set, no credentials file ({ENV_CREDENTIALS_FILE}, ~/.alibabacloud/credentials), and {ENV_ECS_METADATA_DISABLED}=true",
                ENV_KEYS[0], ENV_KEYS[1]
            ),
        ));
    }
    // The SDK's last resort. Said at load, since nothing can be checked before the
    // first fetch: off an ECS instance the source fails then with
    // `reason="credentials"`, which a forgotten credentials block should not look like.
    ctx.warnings.push(format!(
        "{}: no credentials in a block, the environment or a credentials file; using the ECS RAM role from the metadata service (set {ENV_ECS_METADATA_DISABLED}=true to make this an error)",
        ctx.label
    ));
    ecs_ram_role(ctx, &empty).map(AlibabaCredentialConfig::EcsRamRole)
}

/// The credentials file of the default chain: `ALIBABA_CLOUD_CREDENTIALS_FILE`,
/// else `~/.alibabacloud/credentials` (Go) or `credentials.ini` (Python); the
/// section `ALIBABA_CLOUD_PROFILE` or `default`. `None` when there is no file (or
/// no such section: the chain goes on, as the SDK's does).
fn credentials_file(ctx: &mut CredCtx<'_>) -> Result<Option<AlibabaCredentialConfig>, ConfigError> {
    let path = match ctx.env(ENV_CREDENTIALS_FILE) {
        // Named explicitly: it must be there.
        Some(p) => PathBuf::from(p.trim()),
        None => {
            let Some(home) = ctx.env("HOME") else {
                return Ok(None);
            };
            let dir = Path::new(home.trim()).join(".alibabacloud");
            match ["credentials", "credentials.ini"]
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.is_file())
            {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ctx.err(
            0,
            "type",
            format!("cannot read credentials file {shown}: {e}"),
        )
    })?;
    let parsed = ini::parse(&text)
        .map_err(|m| ctx.err(0, "type", format!("credentials file {shown}: {m}")))?;
    let profile = ctx
        .env(ENV_PROFILE)
        .map_or_else(|| "default".to_string(), |p| p.trim().to_string());
    let Some(section) = parsed.get(&profile) else {
        ctx.warnings.push(format!(
            "{}: credentials file {shown} has no [{profile}] section; trying the ECS RAM role",
            ctx.label
        ));
        return Ok(None);
    };
    profile_section(ctx, &shown, &profile, section).map(Some)
}

/// One profile of the credentials file, with its `type` keys. Errors name the
/// file, the section and the key, never a value.
fn profile_section(
    ctx: &mut CredCtx<'_>,
    file: &str,
    profile: &str,
    section: &std::collections::BTreeMap<String, String>,
) -> Result<AlibabaCredentialConfig, ConfigError> {
    let at = |key: &str| format!("credentials file {file} [{profile}] {key}");
    let get = |key: &str| section.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let need = |ctx: &CredCtx<'_>, key: &str| {
        get(key)
            .map(str::to_string)
            .ok_or_else(|| ctx.err(0, "type", format!("{}: missing", at(key))))
    };
    let keys = |ctx: &CredCtx<'_>| -> Result<StaticKeys, ConfigError> {
        Ok(StaticKeys {
            access_key_id: SecretSource::Value(Secret::new(need(ctx, "access_key_id")?)),
            access_key_secret: SecretSource::Value(Secret::new(need(ctx, "access_key_secret")?)),
            security_token: get("security_token").map(|t| SecretSource::Value(Secret::new(t))),
        })
    };
    let kind = need(ctx, "type")?;
    let empty = RawCredentials::default();
    match kind.as_str() {
        "access_key" => Ok(AlibabaCredentialConfig::AccessKey(keys(ctx)?)),
        "ram_role_arn" => {
            let role_arn = need(ctx, "role_arn")?;
            if !is_role_arn(&role_arn) {
                return Err(ctx.err(
                    0,
                    "type",
                    format!("{}: not a RAM role ARN (acs:ram::<account id>:role/<role name>)", at("role_arn")),
                ));
            }
            let session = get("role_session_name").unwrap_or(DEFAULT_ROLE_SESSION_NAME);
            Ok(AlibabaCredentialConfig::RamRoleArn(RamRoleArn {
                base: keys(ctx)?,
                role_arn,
                role_session_name: session.to_string(),
                external_id: get("external_id").map(str::to_string),
                policy: get("policy").map(str::to_string),
                duration: DEFAULT_DURATION,
                sts_endpoint: sts_endpoint(ctx, &empty)?,
            }))
        }
        "oidc_role_arn" => {
            let role_arn = need(ctx, "role_arn")?;
            let provider = need(ctx, "oidc_provider_arn")?;
            // Python's profile names it oidc_token_file_path.
            let token = get("oidc_token_file_path")
                .or_else(|| get("oidc_token_file"))
                .ok_or_else(|| ctx.err(0, "type", format!("{}: missing", at("oidc_token_file_path"))))?;
            let token = PathBuf::from(token);
            std::fs::File::open(&token).map_err(|e| {
                ctx.err(
                    0,
                    "type",
                    format!("{}: cannot read {}: {e}", at("oidc_token_file_path"), token.display()),
                )
            })?;
            Ok(AlibabaCredentialConfig::OidcRoleArn(OidcRoleArn {
                role_arn,
                oidc_provider_arn: provider,
                oidc_token_file: token,
                role_session_name: get("role_session_name")
                    .unwrap_or(DEFAULT_ROLE_SESSION_NAME)
                    .to_string(),
                policy: get("policy").map(str::to_string),
                duration: DEFAULT_DURATION,
                sts_endpoint: sts_endpoint(ctx, &empty)?,
            }))
        }
        "ecs_ram_role" => {
            let mut ecs = ecs_ram_role(ctx, &empty)?;
            if let Some(name) = get("role_name") {
                ecs.role_name = Some(name.to_string());
            }
            Ok(AlibabaCredentialConfig::EcsRamRole(ecs))
        }
        other => Err(ctx.err(
            0,
            "type",
            format!(
                "{}: unsupported type {other:?} (use access_key, ram_role_arn, oidc_role_arn, ecs_ram_role)",
                at("type")
            ),
        )),
    }
}

/// The fetcher for a source's credentials.
pub fn fetcher(config: &CredentialConfig) -> Box<dyn CredentialFetcher> {
    if let CredentialConfig::Static(c) = config {
        return Box::new(FixedFetcher(c.clone()));
    }
    match config.provider_config::<AlibabaCredentialConfig>() {
        Some(AlibabaCredentialConfig::AccessKey(keys)) => {
            Box::new(StaticKeyFetcher::new(keys.clone(), None))
        }
        Some(AlibabaCredentialConfig::RamRoleArn(c)) => {
            Box::new(super::sts::AssumeRoleFetcher::new(c.clone()))
        }
        Some(AlibabaCredentialConfig::OidcRoleArn(c)) => {
            Box::new(super::sts::AssumeRoleWithOidcFetcher::new(c.clone()))
        }
        Some(AlibabaCredentialConfig::EcsRamRole(c)) => {
            Box::new(super::metadata::EcsRamRoleFetcher::new(c.clone()))
        }
        // Another provider's block on an Alibaba source cannot come out of the parser.
        None => Box::new(crate::credentials::Misconfigured),
    }
}

impl crate::credentials::ProviderCredentials for AlibabaCredentialConfig {
    fn kind(&self) -> &'static str {
        AlibabaCredentialConfig::kind(self)
    }

    fn token_endpoints(&self) -> Vec<(&'static str, &str)> {
        AlibabaCredentialConfig::token_endpoints(self)
    }

    fn read_static(&self) -> Option<crate::secret::Credentials> {
        match self {
            AlibabaCredentialConfig::AccessKey(k) => {
                StaticKeyFetcher::new(k.clone(), None).read_now().ok()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
