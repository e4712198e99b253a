//! Huawei Organizations wire format: response bodies (tolerant of absent, null and
//! oddly typed fields, strict about the overall shape) and error answers (parsed the
//! way the SDK's `DefaultExceptionHandler` does).

use crate::error::{ApiError, Reason};
use crate::model::{AnomalyField, Handshake, Interner, Provider};
use crate::transport::retry_after_hint;
use reqwest::header::HeaderMap;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// Throttling code of the API gateway in front of the service (believed, not
/// confirmed: the reference marks it [UNCONFIRMED]).
pub const THROTTLED_CODE: &str = "APIGW.0308";
/// Codes that mean "these credentials may not do this", whatever the HTTP status.
const AUTH_CODES: [&str; 4] = [
    "APIGW.0301",
    "Organizations.1001",
    "Organizations.1002",
    "Organizations.1007",
];

/// One invitation as `HandshakeDto`. Every field may be absent or null (the
/// documentation's own sample leaves out `expired_at`); scalars of another JSON type
/// are read as text rather than failing the whole page.
#[derive(Debug, Default, Deserialize)]
pub struct HandshakeDto {
    #[serde(default, deserialize_with = "lenient_text")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub urn: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub updated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub expired_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub management_account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub management_account_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub organization_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub notes: Option<String>,
    #[serde(default, deserialize_with = "lenient_target")]
    pub target: Option<TargetDto>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub status: Option<String>,
}

/// `TargetDto`: `type` is `account` (entity = account id) or `name` (account name).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TargetDto {
    pub kind: Option<String>,
    pub entity: Option<String>,
}

/// A [`HandshakeDto`] that only deserializes from a JSON object: serde's derived
/// struct visitor would also take an array (as a tuple of fields), turning a wrong
/// shape into an invitation full of nothing.
///
/// Read straight from the parser, field by field, with the same tolerance as the
/// derived `HandshakeDto` (and, like a JSON object read whole, the last of repeated
/// keys wins): going through a `serde_json::Value` first allocated every key and
/// value twice, which made a 2,000-invitation page cost several milliseconds and
/// left the heap fragmented after a refresh.
#[derive(Debug)]
struct ObjectDto(HandshakeDto);

/// The fields of a `HandshakeDto`, read without allocating the key.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Id,
    Urn,
    UpdatedAt,
    CreatedAt,
    ExpiredAt,
    ManagementAccountId,
    ManagementAccountName,
    OrganizationId,
    Notes,
    Target,
    Status,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for ObjectDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = HandshakeDto;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a handshake object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HandshakeDto, A::Error> {
                let mut dto = HandshakeDto::default();
                while let Some(field) = map.next_key::<Field>()? {
                    let slot = match field {
                        Field::Id => &mut dto.id,
                        Field::Urn => &mut dto.urn,
                        Field::UpdatedAt => &mut dto.updated_at,
                        Field::CreatedAt => &mut dto.created_at,
                        Field::ExpiredAt => &mut dto.expired_at,
                        Field::ManagementAccountId => &mut dto.management_account_id,
                        Field::ManagementAccountName => &mut dto.management_account_name,
                        Field::OrganizationId => &mut dto.organization_id,
                        Field::Notes => &mut dto.notes,
                        Field::Status => &mut dto.status,
                        Field::Target => {
                            dto.target = map.next_value::<LenientTarget>()?.0;
                            continue;
                        }
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<LenientText>()?.0;
                }
                Ok(dto)
            }
        }
        d.deserialize_map(ObjectVisitor).map(ObjectDto)
    }
}

/// Any JSON value, kept as text when it is a scalar: what [`value_text`] makes of a
/// `Value`, without building the `Value`.
struct LenientText(Option<String>);

