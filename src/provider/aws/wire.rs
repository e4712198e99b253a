//! AWS Organizations wire format (JSON 1.1): list and describe answers read
//! tolerantly field by field but strictly as a whole (a 2xx without `Handshakes` is
//! a failure, never an empty page: reference §1.7), and error answers parsed the way
//! botocore does (§9).

use crate::error::{ApiError, Reason};
use crate::model::{
    Action, AnomalyField, Handshake, Interner, Provider, Status, TargetType, parse_time,
};
use crate::transport::retry_after_hint;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};
use std::sync::Arc;

pub const CODE_THROTTLED: &str = "TooManyRequestsException";
pub const CODE_ACCESS_DENIED: &str = "AccessDeniedException";
pub const CODE_NOT_IN_USE: &str = "AWSOrganizationsNotInUseException";
pub const CODE_HANDSHAKE_NOT_FOUND: &str = "HandshakeNotFoundException";
pub const CODE_INVALID_INPUT: &str = "InvalidInputException";
pub const CODE_SERVICE: &str = "ServiceException";

/// Throttling codes botocore's standard retry mode treats as throttling.
const THROTTLING_CODES: [&str; 7] = [
    CODE_THROTTLED,
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Codes that mean "these credentials may not do this" (§9: the operation's
/// AccessDenied, the common authentication errors, STS's).
const AUTH_CODES: [&str; 18] = [
    CODE_ACCESS_DENIED,
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "ExpiredToken",
    "ExpiredTokenException",
    "NotAuthorized",
    "OptInRequired",
    "RequestExpired",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AuthFailure",
    "SecurityTokenExpired",
];

/// One page of ListHandshakesFor*.
#[derive(Debug)]
pub struct ListPage {
    pub handshakes: Vec<Handshake>,
    /// `None` when absent, null or empty (botocore treats `""` as the end).
    pub next_token: Option<String>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The body as a JSON object, or a `bad_response` saying what it was instead
/// (never quoting it: party ids are sensitive).
fn object(action: &'static str, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::bad_response(
            action,
            format!("expected a JSON object, got a {}", kind(&other)),
        )),
        Err(e) if body.iter().all(u8::is_ascii_whitespace) => {
            Err(ApiError::bad_response(action, format!("empty body ({e})")))
        }
        Err(e) => Err(ApiError::bad_response(
            action,
            format!(
                "the answer is not JSON ({} bytes; line {}, column {})",
                body.len(),
                e.line(),
                e.column()
            ),
        )),
    }
}

/// Parse a ListHandshakesForOrganization / ForAccount answer.
pub fn parse_list(
    action: &'static str,
    body: &[u8],
    source: &Arc<str>,
    interner: &mut Interner,
) -> Result<ListPage, ApiError> {
    let mut root = object(action, body)?;
    let items = match root.remove("Handshakes") {
        Some(Value::Array(items)) => items,
        None => {
            return Err(ApiError::bad_response(
                action,
                "the answer has no Handshakes member",
            ));
        }
        Some(other) => {
            return Err(ApiError::bad_response(
                action,
                format!("Handshakes is a {}, not an array", kind(&other)),
            ));
        }
    };
    let next_token = match root.remove("NextToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(ApiError::bad_response(
                action,
                format!("NextToken is a {}, not a string", kind(&other)),
            ));
        }
    };
    let handshakes = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(o) => to_handshake(&o, source, interner).ok_or_else(|| {
                ApiError::bad_response(action, format!("handshake {i} of the page has no Id"))
            }),
            other => Err(ApiError::bad_response(
                action,
                format!("handshake {i} of the page is a {}", kind(&other)),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ListPage {
        handshakes,
        next_token,
    })
}

