//! Alibaba Cloud Resource Manager (API 2020-03-31): the handshake client.
//!
//! Requests follow what the official SDK sends (reference §6): `POST /` with the
//! operation's parameters in the URL query and an empty body, signed with
//! ACS3-HMAC-SHA256 by default or classic RPC HMAC-SHA1 when configured. Signing is
//! in [`sign`], response parsing in [`wire`]; this module builds requests, walks the
//! pages and refuses answers that do not add up.

pub mod credentials;
mod kind;
pub mod metadata;
pub mod sign;
pub mod sts;
pub mod wire;

pub use kind::{
    AlibabaSettings, AlibabaSignature, DEFAULT_ENDPOINT, DEMO_AK, DEMO_ROLE_ARN, DEMO_SECRET, KIND,
    MAX_PAGE_SIZE,
};

use crate::config::{SourceConfig, View};
use crate::credentials::{CredentialCache, CredentialStatus};
use crate::error::{ApiError, Reason};
use crate::model::{Handshake, Provider};
pub use crate::provider::Endpoint;

use crate::provider::{HandshakeProvider, Listing, nonce, percent_encode};
use crate::secret::Credentials;
use crate::transport::{Transport, retry_after_hint};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::time::Instant;
use wire::{ErrorBody, ListPage, WireError};

/// API version of every operation used here.
pub const API_VERSION: &str = "2020-03-31";
pub const ACTION_LIST_FOR_RESOURCE_DIRECTORY: &str = "ListHandshakesForResourceDirectory";
pub const ACTION_LIST_FOR_ACCOUNT: &str = "ListHandshakesForAccount";
pub const ACTION_GET_HANDSHAKE: &str = "GetHandshake";

/// Most requests of one refresh in flight at once (pages after the first, or ids).
/// Ten lets the nine pages after the first of a 1,000-invitation directory go out
/// together: two round trips in all. The transport's rate limit and the
/// process-wide cap still apply on top.
pub const MAX_IN_FLIGHT: usize = 10;

/// A TotalCount above this is not believed: no directory holds a million invitations,
/// and trusting it would send ten thousand page requests.
pub const MAX_TOTAL_COUNT: u64 = 1_000_000;

/// `x-acs-date` / `Timestamp` format (UTC, second precision, literal `Z`).
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// One source's view of Alibaba Resource Manager.
pub struct AlibabaClient {
    transport: Transport,
    source: Arc<str>,
    view: View,
    /// For `View::IDS`: the configured ids, duplicates removed, order kept.
    handshake_ids: Vec<String>,
    signature: AlibabaSignature,
    page_size: u64,
    credentials: CredentialCache,
    /// The parsed endpoint, or why it cannot be used (reported on every call, since
    /// `new` cannot fail).
    endpoint: Result<Endpoint, String>,
}

/// A signed request, before it becomes a `reqwest::Request`: always `POST`, empty
/// body. Not `Debug`: the query or headers can hold the security token.
pub struct SignedCall {
    /// Encoded query string (no leading `?`); for V3 it equals the canonical query.
    pub query: String,
    /// Headers in the order they are sent, `Authorization` last for V3.
    pub headers: Vec<(String, String)>,
}

/// The V3 (ACS3-HMAC-SHA256) request for `action` with the minimal signed header set
/// (`host` plus every `x-acs-*` header), with date and nonce given.
pub fn prepare_v3(
    action: &str,
    params: &[(&str, &str)],
    endpoint: &Endpoint,
    credentials: &Credentials,
    date: &str,
    nonce: &str,
) -> SignedCall {
    let mut headers: Vec<(&str, &str)> = vec![
        ("host", endpoint.host()),
        ("x-acs-action", action),
        ("x-acs-version", API_VERSION),
        ("x-acs-date", date),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-content-sha256", sign::EMPTY_BODY_SHA256),
    ];
    // STS: both headers are added before signing so that they are signed.
    if let Some(token) = &credentials.security_token {
        headers.push(("x-acs-accesskey-id", &credentials.access_key_id));
        headers.push(("x-acs-security-token", token.expose()));
    }
    let signed = sign::sign_acs3(&sign::Acs3Request {
        method: "POST",
        path: endpoint.path(),
        query: params,
        headers: &headers,
        body: b"",
        access_key_id: &credentials.access_key_id,
        access_key_secret: credentials.access_key_secret.expose(),
    });
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    out.push(("Authorization".into(), signed.authorization));
    SignedCall {
        // Sending the canonical query itself means the server's decode-and-re-encode
        // gives back exactly what was signed.
        query: signed.canonical_query,
        headers: out,
    }
}

