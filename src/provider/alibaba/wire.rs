//! Alibaba Resource Manager response bodies, parsed tolerantly.
//!
//! Tolerant means: every field may be missing or null, numbers may come as strings,
//! `InviteEntity`/`InviteType` (seen in one doc sample) stand in for
//! `TargetEntity`/`TargetType`, and an absent or empty `Handshakes` wrapper is an
//! empty page. It does not mean accepting anything: a body that is not a JSON object,
//! a flat `Handshakes` list, or a `Handshake` that is not an array of objects is a
//! [`WireError::Shape`], because reading it as "no invitations" would be a lie.

use crate::model::{AnomalyField, Handshake, Interner, Provider};
#[cfg(test)]
use crate::model::{Status, TargetType};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::sync::Arc;

/// One invitation as the API sends it. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WireHandshake {
    #[serde(deserialize_with = "lenient_string")]
    pub handshake_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub resource_directory_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub master_account_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub master_account_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub target_entity: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub target_type: Option<String>,
    // Separate fields rather than serde aliases: an item carrying both spellings
    // would otherwise fail as a "duplicate field" instead of being read.
    #[serde(deserialize_with = "lenient_string")]
    pub invite_entity: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub invite_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub note: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub create_time: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub modify_time: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub expire_time: Option<String>,
}

impl WireHandshake {
    /// The provider-neutral invitation, or `None` without a `HandshakeId` (an
    /// invitation without identity cannot be reported or deduplicated).
    pub fn into_handshake(self, source: Arc<str>) -> Option<Handshake> {
        self.into_shared_handshake(source, &mut Interner::default())
    }

    /// [`WireHandshake::into_handshake`], sharing the per-source strings of a listing.
    pub fn into_shared_handshake(
        self,
        source: Arc<str>,
        interner: &mut Interner,
    ) -> Option<Handshake> {
        let id = self.handshake_id.filter(|id| !id.trim().is_empty())?;
        let target_type = self.target_type.or(self.invite_type);
        let mut h = Handshake::new(Provider::Alibaba, source, id);
        h.read_status(self.status.as_deref());
        h.read_target_type(target_type.as_deref());
        h.target_entity = self.target_entity.or(self.invite_entity);
        h.directory_id = interner.share(self.resource_directory_id);
        h.management_account_id = interner.share(self.master_account_id);
        h.management_account_name = interner.share(self.master_account_name);
        h.note = self.note;
        h.created_at = h.read_time(AnomalyField::CreateTime, self.create_time.as_deref());
        h.modified_at = h.read_time(AnomalyField::ModifyTime, self.modify_time.as_deref());
        h.expires_at = h.read_time(AnomalyField::ExpireTime, self.expire_time.as_deref());
        Some(h)
    }
}

/// One page of ListHandshakesForResourceDirectory / ListHandshakesForAccount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub request_id: Option<String>,
    pub total_count: Option<u64>,
    pub page_number: Option<u64>,
    pub page_size: Option<u64>,
    pub items: Vec<WireHandshake>,
}

/// An error document in the place of data: some gateways answer 200 with
/// `{"Code": …, "Message": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

/// Why a 2xx body could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Not JSON (HTML page, truncated document) or JSON of the wrong shape.
    Shape(String),
    /// A well-formed error document (`Code` and no data).
    ApiError(ErrorBody),
}

/// The scalar parts of a list answer; `Handshakes` is read by hand (see module doc).
#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ListEnvelope {
    #[serde(deserialize_with = "lenient_string")]
    request_id: Option<String>,
    #[serde(deserialize_with = "lenient_count")]
    total_count: Option<u64>,
    #[serde(deserialize_with = "lenient_count")]
    page_number: Option<u64>,
    #[serde(deserialize_with = "lenient_count")]
    page_size: Option<u64>,
}

