//! Errors from cloud APIs, with a bounded `reason` for metric labels.

use std::fmt;
use std::time::Duration;

/// Why a request or refresh failed. The set is closed so that it can be a label
/// (`handshake_source_refresh_failures_total{reason=…}`) without cardinality risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Signature rejected, unknown or locked access key, missing permission.
    Auth,
    /// The API asked us to slow down (HTTP 429, `Throttling*`).
    Throttled,
    /// The feature is not enabled for the account (no resource directory / organization).
    NotEnabled,
    /// The invitation (or another entity) does not exist.
    NotFound,
    /// The API rejected the request as malformed.
    BadRequest,
    /// The API failed on its side (5xx).
    Server,
    /// No answer in time.
    Timeout,
    /// Connection refused, reset, DNS, TLS.
    Network,
    /// The API answered 2xx with something we cannot use.
    BadResponse,
    /// No valid credentials: a role could not be assumed, the metadata service or a
    /// key file failed, and the previous temporary credentials have lapsed.
    Credentials,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::Auth,
        Reason::Throttled,
        Reason::NotEnabled,
        Reason::NotFound,
        Reason::BadRequest,
        Reason::Server,
        Reason::Timeout,
        Reason::Network,
        Reason::BadResponse,
        Reason::Credentials,
    ];

    /// The label value.
    pub const fn metric_label(self) -> &'static str {
        match self {
            Reason::Auth => "auth",
            Reason::Throttled => "throttled",
            Reason::NotEnabled => "not_enabled",
            Reason::NotFound => "not_found",
            Reason::BadRequest => "bad_request",
            Reason::Server => "server",
            Reason::Timeout => "timeout",
            Reason::Network => "network",
            Reason::BadResponse => "bad_response",
            Reason::Credentials => "credentials",
        }
    }

    /// Whether trying again may succeed. Auth and request errors never get better
    /// by repeating them, and repeating them can lock an access key.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            Reason::Throttled | Reason::Server | Reason::Timeout | Reason::Network
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric_label())
    }
}

/// A failed API call or refresh, with what the API said about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub reason: Reason,
    /// API action (`ListHandshakesForResourceDirectory`, `ListHandshakes`, …).
    pub action: &'static str,
    /// HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    /// The provider's error code (`Throttling.User`, `APIGW.0301`, …).
    pub code: Option<String>,
    /// Human-readable detail, truncated; never contains credentials.
    pub message: String,
    pub request_id: Option<String>,
    /// Server hint for when to retry (`Retry-After`, `x-acs-retry-after`).
    pub retry_after: Option<Duration>,
}

/// Longest API message kept: bodies can be large HTML error pages.
const MAX_MESSAGE_CHARS: usize = 300;

impl ApiError {
    pub fn new(reason: Reason, action: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            reason,
            action,
            http_status: None,
            code: None,
            message: truncate(message.into()),
            request_id: None,
            retry_after: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> ApiError {
        self.http_status = Some(status);
        self
    }

    pub fn with_code(mut self, code: Option<String>) -> ApiError {
        self.code = code.filter(|c| !c.is_empty());
        self
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> ApiError {
        self.request_id = request_id.filter(|r| !r.is_empty());
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> ApiError {
        self.retry_after = retry_after;
        self
    }

    /// A 2xx answer that cannot be used (truncated JSON, wrong shape, lying counts).
    pub fn bad_response(action: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(Reason::BadResponse, action, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({})", self.action, self.reason)?;
        if let Some(status) = self.http_status {
            write!(f, ": HTTP {status}")?;
        }
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

fn truncate(mut s: String) -> String {
    if let Some((idx, _)) = s.char_indices().nth(MAX_MESSAGE_CHARS) {
        s.truncate(idx);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_action_reason_code_and_request_id() {
        let e = ApiError::new(Reason::Throttled, "ListHandshakes", "slow down")
            .with_status(429)
            .with_code(Some("APIGW.0308".into()))
            .with_request_id(Some("rid-1".into()));
        assert_eq!(
            e.to_string(),
            "ListHandshakes failed (throttled): HTTP 429 APIGW.0308: slow down (request id rid-1)"
        );
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let e = ApiError::bad_response("GetHandshake", "é".repeat(1000));
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn only_transient_reasons_retry() {
        let retryable: Vec<_> = Reason::ALL.iter().filter(|r| r.is_retryable()).collect();
        assert_eq!(
            retryable,
            [
                &Reason::Throttled,
                &Reason::Server,
                &Reason::Timeout,
                &Reason::Network
            ]
        );
    }
}
