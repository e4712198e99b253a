//! HuaweiClient against the simulated Huawei Organizations endpoint, over real HTTP on
//! loopback: paging, views, signature checks, STS tokens, retries and broken answers.

use handshake_exporter::config::View;
use handshake_exporter::error::{ApiError, Reason};
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::model::{Handshake, Provider};
use handshake_exporter::provider::HandshakeProvider;
use handshake_exporter::provider::huawei::{
    ACTION_LIST_RECEIVED, ACTION_LIST_SENT, ACTION_SHOW, HuaweiClient,
};
use handshake_exporter::secret::{Credentials, Secret};
use handshake_exporter::sim::recorder::{Recorder, json_response, redirect_response};
use handshake_exporter::sim::{self, Churn, Dataset, Fault, FaultKind, Sim, SimServer, Tenant};
use handshake_exporter::transport::RetryPolicy;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

type TestResult = Result<(), Box<dyn std::error::Error>>;

mod common;
use common::{SourceParams, TransportParams};

const AK: &str = "HWSIMAK0000000000001";
const SK: &str = "hwSimSecretKey000000000000000000000000001";
const STS_AK: &str = "HWSIMSTSAK0000000001";
const STS_SK: &str = "hwSimTempSecretKey0000000000000000000001";
const STS_TOKEN: &str = "gQpjbi1ub3J0aC00+sim/SecurityToken==";
const SEED: u64 = 42;

struct Harness {
    server: SimServer,
    metrics: Arc<ExporterMetrics>,
}

/// Everything about a source that the tests vary.
struct Source<'a> {
    name: &'a str,
    view: View,
    limit: u32,
    ids: Vec<String>,
    access_key_id: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    request_timeout: Duration,
    /// Another endpoint than the simulator's.
    endpoint: Option<String>,
}

impl Default for Source<'_> {
    fn default() -> Self {
        Source {
            name: "hw",
            view: View("sent"),
            limit: 2000,
            ids: Vec::new(),
            access_key_id: AK,
            secret: SK,
            token: None,
            request_timeout: Duration::from_secs(5),
            endpoint: None,
        }
    }
}

impl Harness {
    /// A simulator with one tenant (AK/SK) holding `sent` and `received` invitations.
    async fn start(sent: usize, received: usize) -> Result<Harness, Box<dyn std::error::Error>> {
        let sim = Sim::new();
        sim.add_tenant(common::tenant(
            AK,
            SK,
            &[
                (Dataset::HuaweiSent, sent, SEED),
                (Dataset::HuaweiReceived, received, SEED),
            ],
        ));
        let server = common::start_sim(sim).await?;
        Ok(Harness {
            server,
            metrics: Arc::new(ExporterMetrics::new(false)),
        })
    }

    fn sim(&self) -> &Sim {
        &self.server.sim
    }

    fn client(&self, s: Source<'_>) -> Result<HuaweiClient, String> {
        let config = common::source_config(SourceParams {
            provider: Provider::Huawei,
            name: s.name.into(),
            view: s.view,
            handshake_ids: s.ids,
            endpoint: s.endpoint.unwrap_or_else(|| self.server.url()),
            credentials: Credentials {
                access_key_id: s.access_key_id.into(),
                access_key_secret: Secret::new(s.secret),
                security_token: s.token.map(Secret::new),
                domain_id: Some("3f1b6a9c2e4d4f7b8a0c1d2e3f4a5b6c".into()),
            }
            .into(),
            page_size: s.limit,
            settings: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: s.request_timeout,
        });
        let transport = common::transport(
            Provider::Huawei,
            s.name,
            TransportParams {
                connect_timeout: config.connect_timeout,
                request_timeout: config.request_timeout,
                // Short backoff keeps the retry tests fast; four attempts as in production.
                retry: RetryPolicy {
                    max_attempts: 4,
                    base: Duration::from_millis(5),
                    cap: Duration::from_millis(50),
                },
                outbound: 16,
            },
            self.metrics.clone(),
        )?;
        Ok(HuaweiClient::new(&config, transport))
    }

    fn calls(&self, action: &str) -> u64 {
        self.sim().call_count(AK, action)
    }

