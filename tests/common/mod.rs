//! Set-up shared by the test binaries that drive a provider client against the
//! in-process simulator over loopback (`alibaba_sim`, `aws_sim`, `huawei_sim`,
//! `huawei_identity`): the simulator, a source, a transport.
//!
//! Sources are built here and only here ([`source_config`]), so that a change in
//! how a `SourceConfig` is put together touches one place, not every test.

#![allow(dead_code)]

use handshake_exporter::config::{SourceConfig, View};
use handshake_exporter::credentials::CredentialConfig;
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::model::Provider;
use handshake_exporter::provider::Settings;
use handshake_exporter::sim::{self, Dataset, Sim, SimServer, Tenant, data};
use handshake_exporter::transport::{RetryPolicy, Transport, TransportSettings};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Start `sim` on 127.0.0.1. The crypto provider is installed first: reqwest is built
/// without one (`rustls-no-provider`), even for plain-HTTP clients.
pub async fn start_sim(sim: Arc<Sim>) -> Result<SimServer, std::io::Error> {
    handshake_exporter::init_crypto();
    sim::start(sim, ([127, 0, 0, 1], 0).into()).await
}

/// A tenant holding `n` generated invitations per `(dataset, n, seed)`, all generated
/// at the same instant.
pub fn tenant(ak: &str, secret: &str, sets: &[(Dataset, usize, u64)]) -> Tenant {
    let mut t = Tenant::new(ak, secret);
    let now = chrono::Utc::now();
    for (dataset, n, seed) in sets {
        t.datasets
            .insert(*dataset, data::generate(*dataset, *n, *seed, now));
    }
    t
}

/// What the tests vary in a source.
pub struct SourceParams {
    pub provider: Provider,
    pub name: String,
    pub view: View,
    pub handshake_ids: Vec<String>,
    pub endpoint: String,
    pub credentials: CredentialConfig,
    /// Alibaba PageSize or Huawei limit.
    pub page_size: u32,
    /// The provider's own settings (Alibaba's signature); `None`: its defaults.
    pub settings: Option<Settings>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// A source as the configuration loader would produce it (no rate limit; line 0).
pub fn source_config(p: SourceParams) -> SourceConfig {
    let mut source = SourceConfig::new(p.provider, &p.name, &p.endpoint, p.credentials);
    source.view = p.view;
    source.handshake_ids = p.handshake_ids;
    source.page_size = p.page_size;
    if let Some(settings) = p.settings {
        source.settings = settings;
    }
    source.connect_timeout = p.connect_timeout;
    source.request_timeout = p.request_timeout;
    source
}

/// How a test's transport differs from the exporter's: short retry waits keep the
/// retry tests fast (the policy itself is the transport's), and its own outbound cap.
pub struct TransportParams {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub outbound: usize,
}

/// A transport for source `name`, counting into `metrics`; no rate limit.
pub fn transport(
    provider: Provider,
    name: &str,
    t: TransportParams,
    metrics: Arc<ExporterMetrics>,
) -> Result<Transport, String> {
    Transport::new(
        provider,
        name.into(),
        TransportSettings {
            connect_timeout: t.connect_timeout,
            request_timeout: t.request_timeout,
            rate_limit: None,
            retry: t.retry,
        },
        metrics,
        Arc::new(Semaphore::new(t.outbound)),
    )
}