impl<'de> Deserialize<'de> for LenientText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Option<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Some(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Some(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Some(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Some(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // serde_json's own float text, as `Number::to_string` gives it.
                Ok(serde_json::Number::from_f64(v).map(|n| n.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(None)
            }
        }
        d.deserialize_any(TextVisitor).map(LenientText)
    }
}

/// `target`: an object's `type` and `entity` as lenient text (last of repeated keys
/// wins); anything else is no target.
struct LenientTarget(Option<TargetDto>);

impl<'de> Deserialize<'de> for LenientTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TargetVisitor;
        impl<'de> Visitor<'de> for TargetVisitor {
            type Value = Option<TargetDto>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut target = TargetDto::default();
                while let Some(key) = map.next_key::<TargetField>()? {
                    match key {
                        TargetField::Type => target.kind = map.next_value::<LenientText>()?.0,
                        TargetField::Entity => target.entity = map.next_value::<LenientText>()?.0,
                        TargetField::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Some(target))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
        d.deserialize_any(TargetVisitor).map(LenientTarget)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum TargetField {
    Type,
    Entity,
    #[serde(other)]
    Other,
}

/// ListHandshakes / ListReceivedHandshakes body.
#[derive(Debug, Deserialize)]
struct ListBody {
    /// Absent or null means an empty page (the SDK model marks it optional).
    #[serde(default)]
    handshakes: Option<Vec<ObjectDto>>,
    /// Kept as a value: absent/null means "no more pages", an object is read, and
    /// anything else is a wrong shape.
    #[serde(default)]
    page_info: Option<Value>,
}

/// ShowHandshake body.
#[derive(Debug, Deserialize)]
struct ShowBody {
    #[serde(default)]
    handshake: Option<ObjectDto>,
}

/// One page of a list operation.
#[derive(Debug)]
pub struct ListPage {
    pub handshakes: Vec<HandshakeDto>,
    /// The marker for the next page; `None` when this is the last page (null, absent
    /// or empty string).
    pub next_marker: Option<String>,
}

/// Parse a list page. A body that is not a JSON object (a truncated or HTML answer,
/// an array) is a bad response, never an empty page.
pub fn parse_list(action: &'static str, body: &[u8]) -> Result<ListPage, ApiError> {
    let parsed: ListBody = parse_object(action, body)?;
    let next_marker = match parsed.page_info {
        None | Some(Value::Null) => None,
        Some(Value::Object(info)) => info.get("next_marker").and_then(value_text),
        Some(other) => {
            return Err(ApiError::bad_response(
                action,
                format!("page_info is a {}, not an object", json_kind(&other)),
            ));
        }
    };
    Ok(ListPage {
        handshakes: parsed
            .handshakes
            .unwrap_or_default()
            .into_iter()
            .map(|ObjectDto(dto)| dto)
            .collect(),
        next_marker: next_marker.filter(|m| !m.is_empty()),
    })
}

/// Parse a ShowHandshake answer; one without `handshake` is a bad response.
pub fn parse_show(action: &'static str, body: &[u8]) -> Result<HandshakeDto, ApiError> {
    let parsed: ShowBody = parse_object(action, body)?;
    parsed
        .handshake
        .map(|ObjectDto(dto)| dto)
        .ok_or_else(|| ApiError::bad_response(action, "the answer has no handshake"))
}

/// Deserialize a body that must be a JSON object. The first-byte check matters:
/// serde would otherwise accept a JSON array for a struct (as a tuple).
fn parse_object<T: for<'de> Deserialize<'de>>(
    action: &'static str,
    body: &[u8],
) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let what = match first {
            None => "an empty body".to_string(),
            Some(b'[') => "a JSON array".to_string(),
            Some(_) => format!("not a JSON object ({} bytes)", body.len()),
        };
        return Err(ApiError::bad_response(
            action,
            format!("expected a JSON object, got {what}"),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_response(action, format!("cannot parse the answer: {e}")))
}

/// Map a DTO onto the provider-neutral model; `None` when it has no id (such an
/// invitation cannot be told apart from others, so the caller rejects the page).
pub fn to_handshake(dto: HandshakeDto, source: &Arc<str>) -> Option<Handshake> {
    to_shared_handshake(dto, source, &mut Interner::default())
}

/// [`to_handshake`], sharing the per-source strings of a listing.
pub fn to_shared_handshake(
    dto: HandshakeDto,
    source: &Arc<str>,
    interner: &mut Interner,
) -> Option<Handshake> {
    let id = dto.id.filter(|id| !id.is_empty())?;
    let mut h = Handshake::new(Provider::Huawei, source.clone(), id);
    h.read_status(dto.status.as_deref());
    let target = dto.target.unwrap_or_default();
    h.read_target_type(target.kind.as_deref());
    h.target_entity = target.entity;
    h.directory_id = interner.share(dto.organization_id);
    h.management_account_id = interner.share(dto.management_account_id);
    h.management_account_name = interner.share(dto.management_account_name);
    h.note = dto.notes;
    h.created_at = h.read_time(AnomalyField::CreateTime, dto.created_at.as_deref());
    h.modified_at = h.read_time(AnomalyField::ModifyTime, dto.updated_at.as_deref());
    h.expires_at = h.read_time(AnomalyField::ExpireTime, dto.expired_at.as_deref());
    Some(h)
}

fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?
        .as_ref()
        .and_then(value_text))
}

fn lenient_target<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TargetDto>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Object(target)) => Some(TargetDto {
            kind: target.get("type").and_then(value_text),
            entity: target.get("entity").and_then(value_text),
        }),
        _ => None,
    })
}

