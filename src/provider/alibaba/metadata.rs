//! `type: ecs_ram_role`: temporary credentials of the instance's RAM role from the
//! ECS metadata service, as credentials-go `credentials/providers/ecs_ram_role.go`
//! fetches them: IMDSv2 first (`PUT /latest/api/token` with
//! `X-aliyun-ecs-metadata-token-ttl-seconds`, then every `GET` with
//! `X-aliyun-ecs-metadata-token`), falling back to plain IMDSv1 requests when the
//! token cannot be had or a request with it fails, unless the fallback is off.

use super::credentials::EcsRamRole;
use super::sts::StsCredentials;
use crate::credentials::{CredentialFetcher, Issued};
use crate::error::{ApiError, Reason};
use crate::secret::Secret;
use crate::transport::Transport;
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::time::Instant;

pub const ACTION_METADATA_TOKEN: &str = "MetadataToken";
pub const ACTION_METADATA_ROLE_NAME: &str = "MetadataRoleName";
pub const ACTION_METADATA_ROLE: &str = "MetadataRole";
pub const TOKEN_PATH: &str = "/latest/api/token";
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";
pub const TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
pub const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
/// Six hours, what the SDK asks for.
pub const TOKEN_TTL_SECONDS: &str = "21600";

/// Non-2xx answers of the metadata service: it has no error document, so the
/// status decides and the body is not quoted.
pub fn metadata_error(
    action: &'static str,
    status: u16,
    _headers: &HeaderMap,
    _body: &[u8],
) -> ApiError {
    let reason = match status {
        401 | 403 => Reason::Auth,
        404 => Reason::NotFound,
        429 => Reason::Throttled,
        500..=599 => Reason::Server,
        _ => Reason::BadRequest,
    };
    let hint = match (action, status) {
        (ACTION_METADATA_ROLE | ACTION_METADATA_ROLE_NAME, 404) => {
            " (is a RAM role attached to the instance, and is role_name right?)"
        }
        _ => "",
    };
    ApiError::new(
        reason,
        action,
        format!("the metadata service answered HTTP {status}{hint}"),
    )
    .with_status(status)
}

/// The answer for a role. Not `Debug`.
#[derive(Deserialize)]
struct RoleAnswer {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(flatten)]
    credentials: StsCredentials,
}

pub struct EcsRamRoleFetcher {
    config: EcsRamRole,
    base: Result<reqwest::Url, String>,
}

impl EcsRamRoleFetcher {
    pub fn new(config: EcsRamRole) -> EcsRamRoleFetcher {
        EcsRamRoleFetcher {
            base: reqwest::Url::parse(&config.metadata_endpoint).map_err(|e| {
                format!(
                    "metadata_endpoint {:?} is not a URL: {e}",
                    config.metadata_endpoint
                )
            }),
            config,
        }
    }

    fn url(&self, action: &'static str, path: &str) -> Result<reqwest::Url, ApiError> {
        crate::provider::endpoint::url_under(&self.base, action, path)
    }

    /// An IMDSv2 session token, or `None` when the service gives none and IMDSv1
    /// may be used instead.
    async fn token(
        &self,
        transport: &Transport,
        deadline: Instant,
    ) -> Result<Option<Secret>, ApiError> {
        let action = ACTION_METADATA_TOKEN;
        let url = self.url(action, TOKEN_PATH)?;
        let build = || {
            let mut request = reqwest::Request::new(reqwest::Method::PUT, url.clone());
            request.headers_mut().insert(
                HeaderName::from_static(TOKEN_TTL_HEADER),
                HeaderValue::from_static(TOKEN_TTL_SECONDS),
            );
            Ok(request)
        };
        let answer = transport
            .execute(action, deadline, build, metadata_error)
            .await
            .and_then(|r| {
                let token = String::from_utf8(r.body.to_vec()).unwrap_or_default();
                let token = token.trim();
                if token.is_empty() {
                    Err(ApiError::bad_response(
                        action,
                        "the metadata token is empty",
                    ))
                } else {
                    Ok(Secret::new(token))
                }
            });
        match answer {
            Ok(token) => Ok(Some(token)),
            Err(e) if self.config.imdsv1_fallback => {
                tracing::debug!(
                    source = %transport.source, error = %e,
                    "no IMDSv2 metadata token; using IMDSv1 (imdsv1_fallback)"
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn send(
        &self,
        transport: &Transport,
        deadline: Instant,
        action: &'static str,
        url: &reqwest::Url,
        token: Option<&Secret>,
    ) -> Result<crate::transport::ApiResponse, ApiError> {
        let build = || {
            let mut request = reqwest::Request::new(reqwest::Method::GET, url.clone());
            if let Some(t) = token {
                let mut value = HeaderValue::from_str(t.expose()).map_err(|_| {
                    ApiError::bad_response(action, "the metadata token is not a header value")
                })?;
                value.set_sensitive(true);
                request
                    .headers_mut()
                    .insert(HeaderName::from_static(TOKEN_HEADER), value);
            }
            Ok(request)
        };
        transport
            .execute(action, deadline, build, metadata_error)
            .await
    }

    /// `GET path`, with the token when there is one; without it again if that
    /// fails and the fallback is allowed (credentials-go `getWithFallback`).
    async fn get(
        &self,
        transport: &Transport,
        deadline: Instant,
        action: &'static str,
        path: &str,
        token: Option<&Secret>,
    ) -> Result<bytes::Bytes, ApiError> {
        let url = self.url(action, path)?;
        match self.send(transport, deadline, action, &url, token).await {
            Ok(r) => Ok(r.body),
            Err(e) if token.is_some() && self.config.imdsv1_fallback => {
                tracing::debug!(
                    source = %transport.source, action, error = %e,
                    "metadata request with the IMDSv2 token failed; trying IMDSv1"
                );
                self.send(transport, deadline, action, &url, None)
                    .await
                    .map(|r| r.body)
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl CredentialFetcher for EcsRamRoleFetcher {
    fn kind(&self) -> &'static str {
        "ecs_ram_role"
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let token = self.token(transport, deadline).await?;
        let role = match &self.config.role_name {
            Some(role) => role.clone(),
            None => {
                let action = ACTION_METADATA_ROLE_NAME;
                let body = self
                    .get(
                        transport,
                        deadline,
                        action,
                        CREDENTIALS_PATH,
                        token.as_ref(),
                    )
                    .await?;
                let text = String::from_utf8_lossy(&body);
                let role = text.lines().next().unwrap_or("").trim().to_string();
                if role.is_empty() || role.contains('/') {
                    return Err(ApiError::bad_response(
                        action,
                        "the metadata service names no RAM role (none attached to the instance?)",
                    ));
                }
                role
            }
        };
        let action = ACTION_METADATA_ROLE;
        let path = format!(
            "{CREDENTIALS_PATH}{}",
            crate::provider::percent_encode(&role)
        );
        let body = self
            .get(transport, deadline, action, &path, token.as_ref())
            .await?;
        let answer: RoleAnswer = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_response(
                action,
                format!(
                    "the answer is not JSON credentials (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        match answer.code.as_deref() {
            Some("Success") => {}
            other => {
                let shown: String = other
                    .unwrap_or("")
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                    .take(64)
                    .collect();
                return Err(ApiError::bad_response(
                    action,
                    format!("role {role}: Code {shown:?} is not Success"),
                ));
            }
        }
        answer.credentials.into_issued(action)
    }
}
