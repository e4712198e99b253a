//! Huawei Cloud Organizations: ListHandshakes (sent), ListReceivedHandshakes and
//! ShowHandshake, signed with SDK-HMAC-SHA256 ([`sign`]) and read tolerantly
//! ([`wire`]). See `shared/reference/huawei-organizations.md` for the wire contract.

pub mod credentials;
pub mod identity;
mod kind;
pub mod sign;
pub mod wire;

pub use kind::{DEFAULT_ENDPOINT, DEMO_AK, DEMO_DOMAIN, DEMO_SECRET, KIND, MAX_LIMIT};

use crate::config::{SourceConfig, View};
use crate::credentials::{CredentialCache, CredentialStatus};
use crate::error::{ApiError, Reason};
use crate::model::{Handshake, Provider};
use crate::provider::endpoint::host_header;
use crate::provider::{HandshakeProvider, Listing, percent_encode};
use crate::secret::Credentials;
use crate::transport::Transport;
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::header::{HeaderName, HeaderValue};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::time::Instant;

pub const ACTION_LIST_SENT: &str = "ListHandshakes";
pub const ACTION_LIST_RECEIVED: &str = "ListReceivedHandshakes";
pub const ACTION_SHOW: &str = "ShowHandshake";

pub const PATH_LIST_SENT: &str = "/v1/organizations/handshakes";
pub const PATH_LIST_RECEIVED: &str = "/v1/received-handshakes";

/// Safety net against a server that never stops paging with fresh markers: at the
/// maximum limit this is 20 million invitations, far beyond any organization.
pub const MAX_PAGES: usize = 10_000;
/// ShowHandshake calls in flight at once for the `ids` view.
pub const SHOW_CONCURRENCY: usize = 8;

/// Client for one configured Huawei source.
pub struct HuaweiClient {
    transport: Transport,
    source: Arc<str>,
    endpoint: String,
    view: View,
    /// Configured ids, duplicates removed (first occurrence kept).
    handshake_ids: Vec<String>,
    limit: u32,
    credentials: CredentialCache,
}

impl HuaweiClient {
    pub fn new(source: &SourceConfig, transport: Transport) -> HuaweiClient {
        let metrics = transport.metrics().clone();
        let mut seen = HashSet::new();
        let handshake_ids = source
            .handshake_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        HuaweiClient {
            transport,
            source: Arc::from(source.name.as_str()),
            endpoint: source.endpoint.trim_end_matches('/').to_string(),
            view: source.view,
            handshake_ids,
            limit: source.page_size,
            credentials: CredentialCache::new(
                credentials::fetcher(&source.credentials, &source.endpoint),
                metrics,
                Provider::Huawei,
                Arc::from(source.name.as_str()),
            ),
        }
    }

    /// Build and sign a GET for `path` (already percent-encoded) with `query`.
    /// Called once per attempt so that every attempt carries a fresh `X-Sdk-Date`.
    fn build_request(
        &self,
        credentials: &Credentials,
        action: &'static str,
        path: &str,
        query: &[(String, String)],
    ) -> Result<reqwest::Request, ApiError> {
        signed_get(&self.endpoint, credentials, action, path, query)
    }

    async fn get_json(
        &self,
        action: &'static str,
        path: &str,
        query: &[(String, String)],
        deadline: Instant,
    ) -> Result<bytes::Bytes, ApiError> {
        let issued = self
            .credentials
            .get(&self.transport, deadline, action)
            .await?;
        let response = self
            .transport
            .execute(
                action,
                deadline,
                || self.build_request(&issued.credentials, action, path, query),
                wire::parse_error,
            )
            .await?;
        Ok(response.body)
    }

