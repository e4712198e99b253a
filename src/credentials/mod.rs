//! Provider-neutral credential machinery: where keys come from (inline, `<key>_file`,
//! environment), the cache that refreshes temporary credentials before they lapse,
//! and the helpers both providers' configuration parsers share.
//!
//! Each provider owns its credential *types* (Alibaba: `ram_role_arn`,
//! `oidc_role_arn`, `ecs_ram_role`; Huawei: `metadata`, `federated`) in
//! `src/provider/<cloud>/credentials.rs`; they implement [`CredentialFetcher`] and
//! get caching, single-flight, refresh timing and the expiry metric from
//! [`CredentialCache`].

pub mod config;
pub mod file;
pub mod ini;

pub use config::{CredCtx, RawCredentials};
pub use file::WatchedFile;

use crate::error::{ApiError, Reason};
use crate::metrics::ExporterMetrics;
use crate::model::Provider;
use crate::secret::{Credentials, Secret};
use crate::transport::Transport;
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A source's credential settings, validated. Compared by [`PartialEq`] on reload:
/// an unchanged block keeps the source's cache (paths are compared, not file
/// contents, so a rotated file never drops the cache).
#[derive(Clone, Debug)]
pub enum CredentialConfig {
    /// Keys fixed in code (tests, `--demo`): used exactly as given.
    Static(Credentials),
    /// A provider's own credential types (`access_key`, roles, metadata, …).
    Provider(Arc<dyn ProviderCredentials>),
}

/// A provider's validated credentials block, carried through provider-neutral code;
/// the provider reads it back with [`CredentialConfig::provider_config`].
pub trait ProviderCredentials: crate::provider::DynValue {
    /// The configured `type`, for the landing page and logs.
    fn kind(&self) -> &'static str;

    /// Identity-service endpoints (STS, IAM) that receive keys, signed requests or
    /// tokens, by config key.
    fn token_endpoints(&self) -> Vec<(&'static str, &str)>;

    /// Static keys read now (files from disk), for tests of the configuration
    /// parser; `None` for types that fetch their keys.
    fn read_static(&self) -> Option<Credentials> {
        None
    }

    /// A configured account/domain id that is not a secret (Huawei's `domain_id`).
    fn domain_id(&self) -> Option<String> {
        None
    }
}

impl PartialEq for CredentialConfig {
    fn eq(&self, other: &CredentialConfig) -> bool {
        match (self, other) {
            (CredentialConfig::Static(a), CredentialConfig::Static(b)) => a == b,
            (CredentialConfig::Provider(a), CredentialConfig::Provider(b)) => a.same_as(b.as_any()),
            _ => false,
        }
    }
}

impl From<Credentials> for CredentialConfig {
    fn from(c: Credentials) -> Self {
        CredentialConfig::Static(c)
    }
}

/// Where one secret value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretSource {
    /// Inline in the configuration, or read from the environment at load.
    Value(Secret),
    /// Read from a file, and read again whenever the file changes (Kubernetes
    /// rotates mounted secrets and projected tokens in place).
    File(PathBuf),
}

/// A static access key: `type: access_key` of both providers.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticKeys {
    pub access_key_id: SecretSource,
    pub access_key_secret: SecretSource,
    pub security_token: Option<SecretSource>,
}

/// Credentials with the time they were obtained and when they lapse.
#[derive(Clone, Debug)]
pub struct Issued {
    pub credentials: Credentials,
    /// Unix seconds; `None` for keys that do not expire.
    pub expires_at: Option<f64>,
    /// Unix seconds, when they were fetched.
    pub obtained_at: f64,
}

/// Refresh margin cap: the SDKs refresh when 15 minutes remain.
pub const MAX_REFRESH_MARGIN_SECS: f64 = 15.0 * 60.0;
/// Credentials this close to their expiry are no longer sent: a request signed a
/// second before expiry can arrive after it. (A tenth of the lifetime when that is
/// shorter, so that tests can run with credentials of a few seconds.)
pub const EXPIRY_SKEW_SECS: f64 = 5.0;
/// After a failed refresh while the current credentials are still valid, wait this
/// long before trying again, so that an STS outage costs one call per interval, not
/// one per API request.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

impl Issued {
    /// Keys that never expire.
    pub fn permanent(credentials: Credentials, now: f64) -> Issued {
        Issued {
            credentials,
            expires_at: None,
            obtained_at: now,
        }
    }

