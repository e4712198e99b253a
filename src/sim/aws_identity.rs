//! The simulated AWS identity services: STS (query API 2011-06-15: `AssumeRole`
//! signed with SigV4 service `sts`, `AssumeRoleWithWebIdentity` unsigned) on
//! `POST /`, the EC2 instance metadata service (IMDSv2) under `/latest/`, and
//! container credentials on a configurable path. They issue temporary credentials
//! with [`Sim::issue_session`], which the Organizations handler accepts until they
//! expire. Also the per-tenant behaviour of the Organizations handler that is not a
//! fault (IAM denials, injected empty pages).
//!
//! STS errors are its XML documents (§11.3): `AccessDenied` 403 (role not
//! trusted, wrong external id), `InvalidClientTokenId` 403 (unknown key),
//! `SignatureDoesNotMatch` 403, `InvalidIdentityToken` 400, `ValidationError` 400,
//! `ExpiredToken` 400.

use super::aws::verify;
pub use super::identity_log::{CallLog, IdentityRequest, MAX_RECORDED};
use super::{Dataset, Sim, SimRequest, SimResponse};
use crate::provider::aws::sign;
use crate::provider::aws::sts::STS_VERSION;
use crate::query::parse_query;
use hyper::Method;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// An IAM role that can be assumed.
#[derive(Clone, Debug, Default)]
pub struct Role {
    /// Access key id of the tenant whose data the role's sessions reach.
    pub tenant: String,
    /// The `sts:ExternalId` condition of the trust policy.
    pub external_id: Option<String>,
}

/// What the simulated AWS identity services accept.
#[derive(Default)]
pub struct IdentityState {
    /// Roles by ARN.
    pub roles: HashMap<String, Role>,
    /// Web identity tokens accepted by AssumeRoleWithWebIdentity (exact content).
    pub web_identity_tokens: HashSet<String>,
    /// The instance's role name and the tenant its credentials reach.
    pub instance_role: Option<(String, String)>,
    /// Requests without an IMDSv2 token get 401.
    pub imds_v2_required: bool,
    /// The token PUT answers 404 (an old instance): IMDSv1 only.
    pub imds_v2_unavailable: bool,
    /// The container credentials path, the tenant, and the Authorization value
    /// required (if any).
    pub container: Option<(String, String, Option<String>)>,
    /// (tenant, action) pairs IAM denies.
    pub denied: HashSet<(String, String)>,
    /// Offsets before which one empty page (with a NextToken) is answered.
    pub empty_pages: HashMap<(String, Dataset), Vec<usize>>,
    /// Calls per action and the last requests, counted before any check.
    pub log: CallLog,
    /// Tokens handed out by the metadata service.
    imds_tokens: HashSet<String>,
}

impl IdentityState {
    pub fn add_role(&mut self, arn: &str, tenant: &str, external_id: Option<&str>) {
        self.roles.insert(
            arn.to_string(),
            Role {
                tenant: tenant.to_string(),
                external_id: external_id.map(str::to_string),
            },
        );
    }

    pub fn deny(&mut self, tenant: &str, action: &str) {
        self.denied.insert((tenant.to_string(), action.to_string()));
    }

    pub fn is_denied(&self, tenant: &str, action: &str) -> bool {
        self.denied
            .contains(&(tenant.to_string(), action.to_string()))
    }

    /// Answer one empty page (with a NextToken) where the walk reaches `offset`.
    pub fn add_empty_page(&mut self, tenant: &str, dataset: Dataset, offset: usize) {
        self.empty_pages
            .entry((tenant.to_string(), dataset))
            .or_default()
            .push(offset);
    }

    pub fn empty_page_at(&self, tenant: &str, dataset: Dataset, offset: usize) -> bool {
        self.empty_pages
            .get(&(tenant.to_string(), dataset))
            .is_some_and(|o| o.contains(&offset))
    }

    pub fn call_count(&self, action: &str) -> u64 {
        self.log.call_count(action)
    }

    pub fn last(&self, action: &str) -> Option<&IdentityRequest> {
        self.log.last(action)
    }

    fn record(&mut self, req: &SimRequest, action: &str, params: &[(String, String)]) {
        self.log.record(req, action, params);
    }
}

fn header<'a>(req: &'a SimRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn sts_error(status: u16, code: &str, message: &str) -> SimResponse {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    SimResponse::raw(
        status,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(message),
            super::alibaba::new_request_id()
        ),
    )
}

