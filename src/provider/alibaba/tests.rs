//! Unit tests of the client's request building, error mapping and page checks.
//! End-to-end behaviour against the simulator is in `tests/alibaba_sim.rs`.

use super::wire::WireHandshake;
use super::*;
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;

const VECTORS: &str = include_str!("../../../tests/vectors/alibaba-sign-vectors.json");

#[derive(Deserialize)]
struct VectorFile {
    rpc_v1: Vec<Vector>,
    acs3_hmac_sha256: Vec<Vector>,
    credentials: BTreeMap<String, String>,
    security_tokens: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    inputs: serde_json::Value,
    request: WireRequest,
}

#[derive(Deserialize)]
struct WireRequest {
    query_string: String,
    /// Compared as a map: header order on the wire carries no meaning.
    headers: BTreeMap<String, String>,
}

fn vector(file: &VectorFile, name: &str) -> (Credentials, serde_json::Value, WireRequest) {
    let all = file.rpc_v1.iter().chain(&file.acs3_hmac_sha256);
    let found = all
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("vector {name} is in the file"));
    let inputs = found.inputs.clone();
    let ak = inputs["access_key_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let creds = Credentials {
        access_key_secret: Secret::new(file.credentials.get(&ak).cloned().unwrap_or_default()),
        security_token: file.security_tokens.get(&ak).cloned().map(Secret::new),
        access_key_id: ak,
        domain_id: None,
    };
    let request = WireRequest {
        query_string: found.request.query_string.clone(),
        headers: found.request.headers.clone(),
    };
    (creds, inputs, request)
}

fn vectors() -> VectorFile {
    serde_json::from_str(VECTORS).expect("the vectors file is valid JSON of the known shape")
}

fn sdk_endpoint() -> Endpoint {
    Endpoint::parse("https://resourcemanager.aliyuncs.com").expect("static endpoint parses")
}

/// The client's own V3 requests are exactly the SDK's minimal-header vectors: same
/// query, same headers, same Authorization, once date and nonce are pinned.
#[test]
fn v3_requests_match_the_minimal_header_vectors() {
    let file = vectors();
    for (name, action, params) in [
        (
            "v3_min_list_rd_p1_s100",
            ACTION_LIST_FOR_RESOURCE_DIRECTORY,
            vec![("PageNumber", "1"), ("PageSize", "100")],
        ),
        (
            "v3_min_list_rd_sts",
            ACTION_LIST_FOR_RESOURCE_DIRECTORY,
            vec![("PageNumber", "1"), ("PageSize", "100")],
        ),
        (
            "v3_min_get_handshake",
            ACTION_GET_HANDSHAKE,
            vec![("HandshakeId", "h-ycm4rp****")],
        ),
    ] {
        let (creds, inputs, expected) = vector(&file, name);
        let headers = &inputs["headers_signed"];
        let call = prepare_v3(
            action,
            &params,
            &sdk_endpoint(),
            &creds,
            headers["x-acs-date"].as_str().unwrap_or_default(),
            headers["x-acs-signature-nonce"]
                .as_str()
                .unwrap_or_default(),
        );
        assert_eq!(call.query, expected.query_string, "{name}");
        let sent: BTreeMap<String, String> = call.headers.iter().cloned().collect();
        assert_eq!(sent, expected.headers, "{name}");
        assert_eq!(
            call.headers.len(),
            expected.headers.len(),
            "{name}: no header twice"
        );
        assert_eq!(
            call.headers.last().map(|(k, _)| k.as_str()),
            Some("Authorization")
        );
    }
}

#[test]
fn v3_list_account_vector_authorization_is_reproduced() {
    let file = vectors();
    let (creds, inputs, expected) = vector(&file, "v3_min_list_account");
    let query: Vec<(String, String)> = inputs["query"]
        .as_object()
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let params: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let headers = &inputs["headers_signed"];
    let call = prepare_v3(
        ACTION_LIST_FOR_ACCOUNT,
        &params,
        &sdk_endpoint(),
        &creds,
        headers["x-acs-date"].as_str().unwrap_or_default(),
        headers["x-acs-signature-nonce"]
            .as_str()
            .unwrap_or_default(),
    );
    let auth = call
        .headers
        .iter()
        .find(|(k, _)| k == "Authorization")
        .map(|(_, v)| v);
    assert_eq!(auth, expected.headers.get("Authorization"));
}

