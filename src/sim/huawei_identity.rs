//! The simulated Huawei identity services on the simulator's own server: the ECS
//! metadata service (`/meta-data/latest/api/token`, `/openstack/latest/securitykey`)
//! and IAM (`/v3.0/OS-AUTH/id-token/tokens`, `/v3.0/OS-CREDENTIAL/securitytokens`,
//! `/v3/auth/domains`). Temporary keys come from
//! [`Sim::issue_session`](super::Sim::issue_session) with the `HWSTS` prefix, so
//! the Organizations handler accepts them only while they are valid.
//!
//! Error bodies: IAM v3.0 answers `{"error_msg", "error_code"}` and Keystone v3
//! answers `{"error": {"code", "message", "title"}}` (both documented shapes); the
//! `IAM.*` codes below are invented in that style where no code is documented. The
//! metadata service answers plain text.

use super::{Sim, SimRequest, SimResponse};
use crate::provider::huawei::identity::{
    ACTION_CREATE_TEMPORARY_ACCESS_KEY, ACTION_CREATE_TOKEN_WITH_ID_TOKEN,
    ACTION_LIST_AUTH_DOMAINS, ACTION_METADATA_SECURITY_KEY, ACTION_METADATA_TOKEN, AGENCY_MISSING,
    HEADER_IDP_ID, HEADER_METADATA_TOKEN, HEADER_METADATA_TOKEN_TTL, HEADER_SUBJECT_TOKEN,
    PATH_AUTH_DOMAINS, PATH_ID_TOKEN_TOKENS, PATH_METADATA_SECURITY_KEY, PATH_METADATA_TOKEN,
    PATH_SECURITY_TOKENS,
};
use crate::provider::huawei::sign;
use crate::provider::nonce;
use chrono::{DateTime, Utc};
use hyper::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Whether the metadata service hands out session tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenService {
    /// Offered, but the security key is also served without one.
    #[default]
    Optional,
    /// The security key needs a valid `X-Metadata-Token`.
    Required,
    /// No token service: `PUT …/api/token` answers 404.
    Absent,
}

/// One identity request as it arrived (for tests that check headers and bodies).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub action: &'static str,
    pub method: String,
    pub path: String,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the simulated identity services accept.
#[derive(Default, Debug)]
pub struct IdentityState {
    /// Tenant whose keys the ECS agency hands out; `None`: the ECS has no agency.
    pub agency_tenant: Option<String>,
    pub token_service: TokenService,
    /// Identity providers: idp id → accepted id token → tenant.
    pub idps: HashMap<String, HashMap<String, String>>,
    /// Domain (account) id per tenant; a tenant without one gets an empty domain
    /// list from `/v3/auth/domains`, as an identity without the permission does.
    pub domains: HashMap<String, String>,
    /// Answer `/v3/auth/domains` with 403, as for an identity without permission.
    pub deny_domain_lookup: bool,
    /// Every identity endpoint answers 503 (an IAM or metadata outage).
    pub outage: bool,
    /// Identity requests per action (whatever the answer).
    pub calls: BTreeMap<String, u64>,
    /// Every identity request, in order.
    pub requests: Vec<RecordedRequest>,
    /// `X-Domain-Id` values seen on Organizations calls (`""`: none sent).
    pub domain_headers: BTreeMap<String, u64>,
    /// Temporary keys handed out (tests look for their secrets in outputs).
    pub issued: Vec<super::Session>,
    metadata_tokens: HashMap<String, DateTime<Utc>>,
    /// IAM subject tokens: token → (tenant, expiry).
    subject_tokens: HashMap<String, (String, DateTime<Utc>)>,
}

impl IdentityState {
    /// Accept `id_token` at `idp_id` for `tenant`.
    pub fn add_id_token(&mut self, idp_id: &str, id_token: &str, tenant: &str) {
        self.idps
            .entry(idp_id.to_string())
            .or_default()
            .insert(id_token.to_string(), tenant.to_string());
    }

    /// Stop accepting every id token of `idp_id` but `keep`.
    pub fn revoke_id_tokens_except(&mut self, idp_id: &str, keep: &str) {
        if let Some(tokens) = self.idps.get_mut(idp_id) {
            tokens.retain(|t, _| t == keep);
        }
    }

    /// Every secret the identity services know or handed out: session secrets and
    /// security tokens, IAM subject tokens, metadata tokens and accepted id tokens.
    /// Tests check that none of them shows in any output.
    pub fn secrets(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .issued
            .iter()
            .flat_map(|s| [s.secret.clone(), s.security_token.clone()])
            .collect();
        all.extend(self.subject_tokens.keys().cloned());
        all.extend(self.metadata_tokens.keys().cloned());
        all.extend(self.idps.values().flat_map(|t| t.keys().cloned()));
        all
    }

    pub fn call_count(&self, action: &str) -> u64 {
        self.calls.get(action).copied().unwrap_or(0)
    }

