//! Sending signed API requests: timeouts, the refresh deadline, retries with capped
//! exponential backoff and jitter, per-source rate limit, a process-wide concurrency
//! cap, and `handshake_api_requests_total` / `handshake_api_retries_total`.
//!
//! Providers own signing and error parsing; this module owns *when* and *how often*.

use crate::error::{ApiError, Reason};
use crate::metrics::ExporterMetrics;
use crate::model::Provider;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

/// Largest response body accepted; a larger one is a `bad_response`.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Retry policy. Defaults: 4 attempts, 200 ms doubling to at most 5 s, jitter between half and all of the step.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Backoff before attempt `attempt + 1` (attempt counts from 1): a random wait
    /// between half and all of `min(cap, base * 2^(attempt-1))`, but never less than
    /// the server's hint.
    pub fn backoff(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        let jittered = exp.mul_f64(0.5 + fastrand::f64() * 0.5);
        hint.map_or(jittered, |h| h.max(jittered))
    }
}

/// A successful (2xx) answer.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Turns a non-2xx answer into a typed error: provider specific.
pub type ErrorParser =
    fn(action: &'static str, status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError;

/// Simple pacing limiter: at most `rate` requests per second, evenly spaced.
struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// Reserve the next slot; returns when the request may be sent.
    async fn acquire(&self, deadline: Instant, action: &'static str) -> Result<(), ApiError> {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        if slot > deadline {
            return Err(ApiError::new(
                Reason::Timeout,
                action,
                "the source's rate_limit leaves no slot before the refresh deadline",
            ));
        }
        tokio::time::sleep_until(slot).await;
        Ok(())
    }
}

/// Everything a provider needs to send requests for one source.
pub struct Transport {
    pub http: reqwest::Client,
    pub provider: Provider,
    pub source: Arc<str>,
    metrics: Arc<ExporterMetrics>,
    limiter: Option<RateLimiter>,
    global: Arc<Semaphore>,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

/// The HTTP client of every source with this connect timeout. A `reqwest::Client`
/// is a handle on one connection pool and one TLS configuration (with its root
/// store); one per source made 200 sources cost 22 MiB more than one before any
/// request. Sharing it shares idle connections only between sources that talk to
/// the same host, which is what a pool is for; rate limits, deadlines, retries and
/// counters stay per source (they live in [`Transport`]).
fn shared_client(connect_timeout: Duration) -> Result<reqwest::Client, String> {
    type Clients = std::sync::Mutex<std::collections::HashMap<Duration, reqwest::Client>>;
    static CLIENTS: std::sync::OnceLock<Clients> = std::sync::OnceLock::new();
    let clients = CLIENTS.get_or_init(Clients::default);
    // A poisoned lock only means another thread panicked while inserting; the
    // map itself is still a valid cache.
    let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(client) = clients.get(&connect_timeout) {
        return Ok(client.clone());
    }
    crate::init_crypto();
    let client = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        // Never follow a redirect: the request carries the security token (a
        // header, or the V1 query) and reqwest would resend it, with a Referer
        // holding the signed URL, to wherever `Location` points. A cloud API
        // never redirects; a 3xx is a `bad_response` (see `attempt`).
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("handshake_exporter/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {}", e.without_url()))?;
    clients.insert(connect_timeout, client.clone());
    Ok(client)
}

/// Settings for [`Transport::new`].
pub struct TransportSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub rate_limit: Option<f64>,
    pub retry: RetryPolicy,
}

impl Transport {
    pub fn new(
        provider: Provider,
        source: Arc<str>,
        settings: TransportSettings,
        metrics: Arc<ExporterMetrics>,
        global: Arc<Semaphore>,
    ) -> Result<Transport, String> {
        let http = shared_client(settings.connect_timeout)?;
        Ok(Transport {
            http,
            provider,
            source,
            metrics,
            limiter: settings.rate_limit.map(|rate| RateLimiter {
                interval: Duration::from_secs_f64(1.0 / rate),
                next: Mutex::new(Instant::now()),
            }),
            global,
            request_timeout: settings.request_timeout,
            retry: settings.retry,
        })
    }

    /// The exporter's metrics (credential caches publish their expiry there).
    pub fn metrics(&self) -> &Arc<ExporterMetrics> {
        &self.metrics
    }

    fn count_request(&self, action: &str, code: &str) {
        self.metrics
            .api_requests
            .with_label_values(&[self.provider.as_str(), &self.source, action, code])
            .inc();
    }