/// The V1 (classic RPC HMAC-SHA1) request for `action`, with timestamp and nonce
/// given. Parameters are in the SDK's wire order, `Signature` last.
pub fn prepare_v1(
    action: &str,
    params: &[(&str, &str)],
    endpoint: &Endpoint,
    credentials: &Credentials,
    timestamp: &str,
    nonce: &str,
) -> SignedCall {
    let mut all: Vec<(&str, &str)> = vec![
        ("Action", action),
        ("Format", "json"),
        ("Version", API_VERSION),
        ("Timestamp", timestamp),
        ("SignatureNonce", nonce),
    ];
    all.extend_from_slice(params);
    if let Some(token) = &credentials.security_token {
        all.push(("SecurityToken", token.expose()));
    }
    all.extend_from_slice(&[
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("AccessKeyId", &credentials.access_key_id),
    ]);
    let signed = sign::sign_rpc_v1("POST", &all, credentials.access_key_secret.expose());
    all.push(("Signature", &signed.signature));
    let query: Vec<String> = all
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    SignedCall {
        query: query.join("&"),
        headers: vec![("host".into(), endpoint.host().to_string())],
    }
}

/// Turn a signed call into the request reqwest sends.
fn to_reqwest(
    action: &'static str,
    endpoint: &Endpoint,
    call: SignedCall,
) -> Result<reqwest::Request, ApiError> {
    let mut url = endpoint.url();
    url.set_query(
        Some(&call.query)
            .filter(|q| !q.is_empty())
            .map(String::as_str),
    );
    let mut request = reqwest::Request::new(reqwest::Method::POST, url);
    let headers = request.headers_mut();
    for (name, value) in call.headers {
        // The message names the header, never its value (it may be the token).
        let invalid = || {
            ApiError::new(
                Reason::BadRequest,
                action,
                format!("invalid {name} header value"),
            )
        };
        let name_parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| invalid())?;
        if name_parsed == reqwest::header::AUTHORIZATION || name_parsed == "x-acs-security-token" {
            value.set_sensitive(true);
        }
        headers.append(name_parsed, value);
    }
    // An explicit empty body makes hyper send `content-length: 0`, which some
    // gateways require on a POST.
    *request.body_mut() = Some(reqwest::Body::from(Vec::new()));
    Ok(request)
}

impl AlibabaClient {
    pub fn new(source: &SourceConfig, transport: Transport) -> AlibabaClient {
        let metrics = transport.metrics().clone();
        let mut seen = HashSet::new();
        let handshake_ids = source
            .handshake_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        AlibabaClient {
            transport,
            source: Arc::from(source.name.as_str()),
            view: source.view,
            handshake_ids,
            signature: AlibabaSettings::of(source).signature,
            page_size: u64::from(source.page_size.max(1)),
            credentials: CredentialCache::new(
                credentials::fetcher(&source.credentials),
                metrics,
                crate::model::Provider::Alibaba,
                Arc::from(source.name.as_str()),
            ),
            endpoint: Endpoint::parse(&source.endpoint),
        }
    }

