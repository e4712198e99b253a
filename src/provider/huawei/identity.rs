//! Huawei temporary credentials and the domain id: the fetchers behind
//! `type: metadata` and `type: federated`, and the IAM lookup of a missing
//! `domain_id`. Every call goes through the source's [`Transport`] (deadlines,
//! retries, the outbound cap, `handshake_api_requests_total{action=…}`).
//!
//! Followed: huaweicloud-sdk-go-v3 `core/auth/internal/metadata_accessor.go`
//! (metadata token and security key, the 401 retry, "no token service"),
//! `core/auth/base_credentials.go` `updateAuthTokenByIdToken` and
//! `core/auth/internal/iam_helper.go` (id token → IAM token → temporary keys,
//! both calls unsigned), `core/auth/global_credentials.go` `ProcessAuthParams`
//! (domain id from `GET /v3/auth/domains`, signed, `domains[0].id`, kept).

use super::wire;
use crate::credentials::{CredentialFetcher, Issued, SecretSource, WatchedFile};
use crate::error::{ApiError, Reason};
use crate::secret::{Credentials, Secret};
use crate::transport::Transport;
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

pub const ACTION_METADATA_TOKEN: &str = "MetadataToken";
pub const ACTION_METADATA_SECURITY_KEY: &str = "MetadataSecurityKey";
pub const ACTION_CREATE_TOKEN_WITH_ID_TOKEN: &str = "CreateTokenWithIdToken";
pub const ACTION_CREATE_TEMPORARY_ACCESS_KEY: &str = "CreateTemporaryAccessKey";
pub const ACTION_LIST_AUTH_DOMAINS: &str = "KeystoneListAuthDomains";

pub const PATH_METADATA_TOKEN: &str = "/meta-data/latest/api/token";
pub const PATH_METADATA_SECURITY_KEY: &str = "/openstack/latest/securitykey";
pub const PATH_ID_TOKEN_TOKENS: &str = "/v3.0/OS-AUTH/id-token/tokens";
pub const PATH_SECURITY_TOKENS: &str = "/v3.0/OS-CREDENTIAL/securitytokens";
pub const PATH_AUTH_DOMAINS: &str = "/v3/auth/domains";

pub const HEADER_METADATA_TOKEN: &str = "X-Metadata-Token";
pub const HEADER_METADATA_TOKEN_TTL: &str = "X-Metadata-Token-Ttl-Seconds";
pub const HEADER_IDP_ID: &str = "X-Idp-Id";
pub const HEADER_SUBJECT_TOKEN: &str = "X-Subject-Token";

/// Lifetime asked for a metadata session token (the SDK's 6 hours).
pub const METADATA_TOKEN_TTL_SECONDS: u64 = 21_600;
/// Lifetime asked for federated temporary keys (the SDK's `defaultDurationSeconds`).
pub const FEDERATED_DURATION_SECONDS: u64 = 21_600;
/// The metadata service's answer when the ECS has no agency: not worth a new token.
pub const AGENCY_MISSING: &str = "Please configure Cloud Service Agency first";
/// After the metadata service said it has no token service, ask again only after
/// this long (the SDK's `DefaultCheckTokenDurationSecond`).
const NO_TOKEN_SERVICE_RECHECK: Duration = Duration::from_secs(24 * 3600);
/// The IAM permission the SDK names when the domain list comes back empty
/// (`global_credentials.go`).
pub const DOMAIN_LOOKUP_PERMISSION: &str = "iam:users:getUser";

