//! The Alibaba client against the simulated Alibaba endpoint, over real HTTP on
//! loopback: pagination and call counts, both signatures, STS, faults and reasons.

use handshake_exporter::config::View;
use handshake_exporter::credentials::{CredentialConfig, SecretSource, StaticKeys};
use handshake_exporter::error::{ApiError, Reason};
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::model::{Handshake, Provider};
use handshake_exporter::provider::HandshakeProvider;
use handshake_exporter::provider::Settings;
use handshake_exporter::provider::alibaba::{
    ACTION_GET_HANDSHAKE, ACTION_LIST_FOR_ACCOUNT, ACTION_LIST_FOR_RESOURCE_DIRECTORY,
    AlibabaClient,
};
use handshake_exporter::provider::alibaba::{AlibabaSettings, AlibabaSignature};
use handshake_exporter::secret::{Credentials, Secret};
use handshake_exporter::sim::recorder::{Recorder, json_response, redirect_response};
use handshake_exporter::sim::{Churn, Dataset, Fault, FaultKind, Sim, SimServer, Tenant, data};
use handshake_exporter::transport::RetryPolicy;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const AK: &str = "LTAI-test-key";
const SECRET: &str = "test-secret-value";
const STS_AK: &str = "STS.test-temp-key";
const STS_SECRET: &str = "temp-secret-value";
const STS_TOKEN: &str = "CAIS+fake/STS/token==";
const SOURCE: &str = "corp-rd";

type TestResult = Result<(), Box<dyn std::error::Error>>;

mod common;
use common::{SourceParams, TransportParams};

/// A simulator with the plain tenant (an empty account view) and the STS tenant.
async fn start_sim() -> Result<SimServer, std::io::Error> {
    let sim = Sim::new();
    sim.add_tenant(common::tenant(
        AK,
        SECRET,
        &[(Dataset::AlibabaAccount, 0, 42)],
    ));
    let mut sts = Tenant::new(STS_AK, STS_SECRET);
    sts.security_token = Some(STS_TOKEN.into());
    sim.add_tenant(sts);
    common::start_sim(sim).await
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
    /// Another endpoint than the simulator's.
    endpoint: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            view: View("resource_directory"),
            signature: AlibabaSignature::V3,
            page_size: 100,
            access_key_id: AK,
            secret: SECRET,
            token: None,
            handshake_ids: Vec::new(),
            request_timeout: Duration::from_secs(5),
            endpoint: None,
        }
    }
}

fn client(
    server: &SimServer,
    setup: Setup,
) -> Result<(AlibabaClient, Arc<ExporterMetrics>), String> {
    let credentials = Credentials {
        access_key_id: setup.access_key_id.into(),
        access_key_secret: Secret::new(setup.secret),
        security_token: setup.token.map(Secret::new),
        domain_id: None,
    }
    .into();
    client_with(server, setup, credentials)
}

