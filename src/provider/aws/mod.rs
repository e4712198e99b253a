//! AWS Organizations (API 2016-11-28): the handshake client.
//!
//! JSON 1.1 protocol (reference §2): every call is `POST /` with `X-Amz-Target:
//! AWSOrganizationsV20161128.<Action>`, `Content-Type: application/x-amz-json-1.1`
//! and the parameters as a JSON body, signed with SigV4 ([`sign`], service
//! `organizations`). Pages follow `NextToken` until it is absent, also past an
//! empty page. Answers are read in [`wire`]; credentials in [`credentials`],
//! [`sts`] and [`metadata`]; the settings the configuration fills in are in
//! [`settings`].

pub mod credentials;
mod kind;
pub mod metadata;
pub mod settings;
pub mod sign;
pub mod sts;
pub mod wire;

pub use kind::{AwsRegion, DEMO_AK, DEMO_ROLE_ARN, DEMO_SECRET, KIND};

use crate::credentials::{CredentialCache, CredentialStatus};
use crate::error::{ApiError, Reason};
use crate::model::{Handshake, Interner, Provider};
pub use crate::provider::Endpoint;

use crate::provider::{HandshakeProvider, Listing};
use crate::secret::Credentials;
use crate::transport::Transport;
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::header::{HeaderName, HeaderValue};
use settings::{AwsSettings, AwsView};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::time::Instant;

pub const TARGET_PREFIX: &str = "AWSOrganizationsV20161128";
pub const SERVICE: &str = "organizations";
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
pub const ACTION_LIST_FOR_ORGANIZATION: &str = "ListHandshakesForOrganization";
pub const ACTION_LIST_FOR_ACCOUNT: &str = "ListHandshakesForAccount";
pub const ACTION_DESCRIBE: &str = "DescribeHandshake";

/// Safety net against a server that keeps handing out fresh tokens: at 20 a page
/// this is a million handshakes, far beyond any organization.
pub const MAX_PAGES: usize = 50_000;
/// DescribeHandshake calls in flight at once for the `ids` view.
pub const DESCRIBE_CONCURRENCY: usize = 8;

/// A JSON string as Python's `json.dumps` writes it (what botocore sends):
/// non-ASCII as `\uXXXX` (surrogate pairs above the BMP), so that the signed bytes
/// match the SDK's for the same parameters.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && (c as u32) >= 0x20 => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The request body: the members given, in botocore's order and spelling
/// (`{"MaxResults": 20, "NextToken": "..."}`; `{}` for none).
pub fn request_body(
    max_results: Option<u32>,
    next_token: Option<&str>,
    handshake_id: Option<&str>,
) -> String {
    let mut members = Vec::new();
    if let Some(n) = max_results {
        members.push(format!("\"MaxResults\": {n}"));
    }
    if let Some(t) = next_token {
        members.push(format!("\"NextToken\": {}", json_string(t)));
    }
    if let Some(id) = handshake_id {
        members.push(format!("\"HandshakeId\": {}", json_string(id)));
    }
    format!("{{{}}}", members.join(", "))
}

/// The signed headers (in the order sent, `Authorization` last) of one call, with
/// the date given. `host` is signed but not returned: hyper sends it from the URL.
pub fn prepare(
    action: &str,
    body: &str,
    endpoint: &Endpoint,
    region: &str,
    credentials: &Credentials,
    amz_date: &str,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = vec![
        ("X-Amz-Target".into(), format!("{TARGET_PREFIX}.{action}")),
        ("Content-Type".into(), CONTENT_TYPE.into()),
        ("X-Amz-Date".into(), amz_date.into()),
    ];
    if let Some(token) = &credentials.security_token {
        headers.push(("X-Amz-Security-Token".into(), token.expose().to_string()));
    }
    let mut to_sign = headers.clone();
    to_sign.push(("host".into(), endpoint.host().to_string()));
    let signed = sign::sign(
        &sign::Request {
            method: "POST",
            path: endpoint.path(),
            query: &[],
            headers: &to_sign,
            body: body.as_bytes(),
        },
        &sign::Scope {
            access_key_id: &credentials.access_key_id,
            secret: credentials.access_key_secret.expose(),
            region,
            service: SERVICE,
            amz_date,
        },
    );
    headers.push(("Authorization".into(), signed.authorization));
    headers
}

