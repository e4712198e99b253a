//! Huawei credential types against the simulated metadata service and IAM, over
//! real HTTP on loopback: the requests they make, the Organizations API accepting
//! the keys they obtain (with the domain id found through IAM), rotation across
//! several short credential lifetimes, id token files rewritten in place, outages
//! before and after expiry, and no secret in any output.

use handshake_exporter::config::{Config, SourceConfig, load_str};
use handshake_exporter::error::{ApiError, Reason};
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::provider::HandshakeProvider;
use handshake_exporter::provider::huawei::HuaweiClient;
use handshake_exporter::provider::huawei::identity::{
    ACTION_CREATE_TEMPORARY_ACCESS_KEY, ACTION_CREATE_TOKEN_WITH_ID_TOKEN,
    ACTION_LIST_AUTH_DOMAINS, ACTION_METADATA_SECURITY_KEY, ACTION_METADATA_TOKEN,
};
use handshake_exporter::provider::huawei::sign;
use handshake_exporter::sim::huawei_identity::TokenService;
use handshake_exporter::sim::{Dataset, Sim, SimServer};
use handshake_exporter::transport::RetryPolicy;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

type TestResult = Result<(), Box<dyn std::error::Error>>;

mod common;
use common::TransportParams;

/// The tenant the agency and the identity provider lead to.
const TENANT: &str = "HWAGENCYTENANT000001";
const TENANT_SK: &str = "hwAgencyTenantSecret00000000000000000001";
const DOMAIN: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const IDP: &str = "cce-workload-idp";
const SENT: usize = 5;

struct Harness {
    server: SimServer,
    metrics: Arc<ExporterMetrics>,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Result<Harness, Box<dyn std::error::Error>> {
        let sim = Sim::new();
        sim.add_tenant(common::tenant(
            TENANT,
            TENANT_SK,
            &[(Dataset::HuaweiSent, SENT, 7)],
        ));
        sim.with_huawei_identity(|s| {
            s.agency_tenant = Some(TENANT.into());
            s.domains.insert(TENANT.into(), DOMAIN.into());
        });
        let server = common::start_sim(sim).await?;
        Ok(Harness {
            server,
            metrics: Arc::new(ExporterMetrics::new(false)),
            dir: tempfile::tempdir()?,
        })
    }

    fn sim(&self) -> &Sim {
        &self.server.sim
    }

    fn id_token_file(&self) -> std::path::PathBuf {
        self.dir.path().join("id-token")
    }

    /// A source with `credentials` (YAML lines, indented 6), endpoint = simulator.
    fn config(&self, credentials: &str) -> Result<Config, String> {
        let text = format!(
            "sources:\n  - name: hw\n    provider: huawei\n    endpoint: {}\n    credentials:\n{credentials}",
            self.server.url()
        );
        let no_env = |_: &str| None;
        load_str(&text, Path::new("hw.yml"), &no_env).map_err(|e| e.to_string())
    }

    fn client_for(&self, source: &SourceConfig) -> Result<HuaweiClient, String> {
        let transport = common::transport(
            source.provider,
            &source.name,
            TransportParams {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(2),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base: Duration::from_millis(5),
                    cap: Duration::from_millis(20),
                },
                outbound: 8,
            },
            self.metrics.clone(),
        )?;
        Ok(HuaweiClient::new(source, transport))
    }

    fn client(&self, credentials: &str) -> Result<HuaweiClient, String> {
        let config = self.config(credentials)?;
        let source = config.sources.first().ok_or("no source")?;
        self.client_for(source)
    }

    fn metadata(&self) -> String {
        format!(
            "      type: metadata\n      metadata_endpoint: {url}\n      iam_endpoint: {url}\n",
            url = self.server.url()
        )
    }

    fn federated(&self, token: &str) -> Result<String, std::io::Error> {
        std::fs::write(self.id_token_file(), format!("{token}\n"))?;
        self.sim()
            .with_huawei_identity(|s| s.add_id_token(IDP, token, TENANT));
        Ok(format!(
            "      type: federated\n      idp_id: {IDP}\n      id_token_file: {}\n      iam_endpoint: {}\n",
            self.id_token_file().display(),
            self.server.url()
        ))
    }

    fn calls(&self, action: &str) -> u64 {
        self.sim().with_huawei_identity(|s| s.call_count(action))
    }

    fn requests(
        &self,
        action: &str,
    ) -> Vec<handshake_exporter::sim::huawei_identity::RecordedRequest> {
        self.sim().with_huawei_identity(|s| {
            s.requests
                .iter()
                .filter(|r| r.action == action)
                .cloned()
                .collect()
        })
    }

    fn counted(&self, action: &str, code: &str) -> u64 {
        self.metrics
            .api_requests
            .with_label_values(&["huawei", "hw", action, code])
            .get()
    }

    fn secrets(&self) -> Vec<String> {
        self.sim().with_huawei_identity(|s| s.secrets())
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

async fn list(client: &HuaweiClient) -> Result<usize, ApiError> {
    client.list(deadline()).await.map(|h| h.len())
}

/// Assert that no secret the identity services know shows in `text`.
fn no_secret_in(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !s.is_empty() && !text.contains(s.as_str()),
            "a secret leaked into: {text}"
        );
    }
}