fn client_with(
    server: &SimServer,
    setup: Setup,
    credentials: CredentialConfig,
) -> Result<(AlibabaClient, Arc<ExporterMetrics>), String> {
    handshake_exporter::init_crypto();
    let source = common::source_config(SourceParams {
        provider: Provider::Alibaba,
        name: SOURCE.into(),
        view: setup.view,
        handshake_ids: setup.handshake_ids,
        endpoint: setup.endpoint.unwrap_or_else(|| server.url()),
        credentials,
        page_size: setup.page_size,
        settings: Some(Settings::new(AlibabaSettings {
            signature: setup.signature,
        })),
        connect_timeout: Duration::from_secs(1),
        request_timeout: setup.request_timeout,
    });
    let metrics = Arc::new(ExporterMetrics::new(false));
    let transport = common::transport(
        Provider::Alibaba,
        SOURCE,
        TransportParams {
            connect_timeout: source.connect_timeout,
            request_timeout: source.request_timeout,
            retry: RetryPolicy {
                max_attempts: 4,
                base: Duration::from_millis(10),
                cap: Duration::from_millis(50),
            },
            outbound: 16,
        },
        metrics.clone(),
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
            view: View("account"),
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
            view: View("account"),
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
    // A TotalCount told only on page 1 looks like a list that changed while it was
    // read: one more read, which adds up, is the answer.
    server.sim.clear_faults(AK);
    server.sim.add_fault(AK, fault(FaultKind::Lie, Some(1)));
    let (client, _) = client(&server, Setup::default())?;
    let expected: Vec<Handshake> = server
        .sim
        .dataset(AK, Dataset::AlibabaResourceDirectory)
        .into_iter()
        .map(|mut h| {
            h.source = Arc::from(SOURCE);
            h
        })
        .collect();
    assert_eq!(client.list(deadline()).await?, expected);
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
            view: View::IDS,
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

    // An id the cloud no longer knows (EntityNotExists.Handshake) is left out and
    // reported; the others are served.
    server.sim.delete_handshake(AK, &wanted[1].id);
    let mut rest = wanted.clone();
    let gone = rest.remove(1);
    assert_eq!(client.list(deadline()).await?, rest);
    let listing = client.fetch(deadline()).await?;
    assert_eq!(listing.handshakes, rest);
    assert_eq!(listing.missing_ids, [gone.id.as_str()]);

    // Any other error still fails the refresh, nothing partial.
    for (kind, reason) in [
        (FaultKind::ServerError, Reason::Server),
        (FaultKind::AuthFailure, Reason::Auth),
        (FaultKind::Malformed, Reason::BadResponse),
    ] {
        server.sim.clear_faults(AK);
        server.sim.add_fault(AK, fault(kind.clone(), None));
        let err = expect_err(client.fetch(deadline()).await);
        assert_eq!(err.reason, reason, "{kind:?}: {err}");
    }
    server.sim.clear_faults(AK);
    assert!(
        !handshake_exporter::provider::alibaba::is_missing_handshake(
            &handshake_exporter::provider::alibaba::parse_error(
                ACTION_GET_HANDSHAKE,
                404,
                &Default::default(),
                b"<html>404 Not Found</html>"
            )
        ),
        "a 404 without the API's EntityNotExists code is not a missing invitation"
    );
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

/// An endpoint that answers 307 to another host: the redirect is not followed (the
/// other host receives nothing, so no `x-acs-security-token`, no V1 query with the
/// `SecurityToken`, no `Referer`), it is a `bad_response` naming the status, it is
/// not retried, and the `Location` (whose query could carry anything) is not quoted.
#[tokio::test]
async fn a_redirect_is_not_followed_and_nothing_reaches_its_target() -> TestResult {
    let server = start_sim().await?;
    // If a request got through, the answer would even look like an empty list.
    let target = Recorder::start(json_response(
        r#"{"RequestId":"r","TotalCount":0,"PageNumber":1,"PageSize":100,"Handshakes":{"Handshake":[]}}"#,
    ))
    .await?;
    let redirector = Recorder::start(redirect_response(&format!(
        "{}/collect?leak=1",
        target.url()
    )))
    .await?;
    let mut results = Vec::new();
    for (signature, view) in [
        (AlibabaSignature::V3, View("resource_directory")),
        (AlibabaSignature::V1, View("resource_directory")),
        (AlibabaSignature::V3, View::IDS),
        (AlibabaSignature::V1, View::IDS),
    ] {
        let (client, _) = client(
            &server,
            Setup {
                signature,
                view,
                handshake_ids: vec!["h-abc123".into()],
                access_key_id: STS_AK,
                secret: STS_SECRET,
                token: Some(STS_TOKEN),
                endpoint: Some(redirector.url()),
                ..Setup::default()
            },
        )?;
        results.push((signature, view, client.list(deadline()).await));
    }
    assert_eq!(
        target.received(),
        Vec::<String>::new(),
        "the redirect target received requests"
    );
    for (signature, view, result) in results {
        let err = expect_err(result);
        assert_eq!(
            err.reason,
            Reason::BadResponse,
            "{signature:?} {view:?}: {err}"
        );
        assert_eq!(err.http_status, Some(307));
        assert!(
            err.message
                .contains("unexpected redirect: HTTP 307 (redirects are not followed)"),
            "{err}"
        );
        let shown = err.to_string();
        assert!(
            !shown.contains("collect") && !shown.contains("leak"),
            "{shown}"
        );
        assert!(!shown.contains(STS_TOKEN), "{shown}");
    }
    // One request per refresh: a 3xx is not retried.
    assert_eq!(redirector.received().len(), 4);
    Ok(())
}

/// A directory that changes once while it is read (after page 1 was answered): the
/// refresh succeeds after one more read, with every invitation that existed
/// throughout, no id twice, and at most two reads' worth of calls. Additions move
/// invitations onto later pages (an id twice), deletions onto earlier ones (one
/// skipped): both are covered, with and without a TotalCount change.
#[tokio::test]
async fn a_directory_that_changes_once_while_read_is_read_again_once() -> TestResult {
    let server = start_sim().await?;
    let (client, _) = client(&server, Setup::default())?;
    for (insert, delete) in [(2, 0), (0, 2), (1, 1), (3, 1), (40, 0), (0, 40)] {
        let initial = seed(&server, AK, Dataset::AlibabaResourceDirectory, 250);
        server.sim.reset_calls(AK);
        server.sim.set_churn(
            AK,
            Churn::once(Dataset::AlibabaResourceDirectory, 1, insert, delete),
        );
        let listed = client.list(deadline()).await;
        let after = server.sim.dataset(AK, Dataset::AlibabaResourceDirectory);
        server.sim.clear_churn(AK);
        let listed = listed.map_err(|e| format!("+{insert} -{delete}: {e}"))?;

        let ids: Vec<&str> = listed.iter().map(|h| h.id.as_str()).collect();
        let unique: std::collections::HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "+{insert} -{delete}: an id twice");
        let now: std::collections::HashSet<&str> = after.iter().map(|h| h.id.as_str()).collect();
        for stable in initial.iter().filter(|h| now.contains(h.id.as_str())) {
            assert!(
                unique.contains(stable.id.as_str()),
                "+{insert} -{delete}: {} existed throughout and is missing",
                stable.id
            );
        }
        let was: std::collections::HashSet<&str> = initial.iter().map(|h| h.id.as_str()).collect();
        assert!(
            ids.iter().all(|id| was.contains(id) || now.contains(id)),
            "+{insert} -{delete}: an invitation that never existed"
        );
        // Two reads at most: 3 pages each (or 4 after the 40 additions).
        let calls = server
            .sim
            .call_count(AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY);
        let pages = |n: usize| n.div_ceil(100) as u64;
        assert!(
            calls > pages(initial.len()) && calls <= pages(initial.len()) + pages(after.len()),
            "+{insert} -{delete}: {calls} list calls"
        );
    }
    Ok(())
}

/// A directory that changes before every page: both reads see a change, and the
/// refresh is a `bad_response` saying so, after at most two reads.
#[tokio::test]
async fn a_directory_that_keeps_changing_is_a_bad_response_after_two_reads() -> TestResult {
    let server = start_sim().await?;
    seed(&server, AK, Dataset::AlibabaResourceDirectory, 250);
    server.sim.set_churn(
        AK,
        Churn::every_request(Dataset::AlibabaResourceDirectory, 1, 0),
    );
    let (client, _) = client(&server, Setup::default())?;
    let err = expect_err(client.list(deadline()).await);
    assert_eq!(err.reason, Reason::BadResponse, "{err}");
    assert!(
        err.message.contains("kept changing during two whole reads"),
        "{err}"
    );
    let calls = server
        .sim
        .call_count(AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY);
    assert!((4..=6).contains(&calls), "{calls} list calls");
    Ok(())
}

// ---------------------------------------------------------------------------
// Temporary credentials: STS AssumeRole / AssumeRoleWithOIDC and the ECS
// metadata service, against the simulator's identity endpoints.

use handshake_exporter::provider::alibaba::credentials::{
    AlibabaCredentialConfig, EcsRamRole, OidcRoleArn, RamRoleArn,
};
use handshake_exporter::sim::alibaba_identity::{Imdsv2, Role};

/// The account whose invitations the roles reach.
const TARGET_AK: &str = "LTAI-target-account";
const TARGET_SECRET: &str = "target-secret-never-used";
const ROLE_ARN: &str = "acs:ram::1234567890123456:role/handshake-reader";
const OIDC_PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1";
const EXTERNAL_ID: &str = "ext-4711";

/// A simulator with a role (trusting any tenant, with an ExternalId) on an
/// account holding 30 invitations, an OIDC provider and an instance role.
async fn start_identity_sim(
    oidc_token: &str,
) -> Result<(SimServer, Vec<Handshake>), std::io::Error> {
    let server = start_sim().await?;
    server.sim.add_tenant(Tenant::new(TARGET_AK, TARGET_SECRET));
    let expected = seed(&server, TARGET_AK, Dataset::AlibabaResourceDirectory, 30);
    let token = oidc_token.to_string();
    server.sim.with_alibaba_identity(|id| {
        id.roles.insert(
            ROLE_ARN.into(),
            Role {
                tenant: TARGET_AK.into(),
                external_id: Some(EXTERNAL_ID.into()),
                trusted: None,
            },
        );
        id.oidc_providers.insert(OIDC_PROVIDER.into(), token);
        id.instance_role = Some(("handshake-reader-ecs".into(), TARGET_AK.into()));
    });
    Ok((server, expected))
}

fn ram_role(server: &SimServer, base: StaticKeys, external_id: Option<&str>) -> CredentialConfig {
    CredentialConfig::provider(AlibabaCredentialConfig::RamRoleArn(RamRoleArn {
        base,
        role_arn: ROLE_ARN.into(),
        role_session_name: "handshake-exporter".into(),
        external_id: external_id.map(str::to_string),
        policy: Some(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"resourcemanager:List*","Resource":"*"}]}"#.into()),
        duration: Duration::from_secs(900),
        sts_endpoint: server.url(),
    }))
}

