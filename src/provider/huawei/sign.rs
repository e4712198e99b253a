//! SDK-HMAC-SHA256, the request signature of Huawei Cloud's official SDKs
//! (`huaweicloudsdkcore/signer/signer.py`, class `Signer`).
//!
//! Unlike AWS SigV4 there is no scope and no key derivation: the raw secret key is the
//! HMAC key, and the client chooses which headers it signs. [`sign`] is a pure function
//! so that the client, the simulator's verifier and the SDK's test vectors all go
//! through exactly the same code.

use crate::provider::percent_encode;
use crate::query::percent_decode;
use chrono::NaiveDateTime;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// The algorithm name, first word of the `Authorization` value.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// `X-Sdk-Date` format: UTC, basic ISO 8601 (`20240501T120000Z`).
pub const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Header carrying the signing time; part of the string to sign.
pub const DATE_HEADER: &str = "X-Sdk-Date";
/// Header that, when present on a request with a body, replaces the body hash
/// (the SDK sets it to `UNSIGNED-PAYLOAD` for non-JSON content types).
pub const CONTENT_HASH_HEADER: &str = "X-Sdk-Content-Sha256";
/// SHA-256 of the empty string: the payload hash of every body-less request.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything the signature covers. Header names may have any case; values are
/// trimmed in the canonical form but sent as given.
#[derive(Clone, Copy)]
pub struct RequestToSign<'a> {
    pub method: &'a str,
    /// The path as sent on the wire (percent-encoded), without the query.
    pub path: &'a str,
    /// Decoded query pairs, in any order.
    pub query: &'a [(String, String)],
    /// Every header the request carries that should be considered for signing.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The intermediate strings and the final `Authorization` value, kept apart so tests
/// can compare each one with the SDK's vectors.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    pub canonical_uri: String,
    pub canonical_query: String,
    pub canonical_headers: String,
    pub signed_headers: String,
    pub payload_hash: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
}

/// The canonical headers (and so the canonical request) contain the
/// `X-Security-Token` value, which is a credential: keep them out of Debug output.
impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("canonical_uri", &self.canonical_uri)
            .field("canonical_query", &self.canonical_query)
            .field("signed_headers", &self.signed_headers)
            .field("payload_hash", &self.payload_hash)
            .field("string_to_sign", &self.string_to_sign)
            .field("authorization", &self.authorization)
            .finish_non_exhaustive()
    }
}

/// Why a request cannot be signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the request has no X-Sdk-Date header")]
    MissingDate,
    #[error("X-Sdk-Date {0:?} is not in the form 20240501T120000Z")]
    BadDate(String),
}

/// Sign a request the way the SDK's `Signer.sign` does, given the headers it already
/// carries (including `Host` and `X-Sdk-Date`: this function adds nothing).
pub fn sign(
    request: &RequestToSign<'_>,
    access_key_id: &str,
    secret_access_key: &str,
) -> Result<Signed, SignError> {
    let raw_date = header_value(request.headers, DATE_HEADER).ok_or(SignError::MissingDate)?;
    // The SDK parses the header and formats it again for the string to sign, so a
    // value that does not parse cannot be signed at all.
    let date = NaiveDateTime::parse_from_str(raw_date, DATE_FORMAT)
        .map_err(|_| SignError::BadDate(raw_date.to_string()))?
        .format(DATE_FORMAT)
        .to_string();

    let canonical_uri = canonical_uri(request.path);
    let canonical_query = canonical_query(request.query);
    let (canonical_headers, signed_headers) = canonical_headers(request.headers);
    let payload_hash = payload_hash(request.headers, request.body);
    let canonical_request = format!(
        "{}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method.to_ascii_uppercase()
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let signature = hmac_sha256_hex(secret_access_key.as_bytes(), string_to_sign.as_bytes());
    let authorization = format!(
        "{ALGORITHM} Access={access_key_id}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    Ok(Signed {
        canonical_uri,
        canonical_query,
        canonical_headers,
        signed_headers,
        payload_hash,
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    })
}

/// Decode the path, split it on `/`, encode each segment (only `~` and the
/// unreserved set kept) and make sure it ends in `/`.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode(path, false);
    let mut uri = decoded
        .split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Pairs sorted by (key, value) *before* encoding, each `enc(key)=enc(value)`, joined
/// with `&`. This is also the exact query string the SDK puts on the wire.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Canonical header block (`name:value\n` per header) and the `;`-joined signed
/// header list: every header whose name has no `_`, lower-cased, sorted, values
/// trimmed. Like the SDK's dict, a later header of the same name wins.
fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let signed: BTreeMap<String, &str> = headers
        .iter()
        .filter(|(name, _)| !name.contains('_'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim()))
        .collect();
    let block: String = signed
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let names = signed
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(";");
    (block, names)
}