    /// Every metadata and IAM call so far.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Note the `X-Domain-Id` of an Organizations call and say whether it fits the
    /// tenant (no header always fits; the SDK sends none with an endpoint).
    pub fn check_domain_header(&mut self, tenant: &str, header: Option<&str>) -> bool {
        *self
            .domain_headers
            .entry(header.unwrap_or_default().to_string())
            .or_insert(0) += 1;
        match (header, self.domains.get(tenant)) {
            (Some(sent), Some(known)) => sent == known,
            _ => true,
        }
    }
}

fn action_for(path: &str) -> Option<(&'static str, Method)> {
    Some(match path {
        PATH_METADATA_TOKEN => (ACTION_METADATA_TOKEN, Method::PUT),
        PATH_METADATA_SECURITY_KEY => (ACTION_METADATA_SECURITY_KEY, Method::GET),
        PATH_ID_TOKEN_TOKENS => (ACTION_CREATE_TOKEN_WITH_ID_TOKEN, Method::POST),
        PATH_SECURITY_TOKENS => (ACTION_CREATE_TEMPORARY_ACCESS_KEY, Method::POST),
        PATH_AUTH_DOMAINS => (ACTION_LIST_AUTH_DOMAINS, Method::GET),
        _ => return None,
    })
}

fn random(n: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(n)
        .collect()
}

fn iam_error(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::json(status, &json!({"error_msg": message, "error_code": code}))
}

fn text(status: u16, body: &str) -> SimResponse {
    SimResponse::raw(status, "text/plain", body.to_string())
}

fn header<'r>(req: &'r SimRequest, name: &str) -> Option<&'r str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `expires_at` as the services write it (`%Y-%m-%dT%H:%M:%S.%fZ`).
fn expiry_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Answer a request meant for an identity service; `None` for any other request.
impl Sim {
    /// Run `f` on the Huawei identity configuration (metadata, IdP, IAM).
    pub fn with_huawei_identity<R>(&self, f: impl FnOnce(&mut IdentityState) -> R) -> R {
        self.with_state(f)
    }
}

pub async fn handle(sim: &Sim, req: &SimRequest) -> Option<SimResponse> {
    let (action, method) = action_for(&req.path)?;
    let outage = sim.with_huawei_identity(|s| {
        *s.calls.entry(action.to_string()).or_insert(0) += 1;
        s.requests.push(RecordedRequest {
            action,
            method: req.method.to_string(),
            path: req.path.clone(),
            headers: req
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: req.body.to_vec(),
        });
        s.outage
    });
    let response = if req.method != method {
        text(405, "method not allowed")
    } else if outage {
        if action.starts_with("Metadata") {
            text(503, "service unavailable")
        } else {
            iam_error(503, "IAM.0503", "The service is temporarily unavailable.")
        }
    } else {
        match action {
            ACTION_METADATA_TOKEN => metadata_token(sim, req),
            ACTION_METADATA_SECURITY_KEY => security_key(sim, req),
            ACTION_CREATE_TOKEN_WITH_ID_TOKEN => token_with_id_token(sim, req),
            ACTION_CREATE_TEMPORARY_ACCESS_KEY => temporary_access_key(sim, req),
            _ => auth_domains(sim, req),
        }
    };
    Some(response.with_header("X-Request-Id", nonce()))
}

fn metadata_token(sim: &Sim, req: &SimRequest) -> SimResponse {
    if sim.with_huawei_identity(|s| s.token_service) == TokenService::Absent {
        return text(404, "Not Found");
    }
    let ttl = header(req, HEADER_METADATA_TOKEN_TTL).and_then(|v| v.parse::<i64>().ok());
    let Some(ttl) = ttl.filter(|t| (1..=21_600).contains(t)) else {
        return text(400, "X-Metadata-Token-Ttl-Seconds must be 1 to 21600");
    };
    let token = random(48);
    let expires = Utc::now() + chrono::Duration::seconds(ttl);
    sim.with_huawei_identity(|s| s.metadata_tokens.insert(token.clone(), expires));
    text(200, &token)
}

fn security_key(sim: &Sim, req: &SimRequest) -> SimResponse {
    let sent = header(req, HEADER_METADATA_TOKEN);
    let (service, valid, agency) = sim.with_huawei_identity(|s| {
        let valid = sent.and_then(|t| s.metadata_tokens.get(t)).copied();
        (s.token_service, valid, s.agency_tenant.clone())
    });
    match (sent, valid) {
        (Some(_), None) => return text(401, "Unauthorized: invalid metadata token"),
        (Some(_), Some(expires)) if expires <= Utc::now() => {
            return text(401, "Unauthorized: metadata token expired");
        }
        (None, _) if service == TokenService::Required => {
            return text(401, "Unauthorized: X-Metadata-Token required");
        }
        _ => {}
    }
    let Some(tenant) = agency else {
        return SimResponse::json(401, &json!({"error": AGENCY_MISSING}));
    };
    issued(sim, &tenant, 200)
}

