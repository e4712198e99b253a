//! `--demo`: a simulated cloud in-process, and sources pointing at it. Each provider
//! brings its own demo tenants and sources ([`crate::provider::ProviderKind::demo`]).

use crate::config::Config;
use crate::model::Provider;
use crate::sim::{self, Sim, SimServer};
use std::net::SocketAddr;
use std::sync::Arc;
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

/// Tenants the demo (and `handshake_exporter sim`) serve.
pub fn populate(sim: &Sim) {
    populate_and_config(sim, "http://127.0.0.1");
}

/// The demo configuration against a simulator at `endpoint` (the simulator must
/// have been populated with [`populate`]).
pub fn config(endpoint: &str) -> Config {
    // The providers' demo tenants go into a throwaway simulator here: the sources
    // do not depend on which simulator serves them.
    populate_and_config(&Sim::new(), endpoint)
}

/// Start a populated simulator on loopback.
pub async fn start_sim(addr: SocketAddr) -> std::io::Result<SimServer> {
    let s = Sim::new();
    populate(&s);
    sim::start(Arc::clone(&s), addr).await
}