/// Parse a list page.
pub fn parse_list_page(body: &[u8]) -> Result<ListPage, WireError> {
    let mut object = parse_object(body)?;
    let has_data = ["Handshakes", "TotalCount", "PageNumber", "PageSize"]
        .iter()
        .any(|k| object.get(*k).is_some_and(|v| !v.is_null()));
    if !has_data && let Some(error) = error_document(&object) {
        return Err(WireError::ApiError(error));
    }
    // Taken out rather than cloned: the envelope has no use for it.
    let handshakes = object.remove("Handshakes");
    // Deserializing from the map (not the whole value) keeps serde from reading an
    // array positionally as a struct.
    let envelope: ListEnvelope = serde_json::from_value(Value::Object(object))
        .map_err(|e| WireError::Shape(format!("list envelope: {e}")))?;
    let items = match handshakes {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(mut wrapper)) => match wrapper.remove("Handshake") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .into_iter()
                .enumerate()
                .map(|(i, item)| parse_item(item, || format!("Handshakes.Handshake[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(WireError::Shape(format!(
                    "Handshakes.Handshake is {}, expected an array",
                    kind(&other)
                )));
            }
        },
        Some(other) => {
            return Err(WireError::Shape(format!(
                "Handshakes is {}, expected an object wrapping a Handshake array",
                kind(&other)
            )));
        }
    };
    Ok(ListPage {
        request_id: envelope.request_id,
        total_count: envelope.total_count,
        page_number: envelope.page_number,
        page_size: envelope.page_size,
        items,
    })
}

/// Parse a GetHandshake answer: `{"RequestId": …, "Handshake": {…}}`.
pub fn parse_get(body: &[u8]) -> Result<WireHandshake, WireError> {
    let mut object = parse_object(body)?;
    match object.remove("Handshake") {
        Some(item @ Value::Object(_)) => parse_item(item, || "Handshake".to_string()),
        None | Some(Value::Null) => match error_document(&object) {
            Some(error) => Err(WireError::ApiError(error)),
            None => Err(WireError::Shape("no Handshake object in the answer".into())),
        },
        Some(other) => Err(WireError::Shape(format!(
            "Handshake is {}, expected an object",
            kind(&other)
        ))),
    }
}

/// Read an error document (`Code`/`code`, `Message`/`message`,
/// `RequestId`/`requestId`) from any body; `None` when it has no code.
pub fn parse_error_body(body: &[u8]) -> Option<ErrorBody> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => error_document(&object),
        _ => parse_xml_error(body),
    }
}

fn error_document(object: &Map<String, Value>) -> Option<ErrorBody> {
    let field = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| object.get(*n).and_then(scalar_to_string))
            .filter(|s| !s.is_empty())
    };
    let code = field(["Code", "code"])?;
    Some(ErrorBody {
        code: Some(code),
        message: field(["Message", "message"]),
        request_id: field(["RequestId", "requestId"]),
    })
}

/// The V3 path can answer errors as `text/xml` (`<Error><Code>…</Code>…</Error>`);
/// the three fields are plain text elements, so a tag search is enough.
fn parse_xml_error(body: &[u8]) -> Option<ErrorBody> {
    let text = std::str::from_utf8(body).ok()?;
    let element = |tag: &str| {
        let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
        let len = text[start..].find(&format!("</{tag}>"))?;
        Some(text[start..start + len].trim().to_string()).filter(|s| !s.is_empty())
    };
    let code = element("Code")?;
    Some(ErrorBody {
        code: Some(code),
        message: element("Message"),
        request_id: element("RequestId"),
    })
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, WireError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(WireError::Shape(format!(
            "body is {}, expected a JSON object",
            kind(&other)
        ))),
        // serde_json's message says where it stopped ("EOF while parsing … at line 1
        // column 812"), which tells truncation from garbage; it never quotes the body.
        Err(e) => Err(WireError::Shape(format!("body is not valid JSON: {e}"))),
    }
}

