//! STS (query API 2011-06-15, reference §11.3/§11.4): `AssumeRole`, signed with
//! SigV4 service `sts` over the base key, and `AssumeRoleWithWebIdentity`,
//! unsigned, with the token file read afresh for every call. Both are `POST /` with
//! a form body and answer XML.

use super::credentials::{AssumeRole, SESSION_NAME_PREFIX, WebIdentity};
use super::{Endpoint, post, sign, wire};
use crate::credentials::{CredentialFetcher, Issued, StaticKeyFetcher};
use crate::error::{ApiError, Reason};
use crate::secret::{Credentials, Secret};
use crate::transport::Transport;
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

pub const STS_VERSION: &str = "2011-06-15";
pub const SERVICE: &str = "sts";
pub const ACTION_ASSUME_ROLE: &str = "AssumeRole";
pub const ACTION_ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "AssumeRoleWithWebIdentity";
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Form encoding as botocore writes it: unreserved characters kept, the rest `%XX`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                sign::uri_encode(k, false),
                sign::uri_encode(v, false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The region an STS endpoint signs for: `sts.amazonaws.com` is us-east-1,
/// `sts[-fips].<region>.amazonaws.com[.cn]` its region; any other host (a proxy,
/// the simulator) `fallback`.
pub fn signing_region(endpoint: &Endpoint, fallback: &str) -> String {
    let host = endpoint.host().split(':').next().unwrap_or_default();
    if host == "sts.amazonaws.com" {
        return "us-east-1".into();
    }
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        ["sts" | "sts-fips", region, "amazonaws", "com"]
        | ["sts" | "sts-fips", region, "amazonaws", "com", "cn"] => (*region).to_string(),
        _ => fallback.to_string(),
    }
}

/// The session name sent: the configured one, else `handshake-exporter-<unix
/// time>` as the SDKs name theirs (`botocore-session-<time>`).
fn session_name(configured: &Option<String>) -> String {
    configured.clone().unwrap_or_else(|| {
        format!(
            "{SESSION_NAME_PREFIX}-{}",
            crate::clock::unix_now().floor() as u64
        )
    })
}

/// The AssumeRole form body, members in botocore's order.
pub fn assume_role_body(
    role_arn: &str,
    session_name: &str,
    external_id: Option<&str>,
    duration_seconds: Option<u64>,
) -> String {
    let duration = duration_seconds.map(|d| d.to_string());
    let mut pairs: Vec<(&str, &str)> = vec![
        ("Action", ACTION_ASSUME_ROLE),
        ("Version", STS_VERSION),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
    ];
    if let Some(e) = external_id {
        pairs.push(("ExternalId", e));
    }
    if let Some(d) = &duration {
        pairs.push(("DurationSeconds", d));
    }
    form(&pairs)
}

/// Signed headers of an AssumeRole (`Content-Type`, `X-Amz-Date`, the base key's
/// token if any, `Authorization`), date given.
pub fn sign_assume_role(
    body: &str,
    endpoint: &Endpoint,
    region: &str,
    base: &Credentials,
    amz_date: &str,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = vec![
        ("Content-Type".into(), FORM_CONTENT_TYPE.into()),
        ("X-Amz-Date".into(), amz_date.into()),
    ];
    if let Some(token) = &base.security_token {
        headers.push(("X-Amz-Security-Token".into(), token.expose().to_string()));
    }
    let mut to_sign = headers.clone();
    to_sign.push(("host".into(), endpoint.host().to_string()));
    let signed = sign::sign(
        &sign::Request {
            method: "POST",
            path: endpoint.path(),
            query: &[],
            headers: &to_sign,
            body: body.as_bytes(),
        },
        &sign::Scope {
            access_key_id: &base.access_key_id,
            secret: base.access_key_secret.expose(),
            region,
            service: SERVICE,
            amz_date,
        },
    );
    headers.push(("Authorization".into(), signed.authorization));
    headers
}