#[tokio::test]
async fn metadata_keys_reach_the_api_with_the_domain_found_through_iam() -> TestResult {
    let h = Harness::start().await?;
    h.sim()
        .with_huawei_identity(|s| s.token_service = TokenService::Required);
    let client = h.client(&h.metadata())?;
    assert_eq!(list(&client).await?, SENT);

    // PUT token with the SDK's TTL, then the security key with that token.
    let put = h.requests(ACTION_METADATA_TOKEN);
    assert_eq!(put.len(), 1);
    assert_eq!(put[0].method, "PUT");
    assert_eq!(put[0].header("x-metadata-token-ttl-seconds"), Some("21600"));
    let get = h.requests(ACTION_METADATA_SECURITY_KEY);
    assert_eq!(get.len(), 1);
    assert_eq!(get[0].method, "GET");
    assert!(
        get[0]
            .header("x-metadata-token")
            .is_some_and(|t| t.len() >= 32)
    );

    // The domain lookup: signed with the temporary keys and their token (the
    // simulator recomputed the signature and answered 200).
    let domains = h.requests(ACTION_LIST_AUTH_DOMAINS);
    assert_eq!(domains.len(), 1);
    let authorization = domains[0]
        .header("authorization")
        .and_then(sign::parse_authorization)
        .ok_or("a parsable Authorization")?;
    assert!(authorization.access_key_id.starts_with("HWSTS"));
    assert!(
        authorization
            .signed_headers
            .iter()
            .any(|h| h == "x-security-token")
    );
    assert_eq!(h.counted(ACTION_LIST_AUTH_DOMAINS, "200"), 1);
    assert_eq!(h.counted(ACTION_METADATA_TOKEN, "200"), 1);
    assert_eq!(h.counted(ACTION_METADATA_SECURITY_KEY, "200"), 1);

    // The Organizations calls carried the discovered domain id.
    let headers = h.sim().with_huawei_identity(|s| s.domain_headers.clone());
    assert_eq!(headers.keys().collect::<Vec<_>>(), vec![DOMAIN]);
    let status = client.credential_status().ok_or("a credential status")?;
    assert_eq!(status.kind, "metadata");
    assert!(status.expires_at.is_some());
    Ok(())
}

#[tokio::test]
async fn metadata_without_a_token_service_sends_no_token_and_asks_once() -> TestResult {
    let h = Harness::start().await?;
    h.sim()
        .with_huawei_identity(|s| s.token_service = TokenService::Absent);
    h.sim().set_credential_lifetime(Duration::from_secs(2));
    let client = h.client(&h.metadata())?;
    assert_eq!(list(&client).await?, SENT);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(list(&client).await?, SENT);
    assert_eq!(h.calls(ACTION_METADATA_SECURITY_KEY), 2, "refreshed once");
    // 404 means "no token service": not retried, not asked again.
    assert_eq!(h.calls(ACTION_METADATA_TOKEN), 1);
    assert!(
        h.requests(ACTION_METADATA_SECURITY_KEY)
            .iter()
            .all(|r| r.header("x-metadata-token").is_none())
    );
    // An ECS without an agency: the error says so.
    h.sim().with_huawei_identity(|s| s.agency_tenant = None);
    let fresh = h.client(&h.metadata())?;
    let e = list(&fresh).await.err().ok_or("no agency must fail")?;
    assert_eq!(e.reason, Reason::Credentials);
    assert!(e.message.contains("no agency"), "{}", e.message);
    Ok(())
}

