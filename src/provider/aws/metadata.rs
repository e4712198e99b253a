//! Credentials from the machine the exporter runs on (reference §11.5, §11.6):
//! container credentials (ECS task roles, EKS Pod Identity) and the EC2 instance
//! role from IMDSv2, falling back to IMDSv1 the way botocore does.

use super::credentials::{Container, Imds};
use crate::credentials::{CredentialFetcher, Issued};
use crate::error::{ApiError, Reason};
use crate::secret::{Credentials, Secret};
use crate::transport::Transport;
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::time::Instant;

pub const ACTION_CONTAINER: &str = "ContainerCredentials";
pub const ACTION_IMDS_TOKEN: &str = "MetadataToken";
pub const ACTION_IMDS_ROLE_NAME: &str = "MetadataRoleName";
pub const ACTION_IMDS_ROLE: &str = "MetadataRole";
pub const IMDS_TOKEN_PATH: &str = "/latest/api/token";
pub const IMDS_CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";
pub const IMDS_TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
pub const IMDS_TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Six hours, what botocore asks for.
pub const IMDS_TOKEN_TTL_SECONDS: &str = "21600";

/// Non-2xx answers of the metadata services: no error document, the status decides
/// and the body is not quoted.
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
    ApiError::new(
        reason,
        action,
        format!("the credentials service answered HTTP {status}"),
    )
    .with_status(status)
}

/// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}` of both services.
/// Not `Debug`.
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<String>,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "Expiration")]
    expiration: Option<String>,
}

/// Temporary credentials of a container/IMDS answer; a 200 lacking one of the four
/// fields (an error document) gives none.
pub fn parse_answer(action: &'static str, body: &[u8]) -> Result<Issued, ApiError> {
    let a: Answer = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_response(
            action,
            format!(
                "the answer is not credentials JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let missing = |f: &str| ApiError::bad_response(action, format!("the answer has no {f}"));
    let id = a
        .access_key_id
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("AccessKeyId"))?;
    let secret = a
        .secret_access_key
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("SecretAccessKey"))?;
    let token = a
        .token
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("Token"))?;
    let expiration = a.expiration.ok_or_else(|| missing("Expiration"))?;
    let expires_at = crate::model::parse_time(Some(&expiration))
        .ok_or_else(|| {
            ApiError::bad_response(action, format!("Expiration {expiration:?} is not ISO 8601"))
        })?
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

fn get(
    url: reqwest::Url,
    headers: &[(&'static str, &str)],
    action: &'static str,
) -> Result<reqwest::Request, ApiError> {
    let mut request = reqwest::Request::new(reqwest::Method::GET, url);
    for (name, value) in headers {
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            ApiError::new(
                Reason::Credentials,
                action,
                format!("invalid {name} header value"),
            )
        })?;
        v.set_sensitive(true);
        request
            .headers_mut()
            .insert(HeaderName::from_static(name), v);
    }
    Ok(request)
}

/// Container credentials.
pub struct ContainerFetcher {
    config: Container,
    url: Result<reqwest::Url, String>,
}

impl ContainerFetcher {
    pub fn new(config: Container) -> ContainerFetcher {
        ContainerFetcher {
            url: reqwest::Url::parse(&config.url)
                .map_err(|e| format!("container credentials URL is not a URL: {e}")),
            config,
        }
    }

    /// The authorization value: the token file's content (read at every fetch, so a
    /// rotated token is used), else the token variable. A value with CR or LF is
    /// refused.
    fn authorization(&self) -> Result<Option<Secret>, ApiError> {
        let value = match &self.config.token_file {
            Some(path) => Some(Secret::new(std::fs::read_to_string(path).map_err(|e| {
                ApiError::new(
                    Reason::Credentials,
                    ACTION_CONTAINER,
                    format!(
                        "cannot read the authorization token file {}: {e}",
                        path.display()
                    ),
                )
            })?)),
            None => self.config.token.clone(),
        };
        if value
            .as_ref()
            .is_some_and(|v| v.expose().trim().contains(['\r', '\n']))
        {
            return Err(ApiError::new(
                Reason::Credentials,
                ACTION_CONTAINER,
                "the container authorization token contains a line break",
            ));
        }
        Ok(value.map(|v| Secret::new(v.expose().trim())))
    }
}