    /// Whether they may still be sent at `now`.
    pub fn valid_at(&self, now: f64) -> bool {
        self.expires_at.is_none_or(|e| {
            let skew = ((e - self.obtained_at) / 10.0).clamp(0.0, EXPIRY_SKEW_SECS);
            e - now > skew
        })
    }

    /// Whether a refresh is due: less than 15 minutes or half their lifetime left,
    /// whichever is shorter. The SDKs' fixed 15 minutes would make an STS call for
    /// every request with 15-minute credentials; half the lifetime bounds it to at
    /// most two fetches per lifetime.
    pub fn refresh_due(&self, now: f64) -> bool {
        match self.expires_at {
            None => false,
            Some(expires) => {
                let lifetime = (expires - self.obtained_at).max(0.0);
                let margin = (lifetime / 2.0).min(MAX_REFRESH_MARGIN_SECS);
                expires - now < margin
            }
        }
    }
}

/// One way of obtaining credentials (a static key, AssumeRole, the metadata
/// service, …). Implementations live in the provider folders.
#[async_trait]
pub trait CredentialFetcher: Send + Sync {
    /// The configured `type` (`access_key`, `ram_role_arn`, …), for logs, the landing
    /// page and errors.
    fn kind(&self) -> &'static str;

    /// Whether what the last fetch returned may be out of date for a reason other
    /// than its expiry (a key file changed on disk). Cheap: called for every request.
    fn changed(&self) -> bool {
        false
    }

    /// Obtain credentials. Network calls go through `transport` (deadlines, retries,
    /// the outbound cap, `handshake_api_requests_total`). Errors never carry secrets.
    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError>;
}

/// What the landing page and logs may show about a source's credentials.
#[derive(Clone, Debug, PartialEq)]
pub struct CredentialStatus {
    pub kind: &'static str,
    /// Unix seconds; `None` for static keys or before the first fetch.
    pub expires_at: Option<f64>,
}

#[derive(Default)]
struct CacheState {
    current: Option<Arc<Issued>>,
    /// When the last failed fetch ended, to space out retries.
    last_failure: Option<Instant>,
}

/// Caches one source's credentials, refreshes them before they lapse (one fetch at
/// a time however many requests need them), keeps using valid ones when a refresh
/// fails, and publishes `handshake_source_credentials_expiry_timestamp_seconds`.
pub struct CredentialCache {
    fetcher: Box<dyn CredentialFetcher>,
    state: Mutex<CacheState>,
    refresh: tokio::sync::Mutex<()>,
    metrics: Arc<ExporterMetrics>,
    provider: Provider,
    source: Arc<str>,
}