#[tokio::test]
async fn federated_exchanges_the_id_token_as_the_sdk_does() -> TestResult {
    let h = Harness::start().await?;
    let client = h.client(&h.federated("eyJ.first-id-token.sig")?)?;
    assert_eq!(list(&client).await?, SENT);

    let exchange = h.requests(ACTION_CREATE_TOKEN_WITH_ID_TOKEN);
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0].method, "POST");
    assert_eq!(exchange[0].header("x-idp-id"), Some(IDP));
    assert!(
        exchange[0].header("authorization").is_none(),
        "unsigned, as the SDK"
    );
    let body: serde_json::Value = serde_json::from_slice(&exchange[0].body)?;
    assert_eq!(
        body,
        serde_json::json!({"auth": {"id_token": {"id": "eyJ.first-id-token.sig"}}})
    );
    let keys = h.requests(ACTION_CREATE_TEMPORARY_ACCESS_KEY);
    assert_eq!(keys.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&keys[0].body)?;
    assert_eq!(
        body["auth"]["identity"]["methods"],
        serde_json::json!(["token"])
    );
    assert_eq!(body["auth"]["identity"]["token"]["duration_seconds"], 21600);
    assert!(
        body["auth"]["identity"]["token"]["id"]
            .as_str()
            .is_some_and(|t| t.starts_with("MIIS")),
        "the X-Subject-Token of the first call"
    );
    assert_eq!(h.calls(ACTION_LIST_AUTH_DOMAINS), 1);
    assert_eq!(h.counted(ACTION_CREATE_TOKEN_WITH_ID_TOKEN, "201"), 1);
    assert_eq!(h.counted(ACTION_CREATE_TEMPORARY_ACCESS_KEY, "201"), 1);

    // A token IAM does not accept: reason=credentials, and the error names the
    // action, never the token.
    let rejected = h.client(&h.federated("eyJ.other.sig")?)?;
    h.sim()
        .with_huawei_identity(|s| s.revoke_id_tokens_except(IDP, "eyJ.first-id-token.sig"));
    let e = list(&rejected)
        .await
        .err()
        .ok_or("a rejected id token must fail")?;
    assert_eq!(e.reason, Reason::Credentials);
    assert_eq!(e.action, ACTION_CREATE_TOKEN_WITH_ID_TOKEN);
    no_secret_in(&format!("{e} {e:?}"), &h.secrets());
    Ok(())
}

/// Call the API every `step` for `lifetimes` credential lifetimes; every call must
/// succeed. Returns how many lifetimes elapsed.
async fn run_through(
    client: &HuaweiClient,
    lifetime: Duration,
    lifetimes: u32,
    mut midway: impl FnMut(u32),
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
    let step = lifetime / 8;
    let mut i = 0u32;
    while started.elapsed() < lifetime * lifetimes {
        if let Err(e) = list(client).await {
            return Err(format!("API call {i} failed during rotation: {e}").into());
        }
        midway(i);
        i += 1;
        tokio::time::sleep(step).await;
    }
    Ok(started.elapsed().as_secs_f64() / lifetime.as_secs_f64())
}

