//! What a simulated identity service (STS, metadata, container credentials) was
//! asked: calls per action and the last requests, for tests to count and inspect.

use super::SimRequest;
use std::collections::BTreeMap;

/// How many requests a [`CallLog`] keeps.
pub const MAX_RECORDED: usize = 256;

/// One request an identity service received.
#[derive(Clone, Debug)]
pub struct IdentityRequest {
    pub action: String,
    pub method: String,
    /// Query and form parameters, decoded.
    pub params: Vec<(String, String)>,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
}

impl IdentityRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Calls per action, counted before any check, and the last requests received.
#[derive(Default, Debug)]
pub struct CallLog {
    pub calls: BTreeMap<String, u64>,
    /// At most [`MAX_RECORDED`], oldest first.
    pub requests: Vec<IdentityRequest>,
}

impl CallLog {
    pub fn call_count(&self, action: &str) -> u64 {
        self.calls.get(action).copied().unwrap_or(0)
    }

    /// The last request of `action`.
    pub fn last(&self, action: &str) -> Option<&IdentityRequest> {
        self.requests.iter().rev().find(|r| r.action == action)
    }

    pub fn record(&mut self, req: &SimRequest, action: &str, params: &[(String, String)]) {
        *self.calls.entry(action.to_string()).or_insert(0) += 1;
        if self.requests.len() >= MAX_RECORDED {
            self.requests.remove(0);
        }
        self.requests.push(IdentityRequest {
            action: action.to_string(),
            method: req.method.to_string(),
            params: params.to_vec(),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        v.to_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        });
    }
}