/// A JSON scalar as text; objects, arrays and null are not text.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------
// Errors

/// Code and message of an error body, as the SDK's `DefaultExceptionHandler` finds
/// them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SdkErrorFields {
    pub code: Option<String>,
    pub message: Option<String>,
    pub encoded_authorization_message: Option<String>,
}

/// The SDK's `_process_sdk_error`: at the top level the first complete pair of
/// `error_code`+`error_msg`, `errorCode`+`errorMsg`, `code`+`message` wins; without
/// one it descends into every nested object in order, and (faithfully to the SDK,
/// which does not stop after a match there) a later nested match overwrites an
/// earlier one.
pub fn sdk_error_fields(object: &serde_json::Map<String, Value>, into: &mut SdkErrorFields) {
    if let Some(encoded) = object.get("encoded_authorization_message") {
        into.encoded_authorization_message = value_text(encoded);
    }
    for (code_key, message_key) in [
        ("error_code", "error_msg"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ] {
        if let (Some(code), Some(message)) = (object.get(code_key), object.get(message_key)) {
            into.code = truthy_text(code);
            into.message = truthy_text(message);
            return;
        }
    }
    for nested in object.values() {
        if let Value::Object(nested) = nested {
            sdk_error_fields(nested, into);
        }
    }
}

/// Python truthiness decides whether the SDK falls back (`if not error_code`):
/// null, "", 0, false, [] and {} count as missing.
fn truthy_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        Value::Bool(false) => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
        other => value_text(other).filter(|s| !s.is_empty()),
    }
}

/// Turn a non-2xx answer into an [`ApiError`] (a [`crate::transport::ErrorParser`]).
/// Code and message as the SDK finds them (no code: the HTTP status; no message: the
/// raw body, truncated); the request id only from the `X-Request-Id` header, as the
/// SDK does.
pub fn parse_error(
    action: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiError {
    let text = String::from_utf8_lossy(body);
    let mut fields = SdkErrorFields::default();
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        sdk_error_fields(&object, &mut fields);
    }
    let code = fields.code.unwrap_or_else(|| status.to_string());
    // The SDK keeps the raw text; trimming only drops a trailing newline or the like,
    // which would otherwise end up inside log lines.
    let message = fields.message.unwrap_or_else(|| text.trim().to_string());
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    ApiError::new(reason_for(status, &code), action, message)
        .with_status(status)
        .with_request_id(request_id)
        .with_retry_after(retry_after_hint(headers))
        .with_code(Some(code))
}

/// Whether ShowHandshake's error means "this invitation does not exist": a 404
/// with an error code of the service itself. No handshake-specific code is
/// documented (reference §8), so the known other 404s are excluded instead: the API
/// gateway's own (`APIGW.*`: no such route, a wrong base path), `Organizations.1010`
/// (a required header is missing) and a 404 without any code (a proxy's page).
/// Those must fail the refresh, not make every configured id look missing.
pub fn is_missing_handshake(error: &ApiError) -> bool {
    let status_text = error.http_status.map(|s| s.to_string());
    error.reason == Reason::NotFound
        && error.http_status == Some(404)
        && error.code.as_deref().is_some_and(|code| {
            Some(code) != status_text.as_deref()
                && !code.starts_with("APIGW.")
                && code != "Organizations.1010"
        })
}

