//! Simulated Alibaba Cloud Resource Manager (RPC API 2020-03-31, `POST /`).
//!
//! It checks requests the way the real gateway is documented to (reference §6, §7,
//! §9): ACS3-HMAC-SHA256 recomputed from the `SignedHeaders` the client lists, or
//! classic RPC HMAC-SHA1 from the decoded query; `x-acs-date`/`Timestamp` within 15
//! minutes; the STS token when the tenant has one. Then it answers the three read
//! operations from the tenant's datasets, with the envelope of reference §3 and §10,
//! bent by the tenant's injected fault if there is one.
//!
//! The signature is checked before the date, so the SDK's own recorded requests
//! (pinned to 2024) are shown to verify, failing only on their age.

use super::{Dataset, FaultKind, Sim, SimRequest, SimResponse};
use crate::model::{Handshake, Status, TargetType};
use crate::provider::alibaba::sign::{self, Acs3Authorization};
use crate::provider::alibaba::{
    ACTION_GET_HANDSHAKE, ACTION_LIST_FOR_ACCOUNT, ACTION_LIST_FOR_RESOURCE_DIRECTORY, API_VERSION,
    TIMESTAMP_FORMAT,
};
use crate::query::parse_query;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Largest accepted difference between the request's date and the simulator's clock.
const MAX_CLOCK_SKEW_SECONDS: i64 = 15 * 60;
/// The real service's limit on PageSize.
const MAX_PAGE_SIZE: u64 = 100;
/// PageSize when the request has none (the API's documented default).
const DEFAULT_PAGE_SIZE: u64 = 10;
/// What the real service puts in `HostId`.
const HOST_ID: &str = "resourcemanager.aliyuncs.com";

#[allow(non_upper_case_globals)]
impl Dataset {
    /// ListHandshakesForResourceDirectory.
    pub const AlibabaResourceDirectory: Dataset = Dataset::new("alibaba_resource_directory", 0);
    /// ListHandshakesForAccount.
    pub const AlibabaAccount: Dataset = Dataset::new("alibaba_account", 1);
}

/// The Alibaba part of the simulator.
pub struct AlibabaSim;

pub static SIM: AlibabaSim = AlibabaSim;

/// Alibaba's invitations: 16-character ids, resource directories `rd-…`, targets an
/// account id or an email.
const STYLE: super::data::Style = super::data::Style {
    provider: crate::model::Provider::Alibaba,
    directory: |rng| {
        (
            format!("rd-{}", super::data::pick(rng, super::data::ALNUM, 6)),
            format!("151266687691{:04}", rng.u32(..10_000)),
            "ops-admin@example.com".to_string(),
        )
    },
    id: |rng| format!("h-{}", super::data::pick(rng, super::data::ALNUM, 16)),
    target: |rng, i, account| {
        if account {
            (
                TargetType::Account,
                format!("17724228527{:05}", rng.u32(..100_000)),
            )
        } else {
            (TargetType::Email, format!("team{i}@example.com"))
        }
    },
    action: |_| crate::model::Action::Invite,
};

/// Whether a request is addressed to the Alibaba API: RPC V1 (`Signature` in the
/// query) or ACS3 (`x-acs-action`, or an `ACS3-…` Authorization).
fn is_alibaba_api(req: &SimRequest) -> bool {
    req.query.split('&').any(|p| p.starts_with("Signature="))
        || req.headers.contains_key("x-acs-action")
        || header(req, "authorization").is_some_and(|a| a.starts_with("ACS3-"))
}

#[async_trait::async_trait]
impl super::SimProvider for AlibabaSim {
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::AlibabaResourceDirectory, Dataset::AlibabaAccount]
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
        // Identity services first (STS, ECS metadata): they claim their own requests.
        if let Some(response) = super::alibaba_identity::handle(sim, req).await {
            return Some(response);
        }
        if !is_alibaba_api(req) {
            return None;
        }
        Some(handle(sim, req.clone()).await)
    }
}

