//! The simulated Alibaba identity services: STS (API 2015-04-01: `AssumeRole`,
//! `AssumeRoleWithOIDC`) on `/` next to Resource Manager, and the ECS metadata
//! service under `/latest/`. They issue temporary credentials with
//! [`Sim::issue_session`], which the Resource Manager handler then accepts until
//! they expire.
//!
//! Error codes are STS's documented ones (help.aliyun.com "STS error codes" and
//! the "common STS errors" page): `AuthenticationFail.NoPermission` (401, also
//! what a trust policy's `sts:ExternalId` condition yields when the ExternalId is
//! wrong or missing), `AuthenticationFail.OIDCToken.Invalid` /
//! `.InvalidSignature` (401), `NoPermission` (403, caller not trusted by the
//! role), `EntityNotExist.Role` (404), `InvalidParameter.RoleSessionName` /
//! `.DurationSeconds` (400), `MissingSecurityToken`, `SignatureDoesNotMatch`,
//! `InvalidSecurityToken.Expired` (400).

use super::alibaba::{
    SimError, check_security_token, check_timestamp, new_request_id, signature_mismatch,
};
pub use super::identity_log::{CallLog, IdentityRequest, MAX_RECORDED};
use super::{Sim, SimRequest, SimResponse};
use crate::provider::alibaba::sign;
use crate::query::parse_query;
use hyper::Method;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

pub const STS_VERSION: &str = "2015-04-01";

/// A RAM role that can be assumed.
#[derive(Clone, Debug, Default)]
pub struct Role {
    /// Access key id of the tenant whose data the role's sessions reach.
    pub tenant: String,
    /// The `sts:ExternalId` condition of the role's trust policy.
    pub external_id: Option<String>,
    /// Tenants (access key ids) the trust policy lets call AssumeRole; `None` =
    /// any tenant (sessions count as their tenant).
    pub trusted: Option<Vec<String>>,
}

/// Whether the metadata service hands out IMDSv2 session tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Imdsv2 {
    /// Tokens offered; requests without one are answered too (the ECS default).
    #[default]
    Optional,
    /// Requests without a valid token get 401 (instances in "IMDSv2 only" mode).
    Required,
    /// `PUT /latest/api/token` answers 404 (an old image): IMDSv1 only.
    Unavailable,
}

/// What the simulated identity services accept (roles, tokens, instance identity).
#[derive(Default, Debug)]
pub struct IdentityState {
    /// Role ARN → role.
    pub roles: HashMap<String, Role>,
    /// OIDC provider ARN → the one token it accepts.
    pub oidc_providers: HashMap<String, String>,
    /// The instance's RAM role: (role name, tenant access key id).
    pub instance_role: Option<(String, String)>,
    pub imdsv2: Imdsv2,
    /// Issued metadata tokens → their expiry.
    pub metadata_tokens: HashMap<String, chrono::DateTime<chrono::Utc>>,
    /// STS and the metadata service answer 503 / 500 to everything.
    pub outage: bool,
    /// Calls per action and the last requests, counted before any check.
    pub log: CallLog,
}

impl IdentityState {
    pub fn call_count(&self, action: &str) -> u64 {
        self.log.call_count(action)
    }

    /// The last request of `action`.
    pub fn last(&self, action: &str) -> Option<&IdentityRequest> {
        self.log.last(action)
    }

    fn record(&mut self, req: &SimRequest, action: &str, params: &[(String, String)]) {
        self.log.record(req, action, params);
    }
}

/// Answer a request meant for an identity service; `None` for any other request.
impl Sim {
    /// Run `f` on the Alibaba identity configuration (roles, instance role, OIDC).
    pub fn with_alibaba_identity<R>(&self, f: impl FnOnce(&mut IdentityState) -> R) -> R {
        self.with_state(f)
    }
}

