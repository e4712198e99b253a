//! An AWS source's settings, validated, and the pure helpers the configuration
//! parser uses to fill them in (reference §7: one Organizations endpoint per
//! partition; §3: `MaxResults` 1..20).

use super::credentials::AwsCredentialConfig;

/// Which handshakes a source reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AwsView {
    /// ListHandshakesForOrganization: the management account or a delegated
    /// administrator.
    #[default]
    Organization,
    /// ListHandshakesForAccount: the handshakes the account received.
    Account,
    /// DescribeHandshake for each configured id.
    Ids,
}

impl AwsView {
    pub const NAMES: [&'static str; 3] = ["organization", "account", "ids"];

    pub fn parse(raw: &str) -> Option<AwsView> {
        match raw.trim() {
            "organization" => Some(AwsView::Organization),
            "account" => Some(AwsView::Account),
            "ids" => Some(AwsView::Ids),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            AwsView::Organization => "organization",
            AwsView::Account => "account",
            AwsView::Ids => "ids",
        }
    }
}

/// A validated AWS source.
#[derive(Clone, Debug, PartialEq)]
pub struct AwsSettings {
    pub view: AwsView,
    /// `view: ids` only.
    pub handshake_ids: Vec<String>,
    /// The SigV4 signing region (see [`resolve_endpoint`]).
    pub region: String,
    /// `http(s)://host[:port][/base]`, no trailing slash.
    pub endpoint: String,
    /// `MaxResults`, 1..=20.
    pub page_size: u32,
    pub credentials: AwsCredentialConfig,
}

pub const DEFAULT_REGION: &str = "us-east-1";
pub const MIN_PAGE_SIZE: u32 = 1;
/// The model's maximum; botocore does not enforce it, the service refuses 21.
pub const MAX_PAGE_SIZE: u32 = 20;
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// The partitions, each with one Organizations endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    Aws,
    China,
    GovCloud,
}

impl Partition {
    pub fn of(region: &str) -> Partition {
        if region.starts_with("cn-") {
            Partition::China
        } else if region.starts_with("us-gov-") {
            Partition::GovCloud
        } else {
            Partition::Aws
        }
    }

    /// The region the partition's Organizations endpoint signs for.
    pub const fn organizations_region(self) -> &'static str {
        match self {
            Partition::Aws => "us-east-1",
            Partition::China => "cn-northwest-1",
            Partition::GovCloud => "us-gov-west-1",
        }
    }

    pub const fn dns_suffix(self) -> &'static str {
        match self {
            Partition::China => "amazonaws.com.cn",
            Partition::Aws | Partition::GovCloud => "amazonaws.com",
        }
    }
}

/// Region syntax: lower-case letters, digits and hyphens, starting with a letter,
/// with at least one hyphen (`us-east-1`, `cn-northwest-1`, `us-gov-west-1`,
/// `aws-global`). Unknown but well-formed regions are allowed: new ones appear.
pub fn validate_region(region: &str) -> Result<(), String> {
    let ok = (3..=32).contains(&region.len())
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && !region.ends_with('-')
        && region.contains('-')
        && !region.contains("--")
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "region {region:?} is not an AWS region name (such as us-east-1)"
        ))
    }
}

/// The Organizations endpoint of a region's partition (reference §7): every
/// commercial region uses us-east-1's, China cn-northwest-1's, GovCloud
/// us-gov-west-1's.
pub fn default_endpoint(region: &str) -> String {
    let p = Partition::of(region);
    format!(
        "https://organizations.{}.{}",
        p.organizations_region(),
        p.dns_suffix()
    )
}

/// The endpoint and signing region of a source, as botocore resolves them: without
/// an explicit endpoint, the partition's endpoint and its signing region (a source
/// configured for `eu-west-1` signs for `us-east-1`); with one, the configured
/// region (default `us-east-1`). Returns `(signing region, endpoint)`.
pub fn resolve_endpoint(
    region: Option<&str>,
    endpoint: Option<&str>,
) -> Result<(String, String), String> {
    let region = region.map(str::trim).unwrap_or(DEFAULT_REGION);
    validate_region(region)?;
    match endpoint {
        Some(e) => {
            let e = e.trim().trim_end_matches('/');
            crate::credentials::config::validate_url(e)?;
            Ok((region.to_string(), e.to_string()))
        }
        None => Ok((
            Partition::of(region).organizations_region().to_string(),
            default_endpoint(region),
        )),
    }
}

