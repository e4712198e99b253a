//! The AWS Organizations client against the simulated AWS endpoints, over real HTTP
//! on loopback: NextToken pagination and call counts, error mapping, the `ids`
//! view, every credential type, the exact outbound headers and no redirects.

use handshake_exporter::credentials::{SecretSource, StaticKeys};
use handshake_exporter::error::{ApiError, Reason};
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::model::{Handshake, Provider, Status};
use handshake_exporter::provider::HandshakeProvider;
use handshake_exporter::provider::aws::credentials::{
    AssumeRole, AwsCredentialConfig, Container, Imds, WebIdentity,
};
use handshake_exporter::provider::aws::settings::{AwsSettings, AwsView};
use handshake_exporter::provider::aws::{
    ACTION_DESCRIBE, ACTION_LIST_FOR_ACCOUNT, ACTION_LIST_FOR_ORGANIZATION, AwsClient,
};
use handshake_exporter::secret::{Credentials, Secret};
use handshake_exporter::sim::recorder::{Recorder, json_response, redirect_response};
use handshake_exporter::sim::{Dataset, Fault, FaultKind, Sim, SimServer, Tenant, data};
use handshake_exporter::transport::RetryPolicy;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const AK: &str = "AKIASIMTEST000000001";
const SECRET: &str = "simTestSecret/0000+EXAMPLE";
/// An account that is not in an organization (no organization dataset).
const MEMBER_AK: &str = "AKIASIMMEMBER0000002";
const MEMBER_SECRET: &str = "memberSecret";
const TEMP_AK: &str = "ASIASIMTEMP000000003";
const TEMP_SECRET: &str = "tempSecret";
const TEMP_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEa+fake/token==";
const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/handshake-reader";
const EXTERNAL_ID: &str = "ext-Id_4711+/=:@";
const SOURCE: &str = "aws-org";

type TestResult = Result<(), Box<dyn std::error::Error>>;

mod common;
use common::TransportParams;

async fn start_sim() -> Result<SimServer, std::io::Error> {
    let sim = Sim::new();
    sim.add_tenant(Tenant::new(AK, SECRET));
    let mut member = Tenant::new(MEMBER_AK, MEMBER_SECRET);
    member.datasets.insert(Dataset::AwsAccount, Vec::new());
    sim.add_tenant(member);
    let mut temp = Tenant::new(TEMP_AK, TEMP_SECRET);
    temp.security_token = Some(TEMP_TOKEN.into());
    sim.add_tenant(temp);
    common::start_sim(sim).await
}

/// `n` generated handshakes in a tenant's dataset, and what the client should make
/// of them: the source's name, and no modification time (AWS has none).
fn seed(server: &SimServer, ak: &str, dataset: Dataset, n: usize) -> Vec<Handshake> {
    let items = data::generate(dataset, n, 42, chrono::Utc::now());
    server.sim.set_dataset(ak, dataset, items.clone());
    items
        .into_iter()
        .map(|mut h| {
            h.source = Arc::from(SOURCE);
            h.modified_at = None;
            h
        })
        .collect()
}

fn fixed(ak: &str, secret: &str, token: Option<&str>) -> AwsCredentialConfig {
    AwsCredentialConfig::Fixed(Credentials {
        access_key_id: ak.into(),
        access_key_secret: Secret::new(secret),
        security_token: token.map(Secret::new),
        domain_id: None,
    })
}

fn settings(endpoint: String, view: AwsView, credentials: AwsCredentialConfig) -> AwsSettings {
    AwsSettings {
        view,
        handshake_ids: Vec::new(),
        region: "us-east-1".into(),
        endpoint,
        page_size: 20,
        credentials,
    }
}

fn client(settings: &AwsSettings) -> Result<(AwsClient, Arc<ExporterMetrics>), String> {
    let metrics = Arc::new(ExporterMetrics::new(false));
    let transport = common::transport(
        Provider::Aws,
        SOURCE,
        TransportParams {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            // Short waits keep retry tests fast; the policy itself is the transport's.
            retry: RetryPolicy {
                max_attempts: 4,
                base: Duration::from_millis(10),
                cap: Duration::from_millis(50),
            },
            outbound: 16,
        },
        metrics.clone(),
    )?;
    Ok((AwsClient::new(SOURCE, settings, transport), metrics))
}

