//! Where a provider's requests go: the parsed endpoint and the exact `Host` header
//! that every cloud's signature covers, shared by the providers' clients, STS and
//! metadata fetchers.

use crate::error::{ApiError, Reason};

/// A configured endpoint (`https://host[:port][/base]`), parsed once.
#[derive(Clone, Debug)]
pub struct Endpoint {
    url: reqwest::Url,
    /// `host[:port]`, the port only when it is not the scheme's default: exactly the
    /// Host header that is sent, since it is signed.
    host: String,
    /// Request path (`/`, or `<base path>/` behind a proxy).
    path: String,
}

impl Endpoint {
    /// Parse a configured endpoint (`https://host[:port][/base]`, no trailing slash).
    pub fn parse(endpoint: &str) -> Result<Endpoint, String> {
        let url = reqwest::Url::parse(endpoint)
            .map_err(|e| format!("endpoint {endpoint:?} is not a URL: {e}"))?;
        let host = host_header(&url).ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?;
        let path = format!("{}/", url.path().trim_end_matches('/'));
        Ok(Endpoint { url, host, path })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The URL of the endpoint's path, without a query.
    pub fn url(&self) -> reqwest::Url {
        let mut url = self.url.clone();
        url.set_path(&self.path);
        url.set_query(None);
        url
    }
}

/// `Host` as reqwest/hyper send it, which is what must be signed: the host, plus
/// `:port` only when the URL names a non-default port (the url crate drops a
/// default one).
pub fn host_header(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// `path` under a metadata service's base URL (which may carry a path prefix), or
/// why the configured base cannot be used, as an error of `action`.
pub fn url_under(
    base: &Result<reqwest::Url, String>,
    action: &'static str,
    path: &str,
) -> Result<reqwest::Url, ApiError> {
    let mut url = base
        .clone()
        .map_err(|m| ApiError::new(Reason::BadRequest, action, m))?;
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}{path}"));
    Ok(url)
}