/// The text of the first `<tag>…</tag>` in `xml` (entities decoded). Enough for
/// STS's flat answers; never used on anything but STS and its errors.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    let raw = xml[start..start + len].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Temporary credentials of an AssumeRole* answer; errors name what is missing,
/// never a value.
pub fn parse_credentials(action: &'static str, body: &[u8]) -> Result<Issued, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_response(action, "the answer is not UTF-8"))?;
    let block = xml_text(text, "Credentials")
        .ok_or_else(|| ApiError::bad_response(action, "the answer has no Credentials"))?;
    let need = |tag: &str| {
        xml_text(&block, tag)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad_response(action, format!("the answer has no {tag}")))
    };
    let id = need("AccessKeyId")?;
    let secret = need("SecretAccessKey")?;
    let token = need("SessionToken")?;
    let expiration = need("Expiration")?;
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

/// STS error codes beyond the Organizations ones [`wire::reason_for`] knows.
fn sts_reason(status: u16, code: &str) -> Reason {
    match code {
        "InvalidIdentityToken" | "IDPRejectedClaim" | "RegionDisabledException" => Reason::Auth,
        "IDPCommunicationError" => Reason::Server,
        "ValidationError" | "MalformedPolicyDocument" | "PackedPolicyTooLarge" => {
            Reason::BadRequest
        }
        _ => wire::reason_for(status, code),
    }
}