fn org_client(server: &SimServer) -> Result<AwsClient, String> {
    client(&settings(
        server.url(),
        AwsView::Organization,
        fixed(AK, SECRET, None),
    ))
    .map(|c| c.0)
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn fault(kind: FaultKind, times: Option<u32>) -> Fault {
    Fault {
        kind,
        action: None,
        times,
    }
}

fn expect_err<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ApiError {
    match result {
        Err(e) => e,
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn metrics_text(metrics: &ExporterMetrics) -> String {
    let mut out = Vec::new();
    metrics.encode_into(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The issue's figure: 1,000 handshakes at MaxResults 20 are exactly 50 calls, and
/// every one arrives mapped (states, both party orders, ISO and numeric times).
#[tokio::test]
async fn a_thousand_handshakes_at_max_results_20_take_exactly_50_calls() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 1000);
    let listed = org_client(&server)?.list(deadline()).await?;
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed, expected);
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION), 50);
    assert_eq!(server.sim.calls(AK).len(), 1, "{:?}", server.sim.calls(AK));
    Ok(())
}

#[tokio::test]
async fn page_sizes_and_the_account_view_count_their_calls() -> TestResult {
    let server = start_sim().await?;
    for (n, page_size, calls) in [(0, 20, 1), (7, 3, 3), (20, 20, 1), (21, 20, 2), (5, 1, 5)] {
        server.sim.reset_calls(MEMBER_AK);
        let expected = seed(&server, MEMBER_AK, Dataset::AwsAccount, n);
        let mut s = settings(
            server.url(),
            AwsView::Account,
            fixed(MEMBER_AK, MEMBER_SECRET, None),
        );
        s.page_size = page_size;
        let listed = client(&s)?.0.list(deadline()).await?;
        assert_eq!(listed, expected, "{n} at {page_size}");
        assert_eq!(
            server.sim.call_count(MEMBER_AK, ACTION_LIST_FOR_ACCOUNT),
            calls,
            "{n} at {page_size}"
        );
    }
    Ok(())
}

/// "can occasionally return an empty set of results even when there are more": an
/// empty page with a NextToken is followed, not taken as the end.
#[tokio::test]
async fn an_empty_middle_page_is_followed() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 100);
    server.sim.with_aws_identity(|s| {
        s.add_empty_page(AK, Dataset::AwsOrganization, 40);
    });
    assert_eq!(org_client(&server)?.list(deadline()).await?, expected);
    // Five full pages and the empty one.
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION), 6);
    Ok(())
}

#[tokio::test]
async fn a_repeated_token_is_a_bad_response_after_two_calls() -> TestResult {
    let server = start_sim().await?;
    seed(&server, AK, Dataset::AwsOrganization, 100);
    server.sim.add_fault(AK, fault(FaultKind::Lie, None));
    let e = expect_err(org_client(&server)?.list(deadline()).await);
    assert_eq!(e.reason, Reason::BadResponse, "{e}");
    assert!(e.message.contains("NextToken repeated"), "{e}");
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION), 2);
    Ok(())
}

