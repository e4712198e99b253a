//! Alibaba provider (scaffold: the client is filled in by its own change).

pub mod sign;
pub mod wire;

use crate::config::SourceConfig;
use crate::error::{ApiError, Reason};
use crate::model::{Handshake, Provider};
use crate::provider::HandshakeProvider;
use crate::transport::Transport;
use async_trait::async_trait;
use tokio::time::Instant;

pub struct AlibabaClient {
    #[allow(dead_code)]
    transport: Transport,
}

impl AlibabaClient {
    pub fn new(_source: &SourceConfig, transport: Transport) -> AlibabaClient {
        AlibabaClient { transport }
    }
}

#[async_trait]
impl HandshakeProvider for AlibabaClient {
    fn provider(&self) -> Provider {
        Provider::Alibaba
    }

    async fn list(&self, _deadline: Instant) -> Result<Vec<Handshake>, ApiError> {
        Err(ApiError::new(
            Reason::BadRequest,
            "List",
            "not implemented yet",
        ))
    }

    async fn get(&self, _id: &str, _deadline: Instant) -> Result<Handshake, ApiError> {
        Err(ApiError::new(
            Reason::BadRequest,
            "Get",
            "not implemented yet",
        ))
    }
}
