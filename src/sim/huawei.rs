//! Simulated Huawei Cloud Organizations endpoint: verifies SDK-HMAC-SHA256
//! signatures, serves ListHandshakes, ListReceivedHandshakes and ShowHandshake with
//! marker pagination, and injects the tenant's faults.
//!
//! Error codes: `APIGW.0301` (authentication) and `APIGW.0308` (throttling) follow
//! the reference; the rest are invented where no code is documented, and each
//! constant below says so.

use super::{CallContext, Dataset, FaultKind, Sim, SimRequest, SimResponse};
use crate::model::Handshake;
use crate::provider::huawei::sign::{self, RequestToSign};
use crate::provider::huawei::{ACTION_LIST_RECEIVED, ACTION_LIST_SENT, ACTION_SHOW};
use crate::provider::nonce;
use crate::query::{parse_query, percent_decode};
use chrono::{NaiveDateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The API gateway's authentication failure (documented).
const AUTH_FAILED: &str = "APIGW.0301";
/// The API gateway's "The token must be updated." (401): what its error-code list
/// gives for an expired token. That temporary AK/SK past their expiry get this code
/// rather than `APIGW.0301` is an assumption (no capture of a real answer).
const TOKEN_EXPIRED: &str = "APIGW.0307";
/// Throttling (the reference believes this code; unconfirmed).
const THROTTLED: &str = "APIGW.0308";
/// Backend unavailable. Invented in the gateway's style.
const UNAVAILABLE: &str = "APIGW.0202";
/// No such route. Invented in the gateway's style.
const NO_ROUTE: &str = "APIGW.0101";
/// Invalid `limit` or `marker`. Invented: no parameter-validation code is documented.
const INVALID_PARAMETER: &str = "Organizations.1000";
/// ShowHandshake for an id the tenant does not have. Invented: no handshake-specific
/// code is documented (`Organizations.1010` is "a required header is missing").
const HANDSHAKE_NOT_FOUND: &str = "Organizations.1013";

/// `limit` when the request has none, and its bounds (documented).
const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 2000;
/// Documented marker length bounds, in characters.
const MARKER_LENGTH: std::ops::RangeInclusive<usize> = 4..=400;
/// How far `X-Sdk-Date` may be from the server clock (Huawei's signing FAQ).
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(15);

/// Answer one `/v1/...` request.
#[allow(non_upper_case_globals)]
impl Dataset {
    /// ListHandshakes (sent by the organization).
    pub const HuaweiSent: Dataset = Dataset::new("huawei_sent", 2);
    /// ListReceivedHandshakes.
    pub const HuaweiReceived: Dataset = Dataset::new("huawei_received", 3);
}

/// The Huawei part of the simulator.
pub struct HuaweiSim;

pub static SIM: HuaweiSim = HuaweiSim;

/// Huawei's invitations: 32-character ids, organizations `o-…`, targets an account
/// id or an account name.
const STYLE: super::data::Style = super::data::Style {
    provider: crate::model::Provider::Huawei,
    directory: |rng| {
        (
            format!("o-{}", super::data::pick(rng, super::data::LOWER_ALNUM, 32)),
            super::data::pick(rng, b"0123456789abcdef", 32),
            "acme-root".to_string(),
        )
    },
    id: |rng| format!("h-{}", super::data::pick(rng, super::data::LOWER_ALNUM, 32)),
    target: |rng, i, account| {
        if account {
            (
                crate::model::TargetType::Account,
                super::data::pick(rng, b"0123456789abcdef", 32),
            )
        } else {
            (crate::model::TargetType::Name, format!("acme-dev-{i}"))
        }
    },
    action: |_| crate::model::Action::Invite,
};

#[async_trait::async_trait]
impl super::SimProvider for HuaweiSim {
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::HuaweiSent, Dataset::HuaweiReceived]
    }

    fn generate(
        &self,
        dataset: Dataset,
        n: usize,
        seed: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Handshake> {
        super::data::generate_with(&STYLE, dataset, n, seed, now)
    }

    async fn handle(&self, sim: &Sim, req: &SimRequest) -> Option<SimResponse> {
        // Identity services first (IAM, ECS metadata): they claim their own requests.
        if let Some(response) = super::huawei_identity::handle(sim, req).await {
            return Some(response);
        }
        if !req.path.starts_with("/v1/") {
            return None;
        }
        Some(handle(sim, req.clone()).await)
    }
}

pub async fn handle(sim: &Sim, req: SimRequest) -> SimResponse {
    let request_id = nonce();
    let response = answer(sim, &req, &request_id).await;
    response.with_header("X-Request-Id", request_id)
}