/// Temporary keys for `tenant` in the shape both services use.
fn issued(sim: &Sim, tenant: &str, status: u16) -> SimResponse {
    match sim.issue_session(tenant, "HWSTS", None) {
        None => iam_error(500, "IAM.0500", "the agency's account does not exist"),
        Some(s) => {
            sim.with_huawei_identity(|st| st.issued.push(s.clone()));
            SimResponse::json(
                status,
                &json!({"credential": {
                    "access": s.access_key_id,
                    "secret": s.secret,
                    "securitytoken": s.security_token,
                    "expires_at": expiry_text(s.expires_at),
                }}),
            )
        }
    }
}

fn json_body(req: &SimRequest) -> Result<Value, SimResponse> {
    let json_type = header(req, "content-type").is_some_and(|c| c.starts_with("application/json"));
    if !json_type {
        return Err(iam_error(
            400,
            "IAM.0001",
            "Content-Type must be application/json",
        ));
    }
    serde_json::from_slice(&req.body)
        .map_err(|_| iam_error(400, "IAM.0001", "The request body is not valid JSON."))
}

fn token_with_id_token(sim: &Sim, req: &SimRequest) -> SimResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(idp) = header(req, HEADER_IDP_ID) else {
        return iam_error(400, "IAM.0001", "X-Idp-Id is required.");
    };
    let Some(id_token) = body["auth"]["id_token"]["id"].as_str() else {
        return iam_error(400, "IAM.0001", "auth.id_token.id is required.");
    };
    let found =
        sim.with_huawei_identity(|s| s.idps.get(idp).map(|tokens| tokens.get(id_token).cloned()));
    let tenant = match found {
        None => return iam_error(404, "IAM.0004", "The identity provider does not exist."),
        Some(None) => return iam_error(401, "IAM.0011", "The id token is invalid or expired."),
        Some(Some(t)) => t,
    };
    let token = format!("MIIS{}", random(60));
    let expires = Utc::now() + chrono::Duration::hours(24);
    let domain = sim.with_huawei_identity(|s| {
        s.subject_tokens
            .insert(token.clone(), (tenant.clone(), expires));
        s.domains.get(&tenant).cloned().unwrap_or_default()
    });
    SimResponse::json(
        201,
        &json!({"token": {
            "expires_at": expiry_text(expires),
            "issued_at": expiry_text(Utc::now()),
            "methods": ["mapped"],
            "user": {"domain": {"id": domain}, "name": format!("{idp}-workload")},
        }}),
    )
    .with_header(HEADER_SUBJECT_TOKEN, token)
}

fn temporary_access_key(sim: &Sim, req: &SimRequest) -> SimResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let identity = &body["auth"]["identity"];
    if identity["methods"] != json!(["token"]) {
        return iam_error(
            400,
            "IAM.0001",
            "auth.identity.methods must be [\"token\"].",
        );
    }
    let duration = &identity["token"]["duration_seconds"];
    if !duration.is_null()
        && !duration
            .as_u64()
            .is_some_and(|d| (900..=86_400).contains(&d))
    {
        return iam_error(400, "IAM.0001", "duration_seconds must be 900 to 86400.");
    }
    let Some(token) = identity["token"]["id"].as_str() else {
        return iam_error(400, "IAM.0001", "auth.identity.token.id is required.");
    };
    let tenant = sim.with_huawei_identity(|s| s.subject_tokens.get(token).cloned());
    match tenant {
        Some((tenant, expires)) if expires > Utc::now() => issued(sim, &tenant, 201),
        _ => SimResponse::json(
            401,
            &json!({"error": {"code": 401, "message": "The token is invalid or expired.", "title": "Unauthorized"}}),
        ),
    }
}

fn auth_domains(sim: &Sim, req: &SimRequest) -> SimResponse {
    let unauthorized = |why: &str| {
        SimResponse::json(
            401,
            &json!({"error_msg": format!("Incorrect IAM authentication information: {why}"), "error_code": "APIGW.0301"}),
        )
    };
    let Some(authorization) = header(req, "authorization").and_then(sign::parse_authorization)
    else {
        return unauthorized("missing or malformed Authorization header");
    };
    let Some(call) = sim.begin_call(&authorization.access_key_id, ACTION_LIST_AUTH_DOMAINS) else {
        return unauthorized("ak not exist");
    };
    if let Err(why) = super::huawei::verify_signature(req, &authorization, &call) {
        return unauthorized(why);
    }
    if call.expired {
        return super::huawei::expired_token();
    }
    let (deny, domain) =
        sim.with_huawei_identity(|s| (s.deny_domain_lookup, s.domains.get(&call.tenant).cloned()));
    if deny {
        return SimResponse::json(
            403,
            &json!({"error": {"code": 403, "message": "You are not authorized to perform the requested action.", "title": "Forbidden"}}),
        );
    }
    let domains: Vec<Value> = domain
        .into_iter()
        .map(|id| json!({"id": id, "name": format!("account-{}", &id[..id.len().min(6)]), "enabled": true}))
        .collect();
    SimResponse::json(
        200,
        &json!({"domains": domains, "links": {"self": PATH_AUTH_DOMAINS}}),
    )
}