fn sts_answer(action: &str, session: &super::Session, arn: &str) -> SimResponse {
    let expiration = session.expires_at.format("%Y-%m-%dT%H:%M:%SZ");
    SimResponse::raw(
        200,
        "text/xml",
        format!(
            "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result><AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>AROASIM:{}</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{expiration}</Expiration></Credentials></{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            xml_escape(arn),
            session.tenant,
            session.access_key_id,
            xml_escape(&session.secret),
            xml_escape(&session.security_token),
            super::alibaba::new_request_id()
        ),
    )
}

/// Answer a request meant for an AWS identity service; `None` for any other.
impl Sim {
    /// Run `f` on the AWS identity configuration (roles, web identity, IMDS,
    /// container credentials).
    pub fn with_aws_identity<R>(&self, f: impl FnOnce(&mut IdentityState) -> R) -> R {
        self.with_state(f)
    }
}

pub async fn handle(sim: &Sim, req: &SimRequest) -> Option<SimResponse> {
    if req.path.starts_with("/latest/") && is_imds(req) {
        return Some(imds(sim, req));
    }
    if req.method == Method::GET
        && let Some(r) = container(sim, req)
    {
        return Some(r);
    }
    if req.method != Method::POST || req.path != "/" {
        return None;
    }
    let is_form = header(req, "content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    let params = parse_query(&String::from_utf8_lossy(&req.body), true);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Alibaba's STS has an AssumeRole too: AWS's is told by its version (or its
    // SigV4 scope).
    let aws_scope = header(req, "authorization")
        .and_then(sign::parse_authorization)
        .is_some_and(|a| a.service == "sts");
    if get("Version") != Some(STS_VERSION) && !aws_scope {
        return None;
    }
    let action = get("Action").unwrap_or_default().to_string();
    sim.with_aws_identity(|s| s.record(req, &action, &params));
    Some(match action.as_str() {
        "AssumeRole" => assume_role(sim, req, &params),
        "AssumeRoleWithWebIdentity" => assume_role_with_web_identity(sim, &params),
        _ => sts_error(400, "InvalidAction", "Could not find operation"),
    })
}

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `DurationSeconds` (900..43200) as a session lifetime; a test's shorter
/// [`Sim::set_credential_lifetime`] wins.
fn lifetime(sim: &Sim, params: &[(String, String)]) -> Result<Option<Duration>, SimResponse> {
    let Some(raw) = first(params, "DurationSeconds") else {
        return Ok(None);
    };
    match raw.parse::<u64>() {
        Ok(d) if (900..=43_200).contains(&d) => Ok(match sim.credential_lifetime() {
            Some(set) => Some(set),
            None => Some(Duration::from_secs(d)),
        }),
        _ => Err(sts_error(
            400,
            "ValidationError",
            "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint",
        )),
    }
}

fn role_and_session(
    sim: &Sim,
    params: &[(String, String)],
) -> Result<(String, Role, Option<Duration>), SimResponse> {
    let arn = first(params, "RoleArn").unwrap_or_default().to_string();
    let name = first(params, "RoleSessionName").unwrap_or_default();
    if !crate::provider::aws::credentials::valid_session_name(name) {
        return Err(sts_error(400, "ValidationError", "Invalid RoleSessionName"));
    }
    let lifetime = lifetime(sim, params)?;
    let role = sim
        .with_aws_identity(|s| s.roles.get(&arn).cloned())
        .ok_or_else(|| {
            sts_error(
                403,
                "AccessDenied",
                "Not authorized to perform sts:AssumeRole",
            )
        })?;
    Ok((arn, role, lifetime))
}

fn assume_role(sim: &Sim, req: &SimRequest, params: &[(String, String)]) -> SimResponse {
    let Some(auth) = header(req, "authorization").and_then(sign::parse_authorization) else {
        return sts_error(
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        );
    };
    let Some(call) = sim.begin_call(&auth.access_key_id, "AssumeRole") else {
        return sts_error(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        );
    };
    if let Err(m) = verify(req, "sts", &call.secret) {
        return sts_error(403, "SignatureDoesNotMatch", &m);
    }
    if header(req, "x-amz-security-token") != call.security_token.as_deref() {
        return sts_error(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        );
    }
    if call.expired {
        return sts_error(
            400,
            "ExpiredToken",
            "The security token included in the request is expired",
        );
    }
    if let Some(super::FaultKind::Throttle { .. }) = call.fault {
        return sts_error(400, "Throttling", "Rate exceeded");
    }
    let (arn, role, lifetime) = match role_and_session(sim, params) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if role.external_id.as_deref() != first(params, "ExternalId") {
        return sts_error(
            403,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRole",
        );
    }
    match sim.issue_session(&role.tenant, "ASIA", lifetime) {
        Some(s) => sts_answer("AssumeRole", &s, &arn),
        None => sts_error(403, "AccessDenied", "the role's account does not exist"),
    }
}

fn assume_role_with_web_identity(sim: &Sim, params: &[(String, String)]) -> SimResponse {
    let token = first(params, "WebIdentityToken").unwrap_or_default();
    if !sim.with_aws_identity(|s| s.web_identity_tokens.contains(token)) {
        return sts_error(
            400,
            "InvalidIdentityToken",
            "Couldn't verify the web identity token",
        );
    }
    let (arn, role, lifetime) = match role_and_session(sim, params) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match sim.issue_session(&role.tenant, "ASIA", lifetime) {
        Some(s) => sts_answer("AssumeRoleWithWebIdentity", &s, &arn),
        None => sts_error(403, "AccessDenied", "the role's account does not exist"),
    }
}

/// AWS's metadata requests (Alibaba's share `/latest/` but use other paths and
/// headers).
fn is_imds(req: &SimRequest) -> bool {
    req.path == crate::provider::aws::metadata::IMDS_TOKEN_PATH
        && req
            .headers
            .contains_key(crate::provider::aws::metadata::IMDS_TOKEN_TTL_HEADER)
        || req
            .path
            .starts_with(crate::provider::aws::metadata::IMDS_CREDENTIALS_PATH)
}

fn imds(sim: &Sim, req: &SimRequest) -> SimResponse {
    use crate::provider::aws::metadata::{
        IMDS_CREDENTIALS_PATH, IMDS_TOKEN_HEADER, IMDS_TOKEN_PATH,
    };
    let text = |status: u16, body: &str| SimResponse::raw(status, "text/plain", body.to_string());
    if req.path == IMDS_TOKEN_PATH {
        sim.with_aws_identity(|s| s.record(req, "MetadataToken", &[]));
        if req.method != Method::PUT {
            return text(405, "");
        }
        if sim.with_aws_identity(|s| s.imds_v2_unavailable) {
            return text(404, "");
        }
        let token: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(40)
            .collect();
        sim.with_aws_identity(|s| s.imds_tokens.insert(token.clone()));
        return text(200, &token);
    }
    let sent = header(req, IMDS_TOKEN_HEADER).map(str::to_string);
    let (role, required, token_ok) = sim.with_aws_identity(|s| {
        s.record(req, "MetadataRole", &[]);
        (
            s.instance_role.clone(),
            s.imds_v2_required,
            sent.as_ref().is_some_and(|t| s.imds_tokens.contains(t)),
        )
    });
    if (required || sent.is_some()) && !token_ok {
        return text(401, "");
    }
    let Some((name, tenant)) = role else {
        return text(404, "");
    };
    let rest = &req.path[IMDS_CREDENTIALS_PATH.len()..];
    if rest.is_empty() {
        return text(200, &name);
    }
    if rest != name {
        return text(404, "");
    }
    match sim.issue_session(&tenant, "ASIA", None) {
        Some(s) => SimResponse::json(
            200,
            &serde_json::json!({
                "Code": "Success",
                "LastUpdated": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "Type": "AWS-HMAC",
                "AccessKeyId": s.access_key_id,
                "SecretAccessKey": s.secret,
                "Token": s.security_token,
                "Expiration": s.expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }),
        ),
        None => text(404, ""),
    }
}

fn container(sim: &Sim, req: &SimRequest) -> Option<SimResponse> {
    let (path, tenant, auth) = sim.with_aws_identity(|s| s.container.clone())?;
    if req.path != path {
        return None;
    }
    sim.with_aws_identity(|s| s.record(req, "ContainerCredentials", &[]));
    if auth.is_some() && header(req, "authorization") != auth.as_deref() {
        return Some(SimResponse::json(
            403,
            &serde_json::json!({"message": "forbidden"}),
        ));
    }
    Some(match sim.issue_session(&tenant, "ASIA", None) {
        Some(s) => SimResponse::json(
            200,
            &serde_json::json!({
                "AccessKeyId": s.access_key_id,
                "SecretAccessKey": s.secret,
                "Token": s.security_token,
                "Expiration": s.expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "RoleArn": "arn:aws:iam::111122223333:role/task",
            }),
        ),
        None => SimResponse::json(404, &serde_json::json!({"message": "no such tenant"})),
    })
}
