//! The Alibaba client against the simulated Alibaba endpoint, over real HTTP on
//! loopback: pagination and call counts, both signatures, STS, faults and reasons.

use handshake_exporter::config::{AlibabaSignature, SourceConfig, View};
use handshake_exporter::error::{ApiError, Reason};
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::model::{Handshake, Provider};
use handshake_exporter::provider::HandshakeProvider;
use handshake_exporter::provider::alibaba::{
    ACTION_GET_HANDSHAKE, ACTION_LIST_FOR_ACCOUNT, ACTION_LIST_FOR_RESOURCE_DIRECTORY,
    AlibabaClient,
};
use handshake_exporter::secret::{Credentials, Secret};
use handshake_exporter::sim::{self, Dataset, Fault, FaultKind, Sim, SimServer, Tenant, data};
use handshake_exporter::transport::{RetryPolicy, Transport, TransportSettings};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

const AK: &str = "LTAI-test-key";
const SECRET: &str = "test-secret-value";
const STS_AK: &str = "STS.test-temp-key";
const STS_SECRET: &str = "temp-secret-value";
const STS_TOKEN: &str = "CAIS+fake/STS/token==";
const SOURCE: &str = "corp-rd";

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// reqwest is built with `rustls-no-provider`: a crypto provider must be installed
/// before any client is built, even for plain-HTTP tests.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn start_sim() -> Result<SimServer, std::io::Error> {
    let sim = Sim::new();
    let mut plain = Tenant::new(AK, SECRET);
    plain.datasets.insert(Dataset::AlibabaAccount, Vec::new());
    sim.add_tenant(plain);
    let mut sts = Tenant::new(STS_AK, STS_SECRET);
    sts.security_token = Some(STS_TOKEN.into());
    sim.add_tenant(sts);
    sim::start(sim, ([127, 0, 0, 1], 0).into()).await
}

/// Put `n` generated invitations in a dataset of a tenant and return them as the
/// client should report them.
fn seed(server: &SimServer, ak: &str, dataset: Dataset, n: usize) -> Vec<Handshake> {
    let items = data::generate(dataset, n, 42, chrono::Utc::now());
    server.sim.set_dataset(ak, dataset, items.clone());
    items
        .into_iter()
        .map(|mut h| {
            h.source = Arc::from(SOURCE);
            h
        })
        .collect()
}

struct Setup {
    view: View,
    signature: AlibabaSignature,
    page_size: u32,
    access_key_id: &'static str,
    secret: &'static str,
    token: Option<&'static str>,
    handshake_ids: Vec<String>,
    request_timeout: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            view: View::ResourceDirectory,
            signature: AlibabaSignature::V3,
            page_size: 100,
            access_key_id: AK,
            secret: SECRET,
            token: None,
            handshake_ids: Vec::new(),
            request_timeout: Duration::from_secs(5),
        }
    }
}

fn client(
    server: &SimServer,
    setup: Setup,
) -> Result<(AlibabaClient, Arc<ExporterMetrics>), String> {
    install_crypto_provider();
    let source = SourceConfig {
        name: SOURCE.into(),
        provider: Provider::Alibaba,
        view: setup.view,
        handshake_ids: setup.handshake_ids,
        endpoint: server.url(),
        signature: setup.signature,
        page_size: setup.page_size,
        credentials: Credentials {
            access_key_id: setup.access_key_id.into(),
            access_key_secret: Secret::new(setup.secret),
            security_token: setup.token.map(Secret::new),
            domain_id: None,
        }
        .into(),
        rate_limit: None,
        connect_timeout: Duration::from_secs(1),
        request_timeout: setup.request_timeout,
        line: 0,
    };
    let metrics = Arc::new(ExporterMetrics::new(false));
    let transport = Transport::new(
        Provider::Alibaba,
        SOURCE.into(),
        TransportSettings {
            connect_timeout: source.connect_timeout,
            request_timeout: source.request_timeout,
            rate_limit: None,
            // Short waits keep retry tests fast; the policy itself is the transport's.
            retry: RetryPolicy {
                max_attempts: 4,
                base: Duration::from_millis(10),
                cap: Duration::from_millis(50),
            },
        },
        metrics.clone(),
        Arc::new(Semaphore::new(16)),
    )?;
    Ok((AlibabaClient::new(&source, transport), metrics))
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

#[tokio::test]
async fn two_hundred_fifty_invitations_arrive_complete_in_three_calls() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AlibabaResourceDirectory, 250);
    let (client, _) = client(&server, Setup::default())?;
    let listed = client.list(deadline()).await?;
    assert_eq!(listed, expected);
    assert_eq!(
        server
            .sim
            .call_count(AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY),
        3
    );
    Ok(())
}