fn payload_hash(headers: &[(String, String)], body: &[u8]) -> String {
    if body.is_empty() {
        return EMPTY_BODY_SHA256.to_string();
    }
    match header_value(headers, CONTENT_HASH_HEADER) {
        Some(declared) if !declared.is_empty() => declared.to_string(),
        _ => hex::encode(Sha256::digest(body)),
    }
}

/// First header of that name, compared case-insensitively (as the SDK's
/// `_get_header_ignore_case`).
fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The three fields of an `Authorization: SDK-HMAC-SHA256 …` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access_key_id: String,
    /// Lower-case header names as the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parse `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`, tolerating
/// missing or extra spaces after the commas. `None` for any other shape or algorithm.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.trim().strip_prefix(ALGORITHM)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let mut access = None;
    let mut signed = None;
    let mut signature = None;
    for field in rest.split(',') {
        let (name, val) = field.trim().split_once('=')?;
        let slot = match name {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return None,
        };
        if slot.replace(val.trim().to_string()).is_some() {
            return None;
        }
    }
    let access_key_id = access.filter(|a| !a.is_empty())?;
    let signature = signature.filter(|s| !s.is_empty())?;
    let signed_headers = signed?
        .split(';')
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect::<Vec<_>>();
    Some(ParsedAuthorization {
        access_key_id,
        signed_headers,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Produced by the official Python SDK with a pinned clock (copied from
    /// shared/reference so CI does not depend on paths outside the repository).
    const VECTORS: &str = include_str!("../../../tests/vectors/huawei-sign-vectors.json");

    /// Algorithms the file also covers but Organizations does not use by default.
    const OTHER_ALGORITHMS: [&str; 2] = ["SDK-HMAC-SM3", "V11-HMAC-SHA256"];

    fn text<'v>(v: &'v Value, key: &str) -> &'v str {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("vector field {key} missing or not a string"))
    }

    fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
        let entries = v.and_then(Value::as_array).cloned().unwrap_or_default();
        entries
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => (k.clone(), v.clone()),
                _ => panic!("query pair {pair} is not [key, value]"),
            })
            .collect()
    }

    fn object_pairs(v: Option<&Value>) -> Vec<(String, String)> {
        v.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The headers the signer saw: what the SDK handed to `requests` minus the
    /// `Authorization` it produced, with the raw (untrimmed) values the caller gave.
    fn headers_before_signing(vector: &Value) -> Vec<(String, String)> {
        let sent = object_pairs(vector.get("request").and_then(|r| r.get("headers")));
        let given = object_pairs(
            vector
                .get("inputs")
                .and_then(|i| i.get("headers_before_signing")),
        );
        sent.into_iter()
            .filter(|(name, _)| name != "Authorization")
            .map(|(name, value)| {
                let raw = given
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone());
                (name, raw.unwrap_or(value))
            })
            .collect()
    }

    #[test]
    fn every_sdk_hmac_sha256_vector_matches_byte_for_byte() -> Result<(), SignError> {
        let file: Value = serde_json::from_str(VECTORS).expect("vector file is JSON");
        let vectors = file
            .get("vectors")
            .and_then(Value::as_array)
            .expect("vectors array");
        let expected_count = vectors
            .iter()
            .filter(|v| v.get("algorithm").and_then(Value::as_str) == Some(ALGORITHM))
            .count();
        let (mut checked, mut skipped) = (0, 0);
        for vector in vectors {
            let name = text(vector, "name");
            let algorithm = text(vector, "algorithm");
            if algorithm != ALGORITHM {
                assert!(
                    OTHER_ALGORITHMS.contains(&algorithm),
                    "{name}: unexpected algorithm {algorithm}"
                );
                skipped += 1;
                continue;
            }
            let inputs = vector.get("inputs").expect("inputs");
            let query = pairs(inputs.get("query_params"));
            let headers = headers_before_signing(vector);
            let request = RequestToSign {
                method: text(inputs, "method"),
                path: text(inputs, "path"),
                query: &query,
                headers: &headers,
                body: text(inputs, "body").as_bytes(),
            };
            let signed = sign(
                &request,
                text(vector, "access_key"),
                text(vector, "secret_key"),
            )?;
            assert_eq!(
                signed.canonical_uri,
                text(vector, "canonical_uri"),
                "{name}"
            );
            assert_eq!(
                signed.canonical_query,
                text(vector, "canonical_query_string"),
                "{name}"
            );
            assert_eq!(
                signed.canonical_headers,
                text(vector, "canonical_headers"),
                "{name}"
            );
            assert_eq!(
                signed.signed_headers,
                text(vector, "signed_headers"),
                "{name}"
            );
            assert_eq!(
                signed.payload_hash,
                text(vector, "hashed_payload"),
                "{name}"
            );
            assert_eq!(
                signed.canonical_request,
                text(vector, "canonical_request"),
                "{name}"
            );
            assert_eq!(
                signed.string_to_sign,
                text(vector, "string_to_sign"),
                "{name}"
            );
            assert_eq!(signed.signature, text(vector, "signature"), "{name}");
            assert_eq!(
                signed.authorization,
                text(vector, "authorization"),
                "{name}"
            );
            // The wire query is the canonical query, byte for byte.
            let wire_query = vector
                .get("request")
                .map(|r| text(r, "query_string"))
                .unwrap_or_default();
            assert_eq!(signed.canonical_query, wire_query, "{name}");
            checked += 1;
        }
        assert_eq!(
            checked, expected_count,
            "every SDK-HMAC-SHA256 vector checked"
        );
        assert_eq!(
            checked, 17,
            "the reference file has 17 SDK-HMAC-SHA256 vectors"
        );
        assert_eq!(checked + skipped, vectors.len());
        Ok(())
    }

    #[test]
    fn authorization_round_trips_and_tolerates_missing_spaces() {
        let parsed = parse_authorization(
            "SDK-HMAC-SHA256 Access=AK1,SignedHeaders=host;x-sdk-date,Signature=abc",
        );
        assert_eq!(
            parsed,
            Some(ParsedAuthorization {
                access_key_id: "AK1".into(),
                signed_headers: vec!["host".into(), "x-sdk-date".into()],
                signature: "abc".into(),
            })
        );
        let spaced = parse_authorization(
            "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=abc",
        );
        assert_eq!(parsed, spaced);
        for bad in [
            "SDK-HMAC-SM3 Access=AK1, SignedHeaders=host, Signature=abc",
            "SDK-HMAC-SHA256Access=AK1, SignedHeaders=host, Signature=abc",
            "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host",
            "SDK-HMAC-SHA256 Access=, SignedHeaders=host, Signature=abc",
            "SDK-HMAC-SHA256 Access=AK1, Access=AK2, SignedHeaders=host, Signature=abc",
            "SDK-HMAC-SHA256 Credential=AK1/20240501, SignedHeaders=host, Signature=abc",
            "",
        ] {
            assert_eq!(parse_authorization(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_missing_or_malformed_date_cannot_be_signed() {
        let mut headers = vec![("Host".to_string(), "h".to_string())];
        let request = |headers: &[(String, String)]| {
            sign(
                &RequestToSign {
                    method: "GET",
                    path: "/",
                    query: &[],
                    headers,
                    body: b"",
                },
                "AK",
                "SK",
            )
        };
        assert_eq!(request(&headers), Err(SignError::MissingDate));
        headers.push(("x-sdk-date".into(), "2024-05-01T12:00:00Z".into()));
        assert!(matches!(request(&headers), Err(SignError::BadDate(_))));
    }

    #[test]
    fn debug_output_hides_the_security_token() -> Result<(), SignError> {
        let headers = vec![
            ("Host".to_string(), "h".to_string()),
            ("X-Sdk-Date".to_string(), "20240501T120000Z".to_string()),
            (
                "X-Security-Token".to_string(),
                "token-value-123".to_string(),
            ),
        ];
        let signed = sign(
            &RequestToSign {
                method: "GET",
                path: "/v1/x",
                query: &[],
                headers: &headers,
                body: b"",
            },
            "AK",
            "secret-value-456",
        )?;
        let shown = format!("{signed:?}");
        assert!(!shown.contains("token-value-123"), "{shown}");
        assert!(!shown.contains("secret-value-456"), "{shown}");
        assert!(signed.canonical_headers.contains("token-value-123"));
        Ok(())
    }

    #[test]
    fn canonical_uri_decodes_then_reencodes_each_segment() {
        assert_eq!(
            canonical_uri("/v1/received-handshakes"),
            "/v1/received-handshakes/"
        );
        assert_eq!(canonical_uri("/a%20b/c~d/"), "/a%20b/c~d/");
        assert_eq!(canonical_uri("/h%2Dx/%C3%A9"), "/h-x/%C3%A9/");
    }
}
