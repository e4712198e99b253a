//! The provider boundary: each cloud owns its signing, pagination and wire types and
//! yields provider-neutral [`Handshake`]s through [`HandshakeProvider`].

pub mod alibaba;
pub mod huawei;

use crate::config::SourceConfig;
use crate::error::ApiError;
use crate::model::{Handshake, Provider};
use crate::transport::Transport;
use async_trait::async_trait;
use std::sync::Arc;
use tokio::time::Instant;

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
    match source.provider {
        Provider::Alibaba => Arc::new(alibaba::AlibabaClient::new(source, transport)),
        Provider::Huawei => Arc::new(huawei::HuaweiClient::new(source, transport)),
    }
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
