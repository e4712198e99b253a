//! The fewest API calls: exact list-call counts per refresh, none inside the TTL, one
//! refresh per interval for an HA pair of scrapers, and `/probe` for one source.

use crate::harness::*;
use handshake_exporter::sim::Dataset;
use std::time::Duration;

const ALI_AK: &str = "LTAIcallsTest00000001";
const ALI_SK: &str = "calls-alibaba-secret";
const HW_AK: &str = "HWCALLSTEST000000001";
const HW_SK: &str = "calls-huawei-secret";

/// ceil(N / max page) list calls per source, for several sizes and both providers,
/// all sources refreshing in the same scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_makes_exactly_ceil_n_over_page_size_list_calls() -> TestResult {
    let sizes = [0usize, 1, 99, 100, 101, 1000, 2001, 4000];
    let mut harness = Harness::builder().top("refresh_interval: 10m\n");
    for (i, n) in sizes.iter().enumerate() {
        let ak = format!("{ALI_AK}{i}");
        let hk = format!("{HW_AK}{i}");
        harness = harness
            .tenant(&ak, ALI_SK, &[(Dataset::AlibabaResourceDirectory, *n)])
            .alibaba(&format!("ali-{n}"), &ak, ALI_SK, "resource_directory")
            .tenant(&hk, HW_SK, &[(Dataset::HuaweiSent, *n)])
            .huawei(&format!("hw-{n}"), &hk, HW_SK, "sent");
    }
    let (sim, exporter) = harness.start().await;
    let text = exporter.scrape().await;
    for (i, n) in sizes.iter().enumerate() {
        let ali_calls = sim.sim.call_count(
            &format!("{ALI_AK}{i}"),
            "ListHandshakesForResourceDirectory",
        );
        assert_eq!(ali_calls, (*n as u64).div_ceil(100).max(1), "alibaba N={n}");
        let hw_calls = sim.sim.call_count(&format!("{HW_AK}{i}"), "ListHandshakes");
        assert_eq!(hw_calls, (*n as u64).div_ceil(2000).max(1), "huawei N={n}");
        assert_eq!(
            sum(
                &text,
                "handshake_invitations",
                &[("source", &format!("ali-{n}"))]
            ),
            *n as f64
        );
        assert_eq!(
            sum(
                &text,
                "handshake_invitations",
                &[("source", &format!("hw-{n}"))]
            ),
            *n as f64
        );
    }
    // Inside the TTL: no call at all.
    let before = sim.sim.calls(&format!("{ALI_AK}5"));
    for _ in 0..5 {
        exporter.scrape().await;
    }
    assert_eq!(sim.sim.calls(&format!("{ALI_AK}5")), before);
    Ok(())
}

/// Two Prometheus servers scraping the same exporter every 100 ms for 3.5 s with a
/// 1 s refresh interval: one refresh per source per interval, not per scraper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_pair_of_scrapers_causes_one_refresh_per_interval() -> TestResult {
    let (sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 250)])
        .tenant(HW_AK, HW_SK, &[(Dataset::HuaweiSent, 300)])
        .top("refresh_interval: 1s\n")
        .alibaba("ali", ALI_AK, ALI_SK, "resource_directory")
        .huawei("hw", HW_AK, HW_SK, "sent")
        .start()
        .await;
    let url = exporter.url("/metrics");
    let started = std::time::Instant::now();
    let run = Duration::from_millis(3_500);
    let scraper = |offset_ms: u64| {
        let url = url.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(offset_ms)).await;
            let mut n = 0;
            while started.elapsed() < run {
                let (status, _) = get(&url).await;
                assert_eq!(status, 200);
                n += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            n
        })
    };
    let (a, b) = (scraper(0), scraper(37));
    let scrapes = a.await? + b.await?;
    let elapsed = started.elapsed().as_secs_f64();
    let text = exporter.scrape().await;
    for source in ["ali", "hw"] {
        let refreshes = value(
            &text,
            "handshake_source_refreshes_total",
            &[("source", source)],
        )
        .unwrap_or(0.0);
        // At most one refresh per started interval (+1 for the final scrape).
        let bound = elapsed.ceil() + 1.0;
        assert!(
            refreshes >= 3.0 && refreshes <= bound,
            "{source}: {refreshes} refreshes for {scrapes} scrapes in {elapsed:.1}s"
        );
    }
    let ali_calls = sim
        .sim
        .call_count(ALI_AK, "ListHandshakesForResourceDirectory") as f64;
    let ali_refreshes = value(
        &text,
        "handshake_source_refreshes_total",
        &[("source", "ali")],
    )
    .unwrap_or(0.0);
    assert_eq!(
        ali_calls,
        3.0 * ali_refreshes,
        "3 list calls per refresh, nothing else"
    );
    let hw_calls = sim.sim.call_count(HW_AK, "ListHandshakes") as f64;
    let hw_refreshes = value(
        &text,
        "handshake_source_refreshes_total",
        &[("source", "hw")],
    )
    .unwrap_or(0.0);
    assert_eq!(hw_calls, hw_refreshes, "1 list call per refresh");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_scrapes_one_source_only() -> TestResult {
    let (sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 40)])
        .tenant(HW_AK, HW_SK, &[(Dataset::HuaweiSent, 30)])
        .alibaba("ali", ALI_AK, ALI_SK, "resource_directory")
        .huawei("hw", HW_AK, HW_SK, "sent")
        .start()
        .await;
    let (status, text) = get(&exporter.url("/probe?source=hw")).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        sum(&text, "handshake_invitations", &[("source", "hw")]),
        30.0
    );
    assert!(
        !text.contains("source=\"ali\""),
        "probe leaks other sources:\n{text}"
    );
    assert_eq!(
        value(&text, "handshake_source_up", &[("source", "hw")]),
        Some(1.0)
    );
    assert_eq!(
        sim.sim
            .call_count(ALI_AK, "ListHandshakesForResourceDirectory"),
        0,
        "probing hw does not refresh ali"
    );
    if let Some(complaints) = promtool_check(&text) {
        assert_eq!(complaints, "");
    }
    assert_eq!(get(&exporter.url("/probe?source=nope")).await.0, 404);
    assert_eq!(get(&exporter.url("/probe")).await.0, 400);
    Ok(())
}