/// V1 requests reproduce the SDK's wire query string, parameter order included.
#[test]
fn v1_requests_match_the_sdk_vectors_on_the_wire() {
    let file = vectors();
    for (name, action, params) in [
        (
            "v1_list_rd_p1_s100",
            ACTION_LIST_FOR_RESOURCE_DIRECTORY,
            vec![("PageNumber", "1"), ("PageSize", "100")],
        ),
        (
            "v1_list_account_p2_s50",
            ACTION_LIST_FOR_ACCOUNT,
            vec![("PageNumber", "2"), ("PageSize", "50")],
        ),
        (
            "v1_get_handshake",
            ACTION_GET_HANDSHAKE,
            vec![("HandshakeId", "h-ycm4rp****")],
        ),
        (
            "v1_list_rd_sts",
            ACTION_LIST_FOR_RESOURCE_DIRECTORY,
            vec![("PageNumber", "1"), ("PageSize", "100")],
        ),
    ] {
        let (creds, inputs, expected) = vector(&file, name);
        let call = prepare_v1(
            action,
            &params,
            &sdk_endpoint(),
            &creds,
            inputs["timestamp"].as_str().unwrap_or_default(),
            inputs["signature_nonce"].as_str().unwrap_or_default(),
        );
        assert_eq!(call.query, expected.query_string, "{name}");
        assert_eq!(
            call.headers,
            [(
                "host".to_string(),
                "resourcemanager.aliyuncs.com".to_string()
            )]
        );
    }
}

#[test]
fn endpoints_give_the_host_header_reqwest_sends_and_the_path() -> Result<(), String> {
    let e = Endpoint::parse("http://127.0.0.1:18080")?;
    assert_eq!((e.host(), e.path()), ("127.0.0.1:18080", "/"));
    let e = Endpoint::parse("https://resourcemanager.aliyuncs.com:443")?;
    assert_eq!((e.host(), e.path()), ("resourcemanager.aliyuncs.com", "/"));
    let e = Endpoint::parse("http://[::1]:8080/rm")?;
    assert_eq!((e.host(), e.path()), ("[::1]:8080", "/rm/"));
    assert!(Endpoint::parse("not a url").is_err());
    Ok(())
}

#[test]
fn reqwest_requests_carry_the_signed_query_and_headers() -> Result<(), ApiError> {
    let endpoint = Endpoint::parse("http://127.0.0.1:18080")
        .map_err(|m| ApiError::new(Reason::BadRequest, "x", m))?;
    let creds = Credentials {
        access_key_id: "AK".into(),
        access_key_secret: Secret::new("SK"),
        security_token: Some(Secret::new("tok+/=")),
        domain_id: None,
    };
    let call = prepare_v3(
        ACTION_GET_HANDSHAKE,
        &[("HandshakeId", "h a*")],
        &endpoint,
        &creds,
        "2024-05-01T12:00:00Z",
        "n",
    );
    let request = to_reqwest(ACTION_GET_HANDSHAKE, &endpoint, call)?;
    assert_eq!(request.method(), reqwest::Method::POST);
    assert_eq!(
        request.url().as_str(),
        "http://127.0.0.1:18080/?HandshakeId=h%20a%2A"
    );
    let h = request.headers();
    assert_eq!(
        h.get("host").and_then(|v| v.to_str().ok()),
        Some("127.0.0.1:18080")
    );
    assert_eq!(
        h.get("x-acs-security-token").map(|v| v.is_sensitive()),
        Some(true)
    );
    assert_eq!(
        h.get("x-acs-accesskey-id").and_then(|v| v.to_str().ok()),
        Some("AK")
    );
    assert!(
        request
            .body()
            .and_then(|b| b.as_bytes())
            .is_some_and(<[u8]>::is_empty)
    );
    // A token that cannot be a header value is an error that does not quote it.
    let bad_creds = Credentials {
        security_token: Some(Secret::new("line\nbreak-secret")),
        ..creds
    };
    let call = prepare_v3(ACTION_GET_HANDSHAKE, &[], &endpoint, &bad_creds, "d", "n");
    let err = to_reqwest(ACTION_GET_HANDSHAKE, &endpoint, call).err();
    let shown = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        shown.contains("x-acs-security-token") && !shown.contains("secret"),
        "{shown}"
    );
    Ok(())
}

