//! handshake_exporter: Prometheus metrics about cloud organization invitations
//! (handshakes) from Alibaba Cloud Resource Manager and Huawei Cloud Organizations.
//!
//! Layout: `provider` (one module per cloud: signing, pagination, wire types) yields
//! provider-neutral `model::Handshake`s; `cache` owns freshness and single-flight;
//! `render` turns snapshots into metric families; `http` only routes; `sim` is the
//! built-in simulated cloud used by `--demo` and the tests.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod error;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod provider;
pub mod query;
pub mod render;
pub mod secret;
pub mod sim;
pub mod transport;
pub mod webconfig;

/// Install rustls' ring crypto provider (reqwest is built without one, which keeps
/// the binary small). Idempotent; called before any HTTP client or TLS server exists.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