    /// Build and sign one attempt: fresh date and nonce every time, since retries
    /// with a reused nonce are rejected as replays.
    fn build_request(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<reqwest::Request, ApiError> {
        let timestamp = chrono::Utc::now().format(TIMESTAMP_FORMAT).to_string();
        let nonce = nonce();
        let prepare = match self.signature {
            AlibabaSignature::V3 => prepare_v3,
            AlibabaSignature::V1 => prepare_v1,
        };
        let call = prepare(action, params, endpoint, credentials, &timestamp, &nonce);
        to_reqwest(action, endpoint, call)
    }

    /// Send one operation (with the transport's retries) and return the 2xx body.
    async fn call(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<bytes::Bytes, ApiError> {
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|m| ApiError::new(Reason::BadRequest, action, m.clone()))?;
        // Fetched (or refreshed) before every operation, not once per refresh: a
        // long refresh may outlive temporary credentials.
        let issued = self
            .credentials
            .get(&self.transport, deadline, action)
            .await?;
        let response = self
            .transport
            .execute(
                action,
                deadline,
                || self.build_request(endpoint, &issued.credentials, action, params),
                parse_error,
            )
            .await?;
        Ok(response.body)
    }

    async fn fetch_page(
        &self,
        action: &'static str,
        page_number: u64,
        deadline: Instant,
    ) -> Result<ListPage, ApiError> {
        let page_number = page_number.to_string();
        let page_size = self.page_size.to_string();
        let params = [
            ("PageNumber", page_number.as_str()),
            ("PageSize", page_size.as_str()),
        ];
        let body = self.call(action, &params, deadline).await?;
        wire::parse_list_page(&body).map_err(|e| wire_error(action, e))
    }

    /// Every invitation of a list operation, read while the list may be changing.
    ///
    /// Offset pages of a list that changes while it is read shift: an invitation
    /// added before a page already read pushes the next one onto a later page (read
    /// twice), one deleted pulls the next one onto a page already read (never read).
    /// A read shows such a shift as TotalCount changing between pages or an id on two
    /// pages ([`PageAssembler`]). The rule:
    ///
    /// - A read that shows no change is the answer.
    /// - A read that shows one is followed by exactly one more complete read. If that
    ///   one shows no change, the answer is the second read plus the invitations only
    ///   the first read saw, one entry per id (the second read's version wins).
    ///   Every invitation present during the whole refresh was present during the
    ///   whole second read, which saw no shift, so it is in the answer; one deleted
    ///   during the refresh may still be in it (for one refresh interval), one added
    ///   during it may be missing (the next refresh has it).
    /// - If the second read shows a change too, the refresh is a `bad_response`:
    ///   neither read can be trusted, and reading again and again would make a busy
    ///   directory cost ever more calls.
    ///
    /// What paging cannot show: an addition and a deletion between the same two page
    /// requests keep TotalCount and may skip an invitation without repeating one. The
    /// first read's invitations in the union cover the invitations that read saw.
    async fn list_all(
        &self,
        action: &'static str,
        deadline: Instant,
    ) -> Result<Vec<Handshake>, ApiError> {
        let (seen_first, first_change) = match self.read_all(action, deadline).await? {
            Read::Unchanged(items) => return Ok(items),
            Read::Changed { items, why } => (items, why),
        };
        tracing::debug!(
            source = %self.source, action, change = %first_change,
            "the list changed while it was read; reading it once more"
        );
        match self.read_all(action, deadline).await? {
            Read::Unchanged(mut items) => {
                let ids: HashSet<&str> = items.iter().map(|h| h.id.as_str()).collect();
                let only_first: Vec<Handshake> = seen_first
                    .into_iter()
                    .filter(|h| !ids.contains(h.id.as_str()))
                    .collect();
                items.extend(only_first);
                Ok(items)
            }
            Read::Changed { why, .. } => Err(ApiError::bad_response(
                action,
                format!(
                    "the list kept changing during two whole reads ({first_change}; then {why})"
                ),
            )),
        }
    }

    /// One whole read of a list operation. Page 1 tells TotalCount; the rest are
    /// fetched concurrently and checked in page order. A change seen on a page ends
    /// the read there (the pages still in flight are cancelled).
    async fn read_all(&self, action: &'static str, deadline: Instant) -> Result<Read, ApiError> {
        let mut pages = PageAssembler::new(action, self.page_size, self.source.clone());
        let first = self.fetch_page(action, 1, deadline).await?;
        if !pages.accept(1, first)? {
            return pages.finish();
        }
        match pages.last_page() {
            Some(last) => {
                let mut rest = stream::iter(2..=last)
                    .map(|n| async move { (n, self.fetch_page(action, n, deadline).await) })
                    .buffered(MAX_IN_FLIGHT);
                // Returning early drops the stream, cancelling requests still in flight.
                while let Some((n, page)) = rest.next().await {
                    if !pages.accept(n, page?)? {
                        break;
                    }
                }
            }
            // No TotalCount: nothing to plan with, so walk until a short page.
            None => {
                let max_pages = MAX_TOTAL_COUNT / self.page_size + 1;
                let mut n = 2;
                loop {
                    if n > max_pages {
                        return Err(ApiError::bad_response(
                            action,
                            format!(
                                "no short page after {max_pages} pages of {} invitations",
                                self.page_size
                            ),
                        ));
                    }
                    let page = self.fetch_page(action, n, deadline).await?;
                    if !pages.accept(n, page)? {
                        break;
                    }
                    n += 1;
                }
            }
        }
        pages.finish()
    }

    async fn get_one(&self, id: &str, deadline: Instant) -> Result<Handshake, ApiError> {
        let action = ACTION_GET_HANDSHAKE;
        let body = self.call(action, &[("HandshakeId", id)], deadline).await?;
        let mut item = wire::parse_get(&body).map_err(|e| wire_error(action, e))?;
        match item.handshake_id.as_deref().map(str::trim) {
            None | Some("") => item.handshake_id = Some(id.to_string()),
            Some(got) if got != id => {
                return Err(ApiError::bad_response(
                    action,
                    format!("asked for handshake {id}, the answer is about {got}"),
                ));
            }
            Some(_) => {}
        }
        item.into_handshake(self.source.clone())
            .ok_or_else(|| ApiError::bad_response(action, "the Handshake has no HandshakeId"))
    }
}

#[async_trait]
impl HandshakeProvider for AlibabaClient {
    fn provider(&self) -> Provider {
        Provider::Alibaba
    }