/// A POST of `body` with `headers`; the token and the signature are marked
/// sensitive, and messages name a header, never its value.
pub(crate) fn post(
    action: &'static str,
    url: reqwest::Url,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<reqwest::Request, ApiError> {
    let mut request = reqwest::Request::new(reqwest::Method::POST, url);
    for (name, value) in headers {
        let invalid = || {
            ApiError::new(
                Reason::BadRequest,
                action,
                format!("invalid {name} header value"),
            )
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| invalid())?;
        if header == reqwest::header::AUTHORIZATION || header == "x-amz-security-token" {
            value.set_sensitive(true);
        }
        request.headers_mut().append(header, value);
    }
    *request.body_mut() = Some(reqwest::Body::from(body));
    Ok(request)
}

/// One source's view of AWS Organizations.
pub struct AwsClient {
    transport: Transport,
    source: Arc<str>,
    view: AwsView,
    /// Configured ids, duplicates removed (first occurrence kept).
    handshake_ids: Vec<String>,
    region: String,
    page_size: u32,
    credentials: CredentialCache,
    /// The parsed endpoint, or why it cannot be used (reported on every call).
    endpoint: Result<Endpoint, String>,
}

impl AwsClient {
    pub fn new(source_name: &str, settings: &AwsSettings, transport: Transport) -> AwsClient {
        let metrics = transport.metrics().clone();
        let mut seen = HashSet::new();
        let handshake_ids = settings
            .handshake_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        AwsClient {
            transport,
            source: Arc::from(source_name),
            view: settings.view,
            handshake_ids,
            region: settings.region.clone(),
            page_size: settings
                .page_size
                .clamp(settings::MIN_PAGE_SIZE, settings::MAX_PAGE_SIZE),
            credentials: CredentialCache::new(
                credentials::fetcher(&settings.credentials),
                metrics,
                Provider::Aws,
                Arc::from(source_name),
            ),
            endpoint: Endpoint::parse(&settings.endpoint),
        }
    }

    /// Send one operation (with the transport's retries) and return the 2xx body.
    /// Signed afresh for every attempt: the signature carries the time.
    async fn call(
        &self,
        action: &'static str,
        body: String,
        deadline: Instant,
    ) -> Result<bytes::Bytes, ApiError> {
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|m| ApiError::new(Reason::BadRequest, action, m.clone()))?;
        // Before every operation, not once per refresh: a long walk may outlive
        // temporary credentials.
        let issued = self
            .credentials
            .get(&self.transport, deadline, action)
            .await?;
        let build = || {
            let date = chrono::Utc::now().format(sign::DATE_FORMAT).to_string();
            let headers = prepare(
                action,
                &body,
                endpoint,
                &self.region,
                &issued.credentials,
                &date,
            );
            post(action, endpoint.url(), headers, body.clone().into_bytes())
        };
        let response = self
            .transport
            .execute(action, deadline, build, wire::parse_error)
            .await?;
        Ok(response.body)
    }

    /// Walk every page of a list operation.
    ///
    /// Tokens are opaque: a token seen before in this walk means the server is
    /// going round in circles (botocore only checks the previous one; every one is
    /// remembered here, §6). An id on a later page that an earlier one had is taken
    /// once (the later version): a list that changes while it is walked may shift;
    /// an id twice on one page is a `bad_response`.
    async fn list_pages(
        &self,
        action: &'static str,
        deadline: Instant,
    ) -> Result<Vec<Handshake>, ApiError> {
        let mut handshakes: Vec<Handshake> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut tokens: HashSet<String> = HashSet::new();
        let mut next: Option<String> = None;
        let mut interner = Interner::default();
        for page_number in 1..=MAX_PAGES {
            let body = request_body(Some(self.page_size), next.as_deref(), None);
            let answer = self.call(action, body, deadline).await?;
            let page = wire::parse_list(action, &answer, &self.source, &mut interner)?;
            tracing::debug!(
                source = %self.source, action, page = page_number,
                items = page.handshakes.len(), more = page.next_token.is_some(),
                "AWS page"
            );
            let mut on_page = HashSet::with_capacity(page.handshakes.len());
            for h in page.handshakes {
                if !on_page.insert(h.id.clone()) {
                    return Err(ApiError::bad_response(
                        action,
                        format!("handshake {} listed twice on page {page_number}", h.id),
                    ));
                }
                match index.get(&h.id) {
                    Some(&at) => handshakes[at] = h,
                    None => {
                        index.insert(h.id.clone(), handshakes.len());
                        handshakes.push(h);
                    }
                }
            }
            match page.next_token {
                None => return Ok(handshakes),
                Some(token) => {
                    // The token is not quoted: it is opaque and may encode anything.
                    if !tokens.insert(token.clone()) {
                        return Err(ApiError::bad_response(
                            action,
                            format!(
                                "NextToken repeated after page {page_number} (a token of this walk came back)"
                            ),
                        ));
                    }
                    next = Some(token);
                }
            }
        }
        Err(ApiError::bad_response(
            action,
            format!("more than {MAX_PAGES} pages; giving up"),
        ))
    }

    async fn describe(&self, id: &str, deadline: Instant) -> Result<Handshake, ApiError> {
        let body = request_body(None, None, Some(id));
        let answer = self.call(ACTION_DESCRIBE, body, deadline).await?;
        let h = wire::parse_describe(ACTION_DESCRIBE, &answer, &self.source)?;
        if h.id != id {
            return Err(ApiError::bad_response(
                ACTION_DESCRIBE,
                format!("asked for {id:?}, got {:?}", h.id),
            ));
        }
        Ok(h)
    }
}

