//! Simulated AWS Organizations endpoint (JSON 1.1 on `POST /`, claimed by its
//! `X-Amz-Target` header): verifies SigV4 with the tenant's secret, serves
//! ListHandshakesForOrganization (dataset `AwsOrganization`),
//! ListHandshakesForAccount (`AwsAccount`) and DescribeHandshake (both) with opaque
//! NextTokens honouring MaxResults, and injects the tenant's faults. STS, IMDS and
//! container credentials are in [`super::aws_identity`].
//!
//! Error codes follow the reference (§9): HTTP 400 with `{"__type", "message"}`
//! for all modelled errors, throttling included; the authentication codes
//! (`UnrecognizedClientException`, `InvalidSignatureException`,
//! `MissingAuthenticationTokenException`, `ExpiredTokenException`) are what JSON
//! services are commonly seen to send, 400 as well (unconfirmed for Organizations).

use super::{FaultKind, Sim, SimRequest, SimResponse, aws_identity};
use crate::model::{Action, Handshake, Status, TargetType};
use crate::provider::aws::{
    ACTION_DESCRIBE, ACTION_LIST_FOR_ACCOUNT, ACTION_LIST_FOR_ORGANIZATION, CONTENT_TYPE, SERVICE,
    TARGET_PREFIX, sign,
};
use crate::sim::Dataset;
use chrono::Utc;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Most items of a page, and the page size without `MaxResults` (undocumented for
/// the real service).
pub const MAX_RESULTS: u64 = 20;
/// How far `X-Amz-Date` may be from the server clock.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(15);
/// Opaque-looking NextToken framing: base64-ish characters including `+ / =`, as
/// the real service's tokens have.
const TOKEN_PREFIX: &str = "AAEAAbX+";
const TOKEN_SUFFIX: &str = "/Zm9v==";

/// Answer a request meant for AWS (Organizations, STS, IMDS, container
/// credentials); `None` for any other request.
#[allow(non_upper_case_globals)]
impl Dataset {
    /// ListHandshakesForOrganization.
    pub const AwsOrganization: Dataset = Dataset::new("aws_organization", 4);
    /// ListHandshakesForAccount.
    pub const AwsAccount: Dataset = Dataset::new("aws_account", 5);
}

/// The AWS part of the simulator.
pub struct AwsSim;

pub static SIM: AwsSim = AwsSim;

/// AWS's handshakes: ids `h-` and 16 lower-case characters, organizations `o-…`,
/// 12-digit accounts, targets an account or an email; every tenth asks a member to
/// approve all features instead of inviting.
const STYLE: super::data::Style = super::data::Style {
    provider: crate::model::Provider::Aws,
    directory: |rng| {
        (
            format!("o-{}", super::data::pick(rng, super::data::LOWER_ALNUM, 10)),
            format!("1109833{:05}", rng.u32(..100_000)),
            "Example Management".to_string(),
        )
    },
    id: |rng| format!("h-{}", super::data::pick(rng, super::data::LOWER_ALNUM, 16)),
    target: |rng, i, account| {
        if account {
            (
                TargetType::Account,
                format!("4514050{:05}", rng.u32(..100_000)),
            )
        } else {
            (TargetType::Email, format!("team{i}@example.com"))
        }
    },
    action: |i| {
        if i % 10 == 9 {
            Action::EnableAllFeatures
        } else {
            Action::Invite
        }
    },
};

#[async_trait::async_trait]
impl super::SimProvider for AwsSim {
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::AwsOrganization, Dataset::AwsAccount]
    }

    fn generate(
        &self,
        dataset: Dataset,
        n: usize,
        seed: u64,
        now: chrono::DateTime<Utc>,
    ) -> Vec<Handshake> {
        super::data::generate_with(&STYLE, dataset, n, seed, now)
    }

    async fn handle(&self, sim: &Sim, req: &SimRequest) -> Option<SimResponse> {
        handle(sim, req).await
    }
}

/// Answer `req` if it is addressed to AWS: Organizations (`X-Amz-Target`), or its
/// identity services (STS, IMDS, container credentials).
pub async fn handle(sim: &Sim, req: &SimRequest) -> Option<SimResponse> {
    if let Some(r) = aws_identity::handle(sim, req).await {
        return Some(r);
    }
    let target = req.headers.get("x-amz-target")?.to_str().ok()?.to_string();
    let request_id = super::alibaba::new_request_id();
    Some(
        answer(sim, req, &target)
            .await
            .with_header("x-amzn-RequestId", request_id),
    )
}