    fn credential_status(&self) -> Option<CredentialStatus> {
        Some(self.credentials.status())
    }

    async fn fetch(&self, deadline: Instant) -> Result<Listing, ApiError> {
        match self.view.as_str() {
            "resource_directory" => self
                .list_all(ACTION_LIST_FOR_RESOURCE_DIRECTORY, deadline)
                .await
                .map(Listing::from),
            "account" => self
                .list_all(ACTION_LIST_FOR_ACCOUNT, deadline)
                .await
                .map(Listing::from),
            "ids" => {
                // Owned ids: a closure over `&String` trips the higher-ranked
                // lifetime check of the `Send` future async_trait requires.
                let outcomes = stream::iter(self.handshake_ids.iter().cloned())
                    .map(|id| async move {
                        match self.get_one(&id, deadline).await {
                            Ok(h) => Ok(Ok(h)),
                            Err(e) if is_missing_handshake(&e) => Ok(Err(id)),
                            Err(e) => Err(e),
                        }
                    })
                    .buffered(MAX_IN_FLIGHT)
                    .try_collect()
                    .await?;
                Ok(Listing::from_ids(outcomes))
            }
            // Config validation keeps other providers' views away from Alibaba sources.
            _ => Err(ApiError::new(
                Reason::BadRequest,
                ACTION_LIST_FOR_RESOURCE_DIRECTORY,
                format!(
                    "view {} does not exist for alibaba sources",
                    self.view.as_str()
                ),
            )),
        }
    }

    async fn get(&self, id: &str, deadline: Instant) -> Result<Handshake, ApiError> {
        self.get_one(id, deadline).await
    }
}

/// How one whole read of a list ended.
#[derive(Debug)]
enum Read {
    /// The pages add up and nothing shows a change.
    Unchanged(Vec<Handshake>),
    /// The list changed while it was read (`why`); the invitations collected until
    /// the change showed, one per id.
    Changed { items: Vec<Handshake>, why: String },
}

/// Checks pages as they arrive (in page order) and collects their invitations.
/// A change of the list while it is read (TotalCount differing from page 1's, an id
/// already seen on an earlier page) ends the read as [`Read::Changed`]; everything
/// else that does not add up is a `bad_response`: a wrong answer must fail the
/// refresh rather than publish a partial or duplicated list. With TotalCount the
/// same on every page, offset paging fixes how many invitations each page has
/// whatever the list holds, so a page of another size is the API's error, not a
/// change.
struct PageAssembler {
    action: &'static str,
    source: Arc<str>,
    page_size: u64,
    /// From page 1; `None` when the API did not say.
    total: Option<u64>,
    seen: HashSet<String>,
    items: Vec<Handshake>,
    /// Shares the directory and management account strings across the listing.
    interner: crate::model::Interner,
    /// The first change seen, which ended the read.
    changed: Option<String>,
}

impl PageAssembler {
    fn new(action: &'static str, page_size: u64, source: Arc<str>) -> PageAssembler {
        PageAssembler {
            action,
            source,
            page_size,
            total: None,
            seen: HashSet::new(),
            items: Vec::new(),
            interner: crate::model::Interner::default(),
            changed: None,
        }
    }

