//! Huawei Cloud credentials as huaweicloudsdkcore resolves them
//! (`huaweicloudsdkcore/auth/{provider,internal,credentials}.py`,
//! huaweicloud-sdk-go-v3 `core/auth`): `access_key`, `metadata` (the ECS agency's
//! temporary keys), `federated` (CCE workload identity: id token → IAM token →
//! temporary keys), and the `default` chain. Organizations takes global
//! credentials: `domain_id` is sent as `X-Domain-Id`. See
//! `shared/reference/credentials.md`.

use crate::config::ConfigError;
use crate::credentials::{
    CredCtx, CredentialConfig, CredentialFetcher, FixedFetcher, RawCredentials, SecretSource,
    StaticKeyFetcher, StaticKeys,
};

/// Environment variables of the static key and domain, as the SDK reads them.
pub const ENV_KEYS: [&str; 3] = [
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
];
pub const ENV_DOMAIN_ID: &str = "HUAWEICLOUD_SDK_DOMAIN_ID";

/// The credential types of `provider: huawei`.
pub const TYPES: [&str; 4] = ["access_key", "metadata", "federated", "default"];

/// How the keys are obtained.
#[derive(Clone, Debug, PartialEq)]
pub enum HuaweiIdentity {
    AccessKey(StaticKeys),
}

/// A validated Huawei credentials block: the identity plus what belongs to every
/// type (`domain_id`, `iam_endpoint`).
#[derive(Clone, Debug, PartialEq)]
pub struct HuaweiCredentialConfig {
    pub identity: HuaweiIdentity,
    pub domain_id: Option<SecretSource>,
    /// Set explicitly (or by default when the Organizations endpoint is the default
    /// one): where `domain_id` is looked up when absent.
    pub iam_endpoint: Option<String>,
}

impl HuaweiCredentialConfig {
    pub fn kind(&self) -> &'static str {
        match self.identity {
            HuaweiIdentity::AccessKey(_) => "access_key",
        }
    }
}

/// Keys every Huawei type takes.
const COMMON: [&str; 3] = ["domain_id", "domain_id_file", "iam_endpoint"];

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
    let identity = match kind.as_str() {
        "access_key" => {
            ctx.only(
                raw,
                "access_key",
                &with_common(&[
                    "access_key_id",
                    "access_key_id_file",
                    "access_key_secret",
                    "access_key_secret_file",
                    "security_token",
                    "security_token_file",
                ]),
            )?;
            HuaweiIdentity::AccessKey(ctx.static_keys(raw)?)
        }
        "default" => {
            ctx.only(raw, "default", &with_common(&[]))?;
            match ctx.env_keys(ENV_KEYS) {
                Some(keys) => HuaweiIdentity::AccessKey(keys),
                None => {
                    return Err(ctx.err(
                        0,
                        "access_key_id",
                        format!(
                            "access key id missing (no credentials block, and {} / {} are not set)",
                            ENV_KEYS[0], ENV_KEYS[1]
                        ),
                    ));
                }
            }
        }
        other => {
            return Err(ctx.err(
                raw.kind.as_ref().map_or(0, |k| k.referenced.line()),
                "type",
                format!("credentials type {other} is not supported yet"),
            ));
        }
    };
    let mut domain_id = ctx.secret("domain_id", &raw.domain_id, &raw.domain_id_file)?;
    if domain_id.is_none() && !ctx.has_block {
        domain_id = ctx
            .env(ENV_DOMAIN_ID)
            .map(|d| SecretSource::Value(crate::secret::Secret::new(d.trim())));
    }
    let iam_endpoint = ctx.endpoint(&raw.iam_endpoint, "iam_endpoint")?;
    Ok(HuaweiCredentialConfig {
        identity,
        domain_id,
        iam_endpoint,
    })
}

/// The fetcher for a source's credentials.
pub fn fetcher(config: &CredentialConfig) -> Box<dyn CredentialFetcher> {
    match config {
        CredentialConfig::Huawei(HuaweiCredentialConfig {
            identity: HuaweiIdentity::AccessKey(keys),
            domain_id,
            ..
        }) => Box::new(StaticKeyFetcher::new(keys.clone(), domain_id.clone())),
        CredentialConfig::Static(c) => Box::new(FixedFetcher(c.clone())),
        CredentialConfig::Alibaba(_) => Box::new(crate::credentials::Misconfigured),
    }
}