#[tokio::test]
async fn call_counts_are_exactly_the_number_of_pages() -> TestResult {
    let server = start_sim().await?;
    for (n, page_size, calls) in [
        (0, 100, 1),
        (1000, 100, 10),
        (100, 100, 1),
        (101, 100, 2),
        (7, 3, 3),
    ] {
        server.sim.reset_calls(AK);
        let expected = seed(&server, AK, Dataset::AlibabaResourceDirectory, n);
        let (client, _) = client(
            &server,
            Setup {
                page_size,
                ..Setup::default()
            },
        )?;
        let listed = client.list(deadline()).await?;
        assert_eq!(listed.len(), n);
        assert_eq!(listed, expected);
        assert_eq!(
            server
                .sim
                .call_count(AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY),
            calls,
            "{n} invitations, PageSize {page_size}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn account_view_with_no_invitations_takes_one_call() -> TestResult {
    let server = start_sim().await?;
    let (client, _) = client(
        &server,
        Setup {
            view: View::Account,
            ..Setup::default()
        },
    )?;
    assert_eq!(client.list(deadline()).await?, []);
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ACCOUNT), 1);
    Ok(())
}

/// Pages after the first go out concurrently, at most `MAX_IN_FLIGHT` (10) at a time:
/// 1,000 invitations are page 1 and then all nine other pages at once (two round
/// trips); 2,000 invitations never have more than ten requests in flight. The
/// simulator counts requests in flight, so this does not depend on timing.
#[tokio::test]
async fn later_pages_are_fetched_concurrently() -> TestResult {
    let server = start_sim().await?;
    seed(&server, AK, Dataset::AlibabaResourceDirectory, 1000);
    server.sim.set_latency(Duration::from_millis(150));
    let (client, _) = client(&server, Setup::default())?;
    let started = std::time::Instant::now();
    assert_eq!(client.list(deadline()).await?.len(), 1000);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "two round trips at least"
    );
    assert_eq!(
        server.sim.max_in_flight(),
        9,
        "page 1, then pages 2-10 together"
    );

    seed(&server, AK, Dataset::AlibabaResourceDirectory, 2000);
    server.sim.reset_max_in_flight();
    assert_eq!(client.list(deadline()).await?.len(), 2000);
    assert_eq!(
        server.sim.max_in_flight(),
        handshake_exporter::provider::alibaba::MAX_IN_FLIGHT,
        "bounded"
    );
    Ok(())
}

#[tokio::test]
async fn v1_signatures_are_accepted_too() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AlibabaAccount, 250);
    let (client, _) = client(
        &server,
        Setup {
            view: View::Account,
            signature: AlibabaSignature::V1,
            ..Setup::default()
        },
    )?;
    assert_eq!(client.list(deadline()).await?, expected);
    assert_eq!(server.sim.call_count(AK, ACTION_LIST_FOR_ACCOUNT), 3);
    let one = &expected[17];
    assert_eq!(&client.get(&one.id, deadline()).await?, one);
    Ok(())
}

