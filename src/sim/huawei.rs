//! Simulated Huawei endpoint (scaffold: filled in by its own change).

use super::{Sim, SimRequest, SimResponse};

pub async fn handle(_sim: &Sim, _req: SimRequest) -> SimResponse {
    SimResponse::raw(501, "text/plain", "not implemented yet")
}