    /// Walk every page of a list operation.
    ///
    /// An id on a later page that an earlier page already had is taken once (the
    /// later, newer version), not a failure. The marker's meaning is not documented;
    /// if it is a position, as the simulator's is, an invitation added before it
    /// while the list is walked pushes the next one onto the following page again,
    /// and failing on that would fail every refresh of a busy organization. Unlike
    /// Alibaba there is no total to show that the list changed, so there is no
    /// second read: a deletion that pulls an invitation back onto a page already
    /// read goes unseen until the next refresh. An id twice on one page is still a
    /// `bad_response`: one answer is one snapshot.
    async fn list_pages(
        &self,
        action: &'static str,
        path: &str,
        deadline: Instant,
    ) -> Result<Vec<Handshake>, ApiError> {
        let mut handshakes: Vec<Handshake> = Vec::new();
        // Id → index in `handshakes`.
        let mut seen_ids: HashMap<String, usize> = HashMap::new();
        let mut seen_markers = HashSet::new();
        let mut marker: Option<String> = None;
        // Shares the organization and management account strings across pages.
        let mut interner = crate::model::Interner::default();
        for page_number in 1..=MAX_PAGES {
            let mut query = vec![("limit".to_string(), self.limit.to_string())];
            if let Some(m) = &marker {
                query.push(("marker".to_string(), m.clone()));
            }
            let body = self.get_json(action, path, &query, deadline).await?;
            let page = wire::parse_list(action, &body)?;
            tracing::debug!(
                source = %self.source, action, page = page_number,
                items = page.handshakes.len(), more = page.next_marker.is_some(),
                "Huawei page"
            );
            let mut on_this_page = HashSet::with_capacity(page.handshakes.len());
            for dto in page.handshakes {
                let handshake = wire::to_shared_handshake(dto, &self.source, &mut interner)
                    .ok_or_else(|| {
                        ApiError::bad_response(
                            action,
                            format!("page {page_number} has an invitation without an id"),
                        )
                    })?;
                if !on_this_page.insert(handshake.id.clone()) {
                    return Err(ApiError::bad_response(
                        action,
                        format!(
                            "invitation {} listed twice on page {page_number}",
                            handshake.id
                        ),
                    ));
                }
                match seen_ids.get(&handshake.id) {
                    Some(&at) => {
                        tracing::debug!(
                            source = %self.source, action, handshake_id = %handshake.id,
                            page = page_number, "invitation listed again on a later page; taken once"
                        );
                        handshakes[at] = handshake;
                    }
                    None => {
                        seen_ids.insert(handshake.id.clone(), handshakes.len());
                        handshakes.push(handshake);
                    }
                }
            }
            match page.next_marker {
                None => return Ok(handshakes),
                Some(next) => {
                    // A marker we already followed means the server is going round in
                    // circles: stop instead of looping until the deadline.
                    if !seen_markers.insert(next.clone()) {
                        return Err(ApiError::bad_response(
                            action,
                            format!("marker repeated: {next:?} (after page {page_number})"),
                        ));
                    }
                    marker = Some(next);
                }
            }
        }
        Err(ApiError::bad_response(
            action,
            format!("more than {MAX_PAGES} pages; giving up"),
        ))
    }

    async fn show(&self, id: &str, deadline: Instant) -> Result<Handshake, ApiError> {
        // `.` and `..` would be resolved away by URL normalisation and reach another
        // route; an empty id would hit the list route.
        if id.is_empty() || id == "." || id == ".." {
            return Err(ApiError::new(
                Reason::BadRequest,
                ACTION_SHOW,
                format!("invalid handshake id {id:?}"),
            ));
        }
        let path = format!("{PATH_LIST_SENT}/{}", percent_encode(id));
        let body = self.get_json(ACTION_SHOW, &path, &[], deadline).await?;
        let dto = wire::parse_show(ACTION_SHOW, &body)?;
        if let Some(returned) = dto.id.as_deref().filter(|r| !r.is_empty())
            && returned != id
        {
            return Err(ApiError::bad_response(
                ACTION_SHOW,
                format!("asked for {id:?}, got {returned:?}"),
            ));
        }
        // Asked by id: the answer is about that id even if it does not repeat it.
        let dto = wire::HandshakeDto {
            id: Some(id.to_string()),
            ..dto
        };
        wire::to_handshake(dto, &self.source)
            .ok_or_else(|| ApiError::bad_response(ACTION_SHOW, "the answer has no id"))
    }
}

