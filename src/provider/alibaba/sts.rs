//! STS (API 2015-04-01) credential fetchers: `AssumeRole` (signed with a base key,
//! classic RPC HMAC-SHA1) and `AssumeRoleWithOIDC` (unsigned, ACK RRSA).
//!
//! The requests have the shape credentials-go sends (`credentials/providers/
//! ram_role_arn.go` and `oidc.go`): `POST /` with the common parameters in the
//! query and the operation's in an `application/x-www-form-urlencoded` body; for
//! AssumeRole the signature covers both.

use super::credentials::{OidcRoleArn, RamRoleArn};
use super::{Endpoint, TIMESTAMP_FORMAT, parse_error, sign};
use crate::credentials::{CredentialFetcher, Issued, StaticKeyFetcher, WatchedFile};
use crate::error::{ApiError, Reason};
use crate::provider::{nonce, percent_encode};
use crate::secret::{Credentials, Secret};
use crate::transport::Transport;
use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use tokio::time::Instant;

pub const STS_API_VERSION: &str = "2015-04-01";
pub const ACTION_ASSUME_ROLE: &str = "AssumeRole";
pub const ACTION_ASSUME_ROLE_WITH_OIDC: &str = "AssumeRoleWithOIDC";
/// The `Expiration` format of STS and of the metadata service.
pub const EXPIRATION_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// `application/x-www-form-urlencoded` encoding of `pairs` (RFC 3986 unreserved
/// kept, everything else `%XX`: what the server decodes back exactly).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A `POST /?<query>` with a form body. The query may hold the security token and
/// the body the OIDC token: neither is ever formatted (reqwest's `Debug` of a
/// request is never used, and transport errors drop the URL).
fn post_form(endpoint: &Endpoint, query: &str, body: String) -> Result<reqwest::Request, ApiError> {
    let mut url = endpoint.url();
    url.set_query(Some(query));
    let mut request = reqwest::Request::new(reqwest::Method::POST, url);
    request.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    *request.body_mut() = Some(reqwest::Body::from(body));
    Ok(request)
}

/// The `Credentials` of an AssumeRole / AssumeRoleWithOIDC answer. Not `Debug`.
#[derive(Deserialize)]
struct StsAnswer {
    #[serde(rename = "Credentials")]
    credentials: Option<StsCredentials>,
}

#[derive(Deserialize)]
pub(super) struct StsCredentials {
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: Option<String>,
    #[serde(rename = "AccessKeySecret")]
    pub access_key_secret: Option<String>,
    #[serde(rename = "SecurityToken")]
    pub security_token: Option<String>,
    #[serde(rename = "Expiration")]
    pub expiration: Option<String>,
}

impl StsCredentials {
    /// Temporary credentials with their expiry; the error names what is missing,
    /// never a value.
    pub(super) fn into_issued(self, action: &'static str) -> Result<Issued, ApiError> {
        let missing =
            |field: &str| ApiError::bad_response(action, format!("the answer has no {field}"));
        let id = self
            .access_key_id
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("AccessKeyId"))?;
        let secret = self
            .access_key_secret
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("AccessKeySecret"))?;
        let token = self
            .security_token
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("SecurityToken"))?;
        let expiration = self.expiration.ok_or_else(|| missing("Expiration"))?;
        let expires_at = chrono::NaiveDateTime::parse_from_str(&expiration, EXPIRATION_FORMAT)
            .map_err(|_| {
                ApiError::bad_response(
                    action,
                    format!("Expiration {expiration:?} is not {EXPIRATION_FORMAT}"),
                )
            })?
            .and_utc()
            .timestamp() as f64;
        Ok(Issued {
            credentials: Credentials {
                access_key_id: id,
                access_key_secret: Secret::new(secret),
                security_token: Some(Secret::new(token)),
                domain_id: None,
            },
            expires_at: Some(expires_at),
            obtained_at: crate::clock::unix_now(),
        })
    }
}