/// Answer one request to the Alibaba API.
pub async fn handle(sim: &Sim, req: SimRequest) -> SimResponse {
    let request_id = new_request_id();
    let fail =
        |status: u16, code: &str, message: &str| error_response(status, code, message, &request_id);
    let mut call = match identify(&req) {
        Ok(call) => call,
        Err(e) => return fail(e.status, e.code, &e.message),
    };
    // Counts the call and takes the fault even if the request fails below.
    let Some(ctx) = sim.begin_call(&call.access_key_id, &call.action) else {
        return fail(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        );
    };
    // Temporary credentials reach their tenant's data.
    call.tenant = ctx.tenant.clone();
    let verified = match &call.scheme {
        Scheme::Acs3(auth) => verify_acs3(
            &req,
            auth,
            &call.params,
            &ctx.secret,
            ctx.security_token.as_deref(),
        ),
        Scheme::RpcV1 => verify_rpc_v1(
            &req,
            &call.params,
            &ctx.secret,
            ctx.security_token.as_deref(),
        ),
    };
    let string_to_sign = match verified {
        Ok(string_to_sign) => string_to_sign,
        Err(e) => return fail(e.status, e.code, &e.message),
    };
    // A correctly signed request with STS credentials past their Expiration: what
    // the gateway answers (Alibaba's common error code; HTTP 400 as the POP
    // gateway sends its InvalidSecurityToken.* errors).
    if ctx.expired {
        return fail(
            400,
            "InvalidSecurityToken.Expired",
            "Specified SecurityToken is expired.",
        );
    }

    let mut distortion = None;
    match ctx.fault {
        None => {}
        Some(FaultKind::Throttle { retry_after_ms }) => {
            let response = fail(
                429,
                "Throttling.User",
                "Request was denied due to user flow control.",
            );
            return match retry_after_ms {
                Some(ms) => response.with_header("x-acs-retry-after", ms.to_string()),
                None => response,
            };
        }
        Some(FaultKind::ServerError) => {
            return fail(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            );
        }
        Some(FaultKind::AuthFailure) => {
            let e = signature_mismatch(&string_to_sign);
            return fail(e.status, e.code, &e.message);
        }
        Some(FaultKind::Malformed) => {
            return SimResponse::raw(200, "text/html", "<html>oops");
        }
        Some(FaultKind::Hang { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(other) => distortion = Some(other),
    }

    let answer = match call.action.as_str() {
        ACTION_LIST_FOR_RESOURCE_DIRECTORY => list(
            sim,
            &call,
            Dataset::AlibabaResourceDirectory,
            distortion.as_ref(),
        ),
        ACTION_LIST_FOR_ACCOUNT => list(sim, &call, Dataset::AlibabaAccount, distortion.as_ref()),
        ACTION_GET_HANDSHAKE => get(sim, &call, distortion.as_ref()),
        _ => Err(SimError::new(
            400,
            "InvalidAction.NotFound",
            format!(
                "Specified api is not found, please check your url and method. ({})",
                call.action
            ),
        )),
    };
    match answer {
        Ok(mut body) => {
            body.insert("RequestId".into(), Value::String(request_id.clone()));
            json_answer(Value::Object(body), distortion.as_ref(), &request_id)
        }
        Err(e) => fail(e.status, e.code, &e.message),
    }
}

/// An error answer: HTTP status, Alibaba code, message.
pub(super) struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl SimError {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> SimError {
        SimError {
            status,
            code,
            message: message.into(),
        }
    }

    fn incomplete(message: impl Into<String>) -> SimError {
        SimError::new(400, "IncompleteSignature", message)
    }
}

enum Scheme {
    Acs3(Acs3Authorization),
    RpcV1,
}

/// Who calls what, read from the request before anything is verified.
struct Call {
    scheme: Scheme,
    access_key_id: String,
    action: String,
    /// Decoded query (plus form body for V1): operation parameters, and for V1 the
    /// common ones too.
    params: Vec<(String, String)>,
    /// The tenant whose data the call reaches (the issuer's for temporary keys),
    /// known after [`Sim::begin_call`].
    tenant: String,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        first_value(&self.params, name)
    }
}

/// The value of the first parameter called `name`.
fn first_value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn header<'a>(req: &'a SimRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn identify(req: &SimRequest) -> Result<Call, SimError> {
    // The SDK sends the query urlencode()d (space as '+'); decode before re-encoding.
    let mut params = parse_query(&req.query, true);
    if params.iter().any(|(k, _)| k == "Signature") {
        // V1 signs form-body parameters as well (the SDK merges query and body).
        let form = header(req, "content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if form {
            params.extend(parse_query(&String::from_utf8_lossy(&req.body), true));
        }
        let find = |name: &str| {
            first_value(&params, name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let access_key_id = find("AccessKeyId")
            .ok_or_else(|| SimError::incomplete("AccessKeyId is mandatory for this action."))?;
        let action = find("Action").ok_or_else(|| {
            SimError::new(
                400,
                "MissingParameter.Action",
                "Action is mandatory for this request.",
            )
        })?;
        return Ok(Call {
            scheme: Scheme::RpcV1,
            access_key_id,
            action,
            params,
            tenant: String::new(),
        });
    }
    let authorization = header(req, "authorization").ok_or_else(|| {
        SimError::incomplete(
            "The request carries neither an Authorization header nor a Signature parameter.",
        )
    })?;
    let auth = sign::parse_acs3_authorization(authorization).ok_or_else(|| {
        SimError::incomplete("The Authorization header is not a valid ACS3-HMAC-SHA256 value.")
    })?;
    let action = header(req, "x-acs-action")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            SimError::new(
                400,
                "MissingParameter.Action",
                "x-acs-action is mandatory for this request.",
            )
        })?
        .to_string();
    Ok(Call {
        access_key_id: auth.access_key_id.clone(),
        scheme: Scheme::Acs3(auth),
        action,
        params,
        tenant: String::new(),
    })
}

/// Check an ACS3-HMAC-SHA256 request against the tenant's secret and token; on
/// success, the string to sign (an injected auth failure quotes it).
fn verify_acs3(
    req: &SimRequest,
    auth: &Acs3Authorization,
    query: &[(String, String)],
    secret: &str,
    security_token: Option<&str>,
) -> Result<String, SimError> {
    for required in ["host", "x-acs-date", "x-acs-signature-nonce"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(SimError::incomplete(format!(
                "Header {required} must be signed."
            )));
        }
    }
    // Every x-acs-* header present must be signed (reference §6.2).
    for name in req.headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-acs-") && !auth.signed_headers.iter().any(|h| h == name) {
            return Err(SimError::incomplete(format!(
                "Header {name} must be signed."
            )));
        }
    }
    let mut signed_values: Vec<(&str, &str)> = Vec::new();
    for name in &auth.signed_headers {
        let values: Vec<&str> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(SimError::incomplete(format!(
                "Signed header {name} is not in the request."
            )));
        }
        signed_values.extend(values.into_iter().map(|v| (name.as_str(), v)));
    }
    let body_hash = sign::sha256_hex(&req.body);
    if let Some(claimed) = header(req, "x-acs-content-sha256")
        && !claimed.eq_ignore_ascii_case(&body_hash)
    {
        return Err(SimError::new(
            400,
            "SignatureDoesNotMatch",
            "The x-acs-content-sha256 header does not match the request body.",
        ));
    }
    let query: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let expected = sign::sign_acs3(&sign::Acs3Request {
        method: req.method.as_str(),
        path: &req.path,
        query: &query,
        headers: &signed_values,
        body: &req.body,
        access_key_id: &auth.access_key_id,
        access_key_secret: secret,
    });
    if !expected.signature.eq_ignore_ascii_case(&auth.signature) {
        return Err(signature_mismatch(&expected.string_to_sign));
    }
    check_version(header(req, "x-acs-version"))?;
    check_timestamp(header(req, "x-acs-date"))?;
    check_security_token(security_token, header(req, "x-acs-security-token"))?;
    Ok(expected.string_to_sign)
}

