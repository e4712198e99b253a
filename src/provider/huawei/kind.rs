//! What the rest of the exporter knows about Huawei: its configuration section,
//! views, target types, client, simulator and demo sources.

use super::credentials as creds;
use crate::config::{ConfigError, SourceConfig, SourceCtx};
use crate::credentials::{CredCtx, CredentialConfig, RawCredentials};
use crate::model::{Provider, TargetType};
use crate::provider::{HandshakeProvider, ProviderKind, Section, Settings};
use crate::secret::{Credentials, Secret};
use crate::transport::Transport;
use std::sync::Arc;
use std::time::Duration;

/// Default endpoint (Organizations is a global service).
pub const DEFAULT_ENDPOINT: &str = "https://organizations.myhuaweicloud.com";
/// Huawei's documented maximum (and our default) `limit`.
pub const MAX_LIMIT: u32 = 2000;

pub const DEMO_AK: &str = "HWDEMOAK000000000001";
pub const DEMO_SECRET: &str = "demo-huawei-secret-not-real";
pub const DEMO_DOMAIN: &str = "3f1b6a9c2e4d4f7b8a0c1d2e3f4a5b6c";

pub struct HuaweiKind;

/// Huawei Cloud Organizations.
pub static KIND: HuaweiKind = HuaweiKind;

impl ProviderKind for HuaweiKind {
    fn name(&self) -> &'static str {
        "huawei"
    }

    fn views(&self) -> &'static [&'static str] {
        &["sent", "received", "ids"]
    }

    fn known_target_types(&self) -> &'static [TargetType] {
        &[TargetType::Account, TargetType::Name]
    }

    fn source_keys(&self) -> &'static [&'static str] {
        &["limit"]
    }

    fn parse_section(&self, ctx: &mut SourceCtx<'_, '_>) -> Result<Section, ConfigError> {
        Ok(Section {
            page_size: ctx.uint("limit", 1, MAX_LIMIT, MAX_LIMIT)?,
            ..self.default_section()
        })
    }

    fn default_section(&self) -> Section {
        Section {
            page_size: MAX_LIMIT,
            default_endpoint: DEFAULT_ENDPOINT.into(),
            settings: Settings::default(),
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
        Arc::new(super::HuaweiClient::new(source, transport))
    }

    fn sim(&self) -> &'static dyn crate::sim::SimProvider {
        &crate::sim::huawei::SIM
    }

    fn demo(&self, sim: &crate::sim::Sim, endpoint: &str) -> Vec<SourceConfig> {
        use crate::sim::{Dataset, Tenant, data};
        let now = chrono::Utc::now();
        let mut tenant = Tenant::new(DEMO_AK, DEMO_SECRET);
        for (dataset, n, seed) in [
            (Dataset::HuaweiSent, 90, 3),
            (Dataset::HuaweiReceived, 9, 4),
        ] {
            tenant
                .datasets
                .insert(dataset, data::generate(dataset, n, seed, now));
        }
        sim.add_tenant(tenant);
        let keys = Credentials {
            access_key_id: DEMO_AK.into(),
            access_key_secret: Secret::new(DEMO_SECRET),
            security_token: None,
            domain_id: Some(DEMO_DOMAIN.into()),
        };
        [("huawei-sent", "sent"), ("huawei-received", "received")]
            .into_iter()
            .map(|(name, view)| {
                let mut s = SourceConfig::new(Provider::Huawei, name, endpoint, keys.clone())
                    .with_view(view, &[]);
                s.connect_timeout = Duration::from_secs(2);
                s.request_timeout = Duration::from_secs(5);
                s
            })
            .collect()
    }
}
