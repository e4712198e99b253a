//! Realistic generated invitations, relative to "now": every status, both target
//! types of each provider, expiries from already past to weeks ahead.

use super::Dataset;
use crate::model::{Handshake, Provider, Status, TargetType};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn pick(rng: &mut fastrand::Rng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.usize(..alphabet.len())]))
        .collect()
}

/// `n` invitations for a dataset, deterministic for a seed (ids, statuses, targets),
/// with times relative to `now`. Invitation validity is 14 days, like both clouds.
pub fn generate(dataset: Dataset, n: usize, seed: u64, now: DateTime<Utc>) -> Vec<Handshake> {
    let mut rng =
        fastrand::Rng::with_seed(seed ^ (dataset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let provider = match dataset {
        Dataset::AlibabaResourceDirectory | Dataset::AlibabaAccount => Provider::Alibaba,
        Dataset::HuaweiSent | Dataset::HuaweiReceived => Provider::Huawei,
    };
    let source: Arc<str> = Arc::from("sim");
    let (directory, mgmt_id, mgmt_name) = match provider {
        Provider::Alibaba => (
            format!("rd-{}", pick(&mut rng, ALNUM, 6)),
            format!("151266687691{:04}", rng.u32(..10_000)),
            "ops-admin@example.com".to_string(),
        ),
        Provider::Huawei => (
            format!("o-{}", pick(&mut rng, LOWER_ALNUM, 32)),
            pick(&mut rng, b"0123456789abcdef", 32),
            "acme-root".to_string(),
        ),
    };
    let (directory, mgmt_id, mgmt_name): (Arc<str>, Arc<str>, Arc<str>) =
        (directory.into(), mgmt_id.into(), mgmt_name.into());
    (0..n)
        .map(|i| {
            let id = match provider {
                Provider::Alibaba => format!("h-{}", pick(&mut rng, ALNUM, 16)),
                Provider::Huawei => format!("h-{}", pick(&mut rng, LOWER_ALNUM, 32)),
            };
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
            let (target_type, target) = match (provider, rng.bool()) {
                (Provider::Alibaba, true) => (
                    TargetType::Account,
                    format!("17724228527{:05}", rng.u32(..100_000)),
                ),
                (Provider::Alibaba, false) => (TargetType::Email, format!("team{i}@example.com")),
                (Provider::Huawei, true) => {
                    (TargetType::Account, pick(&mut rng, b"0123456789abcdef", 32))
                }
                (Provider::Huawei, false) => (TargetType::Name, format!("acme-dev-{i}")),
            };
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
                action: crate::model::Action::Invite,
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
