//! Reliability and security: faults per provider, deadlines, reload, TLS and basic
//! auth, secrets never written anywhere.

use crate::harness::*;
use handshake_exporter::sim::{Dataset, Fault, FaultKind, Tenant};
use std::time::{Duration, Instant};

const ALI_AK: &str = "LTAIreliability000001";
const ALI_SK: &str = "ali-secret-Zq8vT3kP0wX7";
const HW_AK: &str = "HWRELIABILITY0000001";
const HW_SK: &str = "hw-secret-Mn4bV9cR2yL6";
const BY_AK: &str = "LTAIbystander00000001";
const BY_SK: &str = "bystander-secret-Q1w2E3";
const TOKEN: &str = "sts-token-Kj7Hg5Fd3Sa1";

struct Fixture {
    sim: handshake_exporter::sim::SimServer,
    exporter: Exporter,
}

async fn fixture(extra_config: &str) -> Fixture {
    let with_request_timeout = |block: String| {
        block.replace(
            "    credentials:",
            "    request_timeout: 700ms\n    credentials:",
        )
    };
    let (sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 150)])
        .tenant(HW_AK, HW_SK, &[(Dataset::HuaweiSent, 120)])
        .tenant(BY_AK, BY_SK, &[(Dataset::AlibabaResourceDirectory, 30)])
        .top(&format!(
            "refresh_interval: 1s\nrefresh_timeout: 4s\n{extra_config}"
        ))
        .source_yaml(move |sim| {
            with_request_timeout(alibaba_source(
                "ali",
                &sim.url(),
                ALI_AK,
                ALI_SK,
                "resource_directory",
            ))
        })
        .source_yaml(move |sim| {
            with_request_timeout(huawei_source("hw", &sim.url(), HW_AK, HW_SK, "sent"))
        })
        .alibaba("bystander", BY_AK, BY_SK, "resource_directory")
        .start()
        .await;
    Fixture { sim, exporter }
}

async fn scrape_with_timeout(exporter: &Exporter, timeout_s: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let r = client()
        .get(exporter.url("/metrics"))
        .header("X-Prometheus-Scrape-Timeout-Seconds", timeout_s)
        .send()
        .await;
    match r {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default(), started.elapsed())
        }
        Err(e) => (0, e.to_string(), started.elapsed()),
    }
}

