//! Huawei provider (scaffold: the client is filled in by its own change).

use crate::config::SourceConfig;
use crate::error::{ApiError, Reason};
use crate::model::{Handshake, Provider};
use crate::provider::HandshakeProvider;
use crate::transport::Transport;
use async_trait::async_trait;
use tokio::time::Instant;

pub struct HuaweiClient {
    #[allow(dead_code)]
    transport: Transport,
}

impl HuaweiClient {
    pub fn new(_source: &SourceConfig, transport: Transport) -> HuaweiClient {
        HuaweiClient { transport }
    }
}

#[async_trait]
impl HandshakeProvider for HuaweiClient {
    fn provider(&self) -> Provider {
        Provider::Huawei
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