/// A request with JSON or empty body; sensitive header values are marked so that
/// they never show in Debug output.
fn build(
    method: reqwest::Method,
    url: &str,
    action: &'static str,
    headers: &[(&str, &str, bool)],
    body: Option<Vec<u8>>,
) -> Result<reqwest::Request, ApiError> {
    let bad = |what: String| ApiError::new(Reason::BadRequest, action, what);
    let url = reqwest::Url::parse(url).map_err(|e| bad(format!("invalid URL: {e}")))?;
    let mut request = reqwest::Request::new(method, url);
    for (name, value, sensitive) in headers {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(format!("header {name}")))?;
        // Names the header, never its value: it may be a credential.
        let mut header_value = HeaderValue::from_str(value).map_err(|_| {
            bad(format!(
                "the {name} value has characters not allowed in an HTTP header"
            ))
        })?;
        header_value.set_sensitive(*sensitive);
        request.headers_mut().insert(header_name, header_value);
    }
    if let Some(body) = body {
        *request.body_mut() = Some(body.into());
    }
    Ok(request)
}

/// Temporary keys as both the metadata service and IAM return them.
#[derive(Deserialize)]
struct CredentialBody {
    credential: TemporaryCredential,
}

/// No `Debug`: it holds a secret and a token.
#[derive(Deserialize)]
struct TemporaryCredential {
    access: String,
    secret: String,
    securitytoken: String,
    expires_at: String,
}

/// A JSON error that names where, never what (the text may hold a secret).
fn shape_error(action: &'static str, e: &serde_json::Error) -> ApiError {
    ApiError::bad_response(
        action,
        format!(
            "the answer is not the expected JSON ({:?} at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    )
}

/// `expires_at` as the services write it: `%Y-%m-%dT%H:%M:%S.%fZ` (Python SDK), or
/// without the fraction (Go SDK's layout accepts both).
pub fn parse_expiry(text: &str) -> Option<f64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis() as f64 / 1000.0);
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.fZ")
        .ok()
        .map(|t| t.and_utc().timestamp_millis() as f64 / 1000.0)
}

fn issued_from(action: &'static str, body: &[u8]) -> Result<Issued, ApiError> {
    let parsed: CredentialBody =
        serde_json::from_slice(body).map_err(|e| shape_error(action, &e))?;
    let c = parsed.credential;
    let expires_at = parse_expiry(&c.expires_at).ok_or_else(|| {
        ApiError::bad_response(
            action,
            format!("expires_at {:?} is not a UTC timestamp", c.expires_at),
        )
    })?;
    if c.access.is_empty() || c.secret.is_empty() || c.securitytoken.is_empty() {
        return Err(ApiError::bad_response(
            action,
            "the answer lacks access, secret or securitytoken",
        ));
    }
    Ok(Issued {
        credentials: Credentials {
            access_key_id: c.access,
            access_key_secret: Secret::new(c.secret),
            security_token: Some(Secret::new(c.securitytoken)),
            domain_id: None,
        },
        expires_at: Some(expires_at),
        obtained_at: crate::clock::unix_now(),
    })
}

/// The metadata token request's errors: 404, 405 and 503 mean the service has no
/// token support (IMDSv1-like hosts), which the SDK treats as "send none" — never
/// retried.
fn token_error(action: &'static str, status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let mut e = wire::parse_error(action, status, headers, body);
    if matches!(status, 404 | 405 | 503) {
        e.reason = Reason::NotFound;
    }
    e
}

/// A metadata session token and when to stop using it.
struct MetadataToken {
    value: Secret,
    renew_at: Instant,
}

#[derive(Default)]
struct MetadataSession {
    token: Option<MetadataToken>,
    /// The service said it has no token support; do not ask before then.
    no_token_service_until: Option<Instant>,
}

/// `type: metadata`: the ECS agency's temporary keys.
pub struct MetadataFetcher {
    endpoint: String,
    session: Mutex<MetadataSession>,
}