/// Build and sign a GET of `endpoint` + `path` (already percent-encoded) with
/// `query`, as the SDK does: `X-Domain-Id` when the credentials carry one,
/// `X-Security-Token` for temporary keys. Organizations calls and the IAM
/// domain lookup share it.
pub(crate) fn signed_get(
    endpoint: &str,
    credentials: &Credentials,
    action: &'static str,
    path: &str,
    query: &[(String, String)],
) -> Result<reqwest::Request, ApiError> {
    let config_error = |what: &str| ApiError::new(Reason::BadRequest, action, what);
    let mut url = reqwest::Url::parse(&format!("{endpoint}{path}"))
        .map_err(|e| config_error(&format!("invalid endpoint URL: {e}")))?;
    // The wire query *is* the canonical query (sorted, RFC 3986 encoded), as the
    // SDK sends it; the url crate leaves such a string untouched.
    let canonical_query = sign::canonical_query(query);
    url.set_query((!canonical_query.is_empty()).then_some(canonical_query.as_str()));
    let host = host_header(&url).ok_or_else(|| config_error("endpoint URL has no host"))?;

    let date = chrono::Utc::now().format(sign::DATE_FORMAT).to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), host),
        (sign::DATE_HEADER.into(), date),
        // The SDK sends and signs it even on body-less GETs.
        ("Content-Type".into(), "application/json".into()),
    ];
    if let Some(domain_id) = &credentials.domain_id {
        headers.push(("X-Domain-Id".into(), domain_id.clone()));
    }
    if let Some(token) = &credentials.security_token {
        headers.push(("X-Security-Token".into(), token.expose().to_string()));
    }
    let signed = sign::sign(
        &sign::RequestToSign {
            method: "GET",
            path: url.path(),
            query,
            headers: &headers,
            body: b"",
        },
        &credentials.access_key_id,
        credentials.access_key_secret.expose(),
    )
    .map_err(|e| config_error(&e.to_string()))?;
    headers.push(("Authorization".into(), signed.authorization));

    let mut request = reqwest::Request::new(reqwest::Method::GET, url);
    for (name, value) in headers {
        let sensitive = name == "X-Security-Token" || name == "Authorization";
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| config_error(&format!("invalid header name {name}")))?;
        // The message names the header, never its value: it may be a credential.
        let mut header_value = HeaderValue::from_str(&value).map_err(|_| {
            config_error(&format!(
                "the {name} value has characters not allowed in an HTTP header"
            ))
        })?;
        header_value.set_sensitive(sensitive);
        request.headers_mut().insert(header_name, header_value);
    }
    Ok(request)
}

#[async_trait]
impl HandshakeProvider for HuaweiClient {
    fn provider(&self) -> Provider {
        Provider::Huawei
    }

    fn credential_status(&self) -> Option<CredentialStatus> {
        Some(self.credentials.status())
    }

    async fn fetch(&self, deadline: Instant) -> Result<Listing, ApiError> {
        match self.view.as_str() {
            "received" => self
                .list_pages(ACTION_LIST_RECEIVED, PATH_LIST_RECEIVED, deadline)
                .await
                .map(Listing::from),
            "ids" => {
                // By index: a closure over `&String` trips the compiler's higher-ranked
                // lifetime check inside the boxed `Send` future of async_trait.
                let ids = &self.handshake_ids;
                let outcomes = stream::iter(0..ids.len())
                    .map(|i| async move {
                        match self.show(&ids[i], deadline).await {
                            Ok(h) => Ok(Ok(h)),
                            Err(e) if wire::is_missing_handshake(&e) => Ok(Err(ids[i].clone())),
                            Err(e) => Err(e),
                        }
                    })
                    .buffered(SHOW_CONCURRENCY)
                    .try_collect()
                    .await?;
                Ok(Listing::from_ids(outcomes))
            }
            // Config only allows sent/received/ids for Huawei; sent is the default.
            _ => self
                .list_pages(ACTION_LIST_SENT, PATH_LIST_SENT, deadline)
                .await
                .map(Listing::from),
        }
    }

    async fn get(&self, id: &str, deadline: Instant) -> Result<Handshake, ApiError> {
        self.show(id, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ExporterMetrics;
    use crate::secret::Secret;
    use crate::transport::{RetryPolicy, TransportSettings};
    use std::time::Duration;

    const EDGE_MARKER: &str = "ou-Zx9/Ab+c=d e~f_g.h-i*j'k(l)m!n:o@p&q%r;é";

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "HWTESTSTSAK000000001".into(),
            access_key_secret: Secret::new("hwTestTempSecretKey000000000000000000000"),
            security_token: Some(Secret::new("gQpjbi1ub3J0aC00+fake/SecurityToken==")),
            domain_id: Some("3f1b6a9c2e4d4f7b8a0c1d2e3f4a5b6c".into()),
        }
    }