/// Check a classic RPC HMAC-SHA1 request; on success, the string to sign.
fn verify_rpc_v1(
    req: &SimRequest,
    params: &[(String, String)],
    secret: &str,
    security_token: Option<&str>,
) -> Result<String, SimError> {
    let find = |name: &str| first_value(params, name);
    for required in ["Signature", "SignatureNonce", "Timestamp"] {
        if find(required).is_none_or(str::is_empty) {
            return Err(SimError::incomplete(format!(
                "{required} is mandatory for this action."
            )));
        }
    }
    if find("SignatureMethod") != Some("HMAC-SHA1") || find("SignatureVersion") != Some("1.0") {
        return Err(SimError::incomplete(
            "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.",
        ));
    }
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let expected = sign::sign_rpc_v1(req.method.as_str(), &pairs, secret);
    if find("Signature") != Some(expected.signature.as_str()) {
        return Err(signature_mismatch(&expected.string_to_sign));
    }
    check_version(find("Version"))?;
    check_timestamp(find("Timestamp"))?;
    check_security_token(security_token, find("SecurityToken"))?;
    Ok(expected.string_to_sign)
}

/// Worded like the real service: clients (the old SDK) compare the text after the
/// colon with their own string to sign.
pub(super) fn signature_mismatch(string_to_sign: &str) -> SimError {
    SimError::new(
        400,
        "SignatureDoesNotMatch",
        format!(
            "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
        ),
    )
}