#[test]
fn error_codes_and_statuses_map_to_reasons() {
    let cases: &[(u16, Option<&str>, Reason)] = &[
        (400, Some("SignatureDoesNotMatch"), Reason::Auth),
        (404, Some("InvalidAccessKeyId.NotFound"), Reason::Auth),
        (400, Some("InvalidAccessKeyId.Inactive"), Reason::Auth),
        (400, Some("IncompleteSignature"), Reason::Auth),
        (400, Some("MissingSecurityToken"), Reason::Auth),
        (403, Some("InvalidSecurityToken.Mismatch"), Reason::Auth),
        (400, Some("InvalidSecurityToken.Expired"), Reason::Auth),
        (403, Some("Forbidden.RAM"), Reason::Auth),
        (403, Some("NoPermission"), Reason::Auth),
        (401, None, Reason::Auth),
        (403, Some("Whatever"), Reason::Auth),
        (429, Some("Throttling.User"), Reason::Throttled),
        (400, Some("Throttling"), Reason::Throttled),
        (429, None, Reason::Throttled),
        (
            404,
            Some("EntityNotExists.ResourceDirectory"),
            Reason::NotEnabled,
        ),
        (400, Some("ResourceDirectoryNotEnabled"), Reason::NotEnabled),
        (409, Some("Organization.NotEnabled"), Reason::NotEnabled),
        (404, Some("EntityNotExists.Handshake"), Reason::NotFound),
        (404, Some("EntityNotExists.Account"), Reason::NotFound),
        (404, None, Reason::NotFound),
        (
            400,
            Some("MissingParameter.HandshakeId"),
            Reason::BadRequest,
        ),
        (400, Some("InvalidParameter.PageSize"), Reason::BadRequest),
        (400, Some("InvalidAction.NotFound"), Reason::BadRequest),
        (409, Some("HandshakeStatusMismatch"), Reason::BadRequest),
        (503, Some("ServiceUnavailable"), Reason::Server),
        (500, Some("InternalError"), Reason::Server),
        (502, None, Reason::Server),
        (200, Some("SomethingElse"), Reason::BadResponse),
        (302, None, Reason::BadResponse),
    ];
    for (status, code, reason) in cases {
        assert_eq!(classify(*status, *code), *reason, "{status} {code:?}");
    }
}

#[test]
fn error_answers_are_parsed_with_code_request_id_and_retry_hint() {
    let mut headers = HeaderMap::new();
    headers.insert("x-acs-retry-after", HeaderValue::from_static("1500"));
    let e = parse_error(
        ACTION_LIST_FOR_ACCOUNT,
        429,
        &headers,
        br#"{"RequestId":"R-1","HostId":"h","Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#,
    );
    assert_eq!(e.reason, Reason::Throttled);
    assert_eq!(e.http_status, Some(429));
    assert_eq!(e.code.as_deref(), Some("Throttling.User"));
    assert_eq!(e.request_id.as_deref(), Some("R-1"));
    assert_eq!(e.retry_after, Some(std::time::Duration::from_millis(1500)));

    let xml = parse_error(
        ACTION_GET_HANDSHAKE,
        404,
        &HeaderMap::new(),
        b"<Error><RequestId>R</RequestId><Code>EntityNotExists.Handshake</Code><Message>gone</Message></Error>",
    );
    assert_eq!(
        (xml.reason, xml.message.as_str()),
        (Reason::NotFound, "gone")
    );

    let html = parse_error(
        ACTION_GET_HANDSHAKE,
        502,
        &HeaderMap::new(),
        b"<html>Bad gateway for /?SecurityToken=tok-secret</html>",
    );
    assert_eq!(html.reason, Reason::Server);
    assert!(!html.to_string().contains("tok-secret"), "{html}");
}

