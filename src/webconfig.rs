//! `--web.config.file` in the Prometheus exporter-toolkit format: TLS (rustls) and
//! basic auth with bcrypt hashes.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: String,
    key_file: String,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
}

/// What the web config asks for, ready to serve.
pub struct WebConfig {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub basic_auth: Vec<(String, String)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field(
                "basic_auth_users",
                &self
                    .basic_auth
                    .iter()
                    .map(|(u, _)| u.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn err(path: &Path, msg: impl std::fmt::Display) -> String {
    format!("{}: {msg}", path.display())
}

pub fn load(path: &Path) -> Result<WebConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let raw: RawWebConfig = serde_saphyr::from_str(&text).map_err(|e| {
        let line = e
            .location()
            .map(|l| format!(":{}", l.line()))
            .unwrap_or_default();
        format!(
            "{}{line}: {}",
            path.display(),
            e.to_string().lines().next().unwrap_or_default()
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut basic_auth = Vec::new();
    for (user, hash) in raw.basic_auth_users {
        if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
            return Err(err(
                path,
                format!("basic_auth_users.{user}: not a bcrypt hash"),
            ));
        }
        basic_auth.push((user, hash));
    }
    let tls = match raw.tls_server_config {
        None => None,
        Some(t) => Some(tls_acceptor(path, base, &t)?),
    };
    Ok(WebConfig { tls, basic_auth })
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn tls_acceptor(path: &Path, base: &Path, t: &RawTls) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    if let Some(c) = &t.client_auth_type {
        if c != "NoClientCert" {
            return Err(err(
                path,
                format!(
                    "tls_server_config.client_auth_type {c:?} is not supported (only NoClientCert)"
                ),
            ));
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_deref() {
        None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(v) => {
            return Err(err(
                path,
                format!("tls_server_config.min_version {v:?}: use TLS12 or TLS13"),
            ));
        }
    };
    let cert_path = resolve(base, &t.cert_file);
    let key_path = resolve(base, &t.key_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| err(path, format!("cert_file {}: {e}", cert_path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(path, format!("cert_file {}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(err(
            path,
            format!("cert_file {}: no certificate found", cert_path.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| err(path, format!("key_file {}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| err(path, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(path, format!("certificate and key do not fit: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
