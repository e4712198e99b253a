//! What the rest of the exporter knows about AWS Organizations: its configuration
//! section (`region`, `page_size`), views, target types, client, simulator and demo
//! sources.

use super::credentials::{self as creds, AwsCredentialConfig};
use super::settings::{self, AwsSettings, AwsView};
use crate::config::{ConfigError, SourceConfig, SourceCtx};
use crate::credentials::{CredCtx, CredentialConfig, RawCredentials};
use crate::model::{Provider, TargetType};
use crate::provider::{HandshakeProvider, ProviderKind, Section, Settings};
use crate::secret::{Credentials, Secret};
use crate::transport::Transport;
use std::sync::Arc;
use std::time::Duration;

/// The region keys of an AWS source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsRegion {
    /// `region:` as configured (default `us-east-1`): picks the partition and the
    /// default STS endpoint.
    pub region: String,
    /// The region requests are signed for (the partition's Organizations region
    /// unless an endpoint is configured).
    pub signing_region: String,
}

impl AwsRegion {
    fn of(source: &SourceConfig) -> AwsRegion {
        source
            .settings
            .get::<AwsRegion>()
            .cloned()
            .unwrap_or(AwsRegion {
                region: settings::DEFAULT_REGION.into(),
                signing_region: settings::DEFAULT_REGION.into(),
            })
    }
}

pub struct AwsKind;

/// AWS Organizations.
pub static KIND: AwsKind = AwsKind;

pub const DEMO_AK: &str = "AKIADEMOAWS000000001";
pub const DEMO_SECRET: &str = "demo-aws-secret-not-real";
/// The role the `aws-account` demo source assumes through the simulated STS.
pub const DEMO_ROLE_ARN: &str = "arn:aws:iam::111122223333:role/handshake-demo";

