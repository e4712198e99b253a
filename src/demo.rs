//! `--demo`: a simulated cloud in-process, and sources pointing at it.

use crate::config::{AlibabaSignature, Config, SourceConfig, View};
use crate::model::Provider;
use crate::secret::{Credentials, Secret};
use crate::sim::{self, Dataset, Sim, SimServer, Tenant, data};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const ALIBABA_AK: &str = "LTAIdemoAlibaba00001";
pub const ALIBABA_SECRET: &str = "demo-alibaba-secret-not-real";
/// The role the `alibaba-account` demo source assumes through the simulated STS.
pub const ALIBABA_ROLE_ARN: &str = "acs:ram::1000000000000001:role/handshake-demo";
pub const HUAWEI_AK: &str = "HWDEMOAK000000000001";
pub const HUAWEI_SECRET: &str = "demo-huawei-secret-not-real";
pub const HUAWEI_DOMAIN: &str = "3f1b6a9c2e4d4f7b8a0c1d2e3f4a5b6c";

/// Tenants the demo (and `handshake_exporter sim`) serve.
pub fn populate(sim: &Sim) {
    let now = chrono::Utc::now();
    let mut ali = Tenant::new(ALIBABA_AK, ALIBABA_SECRET);
    ali.datasets.insert(
        Dataset::AlibabaResourceDirectory,
        data::generate(Dataset::AlibabaResourceDirectory, 180, 1, now),
    );
    ali.datasets.insert(
        Dataset::AlibabaAccount,
        data::generate(Dataset::AlibabaAccount, 12, 2, now),
    );
    sim.add_tenant(ali);
    sim.with_alibaba_identity(|id| {
        id.roles.insert(
            ALIBABA_ROLE_ARN.into(),
            crate::sim::alibaba_identity::Role {
                tenant: ALIBABA_AK.into(),
                ..Default::default()
            },
        );
    });
    let mut hw = Tenant::new(HUAWEI_AK, HUAWEI_SECRET);
    hw.datasets.insert(
        Dataset::HuaweiSent,
        data::generate(Dataset::HuaweiSent, 90, 3, now),
    );
    hw.datasets.insert(
        Dataset::HuaweiReceived,
        data::generate(Dataset::HuaweiReceived, 9, 4, now),
    );
    sim.add_tenant(hw);
}

fn source(
    name: &str,
    provider: Provider,
    view: View,
    endpoint: &str,
    signature: AlibabaSignature,
) -> SourceConfig {
    let (ak, sk, domain) = match provider {
        Provider::Alibaba => (ALIBABA_AK, ALIBABA_SECRET, None),
        Provider::Huawei => (HUAWEI_AK, HUAWEI_SECRET, Some(HUAWEI_DOMAIN.to_string())),
    };
    SourceConfig {
        name: name.into(),
        provider,
        view,
        handshake_ids: Vec::new(),
        endpoint: endpoint.into(),
        signature,
        page_size: match provider {
            Provider::Alibaba => crate::config::ALIBABA_MAX_PAGE_SIZE,
            Provider::Huawei => crate::config::HUAWEI_MAX_LIMIT,
        },
        credentials: Credentials {
            access_key_id: ak.into(),
            access_key_secret: Secret::new(sk),
            security_token: None,
            domain_id: domain,
        }
        .into(),
        rate_limit: None,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        line: 0,
    }
}

/// The demo configuration against a simulator at `endpoint`: both Alibaba views (one
/// signed V3, one V1) and both Huawei views.
pub fn config(endpoint: &str) -> Config {
    let mut c = Config::with_sources(vec![
        source(
            "alibaba-rd",
            Provider::Alibaba,
            View::ResourceDirectory,
            endpoint,
            AlibabaSignature::V3,
        ),
        source(
            "alibaba-account",
            Provider::Alibaba,
            View::Account,
            endpoint,
            AlibabaSignature::V1,
        ),
        source(
            "huawei-sent",
            Provider::Huawei,
            View::Sent,
            endpoint,
            AlibabaSignature::V3,
        ),
        source(
            "huawei-received",
            Provider::Huawei,
            View::Received,
            endpoint,
            AlibabaSignature::V3,
        ),
    ]);
    // One Alibaba source gets temporary keys from the simulated STS (AssumeRole
    // signed with the demo key), so the demo shows credential rotation too.
    if let Some(account) = c.sources.iter_mut().find(|s| s.name == "alibaba-account") {
        use crate::credentials::{CredentialConfig, SecretSource, StaticKeys};
        use crate::provider::alibaba::credentials as ali;
        account.credentials =
            CredentialConfig::Alibaba(ali::AlibabaCredentialConfig::RamRoleArn(ali::RamRoleArn {
                base: StaticKeys {
                    access_key_id: SecretSource::Value(Secret::new(ALIBABA_AK)),
                    access_key_secret: SecretSource::Value(Secret::new(ALIBABA_SECRET)),
                    security_token: None,
                },
                role_arn: ALIBABA_ROLE_ARN.into(),
                role_session_name: ali::DEFAULT_ROLE_SESSION_NAME.into(),
                external_id: None,
                policy: None,
                duration: ali::DEFAULT_DURATION,
                sts_endpoint: endpoint.trim_end_matches('/').to_string(),
            }));
    }
    c.refresh_interval = Duration::from_secs(30);
    c
}

/// Start a populated simulator on loopback.
pub async fn start_sim(addr: SocketAddr) -> std::io::Result<SimServer> {
    let s = Sim::new();
    populate(&s);
    sim::start(Arc::clone(&s), addr).await
}