    /// The number of the last page TotalCount implies (at least 1), when known.
    fn last_page(&self) -> Option<u64> {
        self.total
            .map(|total| total.div_ceil(self.page_size).max(1))
    }

    /// Check and take page `asked`. `Ok(true)` when more pages follow; `Ok(false)` at
    /// the last page or when this page shows that the list changed.
    fn accept(&mut self, asked: u64, page: ListPage) -> Result<bool, ApiError> {
        let action = self.action;
        let request_id = page.request_id.clone();
        let bad = |message: String| {
            ApiError::bad_response(action, message).with_request_id(request_id.clone())
        };
        if let Some(got) = page.page_number
            && got != asked
        {
            return Err(bad(format!(
                "asked for page {asked}, the answer is page {got}"
            )));
        }
        match page.page_size {
            Some(0) => return Err(bad(format!("PageSize 0 in the answer to page {asked}"))),
            Some(got) if got != self.page_size => {
                return Err(bad(format!(
                    "asked for PageSize {}, the answer has PageSize {got}",
                    self.page_size
                )));
            }
            _ => {}
        }
        let count = page.items.len() as u64;
        if count > self.page_size {
            return Err(bad(format!(
                "page {asked} has {count} invitations, more than PageSize {}",
                self.page_size
            )));
        }
        if asked == 1 {
            if let Some(total) = page.total_count
                && total > MAX_TOTAL_COUNT
            {
                return Err(bad(format!(
                    "TotalCount {total} is not believable (more than {MAX_TOTAL_COUNT})"
                )));
            }
            self.total = page.total_count;
        } else if let (Some(first), Some(now)) = (self.total, page.total_count)
            && first != now
        {
            self.changed = Some(format!(
                "TotalCount changed from {first} to {now} between pages (page {asked})"
            ));
            return Ok(false);
        }
        if let Some(total) = self.total {
            let expected = total
                .saturating_sub((asked - 1).saturating_mul(self.page_size))
                .min(self.page_size);
            if count < expected {
                return Err(bad(format!(
                    "page {asked} has {count} invitations where TotalCount {total} promises {expected}: \
                     the pages end before TotalCount is reached"
                )));
            }
            if count > expected {
                return Err(bad(format!(
                    "page {asked} has {count} invitations, more than the {expected} TotalCount {total} leaves for it"
                )));
            }
        }
        let mut handshakes = Vec::with_capacity(page.items.len());
        let mut on_this_page = HashSet::with_capacity(page.items.len());
        for (i, item) in page.items.into_iter().enumerate() {
            let h = item
                .into_shared_handshake(self.source.clone(), &mut self.interner)
                .ok_or_else(|| bad(format!("invitation {i} of page {asked} has no HandshakeId")))?;
            // One page is one snapshot: an id twice on it is no change, it is wrong.
            if !on_this_page.insert(h.id.clone()) {
                return Err(bad(format!(
                    "invitation {} appears twice on page {asked}",
                    h.id
                )));
            }
            handshakes.push(h);
        }
        // An id seen on an earlier page: the pages shifted (something was added
        // before it), or the API repeated a page; either way this read is not whole.
        if let Some(again) = handshakes.iter().find(|h| self.seen.contains(&h.id)) {
            self.changed = Some(format!(
                "invitation {} appears again on page {asked}",
                again.id
            ));
            return Ok(false);
        }
        self.seen.extend(on_this_page);
        self.items.extend(handshakes);
        Ok(match self.total {
            Some(total) => asked.saturating_mul(self.page_size) < total,
            None => count == self.page_size,
        })
    }

