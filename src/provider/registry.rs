//! The one place that names the providers. Adding a cloud is one line here plus its
//! folder under `src/provider/` and its simulator module; everything else asks the
//! provider's [`ProviderKind`] through [`Provider::kind`].

use super::ProviderKind;
use std::fmt;

/// Declares [`Provider`] (one variant per cloud), its list and its kinds.
macro_rules! providers {
    ($($variant:ident => $kind:path),+ $(,)?) => {
        /// Which cloud an invitation comes from. Becomes the `provider` label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Provider {
            $($variant),+
        }

        impl Provider {
            /// Every provider, in registry order (routing order of the simulator,
            /// order of the demo's sources).
            pub const ALL: &'static [Provider] = &[$(Provider::$variant),+];

            /// What the rest of the exporter may know about this provider.
            pub fn kind(self) -> &'static dyn ProviderKind {
                match self {
                    $(Provider::$variant => &$kind),+
                }
            }
        }
    };
}

providers! {
    Alibaba => super::alibaba::KIND,
    Huawei => super::huawei::KIND,
    Aws => super::aws::KIND,
}

impl Provider {
    /// The label value and `provider:` key (`alibaba`, `huawei`, …).
    pub fn as_str(self) -> &'static str {
        self.kind().name()
    }

    /// The provider named `name` in a configuration.
    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.iter().copied().find(|p| p.as_str() == name)
    }

    /// `alibaba, huawei, …` for messages.
    pub fn names() -> String {
        Provider::ALL
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_a_distinct_name_and_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for p in Provider::ALL {
            assert!(seen.insert(p.as_str()), "duplicate provider name {p}");
            assert_eq!(Provider::parse(p.as_str()), Some(*p));
            assert!(!p.kind().views().is_empty(), "{p} serves no view");
        }
        assert_eq!(Provider::parse("gcp"), None);
    }
}