fn check_version(version: Option<&str>) -> Result<(), SimError> {
    if version == Some(API_VERSION) {
        Ok(())
    } else {
        Err(SimError::new(
            400,
            "InvalidVersion",
            format!("Specified parameter Version is not valid (expected {API_VERSION})."),
        ))
    }
}

pub(super) fn check_timestamp(raw: Option<&str>) -> Result<(), SimError> {
    let parsed = raw.and_then(|r| chrono::NaiveDateTime::parse_from_str(r, TIMESTAMP_FORMAT).ok());
    let Some(at) = parsed else {
        return Err(SimError::new(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ));
    };
    let skew = (chrono::Utc::now().naive_utc() - at).num_seconds().abs();
    if skew > MAX_CLOCK_SKEW_SECONDS {
        return Err(SimError::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    Ok(())
}

pub(super) fn check_security_token(
    expected: Option<&str>,
    given: Option<&str>,
) -> Result<(), SimError> {
    match (expected, given) {
        (None, _) => Ok(()),
        (Some(_), None | Some("")) => Err(SimError::new(
            400,
            "MissingSecurityToken",
            "SecurityToken is mandatory for this access key.",
        )),
        (Some(expected), Some(given)) if expected == given => Ok(()),
        (Some(_), Some(_)) => Err(SimError::new(
            403,
            "InvalidSecurityToken.Mismatch",
            "Specified SecurityToken mismatch with the AccessKey.",
        )),
    }
}

/// A positive integer parameter, or its default when absent; `invalid_code` otherwise.
fn positive_param(
    call: &Call,
    name: &str,
    invalid_code: &'static str,
    default: u64,
) -> Result<u64, SimError> {
    match call.param(name) {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                SimError::new(
                    400,
                    invalid_code,
                    format!("The specified {name} is invalid."),
                )
            }),
    }
}

