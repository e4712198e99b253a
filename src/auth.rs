//! HTTP basic auth as prometheus/exporter-toolkit does it.
//!
//! - bcrypt (tens of milliseconds of CPU by design) runs on tokio's blocking pool,
//!   at most [`BCRYPT_PARALLEL`] at a time, never on an async worker: a burst of
//!   wrong passwords cannot stall `/metrics` for everyone else.
//! - Recent results are cached, keyed by an HMAC (with a random per-process key) of
//!   user, hash and password: a scraper that sends the same credentials every 15 s
//!   costs one bcrypt per configuration, and the password itself is never stored.
//! - An unknown user costs the same bcrypt as a known one (against the costliest
//!   configured hash, then refused), so user names cannot be probed by timing.
//! - User names are compared in constant time; bcrypt's own comparison is (the
//!   `bcrypt` crate uses `subtle`).

use hmac::{Hmac, Mac};
use hyper::header::{self, HeaderMap};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// bcrypt verifications allowed at once (each takes one blocking-pool thread).
pub const BCRYPT_PARALLEL: usize = 2;
/// Cached results kept; beyond it an arbitrary old entry is dropped.
const CACHE_CAPACITY: usize = 1024;

type Key = [u8; 32];

/// The `WWW-Authenticate` challenge sent with a 401.
pub const CHALLENGE: &str = "Basic realm=\"handshake_exporter\"";

/// Paths answered without credentials. Health and readiness reveal nothing and must
/// answer Kubernetes probes, which carry no credentials; everything else is
/// protected when users are configured.
pub fn is_open(path: &str) -> bool {
    matches!(path, "/-/healthy" | "/-/ready")
}

pub struct BasicAuth {
    /// (user, bcrypt hash), from `basic_auth_users`.
    users: Vec<(String, String)>,
    /// What an unknown user's password is checked against: the configured hash
    /// with the highest cost, so the work is the same as for a real user.
    dummy_hash: String,
    hmac_key: [u8; 32],
    cache: Mutex<HashMap<Key, bool>>,
    bcrypt_slots: Semaphore,
    verifications: AtomicU64,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("BasicAuth").field("users", &users).finish()
    }
}

/// The cost field of a `$2b$10$…` hash.
fn cost(hash: &str) -> u32 {
    hash.split('$')
        .nth(2)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    let provider = rustls::crypto::ring::default_provider();
    if provider.secure_random.fill(&mut key).is_err() {
        // Without system randomness the key is merely unpredictable-ish; it only
        // hides cache keys (which never hold a password) from a memory dump.
        for b in &mut key {
            *b = fastrand::u8(..);
        }
    }
    key
}

impl BasicAuth {
    /// `None` when there are no users (auth off).
    pub fn new(users: Vec<(String, String)>) -> Option<Arc<BasicAuth>> {
        let dummy_hash = users
            .iter()
            .max_by_key(|(_, h)| cost(h))
            .map(|(_, h)| h.clone())?;
        Some(Arc::new(BasicAuth {
            users,
            dummy_hash,
            hmac_key: random_key(),
            cache: Mutex::new(HashMap::new()),
            bcrypt_slots: Semaphore::new(BCRYPT_PARALLEL),
            verifications: AtomicU64::new(0),
        }))
    }

    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|(u, _)| u.as_str())
    }

    /// bcrypt verifications run so far (cache misses); tests count them.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::SeqCst)
    }

    fn cache_key(&self, user: &str, hash: &str, password: &str) -> Key {
        // Length-prefixed so that no two (user, hash, password) triples collide.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.hmac_key) {
            Ok(m) => m,
            // HMAC takes keys of any length; unreachable, but never panic here.
            Err(_) => return [0; 32],
        };
        for part in [user, hash, password] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<Key, bool>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the request carries the credentials of a configured user.
    pub async fn check(self: &Arc<Self>, headers: &HeaderMap) -> bool {
        let Some((user, password)) = credentials(headers) else {
            return false;
        };
        // Every configured name is compared, in constant time, whatever matches.
        let mut found: Option<&str> = None;
        for (u, h) in &self.users {
            if bool::from(u.as_bytes().ct_eq(user.as_bytes())) {
                found = Some(h);
            }
        }
        let known = found.is_some();
        let hash = found.unwrap_or(&self.dummy_hash).to_string();
        let key = self.cache_key(&user, &hash, &password);
        if let Some(ok) = self.lock_cache().get(&key).copied() {
            return ok && known;
        }
        let Ok(_slot) = self.bcrypt_slots.acquire().await else {
            return false;
        };
        let me = self.clone();
        let verified = tokio::task::spawn_blocking(move || {
            me.verifications.fetch_add(1, Ordering::SeqCst);
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = verified && known;
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_CAPACITY {
            if let Some(old) = cache.keys().next().copied() {
                cache.remove(&old);
            }
        }
        cache.insert(key, ok);
        ok
    }
}

/// `Authorization: Basic base64(user:password)`, decoded.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn basic(user: &str, password: &str) -> HeaderMap {
        use base64::Engine;
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        if let Ok(v) = HeaderValue::from_str(&format!("Basic {token}")) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    fn auth(cost: u32) -> Arc<BasicAuth> {
        let hash = bcrypt::hash("right", cost).expect("bcrypt hashes");
        BasicAuth::new(vec![("prometheus".into(), hash)]).expect("one user")
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn right_wrong_and_unknown_users_each_cost_one_bcrypt_then_hit_the_cache() {
        current_thread().block_on(async {
            let a = auth(4);
            assert!(a.check(&basic("prometheus", "right")).await);
            assert_eq!(a.verifications(), 1);
            assert!(a.check(&basic("prometheus", "right")).await);
            assert_eq!(a.verifications(), 1, "a repeated good login is cached");
            assert!(!a.check(&basic("prometheus", "wrong")).await);
            assert_eq!(a.verifications(), 2);
            // An unknown user costs a bcrypt verification too (no timing oracle),
            // even with the password of a real user.
            assert!(!a.check(&basic("nobody", "right")).await);
            assert_eq!(a.verifications(), 3);
            assert!(!a.check(&basic("nobody", "x")).await);
            assert_eq!(a.verifications(), 4);
            // No or malformed credentials: refused without bcrypt.
            assert!(!a.check(&HeaderMap::new()).await);
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
            assert!(!a.check(&h).await);
            assert_eq!(a.verifications(), 4);
        });
    }

    /// On a single-threaded runtime, a bcrypt run inline would finish inside the
    /// first poll of the checking task, before any other task runs again. Run on
    /// the blocking pool, the checks are still going when the runtime comes back to
    /// the scraper's task, and a cached good login is answered in between.
    #[test]
    fn wrong_passwords_do_not_block_the_runtime_or_a_cached_user() {
        current_thread().block_on(async {
            // Cost 10: tens of milliseconds per check even in release builds.
            let a = auth(10);
            assert!(a.check(&basic("prometheus", "right")).await);
            let wrong: Vec<_> = (0..4)
                .map(|i| {
                    let a = a.clone();
                    tokio::spawn(
                        async move { a.check(&basic("prometheus", &format!("w{i}"))).await },
                    )
                })
                .collect();
            // Let every wrong-password task start (and, if bcrypt ran inline, finish).
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            assert!(a.check(&basic("prometheus", "right")).await);
            let finished = wrong.iter().filter(|t| t.is_finished()).count();
            assert_eq!(
                finished, 0,
                "wrong-password checks ran on the runtime thread before the good login was answered"
            );
            for t in wrong {
                assert_eq!(t.await.ok(), Some(false));
            }
            assert_eq!(a.verifications(), 5);
        });
    }
}