pub async fn handle(sim: &Sim, req: &SimRequest) -> Option<SimResponse> {
    if is_ecs_metadata(req) {
        return Some(metadata(sim, req));
    }
    if req.path != "/" || !(req.method == Method::POST || req.method == Method::GET) {
        return None;
    }
    let mut params = parse_query(&req.query, true);
    let form = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        params.extend(parse_query(&String::from_utf8_lossy(&req.body), true));
    }
    let action = first(&params, "Action")?.to_string();
    if action != "AssumeRole" && action != "AssumeRoleWithOIDC" {
        return None;
    }
    // Other clouds' STS speak the same action names with their own API version.
    if first(&params, "Version").is_some_and(|v| v != STS_VERSION) {
        return None;
    }
    let outage = sim.with_alibaba_identity(|id| {
        id.record(req, &action, &params);
        id.outage
    });
    let request_id = new_request_id();
    if outage {
        return Some(sts_error(
            &SimError::new(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            ),
            &request_id,
        ));
    }
    let answer = if action == "AssumeRole" {
        assume_role(sim, req, &params).await
    } else {
        assume_role_with_oidc(sim, &params)
    };
    Some(match answer {
        Ok(body) => sts_answer(body, &request_id),
        Err(e) => sts_error(&e, &request_id),
    })
}

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn sts_answer(mut body: serde_json::Value, request_id: &str) -> SimResponse {
    body["RequestId"] = json!(request_id);
    SimResponse::json(200, &body).with_header("x-acs-request-id", request_id)
}

fn sts_error(e: &SimError, request_id: &str) -> SimResponse {
    SimResponse::json(
        e.status,
        &json!({
            "RequestId": request_id,
            "HostId": "sts.aliyuncs.com",
            "Code": e.code,
            "Message": e.message,
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}&product=Sts", e.code),
        }),
    )
    .with_header("x-acs-request-id", request_id)
}

/// The parameters both operations share, checked as STS does.
struct Common<'a> {
    role_arn: &'a str,
    session_name: &'a str,
    duration: Duration,
}

fn common(params: &[(String, String)]) -> Result<Common<'_>, SimError> {
    if first(params, "Version") != Some(STS_VERSION) {
        return Err(SimError::new(
            400,
            "InvalidVersion",
            format!("Specified parameter Version is not valid (expected {STS_VERSION})."),
        ));
    }
    check_timestamp(first(params, "Timestamp"))?;
    let role_arn = first(params, "RoleArn")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            SimError::new(
                400,
                "MissingParameter.RoleArn",
                "RoleArn is mandatory for this action.",
            )
        })?;
    let session_name = first(params, "RoleSessionName")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            SimError::new(
                400,
                "MissingParameter.RoleSessionName",
                "RoleSessionName is mandatory for this action.",
            )
        })?;
    let well_formed = (2..=64).contains(&session_name.len())
        && session_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if !well_formed {
        return Err(SimError::new(
            400,
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName is wrongly formed.",
        ));
    }
    let duration = match first(params, "DurationSeconds") {
        None | Some("") => 3600,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|d| (900..=43_200).contains(d))
            .ok_or_else(|| {
                SimError::new(
                    400,
                    "InvalidParameter.DurationSeconds",
                    "The Min/Max value of DurationSeconds is 15min/12hr.",
                )
            })?,
    };
    Ok(Common {
        role_arn,
        session_name,
        duration: Duration::from_secs(duration),
    })
}

fn role(sim: &Sim, arn: &str) -> Result<Role, SimError> {
    sim.with_alibaba_identity(|id| id.roles.get(arn).cloned())
        .ok_or_else(|| {
            SimError::new(
                404,
                "EntityNotExist.Role",
                format!("The role not exists: {arn}."),
            )
        })
}

