//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), as botocore's `SigV4Auth` computes
//! it (reference §8). Pure functions: the caller decides which headers the request
//! carries; everything here is reproducible from the vectors file.
//!
//! Own code on `hmac`/`sha2`/`hex` rather than the `aws-sigv4` crate, which pulls in
//! the aws-smithy runtime crates for a few dozen lines of hashing.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// `X-Amz-Date` format (UTC).
pub const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Headers botocore never signs (its blacklist): hop-by-hop headers and ones that
/// proxies or the HTTP layer may rewrite.
pub const UNSIGNED_HEADERS: [&str; 14] = [
    "user-agent",
    "expect",
    "transfer-encoding",
    "x-amzn-trace-id",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "baggage",
    "traceparent",
    "tracestate",
];

/// A request to sign. `path` is the decoded path as it appears in the URL, `query`
/// the decoded pairs; `headers` every header the request carries when signed
/// (including `host` and `x-amz-date`), names in any case.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Who signs, for which scope, when.
pub struct Scope<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`; its first 8 characters are the scope date.
    pub amz_date: &'a str,
}

/// Every intermediate value, so that tests (and the simulator's error messages) can
/// compare them one by one. Not `Debug`: the signing key derives from the secret.
pub struct Signed {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub credential_scope: String,
    pub signed_headers: String,
    pub signing_key: [u8; 32],
    pub signature: String,
    pub authorization: String,
}

/// `quote(s, safe='-_.~' + extra)`: RFC 3986 unreserved characters (and `extra`)
/// kept, every other byte `%XX` in upper-case hex.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xF)]));
        }
    }
    out
}

/// botocore's `remove_dot_segments`: `.` and `..` resolved and empty segments
/// (consecutive slashes) dropped, the leading and trailing slash kept.
pub fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !out.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{first}{}{last}", out.join("/"))
}

/// The canonical URI: the normalized path, encoded with `/` kept; `/` when empty.
pub fn canonical_uri(path: &str) -> String {
    let normalized = remove_dot_segments(path);
    if normalized.is_empty() {
        "/".into()
    } else {
        uri_encode(&normalized, true)
    }
}

/// Pairs encoded, sorted by encoded key then encoded value, joined with `&`.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value trimmed, with every inner run of whitespace squeezed to one space.
fn squeeze(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Canonical header block (each `name:value\n`) and the signed header names.
pub fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    // Sorted by name; a repeated name's values joined with ',' in their order.
    let mut merged: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        if UNSIGNED_HEADERS.contains(&name.as_str()) || name == "authorization" {
            continue;
        }
        merged.entry(name).or_default().push(squeeze(value));
    }
    let block: String = merged
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.join(",")))
        .collect();
    let names = merged.keys().cloned().collect::<Vec<_>>().join(";");
    (block, names)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: new_from_slice cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `kSigning` for a secret, date (`YYYYMMDD`), region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Sign a request.
pub fn sign(req: &Request<'_>, scope: &Scope<'_>) -> Signed {
    let (header_block, signed_headers) = canonical_headers(req.headers);
    // A request that carries its payload hash is signed with it (as botocore does).
    let payload_hash = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-content-sha256"))
        .map_or_else(|| sha256_hex(req.body), |(_, v)| v.trim().to_string());
    let canonical_request = format!(
        "{}\n{}\n{}\n{header_block}\n{signed_headers}\n{payload_hash}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
    );
    let date = scope.amz_date.get(..8).unwrap_or(scope.amz_date);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{credential_scope}\n{}",
        scope.amz_date,
        sha256_hex(canonical_request.as_bytes())
    );
    let signing_key = signing_key(scope.secret, date, scope.region, scope.service);
    let signature = hex::encode(hmac(&signing_key, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        scope.access_key_id
    );
    Signed {
        canonical_request,
        string_to_sign,
        credential_scope,
        signed_headers,
        signing_key,
        signature,
        authorization,
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD/region/service/aws4_request`.
    pub credential_scope: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parse an `Authorization` header value; `None` if it is not SigV4.
pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.trim().strip_prefix(ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let (access_key_id, scope) = credential?.split_once('/')?;
    let parts: Vec<&str> = scope.split('/').collect();
    let [date, region, service, "aws4_request"] = parts.as_slice() else {
        return None;
    };
    Some(Authorization {
        access_key_id: access_key_id.to_string(),
        credential_scope: scope.to_string(),
        date: (*date).to_string(),
        region: (*region).to_string(),
        service: (*service).to_string(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: signature?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    pub const VECTORS: &str = include_str!("../../../tests/vectors/aws-sign-vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).expect("vectors file is JSON")
    }

    fn s<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key].as_str().unwrap_or_else(|| panic!("{key} missing"))
    }

    /// Every botocore vector: the signed request rebuilt from the headers botocore
    /// handed to its HTTP layer (minus Authorization and the unsigned ones), plus
    /// Host, must give every intermediate value and the Authorization header.
    #[test]
    fn every_botocore_vector_is_reproduced() {
        let all = vectors();
        let list = all["vectors"].as_array().expect("vectors");
        assert_eq!(list.len(), 19);
        for v in list {
            let name = s(v, "name");
            let request = &v["request"];
            let unsigned: Vec<&str> = request["unsigned_headers"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut headers: Vec<(String, String)> =
                vec![("Host".into(), s(request, "host").to_string())];
            for (k, val) in request["headers"].as_object().expect("headers") {
                if k == "Authorization" || unsigned.contains(&k.as_str()) || k == "Content-Length" {
                    continue;
                }
                headers.push((k.clone(), val.as_str().unwrap_or_default().to_string()));
            }
            let signed = sign(
                &Request {
                    method: s(request, "method"),
                    path: s(request, "path"),
                    query: &[],
                    headers: &headers,
                    body: s(request, "body").as_bytes(),
                },
                &Scope {
                    access_key_id: s(v, "access_key"),
                    secret: s(v, "secret_key"),
                    region: s(v, "region"),
                    service: s(v, "service"),
                    amz_date: s(v, "x_amz_date"),
                },
            );
            assert_eq!(
                signed.canonical_request,
                s(v, "canonical_request"),
                "{name}"
            );
            assert_eq!(signed.string_to_sign, s(v, "string_to_sign"), "{name}");
            assert_eq!(signed.credential_scope, s(v, "credential_scope"), "{name}");
            assert_eq!(signed.signed_headers, s(v, "signed_headers"), "{name}");
            assert_eq!(
                hex::encode(signed.signing_key),
                s(v, "signing_key_hex"),
                "{name}"
            );
            assert_eq!(signed.signature, s(v, "signature"), "{name}");
            assert_eq!(signed.authorization, s(v, "authorization"), "{name}");
            let parsed = parse_authorization(&signed.authorization).expect("parses");
            assert_eq!(parsed.access_key_id, s(v, "access_key"));
            assert_eq!(parsed.signature, s(v, "signature"));
        }
    }

    /// Method, decoded path, query pairs, headers, body.
    type RawRequest = (
        String,
        String,
        Vec<(String, String)>,
        Vec<(String, String)>,
        String,
    );

    /// A raw `.req` of the AWS test suite: request line, headers (continuation lines
    /// folded), blank line, body.
    fn parse_raw(raw: &str) -> RawRequest {
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let (method, rest) = request_line.split_once(' ').expect("method");
        let target = rest.rsplit_once(" HTTP/").map_or(rest, |(t, _)| t);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query = crate::query::parse_query(query, false);
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, val)) = line.split_once(':') {
                headers.push((k.to_string(), val.to_string()));
            }
        }
        let path = crate::query::percent_decode(path, false);
        (method.to_string(), path, query, headers, body.to_string())
    }

    /// All 34 cases of the AWS SigV4 test suite, including the four botocore's own
    /// test skips (repeated query keys, a space in the path): this signer keeps
    /// repeated keys and parses the raw request itself, so none needs skipping.
    /// `get-vanilla-with-session-token` is checked against its `.authz` (its
    /// `.sreq` carries another signature; reference §13).
    #[test]
    fn every_aws4_testsuite_case_is_reproduced() {
        let all = vectors();
        let suite = &all["aws4_testsuite"];
        let creds = &suite["credentials"];
        let cases = suite["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 34);
        for case in cases {
            let name = s(case, "name");
            let (method, path, query, mut headers, body) = parse_raw(s(case, "raw_request"));
            // The suite names the token in the `.creq`; when the `.req` does not carry
            // it yet, the signer adds it (as botocore does for temporary keys).
            if let Some(token) = case["session_token"].as_str()
                && !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("x-amz-security-token"))
            {
                headers.push(("X-Amz-Security-Token".into(), token.to_string()));
            }
            let signed = sign(
                &Request {
                    method: &method,
                    path: &path,
                    query: &query,
                    headers: &headers,
                    body: body.as_bytes(),
                },
                &Scope {
                    access_key_id: s(creds, "access_key"),
                    secret: s(creds, "secret_key"),
                    region: s(suite, "region"),
                    service: s(suite, "service"),
                    amz_date: s(suite, "x_amz_date"),
                },
            );
            assert_eq!(
                signed.canonical_request,
                s(case, "canonical_request"),
                "{name}"
            );
            assert_eq!(signed.string_to_sign, s(case, "string_to_sign"), "{name}");
            assert_eq!(signed.authorization, s(case, "authorization"), "{name}");
        }
    }

    #[test]
    fn a_foreign_authorization_is_not_parsed() {
        assert_eq!(parse_authorization("ACS3-HMAC-SHA256 Credential=x"), None);
        assert_eq!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=AK/20240501/us-east-1/organizations/x, SignedHeaders=host, Signature=ab"
            ),
            None
        );
    }
}
