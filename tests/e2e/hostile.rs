//! A hostile client: thousands of random, malformed, slow and abandoned requests
//! over plain TCP. Afterwards the exporter must answer `/metrics` quickly, must not
//! have grown, and must not have panicked. Seeded: `HOSTILE_SEED=<n>` replays a run.

use crate::harness::*;
use handshake_exporter::sim::Dataset;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AK: &str = "LTAIhostile000000001";
const SK: &str = "hostile-secret-Vb6nM2";
const REQUESTS: usize = 3_000;
const WORKERS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A syntactically valid request with hostile content: must get an answer.
    Valid,
    /// Broken request line or headers: an answer (400 and the like) or a close.
    Malformed,
    /// Headers that stop half way, then the client waits a little and leaves.
    Slow,
    /// The client sends (part of) a request and closes at once.
    Abrupt,
}

const METHODS: &[&str] = &[
    "GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "FOO",
];
const PATHS: &[&str] = &[
    "/metrics",
    "/metrics",
    "/probe",
    "/probe?source=corp",
    "/probe?source=",
    "/probe?source=%ff%fe",
    "/",
    "/-/healthy",
    "/-/ready",
    "/-/reload",
    "/api/v1/handshakes",
    "/api/v1/sources/corp/handshakes/h-x",
    "/api/v1/sources/%2e%2e/handshakes/%00",
    "/api/v1/sources/corp/handshakes/",
    "/api/v1/sources//handshakes//",
    "/api/v1/sources/corp/handshakes/a/b/c",
    "//metrics",
    "/metrics/../metrics",
    "/%",
    "/%zz",
    "*",
];
const TIMEOUTS: &[&str] = &[
    "1e19",
    "1e300",
    "NaN",
    "-1",
    "garbage",
    "inf",
    "-inf",
    "0",
    "18446744073709551616",
    "1e-300",
    "15",
    "0x10",
    "",
];

fn random_token(rng: &mut fastrand::Rng, max: usize) -> String {
    (0..rng.usize(1..=max))
        .map(|_| rng.alphanumeric())
        .collect()
}

fn random_bytes(rng: &mut fastrand::Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.u8(..)).collect()
}

/// A valid request: random method, path, query, headers (huge numbers, NaN,
/// negatives, non-UTF-8 bytes in values) and body.
fn valid_request(rng: &mut fastrand::Rng) -> Vec<u8> {
    let method = METHODS[rng.usize(..METHODS.len())];
    let mut path = PATHS[rng.usize(..PATHS.len())].to_string();
    if path != "*" && rng.bool() {
        let sep = if path.contains('?') { '&' } else { '?' };
        let value: String = (0..rng.usize(0..40))
            .map(|_| match rng.u8(0..4) {
                0 => format!("%{:02x}", rng.u8(..)),
                1 => "+".to_string(),
                _ => rng.alphanumeric().to_string(),
            })
            .collect();
        path.push_str(&format!("{sep}{}={value}", random_token(rng, 8)));
    }
    if rng.u8(0..50) == 0 {
        path.push_str(&"a".repeat(rng.usize(1_000..20_000)));
    }
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes();
    let mut header = |name: &str, value: &[u8]| {
        req.extend_from_slice(name.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
    };
    if rng.bool() {
        header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            TIMEOUTS[rng.usize(..TIMEOUTS.len())].as_bytes(),
        );
    }
    if rng.bool() {
        let v: &[u8] = match rng.u8(0..4) {
            0 => b"gzip",
            1 => b"br, gzip;q=0",
            2 => b"\xff\xfe",
            _ => b"identity",
        };
        header("Accept-Encoding", v);
    }
    if rng.u8(0..4) == 0 {
        let v: Vec<u8> = match rng.u8(0..3) {
            0 => b"Basic !!!!".to_vec(),
            1 => b"Basic dXNlcjpwYXNz".to_vec(),
            _ => random_bytes(rng, 20)
                .into_iter()
                .map(|b| b.max(0x80))
                .collect(),
        };
        header("Authorization", &v);
    }
    for _ in 0..rng.usize(0..4) {
        // Non-UTF-8 (obs-text) values are legal on the wire.
        let v: Vec<u8> = (0..rng.usize(0..64))
            .map(|_| match rng.u8(0..3) {
                0 => rng.u8(0x80..=0xff),
                _ => rng.u8(0x21..0x7f),
            })
            .collect();
        header(&format!("X-{}", random_token(rng, 12)), &v);
    }
    let body_len = if rng.u8(0..10) == 0 {
        rng.usize(0..65_536)
    } else {
        rng.usize(0..256)
    };
    let body = random_bytes(rng, body_len);
    match rng.u8(0..4) {
        // Content-Length larger than the body: the server must not wait for the rest
        // before answering a request whose handler reads no body.
        0 => header(
            "Content-Length",
            (body.len() + rng.usize(1..1_000_000))
                .to_string()
                .as_bytes(),
        ),
        1 => header("Transfer-Encoding", b"chunked"),
        _ => header("Content-Length", body.len().to_string().as_bytes()),
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(&body);
    req
}

fn malformed_request(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(0..8) {
        0 => {
            let n = rng.usize(1..2_000);
            random_bytes(rng, n)
        }
        1 => b"GET\r\n\r\n".to_vec(),
        2 => b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        3 => format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(200_000)).into_bytes(),
        4 => b"GET / HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
        5 => {
            let mut r = b"GET /metrics HTTP/1.1\r\n".to_vec();
            for i in 0..300 {
                r.extend_from_slice(format!("X-H{i}: {}\r\n", "v".repeat(500)).as_bytes());
            }
            r.extend_from_slice(b"\r\n");
            r
        }
        6 => b"GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        _ => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
    }
}