/// Parse a DescribeHandshake answer.
pub fn parse_describe(
    action: &'static str,
    body: &[u8],
    source: &Arc<str>,
) -> Result<Handshake, ApiError> {
    let root = object(action, body)?;
    match root.get("Handshake") {
        Some(Value::Object(o)) => to_handshake(o, source, &mut Interner::default())
            .ok_or_else(|| ApiError::bad_response(action, "the handshake has no Id")),
        None | Some(Value::Null) => Err(ApiError::bad_response(
            action,
            "the answer has no Handshake member",
        )),
        Some(other) => Err(ApiError::bad_response(
            action,
            format!("Handshake is a {}, not an object", kind(other)),
        )),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `HandshakeState` onto the shared statuses: REQUESTED (awaiting the recipient)
/// and OPEN (all recipients answered, the sender can complete it) are both still
/// pending; CANCELED has one L.
pub fn map_state(raw: &str) -> Option<Status> {
    match raw.trim().to_ascii_uppercase().as_str() {
        "REQUESTED" | "OPEN" => Some(Status::Pending),
        "ACCEPTED" => Some(Status::Accepted),
        "DECLINED" => Some(Status::Declined),
        "CANCELED" | "CANCELLED" => Some(Status::Cancelled),
        "EXPIRED" => Some(Status::Expired),
        _ => None,
    }
}

/// A timestamp value that is present but not a time.
#[derive(Debug, PartialEq, Eq)]
pub struct NotATime;

/// A wire timestamp: epoch seconds as any JSON number (`1700000000`,
/// `1700000000.123`, `1.7E9`) or numeric string, ISO 8601, or RFC 822 (what
/// botocore's `parse_timestamp` reads, reference §5). `Ok(None)` for absent or
/// null; `Err(NotATime)` for a value that is there but not a time.
pub fn parse_timestamp(v: Option<&Value>) -> Result<Option<DateTime<Utc>>, NotATime> {
    let epoch = |secs: f64| -> Result<Option<DateTime<Utc>>, NotATime> {
        if !secs.is_finite() {
            return Err(NotATime);
        }
        // Milliseconds are what the service sends; rounding to them drops the
        // binary noise of `1714564800.123` as an f64.
        let millis = (secs * 1000.0).round();
        if millis.abs() > 1e16 {
            return Err(NotATime);
        }
        DateTime::from_timestamp_millis(millis as i64)
            .map(Some)
            .ok_or(NotATime)
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map_or(Err(NotATime), epoch),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            if let Ok(secs) = s.parse::<f64>() {
                return epoch(secs);
            }
            if let Some(t) = parse_time(Some(s)) {
                return Ok(Some(t));
            }
            DateTime::parse_from_rfc2822(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| NotATime)
        }
        Some(_) => Err(NotATime),
    }
}

/// The 12-digit management account of a handshake ARN
/// (`arn:<partition>:organizations::<account>:handshake/o-…/<action>/h-…`), and the
/// organization id in it.
fn from_arn(arn: &str) -> (Option<String>, Option<String>) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let account = parts
        .get(4)
        .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
        .map(|a| (*a).to_string());
    let org = parts
        .get(5)
        .and_then(|r| r.split('/').nth(1))
        .filter(|o| o.starts_with("o-"))
        .map(str::to_string);
    (account, org)
}