    fn client(endpoint: &str) -> Result<HuaweiClient, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut source = SourceConfig::new(Provider::Huawei, "hw", endpoint, creds());
        source.page_size = 100;
        source.connect_timeout = Duration::from_secs(1);
        source.request_timeout = Duration::from_secs(1);
        let transport = Transport::new(
            Provider::Huawei,
            "hw".into(),
            TransportSettings {
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
                rate_limit: None,
                retry: RetryPolicy::default(),
            },
            Arc::new(ExporterMetrics::new(false)),
            Arc::new(tokio::sync::Semaphore::new(1)),
        )?;
        Ok(HuaweiClient::new(&source, transport))
    }

    #[test]
    fn requests_carry_the_sdk_header_set_signed_and_the_canonical_query()
    -> Result<(), Box<dyn std::error::Error>> {
        let client = client("http://127.0.0.1:8080")?;
        let query = vec![
            ("marker".to_string(), EDGE_MARKER.to_string()),
            ("limit".to_string(), "100".to_string()),
        ];
        let request = client.build_request(&creds(), ACTION_LIST_SENT, PATH_LIST_SENT, &query)?;
        assert_eq!(request.method(), reqwest::Method::GET);
        assert_eq!(request.url().path(), "/v1/organizations/handshakes");
        assert_eq!(
            request.url().query(),
            Some(
                "limit=100&marker=ou-Zx9%2FAb%2Bc%3Dd%20e~f_g.h-i%2Aj%27k%28l%29m%21n%3Ao%40p%26q%25r%3B%C3%A9"
            )
        );
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(header("host").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(header("content-type").as_deref(), Some("application/json"));
        assert_eq!(
            header("x-domain-id").as_deref(),
            Some("3f1b6a9c2e4d4f7b8a0c1d2e3f4a5b6c")
        );
        assert_eq!(
            header("x-security-token").as_deref(),
            Some("gQpjbi1ub3J0aC00+fake/SecurityToken==")
        );
        assert_eq!(header("x-sdk-date").map(|d| d.len()), Some(16));
        let authorization = header("authorization").ok_or("no Authorization")?;
        let parsed = sign::parse_authorization(&authorization).ok_or("unparsable")?;
        assert_eq!(parsed.access_key_id, "HWTESTSTSAK000000001");
        assert_eq!(
            parsed.signed_headers.join(";"),
            "content-type;host;x-domain-id;x-sdk-date;x-security-token"
        );
        // Neither the token nor the secret shows in the request's Debug output.
        let shown = format!("{request:?}");
        assert!(!shown.contains("SecurityToken=="), "{shown}");
        assert!(!shown.contains("hwTestTempSecretKey"), "{shown}");
        Ok(())
    }

    #[test]
    fn show_paths_encode_the_id_and_refuse_dot_segments() -> Result<(), Box<dyn std::error::Error>>
    {
        let client = client("https://organizations.myhuaweicloud.com")?;
        let path = format!("{PATH_LIST_SENT}/{}", percent_encode("h-a/b c"));
        let request = client.build_request(&creds(), ACTION_SHOW, &path, &[])?;
        assert_eq!(
            request.url().as_str(),
            "https://organizations.myhuaweicloud.com/v1/organizations/handshakes/h-a%2Fb%20c"
        );
        assert_eq!(
            request.headers().get("host").and_then(|v| v.to_str().ok()),
            Some("organizations.myhuaweicloud.com")
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(1);
        for id in ["", ".", ".."] {
            let err = rt.block_on(client.get(id, deadline)).err();
            assert_eq!(err.map(|e| e.reason), Some(Reason::BadRequest), "{id:?}");
        }
        Ok(())
    }

    #[test]
    fn host_header_carries_only_non_default_ports() -> Result<(), Box<dyn std::error::Error>> {
        let h = |u: &str| reqwest::Url::parse(u).map(|u| host_header(&u));
        assert_eq!(
            h("https://organizations.myhuaweicloud.com/v1")?,
            Some("organizations.myhuaweicloud.com".into())
        );
        assert_eq!(h("https://x.example:443/")?, Some("x.example".into()));
        assert_eq!(h("http://127.0.0.1:8080/")?, Some("127.0.0.1:8080".into()));
        assert_eq!(h("http://[::1]:9/")?, Some("[::1]:9".into()));
        Ok(())
    }
}
