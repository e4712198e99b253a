//! Alibaba Cloud credentials as alibabacloud-credentials resolves them
//! (aliyun/credentials-go `providers/*.go`; Python `alibabacloud_credentials/provider`):
//! `access_key`, `ram_role_arn` (STS AssumeRole), `oidc_role_arn` (ACK RRSA, STS
//! AssumeRoleWithOIDC), `ecs_ram_role` (the instance metadata service), and the
//! `default` chain. See `shared/reference/credentials.md`.

use crate::config::ConfigError;
use crate::credentials::{
    CredCtx, CredentialConfig, CredentialFetcher, FixedFetcher, RawCredentials, StaticKeyFetcher,
    StaticKeys,
};

/// Environment variables of the static key, as the SDK reads them.
pub const ENV_KEYS: [&str; 3] = [
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
];

/// The credential types of `provider: alibaba`.
pub const TYPES: [&str; 5] = [
    "access_key",
    "ram_role_arn",
    "oidc_role_arn",
    "ecs_ram_role",
    "default",
];

/// A validated Alibaba credentials block (the `default` chain is resolved to one
/// of these at load).
#[derive(Clone, Debug, PartialEq)]
pub enum AlibabaCredentialConfig {
    AccessKey(StaticKeys),
}

impl AlibabaCredentialConfig {
    /// The `type` it came from, for the landing page and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AlibabaCredentialConfig::AccessKey(_) => "access_key",
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
            ctx.only(
                raw,
                "access_key",
                &[
                    "access_key_id",
                    "access_key_id_file",
                    "access_key_secret",
                    "access_key_secret_file",
                    "security_token",
                    "security_token_file",
                ],
            )?;
            Ok(AlibabaCredentialConfig::AccessKey(ctx.static_keys(raw)?))
        }
        "default" => {
            ctx.only(raw, "default", &[])?;
            default_chain(ctx)
        }
        other => Err(ctx.err(
            raw.kind.as_ref().map_or(0, |k| k.referenced.line()),
            "type",
            format!("credentials type {other} is not supported yet"),
        )),
    }
}

/// The SDK's default chain, resolved at load: environment → OIDC (RRSA) → the
/// credentials file → the ECS RAM role.
fn default_chain(ctx: &mut CredCtx<'_>) -> Result<AlibabaCredentialConfig, ConfigError> {
    if let Some(keys) = ctx.env_keys(ENV_KEYS) {
        return Ok(AlibabaCredentialConfig::AccessKey(keys));
    }
    Err(ctx.err(
        0,
        "access_key_id",
        format!(
            "access key id missing (no credentials block, and {} / {} are not set)",
            ENV_KEYS[0], ENV_KEYS[1]
        ),
    ))
}

/// The fetcher for a source's credentials.
pub fn fetcher(config: &CredentialConfig) -> Box<dyn CredentialFetcher> {
    match config {
        CredentialConfig::Alibaba(AlibabaCredentialConfig::AccessKey(keys)) => {
            Box::new(StaticKeyFetcher::new(keys.clone(), None))
        }
        CredentialConfig::Static(c) => Box::new(FixedFetcher(c.clone())),
        // A Huawei block on an Alibaba source cannot come out of the parser.
        CredentialConfig::Huawei(_) => Box::new(crate::credentials::Misconfigured),
    }
}
