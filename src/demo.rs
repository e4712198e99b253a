//! `--demo`: a simulated cloud in-process, and sources pointing at it. Each provider
//! brings its own demo tenants and sources ([`crate::provider::ProviderKind::demo`]).

use crate::config::Config;
use crate::model::Provider;
use crate::sim::{self, Sim, SimServer};
use std::net::SocketAddr;
use std::time::Duration;

/// Populate `sim` with every provider's demo tenants and return the demo
/// configuration against it at `endpoint`.
pub fn populate_and_config(sim: &Sim, endpoint: &str) -> Config {
    let sources = Provider::ALL
        .iter()
        .flat_map(|p| p.kind().demo(sim, endpoint))
        .collect();
    let mut c = Config::with_sources(sources);
    c.refresh_interval = Duration::from_secs(30);
    c
}

/// Start a simulator on loopback, fill it with the demo tenants once it knows its
/// address, and return it with the demo configuration pointing at it.
pub async fn start_sim(addr: SocketAddr) -> std::io::Result<(SimServer, Config)> {
    let server = sim::start(Sim::new(), addr).await?;
    let config = populate_and_config(&server.sim, &server.url());
    Ok((server, config))
}