#[tokio::test]
async fn metadata_keys_rotate_with_bounded_calls_and_one_domain_lookup() -> TestResult {
    let h = Harness::start().await?;
    let lifetime = Duration::from_secs(3);
    h.sim().set_credential_lifetime(lifetime);
    h.sim()
        .with_huawei_identity(|s| s.token_service = TokenService::Required);
    let client = h.client(&h.metadata())?;
    let elapsed = run_through(&client, lifetime, 4, |_| {}).await?;
    let fetches = h.calls(ACTION_METADATA_SECURITY_KEY);
    let bound = (2.0 * elapsed.ceil()) as u64 + 1;
    eprintln!(
        "metadata: {fetches} security key calls over {elapsed:.2} lifetimes (bound {bound}); {} identity calls in all",
        h.sim().with_huawei_identity(|s| s.total_calls())
    );
    assert!(fetches >= 4, "rotated: {fetches}");
    assert!(fetches <= bound, "{fetches} > {bound}");
    assert_eq!(
        h.calls(ACTION_METADATA_TOKEN),
        1,
        "the session token is kept"
    );
    assert_eq!(
        h.calls(ACTION_LIST_AUTH_DOMAINS),
        1,
        "domain looked up once"
    );
    assert_eq!(
        h.sim()
            .with_huawei_identity(|s| s.domain_headers.keys().cloned().collect::<Vec<_>>()),
        vec![DOMAIN.to_string()]
    );
    Ok(())
}

#[tokio::test]
async fn federated_keys_rotate_and_pick_up_a_rewritten_id_token() -> TestResult {
    let h = Harness::start().await?;
    let lifetime = Duration::from_secs(3);
    h.sim().set_credential_lifetime(lifetime);
    let client = h.client(&h.federated("eyJ.before.sig")?)?;
    let file = h.id_token_file();
    let sim = h.server.sim.clone();
    let mut rewritten = None;
    let elapsed = run_through(&client, lifetime, 4, |i| {
        if i == 12 {
            // Rewritten in place (same inode, as an editor or `echo >` does); the
            // old token stops being accepted, as when the kubelet rotates it.
            rewritten = Some(std::fs::write(&file, "eyJ.after.sig\n"));
            sim.with_huawei_identity(|s| {
                s.add_id_token(IDP, "eyJ.after.sig", TENANT);
                s.revoke_id_tokens_except(IDP, "eyJ.after.sig");
            });
        }
    })
    .await?;
    rewritten.ok_or("rewrote the token file")??;
    let exchanges = h.requests(ACTION_CREATE_TOKEN_WITH_ID_TOKEN);
    let last: serde_json::Value =
        serde_json::from_slice(&exchanges.last().ok_or("exchanges")?.body)?;
    assert_eq!(last["auth"]["id_token"]["id"], "eyJ.after.sig");
    let fetches = h.calls(ACTION_CREATE_TEMPORARY_ACCESS_KEY);
    let bound = (2.0 * elapsed.ceil()) as u64 + 1;
    eprintln!(
        "federated: {fetches} temporary key calls ({} id token exchanges) over {elapsed:.2} lifetimes (bound {bound})",
        exchanges.len()
    );
    assert!(fetches >= 4, "rotated: {fetches}");
    assert!(fetches <= bound, "{fetches} > {bound}");
    assert_eq!(exchanges.len() as u64, fetches);
    assert_eq!(
        h.calls(ACTION_LIST_AUTH_DOMAINS),
        1,
        "domain looked up once"
    );
    Ok(())
}

/// An identity outage: before expiry the current keys keep working; after, the
/// source fails with reason=credentials; when the service returns, it recovers.
async fn outage(h: &Harness, client: &HuaweiClient, issuing: &str) -> TestResult {
    let lifetime = Duration::from_secs(4);
    assert_eq!(list(client).await?, SENT);
    let issued = h.calls(issuing);
    h.sim().with_huawei_identity(|s| s.outage = true);
    // Refresh due (half the lifetime left) but the service is down: still served.
    tokio::time::sleep(lifetime.mul_f64(0.6)).await;
    assert_eq!(
        list(client).await?,
        SENT,
        "valid keys are kept through an outage"
    );
    assert!(h.calls(issuing) > issued, "a refresh was attempted");
    // Past expiry: reason=credentials.
    tokio::time::sleep(lifetime.mul_f64(0.5)).await;
    let e = list(client)
        .await
        .err()
        .ok_or("must fail once the keys lapsed")?;
    assert_eq!(e.reason, Reason::Credentials, "{e}");
    no_secret_in(&format!("{e} {e:?}"), &h.secrets());
    h.sim().with_huawei_identity(|s| s.outage = false);
    assert_eq!(
        list(client).await?,
        SENT,
        "recovers when the service is back"
    );
    Ok(())
}