/// Every error the simulator can give, with its reason, code and number of calls
/// (retried ones more than one).
#[tokio::test]
async fn errors_map_to_their_reasons() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 30);
    let c = org_client(&server)?;

    // Throttling once: retried and then answered.
    server.sim.reset_calls(AK);
    server.sim.add_fault(
        AK,
        fault(
            FaultKind::Throttle {
                retry_after_ms: None,
            },
            Some(1),
        ),
    );
    assert_eq!(c.list(deadline()).await?, expected);
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION), 3);

    for (kind, reason, code, calls) in [
        (
            FaultKind::Throttle {
                retry_after_ms: None,
            },
            Reason::Throttled,
            Some("TooManyRequestsException"),
            4,
        ),
        (
            FaultKind::ServerError,
            Reason::Server,
            Some("ServiceException"),
            4,
        ),
        (
            FaultKind::AuthFailure,
            Reason::Auth,
            Some("InvalidSignatureException"),
            1,
        ),
        (FaultKind::Malformed, Reason::BadResponse, None, 1),
        (FaultKind::Truncated, Reason::BadResponse, None, 1),
        (FaultKind::WrongShape, Reason::BadResponse, None, 1),
    ] {
        server.sim.reset_calls(AK);
        server.sim.clear_faults(AK);
        server.sim.add_fault(AK, fault(kind.clone(), None));
        let e = expect_err(c.list(deadline()).await);
        assert_eq!(e.reason, reason, "{kind:?}: {e}");
        if let Some(code) = code {
            assert_eq!(e.code.as_deref(), Some(code), "{kind:?}");
            assert_eq!(
                e.http_status,
                Some(if code == "ServiceException" { 500 } else { 400 })
            );
        }
        assert_eq!(
            server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION),
            calls,
            "{kind:?}"
        );
    }
    server.sim.clear_faults(AK);

    // Values that do not parse are anomalies of the invitation, not errors.
    server
        .sim
        .add_fault(AK, fault(FaultKind::GarbledFields, Some(1)));
    let listed = c.list(deadline()).await?;
    assert_eq!(listed.len(), 30);
    assert_eq!(listed[0].status, Status::Unknown);
    let noted: Vec<&str> = listed[0].anomalies.iter().map(|f| f.as_str()).collect();
    assert_eq!(
        noted,
        ["expire_time", "create_time", "status", "target_type"]
    );

    // IAM denies the action: auth, not retried.
    server.sim.reset_calls(AK);
    server
        .sim
        .with_aws_identity(|s| s.deny(AK, ACTION_LIST_FOR_ORGANIZATION));
    let e = expect_err(c.list(deadline()).await);
    assert_eq!(
        (e.reason, e.code.as_deref()),
        (Reason::Auth, Some("AccessDeniedException"))
    );
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION), 1);
    server.sim.with_aws_identity(|s| s.denied.clear());

    // An account outside any organization: not_enabled.
    let (member, _) = client(&settings(
        server.url(),
        AwsView::Organization,
        fixed(MEMBER_AK, MEMBER_SECRET, None),
    ))?;
    let e = expect_err(member.list(deadline()).await);
    assert_eq!(
        (e.reason, e.code.as_deref()),
        (
            Reason::NotEnabled,
            Some("AWSOrganizationsNotInUseException")
        )
    );

    // An unknown key and a wrong secret: auth.
    for (ak, secret, code) in [
        (
            "AKIAUNKNOWN000000000",
            SECRET,
            "UnrecognizedClientException",
        ),
        (AK, "wrong-secret", "InvalidSignatureException"),
    ] {
        let (bad, _) = client(&settings(
            server.url(),
            AwsView::Organization,
            fixed(ak, secret, None),
        ))?;
        let e = expect_err(bad.list(deadline()).await);
        assert_eq!(
            (e.reason, e.code.as_deref()),
            (Reason::Auth, Some(code)),
            "{e}"
        );
        assert!(!e.to_string().contains(secret), "{e}");
    }
    Ok(())
}

/// `view: ids`: DescribeHandshake per id (from either dataset); an id the service
/// does not know is reported missing, not a failure.
#[tokio::test]
async fn the_ids_view_describes_each_id_and_reports_missing_ones() -> TestResult {
    let server = start_sim().await?;
    let org = seed(&server, AK, Dataset::AwsOrganization, 5);
    let acct = seed(&server, AK, Dataset::AwsAccount, 5);
    let missing = "h-doesnotexist0001".to_string();
    let mut s = settings(server.url(), AwsView::Ids, fixed(AK, SECRET, None));
    s.handshake_ids = vec![
        org[3].id.clone(),
        missing.clone(),
        acct[1].id.clone(),
        org[3].id.clone(),
    ];
    let (c, _) = client(&s)?;
    let listing = c.fetch(deadline()).await?;
    assert_eq!(listing.handshakes, vec![org[3].clone(), acct[1].clone()]);
    assert_eq!(listing.missing_ids, vec![missing.clone()]);
    // Duplicates removed: three calls.
    assert_eq!(server.sim.call_count(AK, ACTION_DESCRIBE), 3);
    let e = expect_err(c.get(&missing, deadline()).await);
    assert_eq!(
        (e.reason, e.code.as_deref()),
        (Reason::NotFound, Some("HandshakeNotFoundException"))
    );
    Ok(())
}