    fn retries(&self, source: &str, action: &str) -> u64 {
        self.metrics
            .api_retries
            .with_label_values(&["huawei", source, action])
            .get()
    }

    fn fault(&self, kind: FaultKind, times: Option<u32>) {
        self.sim().add_fault(
            AK,
            Fault {
                kind,
                action: None,
                times,
            },
        );
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// What the client should have produced from a simulator dataset: the same
/// invitations, attributed to the client's source.
fn expected(items: Vec<Handshake>, source: &str) -> Vec<Handshake> {
    items
        .into_iter()
        .map(|mut h| {
            h.source = Arc::from(source);
            h
        })
        .collect()
}

fn ids(items: &[Handshake]) -> Vec<&str> {
    items.iter().map(|h| h.id.as_str()).collect()
}

fn assert_reason(result: Result<Vec<Handshake>, ApiError>, reason: Reason) -> ApiError {
    match result {
        Ok(items) => panic!("expected {reason}, got {} invitations", items.len()),
        Err(e) => {
            assert_eq!(e.reason, reason, "{e}");
            e
        }
    }
}

#[tokio::test]
async fn sent_invitations_arrive_complete_in_two_calls_at_the_default_limit() -> TestResult {
    let h = Harness::start(2300, 0).await?;
    let client = h.client(Source::default())?;
    let got = client.list(deadline()).await?;
    let want = expected(h.sim().dataset(AK, Dataset::HuaweiSent), "hw");
    assert_eq!(got.len(), 2300);
    assert_eq!(
        got.iter().map(|x| &x.id).collect::<HashSet<_>>().len(),
        2300
    );
    assert_eq!(got, want, "every field survives the round trip");
    assert_eq!(h.calls(ACTION_LIST_SENT), 2);
    assert_eq!(h.calls(ACTION_LIST_RECEIVED), 0);
    Ok(())
}

#[tokio::test]
async fn limit_100_takes_23_calls_and_the_encoded_markers_round_trip() -> TestResult {
    let h = Harness::start(2300, 0).await?;
    let client = h.client(Source {
        limit: 100,
        ..Source::default()
    })?;
    let got = client.list(deadline()).await?;
    let want = h.sim().dataset(AK, Dataset::HuaweiSent);
    // The sim's markers hold `/`, `+`, `=`, a space and `é`, and it rejects any
    // marker it cannot decode: 23 accepted calls whose pages line up exactly with
    // the dataset's order prove each marker reached it intact.
    assert_eq!(ids(&got), ids(&want), "pages are contiguous and complete");
    assert_eq!(h.calls(ACTION_LIST_SENT), 23);
    assert_eq!(h.retries("hw", ACTION_LIST_SENT), 0);
    Ok(())
}

#[tokio::test]
async fn received_view_lists_received_invitations() -> TestResult {
    let h = Harness::start(10, 250).await?;
    let client = h.client(Source {
        view: View("received"),
        limit: 200,
        ..Source::default()
    })?;
    let got = client.list(deadline()).await?;
    assert_eq!(
        got,
        expected(h.sim().dataset(AK, Dataset::HuaweiReceived), "hw")
    );
    assert_eq!(h.calls(ACTION_LIST_RECEIVED), 2);
    assert_eq!(h.calls(ACTION_LIST_SENT), 0);
    Ok(())
}

#[tokio::test]
async fn ids_view_shows_each_configured_id_once() -> TestResult {
    let h = Harness::start(30, 30).await?;
    let sent = h.sim().dataset(AK, Dataset::HuaweiSent);
    let received = h.sim().dataset(AK, Dataset::HuaweiReceived);
    let mut wanted: Vec<Handshake> = sent.iter().take(12).cloned().collect();
    wanted.extend(received.iter().take(5).cloned());
    let mut configured: Vec<String> = wanted.iter().map(|x| x.id.clone()).collect();
    configured.push(configured[0].clone()); // a duplicate in the config
    let client = h.client(Source {
        view: View::IDS,
        ids: configured,
        ..Source::default()
    })?;
    let got = client.list(deadline()).await?;
    assert_eq!(got, expected(wanted.clone(), "hw"), "in configured order");
    assert_eq!(h.calls(ACTION_SHOW), 17);
    assert_eq!(h.calls(ACTION_LIST_SENT), 0);

    // The live lookup goes through the same call.
    let one = client.get(&wanted[3].id, deadline()).await?;
    assert_eq!(one, expected(vec![wanted[3].clone()], "hw")[0]);
    Ok(())
}

#[tokio::test]
async fn show_of_an_unknown_id_is_not_found_and_the_id_reaches_the_sim_decoded() -> TestResult {
    let h = Harness::start(5, 0).await?;
    let client = h.client(Source::default())?;
    let odd_id = "h-no/such id+é";
    let err = client
        .get(odd_id, deadline())
        .await
        .err()
        .ok_or("an unknown id must fail")?;
    assert_eq!(err.reason, Reason::NotFound, "{err}");
    assert_eq!(err.http_status, Some(404));
    // The signature over the encoded path verified, and the sim decoded the id.
    assert!(err.message.contains(odd_id), "{err}");
    assert!(err.request_id.is_some(), "X-Request-Id is read");
    assert_eq!(h.calls(ACTION_SHOW), 1, "not_found is not retried");

    // In the ids view an id the cloud does not know is left out and reported; the
    // others are served.
    let first = h.sim().dataset(AK, Dataset::HuaweiSent)[0].clone();
    let ids_client = h.client(Source {
        view: View::IDS,
        ids: vec!["h-gone".into(), first.id.clone()],
        ..Source::default()
    })?;
    let got = ids_client.list(deadline()).await?;
    assert_eq!(got, expected(vec![first.clone()], "hw"));
    let listing = ids_client.fetch(deadline()).await?;
    assert_eq!(listing.missing_ids, ["h-gone"]);

    // Any other error still fails the refresh, nothing partial.
    for (kind, reason) in [
        (FaultKind::ServerError, Reason::Server),
        (FaultKind::AuthFailure, Reason::Auth),
        (FaultKind::Truncated, Reason::BadResponse),
    ] {
        h.sim().clear_faults(AK);
        h.fault(kind.clone(), None);
        assert_reason(ids_client.list(deadline()).await, reason);
    }
    h.sim().clear_faults(AK);
    Ok(())
}

#[tokio::test]
async fn a_repeated_marker_ends_the_refresh_instead_of_looping() -> TestResult {
    let h = Harness::start(500, 0).await?;
    h.fault(FaultKind::Lie, None);
    let client = h.client(Source {
        limit: 100,
        ..Source::default()
    })?;
    let err = assert_reason(client.list(deadline()).await, Reason::BadResponse);
    assert!(err.message.contains("marker repeated"), "{err}");
    assert_eq!(h.calls(ACTION_LIST_SENT), 2, "stops at the first repeat");
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_key_is_an_auth_failure_and_never_shown() -> TestResult {
    let h = Harness::start(5, 0).await?;
    let wrong_secret = "hwWrongSecretKey00000000000000000000000000";
    let client = h.client(Source {
        secret: wrong_secret,
        ..Source::default()
    })?;
    let err = assert_reason(client.list(deadline()).await, Reason::Auth);
    assert_eq!(err.code.as_deref(), Some("APIGW.0301"));
    assert_eq!(err.http_status, Some(401));
    assert_eq!(
        h.calls(ACTION_LIST_SENT),
        1,
        "auth failures are not retried"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(wrong_secret), "{shown}");

    let stranger = h.client(Source {
        access_key_id: "HWUNKNOWNAK000000000",
        ..Source::default()
    })?;
    let err = assert_reason(stranger.list(deadline()).await, Reason::Auth);
    assert!(err.message.contains("ak not exist"), "{err}");

    // A fault that rejects a good signature maps the same way.
    h.fault(FaultKind::AuthFailure, Some(1));
    let good = h.client(Source::default())?;
    assert_reason(good.list(deadline()).await, Reason::Auth);
    assert_eq!(good.list(deadline()).await?.len(), 5);
    Ok(())
}

#[tokio::test]
async fn temporary_credentials_need_their_signed_security_token() -> TestResult {
    let h = Harness::start(0, 0).await?;
    let mut tenant = Tenant::new(STS_AK, STS_SK);
    tenant.security_token = Some(STS_TOKEN.into());
    tenant.datasets.insert(
        Dataset::HuaweiSent,
        sim::data::generate(Dataset::HuaweiSent, 120, SEED, chrono::Utc::now()),
    );
    h.sim().add_tenant(tenant);
    let sts = |token| Source {
        access_key_id: STS_AK,
        secret: STS_SK,
        token,
        limit: 100,
        ..Source::default()
    };
    let got = h.client(sts(Some(STS_TOKEN)))?.list(deadline()).await?;
    assert_eq!(got.len(), 120);
    assert_eq!(h.sim().call_count(STS_AK, ACTION_LIST_SENT), 2);

    let err = assert_reason(h.client(sts(None))?.list(deadline()).await, Reason::Auth);
    assert!(err.message.contains("X-Security-Token"), "{err}");
    let other_token = "gQpjbi1ub3J0aC00+other/SecurityToken==";
    let err = assert_reason(
        h.client(sts(Some(other_token)))?.list(deadline()).await,
        Reason::Auth,
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(other_token) && !shown.contains(STS_TOKEN),
        "{shown}"
    );
    Ok(())
}

#[tokio::test]
async fn one_throttled_call_is_retried_and_counted() -> TestResult {
    let h = Harness::start(150, 0).await?;
    h.fault(
        FaultKind::Throttle {
            retry_after_ms: Some(1),
        },
        Some(1),
    );
    let client = h.client(Source::default())?;
    let got = client.list(deadline()).await?;
    assert_eq!(got.len(), 150);
    assert_eq!(h.calls(ACTION_LIST_SENT), 2, "one throttled, one answered");
    assert_eq!(h.retries("hw", ACTION_LIST_SENT), 1);
    Ok(())
}

#[tokio::test]
async fn persistent_throttling_reports_throttled_with_the_retry_hint() -> TestResult {
    let h = Harness::start(5, 0).await?;
    h.fault(
        FaultKind::Throttle {
            retry_after_ms: Some(1500),
        },
        None,
    );
    // Deadline shorter than the 2 s hint: the transport gives up instead of waiting.
    let client = h.client(Source::default())?;
    let err = assert_reason(
        client.list(Instant::now() + Duration::from_secs(1)).await,
        Reason::Throttled,
    );
    assert_eq!(err.code.as_deref(), Some("APIGW.0308"));
    assert_eq!(
        err.retry_after,
        Some(Duration::from_secs(2)),
        "1500 ms rounds up"
    );
    assert_eq!(h.calls(ACTION_LIST_SENT), 1);
    Ok(())
}

#[tokio::test]
async fn a_failing_backend_is_a_server_error_after_the_retries() -> TestResult {
    let h = Harness::start(5, 0).await?;
    h.fault(FaultKind::ServerError, None);
    let client = h.client(Source::default())?;
    let err = assert_reason(client.list(deadline()).await, Reason::Server);
    assert_eq!(err.http_status, Some(503));
    assert_eq!(err.code.as_deref(), Some("APIGW.0202"));
    assert!(err.request_id.is_some());
    assert_eq!(h.calls(ACTION_LIST_SENT), 4, "every attempt was made");
    assert_eq!(h.retries("hw", ACTION_LIST_SENT), 3);
    Ok(())
}

#[tokio::test]
async fn broken_answers_are_bad_responses_not_empty_lists() -> TestResult {
    let h = Harness::start(300, 0).await?;
    let client = h.client(Source {
        limit: 100,
        ..Source::default()
    })?;
    for kind in [
        FaultKind::Malformed,
        FaultKind::Truncated,
        FaultKind::WrongShape,
    ] {
        h.fault(kind.clone(), Some(1));
        let err = assert_reason(client.list(deadline()).await, Reason::BadResponse);
        assert!(!err.message.is_empty(), "{kind:?}: {err}");
    }
    // ShowHandshake is held to the same standard.
    let id = h.sim().dataset(AK, Dataset::HuaweiSent)[0].id.clone();
    for kind in [FaultKind::Truncated, FaultKind::WrongShape] {
        h.fault(kind, Some(1));
        let err = client.get(&id, deadline()).await.err();
        assert_eq!(err.map(|e| e.reason), Some(Reason::BadResponse));
    }
    assert_eq!(
        h.calls(ACTION_LIST_SENT),
        3,
        "bad responses are not retried"
    );
    // Once the faults are used up everything is there again.
    assert_eq!(client.list(deadline()).await?.len(), 300);
    Ok(())
}

#[tokio::test]
async fn a_hanging_call_times_out_and_is_retried() -> TestResult {
    let h = Harness::start(5, 0).await?;
    h.fault(FaultKind::Hang { ms: 2_000 }, Some(1));
    let client = h.client(Source {
        request_timeout: Duration::from_millis(300),
        ..Source::default()
    })?;
    assert_eq!(client.list(deadline()).await?.len(), 5);
    assert_eq!(h.calls(ACTION_LIST_SENT), 2);
    assert_eq!(h.retries("hw", ACTION_LIST_SENT), 1);
    Ok(())
}

#[tokio::test]
async fn the_alibaba_only_zero_page_size_fault_changes_nothing() -> TestResult {
    let h = Harness::start(250, 0).await?;
    h.fault(FaultKind::ZeroPageSize, None);
    let client = h.client(Source {
        limit: 100,
        ..Source::default()
    })?;
    assert_eq!(client.list(deadline()).await?.len(), 250);
    assert_eq!(h.calls(ACTION_LIST_SENT), 3);
    Ok(())
}

/// An endpoint that answers 307 to another host: the redirect is not followed (the
/// other host receives nothing, so no `X-Security-Token` and no `Referer`), it is a
/// `bad_response` naming the status, not retried, and `Location` is not quoted.
#[tokio::test]
async fn a_redirect_is_not_followed_and_nothing_reaches_its_target() -> TestResult {
    let h = Harness::start(0, 0).await?;
    let target = Recorder::start(json_response(
        r#"{"handshakes":[],"page_info":{"next_marker":null}}"#,
    ))
    .await?;
    let redirector = Recorder::start(redirect_response(&format!(
        "{}/collect?leak=1",
        target.url()
    )))
    .await?;
    let mut results = Vec::new();
    for view in [View("sent"), View::IDS] {
        let client = h.client(Source {
            view,
            ids: vec!["h-abc".into()],
            access_key_id: STS_AK,
            secret: STS_SK,
            token: Some(STS_TOKEN),
            endpoint: Some(redirector.url()),
            ..Source::default()
        })?;
        results.push((view, client.list(deadline()).await));
    }
    assert_eq!(
        target.received(),
        Vec::<String>::new(),
        "the redirect target received requests"
    );
    for (view, result) in results {
        let err = assert_reason(result, Reason::BadResponse);
        assert_eq!(err.http_status, Some(307), "{view:?}");
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
    }
    assert_eq!(redirector.received().len(), 2, "a 3xx is not retried");
    Ok(())
}

/// Invitations added while the list is walked push later ones onto the next page
/// again (the simulator's markers are positions): the id is taken once, the refresh
/// succeeds with every invitation that existed throughout, and no page is read twice.
#[tokio::test]
async fn invitations_added_between_pages_do_not_fail_the_refresh() -> TestResult {
    let h = Harness::start(250, 0).await?;
    let initial = h.sim().dataset(AK, Dataset::HuaweiSent);
    h.sim()
        .set_churn(AK, Churn::every_request(Dataset::HuaweiSent, 2, 0));
    let client = h.client(Source {
        limit: 100,
        ..Source::default()
    })?;
    let got = client.list(deadline()).await?;
    let got_ids = ids(&got);
    let unique: HashSet<&str> = got_ids.iter().copied().collect();
    assert_eq!(unique.len(), got_ids.len(), "an id twice");
    for stable in &initial {
        assert!(
            unique.contains(stable.id.as_str()),
            "{} is missing",
            stable.id
        );
    }
    assert_eq!(h.calls(ACTION_LIST_SENT), 3, "one walk of three pages");
    Ok(())
}