    /// Send a request built (and signed) afresh by `build` for every attempt, retrying
    /// transient failures until `deadline`. Non-2xx answers go through `parse_error`.
    pub async fn execute<B>(
        &self,
        action: &'static str,
        deadline: Instant,
        build: B,
        parse_error: ErrorParser,
    ) -> Result<ApiResponse, ApiError>
    where
        B: Fn() -> Result<reqwest::Request, ApiError>,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self.attempt(action, deadline, &build, parse_error).await;
            let err = match result {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            if !err.reason.is_retryable() || attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let wait = self.retry.backoff(attempt, err.retry_after);
            if Instant::now() + wait >= deadline {
                return Err(err);
            }
            tracing::debug!(
                source = %self.source, action, attempt, reason = %err.reason,
                wait_ms = wait.as_millis() as u64, "retrying API request"
            );
            self.metrics
                .api_retries
                .with_label_values(&[self.provider.as_str(), &self.source, action])
                .inc();
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt<B>(
        &self,
        action: &'static str,
        deadline: Instant,
        build: &B,
        parse_error: ErrorParser,
    ) -> Result<ApiResponse, ApiError>
    where
        B: Fn() -> Result<reqwest::Request, ApiError>,
    {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(deadline, action).await?;
        }
        let timeout_err =
            || ApiError::new(Reason::Timeout, action, "no answer before the deadline");
        let _permit = tokio::time::timeout_at(deadline, self.global.acquire())
            .await
            .map_err(|_| timeout_err())?
            .map_err(|_| ApiError::new(Reason::Network, action, "exporter is shutting down"))?;
        let now = Instant::now();
        if now >= deadline {
            return Err(timeout_err());
        }
        // Sign as late as possible: the signature carries a timestamp.
        let mut request = build()?;
        let budget = self.request_timeout.min(deadline - now);
        *request.timeout_mut() = Some(budget);
        let started = Instant::now();
        let sent = tokio::time::timeout(budget, async {
            let resp = self.http.execute(request).await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = read_limited(resp).await?;
            Ok::<_, BodyError>((status, headers, body))
        })
        .await;
        let outcome = match sent {
            Err(_) => Err(timeout_err()),
            Ok(Err(BodyError::TooLarge)) => Err(ApiError::bad_response(
                action,
                format!("response body larger than {MAX_BODY_BYTES} bytes"),
            )),
            Ok(Err(BodyError::Http(e))) => Err(classify_reqwest(action, &e)),
            Ok(Ok(parts)) => Ok(parts),
        };
        let (status, headers, body) = match outcome {
            Err(e) => {
                self.count_request(action, e.reason.metric_label());
                tracing::debug!(source = %self.source, action, reason = %e.reason, "API request failed without an answer");
                return Err(e);
            }
            Ok(parts) => parts,
        };
        self.count_request(action, &status.to_string());
        tracing::trace!(
            source = %self.source, action, status,
            elapsed_ms = started.elapsed().as_millis() as u64, bytes = body.len(),
            "API response"
        );
        if (300..400).contains(&status) {
            // Not handed to the provider's error parser, and `Location` is not
            // quoted: its query may hold what the redirecting host wants to see.
            return Err(ApiError::bad_response(
                action,
                format!("unexpected redirect: HTTP {status} (redirects are not followed)"),
            )
            .with_status(status));
        }
        if (200..300).contains(&status) {
            Ok(ApiResponse {
                status,
                headers,
                body,
            })
        } else {
            let mut err = parse_error(action, status, &headers, &body);
            if err.retry_after.is_none() {
                err.retry_after = retry_after_hint(&headers);
            }
            Err(err)
        }
    }
}

enum BodyError {
    Http(reqwest::Error),
    TooLarge,
}

