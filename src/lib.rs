//! handshake_exporter: Prometheus metrics about cloud organization invitations
//! (handshakes) from Alibaba Cloud Resource Manager and Huawei Cloud Organizations.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod metrics;
pub mod model;
pub mod provider;
pub mod secret;
pub mod sim;
pub mod transport;
