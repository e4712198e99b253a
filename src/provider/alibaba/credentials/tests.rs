use super::*;
use crate::config::{Config, load_str};
use std::collections::HashMap;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn load_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let lookup = move |k: &str| env.get(k).cloned();
    load_str(text, Path::new("cfg.yml"), &lookup)
}

fn alibaba(c: &Config) -> Option<&AlibabaCredentialConfig> {
    c.sources[0]
        .credentials
        .provider_config::<AlibabaCredentialConfig>()
}

fn source(block: &str) -> String {
    format!("sources:\n  - name: x\n    provider: alibaba\n    credentials:\n{block}")
}

const ROLE: &str = "acs:ram::1234567890123456:role/handshake-reader";
const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1";

#[test]
fn ram_role_arn_takes_its_keys_with_the_documented_defaults() -> TestResult {
    let c = load_env(
        &source(&format!(
            "      type: ram_role_arn\n      role_arn: {ROLE}\n      access_key_id: AK\n      access_key_secret: SK\n"
        )),
        &[],
    )?;
    let Some(AlibabaCredentialConfig::RamRoleArn(r)) = alibaba(&c) else {
        panic!("not ram_role_arn: {:?}", alibaba(&c));
    };
    assert_eq!(r.role_arn, ROLE);
    assert_eq!(r.role_session_name, "handshake-exporter");
    assert_eq!(r.duration, Duration::from_secs(3600));
    assert_eq!(r.sts_endpoint, "https://sts.aliyuncs.com");
    assert_eq!(r.external_id, None);
    assert_eq!(r.base.access_key_id, SecretSource::Value(Secret::new("AK")));
    assert!(!format!("{r:?}").contains("SK\""), "{r:?}");

    // Every key, and the base key from the environment when the block has none.
    let c = load_env(
        &source(&format!(
            "      type: ram_role_arn\n      role_arn: {ROLE}\n      role_session_name: hx@corp.example\n      external_id: abc-123\n      policy: '{{\"Version\":\"1\"}}'\n      duration: 20m\n      sts_endpoint: https://sts.cn-shanghai.aliyuncs.com/\n"
        )),
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "envak"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsk"),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "envtok"),
        ],
    )?;
    let Some(AlibabaCredentialConfig::RamRoleArn(r)) = alibaba(&c) else {
        panic!("not ram_role_arn");
    };
    assert_eq!(r.role_session_name, "hx@corp.example");
    assert_eq!(r.external_id.as_deref(), Some("abc-123"));
    assert_eq!(r.policy.as_deref(), Some("{\"Version\":\"1\"}"));
    assert_eq!(r.duration, Duration::from_secs(1200));
    assert_eq!(r.sts_endpoint, "https://sts.cn-shanghai.aliyuncs.com");
    assert_eq!(
        r.base.security_token,
        Some(SecretSource::Value(Secret::new("envtok")))
    );
    Ok(())
}

#[test]
fn the_sts_endpoint_follows_key_then_env_endpoint_then_region_then_default() -> TestResult {
    let block = format!(
        "      type: ram_role_arn\n      role_arn: {ROLE}\n      access_key_id: AK\n      access_key_secret: SK\n"
    );
    let endpoint = |extra: &str, env: &[(&str, &str)]| -> Result<String, ConfigError> {
        let c = load_env(&source(&format!("{block}{extra}")), env)?;
        match alibaba(&c) {
            Some(AlibabaCredentialConfig::RamRoleArn(r)) => Ok(r.sts_endpoint.clone()),
            _ => Ok(String::new()),
        }
    };
    let all = [
        (
            "ALIBABA_CLOUD_STS_ENDPOINT",
            "sts-vpc.cn-beijing.aliyuncs.com",
        ),
        ("ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"),
        ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"),
    ];
    assert_eq!(
        endpoint("      sts_endpoint: http://127.0.0.1:9\n", &all)?,
        "http://127.0.0.1:9"
    );
    assert_eq!(
        endpoint("", &all)?,
        "https://sts-vpc.cn-beijing.aliyuncs.com"
    );
    assert_eq!(
        endpoint("", &all[1..])?,
        "https://sts-vpc.cn-hangzhou.aliyuncs.com"
    );
    assert_eq!(
        endpoint("", &all[1..2])?,
        "https://sts.cn-hangzhou.aliyuncs.com"
    );
    assert_eq!(endpoint("", &[])?, "https://sts.aliyuncs.com");
    let e = endpoint("      sts_endpoint: 'ftp://x y'\n", &[]).err();
    assert!(
        e.as_ref().is_some_and(|e| e.line == Some(9)
            && e.field.as_deref() == Some("sources[0].credentials.sts_endpoint")),
        "{e:?}"
    );
    Ok(())
}