impl MetadataFetcher {
    pub fn new(endpoint: String) -> MetadataFetcher {
        MetadataFetcher {
            endpoint,
            session: Mutex::new(MetadataSession::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MetadataSession> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `PUT /meta-data/latest/api/token`. `Ok(None)`: no token service (and
    /// `required` is false).
    async fn new_token(
        &self,
        transport: &Transport,
        deadline: Instant,
        required: bool,
    ) -> Result<Option<Secret>, ApiError> {
        let url = format!("{}{PATH_METADATA_TOKEN}", self.endpoint);
        let ttl = METADATA_TOKEN_TTL_SECONDS.to_string();
        let answer = transport
            .execute(
                ACTION_METADATA_TOKEN,
                deadline,
                || {
                    build(
                        reqwest::Method::PUT,
                        &url,
                        ACTION_METADATA_TOKEN,
                        &[(HEADER_METADATA_TOKEN_TTL, &ttl, false)],
                        None,
                    )
                },
                token_error,
            )
            .await;
        match answer {
            Ok(resp) => {
                let token = String::from_utf8_lossy(&resp.body).trim().to_string();
                if token.is_empty() {
                    return Err(ApiError::bad_response(
                        ACTION_METADATA_TOKEN,
                        "empty metadata token",
                    ));
                }
                let value = Secret::new(token);
                let mut s = self.lock();
                s.token = Some(MetadataToken {
                    value: value.clone(),
                    // A minute early: a token that lapses in flight gets a 401.
                    renew_at: Instant::now()
                        + Duration::from_secs(METADATA_TOKEN_TTL_SECONDS.saturating_sub(60)),
                });
                s.no_token_service_until = None;
                Ok(Some(value))
            }
            Err(e) if e.reason == Reason::NotFound && !required => {
                let mut s = self.lock();
                s.token = None;
                s.no_token_service_until = Some(Instant::now() + NO_TOKEN_SERVICE_RECHECK);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn security_key(
        &self,
        transport: &Transport,
        deadline: Instant,
        token: Option<&Secret>,
    ) -> Result<Issued, ApiError> {
        let url = format!("{}{PATH_METADATA_SECURITY_KEY}", self.endpoint);
        let resp = transport
            .execute(
                ACTION_METADATA_SECURITY_KEY,
                deadline,
                || {
                    let headers: Vec<(&str, &str, bool)> = token
                        .map(|t| (HEADER_METADATA_TOKEN, t.expose(), true))
                        .into_iter()
                        .collect();
                    build(
                        reqwest::Method::GET,
                        &url,
                        ACTION_METADATA_SECURITY_KEY,
                        &headers,
                        None,
                    )
                },
                wire::parse_error,
            )
            .await
            .map_err(|mut e| {
                if e.message.contains(AGENCY_MISSING) {
                    e.message = format!(
                        "{}: the ECS has no agency (attach one with the Organizations read permissions)",
                        e.message
                    );
                }
                e
            })?;
        issued_from(ACTION_METADATA_SECURITY_KEY, &resp.body)
    }
}

#[async_trait]
impl CredentialFetcher for MetadataFetcher {
    fn kind(&self) -> &'static str {
        "metadata"
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let (cached, ask) = {
            let s = self.lock();
            let now = Instant::now();
            let cached = s
                .token
                .as_ref()
                .filter(|t| t.renew_at > now)
                .map(|t| t.value.clone());
            let ask = cached.is_none() && s.no_token_service_until.is_none_or(|u| u <= now);
            (cached, ask)
        };
        let token = match cached {
            Some(t) => Some(t),
            None if ask => self.new_token(transport, deadline, false).await?,
            None => None,
        };
        match self.security_key(transport, deadline, token.as_ref()).await {
            // The token lapsed or the service started requiring one: once more with
            // a fresh token, as the SDK does (not when the ECS simply has no agency).
            Err(e) if e.http_status == Some(401) && !e.message.contains(AGENCY_MISSING) => {
                let token = self.new_token(transport, deadline, true).await?;
                self.security_key(transport, deadline, token.as_ref()).await
            }
            other => other,
        }
    }
}

/// `type: federated`: the id token (read afresh for every exchange: Kubernetes
/// rotates projected tokens in place) for an IAM token, the IAM token for
/// temporary keys.
pub struct FederatedFetcher {
    idp_id: String,
    id_token_file: WatchedFile,
    iam_endpoint: String,
}

impl FederatedFetcher {
    pub fn new(idp_id: String, id_token_file: PathBuf, iam_endpoint: String) -> FederatedFetcher {
        FederatedFetcher {
            idp_id,
            id_token_file: WatchedFile::new(id_token_file),
            iam_endpoint,
        }
    }
}

#[async_trait]
impl CredentialFetcher for FederatedFetcher {
    fn kind(&self) -> &'static str {
        "federated"
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let id_token = self.id_token_file.read().map_err(|m| {
            ApiError::new(Reason::Credentials, ACTION_CREATE_TOKEN_WITH_ID_TOKEN, m)
        })?;
        if id_token.is_empty() {
            return Err(ApiError::new(
                Reason::Credentials,
                ACTION_CREATE_TOKEN_WITH_ID_TOKEN,
                format!(
                    "id token file {} is empty",
                    self.id_token_file.path().display()
                ),
            ));
        }
        let body = serde_json::json!({"auth": {"id_token": {"id": id_token}}}).to_string();
        let url = format!("{}{PATH_ID_TOKEN_TOKENS}", self.iam_endpoint);
        let content_type = "application/json;charset=UTF-8";
        let resp = transport
            .execute(
                ACTION_CREATE_TOKEN_WITH_ID_TOKEN,
                deadline,
                || {
                    build(
                        reqwest::Method::POST,
                        &url,
                        ACTION_CREATE_TOKEN_WITH_ID_TOKEN,
                        &[
                            (HEADER_IDP_ID, &self.idp_id, false),
                            ("Content-Type", content_type, false),
                        ],
                        Some(body.clone().into_bytes()),
                    )
                },
                wire::parse_error,
            )
            .await?;
        let subject = resp
            .headers
            .get(HEADER_SUBJECT_TOKEN)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                ApiError::bad_response(
                    ACTION_CREATE_TOKEN_WITH_ID_TOKEN,
                    "the answer has no X-Subject-Token",
                )
            })?;
        let body = serde_json::json!({"auth": {"identity": {
            "methods": ["token"],
            "token": {"id": subject.expose(), "duration_seconds": FEDERATED_DURATION_SECONDS},
        }}})
        .to_string();
        let url = format!("{}{PATH_SECURITY_TOKENS}", self.iam_endpoint);
        let resp = transport
            .execute(
                ACTION_CREATE_TEMPORARY_ACCESS_KEY,
                deadline,
                || {
                    build(
                        reqwest::Method::POST,
                        &url,
                        ACTION_CREATE_TEMPORARY_ACCESS_KEY,
                        &[("Content-Type", content_type, false)],
                        Some(body.clone().into_bytes()),
                    )
                },
                wire::parse_error,
            )
            .await?;
        issued_from(ACTION_CREATE_TEMPORARY_ACCESS_KEY, &resp.body)
    }
}

/// The domain id looked up at IAM once and kept (the SDK caches it per AK or IdP).
pub struct DomainLookup {
    iam_endpoint: String,
    found: Mutex<Option<String>>,
}

#[derive(Deserialize)]
struct DomainsBody {
    #[serde(default)]
    domains: Vec<Domain>,
}

#[derive(Deserialize)]
struct Domain {
    #[serde(default)]
    id: String,
}

impl DomainLookup {
    pub fn new(iam_endpoint: String) -> DomainLookup {
        DomainLookup {
            iam_endpoint,
            found: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<String> {
        self.found.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The domain id of whoever `credentials` belong to: kept after the first
    /// success, so it is looked up once however often the keys rotate.
    async fn domain_id(
        &self,
        transport: &Transport,
        deadline: Instant,
        credentials: &Credentials,
    ) -> Result<String, ApiError> {
        if let Some(d) = self.cached() {
            return Ok(d);
        }
        let hint = format!(
            "set domain_id, or grant the identity the IAM permission {DOMAIN_LOOKUP_PERMISSION} that {ACTION_LIST_AUTH_DOMAINS} (GET {}{PATH_AUTH_DOMAINS}) needs",
            self.iam_endpoint
        );
        let resp = transport
            .execute(
                ACTION_LIST_AUTH_DOMAINS,
                deadline,
                || {
                    super::signed_get(
                        &self.iam_endpoint,
                        credentials,
                        ACTION_LIST_AUTH_DOMAINS,
                        PATH_AUTH_DOMAINS,
                        &[],
                    )
                },
                wire::parse_error,
            )
            .await
            .map_err(|mut e| {
                if e.reason == Reason::Auth {
                    e.message = format!("cannot find the domain id: {}; {hint}", e.message);
                }
                e
            })?;
        let parsed: DomainsBody = serde_json::from_slice(&resp.body)
            .map_err(|e| shape_error(ACTION_LIST_AUTH_DOMAINS, &e))?;
        let id = parsed
            .domains
            .into_iter()
            .map(|d| d.id)
            .find(|id| !id.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    Reason::Auth,
                    ACTION_LIST_AUTH_DOMAINS,
                    format!("cannot find the domain id: IAM listed no domain; {hint}"),
                )
            })?;
        *self.found.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());
        tracing::info!(source = %transport.source, domain_id = %id, "Huawei domain id found through IAM");
        Ok(id)
    }
}

/// Every Huawei fetcher's wrapper: the configured `domain_id` (inline or file),
/// else the one IAM knows when a lookup applies.
pub struct HuaweiFetcher {
    inner: Box<dyn CredentialFetcher>,
    domain: Option<(SecretSource, Option<WatchedFile>)>,
    lookup: Option<DomainLookup>,
}

impl HuaweiFetcher {
    /// `domain`: a configured domain id the inner fetcher does not read itself.
    pub fn new(
        inner: Box<dyn CredentialFetcher>,
        domain: Option<SecretSource>,
        lookup: Option<DomainLookup>,
    ) -> HuaweiFetcher {
        let domain = domain.map(|s| {
            let file = match &s {
                SecretSource::File(p) => Some(WatchedFile::new(p.clone())),
                SecretSource::Value(_) => None,
            };
            (s, file)
        });
        HuaweiFetcher {
            inner,
            domain,
            lookup,
        }
    }

    fn configured_domain(&self) -> Result<Option<String>, ApiError> {
        let read = |m: String| ApiError::new(Reason::Credentials, "ReadCredentials", m);
        Ok(match &self.domain {
            None => None,
            Some((SecretSource::Value(v), _)) => Some(v.expose().to_string()),
            Some((_, Some(f))) => Some(f.read().map_err(read)?),
            Some((SecretSource::File(p), None)) => {
                return Err(read(format!("{}: not watched", p.display())));
            }
        }
        .filter(|d| !d.is_empty()))
    }
}

#[async_trait]
impl CredentialFetcher for HuaweiFetcher {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn changed(&self) -> bool {
        self.inner.changed()
            || self
                .domain
                .as_ref()
                .and_then(|(_, f)| f.as_ref())
                .is_some_and(WatchedFile::changed)
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let mut issued = self.inner.fetch(transport, deadline).await?;
        if issued.credentials.domain_id.is_none() {
            issued.credentials.domain_id = match self.configured_domain()? {
                Some(d) => Some(d),
                None => match &self.lookup {
                    Some(lookup) => Some(
                        lookup
                            .domain_id(transport, deadline, &issued.credentials)
                            .await?,
                    ),
                    None => None,
                },
            };
        }
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_parses_with_and_without_fraction() {
        assert_eq!(
            parse_expiry("2024-05-01T12:00:00.500000Z"),
            Some(1714564800.5)
        );
        assert_eq!(parse_expiry("2024-05-01T12:00:00Z"), Some(1714564800.0));
        assert_eq!(parse_expiry("2024-05-01 12:00"), None);
    }

    #[test]
    fn malformed_answers_never_echo_their_text() {
        let body = br#"{"credential":{"access":"AK","secret":"TOPSECRET","securitytoken":7,"expires_at":"x"}}"#;
        let e = issued_from(ACTION_METADATA_SECURITY_KEY, body).err();
        let shown = format!("{e:?}");
        assert!(e.is_some());
        assert!(!shown.contains("TOPSECRET"), "{shown}");
    }
}
