//! Realistic generated invitations, relative to "now": every status, both target
//! types of each provider, expiries from already past to weeks ahead.

use super::Dataset;
use crate::model::{Handshake, Provider, Status, TargetType};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// `n` invitations for a dataset, deterministic for a seed (ids, statuses, targets),
/// with times relative to `now`, in the format of the provider that serves it.
pub fn generate(dataset: Dataset, n: usize, seed: u64, now: DateTime<Utc>) -> Vec<Handshake> {
    match dataset.provider() {
        Some(p) => p.kind().sim().generate(dataset, n, seed, now),
        None => Vec::new(),
    }
}

/// How one cloud's generated invitations look.
pub struct Style {
    pub provider: Provider,
    /// Directory (or organization) id, management account id and name.
    pub directory: fn(&mut fastrand::Rng) -> (String, String, String),
    pub id: fn(&mut fastrand::Rng) -> String,
    /// The target of invitation `i`: an account when the flag is set, else the
    /// cloud's other target type.
    pub target: fn(&mut fastrand::Rng, usize, bool) -> (TargetType, String),
    /// What invitation `i` asks for.
    pub action: fn(usize) -> crate::model::Action,
}

/// Letters and digits (upper and lower case).
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Lower-case letters and digits.
pub const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random characters of `alphabet`.
pub fn pick(rng: &mut fastrand::Rng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.usize(..alphabet.len())]))
        .collect()
}

/// [`generate`] for a provider's [`Style`]. Invitation validity is 14 days, like
/// every cloud here.
pub fn generate_with(
    style: &Style,
    dataset: Dataset,
    n: usize,
    seed: u64,
    now: DateTime<Utc>,
) -> Vec<Handshake> {
    let mut rng =
        fastrand::Rng::with_seed(seed ^ dataset.salt().wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let provider = style.provider;
    let source: Arc<str> = Arc::from("sim");
    let (directory, mgmt_id, mgmt_name) = (style.directory)(&mut rng);
    let (directory, mgmt_id, mgmt_name): (Arc<str>, Arc<str>, Arc<str>) =
        (directory.into(), mgmt_id.into(), mgmt_name.into());
    (0..n)
        .map(|i| {
            let id = (style.id)(&mut rng);
            // Roughly: 45% pending, then accepted, expired, declined, cancelled.
            // The first two are always pending so that demos and the alerting
            // end-to-end test have one invitation in each expiry band.
            let roll = if i < 2 { 0 } else { rng.u32(..100) };
            let status = match roll {
                0..=44 => Status::Pending,
                45..=69 => Status::Accepted,
                70..=81 => Status::Expired,
                82..=91 => Status::Declined,
                _ => Status::Cancelled,
            };
            let account = rng.bool();
            let (target_type, target) = (style.target)(&mut rng, i, account);
            // Pending ones expire between 2 days ago (provider lagging) and 14 days ahead;
            // the first few are pinned inside the alerting windows so demos show them.
            let expires_in = if status == Status::Pending {
                match i {
                    0 => Duration::hours(5),
                    1 => Duration::hours(40),
                    _ => Duration::minutes(rng.i64(-2 * 24 * 60..14 * 24 * 60)),
                }
            } else {
                -Duration::minutes(rng.i64(0..60 * 24 * 60))
            };
            let expires = (now + expires_in).with_nanosecond_zero();
            let created = expires - Duration::days(14);
            let modified = if status == Status::Pending {
                created
            } else {
                created + Duration::minutes(rng.i64(1..14 * 24 * 60))
            };
            Handshake {
                provider,
                source: source.clone(),
                id,
                status,
                action: (style.action)(i),
                target_type,
                target_entity: Some(target),
                directory_id: Some(directory.clone()),
                management_account_id: Some(mgmt_id.clone()),
                management_account_name: Some(mgmt_name.clone()),
                note: Some(if i % 3 == 0 {
                    String::new()
                } else {
                    format!("Welcome aboard, team {i}")
                }),
                created_at: Some(created),
                modified_at: Some(modified),
                expires_at: Some(expires),
                anomalies: Default::default(),
            }
        })
        .collect()
}

trait TruncateNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl TruncateNanos for DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        DateTime::from_timestamp(self.timestamp(), 0).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_data_covers_every_status_and_is_deterministic() {
        let now = Utc::now();
        let a = generate(Dataset::AlibabaResourceDirectory, 300, 7, now);
        let b = generate(Dataset::AlibabaResourceDirectory, 300, 7, now);
        assert_eq!(a, b);
        let statuses: HashSet<_> = a.iter().map(|h| h.status).collect();
        assert_eq!(statuses.len(), 5);
        let types: HashSet<_> = a.iter().map(|h| h.target_type).collect();
        assert_eq!(
            types,
            HashSet::from([TargetType::Account, TargetType::Email])
        );
        let ids: HashSet<_> = a.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids.len(), 300);
        let hw = generate(Dataset::HuaweiSent, 50, 7, now);
        assert!(hw.iter().all(|h| h.id.len() == 34));
        assert!(hw.iter().any(|h| h.target_type == TargetType::Name));
        let past_pending = a
            .iter()
            .filter(|h| h.status == Status::Pending && h.expires_at.is_some_and(|e| e < now))
            .count();
        assert!(past_pending > 0);
    }
}
