//! Exporter core (Alibaba source, TTL cache, /metrics, JSON API, config errors).

use crate::harness::*;
use handshake_exporter::sim::{Dataset, Fault, FaultKind};
use std::time::Duration;

const AK: &str = "LTAIcoreTest000000001";
const SK: &str = "core-test-secret-value";
const RD: &str = "ListHandshakesForResourceDirectory";

/// One tenant with `n` Resource Directory invitations and its source `corp-rd`,
/// under `top` (`refresh_interval: …` and any other top-level lines).
fn corp_rd(n: usize, top: &str) -> HarnessBuilder {
    Harness::builder()
        .tenant(AK, SK, &[(Dataset::AlibabaResourceDirectory, n)])
        .top(top)
        .alibaba("corp-rd", AK, SK, "resource_directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_pages_arrive_complete_and_the_ttl_holds() -> TestResult {
    let (sim, exporter) = corp_rd(250, "refresh_interval: 60s\nper_invitation: all\n")
        .start()
        .await;

    let text = exporter.scrape().await;
    assert_eq!(
        sum(&text, "handshake_invitations", &[("source", "corp-rd")]),
        250.0,
        "{text}"
    );
    assert_eq!(
        sim.sim.call_count(AK, RD),
        3,
        "250 invitations at PageSize 100 take 3 calls"
    );
    assert_eq!(
        value(&text, "handshake_source_up", &[("source", "corp-rd")]),
        Some(1.0)
    );
    let ids = samples(&text, "handshake_info", &[("source", "corp-rd")]).len();
    assert_eq!(
        ids, 250,
        "every invitation has its info series with per_invitation: all"
    );
    // Every generated id appears exactly once.
    for h in sim.sim.dataset(AK, Dataset::AlibabaResourceDirectory) {
        assert_eq!(
            samples(&text, "handshake_info", &[("handshake_id", &h.id)]).len(),
            1,
            "{}",
            h.id
        );
    }

    // A second scrape inside the TTL makes no API call.
    let again = exporter.scrape().await;
    assert_eq!(sim.sim.call_count(AK, RD), 3);
    assert_eq!(sum(&again, "handshake_invitations", &[]), 250.0);
    assert_eq!(
        value(
            &again,
            "handshake_source_refreshes_total",
            &[("source", "corp-rd")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &again,
            "handshake_api_requests_total",
            &[("action", RD), ("code", "200")]
        ),
        Some(3.0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_scrapes_of_a_cold_exporter_cause_one_refresh() -> TestResult {
    let (sim, exporter) = corp_rd(250, "refresh_interval: 60s\n")
        // Slow answers widen the window in which scrapes pile up.
        .sim(|s| s.set_latency(Duration::from_millis(200)))
        .start()
        .await;
    let url = exporter.url("/metrics");
    let scrapes: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(&url).await })
        })
        .collect();
    for s in scrapes {
        let (status, body) = s.await?;
        assert_eq!(status, 200);
        assert_eq!(
            sum(&body, "handshake_invitations", &[]),
            250.0,
            "every scrape waited for the one refresh"
        );
    }
    assert_eq!(sim.sim.call_count(AK, RD), 3, "one refresh = 3 list calls");
    let text = exporter.scrape().await;
    assert_eq!(
        value(
            &text,
            "handshake_source_refreshes_total",
            &[("source", "corp-rd")]
        ),
        Some(1.0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_invitations_vanish_and_failures_keep_the_last_data() -> TestResult {
    let (sim, exporter) = corp_rd(120, "refresh_interval: 1s\nper_invitation: all\n")
        .start()
        .await;
    let text = exporter.scrape().await;
    let victim = sim.sim.dataset(AK, Dataset::AlibabaResourceDirectory)[7]
        .id
        .clone();
    assert_eq!(
        samples(&text, "handshake_info", &[("handshake_id", &victim)]).len(),
        1
    );

    assert!(sim.sim.delete_handshake(AK, &victim));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let text = exporter.scrape().await;
    assert!(
        samples(&text, "handshake_info", &[("handshake_id", &victim)]).is_empty(),
        "deleted invitation still exported"
    );
    assert_eq!(sum(&text, "handshake_invitations", &[]), 119.0);

    // The API now fails on every call: the last good data stays, the source is down.
    sim.sim.add_fault(
        AK,
        Fault {
            kind: FaultKind::ServerError,
            action: None,
            times: None,
        },
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let text = exporter.scrape().await;
    assert_eq!(
        value(&text, "handshake_source_up", &[("source", "corp-rd")]),
        Some(0.0)
    );
    assert_eq!(
        sum(&text, "handshake_invitations", &[]),
        119.0,
        "last good data kept"
    );
    assert!(
        value(
            &text,
            "handshake_source_refresh_failures_total",
            &[("source", "corp-rd"), ("reason", "server")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    let last_success = value(
        &text,
        "handshake_source_last_success_timestamp_seconds",
        &[("source", "corp-rd")],
    );
    assert!(last_success.is_some());
    assert!(
        exporter.log().contains("reason=server"),
        "a failure is logged with its reason"
    );

    // Recovery.
    sim.sim.clear_faults(AK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let text = exporter.scrape().await;
    assert_eq!(
        value(&text, "handshake_source_up", &[("source", "corp-rd")]),
        Some(1.0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposition_passes_promtool_and_json_api_lists_invitations() -> TestResult {
    let (sim, exporter) = Harness::builder()
        .tenant(
            AK,
            SK,
            &[
                (Dataset::AlibabaResourceDirectory, 60),
                (Dataset::AlibabaAccount, 10),
            ],
        )
        .alibaba("corp-rd", AK, SK, "resource_directory")
        .source_yaml(|sim| {
            alibaba_source("corp-account", &sim.url(), AK, SK, "account")
                .replace("    credentials:", "    signature: v1\n    credentials:")
        })
        .extra_args(&["--web.enable-live-lookup"])
        .start()
        .await;
    let text = exporter.scrape().await;
    assert_eq!(
        sum(
            &text,
            "handshake_invitations",
            &[("source", "corp-account")]
        ),
        10.0
    );
    assert_eq!(
        sum(&text, "handshake_invitations", &[("source", "corp-rd")]),
        60.0
    );
    assert!(text.contains("# TYPE handshake_exporter_build_info gauge"));
    assert!(text.contains("process_resident_memory_bytes"));
    if let Some(complaints) = promtool_check(&text) {
        assert_eq!(complaints, "", "promtool check metrics");
    }
    // No email address leaks into labels by default.
    assert!(
        !text.contains("ops-admin@"),
        "management account email must be masked"
    );
    for line in text.lines().filter(|l| l.contains("target=\"")) {
        let target = line.split("target=\"").nth(1).unwrap_or("");
        assert!(
            target.starts_with('"') || target.contains("***"),
            "unmasked target: {line}"
        );
    }

    let (status, body) = get(&exporter.url("/api/v1/handshakes")).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let items = v["handshakes"].as_array().ok_or("handshakes array")?;
    assert_eq!(items.len(), 70);
    for item in items {
        for key in ["source", "provider", "id", "status", "target_type"] {
            assert!(item[key].is_string(), "{key} in {item}");
        }
        assert!(item["expires_at"].is_string() || item["expires_at"].is_null());
        if let Some(t) = item["expires_at"].as_str() {
            assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
        }
    }

    // Live GetHandshake through the source's credentials, for an id it has cached.
    let id = sim.sim.dataset(AK, Dataset::AlibabaResourceDirectory)[0]
        .id
        .clone();
    let (status, body) =
        get(&exporter.url(&format!("/api/v1/sources/corp-rd/handshakes/{id}"))).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(v["handshake"]["id"], id);
    let (status, body) =
        get(&exporter.url("/api/v1/sources/corp-rd/handshakes/h-doesnotexist0000")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"), "{body}");
    let (status, _) = get(&exporter.url("/api/v1/sources/nope/handshakes/h-1")).await;
    assert_eq!(status, 404);

    // Landing page, health, readiness.
    let (status, body) = get(&exporter.url("/")).await;
    assert_eq!(status, 200);
    assert!(body.contains("corp-account") && body.contains("/metrics"));
    let doc = scraper::Html::parse_document(&body);
    let creds = scraper::Selector::parse("table.sources td.creds").expect("selector");
    let kinds: Vec<String> = doc
        .select(&creds)
        .map(|td| td.text().collect::<String>())
        .collect();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| k == "access_key"),
        "the landing page shows each source's credential type: {kinds:?}"
    );
    assert_eq!(get(&exporter.url("/-/healthy")).await.0, 200);
    assert_eq!(get(&exporter.url("/-/ready")).await.0, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_exits_non_zero_naming_the_line() -> TestResult {
    let bad = "refresh_interval: 60s\nsources:\n  - name: ok\n    provider: alibaba\n    view: sideways\n";
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config.yml");
    std::fs::write(&path, bad)?;
    for extra in [vec!["--config.check"], vec![]] {
        let out = std::process::Command::new(BIN)
            .arg("--config.file")
            .arg(&path)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .args(&extra)
            .output()?;
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("config.yml:5") && stderr.contains("sources[0].view"),
            "{extra:?}: {stderr}"
        );
    }
    std::fs::write(
        &path,
        "sources:\n  - name: ok\n    provider: alibaba\n    credentials: {access_key_id: a, access_key_secret: b}\n",
    )?;
    let out = std::process::Command::new(BIN)
        .arg("--config.file")
        .arg(&path)
        .arg("--config.check")
        .output()?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The demo's sources: two views of each cloud.
const DEMO_SOURCES: [&str; 6] = [
    "alibaba-rd",
    "alibaba-account",
    "huawei-sent",
    "huawei-received",
    "aws-organization",
    "aws-account",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_two_views_of_each_of_the_three_clouds() -> TestResult {
    let exporter = Exporter::start_args(&["--demo", "--web.enable-live-lookup"]);
    let text = exporter.scrape().await;
    for source in DEMO_SOURCES {
        assert_eq!(
            value(&text, "handshake_source_up", &[("source", source)]),
            Some(1.0),
            "{source} up in demo: {}",
            exporter.log()
        );
        assert!(
            sum(&text, "handshake_invitations", &[("source", source)]) > 0.0,
            "{source}"
        );
    }
    // alibaba-account and aws-account get temporary keys through the simulated STS,
    // and show when they expire.
    for source in ["alibaba-account", "aws-account"] {
        assert_eq!(
            value(
                &text,
                "handshake_api_requests_total",
                &[
                    ("source", source),
                    ("action", "AssumeRole"),
                    ("code", "200")
                ]
            ),
            Some(1.0),
            "{source}"
        );
        assert!(
            value(
                &text,
                "handshake_source_credentials_expiry_timestamp_seconds",
                &[("source", source)]
            )
            .is_some_and(|t| t > 1e9),
            "{source}"
        );
    }
    // AWS handshakes carry their action: every tenth generated one enables all features.
    assert!(
        text.lines()
            .any(|l| l.starts_with("handshake_info{provider=\"aws\"")
                && l.contains("action=\"enable_all_features\"")),
        "no AWS handshake with action enable_all_features"
    );
    // The simulator pins one pending invitation per dataset 5 hours from expiry, so
    // each source has at least one in the 1d window.
    for source in DEMO_SOURCES {
        let within_1d = sum(
            &text,
            "handshake_pending_expiring",
            &[("source", source), ("within", "1d")],
        );
        assert!(within_1d >= 1.0, "{source}: {within_1d} pending within 1d");
    }
    if let Some(complaints) = promtool_check(&text) {
        assert_eq!(complaints, "", "promtool check metrics");
    }
    // Live ShowHandshake through a Huawei source.
    let id = text
        .lines()
        .find(|l| l.starts_with("handshake_info{") && l.contains("source=\"huawei-sent\""))
        .and_then(|l| l.split("handshake_id=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .ok_or("a pending huawei invitation")?
        .to_string();
    let (status, body) =
        get(&exporter.url(&format!("/api/v1/sources/huawei-sent/handshakes/{id}"))).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(v["handshake"]["provider"], "huawei");
    assert_eq!(v["handshake"]["id"], id.as_str());
    assert_eq!(
        exporter.terminate(),
        Some(0),
        "SIGTERM stops the exporter cleanly"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_telemetry_path_and_sigint() -> TestResult {
    let exporter = Exporter::start_args(&["--demo", "--web.telemetry-path", "/custom-metrics"]);
    let (status, body) = get(&exporter.url("/custom-metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("handshake_source_up{"), "{body}");
    assert_eq!(get(&exporter.url("/metrics")).await.0, 404);
    let (_, landing) = get(&exporter.url("/")).await;
    assert!(
        landing.contains("href=\"/custom-metrics\""),
        "landing page links the path"
    );
    assert_eq!(
        exporter.stop_with("INT"),
        Some(0),
        "SIGINT stops the exporter cleanly"
    );
    Ok(())
}
