//! `--web.config.file` in the Prometheus exporter-toolkit format: TLS (rustls) and
//! basic auth with bcrypt hashes.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver =
        ReloadingCert::new(cert_path, key_path, provider.clone()).map_err(|e| err(path, e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| err(path, e))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Read a certificate chain and its key, and check that they belong together.
/// Errors name the file, never its content.
fn load_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<rustls::sign::CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| format!("cert_file {}: {e}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cert_file {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cert_file {}: no certificate found",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("key_file {}: {e}", key_path.display()))?;
    rustls::sign::CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| format!("certificate and key do not fit: {e}"))
}

/// Serves the certificate in `cert_file`/`key_file` and loads it again when either
/// file changes on disk, as exporter-toolkit does: cert-manager and the kubelet
/// renew certificates in place, and a renewal must not wait for a reload. A pair
/// that does not load (half written, or the key of another certificate) is logged
/// and the previous certificate is served until the files are whole again.
#[derive(Debug)]
struct ReloadingCert {
    cert: crate::credentials::WatchedFile,
    key: crate::credentials::WatchedFile,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl ReloadingCert {
    fn new(
        cert_path: PathBuf,
        key_path: PathBuf,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<ReloadingCert, String> {
        let cert = crate::credentials::WatchedFile::new(cert_path);
        let key = crate::credentials::WatchedFile::new(key_path);
        cert.mark_seen();
        key.mark_seen();
        let loaded = load_certified_key(cert.path(), key.path(), &provider)?;
        Ok(ReloadingCert {
            cert,
            key,
            provider,
            current: std::sync::RwLock::new(Arc::new(loaded)),
        })
    }

    fn current(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        // Two stats per handshake; files are read only when one of them changed.
        if self.cert.changed() || self.key.changed() {
            self.cert.mark_seen();
            self.key.mark_seen();
            match load_certified_key(self.cert.path(), self.key.path(), &self.provider) {
                Ok(loaded) => {
                    tracing::info!(
                        cert_file = %self.cert.path().display(),
                        "TLS certificate changed on disk; serving the new one"
                    );
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "TLS certificate changed on disk but does not load; serving the previous one"
                ),
            }
        }
        Some(self.current())
    }
}