/// Issue a session for the role's tenant and shape the answer.
fn issue(sim: &Sim, role: &Role, c: &Common<'_>) -> Result<serde_json::Value, SimError> {
    // A lifetime a test set wins over DurationSeconds, so rotation runs in seconds.
    let lifetime = sim.credential_lifetime().unwrap_or(c.duration);
    let session = sim
        .issue_session(&role.tenant, "STS.", Some(lifetime))
        .ok_or_else(|| SimError::new(500, "InternalError", "The role's account does not exist."))?;
    Ok(json!({
        "AssumedRoleUser": {
            "Arn": format!("{}/{}", c.role_arn.replacen(":role/", ":assumed-role/", 1), c.session_name),
            "AssumedRoleId": format!("3{:017}:{}", fastrand::u64(..100_000_000_000_000_000), c.session_name),
        },
        "Credentials": {
            "AccessKeyId": session.access_key_id,
            "AccessKeySecret": session.secret,
            "SecurityToken": session.security_token,
            "Expiration": session.expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        },
    }))
}

async fn assume_role(
    sim: &Sim,
    req: &SimRequest,
    params: &[(String, String)],
) -> Result<serde_json::Value, SimError> {
    let access_key_id = first(params, "AccessKeyId")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            SimError::new(
                400,
                "IncompleteSignature",
                "AccessKeyId is mandatory for this action.",
            )
        })?;
    // Counts the call in the caller's tenant too, and takes its injected fault.
    let ctx = sim.begin_call(access_key_id, "AssumeRole").ok_or_else(|| {
        SimError::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    })?;
    for required in ["Signature", "SignatureNonce", "Timestamp"] {
        if first(params, required).is_none_or(str::is_empty) {
            return Err(SimError::new(
                400,
                "IncompleteSignature",
                format!("{required} is mandatory for this action."),
            ));
        }
    }
    if first(params, "SignatureMethod") != Some("HMAC-SHA1")
        || first(params, "SignatureVersion") != Some("1.0")
    {
        return Err(SimError::new(
            400,
            "IncompleteSignature",
            "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.",
        ));
    }
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let expected = sign::sign_rpc_v1(req.method.as_str(), &pairs, &ctx.secret);
    if first(params, "Signature") != Some(expected.signature.as_str()) {
        return Err(signature_mismatch(&expected.string_to_sign));
    }
    check_security_token(
        ctx.security_token.as_deref(),
        first(params, "SecurityToken"),
    )?;
    if ctx.expired {
        return Err(SimError::new(
            400,
            "InvalidSecurityToken.Expired",
            "Specified SecurityToken is expired.",
        ));
    }
    match ctx.fault {
        Some(super::FaultKind::ServerError) => {
            return Err(SimError::new(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            ));
        }
        Some(super::FaultKind::Throttle { .. }) => {
            return Err(SimError::new(
                429,
                "Throttling.User",
                "Request was denied due to user flow control.",
            ));
        }
        Some(super::FaultKind::Hang { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    let c = common(params)?;
    let role = role(sim, c.role_arn)?;
    if role
        .trusted
        .as_ref()
        .is_some_and(|t| !t.contains(&ctx.tenant))
    {
        return Err(SimError::new(
            403,
            "NoPermission",
            "You are not authorized to do this action. You should be authorized by RAM.",
        ));
    }
    if let Some(expected) = &role.external_id
        && first(params, "ExternalId") != Some(expected.as_str())
    {
        return Err(SimError::new(
            401,
            "AuthenticationFail.NoPermission",
            "There is no permission.",
        ));
    }
    issue(sim, &role, &c)
}

fn assume_role_with_oidc(
    sim: &Sim,
    params: &[(String, String)],
) -> Result<serde_json::Value, SimError> {
    let c = common(params)?;
    let provider = first(params, "OIDCProviderArn").unwrap_or("");
    let token = first(params, "OIDCToken").unwrap_or("");
    if token.is_empty() {
        return Err(SimError::new(
            401,
            "AuthenticationFail.OIDCToken.Invalid",
            "The OIDCToken can not empty.",
        ));
    }
    let accepted = sim
        .with_alibaba_identity(|id| id.oidc_providers.get(provider).cloned())
        .ok_or_else(|| {
            SimError::new(
                401,
                "AuthenticationFail.NoPermission",
                "No such OIDC Provider registered.",
            )
        })?;
    if token != accepted {
        return Err(SimError::new(
            401,
            "AuthenticationFail.OIDCToken.InvalidSignature",
            "OIDC token validate failed: invalid signature.",
        ));
    }
    let role = role(sim, c.role_arn)?;
    issue(sim, &role, &c)
}

/// Whether a request is for the ECS metadata service: its RAM credential paths, or
/// its token path with ECS's own TTL header (other clouds' instance metadata shares
/// `/latest/api/token`; a token request without ECS's header is not ECS's).
fn is_ecs_metadata(req: &SimRequest) -> bool {
    req.path.starts_with("/latest/meta-data/ram/")
        || (req.path == "/latest/api/token"
            && req
                .headers
                .contains_key("x-aliyun-ecs-metadata-token-ttl-seconds"))
}

/// The ECS metadata service: `PUT /latest/api/token`, `GET
/// /latest/meta-data/ram/security-credentials/[role]`.
fn metadata(sim: &Sim, req: &SimRequest) -> SimResponse {
    const CREDS: &str = "/latest/meta-data/ram/security-credentials/";
    let action = if req.path == "/latest/api/token" {
        "MetadataToken"
    } else if req.path == CREDS {
        "MetadataRoleName"
    } else if req.path.starts_with(CREDS) {
        "MetadataRole"
    } else {
        "MetadataOther"
    };
    let text = |status: u16, body: &str| SimResponse::raw(status, "text/plain", body.to_string());
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let (outage, mode, role) = sim.with_alibaba_identity(|id| {
        id.record(req, action, &[]);
        (id.outage, id.imdsv2, id.instance_role.clone())
    });
    if outage {
        return text(500, "Internal Server Error");
    }
    if action == "MetadataToken" {
        if req.method != Method::PUT {
            return text(405, "Method Not Allowed");
        }
        if mode == Imdsv2::Unavailable {
            return text(404, "Not Found");
        }
        let ttl = header("x-aliyun-ecs-metadata-token-ttl-seconds")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|t| (1..=21_600).contains(t));
        let Some(ttl) = ttl else {
            return text(400, "Bad Request");
        };
        let token: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(56)
            .collect();
        let expires = chrono::Utc::now() + chrono::Duration::seconds(ttl);
        sim.with_alibaba_identity(|id| id.metadata_tokens.insert(token.clone(), expires));
        return text(200, &token);
    }
    if req.method != Method::GET {
        return text(405, "Method Not Allowed");
    }
    match header("x-aliyun-ecs-metadata-token") {
        Some(token) => {
            let valid = sim.with_alibaba_identity(|id| {
                id.metadata_tokens
                    .get(token)
                    .is_some_and(|e| *e > chrono::Utc::now())
            });
            if !valid {
                return text(401, "Unauthorized");
            }
        }
        None if mode == Imdsv2::Required => return text(401, "Unauthorized"),
        None => {}
    }
    let Some((role_name, tenant)) = role else {
        return text(404, "Not Found");
    };
    match action {
        "MetadataRoleName" => text(200, &role_name),
        "MetadataRole" if req.path[CREDS.len()..] == role_name => {
            let Some(session) = sim.issue_session(&tenant, "STS.", None) else {
                return text(500, "Internal Server Error");
            };
            let format =
                |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            SimResponse::json(
                200,
                &json!({
                    "AccessKeyId": session.access_key_id,
                    "AccessKeySecret": session.secret,
                    "Expiration": format(session.expires_at),
                    "SecurityToken": session.security_token,
                    "LastUpdated": format(chrono::Utc::now()),
                    "Code": "Success",
                }),
            )
        }
        _ => text(404, "Not Found"),
    }
}