/// The three read operations the simulator serves.
enum Route {
    List(Dataset),
    Show(String),
}

impl Route {
    fn action(&self) -> &'static str {
        match self {
            Route::List(Dataset::HuaweiReceived) => ACTION_LIST_RECEIVED,
            Route::List(_) => ACTION_LIST_SENT,
            Route::Show(_) => ACTION_SHOW,
        }
    }
}

fn route(req: &SimRequest) -> Option<Route> {
    if req.method != hyper::Method::GET {
        return None;
    }
    let segments: Vec<&str> = req.path.split('/').collect();
    match segments.as_slice() {
        ["", "v1", "organizations", "handshakes"] => Some(Route::List(Dataset::HuaweiSent)),
        ["", "v1", "received-handshakes"] => Some(Route::List(Dataset::HuaweiReceived)),
        ["", "v1", "organizations", "handshakes", id] if !id.is_empty() => {
            Some(Route::Show(percent_decode(id, false)))
        }
        _ => None,
    }
}

fn error(status: u16, code: &str, message: &str, request_id: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({"error_code": code, "error_msg": message, "request_id": request_id}),
    )
}

async fn answer(sim: &Sim, req: &SimRequest, request_id: &str) -> SimResponse {
    let Some(route) = route(req) else {
        return error(404, NO_ROUTE, "The API does not exist", request_id);
    };
    let auth_failed = |why: &str| {
        error(
            401,
            AUTH_FAILED,
            &format!("Incorrect IAM authentication information: {why}"),
            request_id,
        )
    };
    let Some(authorization) = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(sign::parse_authorization)
    else {
        return auth_failed("missing or malformed Authorization header");
    };
    let Some(call) = sim.begin_call(&authorization.access_key_id, route.action()) else {
        return auth_failed(&format!(
            "Get secretKey failed, ak not exist: {}",
            authorization.access_key_id
        ));
    };
    if let Err(why) = verify_signature(req, &authorization, &call) {
        return auth_failed(why);
    }
    if call.expired {
        return expired_token();
    }
    // Organizations trusts X-Domain-Id only if it is the key's own account.
    let domain_header = req
        .headers
        .get("x-domain-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !sim.with_huawei_identity(|s| s.check_domain_header(&call.tenant, domain_header.as_deref()))
    {
        return auth_failed("X-Domain-Id is not the account of the access key");
    }

    match call.fault {
        Some(FaultKind::Throttle { retry_after_ms }) => {
            let response = error(
                429,
                THROTTLED,
                "The throttling threshold has been reached",
                request_id,
            );
            return match retry_after_ms {
                // Retry-After is in whole seconds: round up so the hint is never short.
                Some(ms) => response.with_header("Retry-After", ms.div_ceil(1000).to_string()),
                None => response,
            };
        }
        Some(FaultKind::ServerError) => {
            return error(503, UNAVAILABLE, "The backend is unavailable", request_id);
        }
        Some(FaultKind::AuthFailure) => return auth_failed("verify aksk signature fail"),
        Some(FaultKind::Malformed) => {
            return SimResponse::raw(
                200,
                "text/html",
                "<html><body>gateway says hi</body></html>",
            );
        }
        Some(FaultKind::Hang { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        // Shape faults change the body below; ZeroPageSize is Alibaba's and is ignored.
        Some(
            FaultKind::Truncated
            | FaultKind::WrongShape
            | FaultKind::Lie
            | FaultKind::ZeroPageSize
            | FaultKind::GarbledFields,
        )
        | None => {}
    }
    let fault = call.fault.as_ref();
    // Temporary keys reach their issuing tenant's data.
    let access_key_id = &call.tenant;
    let body = match route {
        Route::List(dataset) => {
            // Only the page is copied, under the lock; its JSON is built outside it.
            let items = |offset: usize, limit: usize| {
                sim.with_tenant(access_key_id, |t| {
                    t.before_list(dataset);
                    let all = t.dataset(dataset);
                    let page = all.iter().skip(offset).take(limit).cloned().collect();
                    (all.len(), page)
                })
                .unwrap_or_default()
            };
            match list_page_with(&req.query, dataset, items, fault) {
                Ok(body) => body,
                Err(message) => return error(400, INVALID_PARAMETER, &message, request_id),
            }
        }
        Route::Show(id) => match sim.find(access_key_id, &id) {
            None => {
                return error(
                    404,
                    HANDSHAKE_NOT_FOUND,
                    &format!("The handshake {id} does not exist"),
                    request_id,
                );
            }
            Some(h) if fault == Some(&FaultKind::WrongShape) => {
                json!({ "handshake": [handshake_dto(&h)] })
            }
            Some(h) => {
                let mut items = [handshake_dto(&h)];
                if fault == Some(&FaultKind::GarbledFields) {
                    garble(&mut items);
                }
                let [item] = items;
                json!({ "handshake": item })
            }
        },
    };
    let mut response = SimResponse::json(200, &body);
    if fault == Some(&FaultKind::Truncated) {
        let half = response.body.len() / 2;
        response.body.truncate(half);
    }
    response
}

/// The answer to a call signed with temporary keys past their expiry.
pub(super) fn expired_token() -> SimResponse {
    SimResponse::json(
        401,
        &json!({"error_code": TOKEN_EXPIRED, "error_msg": "The token must be updated."}),
    )
}

/// Recompute the signature over the headers the client says it signed.
pub(super) fn verify_signature(
    req: &SimRequest,
    authorization: &sign::ParsedAuthorization,
    call: &CallContext,
) -> Result<(), &'static str> {
    let listed = |name: &str| authorization.signed_headers.iter().any(|h| h == name);
    if !listed("host") || !listed("x-sdk-date") {
        return Err("SignedHeaders must include host and x-sdk-date");
    }
    let header = |name: &str| {
        req.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    if let Some(expected) = &call.security_token {
        if !listed("x-security-token") {
            return Err("temporary credentials need a signed X-Security-Token");
        }
        if header("x-security-token").as_deref() != Some(expected.as_str()) {
            return Err("security token does not match the access key");
        }
    }
    let date = header("x-sdk-date").ok_or("X-Sdk-Date missing")?;
    let signed_at = NaiveDateTime::parse_from_str(&date, sign::DATE_FORMAT)
        .map_err(|_| "X-Sdk-Date is not in the form 20240501T120000Z")?
        .and_utc();
    if (Utc::now() - signed_at).abs() > MAX_CLOCK_SKEW {
        return Err("X-Sdk-Date is more than 15 minutes away from the server time");
    }

    let mut headers = Vec::with_capacity(authorization.signed_headers.len());
    for name in &authorization.signed_headers {
        let value = header(name).ok_or("a signed header is missing from the request")?;
        headers.push((name.clone(), value));
    }
    let query = parse_query(&req.query, false);
    let recomputed = sign::sign(
        &RequestToSign {
            method: req.method.as_str(),
            path: &req.path,
            query: &query,
            headers: &headers,
            body: &req.body,
        },
        &authorization.access_key_id,
        &call.secret,
    )
    .map_err(|_| "cannot sign the request")?;
    if recomputed
        .signed_headers
        .split(';')
        .ne(authorization.signed_headers.iter().map(String::as_str))
        || !constant_time_eq(
            recomputed.signature.as_bytes(),
            authorization.signature.as_bytes(),
        )
    {
        return Err("verify aksk signature fail");
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The body of one list page, or the reason the parameters are invalid.
#[cfg(test)]
fn list_page(
    raw_query: &str,
    dataset: Dataset,
    items: &[Handshake],
    fault: Option<&FaultKind>,
) -> Result<Value, String> {
    let slice = |offset: usize, limit: usize| {
        let page = items.iter().skip(offset).take(limit).cloned().collect();
        (items.len(), page)
    };
    list_page_with(raw_query, dataset, slice, fault)
}

/// [`list_page`] over a dataset reached through `items(offset, limit)`, which
/// returns the dataset's length and that page of it.
fn list_page_with(
    raw_query: &str,
    dataset: Dataset,
    items: impl FnOnce(usize, usize) -> (usize, Vec<Handshake>),
    fault: Option<&FaultKind>,
) -> Result<Value, String> {
    let query = parse_query(raw_query, false);
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = match param("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(format!("limit must be an integer from 1 to {MAX_LIMIT}")),
        },
    };
    let offset = match param("marker") {
        None => 0,
        Some(marker) => {
            if !MARKER_LENGTH.contains(&marker.chars().count()) {
                return Err("marker must be 4 to 400 characters long".into());
            }
            decode_marker(dataset, marker).ok_or_else(|| format!("unknown marker {marker:?}"))?
        }
    };
    let (total, items) = items(offset, limit);
    let mut page: Vec<Value> = items.iter().map(handshake_dto).collect();
    if fault == Some(&FaultKind::GarbledFields) {
        garble(&mut page);
    }
    let end = offset.saturating_add(page.len());
    let next_marker = if fault == Some(&FaultKind::Lie) {
        // Always the first page's marker: a client that does not notice loops forever.
        Some(encode_marker(dataset, limit))
    } else {
        (end < total).then(|| encode_marker(dataset, end))
    };
    let current_count = page.len();
    let handshakes = if fault == Some(&FaultKind::WrongShape) {
        Value::Object(
            page.into_iter()
                .enumerate()
                .map(|(i, h)| (i.to_string(), h))
                .collect(),
        )
    } else {
        Value::Array(page)
    };
    Ok(json!({
        "handshakes": handshakes,
        "page_info": {"next_marker": next_marker, "current_count": current_count},
    }))
}

/// Markers are opaque to clients but carry their offset, so the simulator needs no
/// per-tenant state. They deliberately contain `/`, `+`, `=`, `~`, a space and a
/// non-ASCII letter, so only a client that percent-encodes them (and signs what it
/// sends) gets the next page; the check part rejects edited or foreign markers.
fn encode_marker(dataset: Dataset, offset: usize) -> String {
    format!("mk/{offset}+{}=~ é", marker_check(dataset, offset))
}

fn decode_marker(dataset: Dataset, marker: &str) -> Option<usize> {
    let (offset, check) = marker
        .strip_prefix("mk/")?
        .strip_suffix("=~ é")?
        .split_once('+')?;
    let offset: usize = offset.parse().ok()?;
    (check == marker_check(dataset, offset)).then_some(offset)
}

fn marker_check(dataset: Dataset, offset: usize) -> String {
    let digest = Sha256::digest(format!("{dataset:?}/{offset}").as_bytes());
    hex::encode(&digest[..6])
}

/// [`FaultKind::GarbledFields`] on Huawei's field names.
fn garble(items: &mut [Value]) {
    super::garble_first(
        items,
        ["expired_at", "created_at", "updated_at"],
        "status",
        &["target", "type"],
    );
}

/// A `HandshakeDto` as the service writes it (public so that benchmarks can build
/// a realistic page body).
pub fn handshake_dto(h: &Handshake) -> Value {
    let time =
        |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let urn = match &h.directory_id {
        Some(org) => format!(
            "organizations::{}:handshake:{org}/{}",
            h.management_account_id.as_deref().unwrap_or_default(),
            h.id
        ),
        None => format!("organizations:::handshake:{}", h.id),
    };
    json!({
        "id": h.id,
        "urn": urn,
        "updated_at": time(h.modified_at),
        "created_at": time(h.created_at),
        "expired_at": time(h.expires_at),
        "management_account_id": h.management_account_id,
        "management_account_name": h.management_account_name,
        "organization_id": h.directory_id,
        "notes": h.note,
        "target": {"type": h.target_type.as_str(), "entity": h.target_entity},
        "status": h.status.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_need_encoding_and_decode_only_for_their_dataset() {
        let marker = encode_marker(Dataset::HuaweiSent, 2000);
        for special in ['/', '+', '=', ' ', 'é'] {
            assert!(marker.contains(special), "{marker}");
        }
        assert!(MARKER_LENGTH.contains(&marker.chars().count()));
        assert_eq!(decode_marker(Dataset::HuaweiSent, &marker), Some(2000));
        assert_eq!(decode_marker(Dataset::HuaweiReceived, &marker), None);
        let forged = marker.replace("2000", "2001");
        assert_eq!(decode_marker(Dataset::HuaweiSent, &forged), None);
        // What a client that forgets to encode `+` would send back.
        assert_eq!(
            decode_marker(Dataset::HuaweiSent, &marker.replace('+', " ")),
            None
        );
    }

    #[test]
    fn list_parameters_are_validated() {
        let items = super::super::data::generate(Dataset::HuaweiSent, 5, 1, Utc::now());
        let page = |q: &str| list_page(q, Dataset::HuaweiSent, &items, None);
        assert!(page("limit=0").is_err());
        assert!(page("limit=2001").is_err());
        assert!(page("limit=abc").is_err());
        assert!(page("marker=abc").is_err());
        assert!(page(&format!("marker={}", "m".repeat(401))).is_err());
        assert!(page("marker=mk%2F1%2Bzz").is_err());
        let first = page("limit=2").map_err(|e| e.to_string());
        let next = first
            .as_ref()
            .ok()
            .and_then(|b| b["page_info"]["next_marker"].as_str())
            .map(str::to_string);
        assert_eq!(next, Some(encode_marker(Dataset::HuaweiSent, 2)));
        let all = page("").map_err(|e| e.to_string());
        assert_eq!(
            all.ok().map(|b| b["page_info"].clone()),
            Some(json!({"next_marker": null, "current_count": 5}))
        );
    }
}