/// `at` names the item in an error; it is only formatted when there is one.
fn parse_item(item: Value, at: impl Fn() -> String) -> Result<WireHandshake, WireError> {
    if !item.is_object() {
        return Err(WireError::Shape(format!(
            "{} is {}, expected an object",
            at(),
            kind(&item)
        )));
    }
    // Owned: the strings move into the item instead of being copied.
    WireHandshake::deserialize(item).map_err(|e| WireError::Shape(format!("{}: {e}", at())))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A string field that may also arrive as a number or boolean (ids are numeric-looking).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Value::deserialize(d)?;
    match value {
        Value::Null => Ok(None),
        Value::Array(_) | Value::Object(_) => Err(serde::de::Error::custom(format!(
            "expected a string, found {}",
            kind(&value)
        ))),
        // Moved, not copied.
        Value::String(s) => Ok(Some(s)),
        scalar => Ok(scalar_to_string(&scalar)),
    }
}

/// A count that may arrive as an integer or a decimal string (`Utils.query` sends
/// numbers as strings, and gateways are not consistent on the way back).
fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Value::deserialize(d)?;
    let parsed = match &value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_u64(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "expected a non-negative integer, found {}",
            match &value {
                Value::String(s) => format!("{s:?}"),
                other => kind(other).to_string(),
            }
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON sample of seed 000 (ListHandshakesForResourceDirectory), which mixes
    /// `InviteEntity`/`InviteType` with `TargetEntity`/`TargetType`.
    const SEED_SAMPLE: &str = r#"{
      "RequestId" : "9B34724D-54B0-4A51-B34D-4512372FE1BE",
      "PageNumber" : 1,
      "PageSize" : 10,
      "TotalCount" : 2,
      "Handshakes" : {
        "Handshake" : [ {
          "HandshakeId" : "h-ycm4rp****",
          "ResourceDirectoryId" : "rd-abcdef****",
          "MasterAccountId" : "172841235500****",
          "MasterAccountName" : "Alice",
          "InviteEntity" : "someone@example.com",
          "InviteType" : "Email",
          "Note" : "Welcome",
          "Status" : "Pending",
          "CreateTime" : "2018-08-10T09:55:41Z",
          "ModifyTime" : "2018-08-10T09:55:41Z",
          "ExpireTime" : "2018-08-24T09:55:41Z"
        }, {
          "HandshakeId" : "h-ycm4rp****",
          "ResourceDirectoryId" : "rd-abcdef****",
          "MasterAccountId" : "172841235500****",
          "MasterAccountName" : "Alice",
          "TargetEntity" : "172841235500****",
          "TargetType" : "Account",
          "Note" : "Welcome",
          "Status" : "Pending",
          "CreateTime" : "2018-08-10T09:55:41Z",
          "ModifyTime" : "2018-08-10T09:55:41Z",
          "ExpireTime" : "2018-08-24T09:55:41Z"
        } ]
      }
    }"#;

    fn source() -> Arc<str> {
        Arc::from("src")
    }

    #[test]
    fn seed_sample_with_invite_aliases_parses() -> Result<(), WireError> {
        let page = parse_list_page(SEED_SAMPLE.as_bytes())?;
        assert_eq!(page.total_count, Some(2));
        assert_eq!(page.page_number, Some(1));
        assert_eq!(page.page_size, Some(10));
        assert_eq!(
            page.request_id.as_deref(),
            Some("9B34724D-54B0-4A51-B34D-4512372FE1BE")
        );
        let hs: Vec<Handshake> = page
            .items
            .into_iter()
            .filter_map(|w| w.into_handshake(source()))
            .collect();
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].target_type, TargetType::Email);
        assert_eq!(hs[0].target_entity.as_deref(), Some("someone@example.com"));
        assert_eq!(hs[0].status, Status::Pending);
        assert_eq!(hs[0].directory_id.as_deref(), Some("rd-abcdef****"));
        assert_eq!(
            hs[0].management_account_id.as_deref(),
            Some("172841235500****")
        );
        assert_eq!(hs[0].management_account_name.as_deref(), Some("Alice"));
        assert_eq!(hs[0].note.as_deref(), Some("Welcome"));
        assert_eq!(
            hs[0].expires_at.map(|t| t.to_rfc3339()),
            Some("2018-08-24T09:55:41+00:00".into())
        );
        assert_eq!(hs[1].target_type, TargetType::Account);
        assert_eq!(hs[1].target_entity.as_deref(), Some("172841235500****"));
        assert_eq!(hs[1].provider, Provider::Alibaba);
        assert!(hs.iter().all(|h| h.anomalies.is_empty()));
        Ok(())
    }

    #[test]
    fn target_fields_win_over_invite_aliases_when_both_are_present() -> Result<(), WireError> {
        let w = parse_get(
            br#"{"Handshake":{"HandshakeId":"h-1","TargetEntity":"a","InviteEntity":"b",
                "TargetType":"Account","InviteType":"Email"}}"#,
        )?;
        let h = w.into_handshake(source());
        assert_eq!(
            h.as_ref().and_then(|h| h.target_entity.as_deref()),
            Some("a")
        );
        assert_eq!(h.map(|h| h.target_type), Some(TargetType::Account));
        Ok(())
    }

    #[test]
    fn missing_or_empty_wrappers_are_empty_pages() -> Result<(), WireError> {
        for body in [
            r#"{"RequestId":"r","TotalCount":0,"PageNumber":1,"PageSize":100}"#,
            r#"{"TotalCount":0,"Handshakes":{}}"#,
            r#"{"TotalCount":0,"Handshakes":null}"#,
            r#"{"TotalCount":0,"Handshakes":{"Handshake":[]}}"#,
            r#"{"TotalCount":0,"Handshakes":{"Handshake":null}}"#,
            r#"{}"#,
        ] {
            assert_eq!(parse_list_page(body.as_bytes())?.items, [], "{body}");
        }
        Ok(())
    }

    #[test]
    fn numbers_may_be_strings_and_fields_may_be_null_or_unknown() -> Result<(), WireError> {
        let page = parse_list_page(
            br#"{"TotalCount":"3","PageNumber":" 2 ","PageSize":100,"Extra":[1],
                "Handshakes":{"Handshake":[{"HandshakeId":"h-1","Status":"Deleted",
                "TargetType":"Phone","MasterAccountId":1512666876910000,"Note":null,
                "ExpireTime":"soon","Unknown":{"x":1}}]}}"#,
        )?;
        assert_eq!((page.total_count, page.page_number), (Some(3), Some(2)));
        let h = page.items[0].clone().into_handshake(source());
        let h = h.ok_or_else(|| WireError::Shape("id lost".into()))?;
        assert_eq!(h.status, Status::Unknown);
        assert_eq!(h.target_type, TargetType::Unknown);
        assert_eq!(h.management_account_id.as_deref(), Some("1512666876910000"));
        assert_eq!((h.note, h.expires_at), (None, None));
        // Kept, but what did not parse is noted (for the anomaly counter and log).
        let noted: Vec<&str> = h.anomalies.iter().map(AnomalyField::as_str).collect();
        assert_eq!(noted, ["expire_time", "status", "target_type"]);
        Ok(())
    }

    #[test]
    fn an_item_without_id_has_no_handshake() {
        assert_eq!(WireHandshake::default().into_handshake(source()), None);
        let blank = WireHandshake {
            handshake_id: Some(" ".into()),
            ..WireHandshake::default()
        };
        assert_eq!(blank.into_handshake(source()), None);
    }

    fn shape_error(result: Result<ListPage, WireError>) -> String {
        match result {
            Err(WireError::Shape(m)) => m,
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_shapes_and_broken_bodies_are_errors_not_empty_lists() {
        let full = SEED_SAMPLE.as_bytes();
        let cases: Vec<(&[u8], &str)> = vec![
            (b"<html>oops", "not valid JSON"),
            (&full[..full.len() / 2], "EOF"),
            (b"", "not valid JSON"),
            (b"[]", "an array"),
            (b"null", "null"),
            (
                br#"{"Handshakes":[{"HandshakeId":"h-1"}]}"#,
                "Handshakes is an array",
            ),
            (br#"{"Handshakes":[]}"#, "Handshakes is an array"),
            (br#"{"Handshakes":"x"}"#, "Handshakes is a string"),
            (
                br#"{"Handshakes":{"Handshake":{"HandshakeId":"h-1"}}}"#,
                "Handshake is an object",
            ),
            (
                br#"{"Handshakes":{"Handshake":["h-1"]}}"#,
                "Handshake[0] is a string",
            ),
            (
                br#"{"Handshakes":{"Handshake":[[1]]}}"#,
                "Handshake[0] is an array",
            ),
            (
                br#"{"Handshakes":{"Handshake":[{"Status":["x"]}]}}"#,
                "expected a string",
            ),
            (br#"{"TotalCount":-1}"#, "non-negative integer"),
            (br#"{"PageSize":"ten"}"#, "\"ten\""),
            (br#"{"TotalCount":1.5}"#, "non-negative integer"),
        ];
        for (body, needle) in cases {
            let msg = shape_error(parse_list_page(body));
            assert!(
                msg.contains(needle),
                "{:?}: {msg}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn an_error_document_in_a_200_is_reported_as_such() {
        let body = br#"{"Code":"Throttling.User","Message":"slow down","RequestId":"r1"}"#;
        let expected = ErrorBody {
            code: Some("Throttling.User".into()),
            message: Some("slow down".into()),
            request_id: Some("r1".into()),
        };
        assert_eq!(
            parse_list_page(body),
            Err(WireError::ApiError(expected.clone()))
        );
        assert_eq!(parse_get(body), Err(WireError::ApiError(expected)));
        // A code beside real data is not an error (some answers carry Code "200").
        let ok = parse_list_page(br#"{"Code":"200","TotalCount":0}"#);
        assert_eq!(ok.map(|p| p.total_count), Ok(Some(0)));
    }

    #[test]
    fn get_answers_need_a_handshake_object() {
        assert!(
            matches!(parse_get(br#"{"RequestId":"r"}"#), Err(WireError::Shape(m)) if m.contains("no Handshake"))
        );
        assert!(
            matches!(parse_get(br#"{"Handshake":[{"HandshakeId":"h"}]}"#), Err(WireError::Shape(m)) if m.contains("an array"))
        );
        assert!(
            matches!(parse_get(b"{\"Handshake\":{\"Hand"), Err(WireError::Shape(m)) if m.contains("EOF"))
        );
    }

    #[test]
    fn error_bodies_parse_from_json_either_case_and_xml() {
        let upper = parse_error_body(
            br#"{"RequestId":"R","HostId":"h","Code":"EntityNotExists.Handshake","Message":"gone"}"#,
        );
        assert_eq!(
            upper.and_then(|e| e.code),
            Some("EntityNotExists.Handshake".into())
        );
        let lower = parse_error_body(br#"{"requestId":"R","code":"Forbidden","message":"no"}"#);
        assert_eq!(
            lower,
            Some(ErrorBody {
                code: Some("Forbidden".into()),
                message: Some("no".into()),
                request_id: Some("R".into()),
            })
        );
        let xml = parse_error_body(
            b"<?xml version='1.0'?><Error><RequestId>R</RequestId><Code>Throttling</Code>\
              <Message>busy</Message></Error>",
        );
        assert_eq!(
            xml.as_ref().and_then(|e| e.code.as_deref()),
            Some("Throttling")
        );
        assert_eq!(xml.and_then(|e| e.message), Some("busy".into()));
        assert_eq!(parse_error_body(b"<html>502 Bad Gateway</html>"), None);
        assert_eq!(parse_error_body(br#"{"Message":"no code"}"#), None);
    }
}