/// Exactly what goes out: POST /, the target, the JSON 1.1 content type, a SigV4
/// scope for us-east-1/organizations with the token and the target signed.
#[tokio::test]
async fn outbound_requests_carry_the_json_1_1_headers_and_sigv4_scope() -> TestResult {
    let recorder = Recorder::start(json_response(r#"{"Handshakes": []}"#)).await?;
    let (c, _) = client(&settings(
        recorder.url(),
        AwsView::Organization,
        fixed(TEMP_AK, TEMP_SECRET, Some(TEMP_TOKEN)),
    ))?;
    assert_eq!(c.list(deadline()).await?, Vec::new());
    let received = recorder.received();
    assert_eq!(received.len(), 1);
    let head = &received[0];
    let lines: Vec<String> = head.lines().map(str::to_string).collect();
    let header = |name: &str| {
        lines
            .iter()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    assert_eq!(lines[0], "POST / HTTP/1.1");
    assert_eq!(
        header("x-amz-target"),
        "AWSOrganizationsV20161128.ListHandshakesForOrganization"
    );
    assert_eq!(header("content-type"), "application/x-amz-json-1.1");
    assert_eq!(header("x-amz-security-token"), TEMP_TOKEN);
    assert_eq!(
        header("content-length"),
        r#"{"MaxResults": 20}"#.len().to_string()
    );
    let date = header("x-amz-date");
    assert_eq!(date.len(), 16);
    let auth = header("authorization");
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={TEMP_AK}/{}/us-east-1/organizations/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=",
        &date[..8]
    );
    assert!(auth.starts_with(&prefix), "{auth}");
    assert_eq!(auth.len(), prefix.len() + 64);
    Ok(())
}

/// A 307 is a bad_response, not retried, and the host it points to gets nothing
/// (no token, no signed body).
#[tokio::test]
async fn a_redirect_is_not_followed_and_nothing_reaches_its_target() -> TestResult {
    let target = Recorder::start(json_response(r#"{"Handshakes": []}"#)).await?;
    let redirector = Recorder::start(redirect_response(&format!(
        "{}/collect?leak=1",
        target.url()
    )))
    .await?;
    for view in [AwsView::Organization, AwsView::Account] {
        let (c, _) = client(&settings(
            redirector.url(),
            view,
            fixed(TEMP_AK, TEMP_SECRET, Some(TEMP_TOKEN)),
        ))?;
        let e = expect_err(c.list(deadline()).await);
        assert_eq!(
            (e.reason, e.http_status),
            (Reason::BadResponse, Some(307)),
            "{e}"
        );
        assert!(!e.to_string().contains("leak") && !e.to_string().contains(TEMP_TOKEN));
    }
    assert_eq!(target.received(), Vec::<String>::new());
    assert_eq!(redirector.received().len(), 2);
    Ok(())
}

/// Session credentials past their expiry get ExpiredTokenException: auth.
#[tokio::test]
async fn an_expired_session_is_an_auth_failure() -> TestResult {
    let server = start_sim().await?;
    seed(&server, AK, Dataset::AwsOrganization, 3);
    let session = server
        .sim
        .issue_session(AK, "ASIA", Some(Duration::from_millis(1)))
        .ok_or("no session")?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (c, _) = client(&settings(
        server.url(),
        AwsView::Organization,
        fixed(
            &session.access_key_id,
            &session.secret,
            Some(&session.security_token),
        ),
    ))?;
    let e = expect_err(c.list(deadline()).await);
    assert_eq!(
        (e.reason, e.code.as_deref()),
        (Reason::Auth, Some("ExpiredTokenException"))
    );
    Ok(())
}

/// `type: access_key` from files (as a Kubernetes secret mounts them).
#[tokio::test]
async fn access_keys_from_files_sign_the_requests() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 3);
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("id"), format!("{AK}\n"))?;
    std::fs::write(dir.path().join("secret"), format!("{SECRET}\n"))?;
    let keys = AwsCredentialConfig::AccessKey(StaticKeys {
        access_key_id: SecretSource::File(dir.path().join("id")),
        access_key_secret: SecretSource::File(dir.path().join("secret")),
        security_token: None,
    });
    let (c, _) = client(&settings(server.url(), AwsView::Organization, keys))?;
    assert_eq!(c.list(deadline()).await?, expected);
    assert_eq!(c.credential_status().map(|s| s.kind), Some("access_key"));
    Ok(())
}

fn assume_role(server: &SimServer, external_id: &str) -> AwsCredentialConfig {
    AwsCredentialConfig::AssumeRole(AssumeRole {
        base: Box::new(AwsCredentialConfig::AccessKey(StaticKeys {
            access_key_id: SecretSource::Value(Secret::new(MEMBER_AK)),
            access_key_secret: SecretSource::Value(Secret::new(MEMBER_SECRET)),
            security_token: None,
        })),
        role_arn: ROLE_ARN.into(),
        external_id: Some(external_id.into()),
        role_session_name: None,
        duration: Duration::from_secs(900),
        sts_endpoint: server.url(),
    })
}

/// AssumeRole over the base key (signed for `sts`), the list with the session's
/// keys in the role's account, the expiry exposed, and a new session once the
/// first nears its end.
#[tokio::test]
async fn assume_role_sessions_rotate_and_their_expiry_is_exposed() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 30);
    server
        .sim
        .with_aws_identity(|s| s.add_role(ROLE_ARN, AK, Some(EXTERNAL_ID)));
    server.sim.set_credential_lifetime(Duration::from_secs(3));
    let (c, metrics) = client(&settings(
        server.url(),
        AwsView::Organization,
        assume_role(&server, EXTERNAL_ID),
    ))?;
    assert_eq!(c.list(deadline()).await?, expected);
    let req = server
        .sim
        .with_aws_identity(|s| s.last("AssumeRole").cloned())
        .ok_or("no AssumeRole")?;
    for (name, value) in [
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE_ARN),
        ("ExternalId", EXTERNAL_ID),
        ("DurationSeconds", "900"),
    ] {
        assert_eq!(req.param(name), Some(value), "{name}");
    }
    assert!(
        req.param("RoleSessionName")
            .is_some_and(|n| n.starts_with("handshake-exporter-"))
    );
    assert!(
        req.header("authorization")
            .is_some_and(|a| a.contains(&format!("Credential={MEMBER_AK}/"))
                && a.contains("/us-east-1/sts/aws4_request"))
    );
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded; charset=utf-8")
    );
    // The base key's tenant was counted for AssumeRole; the list reached the role's.
    assert_eq!(server.sim.call_count(MEMBER_AK, "AssumeRole"), 1);
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION), 2);
    let status = c.credential_status().ok_or("no status")?;
    assert_eq!(status.kind, "assume_role");
    let expiry = status.expires_at.ok_or("no expiry")?;
    assert!(expiry > handshake_exporter::clock::unix_now());
    let text = metrics_text(&metrics);
    assert!(
        text.contains(r#"handshake_source_credentials_expiry_timestamp_seconds{provider="aws",source="aws-org"}"#),
        "{text}"
    );
    // Half the 3 s lifetime later a refresh is due: a second session.
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert_eq!(c.list(deadline()).await?, expected);
    assert_eq!(server.sim.sessions_issued(AK), 2);
    assert_eq!(
        server.sim.with_aws_identity(|s| s.call_count("AssumeRole")),
        2
    );
    let later = c
        .credential_status()
        .and_then(|s| s.expires_at)
        .ok_or("no expiry")?;
    assert!(later > expiry);
    for s in server.sim.sessions(AK) {
        assert!(!metrics_text(&metrics).contains(&s.secret));
    }

    // A wrong external id: the role cannot be assumed.
    let (bad, _) = client(&settings(
        server.url(),
        AwsView::Organization,
        assume_role(&server, "wrong-external"),
    ))?;
    let e = expect_err(bad.list(deadline()).await);
    assert_eq!(
        (e.reason, e.code.as_deref()),
        (Reason::Credentials, Some("AccessDenied")),
        "{e}"
    );
    Ok(())
}