#[tokio::test]
async fn sts_credentials_work_with_both_signatures_and_a_wrong_token_is_auth() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, STS_AK, Dataset::AlibabaResourceDirectory, 120);
    for signature in [AlibabaSignature::V3, AlibabaSignature::V1] {
        let sts = |token| Setup {
            signature,
            access_key_id: STS_AK,
            secret: STS_SECRET,
            token,
            ..Setup::default()
        };
        let (good, _) = client(&server, sts(Some(STS_TOKEN)))?;
        assert_eq!(good.list(deadline()).await?, expected, "{signature:?}");
        let (wrong, _) = client(&server, sts(Some("CAIS+another/token==")))?;
        let err = expect_err(wrong.list(deadline()).await);
        assert_eq!(err.reason, Reason::Auth, "{signature:?}: {err}");
        assert_eq!(err.code.as_deref(), Some("InvalidSecurityToken.Mismatch"));
        let (missing, _) = client(&server, sts(None))?;
        let err = expect_err(missing.list(deadline()).await);
        assert_eq!(
            (err.reason, err.code.as_deref()),
            (Reason::Auth, Some("MissingSecurityToken"))
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_is_auth_not_retried_and_never_shown() -> TestResult {
    let server = start_sim().await?;
    seed(&server, STS_AK, Dataset::AlibabaResourceDirectory, 5);
    for signature in [AlibabaSignature::V3, AlibabaSignature::V1] {
        server.sim.reset_calls(STS_AK);
        let (client, _) = client(
            &server,
            Setup {
                signature,
                access_key_id: STS_AK,
                secret: "not-the-secret",
                token: Some(STS_TOKEN),
                ..Setup::default()
            },
        )?;
        let err = expect_err(client.list(deadline()).await);
        assert_eq!(err.reason, Reason::Auth);
        assert_eq!(err.http_status, Some(400));
        assert_eq!(err.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert!(err.request_id.is_some());
        assert_eq!(
            server
                .sim
                .call_count(STS_AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY),
            1
        );
        // The V1 string to sign the server quotes holds the (encoded) token.
        let shown = format!("{err} {err:?}");
        for secret in ["not-the-secret", "CAIS", "STS%252F", "token"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }
    let unknown = Setup {
        access_key_id: "LTAI-nobody",
        ..Setup::default()
    };
    let (client, _) = client(&server, unknown)?;
    let err = expect_err(client.list(deadline()).await);
    assert_eq!((err.reason, err.http_status), (Reason::Auth, Some(404)));
    assert_eq!(err.code.as_deref(), Some("InvalidAccessKeyId.NotFound"));
    Ok(())
}

#[tokio::test]
async fn a_throttle_is_retried_counted_and_then_succeeds() -> TestResult {
    let server = start_sim().await?;
    let expected = seed(&server, AK, Dataset::AlibabaResourceDirectory, 250);
    server.sim.add_fault(
        AK,
        fault(
            FaultKind::Throttle {
                retry_after_ms: Some(30),
            },
            Some(1),
        ),
    );
    let (client, metrics) = client(&server, Setup::default())?;
    assert_eq!(client.list(deadline()).await?, expected);
    assert_eq!(
        server
            .sim
            .call_count(AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY),
        4
    );
    let retries = metrics
        .api_retries
        .with_label_values(&["alibaba", SOURCE, ACTION_LIST_FOR_RESOURCE_DIRECTORY])
        .get();
    assert_eq!(retries, 1);
    let throttled = metrics
        .api_requests
        .with_label_values(&["alibaba", SOURCE, ACTION_LIST_FOR_RESOURCE_DIRECTORY, "429"])
        .get();
    assert_eq!(throttled, 1);
    Ok(())
}

#[tokio::test]
async fn lasting_throttling_and_server_errors_give_their_reasons_after_retries() -> TestResult {
    let server = start_sim().await?;
    seed(&server, AK, Dataset::AlibabaResourceDirectory, 10);
    for (kind, reason, status) in [
        (
            FaultKind::Throttle {
                retry_after_ms: None,
            },
            Reason::Throttled,
            429,
        ),
        (FaultKind::ServerError, Reason::Server, 503),
    ] {
        server.sim.clear_faults(AK);
        server.sim.reset_calls(AK);
        server.sim.add_fault(AK, fault(kind, None));
        let (client, metrics) = client(&server, Setup::default())?;
        let err = expect_err(client.list(deadline()).await);
        assert_eq!(
            (err.reason, err.http_status),
            (reason, Some(status)),
            "{err}"
        );
        assert_eq!(
            server
                .sim
                .call_count(AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY),
            4
        );
        let retries = metrics
            .api_retries
            .with_label_values(&["alibaba", SOURCE, ACTION_LIST_FOR_RESOURCE_DIRECTORY])
            .get();
        assert_eq!(retries, 3);
    }
    Ok(())
}

#[tokio::test]
async fn broken_answers_are_bad_responses_never_empty_lists() -> TestResult {
    let server = start_sim().await?;
    seed(&server, AK, Dataset::AlibabaResourceDirectory, 250);
    for kind in [
        FaultKind::Malformed,
        FaultKind::Truncated,
        FaultKind::WrongShape,
        FaultKind::Lie,
        FaultKind::ZeroPageSize,
    ] {
        server.sim.clear_faults(AK);
        server.sim.add_fault(AK, fault(kind.clone(), None));
        let (client, _) = client(&server, Setup::default())?;
        let err = expect_err(client.list(deadline()).await);
        assert_eq!(err.reason, Reason::BadResponse, "{kind:?}: {err}");
        if kind == FaultKind::Lie {
            // Every page claims 500 more than there are: page 3 comes up short.
            assert!(err.message.contains("before TotalCount"), "{err}");
        }
    }
    // A lie told only on page 1 shows when the later pages tell the truth.
    server.sim.clear_faults(AK);
    server.sim.add_fault(AK, fault(FaultKind::Lie, Some(1)));
    let (client, _) = client(&server, Setup::default())?;
    let err = expect_err(client.list(deadline()).await);
    assert_eq!(err.reason, Reason::BadResponse);
    assert!(err.message.contains("TotalCount changed"), "{err}");
    Ok(())
}

#[tokio::test]
async fn an_answer_slower_than_the_request_timeout_is_a_timeout() -> TestResult {
    let server = start_sim().await?;
    seed(&server, AK, Dataset::AlibabaResourceDirectory, 3);
    server
        .sim
        .add_fault(AK, fault(FaultKind::Hang { ms: 2_000 }, None));
    let (client, _) = client(
        &server,
        Setup {
            request_timeout: Duration::from_millis(100),
            ..Setup::default()
        },
    )?;
    let err = expect_err(client.list(deadline()).await);
    assert_eq!(err.reason, Reason::Timeout, "{err}");
    // A short hang within the timeout is only slow.
    server.sim.clear_faults(AK);
    server
        .sim
        .add_fault(AK, fault(FaultKind::Hang { ms: 20 }, Some(1)));
    assert_eq!(client.list(deadline()).await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn the_resource_directory_view_without_a_directory_is_not_enabled() -> TestResult {
    let server = start_sim().await?;
    let (client, _) = client(&server, Setup::default())?;
    let err = expect_err(client.list(deadline()).await);
    assert_eq!(
        (err.reason, err.http_status),
        (Reason::NotEnabled, Some(404))
    );
    assert_eq!(
        err.code.as_deref(),
        Some("EntityNotExists.ResourceDirectory")
    );
    Ok(())
}

#[tokio::test]
async fn the_ids_view_gets_each_configured_invitation() -> TestResult {
    let server = start_sim().await?;
    let rd = seed(&server, AK, Dataset::AlibabaResourceDirectory, 30);
    let account = seed(&server, AK, Dataset::AlibabaAccount, 5);
    let wanted: Vec<Handshake> = rd.iter().step_by(3).chain(&account[..2]).cloned().collect();
    let mut ids: Vec<String> = wanted.iter().map(|h| h.id.clone()).collect();
    ids.push(wanted[0].id.clone()); // a repeated id is fetched and reported once
    let (client, _) = client(
        &server,
        Setup {
            view: View::Ids,
            handshake_ids: ids,
            ..Setup::default()
        },
    )?;
    assert_eq!(client.list(deadline()).await?, wanted);
    assert_eq!(
        server.sim.call_count(AK, ACTION_GET_HANDSHAKE),
        wanted.len() as u64
    );
    assert_eq!(
        server
            .sim
            .call_count(AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY),
        0
    );

    server.sim.delete_handshake(AK, &wanted[1].id);
    let err = expect_err(client.list(deadline()).await);
    assert_eq!(err.reason, Reason::NotFound);
    Ok(())
}

#[tokio::test]
async fn get_fetches_one_invitation_and_reports_unknown_ones_as_not_found() -> TestResult {
    let server = start_sim().await?;
    let rd = seed(&server, AK, Dataset::AlibabaResourceDirectory, 4);
    let (client, _) = client(&server, Setup::default())?;
    assert_eq!(client.get(&rd[2].id, deadline()).await?, rd[2]);
    let err = expect_err(client.get("h-0000000000000000", deadline()).await);
    assert_eq!((err.reason, err.http_status), (Reason::NotFound, Some(404)));
    assert_eq!(err.code.as_deref(), Some("EntityNotExists.Handshake"));
    let err = expect_err(client.get("not-an-id", deadline()).await);
    assert_eq!(err.reason, Reason::BadRequest);
    server
        .sim
        .add_fault(AK, fault(FaultKind::WrongShape, Some(1)));
    let err = expect_err(client.get(&rd[0].id, deadline()).await);
    assert_eq!(err.reason, Reason::BadResponse);
    Ok(())
}
