//! Alibaba Cloud request signing as pure functions: ACS3-HMAC-SHA256 ("V3", what the
//! official SDK uses by default) and classic RPC HMAC-SHA1 ("V1",
//! `SignatureVersion=1.0`). No clock, no randomness, no I/O: callers pass the date and
//! nonce in, which is what lets the unit tests reproduce the SDK's vectors byte for byte
//! and lets the simulator verify requests with the very same code.

use crate::provider::percent_encode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The V3 algorithm name, first word of the `Authorization` header.
pub const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Hex SHA-256 of an empty body: the `x-acs-content-sha256` of every request we send.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A request to sign with ACS3-HMAC-SHA256.
#[derive(Clone, Copy, Debug)]
pub struct Acs3Request<'a> {
    /// HTTP method as sent (`POST`, `GET`); part of the canonical request.
    pub method: &'a str,
    /// Request path, used as is (`/` for the RPC API).
    pub path: &'a str,
    /// Decoded query parameters (name, value). Order does not matter.
    pub query: &'a [(&'a str, &'a str)],
    /// The headers to sign (name, value), in any case and order. A name given more
    /// than once is signed once with its values sorted and joined by `,`.
    pub headers: &'a [(&'a str, &'a str)],
    /// Raw body bytes.
    pub body: &'a [u8],
    pub access_key_id: &'a str,
    pub access_key_secret: &'a str,
}

/// Every intermediate string of an ACS3 signature, so tests (and the simulator's
/// error message) can show exactly where two sides disagree.
#[derive(Clone, PartialEq, Eq)]
pub struct Acs3Signature {
    pub canonical_query: String,
    pub canonical_headers: String,
    /// Lower-case header names, sorted, joined by `;`.
    pub signed_headers: String,
    pub hashed_payload: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    /// Lower-case hex HMAC-SHA256.
    pub signature: String,
    /// The complete `Authorization` header value.
    pub authorization: String,
}

// The canonical request can hold a security token; never print it.
impl std::fmt::Debug for Acs3Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acs3Signature")
            .field("signed_headers", &self.signed_headers)
            .field("string_to_sign", &self.string_to_sign)
            .finish_non_exhaustive()
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `name=value` pairs, each part RFC 3986-encoded, sorted by encoded name then
/// value, joined by `&`. Empty values stay (`Empty=`). Both signatures use it.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| (percent_encode(name), percent_encode(value)))
        .collect();
    encoded.sort();
    let pairs: Vec<String> = encoded
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    pairs.join("&")
}

/// Canonical headers (`name:value\n` each) and the signed-headers list.
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut by_name: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for (name, value) in headers {
        by_name
            .entry(name.trim().to_ascii_lowercase())
            .or_default()
            .push(value.trim());
    }
    let mut canonical = String::new();
    for (name, values) in &mut by_name {
        values.sort_unstable();
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    let signed: Vec<&str> = by_name.keys().map(String::as_str).collect();
    (canonical, signed.join(";"))
}

/// Sign a request with ACS3-HMAC-SHA256.
pub fn sign_acs3(req: &Acs3Request<'_>) -> Acs3Signature {
    let canonical_query = canonical_query(req.query);
    let (canonical_headers, signed_headers) = canonical_headers(req.headers);
    let hashed_payload = sha256_hex(req.body);
    // CanonicalHeaders ends in '\n', hence the empty line before SignedHeaders.
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method, req.path, canonical_query, canonical_headers, signed_headers, hashed_payload
    );
    let string_to_sign = format!(
        "{ACS3_ALGORITHM}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let signature = hex::encode(hmac_sha256(
        req.access_key_secret.as_bytes(),
        string_to_sign.as_bytes(),
    ));
    let authorization = format!(
        "{ACS3_ALGORITHM} Credential={},SignedHeaders={},Signature={}",
        req.access_key_id, signed_headers, signature
    );
    Acs3Signature {
        canonical_query,
        canonical_headers,
        signed_headers,
        hashed_payload,
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

/// The parts of a V1 signature.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcV1Signature {
    pub canonicalized_query: String,
    pub string_to_sign: String,
    /// Base64 HMAC-SHA1; goes into the `Signature` parameter.
    pub signature: String,
}