/// `page_size`: 1..=20, default 20.
pub fn page_size(value: Option<u32>) -> Result<u32, String> {
    match value {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(v) if (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&v) => Ok(v),
        Some(v) => Err(format!(
            "page_size {v} is out of range {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE} (MaxResults)"
        )),
    }
}

/// Handshake id syntax (`^h-[0-9a-z]{8,32}$`): a mistyped id would otherwise show
/// up as "missing" forever.
pub fn validate_handshake_id(id: &str) -> Result<(), String> {
    let ok = id.strip_prefix("h-").is_some_and(|rest| {
        (8..=32).contains(&rest.len())
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "handshake id {id:?} is not an AWS handshake id (h- and 8 to 32 lower-case letters or digits)"
        ))
    }
}

/// The regional STS endpoint botocore uses by default (`sts_regional_endpoints =
/// regional`): `https://sts.<region>.<partition suffix>`; `aws-global` is the
/// legacy global endpoint.
pub fn default_sts_endpoint(region: &str) -> String {
    if region == "aws-global" {
        return "https://sts.amazonaws.com".into();
    }
    format!(
        "https://sts.{region}.{}",
        Partition::of(region).dns_suffix()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_resolve_like_botocore() {
        // Reference §7's table.
        let cases = [
            (
                "us-east-1",
                "https://organizations.us-east-1.amazonaws.com",
                "us-east-1",
            ),
            (
                "eu-west-1",
                "https://organizations.us-east-1.amazonaws.com",
                "us-east-1",
            ),
            (
                "aws-global",
                "https://organizations.us-east-1.amazonaws.com",
                "us-east-1",
            ),
            (
                "cn-north-1",
                "https://organizations.cn-northwest-1.amazonaws.com.cn",
                "cn-northwest-1",
            ),
            (
                "cn-northwest-1",
                "https://organizations.cn-northwest-1.amazonaws.com.cn",
                "cn-northwest-1",
            ),
            (
                "us-gov-east-1",
                "https://organizations.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
            ),
        ];
        for (region, endpoint, signing) in cases {
            assert_eq!(
                resolve_endpoint(Some(region), None),
                Ok((signing.to_string(), endpoint.to_string())),
                "{region}"
            );
        }
        // An explicit endpoint signs with the configured region.
        assert_eq!(
            resolve_endpoint(Some("eu-west-1"), Some("http://127.0.0.1:8443/")),
            Ok(("eu-west-1".to_string(), "http://127.0.0.1:8443".to_string()))
        );
        assert_eq!(
            resolve_endpoint(None, None),
            Ok((
                "us-east-1".to_string(),
                "https://organizations.us-east-1.amazonaws.com".to_string()
            ))
        );
        assert!(resolve_endpoint(Some("US_EAST_1"), None).is_err());
        assert!(resolve_endpoint(None, Some("ftp://x")).is_err());
        assert_eq!(
            default_sts_endpoint("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            default_sts_endpoint("eu-west-1"),
            "https://sts.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn bounds_and_syntax() {
        assert_eq!(page_size(None), Ok(20));
        assert_eq!(page_size(Some(1)), Ok(1));
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(21)).is_err());
        for bad in [
            "",
            "useast1",
            "us-east-",
            "-us-east-1",
            "us--east-1",
            "Us-east-1",
        ] {
            assert!(validate_region(bad).is_err(), "{bad}");
        }
        assert!(validate_handshake_id("h-98vnp5e7vkg0frht").is_ok());
        assert!(validate_handshake_id("h-short").is_err());
        assert!(validate_handshake_id("h-UPPERCASE1").is_err());
        assert_eq!(AwsView::parse("account"), Some(AwsView::Account));
        assert_eq!(AwsView::parse("received"), None);
    }
}