/// Role chaining (IRSA → another organization's management account): the web
/// identity's session signs AssumeRole, session token included; the list reaches
/// the assumed role's account, not the web identity role's; each call is counted
/// under its action; the source's expiry is the assumed role's. A token STS refuses
/// fails as the base's call, and AssumeRole is never sent.
#[tokio::test]
async fn assume_role_chains_from_a_web_identity_base_into_another_account() -> TestResult {
    const IRSA_ROLE: &str = "arn:aws:iam::444455556666:role/irsa-base";
    const TOKEN: &str = "eyJ-chain.token.sig";
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 12);
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN)?;
    server.sim.with_aws_identity(|s| {
        // The IRSA role lives in the member account (no organization there); the
        // target role is the other organization's management account (AK).
        s.add_role(IRSA_ROLE, MEMBER_AK, None);
        s.add_role(ROLE_ARN, AK, Some(EXTERNAL_ID));
        s.web_identity_tokens.insert(TOKEN.into());
    });
    let config = AwsCredentialConfig::AssumeRole(AssumeRole {
        base: Box::new(AwsCredentialConfig::WebIdentity(WebIdentity {
            role_arn: IRSA_ROLE.into(),
            token_file: token.clone(),
            role_session_name: Some("irsa-base".into()),
            duration: Duration::from_secs(3600),
            sts_endpoint: server.url(),
        })),
        role_arn: ROLE_ARN.into(),
        external_id: Some(EXTERNAL_ID.into()),
        role_session_name: Some("chained".into()),
        duration: Duration::from_secs(900),
        sts_endpoint: server.url(),
    });
    let (c, metrics) = client(&settings(
        server.url(),
        AwsView::Organization,
        config.clone(),
    ))?;
    assert_eq!(c.list(deadline()).await?, expected);

    let base_session = server.sim.sessions(MEMBER_AK);
    let role_session = server.sim.sessions(AK);
    assert_eq!((base_session.len(), role_session.len()), (1, 1));
    let req = server
        .sim
        .with_aws_identity(|s| s.last("AssumeRole").cloned())
        .ok_or("no AssumeRole")?;
    assert_eq!(req.param("RoleArn"), Some(ROLE_ARN));
    assert!(
        req.header("authorization").is_some_and(|a| a
            .contains(&format!("Credential={}/", base_session[0].access_key_id))
            && a.contains("x-amz-security-token")),
        "{:?}",
        req.header("authorization")
    );
    assert_eq!(
        req.header("x-amz-security-token"),
        Some(base_session[0].security_token.as_str())
    );
    let calls = server.sim.with_aws_identity(|s| {
        (
            s.call_count("AssumeRoleWithWebIdentity"),
            s.call_count("AssumeRole"),
        )
    });
    assert_eq!(calls, (1, 1));
    // AssumeRole was made as the base's session (its tenant counted); the list as
    // the assumed role (the other account's tenant).
    assert_eq!(server.sim.call_count(MEMBER_AK, "AssumeRole"), 1);
    assert_eq!(
        server
            .sim
            .call_count(MEMBER_AK, ACTION_LIST_FOR_ORGANIZATION),
        0
    );
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION), 1);
    let text = metrics_text(&metrics);
    for action in [
        "AssumeRoleWithWebIdentity",
        "AssumeRole",
        ACTION_LIST_FOR_ORGANIZATION,
    ] {
        let line = format!(
            r#"handshake_api_requests_total{{action="{action}",code="200",provider="aws",source="aws-org"}} 1"#
        );
        assert!(text.contains(&line), "{line}\n{text}");
    }
    // The source shows the assumed role's expiry (900 s), not the base's (3600 s).
    let status = c.credential_status().ok_or("no status")?;
    assert_eq!(status.kind, "assume_role");
    assert_eq!(
        status.expires_at,
        Some(role_session[0].expires_at.timestamp() as f64)
    );
    assert_ne!(
        role_session[0].expires_at.timestamp(),
        base_session[0].expires_at.timestamp()
    );
    for secret in [&base_session[0].secret, &base_session[0].security_token] {
        assert!(!text.contains(secret.as_str()));
    }

    // STS refuses the token: the base's call is the error, AssumeRole not sent.
    server
        .sim
        .with_aws_identity(|s| s.web_identity_tokens.clear());
    let (bad, _) = client(&settings(server.url(), AwsView::Organization, config))?;
    let e = expect_err(bad.list(deadline()).await);
    assert_eq!(
        (e.reason, e.action, e.code.as_deref()),
        (
            Reason::Credentials,
            "AssumeRoleWithWebIdentity",
            Some("InvalidIdentityToken")
        ),
        "{e}"
    );
    assert!(e.message.contains("web_identity"), "{e}");
    assert_eq!(
        server.sim.with_aws_identity(|s| s.call_count("AssumeRole")),
        1
    );
    Ok(())
}