/// For every fault of both providers: the right reason, last good data kept,
/// /metrics 200, the other sources unaffected, retries counted and bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_of_both_providers_is_contained() -> TestResult {
    let f = fixture("").await;
    let first = f.exporter.scrape().await;
    for s in ["ali", "hw", "bystander"] {
        assert_eq!(
            value(&first, "handshake_source_up", &[("source", s)]),
            Some(1.0),
            "{s}: {}",
            f.exporter.log()
        );
    }
    let cases: Vec<(FaultKind, &str)> = vec![
        (
            FaultKind::Throttle {
                retry_after_ms: None,
            },
            "throttled",
        ),
        (FaultKind::ServerError, "server"),
        (FaultKind::Hang { ms: 3_000 }, "timeout"),
        (FaultKind::Malformed, "bad_response"),
        (FaultKind::Truncated, "bad_response"),
        (FaultKind::WrongShape, "bad_response"),
        (FaultKind::AuthFailure, "auth"),
        (FaultKind::Lie, "bad_response"),
    ];
    for (source, ak, expected_total) in [("ali", ALI_AK, 150.0), ("hw", HW_AK, 120.0)] {
        for (kind, reason) in &cases {
            let before = f.exporter.scrape().await;
            let failures_before = value(
                &before,
                "handshake_source_refresh_failures_total",
                &[("source", source), ("reason", reason)],
            )
            .unwrap_or(0.0);
            let retries_before = sum(
                &before,
                "handshake_api_retries_total",
                &[("source", source)],
            );
            f.sim.sim.clear_faults(ak);
            f.sim.sim.add_fault(
                ak,
                Fault {
                    kind: kind.clone(),
                    action: None,
                    times: None,
                },
            );
            tokio::time::sleep(Duration::from_millis(1050)).await;
            let (status, text, took) = scrape_with_timeout(&f.exporter, "3").await;
            assert_eq!(status, 200, "{source} {kind:?}: /metrics must answer");
            assert!(
                took < Duration::from_millis(3_500),
                "{source} {kind:?}: scrape held {took:?}"
            );
            // A hang may outlive the scrape: the refresh finishes in the background.
            let text = if matches!(kind, FaultKind::Hang { .. }) {
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                let (_, t, _) = scrape_with_timeout(&f.exporter, "3").await;
                t
            } else {
                text
            };
            let failures = value(
                &text,
                "handshake_source_refresh_failures_total",
                &[("source", source), ("reason", reason)],
            )
            .unwrap_or(0.0);
            assert!(
                failures > failures_before,
                "{source} {kind:?}: expected reason={reason}\n{}",
                f.exporter.log()
            );
            assert_eq!(
                value(&text, "handshake_source_up", &[("source", source)]),
                Some(0.0),
                "{source} {kind:?}"
            );
            assert_eq!(
                sum(&text, "handshake_invitations", &[("source", source)]),
                expected_total,
                "{source} {kind:?}: last good data kept"
            );
            assert_eq!(
                value(&text, "handshake_source_up", &[("source", "bystander")]),
                Some(1.0),
                "{source} {kind:?}: bystander affected"
            );
            let other = if source == "ali" { "hw" } else { "ali" };
            let other_up = value(&text, "handshake_source_up", &[("source", other)]);
            assert!(other_up.is_some(), "{other} still reported");
            let retries = sum(&text, "handshake_api_retries_total", &[("source", source)]);
            if kind.retryable() {
                assert!(
                    retries > retries_before,
                    "{source} {kind:?}: transient errors are retried"
                );
                // Bounded: at most 3 retries per request of the refresh.
                assert!(
                    retries - retries_before <= 3.0 * 2.0,
                    "{source} {kind:?}: {retries_before} -> {retries}"
                );
            } else {
                assert_eq!(
                    retries, retries_before,
                    "{source} {kind:?}: permanent errors are not retried"
                );
            }
            f.sim.sim.clear_faults(ak);
            tokio::time::sleep(Duration::from_millis(1_050)).await;
            assert!(
                eventually(Duration::from_secs(6), || async {
                    let t = f.exporter.scrape().await;
                    value(&t, "handshake_source_up", &[("source", source)]) == Some(1.0)
                })
                .await,
                "{source} recovers after {kind:?}"
            );
        }
    }
    Ok(())
}

trait Retryable {
    fn retryable(&self) -> bool;
}