fn list(
    sim: &Sim,
    call: &Call,
    dataset: Dataset,
    distortion: Option<&FaultKind>,
) -> Result<Map<String, Value>, SimError> {
    let page_number = positive_param(call, "PageNumber", "InvalidParameter.PageNumber", 1)?;
    let page_size = positive_param(
        call,
        "PageSize",
        "InvalidParameter.PageSize",
        DEFAULT_PAGE_SIZE,
    )?;
    if page_size > MAX_PAGE_SIZE {
        return Err(SimError::new(
            400,
            "InvalidParameter.PageSize",
            format!("The specified PageSize is invalid. Valid values: 1 to {MAX_PAGE_SIZE}."),
        ));
    }
    let start = usize::try_from((page_number - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let len = usize::try_from(page_size).unwrap_or(usize::MAX);
    // Slice under the lock: copying only the page keeps big datasets cheap to page,
    // and its JSON is built after the lock (shared by every tenant) is released.
    let found = sim
        .with_tenant(&call.tenant, |t| {
            t.before_list(dataset);
            t.datasets.get(&dataset).map(|all| {
                let end = start.saturating_add(len).min(all.len());
                (all.len(), all.get(start..end).unwrap_or(&[]).to_vec())
            })
        })
        .flatten()
        .map(|(total, page)| {
            let mut page: Vec<Value> = page.iter().map(handshake_json).collect();
            if distortion == Some(&FaultKind::GarbledFields) {
                garble(&mut page);
            }
            (total, page)
        });
    let (total, page) = match found {
        Some(found) => found,
        None if dataset == Dataset::AlibabaResourceDirectory => {
            return Err(SimError::new(
                404,
                "EntityNotExists.ResourceDirectory",
                "The resource directory for the account is not enabled.",
            ));
        }
        None => (0, Vec::new()),
    };
    let total = total as u64
        + if distortion == Some(&FaultKind::Lie) {
            500
        } else {
            0
        };
    let answered_page_size = if distortion == Some(&FaultKind::ZeroPageSize) {
        0
    } else {
        page_size
    };
    let handshakes = if distortion == Some(&FaultKind::WrongShape) {
        Value::Array(page)
    } else {
        json!({ "Handshake": page })
    };
    let mut body = Map::new();
    body.insert("TotalCount".into(), json!(total));
    body.insert("PageNumber".into(), json!(page_number));
    body.insert("PageSize".into(), json!(answered_page_size));
    body.insert("Handshakes".into(), handshakes);
    Ok(body)
}

/// Invitation ids are `h-` and letters or digits (the docs say 16 of them; the
/// simulator accepts any length up to 64 so other generators' ids work too).
fn well_formed_id(id: &str) -> bool {
    id.strip_prefix("h-").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn get(
    sim: &Sim,
    call: &Call,
    distortion: Option<&FaultKind>,
) -> Result<Map<String, Value>, SimError> {
    let id = call.param("HandshakeId").map(str::trim).unwrap_or("");
    if id.is_empty() {
        return Err(SimError::new(
            400,
            "MissingParameter.HandshakeId",
            "You must specify HandshakeId.",
        ));
    }
    if !well_formed_id(id) {
        return Err(SimError::new(
            400,
            "InvalidParameter.HandshakeId",
            "The HandshakeId is invalid.",
        ));
    }
    let handshake = sim.find(&call.tenant, id).ok_or_else(|| {
        SimError::new(
            404,
            "EntityNotExists.Handshake",
            "The specified handshake does not exist.",
        )
    })?;
    let mut items = [handshake_json(&handshake)];
    if distortion == Some(&FaultKind::GarbledFields) {
        garble(&mut items);
    }
    let [item] = items;
    let mut body = Map::new();
    let value = if distortion == Some(&FaultKind::WrongShape) {
        Value::Array(vec![item])
    } else {
        item
    };
    body.insert("Handshake".into(), value);
    Ok(body)
}

/// A successful answer, truncated when that is the fault.
fn json_answer(body: Value, distortion: Option<&FaultKind>, request_id: &str) -> SimResponse {
    let mut response = SimResponse::json(200, &body).with_header("x-acs-request-id", request_id);
    if distortion == Some(&FaultKind::Truncated) {
        let half = response.body.len() / 2;
        response.body.truncate(half);
    }
    response
}

pub(super) fn error_response(
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
) -> SimResponse {
    SimResponse::json(
        status,
        &json!({
            "RequestId": request_id,
            "HostId": HOST_ID,
            "Code": code,
            "Message": message,
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}&product=ResourceManager"),
        }),
    )
    .with_header("x-acs-request-id", request_id)
}

/// [`FaultKind::GarbledFields`] on Alibaba's field names.
fn garble(items: &mut [Value]) {
    super::garble_first(
        items,
        ["ExpireTime", "CreateTime", "ModifyTime"],
        "Status",
        &["TargetType"],
    );
}

/// An invitation as the API serialises it: PascalCase, absent fields left out.
pub fn handshake_json(h: &Handshake) -> Value {
    let mut m = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            m.insert(key.to_string(), Value::String(v));
        }
    };
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format(TIMESTAMP_FORMAT).to_string())
    };
    put("HandshakeId", Some(h.id.clone()));
    put(
        "ResourceDirectoryId",
        h.directory_id.as_deref().map(str::to_string),
    );
    put(
        "MasterAccountId",
        h.management_account_id.as_deref().map(str::to_string),
    );
    put(
        "MasterAccountName",
        h.management_account_name.as_deref().map(str::to_string),
    );
    put("TargetEntity", h.target_entity.clone());
    put(
        "TargetType",
        wire_target_type(h.target_type).map(str::to_string),
    );
    put("Status", wire_status(h.status).map(str::to_string));
    put("Note", h.note.clone());
    put("CreateTime", time(h.created_at));
    put("ModifyTime", time(h.modified_at));
    put("ExpireTime", time(h.expires_at));
    Value::Object(m)
}

fn wire_status(status: Status) -> Option<&'static str> {
    match status {
        Status::Pending => Some("Pending"),
        Status::Accepted => Some("Accepted"),
        Status::Cancelled => Some("Cancelled"),
        Status::Declined => Some("Declined"),
        Status::Expired => Some("Expired"),
        Status::Unknown => None,
    }
}

fn wire_target_type(target_type: TargetType) -> Option<&'static str> {
    match target_type {
        TargetType::Account => Some("Account"),
        TargetType::Email => Some("Email"),
        TargetType::Name | TargetType::Unknown => None,
    }
}