#[test]
fn oidc_role_arn_defaults_come_from_the_rrsa_variables() -> TestResult {
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJ.jwt.sig\n")?;
    let token_s = token.display().to_string();
    let env = [
        ("ALIBABA_CLOUD_ROLE_ARN", ROLE),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", PROVIDER),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token_s.as_str()),
        ("ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"),
        ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"),
    ];
    let c = load_env(&source("      type: oidc_role_arn\n"), &env)?;
    let Some(AlibabaCredentialConfig::OidcRoleArn(o)) = alibaba(&c) else {
        panic!("not oidc_role_arn");
    };
    assert_eq!(o.role_arn, ROLE);
    assert_eq!(o.oidc_provider_arn, PROVIDER);
    assert_eq!(o.oidc_token_file, token);
    assert_eq!(o.role_session_name, "handshake-exporter");
    assert_eq!(o.sts_endpoint, "https://sts-vpc.cn-hangzhou.aliyuncs.com");
    // Keys win over the variables; a missing token file names the key and line.
    let e = load_env(
        &source("      type: oidc_role_arn\n      oidc_token_file: /nonexistent/token\n"),
        &env,
    )
    .err();
    assert!(
        e.as_ref().is_some_and(|e| e.line == Some(6)
            && e.to_string()
                .contains("sources[0].credentials.oidc_token_file")),
        "{e:?}"
    );
    // Without the variables, each missing one is named.
    let e = load_env(&source("      type: oidc_role_arn\n"), &[]).err();
    assert!(
        e.as_ref()
            .is_some_and(|e| e.to_string().contains("role_arn")
                && e.to_string().contains("ALIBABA_CLOUD_ROLE_ARN")),
        "{e:?}"
    );
    Ok(())
}

#[test]
fn ecs_ram_role_defaults() -> TestResult {
    let c = load_env(&source("      type: ecs_ram_role\n"), &[])?;
    assert_eq!(
        alibaba(&c),
        Some(&AlibabaCredentialConfig::EcsRamRole(EcsRamRole {
            role_name: None,
            metadata_endpoint: "http://100.100.100.200".into(),
            imdsv1_fallback: true,
        }))
    );
    let c = load_env(
        &source(
            "      type: ecs_ram_role\n      role_name: reader\n      metadata_endpoint: http://127.0.0.1:1/\n      imdsv1_fallback: false\n",
        ),
        &[],
    )?;
    assert_eq!(
        alibaba(&c),
        Some(&AlibabaCredentialConfig::EcsRamRole(EcsRamRole {
            role_name: Some("reader".into()),
            metadata_endpoint: "http://127.0.0.1:1".into(),
            imdsv1_fallback: false,
        }))
    );
    Ok(())
}

fn expect_err(text: &str, env: &[(&str, &str)], line: u64, field: &str, needle: &str) {
    match load_env(text, env) {
        Ok(c) => panic!("expected an error about {field}, got {:?}", alibaba(&c)),
        Err(e) => {
            let shown = e.to_string();
            assert_eq!(e.line, Some(line), "{shown}");
            assert_eq!(
                e.field.as_deref(),
                Some(format!("sources[0].credentials.{field}").as_str()),
                "{shown}"
            );
            assert!(shown.starts_with(&format!("cfg.yml:{line}")), "{shown}");
            assert!(shown.contains(needle), "{shown}");
        }
    }
}

#[test]
fn errors_name_file_line_and_field() {
    // A missing role_arn: the block's (first key's) line.
    expect_err(
        &source("      type: ram_role_arn\n      access_key_id: AK\n      access_key_secret: SK\n"),
        &[],
        5,
        "role_arn",
        "role_arn is required for credentials type ram_role_arn",
    );
    // An unknown type: its line.
    expect_err(
        &source("      access_key_id: AK\n      type: sts_token\n"),
        &[],
        6,
        "type",
        "unknown credentials type \"sts_token\"",
    );
    // Keys of another type: the key's line.
    expect_err(
        &source(&format!(
            "      type: ram_role_arn\n      role_arn: {ROLE}\n      role_name: reader\n"
        )),
        &[],
        7,
        "role_name",
        "role_name does not belong to credentials type ram_role_arn",
    );
    expect_err(
        &source("      type: ecs_ram_role\n      access_key_id: AK\n"),
        &[],
        6,
        "access_key_id",
        "does not belong to credentials type ecs_ram_role",
    );
    expect_err(
        &source(&format!(
            "      type: oidc_role_arn\n      role_arn: {ROLE}\n      external_id: x\n"
        )),
        &[],
        7,
        "external_id",
        "does not belong to credentials type oidc_role_arn",
    );
    expect_err(
        &source("      access_key_id: AK\n      access_key_secret: SK\n      role_arn: x\n"),
        &[],
        7,
        "role_arn",
        "does not belong to credentials type access_key",
    );
    // Values: a malformed ARN, a too-short duration, a bad session name, no base key.
    expect_err(
        &source("      type: ram_role_arn\n      role_arn: arn:aws:iam::1:role/x\n"),
        &[],
        6,
        "role_arn",
        "not a RAM role ARN",
    );
    expect_err(
        &source(&format!(
            "      type: ram_role_arn\n      role_arn: {ROLE}\n      duration: 10m\n      access_key_id: AK\n      access_key_secret: SK\n"
        )),
        &[],
        7,
        "duration",
        "at least 900s",
    );
    expect_err(
        &source(&format!(
            "      type: ram_role_arn\n      role_arn: {ROLE}\n      role_session_name: a b\n      access_key_id: AK\n      access_key_secret: SK\n"
        )),
        &[],
        7,
        "role_session_name",
        "2 to 64",
    );
    expect_err(
        &source(&format!(
            "      type: ram_role_arn\n      role_arn: {ROLE}\n"
        )),
        &[],
        5,
        "access_key_id",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
    );
}