impl Retryable for FaultKind {
    fn retryable(&self) -> bool {
        matches!(
            self,
            FaultKind::Throttle { .. } | FaultKind::ServerError | FaultKind::Hang { .. }
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_request_is_retried_and_then_succeeds() -> TestResult {
    let f = fixture("").await;
    for ak in [ALI_AK, HW_AK] {
        f.sim.sim.add_fault(
            ak,
            Fault {
                kind: FaultKind::Throttle {
                    retry_after_ms: Some(300),
                },
                action: None,
                times: Some(1),
            },
        );
    }
    let text = f.exporter.scrape().await;
    for source in ["ali", "hw"] {
        assert_eq!(
            value(&text, "handshake_source_up", &[("source", source)]),
            Some(1.0),
            "{source}"
        );
        assert_eq!(
            sum(&text, "handshake_api_retries_total", &[("source", source)]),
            1.0,
            "{source}"
        );
        assert_eq!(
            sum(
                &text,
                "handshake_api_requests_total",
                &[("source", source), ("code", "429")]
            ),
            1.0,
            "{source}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_good_configs_keeps_old_on_bad_and_keeps_unchanged_caches() -> TestResult {
    let (sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 250)])
        .tenant(HW_AK, HW_SK, &[(Dataset::HuaweiSent, 40)])
        .top("refresh_interval: 10m\n")
        .alibaba("ali", ALI_AK, ALI_SK, "resource_directory")
        .extra_args(&["--web.enable-lifecycle"])
        .start()
        .await;
    // The source blocks the reloaded configurations are written from.
    let ali = alibaba_source("ali", &sim.url(), ALI_AK, ALI_SK, "resource_directory");
    let hw = huawei_source("hw", &sim.url(), HW_AK, HW_SK, "sent");
    let text = exporter.scrape().await;
    assert_eq!(
        sum(&text, "handshake_invitations", &[("source", "ali")]),
        250.0
    );
    assert_eq!(
        sim.sim
            .call_count(ALI_AK, "ListHandshakesForResourceDirectory"),
        3
    );

    // Good reload through the HTTP endpoint: a source added, the other unchanged.
    std::fs::write(
        exporter.config_path(),
        format!("refresh_interval: 10m\nsources:\n{ali}{hw}"),
    )?;
    let r = client().post(exporter.url("/-/reload")).send().await?;
    assert_eq!(r.status().as_u16(), 200);
    let text = exporter.scrape().await;
    assert_eq!(
        sum(&text, "handshake_invitations", &[("source", "hw")]),
        40.0
    );
    assert_eq!(
        sum(&text, "handshake_invitations", &[("source", "ali")]),
        250.0
    );
    assert_eq!(
        sim.sim
            .call_count(ALI_AK, "ListHandshakesForResourceDirectory"),
        3,
        "unchanged source kept its cache"
    );
    assert_eq!(
        value(&text, "handshake_config_last_reload_successful", &[]),
        Some(1.0)
    );

    // Bad reload: old configuration keeps running, the failure is visible.
    std::fs::write(
        exporter.config_path(),
        "refresh_interval: soon\nsources: []\n",
    )?;
    let r = client().post(exporter.url("/-/reload")).send().await?;
    assert_eq!(r.status().as_u16(), 500);
    let body = r.text().await?;
    assert!(body.contains("config.yml:1"), "{body}");
    let text = exporter.scrape().await;
    assert_eq!(
        value(&text, "handshake_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(
        sum(&text, "handshake_invitations", &[("source", "hw")]),
        40.0,
        "old config still served"
    );
    assert!(exporter.log().contains("reload failed"));

    // SIGHUP: remove a source; it vanishes from /metrics.
    std::fs::write(
        exporter.config_path(),
        format!("refresh_interval: 10m\nsources:\n{hw}"),
    )?;
    exporter.signal("HUP");
    assert!(
        eventually(Duration::from_secs(5), || async {
            let t = exporter.scrape().await;
            value(&t, "handshake_config_last_reload_successful", &[]) == Some(1.0)
                && value(&t, "handshake_source_up", &[("source", "ali")]).is_none()
        })
        .await,
        "SIGHUP reload: {}",
        exporter.log()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth_protect_every_endpoint() -> TestResult {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem())?;
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem())?;
    let hash = bcrypt::hash("s3cret-pass", 4)?;
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )?;
    let web_arg = web.display().to_string();
    let (_sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 5)])
        .alibaba("ali", ALI_AK, ALI_SK, "resource_directory")
        .extra_args(&["--web.config.file", &web_arg])
        .start()
        .await;
    assert!(exporter.log().contains("tls=true"));

    let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes())?;
    let tls = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()?;
    let url = format!(
        "https://localhost:{}/metrics",
        exporter.addr.rsplit(':').next().unwrap_or("0")
    );
    let r = tls.get(&url).send().await?;
    assert_eq!(r.status().as_u16(), 401, "no credentials");
    assert!(r.headers().contains_key("www-authenticate"));
    let r = tls
        .get(&url)
        .basic_auth("prometheus", Some("wrong"))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401, "wrong password");
    let r = tls
        .get(&url)
        .basic_auth("prometheus", Some("s3cret-pass"))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await?;
    assert_eq!(
        sum(&body, "handshake_invitations", &[("source", "ali")]),
        5.0
    );
    let landing = url.replace("/metrics", "/");
    assert_eq!(
        tls.get(&landing).send().await?.status().as_u16(),
        401,
        "landing page protected too"
    );
    // Plain HTTP to the TLS port does not get metrics.
    let (status, _) = get(&exporter.url("/metrics")).await;
    assert_ne!(status, 200);
    // Health and readiness stay open for Kubernetes probes (they reveal nothing).
    // Failed before: 401 (the shipped probes restarted the pod forever).
    for path in ["/-/healthy", "/-/ready"] {
        let r = tls.get(url.replace("/metrics", path)).send().await?;
        assert_eq!(r.status().as_u16(), 200, "{path} without credentials");
    }

    // SIGHUP re-reads the web config: a new certificate and a new password.
    // Failed before: the old certificate and users stayed until restart.
    let cert2 =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    std::fs::write(dir.path().join("cert.pem"), cert2.cert.pem())?;
    std::fs::write(
        dir.path().join("key.pem"),
        cert2.signing_key.serialize_pem(),
    )?;
    let hash2 = bcrypt::hash("n3w-pass", 4)?;
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: '{hash2}'\n"
        ),
    )?;
    exporter.signal("HUP");
    let tls2 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert2.cert.pem().as_bytes())?)
        .build()?;
    let reloaded = eventually(Duration::from_secs(10), || async {
        tls2.get(&url)
            .basic_auth("prometheus", Some("n3w-pass"))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;
    assert!(
        reloaded,
        "new certificate and password in force after SIGHUP"
    );
    let r = tls2
        .get(&url)
        .basic_auth("prometheus", Some("s3cret-pass"))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401, "old password refused");
    // A broken web config keeps the running one (and says so in the log).
    std::fs::write(&web, "basic_auth_users:\n  prometheus: plaintext\n")?;
    exporter.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || async {
            exporter.log().contains("web configuration reload failed")
        })
        .await
    );
    let r = tls2
        .get(&url)
        .basic_auth("prometheus", Some("n3w-pass"))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200, "running web config kept");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_web_config_is_rejected_at_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  admin: plaintext\n")?;
    let out = std::process::Command::new(BIN)
        .args([
            "--demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
        ])
        .arg(&web)
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("web.yml") && stderr.contains("bcrypt"),
        "{stderr}"
    );
    Ok(())
}

