//! Issue 9, the server side: the live lookup behind a flag and its limits, the
//! lifecycle flag, the connection cap, slow and idle connections, and SIGTERM while
//! a cloud API hangs.

use crate::harness::*;
use handshake_exporter::sim::{Dataset, Fault, FaultKind};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AK: &str = "LTAIhardening0000001";
const SK: &str = "hardening-secret-Lp0oK9";
const GET: &str = "GetHandshake";
const LIST: &str = "ListHandshakesForResourceDirectory";

fn one_source(url: &str, extra: &str) -> String {
    let src = alibaba_source("corp", url, AK, SK, "resource_directory");
    format!("sources:\n{src}{extra}")
}

/// The tenant with `n` invitations and its one source `corp`.
fn corp(n: usize) -> HarnessBuilder {
    Harness::builder()
        .tenant(AK, SK, &[(Dataset::AlibabaResourceDirectory, n)])
        .alibaba("corp", AK, SK, "resource_directory")
}

/// 200 lookups at once; returns (answers by status, seconds from first to last).
async fn lookups(
    exporter: &Exporter,
    ids: &[String],
) -> (std::collections::BTreeMap<u16, usize>, f64) {
    let c = client();
    let started = Instant::now();
    let calls = (0..200).map(|i| {
        let url = exporter.url(&format!(
            "/api/v1/sources/corp/handshakes/{}",
            ids[i % ids.len()]
        ));
        let c = c.clone();
        async move {
            match c.get(url).send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            }
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut by = std::collections::BTreeMap::new();
    for s in statuses {
        *by.entry(s).or_insert(0) += 1;
    }
    (by, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_live_lookups_spend_at_most_the_rate_limit_and_none_when_off() -> TestResult {
    let sim = start_sim().await;
    tenant(&sim.sim, AK, SK, &[(Dataset::AlibabaResourceDirectory, 20)]);
    let ids: Vec<String> = sim
        .sim
        .dataset(AK, Dataset::AlibabaResourceDirectory)
        .iter()
        .map(|h| h.id.clone())
        .collect();
    let rate = 5.0;
    let cfg = one_source(&sim.url(), &format!("    rate_limit: {rate}\n"));

    // Off (the default): no cloud call whatever is asked.
    let off = Exporter::start(&cfg, &[]);
    off.scrape().await;
    sim.sim.reset_calls(AK);
    let (by, _) = lookups(&off, &ids).await;
    assert_eq!(by.get(&403), Some(&200), "{by:?}");
    let (status, body) =
        get(&off.url(&format!("/api/v1/sources/corp/handshakes/{}", ids[0]))).await;
    assert_eq!(status, 403);
    assert!(body.contains("--web.enable-live-lookup"), "{body}");
    assert_eq!(sim.sim.call_count(AK, GET), 0, "flag off: no cloud call");
    drop(off);

    // On: known ids only, paced by the source's rate_limit, 4 in flight at most.
    let on = Exporter::start(&cfg, &["--web.enable-live-lookup"]);
    on.scrape().await;
    sim.sim.reset_calls(AK);
    let (status, body) = get(&on.url("/api/v1/sources/corp/handshakes/h-madeup00000000")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"), "{body}");
    assert_eq!(sim.sim.call_count(AK, GET), 0, "made-up id: no cloud call");

    let (by, elapsed) = lookups(&on, &ids).await;
    let calls = sim.sim.call_count(AK, GET);
    // The limiter's first slot is immediate, then one per 1/rate seconds.
    let allowed = (rate * elapsed).floor() as u64 + 1;
    println!(
        "200 live lookups in {elapsed:.2}s: answers {by:?}, {calls} GetHandshake calls (rate_limit {rate}/s allows {allowed})"
    );
    assert!(calls >= 1, "some lookups were answered live: {by:?}");
    assert!(
        calls <= allowed,
        "{calls} calls in {elapsed:.2}s at {rate}/s"
    );
    assert!(
        by.get(&429).copied().unwrap_or(0) > 0,
        "concurrency cap: {by:?}"
    );
    assert_eq!(
        by.keys().filter(|s| ![200, 429, 504].contains(*s)).count(),
        0,
        "only 200, 429 and 504 (rate-limit slot past the deadline): {by:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_endpoint_needs_the_lifecycle_flag() -> TestResult {
    let (_sim, exporter) = corp(2).start().await;
    let r = client().post(exporter.url("/-/reload")).send().await?;
    assert_eq!(r.status().as_u16(), 403);
    let body = r.text().await?;
    assert!(body.contains("--web.enable-lifecycle"), "{body}");
    assert!(!exporter.log().contains("configuration reloaded"));
    Ok(())
}

/// Send a request on a fresh connection and read until the server closes it or
/// `wait` passes; returns what was read.
async fn read_for(stream: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_a_slot_frees() -> TestResult {
    let (_sim, exporter) = corp(2)
        .extra_args(&["--web.max-connections", "2"])
        .start()
        .await;
    let idle1 = TcpStream::connect(&exporter.addr).await?;
    let _idle2 = TcpStream::connect(&exporter.addr).await?;
    let mut third = TcpStream::connect(&exporter.addr).await?;
    third
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    // A negative check: on a slow machine it can only pass more easily.
    let (got, _) = read_for(&mut third, Duration::from_millis(700)).await;
    assert!(
        got.is_empty(),
        "answered over the cap: {}",
        String::from_utf8_lossy(&got)
    );
    drop(idle1);
    let (got, _) = read_for(&mut third, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_connections_are_closed() -> TestResult {
    let (_sim, exporter) = corp(2)
        .extra_args(&["--web.read-header-timeout", "1s"])
        .start()
        .await;
    // Slowloris: headers trickle in, a byte every 200 ms, never finishing.
    let mut slow = TcpStream::connect(&exporter.addr).await?;
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let started = Instant::now();
    let mut closed = false;
    for _ in 0..50 {
        if slow.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let (_, eof) = read_for(&mut slow, Duration::from_millis(200)).await;
        if eof {
            closed = true;
            break;
        }
    }
    let slow_secs = started.elapsed().as_secs_f64();
    assert!(closed, "a trickling request was not dropped within 10 s");

    // Silent: connects and sends nothing.
    let mut silent = TcpStream::connect(&exporter.addr).await?;
    let (_, eof) = read_for(&mut silent, Duration::from_secs(10)).await;
    assert!(eof, "a silent connection stayed open 10 s");

    // Idle keep-alive: one request, then nothing.
    let mut idle = TcpStream::connect(&exporter.addr).await?;
    idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let started = Instant::now();
    let (got, eof) = read_for(&mut idle, Duration::from_secs(10)).await;
    let idle_secs = started.elapsed().as_secs_f64();
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(eof, "an idle keep-alive connection stayed open 10 s");
    println!(
        "slowloris connection dropped after {slow_secs:.2}s, idle keep-alive closed after {idle_secs:.2}s"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_a_scrape_waiting_on_a_hung_api_and_exits_at_once() -> TestResult {
    let (sim, exporter) = corp(2)
        .sim(|sim| {
            sim.add_fault(
                AK,
                Fault {
                    kind: FaultKind::Hang { ms: 60_000 },
                    action: Some(LIST.into()),
                    times: None,
                },
            );
        })
        .start()
        .await;
    let url = exporter.url("/metrics");
    let scrape = tokio::spawn(async move {
        client()
            .get(url)
            .header("X-Prometheus-Scrape-Timeout-Seconds", "25")
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    });
    assert!(
        eventually(Duration::from_secs(10), || async {
            sim.sim.call_count(AK, LIST) >= 1
        })
        .await,
        "the refresh reached the hung API"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!scrape.is_finished(), "the scrape waits on the refresh");
    let (code, took) = tokio::task::spawn_blocking(move || exporter.stop_timed("TERM")).await?;
    let answered = tokio::time::timeout(Duration::from_secs(5), scrape).await;
    println!(
        "SIGTERM to exit with a scrape waiting on a hung API: {:.0} ms",
        took.as_secs_f64() * 1000.0
    );
    assert_eq!(code, Some(0));
    assert!(
        matches!(answered, Ok(Ok(Ok(200)))),
        "the waiting scrape was answered: {answered:?}"
    );
    // The issue asks for under 1 s; the bound leaves room for a loaded 2-core box.
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    Ok(())
}