impl ProviderKind for AwsKind {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn views(&self) -> &'static [&'static str] {
        &AwsView::NAMES
    }

    fn known_target_types(&self) -> &'static [TargetType] {
        &[TargetType::Account, TargetType::Email]
    }

    fn source_keys(&self) -> &'static [&'static str] {
        &["region", "page_size"]
    }

    fn parse_section(&self, ctx: &mut SourceCtx<'_, '_>) -> Result<Section, ConfigError> {
        let region = ctx.string("region")?;
        let endpoint = ctx.string("endpoint")?;
        let (signing_region, default_endpoint) =
            settings::resolve_endpoint(region.as_deref(), endpoint.as_deref()).map_err(|m| {
                let bad_region = region
                    .as_deref()
                    .is_some_and(|r| settings::validate_region(r).is_err());
                let key = if bad_region { "region" } else { "endpoint" };
                ctx.err(ctx.line_of(key), key, m)
            })?;
        Ok(Section {
            page_size: ctx.uint(
                "page_size",
                settings::MIN_PAGE_SIZE,
                settings::MAX_PAGE_SIZE,
                settings::DEFAULT_PAGE_SIZE,
            )?,
            default_endpoint,
            settings: Settings::new(AwsRegion {
                region: region.unwrap_or_else(|| settings::DEFAULT_REGION.into()),
                signing_region,
            }),
        })
    }

    fn default_section(&self) -> Section {
        Section {
            page_size: settings::DEFAULT_PAGE_SIZE,
            default_endpoint: settings::default_endpoint(settings::DEFAULT_REGION),
            settings: Settings::new(AwsRegion {
                region: settings::DEFAULT_REGION.into(),
                signing_region: settings::DEFAULT_REGION.into(),
            }),
        }
    }

    fn parse_credentials(
        &self,
        ctx: &mut CredCtx<'_>,
        raw: Option<&RawCredentials>,
        section: &Section,
    ) -> Result<CredentialConfig, ConfigError> {
        let region = section
            .settings
            .get::<AwsRegion>()
            .map_or(settings::DEFAULT_REGION, |r| r.region.as_str());
        creds::parse_for_region(ctx, raw, region).map(CredentialConfig::provider)
    }

    fn check_handshake_id(&self, id: &str) -> Result<(), String> {
        settings::validate_handshake_id(id)
    }

    fn build(&self, source: &SourceConfig, transport: Transport) -> Arc<dyn HandshakeProvider> {
        let credentials = match &source.credentials {
            CredentialConfig::Static(c) => AwsCredentialConfig::Fixed(c.clone()),
            other => other
                .provider_config::<AwsCredentialConfig>()
                .cloned()
                // Another provider's block cannot come out of the parser; keys
                // nobody accepts make every call fail with the cloud's auth error.
                .unwrap_or_else(|| {
                    AwsCredentialConfig::Fixed(Credentials {
                        access_key_id: String::new(),
                        access_key_secret: Secret::new(""),
                        security_token: None,
                        domain_id: None,
                    })
                }),
        };
        let settings = AwsSettings {
            view: AwsView::parse(source.view.as_str()).unwrap_or(AwsView::Organization),
            handshake_ids: source.handshake_ids.clone(),
            region: AwsRegion::of(source).signing_region,
            endpoint: source.endpoint.clone(),
            page_size: source.page_size,
            credentials,
        };
        Arc::new(super::AwsClient::new(&source.name, &settings, transport))
    }

    fn sim(&self) -> &'static dyn crate::sim::SimProvider {
        &crate::sim::aws::SIM
    }

    fn demo(&self, sim: &crate::sim::Sim, endpoint: &str) -> Vec<SourceConfig> {
        use crate::sim::{Dataset, Tenant, data};
        let now = chrono::Utc::now();
        let mut tenant = Tenant::new(DEMO_AK, DEMO_SECRET);
        for (dataset, n, seed) in [
            (Dataset::AwsOrganization, 140, 5),
            (Dataset::AwsAccount, 6, 6),
        ] {
            tenant
                .datasets
                .insert(dataset, data::generate(dataset, n, seed, now));
        }
        sim.add_tenant(tenant);
        sim.with_aws_identity(|id| id.add_role(DEMO_ROLE_ARN, DEMO_AK, None));
        let endpoint = endpoint.trim_end_matches('/');
        let keys = Credentials {
            access_key_id: DEMO_AK.into(),
            access_key_secret: Secret::new(DEMO_SECRET),
            security_token: None,
            domain_id: None,
        };
        let org = SourceConfig::new(Provider::Aws, "aws-organization", endpoint, keys.clone());
        // The account view assumes a role through the simulated STS, so the demo
        // shows AWS temporary credentials and their expiry too.
        let account = SourceConfig::new(
            Provider::Aws,
            "aws-account",
            endpoint,
            CredentialConfig::provider(AwsCredentialConfig::AssumeRole(creds::AssumeRole {
                base: Box::new(AwsCredentialConfig::AccessKey(
                    crate::credentials::StaticKeys {
                        access_key_id: crate::credentials::SecretSource::Value(Secret::new(
                            DEMO_AK,
                        )),
                        access_key_secret: crate::credentials::SecretSource::Value(Secret::new(
                            DEMO_SECRET,
                        )),
                        security_token: None,
                    },
                )),
                role_arn: DEMO_ROLE_ARN.into(),
                external_id: None,
                role_session_name: Some("handshake-exporter-demo".into()),
                duration: creds::DEFAULT_DURATION,
                sts_endpoint: endpoint.to_string(),
            })),
        )
        .with_view("account", &[]);
        [org, account]
            .into_iter()
            .map(|mut s| {
                s.connect_timeout = Duration::from_secs(2);
                s.request_timeout = Duration::from_secs(5);
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, load_str};
    use std::path::Path;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        load_str(text, Path::new("aws.yml"), &lookup)
    }

    const KEYS: &str = "    credentials: {access_key_id: AKIA1, access_key_secret: s}\n";

    #[test]
    fn an_aws_source_gets_its_defaults_and_region_endpoint() -> Result<(), ConfigError> {
        let c = load(
            &format!("sources:\n  - name: org\n    provider: aws\n{KEYS}"),
            &[],
        )?;
        let s = &c.sources[0];
        assert_eq!(s.provider, Provider::Aws);
        assert_eq!(s.view.as_str(), "organization");
        assert_eq!(s.page_size, 20);
        assert_eq!(s.endpoint, "https://organizations.us-east-1.amazonaws.com");
        assert_eq!(s.credentials.kind(), "access_key");
        // China: the partition's endpoint and signing region.
        let c = load(
            &format!(
                "sources:\n  - name: cn\n    provider: aws\n    region: cn-north-1\n    view: account\n    page_size: 5\n{KEYS}"
            ),
            &[],
        )?;
        let s = &c.sources[0];
        assert_eq!(
            s.endpoint,
            "https://organizations.cn-northwest-1.amazonaws.com.cn"
        );
        assert_eq!(
            s.settings
                .get::<AwsRegion>()
                .map(|r| r.signing_region.as_str()),
            Some("cn-northwest-1")
        );
        assert_eq!((s.view.as_str(), s.page_size), ("account", 5));
        Ok(())
    }

    #[test]
    fn bad_aws_keys_name_file_line_and_field() {
        let err = |text: &str| load(text, &[]).err().map(|e| e.to_string());
        let base = "sources:\n  - name: org\n    provider: aws\n";
        let e = err(&format!("{base}    page_size: 21\n{KEYS}"));
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("aws.yml:4: sources[0].page_size")
                    && e.contains("between 1 and 20")),
            "{e:?}"
        );
        let e = err(&format!("{base}    region: Mars\n{KEYS}"));
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("aws.yml:4: sources[0].region")),
            "{e:?}"
        );
        let e = err(&format!("{base}    view: sent\n{KEYS}"));
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("use organization, account, ids")),
            "{e:?}"
        );
        let e = err(&format!(
            "{base}    view: ids\n    handshake_ids: [h-abcdefgh1, not-an-id]\n{KEYS}"
        ));
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("sources[0].handshake_ids[1]")
                    && e.contains("not an AWS handshake id")),
            "{e:?}"
        );
        // Alibaba's key on an AWS source names its owner.
        let e = err(&format!("{base}    signature: v1\n{KEYS}"));
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("signature is not used by aws sources")),
            "{e:?}"
        );
        // A key of another credential type.
        let e = err(&format!(
            "{base}    credentials:\n      type: web_identity\n      role_arn: arn:aws:iam::111122223333:role/r\n      external_id: x\n"
        ));
        assert!(
            e.as_deref().is_some_and(|e| e.starts_with("aws.yml:7:")
                && e.contains("external_id does not belong to credentials type web_identity")),
            "{e:?}"
        );
    }

    #[test]
    fn credentials_come_from_the_aws_environment() -> Result<(), ConfigError> {
        let c = load(
            "sources:\n  - name: org\n    provider: aws\n",
            &[
                ("AWS_ACCESS_KEY_ID", "AKIAENV"),
                ("AWS_SECRET_ACCESS_KEY", "envsecret"),
                ("AWS_SESSION_TOKEN", "envtoken"),
            ],
        )?;
        let keys = c.sources[0].credentials.read_static_for_tests();
        assert_eq!(
            keys.as_ref().map(|k| k.access_key_id.as_str()),
            Some("AKIAENV")
        );
        assert_eq!(
            keys.and_then(|k| k.security_token)
                .map(|t| t.expose().to_string())
                .as_deref(),
            Some("envtoken")
        );
        Ok(())
    }
}