#[tokio::test]
async fn metadata_outage_before_and_after_expiry() -> TestResult {
    let h = Harness::start().await?;
    h.sim().set_credential_lifetime(Duration::from_secs(4));
    let client = h.client(&h.metadata())?;
    outage(&h, &client, ACTION_METADATA_SECURITY_KEY).await
}

#[tokio::test]
async fn iam_outage_before_and_after_expiry() -> TestResult {
    let h = Harness::start().await?;
    h.sim().set_credential_lifetime(Duration::from_secs(4));
    let client = h.client(&h.federated("eyJ.outage.sig")?)?;
    outage(&h, &client, ACTION_CREATE_TOKEN_WITH_ID_TOKEN).await
}

#[tokio::test]
async fn an_explicit_endpoint_without_iam_endpoint_means_no_lookup_and_no_domain_header()
-> TestResult {
    let h = Harness::start().await?;
    let client = h.client(&format!(
        "      access_key_id: {TENANT}\n      access_key_secret: {TENANT_SK}\n"
    ))?;
    assert_eq!(list(&client).await?, SENT);
    let client = h.client(&format!(
        "      type: metadata\n      metadata_endpoint: {}\n",
        h.server.url()
    ))?;
    assert_eq!(list(&client).await?, SENT);
    assert_eq!(h.calls(ACTION_LIST_AUTH_DOMAINS), 0);
    assert_eq!(
        h.sim().with_huawei_identity(|s| s.domain_headers.clone()),
        BTreeMap::from([(String::new(), 2u64)])
    );
    // A configured domain_id is sent and never looked up, even with iam_endpoint.
    let client = h.client(&format!("{}      domain_id: {DOMAIN}\n", h.metadata()))?;
    assert_eq!(list(&client).await?, SENT);
    assert_eq!(h.calls(ACTION_LIST_AUTH_DOMAINS), 0);
    Ok(())
}

#[tokio::test]
async fn a_refused_domain_lookup_names_the_call_and_the_permission() -> TestResult {
    let h = Harness::start().await?;
    h.sim()
        .with_huawei_identity(|s| s.deny_domain_lookup = true);
    let client = h.client(&format!(
        "      access_key_id: {TENANT}\n      access_key_secret: {TENANT_SK}\n      iam_endpoint: {}\n",
        h.server.url()
    ))?;
    let e = list(&client)
        .await
        .err()
        .ok_or("a refused lookup must fail")?;
    assert_eq!(e.reason, Reason::Credentials);
    assert_eq!(e.action, ACTION_LIST_AUTH_DOMAINS);
    for needle in ["KeystoneListAuthDomains", "iam:users:getUser", "domain_id"] {
        assert!(e.message.contains(needle), "{}", e.message);
    }
    assert!(!e.message.contains(TENANT_SK));
    // An empty list (no permission to see the account) says the same.
    h.sim().with_huawei_identity(|s| {
        s.deny_domain_lookup = false;
        s.domains.clear();
    });
    let e = list(&client)
        .await
        .err()
        .ok_or("an empty domain list must fail")?;
    assert!(e.message.contains("iam:users:getUser"), "{}", e.message);
    Ok(())
}

#[tokio::test]
async fn expired_session_keys_get_huaweis_expired_token_error() -> TestResult {
    let h = Harness::start().await?;
    let session = h
        .sim()
        .issue_session(TENANT, "HWSTS", Some(Duration::from_millis(1)))
        .ok_or("session")?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let client = h.client(&format!(
        "      access_key_id: {}\n      access_key_secret: {}\n      security_token: {}\n",
        session.access_key_id, session.secret, session.security_token
    ))?;
    let e = list(&client).await.err().ok_or("expired keys must fail")?;
    assert_eq!(e.http_status, Some(401));
    assert_eq!(e.code.as_deref(), Some("APIGW.0307"));
    Ok(())
}
