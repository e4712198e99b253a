//! The provider-neutral invitation model every provider maps onto.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

pub use crate::provider::Provider;

/// Invitation status. Unknown wire values are data, never errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Accepted,
    Cancelled,
    Declined,
    Expired,
    Unknown,
}

impl Status {
    /// Every status, in label order; `handshake_invitations` reports 0 for each one.
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Accepted,
        Status::Cancelled,
        Status::Declined,
        Status::Expired,
        Status::Unknown,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Accepted => "accepted",
            Status::Cancelled => "cancelled",
            Status::Declined => "declined",
            Status::Expired => "expired",
            Status::Unknown => "unknown",
        }
    }

    /// Case-insensitive parse of both providers' spellings (`Pending`, `pending`,
    /// `Cancelled`, `canceled`); anything else is `Unknown`.
    pub fn parse_lenient(raw: &str) -> Status {
        match raw.trim().to_ascii_lowercase().as_str() {
            "pending" => Status::Pending,
            "accepted" => Status::Accepted,
            "cancelled" | "canceled" => Status::Cancelled,
            "declined" => Status::Declined,
            "expired" => Status::Expired,
            _ => Status::Unknown,
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the invitation's target entity is: an account id, an email (Alibaba) or an
/// account name (Huawei).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    Account,
    Email,
    Name,
    Unknown,
}

impl TargetType {
    pub const ALL: [TargetType; 4] = [
        TargetType::Account,
        TargetType::Email,
        TargetType::Name,
        TargetType::Unknown,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TargetType::Account => "account",
            TargetType::Email => "email",
            TargetType::Name => "name",
            TargetType::Unknown => "unknown",
        }
    }

    /// Case-insensitive: Alibaba sends `Account`/`Email`, Huawei `account`/`name`.
    pub fn parse_lenient(raw: &str) -> TargetType {
        match raw.trim().to_ascii_lowercase().as_str() {
            "account" => TargetType::Account,
            "email" => TargetType::Email,
            "name" => TargetType::Name,
            _ => TargetType::Unknown,
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an invitation asks the invitee to do: AWS Organizations sends one of its
/// `ActionType` values; Alibaba's and Huawei's handshakes are always invitations to
/// join. A closed set, because it is the `action` label of `handshake_info`: an
/// unknown wire value becomes `unknown` instead of a new label value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Invite,
    EnableAllFeatures,
    ApproveAllFeatures,
    AddOrganizationsServiceLinkedRole,
    Unknown,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Invite => "invite",
            Action::EnableAllFeatures => "enable_all_features",
            Action::ApproveAllFeatures => "approve_all_features",
            Action::AddOrganizationsServiceLinkedRole => "add_organizations_service_linked_role",
            Action::Unknown => "unknown",
        }
    }

    /// Case-insensitive (`INVITE`, `invite`, `Enable_All_Features`); anything else
    /// is `Unknown`.
    pub fn parse_lenient(raw: &str) -> Action {
        match raw.trim().to_ascii_lowercase().as_str() {
            "invite" => Action::Invite,
            "enable_all_features" => Action::EnableAllFeatures,
            "approve_all_features" => Action::ApproveAllFeatures,
            "add_organizations_service_linked_role" => Action::AddOrganizationsServiceLinkedRole,
            _ => Action::Unknown,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of an invitation whose wire value was present but could not be read. The
/// set is closed: it is the `field` label of `handshake_source_parse_anomalies_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyField {
    ExpireTime,
    CreateTime,
    ModifyTime,
    Status,
    TargetType,
}

impl AnomalyField {
    pub const ALL: [AnomalyField; 5] = [
        AnomalyField::ExpireTime,
        AnomalyField::CreateTime,
        AnomalyField::ModifyTime,
        AnomalyField::Status,
        AnomalyField::TargetType,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AnomalyField::ExpireTime => "expire_time",
            AnomalyField::CreateTime => "create_time",
            AnomalyField::ModifyTime => "modify_time",
            AnomalyField::Status => "status",
            AnomalyField::TargetType => "target_type",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for AnomalyField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of one invitation that did not parse (a bit set over [`AnomalyField`]).
/// The invitation is kept with those fields absent or unknown; the cache counts and
/// logs what is set here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Anomalies(u8);

impl Anomalies {
    pub fn insert(&mut self, field: AnomalyField) {
        self.0 |= field.bit();
    }

    pub const fn contains(self, field: AnomalyField) -> bool {
        self.0 & field.bit() != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = AnomalyField> {
        AnomalyField::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

/// One invitation, as every provider reports it. Every field but the identity
/// (provider, source, id) is optional because both APIs may omit any of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Handshake {
    pub provider: Provider,
    /// Name of the configured source that fetched it (the `source` label).
    pub source: Arc<str>,
    pub id: String,
    pub status: Status,
    /// What the invitation asks for (`invite` unless the cloud says otherwise).
    pub action: Action,
    pub target_type: TargetType,
    /// Account id, email or account name of the invitee. Masked before it is shown.
    pub target_entity: Option<String>,
    /// Alibaba resource directory id (`rd-…`) or Huawei organization id (`o-…`).
    /// This and the management account are the same for (nearly) every invitation
    /// of a source: shared through an [`Interner`], one allocation per value instead
    /// of one per invitation (about 120 bytes of a 100,000-invitation snapshot's
    /// 450 per invitation).
    pub directory_id: Option<Arc<str>>,
    pub management_account_id: Option<Arc<str>>,
    pub management_account_name: Option<Arc<str>>,
    /// Free text; never used as a label.
    pub note: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub modified_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Fields whose wire value did not parse (not part of the JSON API).
    #[serde(skip)]
    pub anomalies: Anomalies,
}

impl Handshake {
    /// A handshake with only its identity set; providers fill in the rest.
    pub fn new(provider: Provider, source: Arc<str>, id: impl Into<String>) -> Handshake {
        Handshake {
            provider,
            source,
            id: id.into(),
            status: Status::Unknown,
            action: Action::Invite,
            target_type: TargetType::Unknown,
            target_entity: None,
            directory_id: None,
            management_account_id: None,
            management_account_name: None,
            note: None,
            created_at: None,
            modified_at: None,
            expires_at: None,
            anomalies: Anomalies::default(),
        }
    }

    /// A time field from its wire text. Absent or empty is no time (both APIs omit
    /// fields); text that is not a time is no time either, but it is noted in
    /// `anomalies`: an invitation without an expiry can never raise an expiry alert,
    /// so that must not happen in silence.
    pub fn read_time(&mut self, field: AnomalyField, raw: Option<&str>) -> Option<DateTime<Utc>> {
        let parsed = parse_time(raw);
        if parsed.is_none() && raw.is_some_and(|r| !r.trim().is_empty()) {
            self.anomalies.insert(field);
        }
        parsed
    }

    /// Set `status` from its wire text; a value that is none of the known ones is
    /// `Unknown` and noted in `anomalies` (absent stays `Unknown`, not an anomaly).
    pub fn read_status(&mut self, raw: Option<&str>) {
        self.status = raw.map_or(Status::Unknown, Status::parse_lenient);
        if self.status == Status::Unknown && raw.is_some_and(|r| !r.trim().is_empty()) {
            self.anomalies.insert(AnomalyField::Status);
        }
    }

    /// Set `target_type` from its wire text, like [`Handshake::read_status`].
    pub fn read_target_type(&mut self, raw: Option<&str>) {
        self.target_type = raw.map_or(TargetType::Unknown, TargetType::parse_lenient);
        if self.target_type == TargetType::Unknown && raw.is_some_and(|r| !r.trim().is_empty()) {
            self.anomalies.insert(AnomalyField::TargetType);
        }
    }
}

/// Shares equal strings of one listing (see [`Handshake::directory_id`]): the first
/// one seen is kept, later equal ones are dropped at once (short-lived garbage that
/// the next page reuses, not holes left in the snapshot's memory).
#[derive(Default)]
pub struct Interner {
    seen: std::collections::HashSet<Arc<str>>,
}

impl Interner {
    /// The shared copy of `value`. Only a handful of distinct values are expected;
    /// past 1,024 new ones are no longer remembered (hostile data cannot grow this).
    pub fn share(&mut self, value: Option<String>) -> Option<Arc<str>> {
        let value = value?;
        if let Some(known) = self.seen.get(value.as_str()) {
            return Some(known.clone());
        }
        let shared: Arc<str> = Arc::from(value);
        if self.seen.len() < 1_024 {
            self.seen.insert(shared.clone());
        }
        Some(shared)
    }
}

/// Parse an RFC 3339 timestamp leniently: empty or unparsable values become `None`
/// (a bad timestamp must not throw away the rest of the invitation).
pub fn parse_time(raw: Option<&str>) -> Option<DateTime<Utc>> {
    let raw = raw?.trim();
    if raw.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    // Some samples omit the zone (`2024-05-01T12:00:00`); the APIs document UTC.
    chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_both_providers_spellings() {
        assert_eq!(Status::parse_lenient("Pending"), Status::Pending);
        assert_eq!(Status::parse_lenient("cancelled"), Status::Cancelled);
        assert_eq!(Status::parse_lenient("Canceled"), Status::Cancelled);
        assert_eq!(Status::parse_lenient("Deleted"), Status::Unknown);
        assert_eq!(Status::parse_lenient(""), Status::Unknown);
        for s in Status::ALL {
            assert_eq!(Status::parse_lenient(s.as_str()), s);
            assert_eq!(Status::ALL[s.index()], s);
        }
    }

    #[test]
    fn target_types_parse_leniently() {
        assert_eq!(TargetType::parse_lenient("Email"), TargetType::Email);
        assert_eq!(TargetType::parse_lenient("name"), TargetType::Name);
        assert_eq!(TargetType::parse_lenient("Phone"), TargetType::Unknown);
        for t in TargetType::ALL {
            assert_eq!(TargetType::ALL[t.index()], t);
        }
    }

    #[test]
    fn unreadable_values_are_noted_absent_ones_are_not() {
        let mut h = Handshake::new(Provider::Huawei, Arc::from("s"), "h-1");
        assert_eq!(h.read_time(AnomalyField::ExpireTime, None), None);
        assert_eq!(h.read_time(AnomalyField::ExpireTime, Some(" ")), None);
        h.read_status(None);
        h.read_target_type(Some(""));
        assert!(h.anomalies.is_empty());
        assert!(
            h.read_time(AnomalyField::CreateTime, Some("2024-05-12T08:15:02Z"))
                .is_some()
        );
        h.read_status(Some("Pending"));
        assert_eq!(h.status, Status::Pending);
        assert!(h.anomalies.is_empty());

        assert_eq!(h.read_time(AnomalyField::ExpireTime, Some("soon")), None);
        h.read_status(Some("Frozen"));
        h.read_target_type(Some("Robot"));
        assert_eq!(
            (h.status, h.target_type),
            (Status::Unknown, TargetType::Unknown)
        );
        let noted: Vec<&str> = h.anomalies.iter().map(AnomalyField::as_str).collect();
        assert_eq!(noted, ["expire_time", "status", "target_type"]);
    }

    #[test]
    fn times_parse_rfc3339_and_tolerate_garbage() {
        let t = parse_time(Some("2024-05-12T08:15:02Z")).map(|t| t.timestamp());
        assert_eq!(t, Some(1_715_501_702));
        assert_eq!(
            parse_time(Some("2024-05-12T08:15:02")).map(|t| t.timestamp()),
            Some(1_715_501_702)
        );
        assert_eq!(parse_time(Some("not a time")), None);
        assert_eq!(parse_time(Some("")), None);
        assert_eq!(parse_time(None), None);
    }
}