// The canonicalized query holds the security token; never print it.
impl std::fmt::Debug for RpcV1Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcV1Signature").finish_non_exhaustive()
    }
}

/// Sign classic RPC parameters with HMAC-SHA1. `params` are every signed parameter,
/// decoded (query plus any form body); a `Signature` among them is left out.
pub fn sign_rpc_v1(
    method: &str,
    params: &[(&str, &str)],
    access_key_secret: &str,
) -> RpcV1Signature {
    let signed: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(name, _)| *name != "Signature")
        .collect();
    let canonicalized_query = canonical_query(&signed);
    // The SDK's outer encoding is quote_plus(safe="~"); on a string made of
    // unreserved characters, '%', '=' and '&' it is the same as RFC 3986 encoding.
    let string_to_sign = format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonicalized_query)
    );
    let key = format!("{access_key_secret}&");
    let signature = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha1(key.as_bytes(), string_to_sign.as_bytes()));
    RpcV1Signature {
        canonicalized_query,
        string_to_sign,
        signature,
    }
}

/// A parsed `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    pub access_key_id: String,
    /// Lower-cased header names as listed.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parse an ACS3 `Authorization` header; `None` when it is not one or lacks a part.
pub fn parse_acs3_authorization(value: &str) -> Option<Acs3Authorization> {
    let rest = value.trim().strip_prefix(ACS3_ALGORITHM)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.trim().split(',') {
        let (key, val) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(val.to_string()),
            "SignedHeaders" => {
                signed_headers = Some(
                    val.split(';')
                        .filter(|h| !h.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect(),
                )
            }
            "Signature" => signature = Some(val.to_string()),
            _ => {}
        }
    }
    Some(Acs3Authorization {
        access_key_id: credential.filter(|c| !c.is_empty())?,
        signed_headers: signed_headers.filter(|h: &Vec<String>| !h.is_empty())?,
        signature: signature.filter(|s| !s.is_empty())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    /// The SDK-generated vectors (copied from shared/reference so the tests need
    /// nothing outside the repository).
    const VECTORS: &str = include_str!("../../../tests/vectors/alibaba-sign-vectors.json");

    #[derive(Deserialize)]
    struct VectorFile {
        rpc_v1: Vec<V1Vector>,
        acs3_hmac_sha256: Vec<V3Vector>,
    }

    #[derive(Deserialize)]
    struct V1Vector {
        name: String,
        inputs: V1Inputs,
        canonicalized_query_string: String,
        string_to_sign: String,
        signature: String,
    }

    #[derive(Deserialize)]
    struct V1Inputs {
        method: String,
        access_key_secret: String,
        signed_params: BTreeMap<String, String>,
    }

    #[derive(Deserialize)]
    struct V3Vector {
        name: String,
        inputs: V3Inputs,
        canonical_query_string: String,
        canonical_headers: String,
        signed_headers: String,
        hashed_request_payload: String,
        canonical_request: String,
        string_to_sign: String,
        signature: String,
        authorization: String,
    }

    #[derive(Deserialize)]
    struct V3Inputs {
        method: String,
        path: String,
        query: BTreeMap<String, String>,
        headers_signed: BTreeMap<String, String>,
        body: String,
        access_key_id: String,
        access_key_secret: String,
    }

    fn vectors() -> VectorFile {
        serde_json::from_str(VECTORS).expect("the vectors file is valid JSON of the known shape")
    }

    fn pairs(map: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
        map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn every_v3_vector_is_reproduced_byte_for_byte() {
        let file = vectors();
        assert_eq!(file.acs3_hmac_sha256.len(), 11);
        for v in &file.acs3_hmac_sha256 {
            let query = pairs(&v.inputs.query);
            let headers = pairs(&v.inputs.headers_signed);
            let signed = sign_acs3(&Acs3Request {
                method: &v.inputs.method,
                path: &v.inputs.path,
                query: &query,
                headers: &headers,
                body: v.inputs.body.as_bytes(),
                access_key_id: &v.inputs.access_key_id,
                access_key_secret: &v.inputs.access_key_secret,
            });
            assert_eq!(
                signed.canonical_query, v.canonical_query_string,
                "{}",
                v.name
            );
            assert_eq!(signed.canonical_headers, v.canonical_headers, "{}", v.name);
            assert_eq!(signed.signed_headers, v.signed_headers, "{}", v.name);
            assert_eq!(
                signed.hashed_payload, v.hashed_request_payload,
                "{}",
                v.name
            );
            assert_eq!(signed.canonical_request, v.canonical_request, "{}", v.name);
            assert_eq!(signed.string_to_sign, v.string_to_sign, "{}", v.name);
            assert_eq!(signed.signature, v.signature, "{}", v.name);
            assert_eq!(signed.authorization, v.authorization, "{}", v.name);
        }
    }

    #[test]
    fn every_v1_vector_is_reproduced_byte_for_byte() {
        let file = vectors();
        assert_eq!(file.rpc_v1.len(), 7);
        for v in &file.rpc_v1 {
            let params = pairs(&v.inputs.signed_params);
            let signed = sign_rpc_v1(&v.inputs.method, &params, &v.inputs.access_key_secret);
            assert_eq!(
                signed.canonicalized_query, v.canonicalized_query_string,
                "{}",
                v.name
            );
            assert_eq!(signed.string_to_sign, v.string_to_sign, "{}", v.name);
            assert_eq!(signed.signature, v.signature, "{}", v.name);
        }
    }

    #[test]
    fn v1_ignores_a_signature_parameter() {
        let params = [("Action", "GetHandshake"), ("Signature", "x")];
        let with = sign_rpc_v1("POST", &params, "s");
        let without = sign_rpc_v1("POST", &params[..1], "s");
        assert_eq!(with, without);
    }

    #[test]
    fn repeated_headers_are_joined_sorted_and_names_lower_cased() {
        let (canonical, signed) = canonical_headers(&[
            ("X-Acs-B", " 2 "),
            ("host", "h"),
            ("x-acs-b", "1"),
            ("X-ACS-A", "a"),
        ]);
        assert_eq!(canonical, "host:h\nx-acs-a:a\nx-acs-b:1,2\n");
        assert_eq!(signed, "host;x-acs-a;x-acs-b");
    }

    #[test]
    fn no_query_parameters_give_an_empty_canonical_query() {
        assert_eq!(canonical_query(&[]), "");
        assert_eq!(canonical_query(&[("b", "2"), ("a", "")]), "a=&b=2");
    }

    #[test]
    fn authorization_headers_parse_and_reject_garbage() {
        let parsed = parse_acs3_authorization(
            "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=Host;x-acs-date,Signature=ab12",
        );
        assert_eq!(
            parsed,
            Some(Acs3Authorization {
                access_key_id: "AK".into(),
                signed_headers: vec!["host".into(), "x-acs-date".into()],
                signature: "ab12".into(),
            })
        );
        for bad in [
            "",
            "ACS3-HMAC-SHA256",
            "ACS3-HMAC-SHA256X Credential=AK,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host",
            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=,Signature=ab",
            "ACS3-HMAC-SHA256 garbage",
            "HMAC-SHA256 Credential=AK,SignedHeaders=host,Signature=ab",
        ] {
            assert_eq!(parse_acs3_authorization(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_canonical_strings() {
        let signed = sign_rpc_v1("POST", &[("SecurityToken", "tok-secret")], "s");
        assert!(!format!("{signed:?}").contains("tok-secret"));
        let v3 = sign_acs3(&Acs3Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &[("x-acs-security-token", "tok-secret")],
            body: b"",
            access_key_id: "AK",
            access_key_secret: "s",
        });
        assert!(!format!("{v3:?}").contains("tok-secret"));
    }
}
