//! A string that never prints itself.

use std::fmt;

/// Holds an access key secret or a security token. `Debug` and `Display` print
/// `<redacted>` so a secret cannot reach a log line, an error or a metric by accident;
/// the value is only reachable through [`Secret::expose`], which signing code calls.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The raw value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials of one source, already resolved from config, files or environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
    /// Huawei only: the account (domain) id sent as `X-Domain-Id`.
    pub domain_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let c = Credentials {
            access_key_id: "AK".into(),
            access_key_secret: Secret::new("very-secret-value"),
            security_token: Some(Secret::new("token-value")),
            domain_id: None,
        };
        let shown = format!("{c:?} {}", c.access_key_secret);
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(!shown.contains("token-value"), "{shown}");
        assert_eq!(c.access_key_secret.expose(), "very-secret-value");
    }
}