#[async_trait]
impl HandshakeProvider for AwsClient {
    fn provider(&self) -> Provider {
        Provider::Aws
    }

    fn credential_status(&self) -> Option<CredentialStatus> {
        Some(self.credentials.status())
    }

    async fn fetch(&self, deadline: Instant) -> Result<Listing, ApiError> {
        match self.view {
            AwsView::Organization => self
                .list_pages(ACTION_LIST_FOR_ORGANIZATION, deadline)
                .await
                .map(Listing::from),
            AwsView::Account => self
                .list_pages(ACTION_LIST_FOR_ACCOUNT, deadline)
                .await
                .map(Listing::from),
            AwsView::Ids => {
                // By index: a closure over `&String` trips the higher-ranked lifetime
                // check inside async_trait's boxed `Send` future.
                let ids = &self.handshake_ids;
                let outcomes = stream::iter(0..ids.len())
                    .map(|i| async move {
                        match self.describe(&ids[i], deadline).await {
                            Ok(h) => Ok(Ok(h)),
                            Err(e) if wire::is_missing_handshake(&e) => Ok(Err(ids[i].clone())),
                            Err(e) => Err(e),
                        }
                    })
                    .buffered(DESCRIBE_CONCURRENCY)
                    .try_collect()
                    .await?;
                Ok(Listing::from_ids(outcomes))
            }
        }
    }

    async fn get(&self, id: &str, deadline: Instant) -> Result<Handshake, ApiError> {
        self.describe(id, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use serde_json::Value;

    /// The client's own request builder against every Organizations vector it can
    /// express (all but the `Filter` one, a parameter the client never sends): the
    /// same body bytes and the same headers as botocore, Authorization included.
    #[test]
    fn requests_are_byte_for_byte_what_botocore_sends() {
        let all: Value =
            serde_json::from_str(include_str!("../../../tests/vectors/aws-sign-vectors.json"))
                .expect("vectors");
        let mut checked = 0;
        for v in all["vectors"].as_array().expect("vectors") {
            let params = &v["inputs"]["params"];
            // The two hand-built vectors have no SDK operation; the signer test
            // covers them.
            if v["service"] != "organizations"
                || params.get("Filter").is_some()
                || v["inputs"]["operation"].is_null()
            {
                continue;
            }
            let req = &v["request"];
            let action = match v["inputs"]["operation"].as_str().expect("op") {
                "list_handshakes_for_organization" => ACTION_LIST_FOR_ORGANIZATION,
                "list_handshakes_for_account" => ACTION_LIST_FOR_ACCOUNT,
                "describe_handshake" => ACTION_DESCRIBE,
                other => panic!("{other}"),
            };
            let body = request_body(
                params["MaxResults"].as_u64().map(|n| n as u32),
                params["NextToken"].as_str(),
                params["HandshakeId"].as_str(),
            );
            assert_eq!(body, req["body"].as_str().expect("body"), "{}", v["name"]);
            let endpoint = Endpoint::parse(req["url"].as_str().expect("url")).expect("endpoint");
            let credentials = Credentials {
                access_key_id: v["access_key"].as_str().expect("ak").into(),
                access_key_secret: Secret::new(v["secret_key"].as_str().expect("sk")),
                security_token: v["session_token"].as_str().map(Secret::new),
                domain_id: None,
            };
            let headers = prepare(
                action,
                &body,
                &endpoint,
                v["region"].as_str().expect("region"),
                &credentials,
                v["x_amz_date"].as_str().expect("date"),
            );
            let want = req["headers"].as_object().expect("headers");
            let unsigned = [
                "User-Agent",
                "amz-sdk-invocation-id",
                "amz-sdk-request",
                "Content-Length",
            ];
            let want: Vec<(String, String)> = want
                .iter()
                .filter(|(k, _)| !unsigned.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            // serde_json's map is sorted by name: compare as sets.
            let mut headers = headers;
            headers.sort();
            let mut want = want;
            want.sort();
            assert_eq!(headers, want, "{}", v["name"]);
            assert_eq!(endpoint.host(), req["host"].as_str().expect("host"));
            checked += 1;
        }
        assert_eq!(checked, 13);
    }

    #[test]
    fn json_strings_escape_like_python() {
        assert_eq!(
            json_string("tok\u{e9}n+/=\u{2603}"),
            "\"tok\\u00e9n+/=\\u2603\""
        );
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(json_string("\u{1F600}"), "\"\\ud83d\\ude00\"");
        assert_eq!(request_body(None, None, None), "{}");
    }
}