/// A handshake object onto the model; `None` without an `Id`.
pub fn to_handshake(
    o: &Map<String, Value>,
    source: &Arc<str>,
    interner: &mut Interner,
) -> Option<Handshake> {
    let id = text(o.get("Id")).filter(|id| !id.is_empty())?;
    let mut h = Handshake::new(Provider::Aws, source.clone(), id);
    let state = text(o.get("State"));
    match state.as_deref().map(|s| (s, map_state(s))) {
        Some((_, Some(s))) => h.status = s,
        // A value nobody knows stays `unknown` and is noted; absent is not.
        Some((raw, None)) if !raw.trim().is_empty() => h.anomalies.insert(AnomalyField::Status),
        _ => {}
    }
    if let Some(action) = text(o.get("Action")) {
        h.action = Action::parse_lenient(&action);
    }
    // The party that is not the inviting organization is the target; the model does
    // not fix the order of the two.
    let parties: Vec<&Map<String, Value>> = match o.get("Parties") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    };
    let is_org = |p: &&Map<String, Value>| {
        text(p.get("Type")).is_some_and(|t| t.eq_ignore_ascii_case("ORGANIZATION"))
    };
    let org_party = parties
        .iter()
        .find(|p| is_org(p))
        .and_then(|p| text(p.get("Id")));
    if let Some(target) = parties.iter().find(|p| !is_org(p)) {
        let kind = text(target.get("Type"));
        match kind.as_deref().map(|k| k.trim().to_ascii_uppercase()) {
            Some(k) if k == "ACCOUNT" => h.target_type = TargetType::Account,
            Some(k) if k == "EMAIL" => h.target_type = TargetType::Email,
            // `name` is another provider's type: not a valid AWS party type.
            Some(k) if !k.is_empty() => h.anomalies.insert(AnomalyField::TargetType),
            _ => {}
        }
        h.target_entity = text(target.get("Id"));
    }
    let (arn_account, arn_org) = text(o.get("Arn")).map_or((None, None), |a| from_arn(&a));
    // Resources: the ORGANIZATION resource names the organization and (nested) its
    // management account's name; NOTES the invitation's note.
    let mut org_resource = None;
    let mut mgmt_name = None;
    let mut mgmt_account = None;
    if let Some(Value::Array(resources)) = o.get("Resources") {
        for r in resources.iter().filter_map(Value::as_object) {
            let rtype = text(r.get("Type")).unwrap_or_default().to_ascii_uppercase();
            match rtype.as_str() {
                "ORGANIZATION" => {
                    org_resource = text(r.get("Value"));
                    if let Some(Value::Array(nested)) = r.get("Resources") {
                        for n in nested.iter().filter_map(Value::as_object) {
                            let ntype =
                                text(n.get("Type")).unwrap_or_default().to_ascii_uppercase();
                            match ntype.as_str() {
                                "MASTER_NAME" | "MANAGEMENT_NAME" => {
                                    mgmt_name = text(n.get("Value"));
                                }
                                "MANAGEMENT_ACCOUNT" => mgmt_account = text(n.get("Value")),
                                _ => {}
                            }
                        }
                    }
                }
                "NOTES" => h.note = text(r.get("Value")),
                _ => {}
            }
        }
    }
    h.directory_id = interner.share(org_party.or(org_resource).or(arn_org));
    h.management_account_id = interner.share(arn_account.or(mgmt_account));
    h.management_account_name = interner.share(mgmt_name);
    h.created_at = match parse_timestamp(o.get("RequestedTimestamp")) {
        Ok(t) => t,
        Err(NotATime) => {
            h.anomalies.insert(AnomalyField::CreateTime);
            None
        }
    };
    h.expires_at = match parse_timestamp(o.get("ExpirationTimestamp")) {
        Ok(t) => t,
        Err(NotATime) => {
            h.anomalies.insert(AnomalyField::ExpireTime);
            None
        }
    };
    Some(h)
}

// ---------------------------------------------------------------------------
// Errors

/// botocore's code extraction: after the last `#`, before any `:`.
pub fn clean_code(raw: &str) -> String {
    let after_hash = raw.rsplit('#').next().unwrap_or(raw);
    after_hash
        .split(':')
        .next()
        .unwrap_or(after_hash)
        .trim()
        .to_string()
}

/// The reason for an error code and status: by name first (AWS sends most errors
/// as HTTP 400, throttling included), by status for codes not known here.
pub fn reason_for(status: u16, code: &str) -> Reason {
    if THROTTLING_CODES.contains(&code) || status == 429 {
        Reason::Throttled
    } else if AUTH_CODES.contains(&code) {
        Reason::Auth
    } else if code == CODE_NOT_IN_USE {
        Reason::NotEnabled
    } else if code == CODE_HANDSHAKE_NOT_FOUND {
        Reason::NotFound
    } else if matches!(
        code,
        CODE_SERVICE | "InternalFailure" | "ServiceUnavailable" | "InternalError"
    ) || status >= 500
    {
        Reason::Server
    } else if status == 401 || status == 403 {
        Reason::Auth
    } else if status == 404 {
        Reason::NotFound
    } else if (400..500).contains(&status) {
        Reason::BadRequest
    } else {
        Reason::BadResponse
    }
}

