//! What the rest of the exporter knows about Alibaba: its configuration section,
//! views, target types, client, simulator and demo sources.

use super::credentials as creds;
use crate::config::{ConfigError, SourceConfig, SourceCtx};
use crate::credentials::{CredCtx, CredentialConfig, RawCredentials, SecretSource, StaticKeys};
use crate::model::{Provider, TargetType};
use crate::provider::{HandshakeProvider, ProviderKind, Section, Settings};
use crate::secret::{Credentials, Secret};
use crate::transport::Transport;
use std::sync::Arc;
use std::time::Duration;

/// Default endpoint (one host serves every region).
pub const DEFAULT_ENDPOINT: &str = "https://resourcemanager.aliyuncs.com";
/// Alibaba's maximum (and our default) PageSize.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Signature algorithm of a source (`signature:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlibabaSignature {
    /// ACS3-HMAC-SHA256, what the official SDK uses by default.
    #[default]
    V3,
    /// Classic RPC HMAC-SHA1 (`SignatureVersion=1.0`).
    V1,
}

/// Alibaba's own keys of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AlibabaSettings {
    pub signature: AlibabaSignature,
}

impl AlibabaSettings {
    /// A source's settings (defaults for a source built without them).
    pub fn of(source: &SourceConfig) -> AlibabaSettings {
        source
            .settings
            .get::<AlibabaSettings>()
            .copied()
            .unwrap_or_default()
    }
}

pub struct AlibabaKind;

/// Alibaba Cloud Resource Manager.
pub static KIND: AlibabaKind = AlibabaKind;

pub const DEMO_AK: &str = "LTAIdemoAlibaba00001";
pub const DEMO_SECRET: &str = "demo-alibaba-secret-not-real";
/// The role the `alibaba-account` demo source assumes through the simulated STS.
pub const DEMO_ROLE_ARN: &str = "acs:ram::1000000000000001:role/handshake-demo";

impl ProviderKind for AlibabaKind {
    fn name(&self) -> &'static str {
        "alibaba"
    }

    fn views(&self) -> &'static [&'static str] {
        &["resource_directory", "account", "ids"]
    }

    fn known_target_types(&self) -> &'static [TargetType] {
        &[TargetType::Account, TargetType::Email]
    }

    fn source_keys(&self) -> &'static [&'static str] {
        &["signature", "page_size"]
    }

    fn parse_section(&self, ctx: &mut SourceCtx<'_, '_>) -> Result<Section, ConfigError> {
        let signature = match ctx.choice("signature", &["v3", "v1"], "v3")? {
            "v1" => AlibabaSignature::V1,
            _ => AlibabaSignature::V3,
        };
        Ok(Section {
            page_size: ctx.uint("page_size", 1, MAX_PAGE_SIZE, MAX_PAGE_SIZE)?,
            default_endpoint: DEFAULT_ENDPOINT.into(),
            settings: Settings::new(AlibabaSettings { signature }),
        })
    }

    fn default_section(&self) -> Section {
        Section {
            page_size: MAX_PAGE_SIZE,
            default_endpoint: DEFAULT_ENDPOINT.into(),
            settings: Settings::new(AlibabaSettings::default()),
        }
    }

    fn parse_credentials(
        &self,
        ctx: &mut CredCtx<'_>,
        raw: Option<&RawCredentials>,
        _section: &Section,
    ) -> Result<CredentialConfig, ConfigError> {
        creds::parse(ctx, raw).map(CredentialConfig::provider)
    }

    fn build(&self, source: &SourceConfig, transport: Transport) -> Arc<dyn HandshakeProvider> {
        Arc::new(super::AlibabaClient::new(source, transport))
    }

    fn sim(&self) -> &'static dyn crate::sim::SimProvider {
        &crate::sim::alibaba::SIM
    }

    fn demo(&self, sim: &crate::sim::Sim, endpoint: &str) -> Vec<SourceConfig> {
        use crate::sim::{Dataset, Tenant, data};
        let now = chrono::Utc::now();
        let mut tenant = Tenant::new(DEMO_AK, DEMO_SECRET);
        for (dataset, n, seed) in [
            (Dataset::AlibabaResourceDirectory, 180, 1),
            (Dataset::AlibabaAccount, 12, 2),
        ] {
            tenant
                .datasets
                .insert(dataset, data::generate(dataset, n, seed, now));
        }
        sim.add_tenant(tenant);
        sim.with_alibaba_identity(|id| {
            id.roles.insert(
                DEMO_ROLE_ARN.into(),
                crate::sim::alibaba_identity::Role {
                    tenant: DEMO_AK.into(),
                    ..Default::default()
                },
            );
        });
        let keys = Credentials {
            access_key_id: DEMO_AK.into(),
            access_key_secret: Secret::new(DEMO_SECRET),
            security_token: None,
            domain_id: None,
        };
        let rd = SourceConfig::new(Provider::Alibaba, "alibaba-rd", endpoint, keys);
        // The account view signs with V1 and gets temporary keys from the simulated
        // STS (AssumeRole signed with the demo key): the demo shows both signatures
        // and credential rotation.
        let mut account = SourceConfig::new(
            Provider::Alibaba,
            "alibaba-account",
            endpoint,
            CredentialConfig::provider(creds::AlibabaCredentialConfig::RamRoleArn(
                creds::RamRoleArn {
                    base: StaticKeys {
                        access_key_id: SecretSource::Value(Secret::new(DEMO_AK)),
                        access_key_secret: SecretSource::Value(Secret::new(DEMO_SECRET)),
                        security_token: None,
                    },
                    role_arn: DEMO_ROLE_ARN.into(),
                    role_session_name: creds::DEFAULT_ROLE_SESSION_NAME.into(),
                    external_id: None,
                    policy: None,
                    duration: creds::DEFAULT_DURATION,
                    sts_endpoint: endpoint.trim_end_matches('/').to_string(),
                },
            )),
        )
        .with_view("account", &[]);
        account.settings = Settings::new(AlibabaSettings {
            signature: AlibabaSignature::V1,
        });
        [rd, account]
            .into_iter()
            .map(|mut s| {
                s.connect_timeout = Duration::from_secs(2);
                s.request_timeout = Duration::from_secs(5);
                s
            })
            .collect()
    }
}