impl CredentialCache {
    pub fn new(
        fetcher: Box<dyn CredentialFetcher>,
        metrics: Arc<ExporterMetrics>,
        provider: Provider,
        source: Arc<str>,
    ) -> CredentialCache {
        CredentialCache {
            fetcher,
            state: Mutex::new(CacheState::default()),
            refresh: tokio::sync::Mutex::new(()),
            metrics,
            provider,
            source,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> CredentialStatus {
        CredentialStatus {
            kind: self.fetcher.kind(),
            expires_at: self.lock().current.as_ref().and_then(|c| c.expires_at),
        }
    }

    /// Credentials to sign the next request with.
    pub async fn get(
        &self,
        transport: &Transport,
        deadline: Instant,
        action: &'static str,
    ) -> Result<Arc<Issued>, ApiError> {
        if let Some(usable) = self.usable_without_fetch(crate::clock::unix_now()) {
            return Ok(usable);
        }
        // Single flight: whoever waited here finds the credentials another request
        // just fetched.
        let _guard = match tokio::time::timeout_at(deadline, self.refresh.lock()).await {
            Ok(g) => g,
            Err(_) => {
                return Err(ApiError::new(
                    Reason::Timeout,
                    action,
                    "no credentials before the deadline (a credential refresh is still running)",
                ));
            }
        };
        let now = crate::clock::unix_now();
        if let Some(usable) = self.usable_without_fetch(now) {
            return Ok(usable);
        }
        let (current, backing_off) = {
            let st = self.lock();
            let backing_off = st
                .last_failure
                .is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE);
            (st.current.clone(), backing_off)
        };
        if let Some(c) = current.as_ref().filter(|c| c.valid_at(now))
            && backing_off
        {
            return Ok(c.clone());
        }
        let fetched = match tokio::time::timeout_at(
            deadline,
            self.fetcher.fetch(transport, deadline),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(ApiError::new(
                Reason::Timeout,
                action,
                "credential refresh did not finish before the deadline",
            )),
        };
        match fetched {
            Ok(issued) => {
                let issued = Arc::new(issued);
                tracing::info!(
                    source = %self.source,
                    credentials = self.fetcher.kind(),
                    expires_at = issued.expires_at.map(format_unix).unwrap_or_default(),
                    "credentials obtained"
                );
                if let Some(e) = issued.expires_at {
                    self.metrics
                        .credentials_expiry
                        .with_label_values(&[self.provider.as_str(), &self.source])
                        .set(e);
                }
                let mut st = self.lock();
                st.current = Some(issued.clone());
                st.last_failure = None;
                Ok(issued)
            }
            Err(e) => {
                self.lock().last_failure = Some(Instant::now());
                // Checked again now: a refresh that failed after retries may have
                // outlived the current credentials, which must not be sent then.
                let after = crate::clock::unix_now();
                match current.filter(|c| c.valid_at(after)) {
                    Some(c) => {
                        tracing::warn!(
                            source = %self.source,
                            credentials = self.fetcher.kind(),
                            error = %e,
                            expires_at = c.expires_at.map(format_unix).unwrap_or_default(),
                            "credential refresh failed; using the current credentials until they expire"
                        );
                        Ok(c)
                    }
                    None => Err(credentials_error(self.fetcher.kind(), e)),
                }
            }
        }
    }

    fn usable_without_fetch(&self, now: f64) -> Option<Arc<Issued>> {
        let current = self.lock().current.clone()?;
        if current.refresh_due(now) || !current.valid_at(now) || self.fetcher.changed() {
            return None;
        }
        Some(current)
    }
}

/// The failure of a source whose credentials could not be obtained: always
/// `reason="credentials"`, keeping what the credential service said.
pub fn credentials_error(kind: &str, e: ApiError) -> ApiError {
    let mut out = ApiError::new(
        Reason::Credentials,
        e.action,
        format!(
            "cannot obtain {kind} credentials ({}): {}",
            e.reason, e.message
        ),
    );
    out.http_status = e.http_status;
    out.code = e.code;
    out.request_id = e.request_id;
    out
}

fn format_unix(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Read a [`SecretSource`] now.
fn read_source(source: &SecretSource, file: Option<&WatchedFile>) -> Result<Secret, String> {
    match (source, file) {
        (SecretSource::Value(v), _) => Ok(v.clone()),
        (SecretSource::File(_), Some(f)) => f.read().map(Secret::new),
        (SecretSource::File(p), None) => Err(format!("{}: not watched", p.display())),
    }
}

/// `type: access_key` for both providers: inline keys, or files re-read when they
/// change on disk.
pub struct StaticKeyFetcher {
    keys: StaticKeys,
    domain_id: Option<SecretSource>,
    files: Vec<(usize, WatchedFile)>,
}

impl StaticKeyFetcher {
    /// `domain_id` is Huawei's (sent as `X-Domain-Id`), absent for Alibaba.
    pub fn new(keys: StaticKeys, domain_id: Option<SecretSource>) -> StaticKeyFetcher {
        let mut files = Vec::new();
        let slots = [
            Some(&keys.access_key_id),
            Some(&keys.access_key_secret),
            keys.security_token.as_ref(),
            domain_id.as_ref(),
        ];
        for (slot, source) in slots.into_iter().enumerate() {
            if let Some(SecretSource::File(p)) = source {
                files.push((slot, WatchedFile::new(p.clone())));
            }
        }
        StaticKeyFetcher {
            keys,
            domain_id,
            files,
        }
    }

    fn file(&self, slot: usize) -> Option<&WatchedFile> {
        self.files.iter().find(|(s, _)| *s == slot).map(|(_, f)| f)
    }

    /// Read every key now (files from disk).
    pub fn read_now(&self) -> Result<Credentials, String> {
        let id = read_source(&self.keys.access_key_id, self.file(0))?;
        let secret = read_source(&self.keys.access_key_secret, self.file(1))?;
        let token = match &self.keys.security_token {
            None => None,
            Some(s) => Some(read_source(s, self.file(2))?).filter(|t| !t.is_empty()),
        };
        let domain = match &self.domain_id {
            None => None,
            Some(s) => {
                Some(read_source(s, self.file(3))?.expose().to_string()).filter(|d| !d.is_empty())
            }
        };
        if id.is_empty() || secret.is_empty() {
            return Err("the access key id or secret is empty".into());
        }
        Ok(Credentials {
            access_key_id: id.expose().to_string(),
            access_key_secret: secret,
            security_token: token,
            domain_id: domain,
        })
    }
}

#[async_trait]
impl CredentialFetcher for StaticKeyFetcher {
    fn kind(&self) -> &'static str {
        "access_key"
    }

    fn changed(&self) -> bool {
        self.files.iter().any(|(_, f)| f.changed())
    }

    async fn fetch(&self, _transport: &Transport, _deadline: Instant) -> Result<Issued, ApiError> {
        let credentials = self
            .read_now()
            .map_err(|m| ApiError::new(Reason::Credentials, "ReadCredentials", m))?;
        Ok(Issued::permanent(credentials, crate::clock::unix_now()))
    }
}

/// Keys given in code: returned as they are.
pub struct FixedFetcher(pub Credentials);

#[async_trait]
impl CredentialFetcher for FixedFetcher {
    fn kind(&self) -> &'static str {
        "access_key"
    }