/// Everything the process wrote — trace logs, /metrics, JSON API, landing page,
/// live lookups, error answers — is searched for the configured secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_leave_the_process() -> TestResult {
    let sim = start_sim().await;
    let mut sts = Tenant::new(ALI_AK, ALI_SK);
    sts.security_token = Some(TOKEN.into());
    sts.datasets.insert(
        Dataset::AlibabaResourceDirectory,
        handshake_exporter::sim::data::generate(
            Dataset::AlibabaResourceDirectory,
            20,
            1,
            chrono::Utc::now(),
        ),
    );
    sim.sim.add_tenant(sts);
    let mut hw = Tenant::new(HW_AK, HW_SK);
    hw.security_token = Some(TOKEN.into());
    hw.datasets.insert(
        Dataset::HuaweiSent,
        handshake_exporter::sim::data::generate(Dataset::HuaweiSent, 20, 2, chrono::Utc::now()),
    );
    sim.sim.add_tenant(hw);
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("hw-sk");
    std::fs::write(&secret_file, HW_SK)?;
    let url = sim.url();
    let file = secret_file.display();
    let cfg = [
        "refresh_interval: 1s".to_string(),
        "target_label: full".into(),
        "sources:".into(),
        "  - name: ali-v3".into(),
        "    provider: alibaba".into(),
        format!("    endpoint: {url}"),
        format!("    credentials: {{access_key_id: {ALI_AK}, access_key_secret: {ALI_SK}, security_token: {TOKEN}}}"),
        "  - name: ali-v1".into(),
        "    provider: alibaba".into(),
        "    signature: v1".into(),
        format!("    endpoint: {url}"),
        format!("    credentials: {{access_key_id: {ALI_AK}, access_key_secret: {ALI_SK}, security_token: {TOKEN}}}"),
        "  - name: hw".into(),
        "    provider: huawei".into(),
        format!("    endpoint: {url}"),
        format!("    credentials: {{access_key_id: {HW_AK}, access_key_secret_file: {file}, security_token: {TOKEN}}}"),
    ]
    .join("\n");
    let exporter = Exporter::start(&cfg, &["--log.level", "trace", "--web.enable-live-lookup"]);
    let mut seen = String::new();
    seen.push_str(&exporter.scrape().await);
    // Failures too: their messages and logs must not carry secrets either.
    sim.sim.add_fault(
        ALI_AK,
        Fault {
            kind: FaultKind::AuthFailure,
            action: None,
            times: None,
        },
    );
    sim.sim.add_fault(
        HW_AK,
        Fault {
            kind: FaultKind::AuthFailure,
            action: None,
            times: None,
        },
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let text = exporter.scrape().await;
    assert!(text.contains("reason=\"auth\""));
    seen.push_str(&text);
    for path in [
        "/",
        "/api/v1/handshakes",
        "/api/v1/sources/ali-v1/handshakes/h-x",
        "/api/v1/sources/hw/handshakes/h-x",
        "/probe?source=hw",
    ] {
        seen.push_str(&get(&exporter.url(path)).await.1);
    }
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        format!(
            "sources:\n  - name: x\n    provider: alibaba\n    credentials: {{access_key_id: A, access_key_secret: {ALI_SK}, oops: 1}}\n"
        ),
    )?;
    let out = std::process::Command::new(BIN)
        .arg("--config.file")
        .arg(&bad)
        .arg("--config.check")
        .output()?;
    seen.push_str(&String::from_utf8_lossy(&out.stderr));
    seen.push_str(&exporter.log());
    assert!(
        exporter.log().contains("level=trace") || exporter.log().contains("level=debug"),
        "trace logging on"
    );
    for secret in [ALI_SK, HW_SK, TOKEN] {
        assert!(!seen.contains(secret), "secret {secret:?} leaked:\n{seen}");
    }
    Ok(())
}