/// `SignatureDoesNotMatch` quotes the server's string to sign, which for V1 holds
/// the security token: it must not reach the error.
#[test]
fn signature_mismatch_messages_lose_the_string_to_sign() {
    let body = serde_json::json!({
        "Code": "SignatureDoesNotMatch",
        "Message": "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3DSTS.x%26SecurityToken%3DCAIS%252Bsecret-token%26Version%3D2020-03-31",
        "RequestId": "R",
    });
    let e = parse_error(
        ACTION_GET_HANDSHAKE,
        400,
        &HeaderMap::new(),
        &serde_json::to_vec(&body).unwrap_or_default(),
    );
    assert_eq!(e.reason, Reason::Auth);
    assert_eq!(
        e.message,
        "Specified signature is not matched with our calculation. (server string to sign omitted)"
    );
    assert_eq!(
        sanitize_message(
            "bad url /?AccessKeyId=AK&SecurityToken=abc%2Bdef&Signature=xyz%3D&PageSize=1"
        ),
        "bad url /?AccessKeyId=AK&SecurityToken=<redacted>&Signature=<redacted>&PageSize=1"
    );
    assert_eq!(
        sanitize_message("q=SecurityToken%3Dabc%252B%26Version"),
        "q=SecurityToken%3D<redacted>%26Version"
    );
}

#[test]
fn a_200_error_document_becomes_an_error() {
    let e = wire_error(
        ACTION_LIST_FOR_ACCOUNT,
        WireError::ApiError(ErrorBody {
            code: Some("Throttling.User".into()),
            message: Some("slow".into()),
            request_id: None,
        }),
    );
    assert_eq!((e.reason, e.http_status), (Reason::Throttled, Some(200)));
    let e = wire_error(ACTION_LIST_FOR_ACCOUNT, WireError::Shape("no".into()));
    assert_eq!(e.reason, Reason::BadResponse);
}

// ---- PageAssembler ----

fn item(id: &str) -> WireHandshake {
    WireHandshake {
        handshake_id: Some(id.into()),
        status: Some("Pending".into()),
        ..WireHandshake::default()
    }
}

fn page(number: u64, total: Option<u64>, ids: &[&str]) -> ListPage {
    ListPage {
        request_id: Some(format!("req-{number}")),
        total_count: total,
        page_number: Some(number),
        page_size: Some(2),
        items: ids.iter().map(|id| item(id)).collect(),
    }
}

fn assembler() -> PageAssembler {
    PageAssembler::new(ACTION_LIST_FOR_ACCOUNT, 2, Arc::from("src"))
}

/// The invitations of a read that saw no change.
fn unchanged(read: Result<Read, ApiError>) -> Result<Vec<Handshake>, ApiError> {
    match read? {
        Read::Unchanged(items) => Ok(items),
        Read::Changed { why, .. } => panic!("expected an unchanged read, got a change: {why}"),
    }
}

/// Why a read saw a change, and the ids it had collected until then.
fn change(read: Result<Read, ApiError>) -> (String, Vec<String>) {
    match read {
        Ok(Read::Changed { items, why }) => (why, items.into_iter().map(|h| h.id).collect()),
        other => panic!("expected a change, got {other:?}"),
    }
}

fn bad_response_message(result: Result<bool, ApiError>) -> String {
    match result {
        Err(e) if e.reason == Reason::BadResponse => e.message,
        other => panic!("expected bad_response, got {other:?}"),
    }
}