/// Turn a non-2xx Organizations answer into an [`ApiError`] (a
/// [`crate::transport::ErrorParser`]). Code from `__type` (namespace stripped),
/// else the `x-amzn-ErrorType` header, else the HTTP status; message from
/// `message`/`Message`, else the body text (not for HTML pages).
pub fn parse_error(
    action: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let obj = parsed.as_ref().and_then(Value::as_object);
    let code = obj
        .and_then(|o| text(o.get("__type")).or_else(|| text(o.get("code"))))
        .map(|c| clean_code(&c))
        .filter(|c| !c.is_empty())
        .or_else(|| {
            headers
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(clean_code)
                .filter(|c| !c.is_empty())
        })
        .unwrap_or_else(|| status.to_string());
    let message = obj
        .and_then(|o| text(o.get("message")).or_else(|| text(o.get("Message"))))
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(body);
            let t = t.trim();
            if t.starts_with('<') || t.starts_with('{') {
                // An HTML page or a JSON body without a message: the code says it.
                String::new()
            } else {
                t.to_string()
            }
        });
    let request_id = headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    ApiError::new(reason_for(status, &code), action, message)
        .with_status(status)
        .with_code(Some(code))
        .with_request_id(request_id)
        .with_retry_after(retry_after_hint(headers))
}