impl From<reqwest::Error> for BodyError {
    fn from(e: reqwest::Error) -> Self {
        BodyError::Http(e)
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Bytes, BodyError> {
    if resp
        .content_length()
        .is_some_and(|l| l > MAX_BODY_BYTES as u64)
    {
        return Err(BodyError::TooLarge);
    }
    // Sized once from Content-Length when the server sends it (the simulator and both
    // clouds do), instead of growing by doubling over a megabyte-sized page; a
    // claimed length beyond any real page only pre-sizes 4 MiB.
    let expected = resp.content_length().unwrap_or(0).min(4 << 20) as usize;
    let mut buf = bytes::BytesMut::with_capacity(expected);
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Whether a URL's host is loopback (127.0.0.0/8, ::1 or `localhost`): the only
/// hosts where plain `http://` keeps signed requests and tokens on the machine.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 hosts come bracketed (`[::1]`).
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Map a transport failure to a reason. The URL is stripped: an Alibaba V1 URL
/// carries the access key id and security token in its query.
fn classify_reqwest(action: &'static str, e: &reqwest::Error) -> ApiError {
    let reason = if e.is_timeout() {
        Reason::Timeout
    } else if e.is_decode() || e.is_body() {
        Reason::BadResponse
    } else {
        Reason::Network
    };
    let mut msg = String::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    let mut first = true;
    while let Some(err) = cur {
        let text = if first {
            // `without_url` needs ownership; re-render without the URL instead.
            strip_url(&err.to_string())
        } else {
            err.to_string()
        };
        if !first {
            msg.push_str(": ");
        }
        msg.push_str(&text);
        first = false;
        cur = err.source();
    }
    ApiError::new(reason, action, msg)
}

/// reqwest renders `error sending request for url (http://…)`; drop the URL.
fn strip_url(s: &str) -> String {
    match s.find(" for url (") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// `Retry-After` in seconds (RFC 9110) or Alibaba's `x-acs-retry-after` in
/// milliseconds (that is how the SDK's retry loop reads it).
pub fn retry_after_hint(headers: &HeaderMap) -> Option<Duration> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| *v > 0)
    };
    read("x-acs-retry-after")
        .map(Duration::from_millis)
        .or_else(|| read("retry-after").map(Duration::from_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keep-alive HTTP/1.1 server on loopback that answers `200 {}` and counts the
    /// connections it accepted.
    async fn counting_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    // One request per read is enough for these tiny GETs.
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        if socket.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (format!("http://{addr}/"), accepted)
    }

    fn transport(source: &str, connect_timeout: Duration) -> Transport {
        Transport::new(
            Provider::Alibaba,
            Arc::from(source),
            TransportSettings {
                connect_timeout,
                request_timeout: Duration::from_secs(5),
                rate_limit: None,
                retry: RetryPolicy::default(),
            },
            Arc::new(ExporterMetrics::new(false)),
            Arc::new(Semaphore::new(8)),
        )
        .expect("transport builds")
    }

    #[tokio::test]
    async fn sources_with_the_same_connect_timeout_share_one_connection_pool() {
        let (url, accepted) = counting_server().await;
        // A connect timeout no other test uses, so that the pool starts empty.
        let timeout = Duration::from_millis(4_321);
        let deadline = Instant::now() + Duration::from_secs(10);
        for source in ["a", "b", "c"] {
            let t = transport(source, timeout);
            let url = url.clone();
            let answer = t
                .execute(
                    "Get",
                    deadline,
                    || {
                        reqwest::Url::parse(&url)
                            .map(|u| reqwest::Request::new(reqwest::Method::GET, u))
                            .map_err(|e| ApiError::bad_response("Get", e.to_string()))
                    },
                    |action, status, _, _| ApiError::bad_response(action, format!("HTTP {status}")),
                )
                .await;
            assert!(answer.is_ok(), "{answer:?}");
        }
        // Three sources, one kept-alive connection.
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Another connect timeout is another client (and connection).
        let other = transport("d", Duration::from_millis(4_322));
        let url2 = url.clone();
        let answer = other
            .execute(
                "Get",
                deadline,
                || {
                    reqwest::Url::parse(&url2)
                        .map(|u| reqwest::Request::new(reqwest::Method::GET, u))
                        .map_err(|e| ApiError::bad_response("Get", e.to_string()))
                },
                |action, status, _, _| ApiError::bad_response(action, format!("HTTP {status}")),
            )
            .await;
        assert!(answer.is_ok(), "{answer:?}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_hints() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            let b = p.backoff(attempt, None);
            let ceiling = p.base.saturating_mul(1 << (attempt - 1)).min(p.cap);
            assert!(b <= ceiling && b >= ceiling / 2, "attempt {attempt}: {b:?}");
        }
        assert!(p.backoff(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
    }

    #[test]
    fn retry_after_headers_are_read() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_hint(&h), None);
        h.insert("retry-after", "3".parse().expect("static header"));
        assert_eq!(retry_after_hint(&h), Some(Duration::from_secs(3)));
        h.insert("x-acs-retry-after", "1500".parse().expect("static header"));
        assert_eq!(retry_after_hint(&h), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn urls_are_stripped_from_transport_errors() {
        assert_eq!(
            strip_url("error sending request for url (http://h/?AccessKeyId=AK&SecurityToken=T)"),
            "error sending request"
        );
    }
}