#[test]
fn pages_adding_up_to_total_count_are_assembled_in_order() -> Result<(), ApiError> {
    let mut p = assembler();
    assert!(p.accept(1, page(1, Some(5), &["a", "b"]))?);
    assert_eq!(p.last_page(), Some(3));
    assert!(p.accept(2, page(2, Some(5), &["c", "d"]))?);
    assert!(!p.accept(3, page(3, Some(5), &["e"]))?);
    let ids: Vec<String> = unchanged(p.finish())?.into_iter().map(|h| h.id).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);

    let mut empty = assembler();
    assert!(!empty.accept(1, page(1, Some(0), &[]))?);
    assert_eq!(empty.last_page(), Some(1));
    assert_eq!(unchanged(empty.finish())?, []);
    Ok(())
}

#[test]
fn without_total_count_a_short_or_empty_page_ends_the_list() -> Result<(), ApiError> {
    let mut p = assembler();
    assert!(p.accept(1, page(1, None, &["a", "b"]))?);
    assert_eq!(p.last_page(), None);
    assert!(!p.accept(2, page(2, None, &["c"]))?);
    assert_eq!(unchanged(p.finish())?.len(), 3);
    let mut p = assembler();
    assert!(p.accept(1, page(1, None, &["a", "b"]))?);
    assert!(!p.accept(2, page(2, None, &[]))?);
    Ok(())
}

#[test]
fn a_total_count_the_pages_do_not_reach_is_a_bad_response() {
    let mut p = assembler();
    assert!(matches!(
        p.accept(1, page(1, Some(5), &["a", "b"])),
        Ok(true)
    ));
    let m = bad_response_message(p.accept(2, page(2, Some(5), &["c"])));
    assert!(m.contains("end before TotalCount"), "{m}");
    let mut p = assembler();
    let m = bad_response_message(p.accept(1, page(1, Some(5), &[])));
    assert!(m.contains("promises 2"), "{m}");
    let mut p = assembler();
    let m = bad_response_message(p.accept(1, page(1, Some(1), &["a", "b"])));
    assert!(m.contains("more than the 1"), "{m}");
}

#[test]
fn a_total_count_that_changes_between_pages_ends_the_read_as_a_change() -> Result<(), ApiError> {
    let mut p = assembler();
    assert!(p.accept(1, page(1, Some(5), &["a", "b"]))?);
    // The page's own count does not matter any more: the plan it was checked
    // against is stale.
    assert!(!p.accept(2, page(2, Some(7), &["c"]))?);
    let (why, seen) = change(p.finish());
    assert!(why.contains("TotalCount changed from 5 to 7"), "{why}");
    assert_eq!(seen, ["a", "b"], "the changed page is not taken");
    Ok(())
}

#[test]
fn absurd_totals_and_bad_page_sizes_are_bad_responses() {
    let m = bad_response_message(
        assembler().accept(1, page(1, Some(MAX_TOTAL_COUNT + 1), &["a", "b"])),
    );
    assert!(m.contains("not believable"), "{m}");

    let mut zero = page(1, Some(5), &["a", "b"]);
    zero.page_size = Some(0);
    let m = bad_response_message(assembler().accept(1, zero));
    assert!(m.contains("PageSize 0"), "{m}");

    let mut other = page(1, Some(5), &["a", "b"]);
    other.page_size = Some(10);
    let m = bad_response_message(assembler().accept(1, other));
    assert!(m.contains("PageSize 10"), "{m}");

    let m = bad_response_message(assembler().accept(1, page(1, None, &["a", "b", "c"])));
    assert!(m.contains("more than PageSize"), "{m}");
}