pub fn error(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::raw(
        status,
        CONTENT_TYPE,
        serde_json::to_vec(&json!({"__type": code, "message": message})).unwrap_or_default(),
    )
}

fn ok(body: &Value) -> SimResponse {
    SimResponse::raw(
        200,
        CONTENT_TYPE,
        serde_json::to_vec(body).unwrap_or_default(),
    )
}

fn header<'a>(req: &'a SimRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verify the SigV4 signature of a request with `secret` for `service`: the
/// signed headers as received, the body as received. `Err` is the message to send.
pub fn verify(req: &SimRequest, service: &str, secret: &str) -> Result<(), String> {
    verify_at(req, service, secret, Utc::now())
}

/// [`verify`] with the server's clock given.
pub fn verify_at(
    req: &SimRequest,
    service: &str,
    secret: &str,
    now: chrono::DateTime<Utc>,
) -> Result<(), String> {
    let Some(auth) = header(req, "authorization").and_then(sign::parse_authorization) else {
        return Err("Authorization header requires AWS4-HMAC-SHA256".into());
    };
    if auth.service != service {
        return Err(format!(
            "Credential should be scoped to correct service: '{service}'."
        ));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(format!("'{required}' must be a signed header"));
        }
    }
    let Some(date) = header(req, "x-amz-date") else {
        return Err("X-Amz-Date is missing".into());
    };
    let when = chrono::NaiveDateTime::parse_from_str(date, sign::DATE_FORMAT)
        .map_err(|_| "X-Amz-Date is not YYYYMMDDTHHMMSSZ".to_string())?
        .and_utc();
    if (now - when).abs() > MAX_CLOCK_SKEW {
        return Err(format!(
            "Signature expired: {date} is now earlier or later than allowed"
        ));
    }
    if !date.starts_with(&auth.date) {
        return Err("Date in Credential scope does not match X-Amz-Date".into());
    }
    let headers: Vec<(String, String)> = auth
        .signed_headers
        .iter()
        .map(|name| {
            let values: Vec<&str> = req
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (name.clone(), values.join(","))
        })
        .collect();
    let query = crate::query::parse_query(&req.query, false);
    let path = crate::query::percent_decode(&req.path, false);
    let signed = sign::sign(
        &sign::Request {
            method: req.method.as_str(),
            path: &path,
            query: &query,
            headers: &headers,
            body: &req.body,
        },
        &sign::Scope {
            access_key_id: &auth.access_key_id,
            secret,
            region: &auth.region,
            service,
            amz_date: date,
        },
    );
    if signed.signature == auth.signature {
        Ok(())
    } else {
        Err("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into())
    }
}

