//! The provider boundary: each cloud owns its signing, pagination and wire types and
//! yields provider-neutral [`Handshake`]s through [`HandshakeProvider`].

pub mod alibaba;
pub mod aws;
pub mod endpoint;
pub mod huawei;
pub mod registry;

pub use endpoint::Endpoint;
pub use registry::Provider;

use crate::config::{ConfigError, SourceConfig, SourceCtx};
use crate::credentials::{CredCtx, CredentialConfig, RawCredentials};
use crate::error::ApiError;
use crate::model::{Handshake, TargetType};
use crate::transport::Transport;
use async_trait::async_trait;
use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;
use tokio::time::Instant;

/// Everything provider-neutral code knows about a cloud. One value per provider
/// (`KIND` in its folder), named once in [`registry`]; nothing outside a provider's
/// folder and its simulator module matches on a provider.
pub trait ProviderKind: Send + Sync + 'static {
    /// The `provider:` value in the configuration and the `provider` label.
    fn name(&self) -> &'static str;

    /// The `view:` values this provider serves; the first is the default. `ids`
    /// (one GetHandshake-style call per configured id) means the same for every
    /// provider.
    fn views(&self) -> &'static [&'static str];

    /// The target types `handshake_invitations` reports a zero for, so that every
    /// series a dashboard expects exists from the first scrape.
    fn known_target_types(&self) -> &'static [TargetType];

    /// Keys of a source that belong to this provider (besides the common ones:
    /// name, provider, view, handshake_ids, endpoint, rate_limit, timeouts,
    /// credentials).
    fn source_keys(&self) -> &'static [&'static str];

    /// Validate this provider's keys of a source (through the shared
    /// [`SourceCtx`] helpers, which name file, line and field).
    fn parse_section(&self, ctx: &mut SourceCtx<'_, '_>) -> Result<Section, ConfigError>;

    /// The settings of a source built in code (tests, `--demo`): what
    /// [`ProviderKind::parse_section`] gives for a source that sets none of the keys.
    fn default_section(&self) -> Section;

    /// Validate the source's `credentials:` block (`None`: there is none), knowing
    /// the source's section (e.g. a region that picks the default STS endpoint).
    fn parse_credentials(
        &self,
        ctx: &mut CredCtx<'_>,
        raw: Option<&RawCredentials>,
        section: &Section,
    ) -> Result<CredentialConfig, ConfigError>;

    /// Why `id` cannot be one of this cloud's handshake ids, if it cannot (checked
    /// for every configured `handshake_ids` entry at load, so that one malformed id
    /// is a configuration error instead of a refresh that always fails).
    fn check_handshake_id(&self, _id: &str) -> Result<(), String> {
        Ok(())
    }

    /// The client of one configured source.
    fn build(&self, source: &SourceConfig, transport: Transport) -> Arc<dyn HandshakeProvider>;

    /// The simulated cloud of `--demo` and the tests: its tenants, datasets and
    /// request handlers.
    fn sim(&self) -> &'static dyn crate::sim::SimProvider;

    /// Populate `sim` with this provider's demo tenants and return the demo
    /// sources pointing at `endpoint`.
    fn demo(&self, sim: &crate::sim::Sim, endpoint: &str) -> Vec<SourceConfig>;
}

/// What a provider's section of a source resolves to.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// Page size of the list calls (the provider names the key and its bounds).
    pub page_size: u32,
    /// Endpoint when the source sets none (may depend on the section, e.g. a region).
    pub default_endpoint: String,
    /// Provider-specific settings, read back by the provider's client.
    pub settings: Settings,
}

/// A provider's own configuration value, carried through provider-neutral code
/// (compared on reload, printed in debug output, read back only by its owner).
pub trait DynValue: Any + Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn same_as(&self, other: &dyn Any) -> bool;
}

impl<T: Any + Debug + PartialEq + Send + Sync> DynValue for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// Provider-specific settings of a source (`signature` of Alibaba, `region` of
/// AWS, …); empty for providers without any.
#[derive(Clone, Debug, Default)]
pub struct Settings(Option<Arc<dyn DynValue>>);

impl Settings {
    pub fn new<T: DynValue>(value: T) -> Settings {
        Settings(Some(Arc::new(value)))
    }

    /// The settings as the provider stored them, if they are of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0
            .as_deref()
            .and_then(|v| v.as_any().downcast_ref::<T>())
    }
}

impl PartialEq for Settings {
    fn eq(&self, other: &Settings) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_as(b.as_any()),
            _ => false,
        }
    }
}

/// What one refresh of a source found.
#[derive(Debug, Default, PartialEq)]
pub struct Listing {
    pub handshakes: Vec<Handshake>,
    /// `view: ids` only: configured ids the cloud says do not exist, left out of
    /// `handshakes`. Finished invitations age out of both clouds (about 30 days), so
    /// such an id must not fail the source for good.
    pub missing_ids: Vec<String>,
}

impl Listing {
    /// A listing from `view: ids` outcomes, in configured order: `Err(id)` is an id
    /// the cloud says does not exist.
    pub fn from_ids(outcomes: Vec<Result<Handshake, String>>) -> Listing {
        let mut listing = Listing::default();
        for outcome in outcomes {
            match outcome {
                Ok(h) => listing.handshakes.push(h),
                Err(id) => listing.missing_ids.push(id),
            }
        }
        listing
    }
}

impl From<Vec<Handshake>> for Listing {
    fn from(handshakes: Vec<Handshake>) -> Listing {
        Listing {
            handshakes,
            missing_ids: Vec::new(),
        }
    }
}

/// One configured source's view of one cloud.
#[async_trait]
pub trait HandshakeProvider: Send + Sync {
    fn provider(&self) -> Provider;

    /// Every invitation of the source's view (all pages, or GetHandshake/ShowHandshake
    /// for each configured id), and the configured ids the cloud does not know. Must
    /// finish by `deadline`; on any failure it returns the error and nothing partial.
    async fn fetch(&self, deadline: Instant) -> Result<Listing, ApiError>;

    /// [`HandshakeProvider::fetch`]'s invitations only.
    async fn list(&self, deadline: Instant) -> Result<Vec<Handshake>, ApiError> {
        Ok(self.fetch(deadline).await?.handshakes)
    }

    /// One invitation, fetched live (GetHandshake / ShowHandshake).
    async fn get(&self, id: &str, deadline: Instant) -> Result<Handshake, ApiError>;

    /// The credential type and, for temporary credentials, when they expire.
    fn credential_status(&self) -> Option<crate::credentials::CredentialStatus> {
        None
    }
}

/// Build the provider client for a source.
pub fn build(source: &SourceConfig, transport: Transport) -> Arc<dyn HandshakeProvider> {
    source.provider.kind().build(source, transport)
}

/// RFC 3986 percent-encoding with the unreserved set `A-Za-z0-9-_.~` kept and
/// upper-case hex, as both providers' signers use (`quote(s, safe="~")`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 0xF) as usize]));
        }
    }
    out
}

/// A fresh 32-hex-character nonce (what the SDKs send).
pub fn nonce() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_python_quote_safe_tilde() {
        assert_eq!(
            percent_encode("a b*+/~=&:é"),
            "a%20b%2A%2B%2F~%3D%26%3A%C3%A9"
        );
        assert_eq!(nonce().len(), 32);
    }
}