#[test]
fn ids_seen_on_an_earlier_page_are_a_change_and_twice_on_one_page_an_error() {
    // The server answers another page number than the one asked for.
    let mut p = assembler();
    assert!(matches!(
        p.accept(1, page(1, Some(6), &["a", "b"])),
        Ok(true)
    ));
    let m = bad_response_message(p.accept(2, page(1, Some(6), &["a", "b"])));
    assert!(m.contains("asked for page 2, the answer is page 1"), "{m}");

    // Same content again under the right number.
    let mut p = assembler();
    assert!(matches!(
        p.accept(1, page(1, Some(6), &["a", "b"])),
        Ok(true)
    ));
    assert!(matches!(
        p.accept(2, page(2, Some(6), &["a", "b"])),
        Ok(false)
    ));
    let (why, _) = change(p.finish());
    assert!(
        why.contains("invitation a appears again on page 2"),
        "{why}"
    );

    // One id on two pages: an invitation added before page 2 pushed b onto it.
    let mut p = assembler();
    assert!(matches!(
        p.accept(1, page(1, Some(4), &["a", "b"])),
        Ok(true)
    ));
    assert!(matches!(
        p.accept(2, page(2, Some(4), &["b", "c"])),
        Ok(false)
    ));
    let (why, seen) = change(p.finish());
    assert!(
        why.contains("invitation b appears again on page 2"),
        "{why}"
    );
    assert_eq!(seen, ["a", "b"]);

    // Twice on one page: one answer is one snapshot, so that is the API's error.
    let m = bad_response_message(assembler().accept(1, page(1, Some(2), &["a", "a"])));
    assert!(m.contains("appears twice on page 1"), "{m}");
}

#[test]
fn an_invitation_without_id_is_a_bad_response_with_the_request_id() {
    let mut broken = page(1, Some(2), &["a"]);
    broken.items.push(WireHandshake::default());
    match assembler().accept(1, broken) {
        Err(e) => {
            assert_eq!(e.reason, Reason::BadResponse);
            assert!(e.message.contains("no HandshakeId"), "{}", e.message);
            assert_eq!(e.request_id.as_deref(), Some("req-1"));
        }
        Ok(more) => panic!("accepted ({more})"),
    }
}

/// Retries must not replay a nonce or a stale date: `build_request` runs per attempt.
#[test]
fn every_attempt_is_signed_with_a_fresh_nonce_and_the_current_date()
-> Result<(), Box<dyn std::error::Error>> {
    // reqwest is built with `rustls-no-provider`; a client needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut source = SourceConfig::new(
        Provider::Alibaba,
        "src",
        "http://127.0.0.1:9",
        Credentials {
            access_key_id: "AK".into(),
            access_key_secret: Secret::new("SK"),
            security_token: None,
            domain_id: None,
        },
    )
    .with_view("account", &[]);
    source.connect_timeout = std::time::Duration::from_secs(1);
    source.request_timeout = std::time::Duration::from_secs(1);
    let transport = Transport::new(
        Provider::Alibaba,
        "src".into(),
        crate::transport::TransportSettings {
            connect_timeout: source.connect_timeout,
            request_timeout: source.request_timeout,
            rate_limit: None,
            retry: crate::transport::RetryPolicy::default(),
        },
        Arc::new(crate::metrics::ExporterMetrics::new(false)),
        Arc::new(tokio::sync::Semaphore::new(1)),
    )?;
    let client = AlibabaClient::new(&source, transport);
    let endpoint = client.endpoint.as_ref().map_err(String::clone)?;
    let header = |r: &reqwest::Request, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let creds = source
        .credentials
        .read_static_for_tests()
        .ok_or("static test credentials")?;
    let first = client.build_request(endpoint, &creds, ACTION_LIST_FOR_ACCOUNT, &[])?;
    let second = client.build_request(endpoint, &creds, ACTION_LIST_FOR_ACCOUNT, &[])?;
    let nonce = header(&first, "x-acs-signature-nonce");
    assert!(nonce.as_ref().is_some_and(|n| n.len() == 32));
    assert_ne!(nonce, header(&second, "x-acs-signature-nonce"));
    assert_ne!(
        header(&first, "authorization"),
        header(&second, "authorization")
    );
    let date = header(&first, "x-acs-date").unwrap_or_default();
    let parsed = chrono::NaiveDateTime::parse_from_str(&date, TIMESTAMP_FORMAT)?;
    let skew = (chrono::Utc::now().naive_utc() - parsed)
        .num_seconds()
        .abs();
    assert!(skew <= 5, "{date}");
    Ok(())
}