/// AssumeRoleWithWebIdentity is unsigned, and the token file is read for every
/// call: a token rotated in place is the one sent next.
#[tokio::test]
async fn web_identity_sends_the_token_unsigned_and_rereads_the_file() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 10);
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJ-first.token.sig")?;
    server.sim.with_aws_identity(|s| {
        s.add_role(ROLE_ARN, AK, None);
        s.web_identity_tokens.insert("eyJ-first.token.sig".into());
    });
    server.sim.set_credential_lifetime(Duration::from_secs(3));
    let config = AwsCredentialConfig::WebIdentity(WebIdentity {
        role_arn: ROLE_ARN.into(),
        token_file: token.clone(),
        role_session_name: Some("irsa-session".into()),
        duration: Duration::from_secs(3600),
        sts_endpoint: server.url(),
    });
    let (c, _) = client(&settings(server.url(), AwsView::Organization, config))?;
    assert_eq!(c.list(deadline()).await?, expected);
    let req = server
        .sim
        .with_aws_identity(|s| s.last("AssumeRoleWithWebIdentity").cloned())
        .ok_or("no AssumeRoleWithWebIdentity")?;
    for (name, value) in [
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE_ARN),
        ("RoleSessionName", "irsa-session"),
        ("WebIdentityToken", "eyJ-first.token.sig"),
        ("DurationSeconds", "3600"),
    ] {
        assert_eq!(req.param(name), Some(value), "{name}");
    }
    for absent in ["authorization", "x-amz-date", "x-amz-security-token"] {
        assert_eq!(req.header(absent), None, "{absent}");
    }
    std::fs::write(&token, "eyJ-second.token.sig")?;
    server.sim.with_aws_identity(|s| {
        s.web_identity_tokens.clear();
        s.web_identity_tokens.insert("eyJ-second.token.sig".into());
    });
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert_eq!(c.list(deadline()).await?, expected);
    let (calls, last) = server.sim.with_aws_identity(|s| {
        (
            s.call_count("AssumeRoleWithWebIdentity"),
            s.last("AssumeRoleWithWebIdentity")
                .and_then(|r| r.param("WebIdentityToken").map(str::to_string)),
        )
    });
    assert_eq!(calls, 2);
    assert_eq!(last.as_deref(), Some("eyJ-second.token.sig"));
    assert_eq!(c.credential_status().map(|s| s.kind), Some("web_identity"));
    Ok(())
}