/// STS's XML error answer (`<ErrorResponse><Error><Code>…`) as an [`ApiError`].
pub fn parse_error(
    action: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiError {
    let text = String::from_utf8_lossy(body);
    let code = xml_text(&text, "Code").unwrap_or_else(|| status.to_string());
    let message = xml_text(&text, "Message").unwrap_or_default();
    let request_id = xml_text(&text, "RequestId").or_else(|| {
        headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    ApiError::new(sts_reason(status, &code), action, message)
        .with_status(status)
        .with_code(Some(code))
        .with_request_id(request_id)
        .with_retry_after(crate::transport::retry_after_hint(headers))
}

/// What an AssumeRole is signed with.
enum Base {
    /// Keys; files re-read at every AssumeRole.
    Keys(StaticKeyFetcher),
    /// Another credential type's fetcher (web identity, container, IMDS, keys given
    /// in code). Fetched afresh for every AssumeRole rather than cached: that call
    /// happens at most twice per role session, the base's own credentials may have
    /// lapsed in between, and one more call through the same transport is cheap.
    Fetched(Box<dyn CredentialFetcher>),
}

/// `type: assume_role`.
pub struct AssumeRoleFetcher {
    config: AssumeRole,
    base: Base,
    endpoint: Result<Endpoint, String>,
}

impl AssumeRoleFetcher {
    pub fn new(config: AssumeRole) -> AssumeRoleFetcher {
        let base = match config.base.as_ref() {
            super::credentials::AwsCredentialConfig::AccessKey(k) => {
                Base::Keys(StaticKeyFetcher::new(k.clone(), None))
            }
            other => Base::Fetched(super::credentials::fetcher(other)),
        };
        AssumeRoleFetcher {
            base,
            endpoint: Endpoint::parse(&config.sts_endpoint),
            config,
        }
    }

    /// The base identity's credentials now. A failure keeps the base's action
    /// (`AssumeRoleWithWebIdentity`, `ContainerCredentials`, ...) and code, so the
    /// error names the call that failed.
    async fn base_credentials(
        &self,
        transport: &Transport,
        deadline: Instant,
    ) -> Result<Credentials, ApiError> {
        match &self.base {
            Base::Keys(keys) => keys.read_now().map_err(|m| {
                ApiError::new(
                    Reason::Credentials,
                    ACTION_ASSUME_ROLE,
                    format!("base access key: {m}"),
                )
            }),
            Base::Fetched(f) => match f.fetch(transport, deadline).await {
                Ok(issued) => Ok(issued.credentials),
                Err(mut e) => {
                    e.message = format!("base identity ({}): {}", f.kind(), e.message);
                    Err(e)
                }
            },
        }
    }
}

#[async_trait]
impl CredentialFetcher for AssumeRoleFetcher {
    fn kind(&self) -> &'static str {
        "assume_role"
    }

    fn changed(&self) -> bool {
        match &self.base {
            Base::Keys(k) => k.changed(),
            Base::Fetched(f) => f.changed(),
        }
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let action = ACTION_ASSUME_ROLE;
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|m| ApiError::new(Reason::BadRequest, action, format!("sts_endpoint: {m}")))?;
        let base = self.base_credentials(transport, deadline).await?;
        let c = &self.config;
        let body = assume_role_body(
            &c.role_arn,
            &session_name(&c.role_session_name),
            c.external_id.as_deref(),
            Some(c.duration.as_secs()),
        );
        let region = signing_region(endpoint, super::settings::DEFAULT_REGION);
        let build = || {
            let date = chrono::Utc::now().format(sign::DATE_FORMAT).to_string();
            let headers = sign_assume_role(&body, endpoint, &region, &base, &date);
            post(action, endpoint.url(), headers, body.clone().into_bytes())
        };
        let answer = transport
            .execute(action, deadline, build, parse_error)
            .await?;
        parse_credentials(action, &answer.body)
    }
}

/// `type: web_identity` (EKS IRSA).
pub struct WebIdentityFetcher {
    config: WebIdentity,
    endpoint: Result<Endpoint, String>,
}

impl WebIdentityFetcher {
    pub fn new(config: WebIdentity) -> WebIdentityFetcher {
        WebIdentityFetcher {
            endpoint: Endpoint::parse(&config.sts_endpoint),
            config,
        }
    }
}

/// The AssumeRoleWithWebIdentity form body, members in botocore's order.
pub fn web_identity_body(role_arn: &str, session_name: &str, token: &str, duration: u64) -> String {
    form(&[
        ("Action", ACTION_ASSUME_ROLE_WITH_WEB_IDENTITY),
        ("Version", STS_VERSION),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", token),
        ("DurationSeconds", &duration.to_string()),
    ])
}

#[async_trait]
impl CredentialFetcher for WebIdentityFetcher {
    fn kind(&self) -> &'static str {
        "web_identity"
    }

    async fn fetch(&self, transport: &Transport, deadline: Instant) -> Result<Issued, ApiError> {
        let action = ACTION_ASSUME_ROLE_WITH_WEB_IDENTITY;
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|m| ApiError::new(Reason::BadRequest, action, format!("sts_endpoint: {m}")))?;
        let c = &self.config;
        // Read for every call and sent as read: the kubelet rewrites it in place.
        let token = std::fs::read_to_string(&c.token_file).map_err(|e| {
            ApiError::new(
                Reason::Credentials,
                action,
                format!(
                    "cannot read web_identity_token_file {}: {e}",
                    c.token_file.display()
                ),
            )
        })?;
        if token.trim().is_empty() {
            return Err(ApiError::new(
                Reason::Credentials,
                action,
                format!(
                    "web_identity_token_file {} is empty",
                    c.token_file.display()
                ),
            ));
        }
        let body = web_identity_body(
            &c.role_arn,
            &session_name(&c.role_session_name),
            &token,
            c.duration.as_secs(),
        );
        // Unsigned (model `authtype: none`): no Authorization, no date, no token.
        let build = || {
            post(
                action,
                endpoint.url(),
                vec![("Content-Type".into(), FORM_CONTENT_TYPE.into())],
                body.clone().into_bytes(),
            )
        };
        let answer = transport
            .execute(action, deadline, build, parse_error)
            .await?;
        parse_credentials(action, &answer.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../tests/vectors/aws-sign-vectors.json"))
            .expect("vectors")
    }

    /// The three STS vectors: body and signed headers as botocore sends them.
    #[test]
    fn assume_role_requests_match_botocore() {
        let all = vectors();
        let mut checked = 0;
        for v in all["vectors"].as_array().expect("vectors") {
            if v["service"] != "sts" {
                continue;
            }
            let p = &v["inputs"]["params"];
            let req = &v["request"];
            let body = assume_role_body(
                p["RoleArn"].as_str().expect("arn"),
                p["RoleSessionName"].as_str().expect("name"),
                p["ExternalId"].as_str(),
                p["DurationSeconds"].as_u64(),
            );
            assert_eq!(body, req["body"].as_str().expect("body"), "{}", v["name"]);
            let endpoint = Endpoint::parse(req["url"].as_str().expect("url")).expect("endpoint");
            let region = signing_region(&endpoint, "us-east-1");
            assert_eq!(
                region,
                v["region"].as_str().expect("region"),
                "{}",
                v["name"]
            );
            let base = Credentials {
                access_key_id: v["access_key"].as_str().expect("ak").into(),
                access_key_secret: Secret::new(v["secret_key"].as_str().expect("sk")),
                security_token: v["session_token"].as_str().map(Secret::new),
                domain_id: None,
            };
            let headers = sign_assume_role(
                &body,
                &endpoint,
                &region,
                &base,
                v["x_amz_date"].as_str().expect("d"),
            );
            let unsigned = [
                "User-Agent",
                "amz-sdk-invocation-id",
                "amz-sdk-request",
                "Content-Length",
            ];
            let want: Vec<(String, String)> = req["headers"]
                .as_object()
                .expect("headers")
                .iter()
                .filter(|(k, _)| !unsigned.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            // serde_json's map is sorted by name: compare as sets.
            let mut headers = headers;
            headers.sort();
            let mut want = want;
            want.sort();
            assert_eq!(headers, want, "{}", v["name"]);
            checked += 1;
        }
        assert_eq!(checked, 3);
    }

    #[test]
    fn the_unsigned_web_identity_request_matches_botocore() {
        let all = vectors();
        let u = &all["unsigned_requests"][0];
        let p = &u["params"];
        let body = web_identity_body(
            p["RoleArn"].as_str().expect("arn"),
            p["RoleSessionName"].as_str().expect("name"),
            p["WebIdentityToken"].as_str().expect("token"),
            p["DurationSeconds"].as_u64().expect("duration"),
        );
        assert_eq!(body, u["request"]["body"].as_str().expect("body"));
        assert_eq!(u["request"]["headers"]["Content-Type"], FORM_CONTENT_TYPE);
    }

    #[test]
    fn answers_and_errors_parse() {
        let xml = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult><AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>
    <Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s/k+e</SecretAccessKey>
      <SessionToken>t&amp;k==</SessionToken><Expiration>2024-05-01T13:00:00Z</Expiration></Credentials>
  </AssumeRoleResult></AssumeRoleResponse>"#;
        let issued = parse_credentials("AssumeRole", xml.as_bytes()).expect("parses");
        assert_eq!(issued.credentials.access_key_id, "ASIAX");
        assert_eq!(
            issued
                .credentials
                .security_token
                .as_ref()
                .map(|t| t.expose().to_string()),
            Some("t&k==".into())
        );
        assert_eq!(issued.expires_at, Some(1_714_568_400.0));
        let e = parse_credentials("AssumeRole", b"<html/>")
            .map(|_| ())
            .expect_err("no creds");
        assert_eq!(e.reason, Reason::BadResponse);
        let all = vectors();
        for c in all["sdk_parsing"]["errors"].as_array().expect("errors") {
            if c.get("service").is_none() {
                continue;
            }
            let e = parse_error(
                "AssumeRole",
                c["http_status"].as_u64().expect("status") as u16,
                &HeaderMap::new(),
                c["body"].as_str().expect("body").as_bytes(),
            );
            assert_eq!(e.code.as_deref(), c["error_code"].as_str(), "{}", c["body"]);
        }
        let e = parse_error("AssumeRole", 403, &HeaderMap::new(), b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>");
        assert_eq!(e.reason, Reason::Auth);
        let e = parse_error(
            "AssumeRole",
            400,
            &HeaderMap::new(),
            b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>",
        );
        assert_eq!(e.reason, Reason::Throttled);
    }
}