/// The reason label for an error answer.
pub fn reason_for(status: u16, code: &str) -> Reason {
    if status == 429 || code == THROTTLED_CODE {
        Reason::Throttled
    } else if status == 401 || status == 403 || AUTH_CODES.contains(&code) {
        Reason::Auth
    } else if status == 404 {
        Reason::NotFound
    } else if (400..500).contains(&status) {
        Reason::BadRequest
    } else if status >= 500 {
        Reason::Server
    } else {
        // A 1xx/3xx that reqwest did not follow: not an answer we can use.
        Reason::BadResponse
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Status, TargetType};
    use reqwest::header::HeaderValue;

    #[test]
    fn only_the_services_own_404_means_a_missing_handshake() {
        let error = |status: u16, body: &str| {
            parse_error(
                ACTION_SHOW_FOR_TEST,
                status,
                &HeaderMap::new(),
                body.as_bytes(),
            )
        };
        let body = |code: &str| format!(r#"{{"error_code":"{code}","error_msg":"m"}}"#);
        assert!(is_missing_handshake(&error(
            404,
            &body("Organizations.1013")
        )));
        // The gateway's "no such API" (a wrong base path), a missing header, a proxy
        // page without a code, and other statuses are not.
        assert!(!is_missing_handshake(&error(404, &body("APIGW.0101"))));
        assert!(!is_missing_handshake(&error(
            404,
            &body("Organizations.1010")
        )));
        assert!(!is_missing_handshake(&error(404, "<html>Not Found</html>")));
        assert!(!is_missing_handshake(&error(
            400,
            &body("Organizations.1013")
        )));
        assert!(!is_missing_handshake(&error(
            403,
            &body("Organizations.1007")
        )));
    }

    const ACTION_SHOW_FOR_TEST: &str = "ShowHandshake";

    const VECTORS: &str = include_str!("../../../tests/vectors/huawei-sign-vectors.json");

    fn source() -> Arc<str> {
        Arc::from("hw")
    }

    #[test]
    fn the_five_sdk_error_samples_map_like_the_sdk() {
        let file: Value = serde_json::from_str(VECTORS).expect("vector file is JSON");
        let samples = file
            .get("sdk_error_handling")
            .and_then(Value::as_array)
            .expect("sdk_error_handling array");
        assert_eq!(samples.len(), 5);
        for sample in samples {
            let status = sample
                .get("http_status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .expect("http_status");
            // A string body is the raw text the server sent; an object is JSON.
            let body = match sample.get("response_body") {
                Some(Value::String(raw)) => raw.clone().into_bytes(),
                Some(json) => serde_json::to_vec(json).expect("serialisable"),
                None => panic!("sample without response_body"),
            };
            let mut headers = HeaderMap::new();
            let request_id = sample
                .get("x_request_id_header")
                .and_then(Value::as_str)
                .expect("x_request_id_header");
            headers.insert(
                "X-Request-Id",
                HeaderValue::from_str(request_id).expect("header value"),
            );
            let err = parse_error("ListHandshakes", status, &headers, &body);
            let want = |key: &str| sample.get(key).and_then(Value::as_str).map(str::to_string);
            assert_eq!(err.http_status, Some(status));
            assert_eq!(err.code, want("error_code"), "{sample}");
            assert_eq!(Some(err.message.clone()), want("error_msg"), "{sample}");
            assert_eq!(err.request_id, want("request_id"), "{sample}");

            let mut fields = SdkErrorFields::default();
            if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&body) {
                sdk_error_fields(&o, &mut fields);
            }
            assert_eq!(
                fields.encoded_authorization_message,
                want("encoded_auth_msg"),
                "{sample}"
            );
            let expected_reason = match status {
                401 | 403 => Reason::Auth,
                404 => Reason::NotFound,
                400 => Reason::BadRequest,
                _ => Reason::Server,
            };
            assert_eq!(err.reason, expected_reason, "{sample}");
        }
    }

    #[test]
    fn reasons_follow_status_and_gateway_codes() {
        assert_eq!(reason_for(429, "429"), Reason::Throttled);
        assert_eq!(reason_for(400, THROTTLED_CODE), Reason::Throttled);
        assert_eq!(reason_for(401, "APIGW.0301"), Reason::Auth);
        assert_eq!(reason_for(401, "Organizations.1002"), Reason::Auth);
        assert_eq!(reason_for(403, "Organizations.1007"), Reason::Auth);
        assert_eq!(reason_for(400, "Organizations.1001"), Reason::Auth);
        assert_eq!(reason_for(404, "Organizations.1010"), Reason::NotFound);
        assert_eq!(reason_for(404, "404"), Reason::NotFound);
        assert_eq!(reason_for(400, "Organizations.1004"), Reason::BadRequest);
        assert_eq!(reason_for(409, "Organizations.1003"), Reason::BadRequest);
        assert_eq!(reason_for(503, "APIGW.0202"), Reason::Server);
        assert_eq!(reason_for(302, "302"), Reason::BadResponse);
    }

    #[test]
    fn error_details_fall_back_like_the_sdk() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        let err = parse_error(
            "ListHandshakes",
            429,
            &headers,
            br#"{"error_code":"APIGW.0308","error_msg":"slow down","request_id":"in-body"}"#,
        );
        assert_eq!(err.reason, Reason::Throttled);
        assert_eq!(err.retry_after, Some(std::time::Duration::from_secs(2)));
        assert_eq!(err.request_id, None, "the body's request_id is ignored");
        // No code anywhere: the status is the code and the body the message.
        let err = parse_error("ShowHandshake", 500, &HeaderMap::new(), br#"{"x":1}"#);
        assert_eq!(err.code.as_deref(), Some("500"));
        assert_eq!(err.message, r#"{"x":1}"#);
        // An empty message falls back to the body too.
        let body = br#"{"code":"C.1","message":""}"#;
        let err = parse_error("ShowHandshake", 400, &HeaderMap::new(), body);
        assert_eq!(err.code.as_deref(), Some("C.1"));
        assert_eq!(err.message, r#"{"code":"C.1","message":""}"#);
        // A huge HTML page is truncated.
        let page = format!("<html>{}</html>", "x".repeat(10_000));
        let err = parse_error("ShowHandshake", 502, &HeaderMap::new(), page.as_bytes());
        assert!(err.message.chars().count() < 400);
        assert_eq!(err.reason, Reason::Server);
    }

    #[test]
    fn nested_error_objects_are_searched_and_the_last_nested_match_wins() {
        let body: Value = serde_json::json!({
            "a": {"code": "First.1", "message": "first"},
            "b": {"inner": {"error_code": "Second.2", "error_msg": "second"}},
            "c": "not an object"
        });
        let mut fields = SdkErrorFields::default();
        if let Value::Object(o) = &body {
            sdk_error_fields(o, &mut fields);
        }
        assert_eq!(fields.code.as_deref(), Some("Second.2"));
        assert_eq!(fields.message.as_deref(), Some("second"));
    }

    #[test]
    fn a_documented_page_parses_into_the_model() -> Result<(), ApiError> {
        let body = br#"{
          "handshakes": [{
            "id": "h-2tnfkrhe64qokwripd2kqrhd7d3079u5",
            "urn": "organizations::x:handshake:o-a/h-2",
            "updated_at": "2024-04-30T08:00:00Z",
            "created_at": "2024-04-30T07:00:00Z",
            "expired_at": "2024-05-14T08:00:00Z",
            "management_account_id": "3f1b",
            "management_account_name": "acme-root",
            "organization_id": "o-fhkm",
            "notes": "Please join",
            "target": {"type": "name", "entity": "acme-dev"},
            "status": "cancelled",
            "something_new": {"nested": true}
          }],
          "page_info": {"next_marker": "ou-taowx", "current_count": 100}
        }"#;
        let page = parse_list("ListHandshakes", body)?;
        assert_eq!(page.next_marker.as_deref(), Some("ou-taowx"));
        let dto = page.handshakes.into_iter().next().expect("one handshake");
        let h = to_handshake(dto, &source()).expect("has an id");
        assert_eq!(h.id, "h-2tnfkrhe64qokwripd2kqrhd7d3079u5");
        assert_eq!(h.status, Status::Cancelled);
        assert_eq!(h.target_type, TargetType::Name);
        assert_eq!(h.target_entity.as_deref(), Some("acme-dev"));
        assert_eq!(h.directory_id.as_deref(), Some("o-fhkm"));
        assert_eq!(h.management_account_id.as_deref(), Some("3f1b"));
        assert_eq!(h.management_account_name.as_deref(), Some("acme-root"));
        assert_eq!(h.note.as_deref(), Some("Please join"));
        assert_eq!(h.created_at.map(|t| t.timestamp()), Some(1_714_460_400));
        assert_eq!(h.modified_at.map(|t| t.timestamp()), Some(1_714_464_000));
        assert_eq!(h.expires_at.map(|t| t.timestamp()), Some(1_715_673_600));
        assert_eq!(&*h.source, "hw");
        assert_eq!(h.provider, Provider::Huawei);
        Ok(())
    }

    #[test]
    fn absent_null_and_odd_fields_are_tolerated() -> Result<(), ApiError> {
        let body = br#"{"handshakes":[
            {"id":"h-1","status":"Rejected","target":null,"expired_at":null,"notes":7},
            {"id":"h-2","target":{"type":"account"},"created_at":"garbage","status":null},
            {"id":"h-3","target":"not-an-object"}
        ],"page_info":{"next_marker":""}}"#;
        let page = parse_list("ListHandshakes", body)?;
        assert_eq!(page.next_marker, None, "an empty marker ends the walk");
        let hs: Vec<_> = page
            .handshakes
            .into_iter()
            .filter_map(|d| to_handshake(d, &source()))
            .collect();
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[0].status, Status::Unknown);
        assert_eq!(hs[0].target_type, TargetType::Unknown);
        assert_eq!(hs[0].note.as_deref(), Some("7"));
        assert_eq!(hs[0].expires_at, None);
        assert_eq!(hs[1].target_type, TargetType::Account);
        assert_eq!(hs[1].target_entity, None);
        assert_eq!(hs[1].created_at, None);
        assert_eq!(hs[2].target_type, TargetType::Unknown);
        // Kept, but a value that is there and does not parse is noted; absent, null
        // and non-text ones are not.
        let noted =
            |h: &Handshake| -> Vec<&str> { h.anomalies.iter().map(AnomalyField::as_str).collect() };
        assert_eq!(noted(&hs[0]), ["status"]);
        assert_eq!(noted(&hs[1]), ["create_time"]);
        assert!(hs[2].anomalies.is_empty());

        for body in [&br#"{}"#[..], br#"{"handshakes":null,"page_info":null}"#] {
            let page = parse_list("ListHandshakes", body)?;
            assert!(page.handshakes.is_empty());
            assert_eq!(page.next_marker, None);
        }
        assert!(to_handshake(HandshakeDto::default(), &source()).is_none());
        Ok(())
    }

    #[test]
    fn broken_bodies_are_bad_responses_never_empty_pages() {
        let full = br#"{"handshakes":[{"id":"h-1"}],"page_info":{"next_marker":null}}"#;
        let truncated = &full[..full.len() / 2];
        for body in [
            &b""[..],
            b"   ",
            b"<html>502</html>",
            truncated,
            b"[]",
            br#"[{"id":"h-1"}]"#,
            br#"{"handshakes":{"id":"h-1"}}"#,
            br#"{"handshakes":"none"}"#,
            br#"{"handshakes":[1,2]}"#,
            br#"{"handshakes":[["h-1"]]}"#,
            br#"{"handshakes":[],"page_info":"m"}"#,
            br#"{"handshakes":[],"page_info":["m"]}"#,
        ] {
            let result = parse_list("ListHandshakes", body);
            assert!(
                matches!(&result, Err(e) if e.reason == Reason::BadResponse),
                "{:?} -> {result:?}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [
            &br#"{}"#[..],
            br#"{"handshake":null}"#,
            br#"{"handshake":[{"id":"h-1"}]}"#,
            br#"{"handshake":"h-1"}"#,
            b"[]",
            b"nope",
        ] {
            let result = parse_show("ShowHandshake", body);
            assert!(
                matches!(&result, Err(e) if e.reason == Reason::BadResponse),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// The streaming reader gives exactly what reading the object into a `Value`
    /// and then through the derived (lenient) `HandshakeDto` gave.
    fn same_as_through_a_value(object: &str) -> Result<(), String> {
        let streamed = serde_json::from_str::<ObjectDto>(object)
            .map(|ObjectDto(dto)| format!("{dto:?}"))
            .map_err(|e| e.to_string());
        let via_value = serde_json::from_str::<Value>(object)
            .map_err(|e| e.to_string())
            .and_then(|v| match v {
                v @ Value::Object(_) => HandshakeDto::deserialize(v)
                    .map(|dto| format!("{dto:?}"))
                    .map_err(|e| e.to_string()),
                _ => Err("not an object".into()),
            });
        match (streamed, via_value) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            (Err(_), Err(_)) => Ok(()),
            (a, b) => Err(format!("{object}: streamed {a:?}, via Value {b:?}")),
        }
    }

    #[test]
    fn streaming_reads_objects_like_the_value_path() -> Result<(), String> {
        for object in [
            r#"{"id":"h-1","status":"pending","target":{"type":"account","entity":"42"}}"#,
            r#"{"id":7,"notes":-3,"status":true,"urn":1.5,"created_at":1e21,"expired_at":-0.0}"#,
            r#"{"id":null,"notes":[1,{"a":2}],"status":{"x":[]},"target":[1]}"#,
            r#"{"target":{"type":1,"entity":false,"extra":{"deep":[null]}},"unknown":{"a":[1,2]}}"#,
            r#"{"target":"account","organization_id":"o-\u00e9\n"}"#,
            r#"{"id":"first","id":"second","target":{"type":"a","type":"name"}}"#,
            r#"{"target":{"type":"a"},"target":null}"#,
            r#"{"management_account_id":18446744073709551615,"management_account_name":-9223372036854775808}"#,
            r#"{}"#,
            r#"[]"#,
            r#"["h-1"]"#,
            r#"null"#,
            r#""h-1""#,
        ] {
            same_as_through_a_value(object)?;
        }
        // Random objects over the real field names.
        let mut rng = fastrand::Rng::with_seed(5);
        let keys = [
            "id",
            "urn",
            "updated_at",
            "created_at",
            "expired_at",
            "management_account_id",
            "management_account_name",
            "organization_id",
            "notes",
            "target",
            "status",
            "type",
            "entity",
            "other",
        ];
        fn value(rng: &mut fastrand::Rng, keys: &[&str], depth: u32) -> String {
            match rng.u8(..if depth > 2 { 7 } else { 9 }) {
                0 => "null".into(),
                1 => rng.bool().to_string(),
                2 => rng.i64(..).to_string(),
                3 => rng.u64(..).to_string(),
                4 => format!("{:e}", rng.f64() * 1e10 - 5e9),
                5 => format!("{}", rng.f64()),
                6 => {
                    serde_json::to_string(&format!("s{}\u{e9}\"", rng.u32(..))).unwrap_or_default()
                }
                7 => format!(
                    "[{}]",
                    (0..rng.usize(..3))
                        .map(|_| value(rng, keys, depth + 1))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                _ => format!(
                    "{{{}}}",
                    (0..rng.usize(..5))
                        .map(|_| format!(
                            "\"{}\":{}",
                            keys[rng.usize(..keys.len())],
                            value(rng, keys, depth + 1)
                        ))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            }
        }
        for _ in 0..5_000 {
            let object = format!(
                "{{{}}}",
                (0..rng.usize(..8))
                    .map(|_| format!(
                        "\"{}\":{}",
                        keys[rng.usize(..keys.len())],
                        value(&mut rng, &keys, 0)
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            same_as_through_a_value(&object)?;
        }
        Ok(())
    }
}