    async fn fetch(&self, _transport: &Transport, _deadline: Instant) -> Result<Issued, ApiError> {
        Ok(Issued::permanent(self.0.clone(), crate::clock::unix_now()))
    }
}

/// Stands in for credentials of another provider's shape, which the configuration
/// parser never produces; every fetch fails with a message saying so.
pub struct Misconfigured;

#[async_trait]
impl CredentialFetcher for Misconfigured {
    fn kind(&self) -> &'static str {
        "invalid"
    }

    async fn fetch(&self, _transport: &Transport, _deadline: Instant) -> Result<Issued, ApiError> {
        Err(ApiError::new(
            Reason::Credentials,
            "ReadCredentials",
            "the credentials block belongs to another provider",
        ))
    }
}

impl CredentialConfig {
    /// A provider's credentials block.
    pub fn provider<T: ProviderCredentials>(config: T) -> CredentialConfig {
        CredentialConfig::Provider(Arc::new(config))
    }

    /// The provider's block, if it is of type `T`.
    pub fn provider_config<T: std::any::Any>(&self) -> Option<&T> {
        match self {
            CredentialConfig::Provider(p) => p.as_any().downcast_ref::<T>(),
            CredentialConfig::Static(_) => None,
        }
    }

    /// Identity-service endpoints (STS, IAM) that receive keys, signed requests or
    /// tokens, by config key.
    pub fn token_endpoints(&self) -> Vec<(&'static str, &str)> {
        match self {
            CredentialConfig::Static(_) => Vec::new(),
            CredentialConfig::Provider(p) => p.token_endpoints(),
        }
    }

    /// The configured `type`, for the landing page and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialConfig::Static(_) => "access_key",
            CredentialConfig::Provider(p) => p.kind(),
        }
    }

    /// Static keys read now (files from disk), for tests of the configuration
    /// parser; `None` for types that fetch their keys.
    pub fn read_static_for_tests(&self) -> Option<Credentials> {
        match self {
            CredentialConfig::Static(c) => Some(c.clone()),
            CredentialConfig::Provider(p) => p.read_static(),
        }
    }

    /// A configured domain id (Huawei), inline or from the environment, for tests.
    pub fn domain_id_for_tests(&self) -> Option<String> {
        match self {
            CredentialConfig::Static(c) => c.domain_id.clone(),
            CredentialConfig::Provider(p) => p.domain_id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(obtained: f64, expires: Option<f64>) -> Issued {
        Issued {
            credentials: Credentials {
                access_key_id: "AK".into(),
                access_key_secret: Secret::new("SK"),
                security_token: None,
                domain_id: None,
            },
            expires_at: expires,
            obtained_at: obtained,
        }
    }

    #[test]
    fn refresh_is_due_at_the_shorter_of_15_minutes_and_half_the_lifetime() {
        // One hour: due with 15 minutes left, not before.
        let hour = issued(0.0, Some(3600.0));
        assert!(!hour.refresh_due(2699.0));
        assert!(hour.refresh_due(2701.0));
        // Fifteen minutes: due at half (7.5 min left), not at once as the SDKs' rule
        // would make it.
        let short = issued(0.0, Some(900.0));
        assert!(!short.refresh_due(1.0));
        assert!(!short.refresh_due(449.0));
        assert!(short.refresh_due(451.0));
        // Static keys never.
        assert!(!issued(0.0, None).refresh_due(1e12));
        assert!(issued(0.0, None).valid_at(1e12));
        assert!(hour.valid_at(3594.0));
        assert!(!hour.valid_at(3596.0));
    }
}