/// `max_concurrent_requests` caps outbound requests across all sources, and a
/// source's `rate_limit` spaces its own requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_concurrency_is_capped_and_rate_limits_space_requests() -> TestResult {
    let mut harness = Harness::builder()
        .sim(|sim| sim.set_latency(Duration::from_millis(100)))
        .top("max_concurrent_requests: 2\n");
    for i in 0..8 {
        let ak = format!("HWCAP{i:015}");
        harness = harness
            .tenant(&ak, HW_SK, &[(Dataset::HuaweiSent, 10)])
            .huawei(&format!("hw-{i}"), &ak, HW_SK, "sent");
    }
    let (sim, exporter) = harness.start().await;
    let text = exporter.scrape().await;
    assert_eq!(
        sum(&text, "handshake_source_up", &[]),
        8.0,
        "{}",
        exporter.log()
    );
    assert_eq!(sim.sim.max_in_flight(), 2, "8 sources, cap 2");
    drop(exporter);

    // 1,000 invitations at limit 100 = 10 sequential calls, at most 5 per second.
    sim.sim.set_latency(Duration::ZERO);
    tenant(&sim.sim, HW_AK, HW_SK, &[(Dataset::HuaweiSent, 1000)]);
    let limited = huawei_source("limited", &sim.url(), HW_AK, HW_SK, "sent").replace(
        "    credentials:",
        "    limit: 100\n    rate_limit: 5\n    credentials:",
    );
    let exporter = Exporter::start(&format!("sources:\n{limited}"), &[]);
    let text = exporter.scrape().await;
    assert_eq!(
        sum(&text, "handshake_invitations", &[("source", "limited")]),
        1000.0
    );
    let took = value(
        &text,
        "handshake_source_refresh_duration_seconds",
        &[("source", "limited")],
    )
    .unwrap_or(0.0);
    assert!(
        took >= 1.75,
        "10 requests at 5/s take at least 1.8 s, took {took}"
    );
    Ok(())
}

