//! The simulated alibaba identity services (to be filled in): they issue temporary
//! credentials with [`Sim::issue_session`](super::Sim::issue_session).

use super::{Sim, SimRequest, SimResponse};

/// What the simulated identity services accept (roles, tokens, instance identity).
#[derive(Default, Debug)]
pub struct IdentityState {}

/// Answer a request meant for an identity service; `None` for any other request.
pub async fn handle(_sim: &Sim, _req: &SimRequest) -> Option<SimResponse> {
    None
}
