//! Credential types of `provider: aws` (reference §11): `access_key`,
//! `assume_role` (STS AssumeRole signed by a base identity: keys, else the default
//! chain below, botocore's `credential_source` role chaining), `web_identity` (EKS IRSA:
//! AssumeRoleWithWebIdentity, unsigned) and `default`, the SDKs' chain resolved
//! at load: environment → web identity → shared credentials file with
//! `AWS_PROFILE` → container credentials → IMDSv2.

use crate::config::ConfigError;
use crate::credentials::{
    CredCtx, CredentialFetcher, FixedFetcher, RawCredentials, SecretSource, StaticKeyFetcher,
    StaticKeys, ini,
};
use crate::secret::{Credentials, Secret};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const TYPES: [&str; 4] = ["access_key", "assume_role", "web_identity", "default"];

pub const ENV_KEYS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];
/// The older name of the session token variable botocore still reads.
pub const ENV_SECURITY_TOKEN: &str = "AWS_SECURITY_TOKEN";
pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
pub const ENV_WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const ENV_ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
pub const ENV_ENDPOINT_URL_STS: &str = "AWS_ENDPOINT_URL_STS";
pub const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const ENV_SHARED_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
pub const ENV_DEFAULT_PROFILE: &str = "AWS_DEFAULT_PROFILE";
pub const ENV_PROFILE: &str = "AWS_PROFILE";
pub const ENV_CONTAINER_RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
pub const ENV_CONTAINER_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
pub const ENV_CONTAINER_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
pub const ENV_CONTAINER_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
pub const ENV_IMDS_DISABLED: &str = "AWS_EC2_METADATA_DISABLED";
pub const ENV_IMDS_V1_DISABLED: &str = "AWS_EC2_METADATA_V1_DISABLED";
pub const ENV_IMDS_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
pub const ENV_IMDS_ENDPOINT_MODE: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";

/// The ECS agent's address for relative container credential URIs.
pub const CONTAINER_HOST: &str = "http://169.254.170.2";
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
pub const IMDS_ENDPOINT_IPV6: &str = "http://[fd00:ec2::254]";

/// STS DurationSeconds: 900..43200, the service default 3600 (§11.3).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
pub const MIN_DURATION: Duration = Duration::from_secs(900);
pub const MAX_DURATION: Duration = Duration::from_secs(43_200);
/// Prefix of the session name when none is configured; the SDKs add the unix time
/// of the call (`botocore-session-<time>`), and so does this.
pub const SESSION_NAME_PREFIX: &str = "handshake-exporter";

const ACCESS_KEY_KEYS: [&str; 6] = [
    "access_key_id",
    "access_key_id_file",
    "access_key_secret",
    "access_key_secret_file",
    "security_token",
    "security_token_file",
];
const ROLE_KEYS: [&str; 5] = [
    "role_arn",
    "external_id",
    "role_session_name",
    "duration",
    "sts_endpoint",
];
const WEB_IDENTITY_KEYS: [&str; 5] = [
    "role_arn",
    "web_identity_token_file",
    "role_session_name",
    "duration",
    "sts_endpoint",
];

/// An AWS source's credentials, validated.
#[derive(Clone, Debug, PartialEq)]
pub enum AwsCredentialConfig {
    /// Keys given in code (tests, `--demo`).
    Fixed(Credentials),
    AccessKey(StaticKeys),
    AssumeRole(AssumeRole),
    WebIdentity(WebIdentity),
    Container(Container),
    Imds(Imds),
}