fn keys(id: &str, secret: &str, token: Option<&str>) -> StaticKeys {
    StaticKeys {
        access_key_id: SecretSource::Value(Secret::new(id)),
        access_key_secret: SecretSource::Value(Secret::new(secret)),
        security_token: token.map(|t| SecretSource::Value(Secret::new(t))),
    }
}

fn metrics_text(metrics: &ExporterMetrics) -> String {
    let mut out = Vec::new();
    metrics.encode_into(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Every secret the simulator issued or was given, for leak checks.
fn all_secrets(server: &SimServer, extra: &[&str]) -> Vec<String> {
    let mut secrets: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    for s in server.sim.sessions(TARGET_AK) {
        secrets.push(s.secret);
        secrets.push(s.security_token);
    }
    secrets
}

#[tokio::test]
async fn ram_role_arn_assumes_the_role_with_a_signed_request_and_lists_with_the_session()
-> TestResult {
    let (server, expected) = start_identity_sim("unused").await?;
    let (client, metrics) = client_with(
        &server,
        Setup::default(),
        ram_role(&server, keys(AK, SECRET, None), Some(EXTERNAL_ID)),
    )?;
    assert_eq!(client.list(deadline()).await?, expected);
    // One AssumeRole, as credentials-go sends it: POST, common parameters in the
    // query, the operation's in a form body, V1-signed (the simulator checked the
    // signature with the caller's secret).
    let req = server
        .sim
        .with_alibaba_identity(|id| id.last("AssumeRole").cloned())
        .ok_or("no AssumeRole request")?;
    assert_eq!(req.method, "POST");
    for (name, value) in [
        ("Version", "2015-04-01"),
        ("Format", "JSON"),
        ("AccessKeyId", AK),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("RoleArn", ROLE_ARN),
        ("RoleSessionName", "handshake-exporter"),
        ("DurationSeconds", "900"),
        ("ExternalId", EXTERNAL_ID),
    ] {
        assert_eq!(req.param(name), Some(value), "{name}");
    }
    assert!(
        req.param("Policy")
            .is_some_and(|p| p.contains("resourcemanager:List*"))
    );
    assert!(req.param("Signature").is_some_and(|s| !s.is_empty()));
    assert_eq!(req.param("SecurityToken"), None);
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        server
            .sim
            .with_alibaba_identity(|id| id.call_count("AssumeRole")),
        1
    );
    // The list went to the role's account, signed with the session's keys.
    assert_eq!(
        server
            .sim
            .call_count(TARGET_AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY),
        1
    );
    let text = metrics_text(&metrics);
    assert!(
        text.contains(r#"action="AssumeRole",code="200""#),
        "AssumeRole counted:\n{text}"
    );
    let expiry = client
        .credential_status()
        .and_then(|s| s.expires_at)
        .ok_or("no expiry")?;
    assert!(expiry > handshake_exporter::clock::unix_now());
    assert!(text.contains("handshake_source_credentials_expiry_timestamp_seconds{"));
    for secret in all_secrets(&server, &[SECRET]) {
        assert!(!text.contains(&secret), "secret in metrics");
    }

    // A base key that is itself an STS token sends SecurityToken (and the caller's
    // session of another role works as a base too).
    let (client, _) = client_with(
        &server,
        Setup::default(),
        ram_role(
            &server,
            keys(STS_AK, STS_SECRET, Some(STS_TOKEN)),
            Some(EXTERNAL_ID),
        ),
    )?;
    assert_eq!(client.list(deadline()).await?.len(), 30);
    let req = server
        .sim
        .with_alibaba_identity(|id| id.last("AssumeRole").cloned())
        .ok_or("no AssumeRole request")?;
    assert_eq!(req.param("SecurityToken"), Some(STS_TOKEN));
    Ok(())
}

#[tokio::test]
async fn assume_role_errors_are_credential_failures_that_name_the_sts_code() -> TestResult {
    let (server, _) = start_identity_sim("unused").await?;
    for (config, code) in [
        (
            ram_role(&server, keys(AK, SECRET, None), Some("wrong-external-id")),
            "AuthenticationFail.NoPermission",
        ),
        (
            ram_role(&server, keys(AK, SECRET, None), None),
            "AuthenticationFail.NoPermission",
        ),
        (
            ram_role(&server, keys(AK, "not-the-secret", None), Some(EXTERNAL_ID)),
            "SignatureDoesNotMatch",
        ),
        (
            ram_role(&server, keys(STS_AK, STS_SECRET, None), Some(EXTERNAL_ID)),
            "MissingSecurityToken",
        ),
    ] {
        let (client, metrics) = client_with(&server, Setup::default(), config)?;
        let e = expect_err(client.list(deadline()).await);
        assert_eq!(e.reason, Reason::Credentials, "{code}: {e}");
        assert_eq!(e.action, "AssumeRole");
        assert_eq!(e.code.as_deref(), Some(code), "{e}");
        let shown = format!("{e} {e:?} {}", metrics_text(&metrics));
        for secret in [SECRET, "not-the-secret", STS_SECRET, STS_TOKEN] {
            assert!(!shown.contains(secret), "{code}: secret in {shown}");
        }
    }
    // An unknown role.
    server.sim.with_alibaba_identity(|id| id.roles.clear());
    let (client, _) = client_with(
        &server,
        Setup::default(),
        ram_role(&server, keys(AK, SECRET, None), None),
    )?;
    let e = expect_err(client.list(deadline()).await);
    assert_eq!(e.code.as_deref(), Some("EntityNotExist.Role"), "{e}");
    assert_eq!(
        server
            .sim
            .call_count(TARGET_AK, ACTION_LIST_FOR_RESOURCE_DIRECTORY),
        0,
        "no API call without credentials"
    );
    Ok(())
}

fn oidc(server: &SimServer, token_file: &std::path::Path) -> CredentialConfig {
    CredentialConfig::provider(AlibabaCredentialConfig::OidcRoleArn(OidcRoleArn {
        role_arn: ROLE_ARN.into(),
        oidc_provider_arn: OIDC_PROVIDER.into(),
        oidc_token_file: token_file.to_path_buf(),
        role_session_name: "handshake-exporter".into(),
        policy: None,
        duration: Duration::from_secs(3600),
        sts_endpoint: server.url(),
    }))
}

#[tokio::test]
async fn oidc_role_arn_sends_the_token_unsigned_and_rereads_the_file_rewritten_in_place()
-> TestResult {
    let (server, expected) = start_identity_sim("eyJ-first.token.sig").await?;
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJ-first.token.sig\n")?;
    // Short-lived credentials, so that the next list needs new ones.
    server.sim.set_credential_lifetime(Duration::from_secs(3));
    let (client, metrics) = client_with(&server, Setup::default(), oidc(&server, &token))?;
    assert_eq!(client.list(deadline()).await?, expected);
    let req = server
        .sim
        .with_alibaba_identity(|id| id.last("AssumeRoleWithOIDC").cloned())
        .ok_or("no AssumeRoleWithOIDC")?;
    assert_eq!(req.method, "POST");
    for (name, value) in [
        ("Version", "2015-04-01"),
        ("RoleArn", ROLE_ARN),
        ("OIDCProviderArn", OIDC_PROVIDER),
        ("OIDCToken", "eyJ-first.token.sig"),
        ("RoleSessionName", "handshake-exporter"),
        ("DurationSeconds", "3600"),
    ] {
        assert_eq!(req.param(name), Some(value), "{name}");
    }
    // Anonymous, as the SDK sends it.
    for absent in ["AccessKeyId", "Signature", "SecurityToken"] {
        assert_eq!(req.param(absent), None, "{absent}");
    }
    // Kubernetes rotates the projected token in place; the provider now accepts
    // only the new one.
    std::fs::write(&token, "eyJ-second.token.sig\n")?;
    server.sim.with_alibaba_identity(|id| {
        id.oidc_providers
            .insert(OIDC_PROVIDER.into(), "eyJ-second.token.sig".into())
    });
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert_eq!(client.list(deadline()).await?, expected);
    let (calls, last) = server.sim.with_alibaba_identity(|id| {
        (
            id.call_count("AssumeRoleWithOIDC"),
            id.last("AssumeRoleWithOIDC")
                .and_then(|r| r.param("OIDCToken").map(str::to_string)),
        )
    });
    assert_eq!(calls, 2);
    assert_eq!(last.as_deref(), Some("eyJ-second.token.sig"));
    let text = metrics_text(&metrics);
    assert!(
        text.contains(r#"action="AssumeRoleWithOIDC",code="200""#),
        "{text}"
    );
    for secret in all_secrets(&server, &["eyJ-first.token.sig", "eyJ-second.token.sig"]) {
        assert!(!text.contains(&secret), "secret in metrics");
    }
    // A token the provider refuses: a credentials failure naming STS's code.
    std::fs::write(&token, "eyJ-forged.token.sig\n")?;
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let e = expect_err(client.list(deadline()).await);
    assert_eq!(e.reason, Reason::Credentials, "{e}");
    assert_eq!(
        e.code.as_deref(),
        Some("AuthenticationFail.OIDCToken.InvalidSignature")
    );
    assert!(!format!("{e} {e:?}").contains("eyJ-forged"));
    Ok(())
}

fn ecs(server: &SimServer, role: Option<&str>, fallback: bool) -> CredentialConfig {
    CredentialConfig::provider(AlibabaCredentialConfig::EcsRamRole(EcsRamRole {
        role_name: role.map(str::to_string),
        metadata_endpoint: server.url(),
        imdsv1_fallback: fallback,
    }))
}

#[tokio::test]
async fn ecs_ram_role_uses_imdsv2_discovers_the_role_and_falls_back_to_imdsv1() -> TestResult {
    let (server, expected) = start_identity_sim("unused").await?;
    server
        .sim
        .with_alibaba_identity(|id| id.imdsv2 = Imdsv2::Required);
    let (client, metrics) = client_with(&server, Setup::default(), ecs(&server, None, true))?;
    assert_eq!(client.list(deadline()).await?, expected);
    let (token_req, name_req, role_req) = server.sim.with_alibaba_identity(|id| {
        (
            id.last("MetadataToken").cloned(),
            id.last("MetadataRoleName").cloned(),
            id.last("MetadataRole").cloned(),
        )
    });
    let token_req = token_req.ok_or("no token request")?;
    assert_eq!(token_req.method, "PUT");
    assert_eq!(
        token_req.header("x-aliyun-ecs-metadata-token-ttl-seconds"),
        Some("21600")
    );
    let name_req = name_req.ok_or("no role discovery")?;
    let role_req = role_req.ok_or("no role request")?;
    assert!(name_req.header("x-aliyun-ecs-metadata-token").is_some());
    assert!(role_req.header("x-aliyun-ecs-metadata-token").is_some());
    let text = metrics_text(&metrics);
    for action in ["MetadataToken", "MetadataRoleName", "MetadataRole"] {
        assert!(
            text.contains(&format!(r#"action="{action}",code="200""#)),
            "{action}:\n{text}"
        );
    }

    // An image without IMDSv2: the SDK's fallback to plain requests, with the role
    // name given (no discovery).
    server.sim.with_alibaba_identity(|id| {
        id.imdsv2 = Imdsv2::Unavailable;
        id.log.calls.clear();
    });
    let (client, _) = client_with(
        &server,
        Setup::default(),
        ecs(&server, Some("handshake-reader-ecs"), true),
    )?;
    assert_eq!(client.list(deadline()).await?.len(), 30);
    let (calls, role_req) = server
        .sim
        .with_alibaba_identity(|id| (id.log.calls.clone(), id.last("MetadataRole").cloned()));
    assert_eq!(calls.get("MetadataRoleName"), None);
    assert_eq!(calls.get("MetadataRole"), Some(&1));
    assert_eq!(
        role_req.and_then(|r| r.header("x-aliyun-ecs-metadata-token").map(str::to_string)),
        None
    );
    // With the fallback off, no token is a credentials failure.
    let (client, _) = client_with(&server, Setup::default(), ecs(&server, None, false))?;
    let e = expect_err(client.list(deadline()).await);
    assert_eq!(e.reason, Reason::Credentials, "{e}");
    assert_eq!(e.action, "MetadataToken");
    // A wrong role name: 404, named.
    server
        .sim
        .with_alibaba_identity(|id| id.imdsv2 = Imdsv2::Optional);
    let (client, _) = client_with(&server, Setup::default(), ecs(&server, Some("nope"), true))?;
    let e = expect_err(client.list(deadline()).await);
    assert_eq!(e.reason, Reason::Credentials, "{e}");
    assert!(e.message.contains("HTTP 404"), "{e}");
    Ok(())
}

/// Several credential lifetimes of listing every 200 ms: no failed call, and at
/// most two STS calls per lifetime (plus the first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_rotate_across_lifetimes_with_no_failed_call_and_bounded_sts_calls()
-> TestResult {
    let (server, expected) = start_identity_sim("unused").await?;
    let lifetime = Duration::from_secs(6);
    server.sim.set_credential_lifetime(lifetime);
    let (client, _) = client_with(
        &server,
        Setup::default(),
        ram_role(&server, keys(AK, SECRET, None), Some(EXTERNAL_ID)),
    )?;
    let started = std::time::Instant::now();
    let mut lists = 0;
    while started.elapsed() < Duration::from_secs(15) {
        let listed = client.list(deadline()).await;
        assert!(
            listed.as_ref().is_ok_and(|l| *l == expected),
            "list {lists} at {:?}: {:?}",
            started.elapsed(),
            listed.err()
        );
        lists += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let sts_calls = server
        .sim
        .with_alibaba_identity(|id| id.call_count("AssumeRole"));
    let lifetimes = elapsed.as_secs_f64() / lifetime.as_secs_f64();
    let bound = 2 * lifetimes.ceil() as u64 + 1;
    println!(
        "rotation: {lists} lists over {elapsed:?} ({lifetimes:.1} lifetimes of {lifetime:?}): \
         {sts_calls} AssumeRole calls = {:.2} per lifetime (bound {bound})",
        sts_calls as f64 / lifetimes
    );
    assert!(
        sts_calls >= lifetimes.floor() as u64,
        "credentials were not renewed: {sts_calls} AssumeRole calls"
    );
    assert!(sts_calls <= bound, "{sts_calls} AssumeRole calls > {bound}");
    assert_eq!(server.sim.sessions_issued(TARGET_AK) as u64, sts_calls);
    Ok(())
}

/// A key file rotated in place: the next AssumeRole signs with the new secret, the
/// credentials in hand are kept meanwhile (no extra STS call, no reload).
#[tokio::test]
async fn a_rotated_base_secret_file_is_used_for_the_next_assume_role() -> TestResult {
    let (server, expected) = start_identity_sim("unused").await?;
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("sk");
    std::fs::write(&secret_file, format!("{SECRET}\n"))?;
    server.sim.set_credential_lifetime(Duration::from_secs(3));
    let base = StaticKeys {
        access_key_id: SecretSource::Value(Secret::new(AK)),
        access_key_secret: SecretSource::File(secret_file.clone()),
        security_token: None,
    };
    let (client, _) = client_with(
        &server,
        Setup::default(),
        ram_role(&server, base, Some(EXTERNAL_ID)),
    )?;
    assert_eq!(client.list(deadline()).await?, expected);
    // The account rotates the key: the old secret stops working.
    server
        .sim
        .with_tenant(AK, |t| t.secret = "rotated-secret-value".into());
    std::fs::write(&secret_file, "rotated-secret-value\n")?;
    // Still within the first credentials: no new AssumeRole for the file change.
    assert_eq!(client.list(deadline()).await?, expected);
    assert_eq!(
        server
            .sim
            .with_alibaba_identity(|id| id.call_count("AssumeRole")),
        1
    );
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert_eq!(client.list(deadline()).await?, expected);
    let calls = server
        .sim
        .with_alibaba_identity(|id| id.call_count("AssumeRole"));
    assert_eq!(
        calls, 2,
        "the next AssumeRole signed with the rotated secret"
    );
    Ok(())
}

#[tokio::test]
async fn expired_session_keys_get_alibabas_expired_token_error() -> TestResult {
    let server = start_sim().await?;
    server.sim.add_tenant(Tenant::new(TARGET_AK, TARGET_SECRET));
    seed(&server, TARGET_AK, Dataset::AlibabaResourceDirectory, 3);
    let session = server
        .sim
        .issue_session(TARGET_AK, "STS.", Some(Duration::from_millis(1)))
        .ok_or("no session")?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (client, _) = client(
        &server,
        Setup {
            access_key_id: Box::leak(session.access_key_id.clone().into_boxed_str()),
            secret: Box::leak(session.secret.clone().into_boxed_str()),
            token: Some(Box::leak(session.security_token.clone().into_boxed_str())),
            ..Setup::default()
        },
    )?;
    let e = expect_err(client.list(deadline()).await);
    assert_eq!(
        e.code.as_deref(),
        Some("InvalidSecurityToken.Expired"),
        "{e}"
    );
    assert_eq!(e.http_status, Some(400));
    assert_eq!(e.reason, Reason::Auth);
    Ok(())
}