#[async_trait]
impl CredentialFetcher for ContainerFetcher {
    fn kind(&self) -> &'static str {
        "container"
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let action = ACTION_CONTAINER;
        let url = self
            .url
            .clone()
            .map_err(|m| ApiError::new(Reason::BadRequest, action, m))?;
        let authorization = self.authorization()?;
        let build = || {
            let mut headers: Vec<(&'static str, &str)> = vec![("accept", "application/json")];
            if let Some(a) = &authorization {
                headers.push(("authorization", a.expose()));
            }
            get(url.clone(), &headers, action)
        };
        let answer = transport
            .execute(action, deadline, build, metadata_error)
            .await?;
        parse_answer(action, &answer.body)
    }
}

/// The EC2 instance role from the instance metadata service.
pub struct ImdsFetcher {
    config: Imds,
    base: Result<reqwest::Url, String>,
}

impl ImdsFetcher {
    pub fn new(config: Imds) -> ImdsFetcher {
        ImdsFetcher {
            base: reqwest::Url::parse(&config.endpoint)
                .map_err(|e| format!("metadata endpoint {:?} is not a URL: {e}", config.endpoint)),
            config,
        }
    }

    fn url(&self, action: &'static str, path: &str) -> Result<reqwest::Url, ApiError> {
        crate::provider::endpoint::url_under(&self.base, action, path)
    }

    /// The IMDSv2 session token, or `None` for IMDSv1 when the service answers the
    /// PUT with 403, 404 or 405 (or does not answer) and the fallback is allowed; a
    /// 400 is an error (botocore's rules, §11.6).
    async fn token(
        &self,
        transport: &Transport,
        deadline: Instant,
    ) -> Result<Option<Secret>, ApiError> {
        let action = ACTION_IMDS_TOKEN;
        let url = self.url(action, IMDS_TOKEN_PATH)?;
        let build = || {
            let mut request = reqwest::Request::new(reqwest::Method::PUT, url.clone());
            request.headers_mut().insert(
                HeaderName::from_static(IMDS_TOKEN_TTL_HEADER),
                HeaderValue::from_static(IMDS_TOKEN_TTL_SECONDS),
            );
            Ok(request)
        };
        match transport
            .execute(action, deadline, build, metadata_error)
            .await
        {
            Ok(r) => {
                let token = String::from_utf8_lossy(&r.body).trim().to_string();
                if token.is_empty() {
                    return Err(ApiError::bad_response(
                        action,
                        "the metadata token is empty",
                    ));
                }
                Ok(Some(Secret::new(token)))
            }
            Err(e)
                if self.config.v1_fallback
                    && (matches!(e.http_status, Some(403..=405))
                        || e.reason == Reason::Timeout) =>
            {
                tracing::debug!(source = %transport.source, error = %e, "no IMDSv2 token; using IMDSv1");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn read(
        &self,
        transport: &Transport,
        deadline: Instant,
        action: &'static str,
        path: &str,
        token: Option<&Secret>,
    ) -> Result<bytes::Bytes, ApiError> {
        let url = self.url(action, path)?;
        let build = || {
            let headers: Vec<(&'static str, &str)> = token
                .map(|t| (IMDS_TOKEN_HEADER, t.expose()))
                .into_iter()
                .collect();
            get(url.clone(), &headers, action)
        };
        Ok(transport
            .execute(action, deadline, build, metadata_error)
            .await?
            .body)
    }
}

#[async_trait]
impl CredentialFetcher for ImdsFetcher {
    fn kind(&self) -> &'static str {
        "imds"
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let token = self.token(transport, deadline).await?;
        let names = self
            .read(
                transport,
                deadline,
                ACTION_IMDS_ROLE_NAME,
                IMDS_CREDENTIALS_PATH,
                token.as_ref(),
            )
            .await?;
        let names = String::from_utf8_lossy(&names);
        let role = names
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    Reason::Credentials,
                    ACTION_IMDS_ROLE_NAME,
                    "no IAM role is attached to the instance",
                )
            })?
            .to_string();
        let path = format!(
            "{IMDS_CREDENTIALS_PATH}{}",
            super::sign::uri_encode(&role, false)
        );
        let body = self
            .read(transport, deadline, ACTION_IMDS_ROLE, &path, token.as_ref())
            .await?;
        parse_answer(ACTION_IMDS_ROLE, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_document_gives_no_credentials() {
        let ok = br#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2024-05-01T13:00:00Z"}"#;
        assert_eq!(
            parse_answer("M", ok).map(|i| i.expires_at),
            Ok(Some(1_714_568_400.0))
        );
        let err = br#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"no"}"#;
        assert_eq!(
            parse_answer("M", err).map(|_| ()).map_err(|e| e.reason),
            Err(Reason::BadResponse)
        );
    }
}