/// The last two links of the default chain: container credentials (with the
/// authorization token file) and IMDSv2 (token required by the instance).
#[tokio::test]
async fn container_and_imds_credentials_reach_the_role_account() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 4);
    let dir = tempfile::tempdir()?;
    let auth = dir.path().join("auth");
    std::fs::write(&auth, "Bearer pod-identity-token\n")?;
    server.sim.with_aws_identity(|s| {
        s.container = Some((
            "/v2/credentials/task".into(),
            AK.into(),
            Some("Bearer pod-identity-token".into()),
        ));
        s.instance_role = Some(("reader".into(), AK.into()));
        s.imds_v2_required = true;
    });
    let container = AwsCredentialConfig::Container(Container {
        url: format!("{}/v2/credentials/task", server.url()),
        token_file: Some(auth),
        token: None,
    });
    let (c, _) = client(&settings(server.url(), AwsView::Organization, container))?;
    assert_eq!(c.list(deadline()).await?, expected);
    assert_eq!(c.credential_status().map(|s| s.kind), Some("container"));

    let imds = AwsCredentialConfig::Imds(Imds {
        endpoint: server.url(),
        v1_fallback: false,
    });
    let (c, _) = client(&settings(server.url(), AwsView::Organization, imds))?;
    assert_eq!(c.list(deadline()).await?, expected);
    let token_put = server
        .sim
        .with_aws_identity(|s| s.last("MetadataToken").cloned())
        .ok_or("no token request")?;
    assert_eq!(token_put.method, "PUT");
    assert_eq!(
        token_put.header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    assert!(c.credential_status().and_then(|s| s.expires_at).is_some());
    assert_eq!(server.sim.sessions_issued(AK), 2);
    Ok(())
}