async fn answer(sim: &Sim, req: &SimRequest, target: &str) -> SimResponse {
    let action = match target
        .strip_prefix(TARGET_PREFIX)
        .and_then(|a| a.strip_prefix('.'))
    {
        Some(a @ (ACTION_LIST_FOR_ORGANIZATION | ACTION_LIST_FOR_ACCOUNT | ACTION_DESCRIBE)) => a,
        _ => return error(400, "UnknownOperationException", ""),
    };
    if req.method != hyper::Method::POST || req.path != "/" {
        return error(404, "UnknownOperationException", "");
    }
    if header(req, "content-type") != Some(CONTENT_TYPE) {
        return error(
            400,
            "SerializationException",
            "Content-Type must be application/x-amz-json-1.1",
        );
    }
    let Some(auth) = header(req, "authorization").and_then(sign::parse_authorization) else {
        return error(
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    let invalid_token = || {
        error(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    };
    let Some(call) = sim.begin_call(&auth.access_key_id, action) else {
        return invalid_token();
    };
    if let Err(m) = verify(req, SERVICE, &call.secret) {
        return error(400, "InvalidSignatureException", &m);
    }
    // Temporary keys only with their token, and the token signed.
    let sent_token = header(req, "x-amz-security-token");
    if sent_token != call.security_token.as_deref()
        || (sent_token.is_some()
            && !auth
                .signed_headers
                .iter()
                .any(|h| h == "x-amz-security-token"))
        || !auth.signed_headers.iter().any(|h| h == "x-amz-target")
    {
        return invalid_token();
    }
    if call.expired {
        return error(
            400,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        );
    }
    if sim.with_aws_identity(|s| s.is_denied(&call.tenant, action)) {
        return error(
            400,
            "AccessDeniedException",
            &format!(
                "You don't have permissions to access this resource (organizations:{action})."
            ),
        );
    }
    match &call.fault {
        Some(FaultKind::Throttle { retry_after_ms }) => {
            let r = error(
                400,
                "TooManyRequestsException",
                "AWS Organizations can't complete your request because another request is already in progress. Try again later.",
            );
            return match retry_after_ms {
                Some(ms) => r.with_header("Retry-After", ms.div_ceil(1000).to_string()),
                None => r,
            };
        }
        Some(FaultKind::ServerError) => return error(500, "ServiceException", "internal error"),
        Some(FaultKind::AuthFailure) => {
            return error(
                400,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            );
        }
        Some(FaultKind::Malformed) => {
            return SimResponse::raw(
                200,
                "text/html",
                "<html><body>gateway says hi</body></html>",
            );
        }
        Some(FaultKind::Hang { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        _ => {}
    }
    let params: Map<String, Value> = match serde_json::from_slice(&req.body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return error(
                400,
                "SerializationException",
                "the body is not a JSON object",
            );
        }
    };
    let fault = call.fault.as_ref();
    let tenant = call.tenant.as_str();
    let mut body = match action {
        ACTION_DESCRIBE => match describe(sim, tenant, &params) {
            Ok(v) => v,
            Err(r) => return r,
        },
        _ => {
            let dataset = if action == ACTION_LIST_FOR_ORGANIZATION {
                Dataset::AwsOrganization
            } else {
                Dataset::AwsAccount
            };
            match list(sim, tenant, dataset, &params, fault) {
                Ok(v) => v,
                Err(r) => return r,
            }
        }
    };
    match fault {
        Some(FaultKind::WrongShape) => {
            if let Some(obj) = body.as_object_mut() {
                for key in ["Handshakes", "Handshake"] {
                    if let Some(v) = obj.get_mut(key) {
                        *v = json!({"unexpected": true});
                    }
                }
            }
        }
        Some(FaultKind::GarbledFields) => {
            let first = match body.get_mut("Handshakes") {
                Some(Value::Array(items)) => items.first_mut(),
                _ => body.get_mut("Handshake"),
            };
            if let Some(Value::Object(h)) = first {
                h.insert("RequestedTimestamp".into(), super::GARBLED_TIME.into());
                h.insert("ExpirationTimestamp".into(), super::GARBLED_TIME.into());
                h.insert("State".into(), super::GARBLED_STATUS.into());
                if let Some(Value::Array(parties)) = h.get_mut("Parties") {
                    for p in parties.iter_mut().filter_map(Value::as_object_mut) {
                        if p.get("Type") != Some(&json!("ORGANIZATION")) {
                            p.insert("Type".into(), super::GARBLED_TARGET_TYPE.into());
                        }
                    }
                }
            }
        }
        _ => {}
    }
    let mut response = ok(&body);
    if fault == Some(&FaultKind::Truncated) {
        let cut = response.body.len() / 2;
        response.body.truncate(cut);
    }
    response
}

/// `MaxResults`: 1..=20; more is `MAX_VALUE_EXCEEDED`, as the model says.
fn max_results(params: &Map<String, Value>) -> Result<usize, SimResponse> {
    let invalid = |reason: &str| {
        let mut r = error(
            400,
            "InvalidInputException",
            "You provided an invalid value for MaxResults.",
        );
        if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(&r.body) {
            m.insert("Reason".into(), reason.into());
            r.body = serde_json::to_vec(&m).unwrap_or_default();
        }
        r
    };
    match params.get("MaxResults") {
        None | Some(Value::Null) => Ok(MAX_RESULTS as usize),
        Some(v) => match v.as_u64() {
            Some(0) => Err(invalid("MIN_VALUE_EXCEEDED")),
            Some(n) if n <= MAX_RESULTS => Ok(n as usize),
            Some(_) => Err(invalid("MAX_VALUE_EXCEEDED")),
            None => Err(error(
                400,
                "SerializationException",
                "MaxResults is not an integer",
            )),
        },
    }
}

/// A NextToken for `offset`: `after_empty` marks a token handed out with an
/// injected empty page, so that the page it leads to is not empty again.
pub fn encode_token(offset: usize, after_empty: bool) -> String {
    format!(
        "{TOKEN_PREFIX}{offset:08x}{}{TOKEN_SUFFIX}",
        u8::from(after_empty)
    )
}

fn decode_token(token: &str) -> Option<(usize, bool)> {
    let inner = token
        .strip_prefix(TOKEN_PREFIX)?
        .strip_suffix(TOKEN_SUFFIX)?;
    // ASCII only: the slicing below is by byte.
    if inner.len() != 9 || !inner.is_ascii() {
        return None;
    }
    let offset = usize::from_str_radix(&inner[..8], 16).ok()?;
    let flag = match &inner[8..] {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    Some((offset, flag))
}

fn list(
    sim: &Sim,
    tenant: &str,
    dataset: Dataset,
    params: &Map<String, Value>,
    fault: Option<&FaultKind>,
) -> Result<Value, SimResponse> {
    let limit = max_results(params)?;
    let (offset, after_empty) = match params.get("NextToken") {
        None | Some(Value::Null) => (0, false),
        Some(Value::String(t)) => decode_token(t).ok_or_else(|| {
            error(
                400,
                "InvalidInputException",
                "You provided an invalid pagination token.",
            )
        })?,
        Some(_) => {
            return Err(error(
                400,
                "SerializationException",
                "NextToken is not a string",
            ));
        }
    };
    // A member account that is not in an organization: the organization list does
    // not exist (the account list always does).
    let exists = sim
        .with_tenant(tenant, |t| t.datasets.contains_key(&dataset))
        .unwrap_or(false);
    if dataset == Dataset::AwsOrganization && !exists {
        return Err(error(
            400,
            "AWSOrganizationsNotInUseException",
            "Your account is not a member of an organization.",
        ));
    }
    let empty_here =
        !after_empty && sim.with_aws_identity(|s| s.empty_page_at(tenant, dataset, offset));
    if empty_here {
        // "can occasionally return an empty set of results even when there are
        // more results available" (the API reference).
        return Ok(json!({"Handshakes": [], "NextToken": encode_token(offset, true)}));
    }
    let (total, page) = sim
        .with_tenant(tenant, |t| {
            t.before_list(dataset);
            let all = t.dataset(dataset);
            let page: Vec<Handshake> = all.iter().skip(offset).take(limit).cloned().collect();
            (all.len(), page)
        })
        .unwrap_or_default();
    let items: Vec<Value> = page
        .iter()
        .enumerate()
        .map(|(i, h)| handshake_json(h, offset + i))
        .collect();
    let mut body = json!({ "Handshakes": items });
    let next = offset + page.len();
    if fault == Some(&FaultKind::Lie) {
        // The same token forever: a walk that follows it goes round in circles.
        body["NextToken"] = encode_token(0, false).into();
    } else if next < total {
        body["NextToken"] = encode_token(next, false).into();
    }
    Ok(body)
}

fn describe(sim: &Sim, tenant: &str, params: &Map<String, Value>) -> Result<Value, SimResponse> {
    let Some(id) = params.get("HandshakeId").and_then(Value::as_str) else {
        return Err(error(
            400,
            "InvalidInputException",
            "HandshakeId is required.",
        ));
    };
    if crate::provider::aws::settings::validate_handshake_id(id).is_err() {
        return Err(error(
            400,
            "InvalidInputException",
            "You provided a value that does not match the required pattern.",
        ));
    }
    let found = sim
        .with_tenant(tenant, |t| {
            [Dataset::AwsOrganization, Dataset::AwsAccount]
                .iter()
                .flat_map(|d| t.dataset(*d).iter().enumerate())
                .find(|(_, h)| h.id == id)
                .map(|(i, h)| (i, h.clone()))
        })
        .flatten();
    match found {
        Some((i, h)) => Ok(json!({ "Handshake": handshake_json(&h, i) })),
        None => Err(error(
            400,
            "HandshakeNotFoundException",
            "We can't find a handshake with the HandshakeId that you specified.",
        )),
    }
}

fn wire_state(h: &Handshake) -> &'static str {
    match h.status {
        // OPEN: sent to several recipients, all answered (feature handshakes).
        Status::Pending if h.action != Action::Invite => "OPEN",
        Status::Pending => "REQUESTED",
        Status::Accepted => "ACCEPTED",
        Status::Declined => "DECLINED",
        Status::Cancelled => "CANCELED",
        Status::Expired => "EXPIRED",
        Status::Unknown => "UNKNOWN_STATE",
    }
}

/// Epoch seconds with milliseconds, as the service sends them.
fn epoch(t: chrono::DateTime<Utc>) -> Value {
    json!(t.timestamp_millis() as f64 / 1000.0)
}

/// A handshake as the service serialises it. `i` (its position) varies what real
/// answers vary: the order of the two parties, and every fourth request time as an
/// ISO 8601 string instead of a number.
pub fn handshake_json(h: &Handshake, i: usize) -> Value {
    let org = h.directory_id.as_deref().unwrap_or("o-exampleorgid");
    let mgmt = h.management_account_id.as_deref().unwrap_or("111111111111");
    let action = h.action.as_str();
    let org_party = json!({"Id": org, "Type": "ORGANIZATION"});
    let target_type = match h.target_type {
        TargetType::Account => "ACCOUNT",
        TargetType::Email => "EMAIL",
        TargetType::Name | TargetType::Unknown => "UNKNOWN",
    };
    let target_party =
        json!({"Id": h.target_entity.clone().unwrap_or_default(), "Type": target_type});
    let parties = if i % 2 == 0 {
        vec![org_party, target_party]
    } else {
        vec![target_party, org_party]
    };
    let mut m = Map::new();
    m.insert("Id".into(), h.id.clone().into());
    m.insert(
        "Arn".into(),
        format!(
            "arn:aws:organizations::{mgmt}:handshake/{org}/{action}/{}",
            h.id
        )
        .into(),
    );
    m.insert("Parties".into(), parties.into());
    m.insert("State".into(), wire_state(h).into());
    if let Some(t) = h.created_at {
        let v = if i % 4 == 3 {
            json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        } else {
            epoch(t)
        };
        m.insert("RequestedTimestamp".into(), v);
    }
    if let Some(t) = h.expires_at {
        m.insert("ExpirationTimestamp".into(), epoch(t));
    }
    m.insert("Action".into(), action.to_ascii_uppercase().into());
    let mut org_resource = json!({"Value": org, "Type": "ORGANIZATION", "Resources": [
        {"Value": "FULL", "Type": "ORGANIZATION_FEATURE_SET"}
    ]});
    if let (Some(name), Some(Value::Array(nested))) = (
        h.management_account_name.as_deref(),
        org_resource.get_mut("Resources"),
    ) {
        nested.push(json!({"Value": name, "Type": "MASTER_NAME"}));
    }
    let mut resources = vec![org_resource];
    if let Some(note) = &h.note {
        resources.push(json!({"Value": note, "Type": "NOTES"}));
    }
    m.insert("Resources".into(), resources.into());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// botocore's own signed Organizations and STS requests (the vectors file), as
    /// the server receives them: the simulator's check accepts each one with its
    /// secret at its date, refuses it with another secret or service, and refuses it
    /// as expired at today's date.
    #[test]
    fn botocore_signed_requests_verify() {
        let all: Value =
            serde_json::from_str(include_str!("../../tests/vectors/aws-sign-vectors.json"))
                .expect("vectors");
        let at = chrono::NaiveDateTime::parse_from_str("20240501T120000Z", sign::DATE_FORMAT)
            .expect("date")
            .and_utc();
        let mut checked = 0;
        for v in all["vectors"].as_array().expect("vectors") {
            let r = &v["request"];
            let mut headers = hyper::HeaderMap::new();
            for (k, val) in r["headers"].as_object().expect("headers") {
                headers.append(
                    hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                    val.as_str().expect("value").parse().expect("value"),
                );
            }
            headers.insert(
                "host",
                r["host"].as_str().expect("host").parse().expect("host"),
            );
            let req = SimRequest {
                method: hyper::Method::POST,
                path: "/".into(),
                query: String::new(),
                headers,
                body: bytes::Bytes::from(r["body"].as_str().expect("body").to_string()),
            };
            let service = v["service"].as_str().expect("service");
            let secret = v["secret_key"].as_str().expect("secret");
            assert_eq!(
                verify_at(&req, service, secret, at),
                Ok(()),
                "{}",
                v["name"]
            );
            assert!(verify_at(&req, service, "other", at).is_err());
            assert!(verify_at(&req, "s3", secret, at).is_err());
            assert!(verify(&req, service, secret).is_err_and(|m| m.contains("expired")));
            checked += 1;
        }
        assert_eq!(checked, 19);
    }

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        for (o, f) in [(0, false), (20, true), (123_456, false)] {
            let t = encode_token(o, f);
            assert!(t.contains('+') && t.contains('/') && t.contains('='));
            assert_eq!(decode_token(&t), Some((o, f)));
        }
        assert_eq!(decode_token("AAEAAbX+zzzzzzzz0/Zm9v=="), None);
        assert_eq!(decode_token("garbage"), None);
        // Multi-byte text where the hex belongs must not split a character.
        assert_eq!(decode_token("AAEAAbX+0000000é/Zm9v=="), None);
    }
}