/// A fresh request id shaped like Alibaba's (upper-case UUID).
pub(super) fn new_request_id() -> String {
    format!(
        "{:08X}-{:04X}-4{:03X}-{:04X}-{:012X}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(0x8000..0xC000),
        fastrand::u64(..1 << 48),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::alibaba::{Endpoint, SignedCall, prepare_v1, prepare_v3};
    use crate::secret::{Credentials, Secret};
    use crate::sim::Tenant;
    use bytes::Bytes;
    use hyper::Method;
    use hyper::header::{HeaderMap, HeaderName, HeaderValue};
    use std::sync::Arc;

    const VECTORS: &str = include_str!("../../tests/vectors/alibaba-sign-vectors.json");
    const STS_TOKEN: &str = "CAIS+fake/STS/token==";

    fn sim() -> Arc<Sim> {
        let sim = Sim::new();
        sim.add_tenant(Tenant::new("testAccessKeyId", "testAccessKeySecret"));
        let mut sts = Tenant::new("STS.testTempAccessKeyId", "testTempAccessKeySecret");
        sts.security_token = Some(STS_TOKEN.into());
        sim.add_tenant(sts);
        sim
    }

    fn body_json(r: &SimResponse) -> Value {
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    }

    fn code(r: &SimResponse) -> String {
        body_json(r)["Code"].as_str().unwrap_or("").to_string()
    }

    fn headers_from(pairs: impl IntoIterator<Item = (String, String)>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            let name = HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes());
            let value = HeaderValue::from_str(&v);
            if let (Ok(name), Ok(value)) = (name, value) {
                map.append(name, value);
            }
        }
        map
    }

    /// The request a vector records, as it arrived on the wire.
    fn vector_request(v: &Value) -> SimRequest {
        let r = &v["request"];
        let text = |key: &str| r[key].as_str().unwrap_or_default().to_string();
        let headers = r["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        SimRequest {
            method: text("method").parse().unwrap_or(Method::POST),
            path: text("path"),
            query: text("query_string"),
            headers: headers_from(headers),
            body: Bytes::from(text("body")),
        }
    }

    fn all_vectors() -> Vec<Value> {
        let file: Value = serde_json::from_str(VECTORS).unwrap_or(Value::Null);
        let mut all = file["rpc_v1"].as_array().cloned().unwrap_or_default();
        all.extend(
            file["acs3_hmac_sha256"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        all
    }

    /// The SDK's recorded requests (full-header V3, V1 with '+' for space, the legacy
    /// core's extra parameters, GET) all pass the signature check and fail only
    /// because their 2024 date is outside the 15-minute window.
    #[tokio::test]
    async fn sdk_recorded_requests_verify_and_are_only_too_old() {
        let sim = sim();
        let vectors = all_vectors();
        assert_eq!(vectors.len(), 18);
        for v in &vectors {
            let name = v["name"].as_str().unwrap_or_default();
            let answer = handle(&sim, vector_request(v)).await;
            assert_eq!(answer.status, 400, "{name}");
            assert_eq!(code(&answer), "InvalidTimeStamp.Expired", "{name}");
        }
    }

    #[tokio::test]
    async fn a_tampered_signature_is_rejected_with_the_servers_string_to_sign() {
        let sim = sim();
        for v in all_vectors() {
            let name = v["name"].as_str().unwrap_or_default().to_string();
            let mut request = vector_request(&v);
            // Change what was signed, not the signature: one parameter value.
            request.query = request.query.replacen("2020-03-31", "2020-03-30", 1);
            if let Some(version) = request.headers.get("x-acs-version").cloned() {
                assert_eq!(version, "2020-03-31");
                request
                    .headers
                    .insert("x-acs-version", HeaderValue::from_static("2020-03-30"));
            }
            let answer = handle(&sim, request).await;
            assert_eq!(code(&answer), "SignatureDoesNotMatch", "{name}");
            let message = body_json(&answer)["Message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            assert!(
                message.contains("server string to sign is:"),
                "{name}: {message}"
            );
        }
    }

    /// What the simulator reports as its string to sign is the SDK's, for V1; and an
    /// injected auth failure quotes it too.
    #[tokio::test]
    async fn v1_mismatch_message_quotes_the_sdk_string_to_sign() {
        let sim = sim();
        sim.add_tenant(Tenant::new("testAccessKeyId", "another-secret"));
        let v1_plain = all_vectors()
            .into_iter()
            .filter(|v| {
                v["algorithm"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("RPC-V1"))
            })
            .filter(|v| v["inputs"]["access_key_id"] == "testAccessKeyId")
            .collect::<Vec<_>>();
        assert_eq!(v1_plain.len(), 6);
        for v in v1_plain {
            let answer = handle(&sim, vector_request(&v)).await;
            let message = body_json(&answer)["Message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let expected = v["string_to_sign"].as_str().unwrap_or("?");
            assert!(message.ends_with(&format!("is:{expected}")), "{message}");
        }
        sim.add_fault(
            "testAccessKeyId",
            crate::sim::Fault {
                kind: FaultKind::AuthFailure,
                action: None,
                times: Some(1),
            },
        );
        let req = fresh(
            ACTION_LIST_FOR_ACCOUNT,
            &[],
            &creds("testAccessKeyId", "another-secret", None),
            false,
        );
        let answer = handle(&sim, req).await;
        assert_eq!(
            (answer.status, code(&answer)),
            (400, "SignatureDoesNotMatch".into())
        );
        let message = body_json(&answer)["Message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            message.contains("server string to sign is:POST&%2F&AccessKeyId%3D"),
            "{message}"
        );
    }

    fn fresh(action: &str, params: &[(&str, &str)], creds: &Credentials, v3: bool) -> SimRequest {
        let endpoint = Endpoint::parse("http://127.0.0.1:9").unwrap_or_else(|m| panic!("{m}"));
        let now = chrono::Utc::now().format(TIMESTAMP_FORMAT).to_string();
        let nonce = crate::provider::nonce();
        let prepare = if v3 { prepare_v3 } else { prepare_v1 };
        let SignedCall { query, headers } = prepare(action, params, &endpoint, creds, &now, &nonce);
        SimRequest {
            method: Method::POST,
            path: "/".into(),
            query,
            headers: headers_from(headers),
            body: Bytes::new(),
        }
    }

    fn creds(ak: &str, secret: &str, token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: ak.into(),
            access_key_secret: Secret::new(secret),
            security_token: token.map(Secret::new),
            domain_id: None,
        }
    }

    fn plain() -> Credentials {
        creds("testAccessKeyId", "testAccessKeySecret", None)
    }

    #[tokio::test]
    async fn fresh_v3_and_v1_requests_are_answered_and_counted() {
        let sim = sim();
        for v3 in [true, false] {
            let req = fresh(ACTION_LIST_FOR_ACCOUNT, &[("PageSize", "5")], &plain(), v3);
            let answer = handle(&sim, req).await;
            assert_eq!(
                answer.status,
                200,
                "v3={v3}: {}",
                String::from_utf8_lossy(&answer.body)
            );
            let body = body_json(&answer);
            assert_eq!(body["TotalCount"], 0);
            assert_eq!(body["PageNumber"], 1);
            assert_eq!(body["PageSize"], 5);
            assert_eq!(body["Handshakes"], json!({"Handshake": []}));
            assert!(body["RequestId"].as_str().is_some_and(|r| r.len() == 36));
        }
        assert_eq!(
            sim.call_count("testAccessKeyId", ACTION_LIST_FOR_ACCOUNT),
            2
        );
    }

    #[tokio::test]
    async fn sts_requests_need_the_tenants_token() {
        let sim = sim();
        let ak = "STS.testTempAccessKeyId";
        for v3 in [true, false] {
            let good = creds(ak, "testTempAccessKeySecret", Some(STS_TOKEN));
            let answer = handle(&sim, fresh(ACTION_LIST_FOR_ACCOUNT, &[], &good, v3)).await;
            assert_eq!(answer.status, 200, "v3={v3}");
            let wrong = creds(ak, "testTempAccessKeySecret", Some("other"));
            let answer = handle(&sim, fresh(ACTION_LIST_FOR_ACCOUNT, &[], &wrong, v3)).await;
            assert_eq!(
                (answer.status, code(&answer)),
                (403, "InvalidSecurityToken.Mismatch".into())
            );
            let none = creds(ak, "testTempAccessKeySecret", None);
            let answer = handle(&sim, fresh(ACTION_LIST_FOR_ACCOUNT, &[], &none, v3)).await;
            assert_eq!(code(&answer), "MissingSecurityToken", "v3={v3}");
        }
    }

    #[tokio::test]
    async fn unknown_keys_unsigned_headers_and_bad_bodies_are_rejected() {
        let sim = sim();
        let stranger = creds("nobody", "x", None);
        let answer = handle(&sim, fresh(ACTION_GET_HANDSHAKE, &[], &stranger, true)).await;
        assert_eq!(
            (answer.status, code(&answer)),
            (404, "InvalidAccessKeyId.NotFound".into())
        );

        let mut unsigned = fresh(ACTION_LIST_FOR_ACCOUNT, &[], &plain(), true);
        unsigned
            .headers
            .insert("x-acs-extra", HeaderValue::from_static("1"));
        assert_eq!(code(&handle(&sim, unsigned).await), "IncompleteSignature");

        let mut with_body = fresh(ACTION_LIST_FOR_ACCOUNT, &[], &plain(), true);
        with_body.body = Bytes::from_static(b"PageSize=1");
        assert_eq!(
            code(&handle(&sim, with_body).await),
            "SignatureDoesNotMatch"
        );

        let mut no_auth = fresh(ACTION_LIST_FOR_ACCOUNT, &[], &plain(), true);
        no_auth.headers.remove("authorization");
        assert_eq!(code(&handle(&sim, no_auth).await), "IncompleteSignature");

        let wrong_secret = creds("testAccessKeyId", "nope", None);
        let answer = handle(
            &sim,
            fresh(ACTION_LIST_FOR_ACCOUNT, &[], &wrong_secret, true),
        )
        .await;
        assert_eq!(
            (answer.status, code(&answer)),
            (400, "SignatureDoesNotMatch".into())
        );
    }

    #[tokio::test]
    async fn parameters_actions_and_missing_entities_give_the_documented_errors() {
        let sim = sim();
        let ask = |action: &str, params: &[(&str, &str)]| fresh(action, params, &plain(), true);
        let cases: Vec<(SimRequest, u16, &str)> = vec![
            (
                ask(ACTION_LIST_FOR_ACCOUNT, &[("PageSize", "101")]),
                400,
                "InvalidParameter.PageSize",
            ),
            (
                ask(ACTION_LIST_FOR_ACCOUNT, &[("PageSize", "0")]),
                400,
                "InvalidParameter.PageSize",
            ),
            (
                ask(ACTION_LIST_FOR_ACCOUNT, &[("PageNumber", "x")]),
                400,
                "InvalidParameter.PageNumber",
            ),
            (
                ask(ACTION_LIST_FOR_RESOURCE_DIRECTORY, &[]),
                404,
                "EntityNotExists.ResourceDirectory",
            ),
            (
                ask(ACTION_GET_HANDSHAKE, &[]),
                400,
                "MissingParameter.HandshakeId",
            ),
            (
                ask(ACTION_GET_HANDSHAKE, &[("HandshakeId", "h-ycm4rp****")]),
                400,
                "InvalidParameter.HandshakeId",
            ),
            (
                ask(
                    ACTION_GET_HANDSHAKE,
                    &[("HandshakeId", "h-Q3x9Lm2Pz8Rt5Vw1")],
                ),
                404,
                "EntityNotExists.Handshake",
            ),
            (
                ask("DeleteResourceDirectory", &[]),
                400,
                "InvalidAction.NotFound",
            ),
        ];
        for (req, status, expected) in cases {
            let answer = handle(&sim, req).await;
            assert_eq!((answer.status, code(&answer).as_str()), (status, expected));
            let rid = answer.headers.iter().find(|(k, _)| k == "x-acs-request-id");
            assert_eq!(
                rid.map(|(_, v)| v.as_str()),
                body_json(&answer)["RequestId"].as_str()
            );
        }
    }

    #[test]
    fn handshakes_serialise_like_the_api() {
        let now = chrono::DateTime::from_timestamp(1_714_564_800, 0).unwrap_or_default();
        let mut h = Handshake::new(crate::model::Provider::Alibaba, Arc::from("s"), "h-1");
        h.status = Status::Pending;
        h.target_type = TargetType::Email;
        h.target_entity = Some("a@example.com".into());
        h.expires_at = Some(now);
        assert_eq!(
            handshake_json(&h),
            json!({"HandshakeId": "h-1", "Status": "Pending", "TargetType": "Email",
                   "TargetEntity": "a@example.com", "ExpireTime": "2024-05-01T12:00:00Z"})
        );
        assert!(well_formed_id("h-Q3x9Lm2Pz8Rt5Vw1"));
        assert!(!well_formed_id("h-"));
        assert!(!well_formed_id("x-abc"));
        assert!(!well_formed_id("h-ab*"));
    }
}