/// Read until a response head arrives, the server closes, or `wait` passes.
async fn read_status(stream: &mut TcpStream, wait: Duration) -> Option<u16> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if got.windows(4).any(|w| w == b"\r\n\r\n") || got.len() > 64 * 1024 {
            break;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
}

/// One hostile exchange; returns the kind and the status answered (if any).
async fn one(addr: &str, seed: u64) -> (Kind, Option<u16>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let kind = match rng.u8(0..100) {
        0..70 => Kind::Valid,
        70..85 => Kind::Malformed,
        85..92 => Kind::Slow,
        _ => Kind::Abrupt,
    };
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return (kind, None);
    };
    match kind {
        Kind::Valid | Kind::Malformed => {
            let req = if kind == Kind::Valid {
                valid_request(&mut rng)
            } else {
                malformed_request(&mut rng)
            };
            // The server may answer and close before reading everything we send.
            let _ = stream.write_all(&req).await;
            (
                kind,
                read_status(&mut stream, Duration::from_secs(10)).await,
            )
        }
        Kind::Slow => {
            let req = valid_request(&mut rng);
            let cut = rng.usize(1..req.len().min(200));
            let _ = stream.write_all(&req[..cut]).await;
            tokio::time::sleep(Duration::from_millis(rng.u64(0..300))).await;
            (kind, None)
        }
        Kind::Abrupt => {
            let req = valid_request(&mut rng);
            let cut = rng.usize(0..=req.len());
            let _ = stream.write_all(&req[..cut]).await;
            (kind, None)
        }
    }
}

async fn storm(addr: &str, seed: u64, n: usize) -> BTreeMap<(Kind, Option<u16>), usize> {
    let workers = (0..WORKERS).map(|w| {
        let addr = addr.to_string();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in (w..n).step_by(WORKERS) {
                seen.push(one(&addr, seed.wrapping_add(i as u64)).await);
            }
            seen
        })
    });
    let mut counts = BTreeMap::new();
    for w in futures_util::future::join_all(workers).await {
        for key in w.unwrap_or_default() {
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}

/// Best and median of a few timed `/metrics` scrapes on one keep-alive client.
async fn metrics_latency(exporter: &Exporter) -> (Duration, Duration) {
    let c = client();
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let ok = c
            .get(exporter.url("/metrics"))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200);
        times.push(started.elapsed());
        assert!(ok, "/metrics answers after the storm");
    }
    times.sort();
    (times[0], times[times.len() / 2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_hostile_requests_leave_the_exporter_fast_small_and_unpanicked() -> TestResult
{
    let seed: u64 = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("hostile client seed: {seed} (replay with HOSTILE_SEED={seed})");
    let (_sim, exporter) = Harness::builder()
        .tenant(AK, SK, &[(Dataset::AlibabaResourceDirectory, 50)])
        .alibaba("corp", AK, SK, "resource_directory")
        .extra_args(&[
            "--log.level",
            "info",
            "--web.enable-lifecycle",
            "--web.enable-live-lookup",
            "--web.read-header-timeout",
            "1s",
        ])
        .start()
        .await;
    exporter.scrape().await;
    // Warm-up: the allocator's arenas and the runtime's threads reach their working
    // size; growth is measured from here.
    storm(&exporter.addr, seed.wrapping_add(1 << 40), 300).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let rss_before = exporter.rss_kib().ok_or("read VmRSS")?;

    let started = Instant::now();
    let counts = storm(&exporter.addr, seed, REQUESTS).await;
    let took = started.elapsed();
    // Let slow connections hit the header timeout and be dropped.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let rss_after = exporter.rss_kib().ok_or("read VmRSS")?;
    let (best, median) = metrics_latency(&exporter).await;
    let grew_kib = rss_after.saturating_sub(rss_before);
    println!(
        "{REQUESTS} hostile requests in {:.1}s: {counts:?}",
        took.as_secs_f64()
    );
    println!(
        "after: /metrics best {:.1} ms, median {:.1} ms; RSS {rss_before} KiB -> {rss_after} KiB (+{grew_kib} KiB)",
        best.as_secs_f64() * 1000.0,
        median.as_secs_f64() * 1000.0
    );

    let log = exporter.log();
    assert!(
        !log.contains("panicked"),
        "the exporter panicked (seed {seed}):\n{log}"
    );
    let unanswered = counts
        .iter()
        .filter(|((k, s), _)| *k == Kind::Valid && s.is_none())
        .map(|(_, n)| n)
        .sum::<usize>();
    assert_eq!(
        unanswered, 0,
        "valid requests without an answer (seed {seed}): {counts:?}"
    );
    let server_errors: Vec<_> = counts
        .iter()
        .filter(|((_, s), _)| s.is_some_and(|s| s >= 500 && s != 503))
        .collect();
    assert!(
        server_errors.is_empty(),
        "5xx answers (seed {seed}): {server_errors:?}"
    );
    assert!(
        best < Duration::from_millis(50),
        "/metrics took {best:?} at best"
    );
    assert!(
        grew_kib < 10 * 1024,
        "RSS grew by {grew_kib} KiB (seed {seed})"
    );
    Ok(())
}