fn chain(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_env("sources:\n  - name: x\n    provider: alibaba\n", env)
}

#[test]
fn the_default_chain_goes_env_oidc_file_then_ecs() -> TestResult {
    let home = tempfile::tempdir()?;
    let home_s = home.path().display().to_string();
    let token = home.path().join("token");
    std::fs::write(&token, "jwt")?;
    let token_s = token.display().to_string();

    // Nothing at all: the ECS RAM role (metadata disabled: an error naming the
    // variables).
    let c = chain(&[("HOME", &home_s)])?;
    assert!(matches!(
        alibaba(&c),
        Some(AlibabaCredentialConfig::EcsRamRole(_))
    ));
    // Said at load: off an ECS this would only show as reason="credentials" later.
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("using the ECS RAM role from the metadata service")),
        "{:?}",
        c.warnings
    );
    let e = chain(&[
        ("HOME", &home_s),
        ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true"),
    ])
    .err();
    assert!(
        e.as_ref()
            .is_some_and(|e| e.to_string().contains("ALIBABA_CLOUD_ACCESS_KEY_ID")
                && e.to_string()
                    .contains("ALIBABA_CLOUD_ECS_METADATA_DISABLED")),
        "{e:?}"
    );

    // The credentials file in the fake HOME, default section, then a profile.
    let dir = home.path().join(".alibabacloud");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("credentials"),
        format!(
            "[default]\ntype = ram_role_arn\naccess_key_id = fileak\naccess_key_secret = filesk\nrole_arn = {ROLE}\nrole_session_name = from-file\n\n[ecs]\ntype = ecs_ram_role\nrole_name = reader\n\n[bad]\ntype = rsa_key_pair\n"
        ),
    )?;
    let c = chain(&[("HOME", &home_s)])?;
    let Some(AlibabaCredentialConfig::RamRoleArn(r)) = alibaba(&c) else {
        panic!("not ram_role_arn from the file: {:?}", alibaba(&c));
    };
    assert_eq!(r.role_session_name, "from-file");
    assert_eq!(
        r.base.access_key_id,
        SecretSource::Value(Secret::new("fileak"))
    );
    let c = chain(&[("HOME", &home_s), ("ALIBABA_CLOUD_PROFILE", "ecs")])?;
    assert!(matches!(
        alibaba(&c),
        Some(AlibabaCredentialConfig::EcsRamRole(EcsRamRole { role_name: Some(n), .. })) if n == "reader"
    ));
    let e = chain(&[("HOME", &home_s), ("ALIBABA_CLOUD_PROFILE", "bad")]).err();
    assert!(
        e.as_ref().is_some_and(
            |e| e.to_string().contains("[bad]") && e.to_string().contains("rsa_key_pair")
        ),
        "{e:?}"
    );
    // An explicit file wins over HOME; access_key there.
    let other = home.path().join("other.ini");
    std::fs::write(
        &other,
        "[default]\ntype = access_key\naccess_key_id = otherak\naccess_key_secret = othersk\n",
    )?;
    let other_s = other.display().to_string();
    let c = chain(&[
        ("HOME", &home_s),
        ("ALIBABA_CLOUD_CREDENTIALS_FILE", &other_s),
    ])?;
    assert_eq!(
        c.sources[0]
            .credentials
            .read_static_for_tests()
            .map(|k| k.access_key_id),
        Some("otherak".into())
    );

    // OIDC variables come before the file; the environment key before both.
    let oidc = [
        ("HOME", home_s.as_str()),
        ("ALIBABA_CLOUD_ROLE_ARN", ROLE),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", PROVIDER),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token_s.as_str()),
    ];
    let c = chain(&oidc)?;
    assert!(matches!(
        alibaba(&c),
        Some(AlibabaCredentialConfig::OidcRoleArn(_))
    ));
    let mut with_env = oidc.to_vec();
    with_env.extend([
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "envak"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsk"),
    ]);
    let c = chain(&with_env)?;
    assert_eq!(
        c.sources[0]
            .credentials
            .read_static_for_tests()
            .map(|k| k.access_key_id),
        Some("envak".into())
    );
    Ok(())
}