/// Whether DescribeHandshake's error means "no such handshake".
pub fn is_missing_handshake(e: &ApiError) -> bool {
    e.code.as_deref() == Some(CODE_HANDSHAKE_NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn src() -> Arc<str> {
        Arc::from("aws-org")
    }

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../tests/vectors/aws-sign-vectors.json"))
            .expect("vectors")
    }

    #[test]
    fn every_timestamp_form_botocore_reads() {
        let all = vectors();
        let cases = all["sdk_parsing"]["timestamps"]
            .as_array()
            .expect("timestamps");
        assert_eq!(cases.len(), 9);
        for c in cases {
            let wire: Value = serde_json::from_str(c["wire_value"].as_str().expect("wire"))
                .expect("wire value is JSON");
            let got = parse_timestamp(Some(&wire)).expect("parses");
            let want = c["unix"].as_f64();
            assert_eq!(
                got.map(|t| t.timestamp_millis()),
                want.map(|u| (u * 1000.0).round() as i64),
                "{}",
                c["label"]
            );
        }
        assert_eq!(
            parse_timestamp(Some(&json!(1.7E9))).map(|t| t.map(|t| t.timestamp())),
            Ok(Some(1_700_000_000))
        );
        assert_eq!(parse_timestamp(Some(&json!("soon"))), Err(NotATime));
        assert_eq!(parse_timestamp(Some(&json!(true))), Err(NotATime));
        assert_eq!(parse_timestamp(Some(&json!(1e300))), Err(NotATime));
    }

    #[test]
    fn the_reference_example_page_maps_onto_the_model() -> Result<(), ApiError> {
        let body = json!({
          "Handshakes": [
            {
              "Id": "h-98vnp5e7vkg0frht",
              "Arn": "arn:aws:organizations::110983344898:handshake/o-bqbm6y587r/invite/h-98vnp5e7vkg0frht",
              "Parties": [
                {"Id": "o-bqbm6y587r", "Type": "ORGANIZATION"},
                {"Id": "451405064584", "Type": "ACCOUNT"}
              ],
              "State": "REQUESTED",
              "RequestedTimestamp": 1714555555.037,
              "ExpirationTimestamp": 1715851555.037,
              "Action": "INVITE",
              "Resources": [
                {"Value": "o-bqbm6y587r", "Type": "ORGANIZATION", "Resources": [
                  {"Value": "aws-root@example.com", "Type": "MASTER_EMAIL"},
                  {"Value": "Example Management", "Type": "MASTER_NAME"},
                  {"Value": "FULL", "Type": "ORGANIZATION_FEATURE_SET"}]},
                {"Value": "451405064584", "Type": "ACCOUNT"},
                {"Value": "Welcome to the organization", "Type": "NOTES"}
              ]
            },
            {
              "Id": "h-examplehandshakeid222",
              "Parties": [
                {"Id": "anika@example.com", "Type": "EMAIL"},
                {"Id": "o-bqbm6y587r", "Type": "ORGANIZATION"}
              ],
              "State": "ACCEPTED",
              "RequestedTimestamp": "2024-04-13T09:20:00.5Z",
              "ExpirationTimestamp": 1.7142960005E9,
              "Action": "ENABLE_ALL_FEATURES"
            }
          ],
          "NextToken": "AAEAAbX+9Jq/3k0=Zm9v+YmFy/YmF6LzEyMw=="
        });
        let page = parse_list(
            "ListHandshakesForOrganization",
            body.to_string().as_bytes(),
            &src(),
            &mut Interner::default(),
        )?;
        assert_eq!(
            page.next_token.as_deref(),
            Some("AAEAAbX+9Jq/3k0=Zm9v+YmFy/YmF6LzEyMw==")
        );
        let [a, b] = page.handshakes.as_slice() else {
            panic!("two handshakes");
        };
        assert_eq!(a.provider, Provider::Aws);
        assert_eq!(a.status, Status::Pending);
        assert_eq!(a.action, Action::Invite);
        assert_eq!(a.target_type, TargetType::Account);
        assert_eq!(a.target_entity.as_deref(), Some("451405064584"));
        assert_eq!(a.directory_id.as_deref(), Some("o-bqbm6y587r"));
        assert_eq!(a.management_account_id.as_deref(), Some("110983344898"));
        assert_eq!(
            a.management_account_name.as_deref(),
            Some("Example Management")
        );
        assert_eq!(a.note.as_deref(), Some("Welcome to the organization"));
        assert_eq!(
            a.created_at.map(|t| t.timestamp_millis()),
            Some(1_714_555_555_037)
        );
        assert_eq!(
            a.expires_at.map(|t| t.timestamp_millis()),
            Some(1_715_851_555_037)
        );
        assert!(a.anomalies.is_empty());
        assert_eq!(b.status, Status::Accepted);
        assert_eq!(b.action, Action::EnableAllFeatures);
        assert_eq!(b.target_type, TargetType::Email);
        assert_eq!(b.target_entity.as_deref(), Some("anika@example.com"));
        assert_eq!(b.directory_id.as_deref(), Some("o-bqbm6y587r"));
        assert_eq!(
            b.created_at.map(|t| t.timestamp_millis()),
            Some(1_713_000_000_500)
        );
        assert_eq!(
            b.expires_at.map(|t| t.timestamp_millis()),
            Some(1_714_296_000_500)
        );
        Ok(())
    }

    #[test]
    fn every_state_maps_and_unreadable_values_are_anomalies_not_errors() {
        for (wire, status) in [
            ("REQUESTED", Status::Pending),
            ("OPEN", Status::Pending),
            ("ACCEPTED", Status::Accepted),
            ("DECLINED", Status::Declined),
            ("CANCELED", Status::Cancelled),
            ("EXPIRED", Status::Expired),
        ] {
            let o = json!({"Id": "h-1", "State": wire});
            let h = to_handshake(
                o.as_object().expect("obj"),
                &src(),
                &mut Interner::default(),
            )
            .expect("id");
            assert_eq!(h.status, status, "{wire}");
            assert!(h.anomalies.is_empty());
        }
        let o = json!({"Id": "h-1", "State": "FROZEN", "RequestedTimestamp": "next Tuesday",
            "ExpirationTimestamp": {"x": 1}, "Action": "TRANSFER_RESPONSIBILITY",
            "Parties": [{"Id": "x", "Type": "PIGEON"}]});
        let h = to_handshake(
            o.as_object().expect("obj"),
            &src(),
            &mut Interner::default(),
        )
        .expect("id");
        assert_eq!(h.status, Status::Unknown);
        assert_eq!(h.action, Action::Unknown);
        assert_eq!(h.target_type, TargetType::Unknown);
        let noted: Vec<&str> = h.anomalies.iter().map(AnomalyField::as_str).collect();
        assert_eq!(
            noted,
            ["expire_time", "create_time", "status", "target_type"]
        );
        // Absent fields are not anomalies.
        let h = to_handshake(
            json!({"Id": "h-2"}).as_object().expect("obj"),
            &src(),
            &mut Interner::default(),
        )
        .expect("id");
        assert!(h.anomalies.is_empty());
        assert_eq!(h.status, Status::Unknown);
    }

    #[test]
    fn broken_bodies_are_bad_responses_never_empty_pages() {
        for body in [
            &b""[..],
            b"{\"Handshakes\": [",
            b"<html>gateway</html>",
            b"{}",
            b"[]",
            b"{\"Handshakes\": {}}",
            b"{\"Handshakes\": [], \"NextToken\": 5}",
            b"{\"Handshakes\": [{\"State\": \"OPEN\"}]}",
            b"{\"Handshakes\": [7]}",
        ] {
            let e = parse_list("L", body, &src(), &mut Interner::default())
                .expect_err(&String::from_utf8_lossy(body));
            assert_eq!(
                e.reason,
                Reason::BadResponse,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let page = parse_list(
            "L",
            b"{\"Handshakes\": [], \"NextToken\": \"\"}",
            &src(),
            &mut Interner::default(),
        )
        .expect("empty last page");
        assert_eq!(page.next_token, None);
        for body in [&b"{}"[..], b"{\"Handshake\": null}", b"{\"Handshake\": []}"] {
            assert_eq!(
                parse_describe("D", body, &src())
                    .map(|_| ())
                    .map_err(|e| e.reason),
                Err(Reason::BadResponse)
            );
        }
    }

    #[test]
    fn errors_map_like_botocore_reads_them() {
        let all = vectors();
        let cases = all["sdk_parsing"]["errors"].as_array().expect("errors");
        let mut checked = 0;
        for c in cases.iter().filter(|c| c.get("service").is_none()) {
            let status = c["http_status"].as_u64().expect("status") as u16;
            let mut headers = HeaderMap::new();
            if let Some(h) = c["response_headers"].as_object() {
                for (k, v) in h {
                    headers.insert(
                        reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                        v.as_str().expect("value").parse().expect("value"),
                    );
                }
            }
            let e = parse_error(
                "A",
                status,
                &headers,
                c["body"].as_str().expect("body").as_bytes(),
            );
            let want = c["error_code"].as_str().expect("code");
            // One deliberate difference: an empty 403 with x-amzn-ErrorType names
            // the code from the header (botocore says "403"); both are auth.
            if headers.contains_key("x-amzn-errortype") && c["body"] == "" {
                assert_eq!(e.code.as_deref(), Some("AccessDeniedException"));
            } else {
                assert_eq!(e.code.as_deref(), Some(want), "{}", c["body"]);
            }
            let msg = c["error_message"].as_str().unwrap_or_default();
            if !c["body"].as_str().unwrap_or_default().starts_with('<') {
                assert_eq!(e.message, msg, "{}", c["body"]);
            }
            checked += 1;
        }
        assert!(checked >= 10);
        let reason = |code: &str| reason_for(400, code);
        assert_eq!(reason("TooManyRequestsException"), Reason::Throttled);
        assert!(reason("TooManyRequestsException").is_retryable());
        assert_eq!(reason("AccessDeniedException"), Reason::Auth);
        assert_eq!(
            reason("AWSOrganizationsNotInUseException"),
            Reason::NotEnabled
        );
        assert_eq!(reason("HandshakeNotFoundException"), Reason::NotFound);
        assert_eq!(reason("InvalidSignatureException"), Reason::Auth);
        assert_eq!(reason("UnrecognizedClientException"), Reason::Auth);
        assert_eq!(reason("ExpiredTokenException"), Reason::Auth);
        assert_eq!(reason("InvalidInputException"), Reason::BadRequest);
        assert_eq!(
            reason("ConcurrentModificationException"),
            Reason::BadRequest
        );
        assert_eq!(reason_for(500, "ServiceException"), Reason::Server);
        assert_eq!(reason_for(503, "503"), Reason::Server);
        let e = parse_error(
            "A",
            400,
            &HeaderMap::new(),
            br#"{"__type": "com.amazonaws.organizations.v20161128#HandshakeNotFoundException:http://x", "Message": "no"}"#,
        );
        assert!(is_missing_handshake(&e));
        assert_eq!(e.reason, Reason::NotFound);
    }
}