/// IMDSv1 is used only when the token PUT is refused (404 here) and the fallback is
/// allowed (botocore's default); with `AWS_EC2_METADATA_V1_DISABLED` it is an error.
#[tokio::test]
async fn imds_falls_back_to_v1_only_when_allowed() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AwsOrganization, 2);
    server.sim.with_aws_identity(|s| {
        s.instance_role = Some(("reader".into(), AK.into()));
        s.imds_v2_unavailable = true;
    });
    let imds = |v1_fallback| {
        AwsCredentialConfig::Imds(Imds {
            endpoint: server.url(),
            v1_fallback,
        })
    };
    let (c, _) = client(&settings(server.url(), AwsView::Organization, imds(true)))?;
    assert_eq!(c.list(deadline()).await?, expected);
    let role_get = server
        .sim
        .with_aws_identity(|s| s.last("MetadataRole").cloned())
        .ok_or("no role request")?;
    assert_eq!(role_get.header("x-aws-ec2-metadata-token"), None);
    let (c, _) = client(&settings(server.url(), AwsView::Organization, imds(false)))?;
    let e = expect_err(c.list(deadline()).await);
    assert_eq!(
        (e.reason, e.http_status),
        (Reason::Credentials, Some(404)),
        "{e}"
    );
    Ok(())
}

/// Faults stay with their tenant: while one source's account fails, another's,
/// served by the same simulator at the same time, lists completely.
#[tokio::test]
async fn a_faulted_tenant_does_not_affect_another() -> TestResult {
    let server = start_sim().await?;
    seed(&server, AK, Dataset::AwsOrganization, 50);
    let healthy = seed(&server, MEMBER_AK, Dataset::AwsAccount, 50);
    server
        .sim
        .add_fault(AK, fault(FaultKind::ServerError, None));
    let broken = org_client(&server)?;
    let (fine, _) = client(&settings(
        server.url(),
        AwsView::Account,
        fixed(MEMBER_AK, MEMBER_SECRET, None),
    ))?;
    let (a, b) = tokio::join!(broken.list(deadline()), fine.list(deadline()));
    assert_eq!(expect_err(a).reason, Reason::Server);
    assert_eq!(b?, healthy);
    assert_eq!(server.sim.call_count(MEMBER_AK, ACTION_LIST_FOR_ACCOUNT), 3);
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ORGANIZATION), 4);
    Ok(())
}
