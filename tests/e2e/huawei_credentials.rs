//! The real binary with Huawei `type: federated` credentials against the simulated
//! IAM: rotation with no failed refresh, the expiry metric, an IAM outage past
//! expiry (reason="credentials", last data kept), and no secret in the log, the
//! metrics, the landing page or the JSON API.

use crate::harness::*;
use handshake_exporter::sim::Dataset;
use std::time::Duration;

const AK: &str = "HWE2EAGENCYTENANT001";
const SK: &str = "hwE2eAgencyTenantSecret000000000000001";
const IDP: &str = "cce-e2e-idp";
const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.e2e-id-token.c2lnbmF0dXJl";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_credentials_rotate_fail_only_after_expiry_and_never_leak() -> TestResult {
    let lifetime = Duration::from_secs(3);
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, ID_TOKEN)?;
    let token_path = token_file.display().to_string();
    let (sim, exporter) = Harness::builder()
        .tenant(AK, SK, &[(Dataset::HuaweiSent, 3)])
        .sim(move |sim| {
            sim.set_credential_lifetime(lifetime);
            sim.with_huawei_identity(|s| {
                s.add_id_token(IDP, ID_TOKEN, AK);
                s.domains
                    .insert(AK.into(), "e2edomain0000000000000000000001".into());
            });
        })
        .top("refresh_interval: 1s\nrefresh_timeout: 4s\n")
        .source_yaml(move |sim| {
            format!(
                "  - name: hw\n    provider: huawei\n    endpoint: {url}\n    credentials:\n      type: federated\n      idp_id: {IDP}\n      id_token_file: {token_path}\n      iam_endpoint: {url}\n",
                url = sim.url()
            )
        })
        .start()
        .await;

    // Three lifetimes of scrapes (each can trigger a refresh): no failure at all.
    let started = std::time::Instant::now();
    let mut last = String::new();
    while started.elapsed() < lifetime * 3 {
        last = exporter.scrape().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let all_failures = sum(
        &last,
        "handshake_source_refresh_failures_total",
        &[("source", "hw")],
    );
    assert_eq!(all_failures, 0.0, "{last}");
    assert_eq!(invitations(&last, "hw"), 3.0, "{last}");
    let expiry = value(
        &last,
        "handshake_source_credentials_expiry_timestamp_seconds",
        &[("provider", "huawei"), ("source", "hw")],
    )
    .ok_or("expiry metric")?;
    assert!(expiry > chrono::Utc::now().timestamp() as f64 - 1.0);
    let issued = sim
        .sim
        .with_huawei_identity(|s| s.call_count("CreateTemporaryAccessKey"));
    assert!(issued >= 3, "rotated: {issued}");
    assert!(issued <= 2 * 4 + 1, "bounded: {issued}");

    // IAM goes down: once the keys lapse, reason="credentials" and the last data stays.
    sim.sim.with_huawei_identity(|s| s.outage = true);
    let mut text = String::new();
    let until = std::time::Instant::now() + lifetime * 3;
    let mut failed = false;
    while !failed && std::time::Instant::now() < until {
        text = exporter.scrape().await;
        failed = refresh_failures(&text, "hw", "credentials") > 0.0;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(failed, "{text}");
    assert_eq!(refresh_failures(&text, "hw", "auth"), 0.0, "{text}");
    assert_eq!(invitations(&text, "hw"), 3.0, "last data kept: {text}");

    // Nothing the identity services handed out shows anywhere.
    let (_, landing) = get(&exporter.url("/")).await;
    let (_, json) = get(&exporter.url("/api/v1/handshakes")).await;
    let everything = format!("{}\n{text}\n{landing}\n{json}", exporter.log());
    let secrets = sim.sim.with_huawei_identity(|s| s.secrets());
    assert!(secrets.len() > 4);
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "a secret leaked");
    }
    Ok(())
}
