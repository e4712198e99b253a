//! Alibaba temporary credentials through the real binary: every type against the
//! simulated STS and metadata service, an STS outage before and after expiry, no
//! secret in any output, and `--config.check` naming file, line and field.

use crate::harness::*;
use handshake_exporter::sim::Dataset;
use handshake_exporter::sim::alibaba_identity::Role;
use std::time::Duration;

const BASE_AK: &str = "LTAIcredsbase00000001";
const BASE_SK: &str = "base-secret-Vb7Nm2Qx9Lk4";
const TARGET_AK: &str = "LTAIcredstarget000001";
const TARGET_SK: &str = "target-secret-Hj6Gf3Ds8Pa1";
const ROLE_ARN: &str = "acs:ram::1234567890123456:role/handshake-reader";
const OIDC_PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa";
const OIDC_TOKEN: &str = "eyJoidc.e2e-token-Wq3Er5Ty7.sig";
const EXTERNAL_ID: &str = "ext-e2e-0042";
const SOURCES: [&str; 3] = ["ram", "rrsa", "ecs"];

/// Scrape every 250 ms until `done` holds for the exposition (or `timeout`).
async fn scrape_until(
    exporter: &Exporter,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> (bool, String) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let text = exporter.scrape().await;
        if done(&text) {
            return (true, text);
        }
        if std::time::Instant::now() > deadline {
            return (false, text);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn up(text: &str, source: &str) -> Option<f64> {
    value(text, "handshake_source_up", &[("source", source)])
}

fn credential_failures(text: &str, source: &str) -> f64 {
    value(
        text,
        "handshake_source_refresh_failures_total",
        &[("source", source), ("reason", "credentials")],
    )
    .unwrap_or(0.0)
}

fn pending(text: &str, source: &str) -> f64 {
    sum(text, "handshake_invitations", &[("source", source)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_role_credentials_rotate_survive_an_sts_outage_until_expiry_and_never_leak()
-> TestResult {
    // Long enough to leave a few seconds between "refresh due" (half the lifetime)
    // and expiry on a busy machine.
    let lifetime = Duration::from_secs(12);
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("rrsa-token");
    std::fs::write(&token, OIDC_TOKEN)?;
    let token_path = token.display().to_string();
    let (sim, exporter) = Harness::builder()
        .tenant(BASE_AK, BASE_SK, &[])
        .tenant(
            TARGET_AK,
            TARGET_SK,
            &[(Dataset::AlibabaResourceDirectory, 40)],
        )
        .sim(move |sim| {
            sim.with_alibaba_identity(|id| {
                id.roles.insert(
                    ROLE_ARN.into(),
                    Role {
                        tenant: TARGET_AK.into(),
                        external_id: Some(EXTERNAL_ID.into()),
                        trusted: Some(vec![BASE_AK.into()]),
                    },
                );
                id.oidc_providers
                    .insert(OIDC_PROVIDER.into(), OIDC_TOKEN.into());
                id.instance_role = Some(("handshake-reader-ecs".into(), TARGET_AK.into()));
            });
            sim.set_credential_lifetime(lifetime);
        })
        .config(move |sim| {
            let url = sim.url();
            [
                "refresh_interval: 1s".to_string(),
                "refresh_timeout: 5s".into(),
                "sources:".into(),
                "  - name: ram".into(),
                "    provider: alibaba".into(),
                format!("    endpoint: {url}"),
                "    signature: v1".into(),
                "    credentials:".into(),
                "      type: ram_role_arn".into(),
                format!("      role_arn: {ROLE_ARN}"),
                format!("      external_id: {EXTERNAL_ID}"),
                format!("      access_key_id: {BASE_AK}"),
                format!("      access_key_secret: {BASE_SK}"),
                format!("      sts_endpoint: {url}"),
                "  - name: rrsa".into(),
                "    provider: alibaba".into(),
                format!("    endpoint: {url}"),
                "    credentials:".into(),
                "      type: oidc_role_arn".into(),
                format!("      role_arn: {ROLE_ARN}"),
                format!("      oidc_provider_arn: {OIDC_PROVIDER}"),
                format!("      oidc_token_file: {token_path}"),
                format!("      sts_endpoint: {url}"),
                "  - name: ecs".into(),
                "    provider: alibaba".into(),
                format!("    endpoint: {url}"),
                "    credentials:".into(),
                "      type: ecs_ram_role".into(),
                format!("      metadata_endpoint: {url}"),
            ]
            .join("\n")
        })
        .extra_args(&["--log.level", "trace"])
        .start()
        .await;
    let mut seen = String::new();

    // Every type reaches the role's account.
    let (all_up, latest) = scrape_until(&exporter, Duration::from_secs(20), |t| {
        SOURCES.iter().all(|s| up(t, s) == Some(1.0))
    })
    .await;
    let mut text = latest;
    assert!(all_up, "not all up:\n{text}\n{}", exporter.log());
    for s in SOURCES {
        assert_eq!(pending(&text, s), 40.0, "{s}");
        assert!(
            value(
                &text,
                "handshake_source_credentials_expiry_timestamp_seconds",
                &[("source", s)]
            )
            .is_some_and(|e| e > handshake_exporter::clock::unix_now()),
            "{s}: expiry published"
        );
    }
    for action in [
        "AssumeRole",
        "AssumeRoleWithOIDC",
        "MetadataToken",
        "MetadataRole",
    ] {
        assert!(
            text.contains(&format!("action=\"{action}\",code=\"200\"")),
            "{action} counted:\n{text}"
        );
    }
    seen.push_str(&text);

    // STS and the metadata service go down while the credentials are valid: the
    // refresh due at half the lifetime fails, the sources stay up on the
    // credentials in hand.
    let calls = |sim: &handshake_exporter::sim::Sim| {
        sim.with_alibaba_identity(|id| {
            id.call_count("AssumeRole")
                + id.call_count("AssumeRoleWithOIDC")
                + id.call_count("MetadataToken")
        })
    };
    sim.sim.with_alibaba_identity(|id| id.outage = true);
    let before = calls(&sim.sim);
    let (tried, _) = scrape_until(&exporter, Duration::from_secs(20), |_| {
        calls(&sim.sim) >= before + 3
    })
    .await;
    assert!(tried, "no refresh attempted during the outage");
    text = exporter.scrape().await;
    for s in SOURCES {
        assert_eq!(
            up(&text, s),
            Some(1.0),
            "{s} must stay up before expiry:\n{text}"
        );
        assert_eq!(
            credential_failures(&text, s),
            0.0,
            "{s}: reason=credentials before expiry"
        );
    }
    assert!(
        exporter
            .log()
            .contains("credential refresh failed; using the current credentials")
    );
    seen.push_str(&text);

    // Once they lapse: reason="credentials", source down, last data kept.
    let (lapsed, latest) = scrape_until(&exporter, Duration::from_secs(30), |t| {
        SOURCES.iter().all(|s| credential_failures(t, s) >= 1.0)
    })
    .await;
    text = latest;
    assert!(lapsed, "no reason=credentials after expiry:\n{text}");
    for s in SOURCES {
        assert_eq!(up(&text, s), Some(0.0), "{s}");
        assert_eq!(pending(&text, s), 40.0, "{s}: last data kept");
    }
    // The resource API never saw an expired key: the cache stops using them first.
    assert!(!exporter.log().contains("InvalidSecurityToken.Expired"));
    seen.push_str(&text);

    // STS back: the sources recover on their own.
    sim.sim.with_alibaba_identity(|id| id.outage = false);
    let (recovered, latest) = scrape_until(&exporter, Duration::from_secs(20), |t| {
        SOURCES.iter().all(|s| up(t, s) == Some(1.0))
    })
    .await;
    text = latest;
    assert!(recovered, "no recovery:\n{text}");
    seen.push_str(&text);

    for path in [
        "/",
        "/api/v1/handshakes",
        "/probe?source=ram",
        "/api/v1/sources/rrsa/handshakes/h-x",
    ] {
        seen.push_str(&get(&exporter.url(path)).await.1);
    }
    seen.push_str(&exporter.log());
    let mut secrets: Vec<String> = [BASE_SK, TARGET_SK, OIDC_TOKEN, EXTERNAL_ID]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sessions = sim.sim.sessions(TARGET_AK);
    assert!(sessions.len() >= 6, "{} sessions", sessions.len());
    for s in sessions {
        secrets.push(s.secret);
        secrets.push(s.security_token);
    }
    for secret in &secrets {
        assert!(!seen.contains(secret.as_str()), "secret {secret:?} leaked");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_names_file_line_and_field_for_credential_mistakes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config.yml");
    let head = "sources:\n  - name: ali\n    provider: alibaba\n    credentials:\n";
    for (block, line, field, needle) in [
        (
            "      type: ram_role_arn\n      access_key_id: A\n      access_key_secret: B\n"
                .to_string(),
            5,
            "sources[0].credentials.role_arn",
            "role_arn is required",
        ),
        (
            "      type: assume_role\n".to_string(),
            5,
            "sources[0].credentials.type",
            "unknown credentials type",
        ),
        (
            format!(
                "      type: oidc_role_arn\n      role_arn: {ROLE_ARN}\n      access_key_secret: {BASE_SK}\n"
            ),
            7,
            "sources[0].credentials.access_key_secret",
            "does not belong to credentials type oidc_role_arn",
        ),
    ] {
        std::fs::write(&path, format!("{head}{block}"))?;
        let out = std::process::Command::new(BIN)
            .arg("--config.file")
            .arg(&path)
            .arg("--config.check")
            .env_remove("ALIBABA_CLOUD_ROLE_ARN")
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("config.yml:{line}"))
                && stderr.contains(field)
                && stderr.contains(needle),
            "{field}: {stderr}"
        );
        assert!(!stderr.contains(BASE_SK), "{stderr}");
    }
    Ok(())
}

/// The RRSA manifests hold together: the namespace is labelled for injection, the
/// service account names the role, the Deployment runs as it, and the ConfigMap's
/// configuration passes `--config.check` with what the webhook injects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rrsa_manifests_validate_with_the_injected_variables() -> TestResult {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/rrsa");
    let yaml = |file: &str| -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        let text = std::fs::read_to_string(dir.join(file))?;
        Ok(serde_saphyr::from_str(&text)?)
    };
    let ns = yaml("namespace.yaml")?;
    assert_eq!(
        ns["metadata"]["labels"]["pod-identity.alibabacloud.com/injection"],
        "on"
    );
    let sa = yaml("serviceaccount.yaml")?;
    assert!(sa["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"].is_string());
    let deployment = yaml("deployment.yaml")?;
    let spec = &deployment["spec"]["template"]["spec"];
    assert_eq!(spec["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(deployment["metadata"]["namespace"], ns["metadata"]["name"]);
    let configmap = yaml("configmap.yaml")?;
    let config = configmap["data"]["config.yml"]
        .as_str()
        .ok_or("configmap has no config.yml")?;
    assert!(config.contains("type: oidc_role_arn"));

    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("config.yml");
    std::fs::write(&path, config)?;
    let token = tmp.path().join("token");
    std::fs::write(&token, "eyJ.rrsa.token")?;
    let check = |with_env: bool| -> std::io::Result<std::process::Output> {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--config.file").arg(&path).arg("--config.check");
        for name in [
            "ALIBABA_CLOUD_ROLE_ARN",
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        ] {
            cmd.env_remove(name);
        }
        if with_env {
            cmd.env("ALIBABA_CLOUD_ROLE_ARN", ROLE_ARN)
                .env("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER)
                .env("ALIBABA_CLOUD_OIDC_TOKEN_FILE", &token);
        }
        cmd.output()
    };
    let out = check(true)?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the webhook's variables the check says what is missing.
    let out = check(false)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ALIBABA_CLOUD_ROLE_ARN"), "{stderr}");
    Ok(())
}

/// A static key whose secret file is rotated in place (as Kubernetes swaps a mounted
/// Secret: a new file renamed over the old one) is used from the next request on,
/// without a reload and without dropping the source's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_secret_file_rotated_in_place_is_used_without_a_reload() -> TestResult {
    const AK: &str = "LTAIkeyfilerotation01";
    const OLD_SK: &str = "old-secret-Rt5Yu7Io9Pa";
    const NEW_SK: &str = "new-secret-Lk2Jh4Gf6Ds";
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("access_key_secret");
    std::fs::write(&secret, OLD_SK)?;
    let secret_path = secret.display().to_string();
    let (sim, exporter) = Harness::builder()
        .tenant(AK, OLD_SK, &[(Dataset::AlibabaResourceDirectory, 12)])
        .top("refresh_interval: 1s\n")
        .source_yaml(move |sim| {
            format!(
                "  - name: keyfile\n    provider: alibaba\n    endpoint: {}\n    credentials:\n      access_key_id: {AK}\n      access_key_secret_file: {secret_path}\n",
                sim.url(),
            )
        })
        .start()
        .await;
    let (ok, text) = scrape_until(&exporter, Duration::from_secs(20), |t| {
        up(t, "keyfile") == Some(1.0)
    })
    .await;
    assert!(ok, "not up with the first key:\n{text}");
    let reloaded_at = value(
        &text,
        "handshake_config_last_reload_success_timestamp_seconds",
        &[],
    );

    // The key is rotated: the cloud accepts only the new secret, and the mounted
    // file is swapped the way the kubelet does it.
    sim.sim.with_tenant(AK, |t| t.secret = NEW_SK.into());
    let staged = dir.path().join("..access_key_secret.new");
    std::fs::write(&staged, NEW_SK)?;
    std::fs::rename(&staged, &secret)?;
    sim.sim.reset_calls(AK);

    // Refreshes succeed with the new key: list calls keep being answered.
    let ok = eventually(Duration::from_secs(20), || {
        let calls = sim.sim.call_count(AK, "ListHandshakesForResourceDirectory");
        let exporter = &exporter;
        async move {
            let text = exporter.scrape().await;
            calls >= 2 && up(&text, "keyfile") == Some(1.0)
        }
    })
    .await;
    let text = exporter.scrape().await;
    assert!(ok, "the rotated key was not picked up:\n{text}");
    assert_eq!(pending(&text, "keyfile"), 12.0, "data kept and current");
    assert_eq!(
        value(
            &text,
            "handshake_config_last_reload_success_timestamp_seconds",
            &[]
        ),
        reloaded_at,
        "no reload happened"
    );
    let log = exporter.log();
    assert!(
        !log.contains(OLD_SK) && !log.contains(NEW_SK) && !text.contains(NEW_SK),
        "a secret reached the log or the metrics"
    );
    Ok(())
}