    fn finish(self) -> Result<Read, ApiError> {
        if let Some(why) = self.changed {
            return Ok(Read::Changed {
                items: self.items,
                why,
            });
        }
        match self.total {
            Some(total) if self.items.len() as u64 != total => Err(ApiError::bad_response(
                self.action,
                format!(
                    "collected {} invitations, TotalCount says {total}",
                    self.items.len()
                ),
            )),
            _ => Ok(Read::Unchanged(self.items)),
        }
    }
}

/// A 2xx body that is not usable data.
fn wire_error(action: &'static str, error: WireError) -> ApiError {
    match error {
        WireError::Shape(message) => ApiError::bad_response(action, message),
        WireError::ApiError(body) => error_from_body(action, 200, body, None),
    }
}

/// The [`crate::transport::ErrorParser`] for Alibaba: non-2xx answers.
pub fn parse_error(
    action: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiError {
    let retry_after = retry_after_hint(headers);
    match wire::parse_error_body(body) {
        Some(error) => error_from_body(action, status, error, retry_after),
        None => ApiError::new(
            classify(status, None),
            action,
            // The body is not quoted: an HTML error page from a proxy may echo the
            // request URL, and a V1 URL carries the security token.
            format!(
                "HTTP {status} without an Alibaba error document ({} bytes)",
                body.len()
            ),
        )
        .with_status(status)
        .with_retry_after(retry_after),
    }
}

fn error_from_body(
    action: &'static str,
    status: u16,
    body: ErrorBody,
    retry_after: Option<std::time::Duration>,
) -> ApiError {
    let message = body
        .message
        .as_deref()
        .map(sanitize_message)
        .unwrap_or_default();
    ApiError::new(classify(status, body.code.as_deref()), action, message)
        .with_status(status)
        .with_code(body.code)
        .with_request_id(body.request_id)
        .with_retry_after(retry_after)
}

/// The reason for an error answer, from Alibaba's code first, then the HTTP status.
pub fn classify(status: u16, code: Option<&str>) -> Reason {
    let code = code.unwrap_or("");
    let starts = |prefix: &str| code.starts_with(prefix);
    if starts("Throttling") || status == 429 {
        Reason::Throttled
    } else if matches!(
        code,
        "SignatureDoesNotMatch" | "IncompleteSignature" | "MissingSecurityToken"
    ) || starts("InvalidAccessKeyId")
        || starts("InvalidSecurityToken")
        || starts("Forbidden")
        || starts("NoPermission")
        || status == 401
        || status == 403
    {
        Reason::Auth
    } else if code == "EntityNotExists.ResourceDirectory" || code.contains("NotEnabled") {
        Reason::NotEnabled
    } else if starts("EntityNotExists") || status == 404 {
        Reason::NotFound
    } else if starts("MissingParameter") || starts("InvalidParameter") {
        Reason::BadRequest
    } else if (500..600).contains(&status) {
        Reason::Server
    } else if (400..500).contains(&status) {
        Reason::BadRequest
    } else {
        // A 2xx carrying an unknown error code, or a 1xx/3xx: not usable data.
        Reason::BadResponse
    }
}

/// Whether GetHandshake's error means "this invitation does not exist"
/// (`EntityNotExists.Handshake`). Only the API's own `EntityNotExists` code counts:
/// a bare 404 (a proxy, a wrong base path) must fail the refresh, not make every
/// configured id look missing.
pub fn is_missing_handshake(error: &ApiError) -> bool {
    error.reason == Reason::NotFound
        && error
            .code
            .as_deref()
            .is_some_and(|c| c.starts_with("EntityNotExists"))
}

/// Keep an API message safe to log. `SignatureDoesNotMatch` ends in the server's
/// string to sign, which for V1 is the whole percent-encoded query, security token
/// included; that part is dropped, and any `SecurityToken=`/`Signature=` value left
/// is masked.
fn sanitize_message(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let mut out = match lower.find("string to sign") {
        Some(at) => {
            // Cut at the start of the sentence that introduces it ("server string…").
            let cut = lower[..at].rfind("server").unwrap_or(at);
            format!(
                "{} (server string to sign omitted)",
                message[..cut].trim_end()
            )
        }
        None => message.to_string(),
    };
    for marker in [
        "SecurityToken=",
        "SecurityToken%3D",
        "Signature=",
        "Signature%3D",
    ] {
        out = mask_values_after(&out, marker);
    }
    out
}

/// Replace what follows each `marker` with `<redacted>`, up to a quote, whitespace,
/// `&`, or an encoded `&` (`%26`, inside a percent-encoded query).
fn mask_values_after(text: &str, marker: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let value_start = at + marker.len();
        out.push_str(&rest[..value_start]);
        let tail = &rest[value_start..];
        let plain_end = tail
            .find(|c: char| matches!(c, '&' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(tail.len());
        let end = tail[..plain_end].find("%26").unwrap_or(plain_end);
        out.push_str("<redacted>");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
