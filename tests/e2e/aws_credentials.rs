//! The real binary with AWS `type: web_identity` credentials (EKS IRSA) against the
//! simulated STS: rotation with no failed refresh, the expiry metric, a token STS no
//! longer accepts (reason="credentials" once the keys lapse, last data kept), and no
//! token, secret or session token in the log, the metrics, the landing page or the
//! JSON API.

use crate::harness::*;
use handshake_exporter::sim::Dataset;
use std::time::Duration;

const AK: &str = "AKIAE2EWEBIDENTITY01";
const SK: &str = "awsE2eWebIdentityTenantSecret0000000001";
const ROLE: &str = "arn:aws:iam::111122223333:role/handshake-e2e";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.aws-e2e-projected-token.c2lnbmF0dXJl";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_credentials_rotate_fail_only_after_expiry_and_never_leak() -> TestResult {
    let lifetime = Duration::from_secs(3);
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN)?;
    let token_path = token_file.display().to_string();
    let (sim, exporter) = Harness::builder()
        .tenant(AK, SK, &[(Dataset::AwsOrganization, 3)])
        .sim(move |sim| {
            sim.set_credential_lifetime(lifetime);
            sim.with_aws_identity(|s| {
                s.add_role(ROLE, AK, None);
                s.web_identity_tokens.insert(TOKEN.into());
            });
        })
        .top("refresh_interval: 1s\nrefresh_timeout: 4s\n")
        .source_yaml(move |sim| {
            format!(
                "  - name: aws\n    provider: aws\n    endpoint: {url}\n    credentials:\n      type: web_identity\n      role_arn: {ROLE}\n      web_identity_token_file: {token_path}\n      duration: 15m\n      sts_endpoint: {url}\n",
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
    assert_eq!(
        sum(
            &last,
            "handshake_source_refresh_failures_total",
            &[("source", "aws")]
        ),
        0.0,
        "{last}\n{}",
        exporter.log()
    );
    assert_eq!(invitations(&last, "aws"), 3.0, "{last}");
    let expiry = value(
        &last,
        "handshake_source_credentials_expiry_timestamp_seconds",
        &[("provider", "aws"), ("source", "aws")],
    )
    .ok_or("expiry metric")?;
    assert!(expiry > chrono::Utc::now().timestamp() as f64 - 1.0);
    let issued = sim
        .sim
        .with_aws_identity(|s| s.call_count("AssumeRoleWithWebIdentity"));
    assert!(issued >= 3, "rotated: {issued}");
    assert!(issued <= 2 * 4 + 1, "bounded: {issued}");

    // STS stops accepting the token: once the keys lapse, reason="credentials" and
    // the last data stays.
    sim.sim.with_aws_identity(|s| s.web_identity_tokens.clear());
    let mut text = String::new();
    let until = std::time::Instant::now() + lifetime * 3;
    let mut failed = false;
    while !failed && std::time::Instant::now() < until {
        text = exporter.scrape().await;
        failed = refresh_failures(&text, "aws", "credentials") > 0.0;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(failed, "{text}");
    assert_eq!(refresh_failures(&text, "aws", "auth"), 0.0, "{text}");
    assert_eq!(invitations(&text, "aws"), 3.0, "last data kept: {text}");

    // Nothing STS handed out, nor the token, shows anywhere.
    let (_, landing) = get(&exporter.url("/")).await;
    let (_, json) = get(&exporter.url("/api/v1/handshakes")).await;
    let everything = format!("{}\n{text}\n{landing}\n{json}", exporter.log());
    let mut secrets = sim.sim.session_secrets(AK);
    assert!(secrets.len() >= 6, "{secrets:?}");
    secrets.extend([TOKEN.to_string(), SK.to_string()]);
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "a secret leaked");
    }
    Ok(())
}

const BASE_AK: &str = "AKIAE2ECHAINBASE0001";
const BASE_SK: &str = "awsE2eChainBaseTenantSecret000000000001";
const TARGET_AK: &str = "AKIAE2ECHAINTARGET01";
const TARGET_SK: &str = "awsE2eChainTargetTenantSecret0000000001";
const IRSA_ROLE: &str = "arn:aws:iam::444455556666:role/handshake-irsa";
const ORG_ROLE: &str = "arn:aws:iam::777788889999:role/other-org-reader";

/// The EKS cross-account case through the real binary: `type: assume_role` with only
/// `role_arn`, the pod's IRSA environment as the base identity. The other
/// organization's invitations are listed, each STS call is counted under its
/// action, the expiry metric is the assumed role's, and nothing secret shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_chains_from_the_pod_web_identity_into_another_organization() -> TestResult {
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN)?;
    let token_path = token_file.display().to_string();
    let (sim, exporter) = Harness::builder()
        // The IRSA role's account has no organization: listing as it would fail.
        .tenant(BASE_AK, BASE_SK, &[(Dataset::AwsAccount, 0)])
        .tenant(TARGET_AK, TARGET_SK, &[(Dataset::AwsOrganization, 4)])
        .sim(|sim| {
            sim.with_aws_identity(|s| {
                s.add_role(IRSA_ROLE, BASE_AK, None);
                s.add_role(ORG_ROLE, TARGET_AK, None);
                s.web_identity_tokens.insert(TOKEN.into());
            });
        })
        .top("refresh_interval: 60s\n")
        .env("AWS_ROLE_ARN", Some(IRSA_ROLE))
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", Some(&token_path))
        .env("AWS_ACCESS_KEY_ID", None)
        .env("AWS_SECRET_ACCESS_KEY", None)
        .env("AWS_EC2_METADATA_DISABLED", Some("true"))
        .source_yaml(move |sim| {
            format!(
                "  - name: aws\n    provider: aws\n    endpoint: {url}\n    credentials:\n      type: assume_role\n      role_arn: {ORG_ROLE}\n      duration: 15m\n      sts_endpoint: {url}\n",
                url = sim.url()
            )
        })
        .start()
        .await;

    let until = std::time::Instant::now() + Duration::from_secs(15);
    let mut text = exporter.scrape().await;
    while invitations(&text, "aws") < 4.0 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        text = exporter.scrape().await;
    }
    assert_eq!(invitations(&text, "aws"), 4.0, "{text}\n{}", exporter.log());
    for action in ["AssumeRoleWithWebIdentity", "AssumeRole"] {
        let sent = sum(
            &text,
            "handshake_api_requests_total",
            &[("source", "aws"), ("action", action)],
        );
        assert_eq!(sent, 1.0, "{action}: {text}");
        assert_eq!(sim.sim.with_aws_identity(|s| s.call_count(action)), 1);
    }
    let base = sim.sim.sessions(BASE_AK);
    let role = sim.sim.sessions(TARGET_AK);
    assert_eq!((base.len(), role.len()), (1, 1));
    let expiry = value(
        &text,
        "handshake_source_credentials_expiry_timestamp_seconds",
        &[("provider", "aws"), ("source", "aws")],
    )
    .ok_or("expiry metric")?;
    assert_eq!(expiry, role[0].expires_at.timestamp() as f64);
    assert_ne!(expiry, base[0].expires_at.timestamp() as f64);

    let (_, landing) = get(&exporter.url("/")).await;
    assert!(landing.contains("assume_role"), "{landing}");
    let everything = format!("{}\n{text}\n{landing}", exporter.log());
    let mut secrets = sim.sim.session_secrets(BASE_AK);
    secrets.extend(sim.sim.session_secrets(TARGET_AK));
    secrets.extend([
        TOKEN.to_string(),
        BASE_SK.to_string(),
        TARGET_SK.to_string(),
    ]);
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "a secret leaked");
    }
    Ok(())
}