fn parse_answer(action: &'static str, body: &[u8]) -> Result<Issued, ApiError> {
    // serde's message may quote a value of the body; only its position is kept.
    let answer: StsAnswer = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_response(
            action,
            format!(
                "the answer is not STS JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    answer
        .credentials
        .ok_or_else(|| ApiError::bad_response(action, "the answer has no Credentials"))?
        .into_issued(action)
}

/// `type: ram_role_arn`.
pub struct AssumeRoleFetcher {
    config: RamRoleArn,
    /// The base key; files re-read at every AssumeRole, so a rotated key file is
    /// used from the next one on without a reload (and without dropping the
    /// credentials still valid).
    base: StaticKeyFetcher,
    endpoint: Result<Endpoint, String>,
    duration: String,
}

impl AssumeRoleFetcher {
    pub fn new(config: RamRoleArn) -> AssumeRoleFetcher {
        AssumeRoleFetcher {
            base: StaticKeyFetcher::new(config.base.clone(), None),
            endpoint: Endpoint::parse(&config.sts_endpoint),
            duration: config.duration.as_secs().to_string(),
            config,
        }
    }

    /// The AssumeRole request for one attempt (fresh timestamp and nonce).
    fn build(&self, endpoint: &Endpoint, base: &Credentials) -> Result<reqwest::Request, ApiError> {
        let timestamp = chrono::Utc::now().format(TIMESTAMP_FORMAT).to_string();
        let nonce = nonce();
        let mut query: Vec<(&str, &str)> = vec![
            ("Action", ACTION_ASSUME_ROLE),
            ("Format", "JSON"),
            ("Version", STS_API_VERSION),
            ("Timestamp", &timestamp),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", &nonce),
            ("AccessKeyId", &base.access_key_id),
        ];
        if let Some(token) = &base.security_token {
            query.push(("SecurityToken", token.expose()));
        }
        let c = &self.config;
        let mut body: Vec<(&str, &str)> = vec![("RoleArn", &c.role_arn)];
        if let Some(policy) = &c.policy {
            body.push(("Policy", policy));
        }
        if let Some(external_id) = &c.external_id {
            body.push(("ExternalId", external_id));
        }
        body.push(("RoleSessionName", &c.role_session_name));
        body.push(("DurationSeconds", &self.duration));
        let all: Vec<(&str, &str)> = query.iter().chain(&body).copied().collect();
        let signed = sign::sign_rpc_v1("POST", &all, base.access_key_secret.expose());
        query.push(("Signature", &signed.signature));
        post_form(endpoint, &form(&query), form(&body))
    }
}

#[async_trait]
impl CredentialFetcher for AssumeRoleFetcher {
    fn kind(&self) -> &'static str {
        "ram_role_arn"
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let action = ACTION_ASSUME_ROLE;
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|m| ApiError::new(Reason::BadRequest, action, format!("sts_endpoint: {m}")))?;
        let base = self.base.read_now().map_err(|m| {
            ApiError::new(Reason::Credentials, action, format!("base access key: {m}"))
        })?;
        let response = transport
            .execute(
                action,
                deadline,
                || self.build(endpoint, &base),
                parse_error,
            )
            .await?;
        parse_answer(action, &response.body)
    }
}

/// `type: oidc_role_arn`.
pub struct AssumeRoleWithOidcFetcher {
    config: OidcRoleArn,
    token: WatchedFile,
    endpoint: Result<Endpoint, String>,
    duration: String,
}

impl AssumeRoleWithOidcFetcher {
    pub fn new(config: OidcRoleArn) -> AssumeRoleWithOidcFetcher {
        AssumeRoleWithOidcFetcher {
            token: WatchedFile::new(config.oidc_token_file.clone()),
            endpoint: Endpoint::parse(&config.sts_endpoint),
            duration: config.duration.as_secs().to_string(),
            config,
        }
    }

    fn build(&self, endpoint: &Endpoint, token: &Secret) -> Result<reqwest::Request, ApiError> {
        let timestamp = chrono::Utc::now().format(TIMESTAMP_FORMAT).to_string();
        // Anonymous, as the SDK sends it: no AccessKeyId, no Signature.
        let query = [
            ("Action", ACTION_ASSUME_ROLE_WITH_OIDC),
            ("Format", "JSON"),
            ("Version", STS_API_VERSION),
            ("Timestamp", timestamp.as_str()),
        ];
        let c = &self.config;
        let mut body: Vec<(&str, &str)> = vec![
            ("RoleArn", &c.role_arn),
            ("OIDCProviderArn", &c.oidc_provider_arn),
            ("OIDCToken", token.expose()),
        ];
        if let Some(policy) = &c.policy {
            body.push(("Policy", policy));
        }
        body.push(("RoleSessionName", &c.role_session_name));
        body.push(("DurationSeconds", &self.duration));
        post_form(endpoint, &form(&query), form(&body))
    }
}

#[async_trait]
impl CredentialFetcher for AssumeRoleWithOidcFetcher {
    fn kind(&self) -> &'static str {
        "oidc_role_arn"
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let action = ACTION_ASSUME_ROLE_WITH_OIDC;
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|m| ApiError::new(Reason::BadRequest, action, format!("sts_endpoint: {m}")))?;
        // Read afresh for every call: Kubernetes rotates the projected token in place.
        let token = self.token.read().map_err(|m| {
            ApiError::new(Reason::Credentials, action, format!("oidc_token_file: {m}"))
        })?;
        if token.is_empty() {
            return Err(ApiError::new(
                Reason::Credentials,
                action,
                format!("oidc_token_file: {} is empty", self.token.path().display()),
            ));
        }
        let token = Secret::new(token);
        let response = transport
            .execute(
                action,
                deadline,
                || self.build(endpoint, &token),
                parse_error,
            )
            .await?;
        parse_answer(action, &response.body)
    }
}