/// `--web.max-requests` caps concurrent scrapes: the one over the cap gets 503
/// instead of queueing behind a slow refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_over_the_cap_get_503_and_json_logs_are_json() -> TestResult {
    let (_sim, exporter) = Harness::builder()
        .tenant(HW_AK, HW_SK, &[(Dataset::HuaweiSent, 10)])
        .sim(|sim| sim.set_latency(Duration::from_millis(1_500)))
        .huawei("hw", HW_AK, HW_SK, "sent")
        .extra_args(&["--web.max-requests", "1", "--log.format", "json"])
        .start()
        .await;
    let url = exporter.url("/metrics");
    let slow = tokio::spawn({
        let url = url.clone();
        async move { get(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = get(&url).await;
    assert_eq!(status, 503, "second concurrent scrape: {body}");
    let (status, body) = slow.await?;
    assert_eq!(status, 200);
    assert_eq!(
        sum(&body, "handshake_invitations", &[("source", "hw")]),
        10.0
    );
    assert_eq!(get(&url).await.0, 200, "the slot is free again");

    let log = exporter.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    Ok(())
}

/// A certificate renewed in place (cert-manager, the kubelet) is served from the next
/// TLS handshake on, without SIGHUP or a reload; a half-written pair keeps the
/// previous certificate in service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_certificate_renewed_in_place_is_served_without_a_reload() -> TestResult {
    handshake_exporter::init_crypto();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert1 = rcgen::generate_simple_self_signed(names.clone())?;
    let cert2 = rcgen::generate_simple_self_signed(names)?;
    let dir = tempfile::tempdir()?;
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert1.cert.pem())?;
    std::fs::write(&key_path, cert1.signing_key.serialize_pem())?;
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n",
    )?;
    let web_arg = web.display().to_string();
    let exporter = Exporter::start("sources: []\n", &["--web.config.file", &web_arg]);
    let trusting = |pem: String| -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?)
            .build()
    };
    let url = format!(
        "https://localhost:{}/-/healthy",
        exporter.addr.rsplit(':').next().unwrap_or("0")
    );
    let status = |client: reqwest::Client| {
        let url = url.clone();
        async move {
            client
                .get(&url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .ok()
        }
    };
    assert_eq!(status(trusting(cert1.cert.pem())?).await, Some(200));
    assert_eq!(
        status(trusting(cert2.cert.pem())?).await,
        None,
        "not yet cert2"
    );

    // Half a renewal: the new certificate without its key is refused, the old pair
    // keeps serving.
    std::fs::write(&cert_path, cert2.cert.pem())?;
    assert_eq!(status(trusting(cert1.cert.pem())?).await, Some(200));
    // The key follows: the next handshake serves the new certificate. No signal.
    std::fs::write(&key_path, cert2.signing_key.serialize_pem())?;
    let renewed = eventually(Duration::from_secs(10), || {
        let client = trusting(cert2.cert.pem());
        async move {
            match client {
                Ok(c) => status(c).await == Some(200),
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(
        renewed,
        "the renewed certificate was not served:\n{}",
        exporter.log()
    );
    assert_eq!(
        status(trusting(cert1.cert.pem())?).await,
        None,
        "old one retired"
    );
    let log = exporter.log();
    assert!(
        log.contains("does not load; serving the previous one"),
        "{log}"
    );
    assert!(log.contains("serving the new one"), "{log}");
    Ok(())
}