#[derive(Clone, Debug, PartialEq)]
pub struct AssumeRole {
    /// The identity AssumeRole is signed with: the block's (or the environment's)
    /// keys, else what the default chain resolves to (web identity, a shared
    /// credentials profile, container credentials or the instance role), so a pod's
    /// IRSA / Pod Identity role or an EC2 role can chain into another account.
    pub base: Box<AwsCredentialConfig>,
    pub role_arn: String,
    pub external_id: Option<String>,
    /// `None`: `handshake-exporter-<unix time>` per call, as the SDKs do.
    pub role_session_name: Option<String>,
    pub duration: Duration,
    pub sts_endpoint: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebIdentity {
    pub role_arn: String,
    /// Read afresh for every call and sent as read (the kubelet rotates it).
    pub token_file: PathBuf,
    pub role_session_name: Option<String>,
    pub duration: Duration,
    pub sts_endpoint: String,
}

/// ECS task role / EKS Pod Identity credentials (§11.5).
#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub url: String,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read at every fetch.
    pub token_file: Option<PathBuf>,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`, when there is no file.
    pub token: Option<Secret>,
}

/// The instance's role from IMDSv2 (§11.6).
#[derive(Clone, Debug, PartialEq)]
pub struct Imds {
    pub endpoint: String,
    /// Fall back to IMDSv1 when the token PUT answers 403/404/405 (botocore's
    /// default, off with `AWS_EC2_METADATA_V1_DISABLED=true`).
    pub v1_fallback: bool,
}

impl From<Credentials> for AwsCredentialConfig {
    fn from(c: Credentials) -> Self {
        AwsCredentialConfig::Fixed(c)
    }
}

impl AwsCredentialConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            AwsCredentialConfig::Fixed(_) | AwsCredentialConfig::AccessKey(_) => "access_key",
            AwsCredentialConfig::AssumeRole(_) => "assume_role",
            AwsCredentialConfig::WebIdentity(_) => "web_identity",
            AwsCredentialConfig::Container(_) => "container",
            AwsCredentialConfig::Imds(_) => "imds",
        }
    }

    /// Configured endpoints that receive signed requests or tokens (the
    /// configuration warns about plain http to them). The container and metadata
    /// services are link-local http by design; their hosts are checked at parse.
    pub fn token_endpoints(&self) -> Vec<(&'static str, &str)> {
        match self {
            AwsCredentialConfig::AssumeRole(a) => {
                let mut all = vec![("sts_endpoint", a.sts_endpoint.as_str())];
                all.extend(a.base.token_endpoints());
                all
            }
            AwsCredentialConfig::WebIdentity(w) => vec![("sts_endpoint", w.sts_endpoint.as_str())],
            AwsCredentialConfig::Fixed(_)
            | AwsCredentialConfig::AccessKey(_)
            | AwsCredentialConfig::Container(_)
            | AwsCredentialConfig::Imds(_) => Vec::new(),
        }
    }

    /// Where the container credentials are fetched from, if that is the type.
    pub fn container_url(&self) -> Option<&str> {
        match self {
            AwsCredentialConfig::Container(c) => Some(&c.url),
            _ => None,
        }
    }
}

/// The fetcher for a source's credentials.
pub fn fetcher(config: &AwsCredentialConfig) -> Box<dyn CredentialFetcher> {
    match config {
        AwsCredentialConfig::Fixed(c) => Box::new(FixedFetcher(c.clone())),
        AwsCredentialConfig::AccessKey(k) => Box::new(StaticKeyFetcher::new(k.clone(), None)),
        AwsCredentialConfig::AssumeRole(a) => {
            Box::new(super::sts::AssumeRoleFetcher::new(a.clone()))
        }
        AwsCredentialConfig::WebIdentity(w) => {
            Box::new(super::sts::WebIdentityFetcher::new(w.clone()))
        }
        AwsCredentialConfig::Container(c) => {
            Box::new(super::metadata::ContainerFetcher::new(c.clone()))
        }
        AwsCredentialConfig::Imds(i) => Box::new(super::metadata::ImdsFetcher::new(i.clone())),
    }
}

impl crate::credentials::ProviderCredentials for AwsCredentialConfig {
    fn kind(&self) -> &'static str {
        AwsCredentialConfig::kind(self)
    }

    fn token_endpoints(&self) -> Vec<(&'static str, &str)> {
        AwsCredentialConfig::token_endpoints(self)
    }

    fn read_static(&self) -> Option<Credentials> {
        match self {
            AwsCredentialConfig::Fixed(c) => Some(c.clone()),
            AwsCredentialConfig::AccessKey(k) => {
                StaticKeyFetcher::new(k.clone(), None).read_now().ok()
            }
            _ => None,
        }
    }
}

/// Parse a source's `credentials:` block, STS defaulting to `us-east-1`'s regional
/// endpoint; see [`parse_for_region`].
pub fn parse(
    ctx: &mut CredCtx<'_>,
    raw: Option<&RawCredentials>,
) -> Result<AwsCredentialConfig, ConfigError> {
    parse_for_region(ctx, raw, super::settings::DEFAULT_REGION)
}

/// Parse a source's `credentials:` block; `region` picks the default STS endpoint
/// (`https://sts.<region>.amazonaws.com[.cn]`, botocore's regional default).
pub fn parse_for_region(
    ctx: &mut CredCtx<'_>,
    raw: Option<&RawCredentials>,
    region: &str,
) -> Result<AwsCredentialConfig, ConfigError> {
    let empty = RawCredentials::default();
    let raw = raw.unwrap_or(&empty);
    let kind = ctx.kind(raw, &TYPES)?;
    match kind.as_str() {
        "access_key" => {
            ctx.only(raw, "access_key", &ACCESS_KEY_KEYS)?;
            Ok(AwsCredentialConfig::AccessKey(access_keys(
                ctx,
                raw,
                "access_key",
            )?))
        }
        "assume_role" => {
            let allowed: Vec<&str> = ACCESS_KEY_KEYS.iter().chain(&ROLE_KEYS).copied().collect();
            ctx.only(raw, "assume_role", &allowed)?;
            let role_arn = role_arn(ctx, raw, "assume_role", None)?;
            let sts_endpoint = sts_endpoint(ctx, raw, region)?;
            let base = assume_role_base(ctx, raw, region, &sts_endpoint)?;
            Ok(AwsCredentialConfig::AssumeRole(AssumeRole {
                base: Box::new(base),
                role_arn,
                external_id: external_id(ctx, raw)?,
                role_session_name: session_name(ctx, raw, None)?,
                duration: duration(ctx, raw)?,
                sts_endpoint,
            }))
        }
        "web_identity" => {
            ctx.only(raw, "web_identity", &WEB_IDENTITY_KEYS)?;
            web_identity(ctx, raw, region).map(AwsCredentialConfig::WebIdentity)
        }
        _ => {
            ctx.only(raw, "default", &[])?;
            default_chain(ctx, region, None)
        }
    }
}

fn line_of<T>(v: &Option<serde_saphyr::Spanned<T>>) -> u64 {
    v.as_ref().map_or(0, |s| s.referenced.line())
}

/// The block's keys, else the environment's (`AWS_ACCESS_KEY_ID`, ...).
fn access_keys(
    ctx: &mut CredCtx<'_>,
    raw: &RawCredentials,
    kind: &str,
) -> Result<StaticKeys, ConfigError> {
    let in_block = raw.get("access_key_id").is_some()
        || raw.get("access_key_id_file").is_some()
        || raw.get("access_key_secret").is_some()
        || raw.get("access_key_secret_file").is_some();
    if in_block {
        return ctx.static_keys(raw);
    }
    env_keys(ctx).ok_or_else(|| {
        ctx.err(
            0,
            "access_key_id",
            format!(
                "credentials type {kind} needs access_key_id and access_key_secret (or {} and {})",
                ENV_KEYS[0], ENV_KEYS[1]
            ),
        )
    })
}

/// The identity an `assume_role` block signs with: its keys (all of them, or the
/// error of the missing one), else the environment's, else the default chain
/// (web identity → shared credentials file → container → IMDS), as botocore's
/// `credential_source = Environment / Ec2InstanceMetadata / EcsContainer` does.
/// A web identity base exchanges its token at the block's STS endpoint.
fn assume_role_base(
    ctx: &mut CredCtx<'_>,
    raw: &RawCredentials,
    region: &str,
    sts_endpoint: &str,
) -> Result<AwsCredentialConfig, ConfigError> {
    let in_block = ACCESS_KEY_KEYS[..4].iter().any(|k| raw.get(k).is_some());
    if in_block || env_keys(ctx).is_some() {
        return access_keys(ctx, raw, "assume_role").map(AwsCredentialConfig::AccessKey);
    }
    let mut base = default_chain(ctx, region, Some("assume_role"))?;
    if let AwsCredentialConfig::WebIdentity(w) = &mut base {
        w.sts_endpoint = sts_endpoint.to_string();
    }
    Ok(base)
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (or the
/// older `AWS_SECURITY_TOKEN`).
fn env_keys(ctx: &CredCtx<'_>) -> Option<StaticKeys> {
    let mut keys = ctx.env_keys(ENV_KEYS)?;
    if keys.security_token.is_none() {
        keys.security_token = ctx
            .env(ENV_SECURITY_TOKEN)
            .map(|t| SecretSource::Value(Secret::new(t.trim())));
    }
    Some(keys)
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`: a typo caught at load
/// instead of by every AssumeRole.
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}

fn role_arn(
    ctx: &CredCtx<'_>,
    raw: &RawCredentials,
    kind: &str,
    env: Option<&str>,
) -> Result<String, ConfigError> {
    let arn = ctx.required(&raw.get("role_arn"), "role_arn", kind, env)?;
    if is_role_arn(&arn) {
        Ok(arn)
    } else {
        Err(ctx.err(
            line_of(&raw.get("role_arn")),
            "role_arn",
            format!("{arn:?} is not an IAM role ARN (arn:aws:iam::<account id>:role/<name>)"),
        ))
    }
}

/// STS's pattern for RoleSessionName: 2..64 of `[\w+=,.@-]`.
pub fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

fn session_name(
    ctx: &CredCtx<'_>,
    raw: &RawCredentials,
    env: Option<&str>,
) -> Result<Option<String>, ConfigError> {
    let name = ctx
        .string(&raw.get("role_session_name"))
        .or_else(|| env.and_then(|e| ctx.env(e)).map(|v| v.trim().to_string()));
    match name {
        Some(n) if !valid_session_name(&n) => Err(ctx.err(
            line_of(&raw.get("role_session_name")),
            "role_session_name",
            format!("{n:?} must be 2 to 64 of A-Z a-z 0-9 _+=,.@-"),
        )),
        other => Ok(other),
    }
}

/// ExternalId: 2..1224 of `[\w+=,.@:/-]`.
fn external_id(ctx: &CredCtx<'_>, raw: &RawCredentials) -> Result<Option<String>, ConfigError> {
    let Some(id) = ctx.string(&raw.get("external_id")) else {
        return Ok(None);
    };
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(Some(id))
    } else {
        Err(ctx.err(
            line_of(&raw.get("external_id")),
            "external_id",
            "must be 2 to 1224 of A-Z a-z 0-9 _+=,.@:/-",
        ))
    }
}

fn duration(ctx: &CredCtx<'_>, raw: &RawCredentials) -> Result<Duration, ConfigError> {
    let d = ctx.duration(
        &raw.get("duration"),
        "duration",
        DEFAULT_DURATION,
        MIN_DURATION,
    )?;
    if d > MAX_DURATION {
        return Err(ctx.err(
            line_of(&raw.get("duration")),
            "duration",
            format!(
                "must be at most {}s (STS DurationSeconds)",
                MAX_DURATION.as_secs()
            ),
        ));
    }
    Ok(d)
}

/// `sts_endpoint`, else `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the
/// region's regional endpoint.
fn sts_endpoint(
    ctx: &CredCtx<'_>,
    raw: &RawCredentials,
    region: &str,
) -> Result<String, ConfigError> {
    if raw.get("sts_endpoint").is_some() {
        return ctx
            .endpoint(&raw.get("sts_endpoint"), "sts_endpoint")
            .map(|e| e.unwrap_or_default());
    }
    for name in [ENV_ENDPOINT_URL_STS, ENV_ENDPOINT_URL] {
        if let Some(v) = ctx.env(name) {
            let v = v.trim().trim_end_matches('/').to_string();
            crate::credentials::config::validate_url(&v)
                .map_err(|m| ctx.err(0, "sts_endpoint", format!("{name}: {m}")))?;
            return Ok(v);
        }
    }
    Ok(super::settings::default_sts_endpoint(region))
}

fn web_identity(
    ctx: &mut CredCtx<'_>,
    raw: &RawCredentials,
    region: &str,
) -> Result<WebIdentity, ConfigError> {
    let role_arn = role_arn(ctx, raw, "web_identity", Some(ENV_ROLE_ARN))?;
    let token_file = match &raw.get("web_identity_token_file") {
        Some(v) => ctx.readable_file(v, "web_identity_token_file")?,
        None => {
            let path = ctx.required(
                &None,
                "web_identity_token_file",
                "web_identity",
                Some(ENV_WEB_IDENTITY_TOKEN_FILE),
            )?;
            let path = PathBuf::from(path);
            std::fs::File::open(&path).map_err(|e| {
                ctx.err(
                    0,
                    "web_identity_token_file",
                    format!(
                        "{ENV_WEB_IDENTITY_TOKEN_FILE}: cannot read {}: {e}",
                        path.display()
                    ),
                )
            })?;
            path
        }
    };
    Ok(WebIdentity {
        role_arn,
        token_file,
        role_session_name: session_name(ctx, raw, Some(ENV_ROLE_SESSION_NAME))?,
        duration: duration(ctx, raw)?,
        sts_endpoint: sts_endpoint(ctx, raw, region)?,
    })
}

fn env_true(ctx: &CredCtx<'_>, name: &str) -> bool {
    ctx.env(name)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The SDKs' default chain, resolved at load (what is there at start decides):
/// environment keys → web identity from the environment → the shared credentials
/// file's profile → container credentials → instance metadata. `base_of` names the
/// type whose base identity this is (`assume_role`), for the messages.
fn default_chain(
    ctx: &mut CredCtx<'_>,
    region: &str,
    base_of: Option<&str>,
) -> Result<AwsCredentialConfig, ConfigError> {
    if let Some(keys) = env_keys(ctx) {
        return Ok(AwsCredentialConfig::AccessKey(keys));
    }
    let empty = RawCredentials::default();
    if ctx.env(ENV_ROLE_ARN).is_some() && ctx.env(ENV_WEB_IDENTITY_TOKEN_FILE).is_some() {
        return web_identity(ctx, &empty, region).map(AwsCredentialConfig::WebIdentity);
    }
    if let Some(keys) = shared_credentials_file(ctx)? {
        return Ok(AwsCredentialConfig::AccessKey(keys));
    }
    if let Some(container) = container(ctx)? {
        return Ok(AwsCredentialConfig::Container(container));
    }
    if env_true(ctx, ENV_IMDS_DISABLED) {
        let message = match base_of {
            None => format!(
                "no credentials found: no credentials block, {} / {} not set, {ENV_ROLE_ARN} / {ENV_WEB_IDENTITY_TOKEN_FILE} not set, no profile in the shared credentials file, no container credentials, and {ENV_IMDS_DISABLED}=true",
                ENV_KEYS[0], ENV_KEYS[1]
            ),
            Some(kind) => format!(
                "credentials type {kind} needs a base identity: access_key_id and access_key_secret (or {} and {}), or {ENV_ROLE_ARN} and {ENV_WEB_IDENTITY_TOKEN_FILE} (IRSA), a profile in the shared credentials file, container credentials ({ENV_CONTAINER_FULL_URI} or {ENV_CONTAINER_RELATIVE_URI}), or the instance role (unset {ENV_IMDS_DISABLED}=true)",
                ENV_KEYS[0], ENV_KEYS[1]
            ),
        };
        return Err(ctx.err(0, "access_key_id", message));
    }
    let what = match base_of {
        None => String::new(),
        Some(kind) => format!(" as the base identity of {kind}"),
    };
    ctx.warnings.push(format!(
        "{}: no credentials in a block, the environment, the shared credentials file or a container; using the EC2 instance role from IMDSv2{what} (set {ENV_IMDS_DISABLED}=true to make this an error)",
        ctx.label
    ));
    let endpoint = match ctx.env(ENV_IMDS_ENDPOINT) {
        Some(e) => {
            let e = e.trim().trim_end_matches('/').to_string();
            crate::credentials::config::validate_url(&e).map_err(|m| {
                ctx.err(0, "metadata_endpoint", format!("{ENV_IMDS_ENDPOINT}: {m}"))
            })?;
            e
        }
        None if ctx
            .env(ENV_IMDS_ENDPOINT_MODE)
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("ipv6")) =>
        {
            IMDS_ENDPOINT_IPV6.into()
        }
        None => IMDS_ENDPOINT.into(),
    };
    Ok(AwsCredentialConfig::Imds(Imds {
        endpoint,
        v1_fallback: !env_true(ctx, ENV_IMDS_V1_DISABLED),
    }))
}

/// The profile of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials`), named by `AWS_DEFAULT_PROFILE`, then `AWS_PROFILE` (botocore's
/// order), else `default`. `None` when there is no file, or no `default` section; a
/// profile named explicitly must exist.
fn shared_credentials_file(ctx: &mut CredCtx<'_>) -> Result<Option<StaticKeys>, ConfigError> {
    let (path, named_file) = match ctx.env(ENV_SHARED_CREDENTIALS_FILE) {
        Some(p) => (PathBuf::from(p.trim()), true),
        None => match ctx.env("HOME") {
            Some(home) => (
                Path::new(home.trim()).join(".aws").join("credentials"),
                false,
            ),
            None => return Ok(None),
        },
    };
    if !named_file && !path.is_file() {
        return Ok(None);
    }
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
    let named = ctx
        .env(ENV_DEFAULT_PROFILE)
        .or_else(|| ctx.env(ENV_PROFILE))
        .map(|p| p.trim().to_string());
    let profile = named.clone().unwrap_or_else(|| "default".into());
    let Some(section) = parsed.get(&profile) else {
        if named.is_some() {
            return Err(ctx.err(
                0,
                "type",
                format!("credentials file {shown} has no [{profile}] profile (named by {ENV_DEFAULT_PROFILE}/{ENV_PROFILE})"),
            ));
        }
        return Ok(None);
    };
    let get = |key: &str| section.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) else {
        return Err(ctx.err(
            0,
            "type",
            format!(
                "credentials file {shown} [{profile}]: aws_access_key_id and aws_secret_access_key are required"
            ),
        ));
    };
    Ok(Some(StaticKeys {
        access_key_id: SecretSource::Value(Secret::new(id)),
        access_key_secret: SecretSource::Value(Secret::new(secret)),
        security_token: get("aws_session_token")
            .or_else(|| get("aws_security_token"))
            .map(|t| SecretSource::Value(Secret::new(t))),
    }))
}

/// Hosts a full container credentials URI may name over plain http (§11.5).
pub fn container_host_allowed(url: &reqwest::Url) -> bool {
    if url.scheme() == "https" {
        return true;
    }
    if url.scheme() != "http" {
        return false;
    }
    if crate::transport::is_loopback(url) {
        return true;
    }
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    matches!(bare, "169.254.170.2" | "169.254.170.23" | "fd00:ec2::23")
}

fn container(ctx: &mut CredCtx<'_>) -> Result<Option<Container>, ConfigError> {
    let url = if let Some(rel) = ctx.env(ENV_CONTAINER_RELATIVE_URI) {
        format!("{CONTAINER_HOST}{}", rel.trim())
    } else if let Some(full) = ctx.env(ENV_CONTAINER_FULL_URI) {
        let full = full.trim().to_string();
        let ok = reqwest::Url::parse(&full).is_ok_and(|u| container_host_allowed(&u));
        if !ok {
            return Err(ctx.err(
                0,
                "type",
                format!("{ENV_CONTAINER_FULL_URI} must be https, or http to a loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23"),
            ));
        }
        full
    } else {
        return Ok(None);
    };
    let token_file = ctx
        .env(ENV_CONTAINER_TOKEN_FILE)
        .map(|p| PathBuf::from(p.trim()));
    let token = ctx.env(ENV_CONTAINER_TOKEN).map(|t| Secret::new(t.trim()));
    if token
        .as_ref()
        .is_some_and(|t| t.expose().contains(['\r', '\n']))
    {
        return Err(ctx.err(
            0,
            "type",
            format!("{ENV_CONTAINER_TOKEN} contains a line break"),
        ));
    }
    Ok(Some(Container {
        url,
        token_file,
        token,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_with(
        yaml: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<(AwsCredentialConfig, Vec<String>), ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        let raw: Option<RawCredentials> = yaml
            .map(|y| RawCredentials::new(serde_saphyr::from_str(y).expect("yaml parses as a map")));
        let mut warnings = Vec::new();
        let mut ctx = CredCtx {
            file: Path::new("exporter.yaml"),
            env: &lookup,
            warnings: &mut warnings,
            index: 0,
            label: "source \"aws\"".into(),
            line: 3,
            has_block: raw.is_some(),
        };
        let c = parse(&mut ctx, raw.as_ref())?;
        Ok((c, warnings))
    }

    #[test]
    fn each_type_parses_and_wrong_keys_name_their_line() -> Result<(), ConfigError> {
        let (c, _) = parse_with(Some("access_key_id: AKIA1\naccess_key_secret: s\n"), &[])?;
        assert_eq!(c.kind(), "access_key");
        let (c, _) = parse_with(
            Some(
                "type: assume_role\nrole_arn: arn:aws:iam::111122223333:role/reader\nexternal_id: ext-1\nduration: 15m\n",
            ),
            &[
                ("AWS_ACCESS_KEY_ID", "AKIA2"),
                ("AWS_SECRET_ACCESS_KEY", "s2"),
            ],
        )?;
        let AwsCredentialConfig::AssumeRole(a) = c else {
            panic!("assume_role")
        };
        assert_eq!(a.duration, Duration::from_secs(900));
        assert_eq!(a.sts_endpoint, "https://sts.us-east-1.amazonaws.com");
        assert_eq!(a.external_id.as_deref(), Some("ext-1"));
        let e = parse_with(Some("type: assume_role\nrole_arn: acs:ram::1:role/x\naccess_key_id: a\naccess_key_secret: b\n"), &[])
            .expect_err("bad arn");
        assert!(e.to_string().contains("role_arn"), "{e}");
        let e = parse_with(Some("type: access_key\nrole_arn: x\n"), &[]).expect_err("foreign key");
        assert_eq!(e.line, Some(2));
        let e = parse_with(
            Some("type: assume_role\nrole_arn: arn:aws:iam::111122223333:role/r\nduration: 13h\naccess_key_id: a\naccess_key_secret: b\n"),
            &[],
        )
        .expect_err("too long");
        assert!(e.to_string().contains("43200"), "{e}");
        Ok(())
    }

    /// Without base keys in the block or the environment, assume_role's base is the
    /// default chain (IRSA here): role chaining into another account.
    #[test]
    fn assume_role_without_keys_takes_the_default_chain_as_its_base() -> Result<(), ConfigError> {
        let dir = tempfile::tempdir().expect("dir");
        let token = dir.path().join("token");
        std::fs::write(&token, "jwt").expect("token");
        let tok = token.to_string_lossy().to_string();
        let block = "type: assume_role\nrole_arn: arn:aws:iam::444455556666:role/org-reader\nsts_endpoint: https://sts.eu-west-1.amazonaws.com\n";
        let (c, _) = parse_with(
            Some(block),
            &[
                ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/irsa"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", tok.as_str()),
            ],
        )?;
        assert_eq!(c.kind(), "assume_role");
        let AwsCredentialConfig::AssumeRole(a) = &c else {
            panic!("assume_role")
        };
        assert_eq!(a.role_arn, "arn:aws:iam::444455556666:role/org-reader");
        let AwsCredentialConfig::WebIdentity(w) = a.base.as_ref() else {
            panic!("web identity base, got {:?}", a.base.kind())
        };
        assert_eq!(w.role_arn, "arn:aws:iam::111122223333:role/irsa");
        // Both STS calls go to the endpoint the block names.
        assert_eq!(w.sts_endpoint, "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(
            c.token_endpoints(),
            vec![
                ("sts_endpoint", "https://sts.eu-west-1.amazonaws.com"),
                ("sts_endpoint", "https://sts.eu-west-1.amazonaws.com")
            ]
        );
        // Container credentials (EKS Pod Identity) as the base.
        let (c, _) = parse_with(
            Some(block),
            &[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            )],
        )?;
        let AwsCredentialConfig::AssumeRole(a) = &c else {
            panic!("assume_role")
        };
        assert_eq!(a.base.kind(), "container");
        // The instance role, with the chain's warning.
        let (c, warnings) = parse_with(Some(block), &[])?;
        let AwsCredentialConfig::AssumeRole(a) = &c else {
            panic!("assume_role")
        };
        assert_eq!(a.base.kind(), "imds");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // Nothing at all: an error naming what to set.
        let e =
            parse_with(Some(block), &[("AWS_EC2_METADATA_DISABLED", "true")]).expect_err("no base");
        let text = e.to_string();
        for needle in [
            "assume_role",
            "access_key_id and access_key_secret (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_EC2_METADATA_DISABLED=true",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        // Keys half given stay an error (not a fallback to the chain).
        let e = parse_with(
            Some("type: assume_role\nrole_arn: arn:aws:iam::444455556666:role/r\naccess_key_id: AKIA1\n"),
            &[("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/irsa"), ("AWS_WEB_IDENTITY_TOKEN_FILE", tok.as_str())],
        )
        .expect_err("half keys");
        assert!(e.to_string().contains("access_key_secret"), "{e}");
        Ok(())
    }

    #[test]
    fn the_default_chain_follows_the_sdk_order() -> Result<(), ConfigError> {
        let dir = std::env::temp_dir().join(format!("aws-creds-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).expect("dir");
        let token = dir.join("token");
        std::fs::write(&token, "jwt").expect("token");
        std::fs::write(
            dir.join(".aws/credentials"),
            "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = d\n[ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = o\naws_session_token = t\n",
        )
        .expect("file");
        let home = dir.to_string_lossy().to_string();
        let tok = token.to_string_lossy().to_string();
        let env_keys = [
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "e"),
        ];
        let web = [
            ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/irsa"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", tok.as_str()),
        ];
        // Environment first.
        let all: Vec<(&str, &str)> = env_keys
            .iter()
            .chain(&web)
            .copied()
            .chain([("HOME", home.as_str())])
            .collect();
        assert_eq!(parse_with(None, &all)?.0.kind(), "access_key");
        // Then web identity.
        let all: Vec<(&str, &str)> = web
            .iter()
            .copied()
            .chain([("HOME", home.as_str())])
            .collect();
        assert_eq!(parse_with(None, &all)?.0.kind(), "web_identity");
        // Then the profile (AWS_PROFILE).
        let (c, _) = parse_with(None, &[("HOME", home.as_str()), ("AWS_PROFILE", "ops")])?;
        let AwsCredentialConfig::AccessKey(k) = c else {
            panic!("keys")
        };
        assert_eq!(k.access_key_id, SecretSource::Value(Secret::new("AKIAOPS")));
        assert!(k.security_token.is_some());
        let e = parse_with(None, &[("HOME", home.as_str()), ("AWS_PROFILE", "nope")])
            .expect_err("named");
        assert!(e.to_string().contains("[nope]"), "{e}");
        // Then container credentials, then IMDS (with a warning).
        let (c, _) = parse_with(
            None,
            &[(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/abc",
            )],
        )?;
        assert_eq!(
            c.container_url(),
            Some("http://169.254.170.2/v2/credentials/abc")
        );
        let e = parse_with(
            None,
            &[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://evil.example/creds",
            )],
        )
        .expect_err("host not allowed");
        assert!(e.to_string().contains("169.254.170.2"), "{e}");
        let (c, warnings) = parse_with(None, &[])?;
        assert_eq!(c.kind(), "imds");
        assert_eq!(warnings.len(), 1);
        assert!(parse_with(None, &[("AWS_EC2_METADATA_DISABLED", "true")]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
