//! The exporter's own counters, kept in a `prometheus` registry. Per-invitation and
//! per-source gauges are not here: they are rendered fresh from the cache on every
//! scrape (see `render`), so that vanished invitations and sources vanish.

use crate::error::Reason;
use crate::model::{AnomalyField, Provider};
use prometheus::{
    Encoder, Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct ExporterMetrics {
    registry: Registry,
    pub api_requests: IntCounterVec,
    pub api_retries: IntCounterVec,
    pub refreshes: IntCounterVec,
    pub refresh_failures: IntCounterVec,
    pub missing_ids: IntGaugeVec,
    pub parse_anomalies: IntCounterVec,
    pub reload_successful: IntGauge,
    pub reload_success_timestamp: Gauge,
    /// Set by `credentials::CredentialCache` for temporary credentials only.
    pub credentials_expiry: GaugeVec,
    /// Bodies of the snapshot families rendered (one per scrape wave: see
    /// `cache::RenderCache`).
    pub renders: IntCounter,
}

/// Version string reported by `handshake_exporter_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl ExporterMetrics {
    /// Build the registry. `with_process` adds `process_*` metrics (off in unit tests
    /// that compare exact output).
    pub fn new(with_process: bool) -> ExporterMetrics {
        let registry = Registry::new();
        let api_requests = IntCounterVec::new(
            Opts::new(
                "handshake_api_requests_total",
                "Requests sent to the cloud API, by action and HTTP status code (or timeout/network when no answer arrived).",
            ),
            &["provider", "source", "action", "code"],
        )
        .expect("static metric definition");
        let api_retries = IntCounterVec::new(
            Opts::new(
                "handshake_api_retries_total",
                "API requests repeated after a throttling, server, timeout or network error.",
            ),
            &["provider", "source", "action"],
        )
        .expect("static metric definition");
        let refreshes = IntCounterVec::new(
            Opts::new(
                "handshake_source_refreshes_total",
                "Refreshes of a source's cached invitations, successful or not.",
            ),
            &["provider", "source"],
        )
        .expect("static metric definition");
        let refresh_failures = IntCounterVec::new(
            Opts::new(
                "handshake_source_refresh_failures_total",
                "Failed refreshes of a source, by reason.",
            ),
            &["provider", "source", "reason"],
        )
        .expect("static metric definition");
        let missing_ids = IntGaugeVec::new(
            Opts::new(
                "handshake_source_missing_ids",
                "Configured handshake_ids (view: ids) the cloud says do not exist, left out of the last successful refresh.",
            ),
            &["provider", "source"],
        )
        .expect("static metric definition");
        let parse_anomalies = IntCounterVec::new(
            Opts::new(
                "handshake_source_parse_anomalies_total",
                "Invitation fields whose value the API sent but the exporter could not read (kept as absent or unknown), counted on every successful refresh that saw them.",
            ),
            &["provider", "source", "field"],
        )
        .expect("static metric definition");
        let reload_successful = IntGauge::new(
            "handshake_config_last_reload_successful",
            "Whether the last configuration reload attempt succeeded (1) or kept the old configuration (0).",
        )
        .expect("static metric definition");
        let reload_success_timestamp = Gauge::new(
            "handshake_config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration load.",
        )
        .expect("static metric definition");
        let credentials_expiry = GaugeVec::new(
            Opts::new(
                "handshake_source_credentials_expiry_timestamp_seconds",
                "When the source's current temporary credentials (assumed role, instance or pod identity) expire; absent for static keys.",
            ),
            &["provider", "source"],
        )
        .expect("static metric definition");
        let renders = IntCounter::new(
            "handshake_exporter_renders_total",
            "Times the invitation and source families were rendered; scrapes of the same data within the same second share one rendering.",
        )
        .expect("static metric definition");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "handshake_exporter_build_info",
                "Build information of the running handshake_exporter; always 1.",
            ),
            &["version", "revision", "rustc_version"],
        )
        .expect("static metric definition");
        build_info
            .with_label_values(&[
                VERSION,
                option_env!("HANDSHAKE_EXPORTER_REVISION").unwrap_or("unknown"),
                option_env!("HANDSHAKE_EXPORTER_RUSTC").unwrap_or("unknown"),
            ])
            .set(1);

        for c in [
            Box::new(api_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(api_retries.clone()),
            Box::new(refreshes.clone()),
            Box::new(refresh_failures.clone()),
            Box::new(missing_ids.clone()),
            Box::new(parse_anomalies.clone()),
            Box::new(reload_successful.clone()),
            Box::new(reload_success_timestamp.clone()),
            Box::new(credentials_expiry.clone()),
            Box::new(renders.clone()),
            Box::new(build_info),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        if with_process {
            #[cfg(target_os = "linux")]
            {
                let pc = CachedProcess {
                    inner: prometheus::process_collector::ProcessCollector::for_self(),
                    last: std::sync::Mutex::new(None),
                };
                // Registration can only fail on a duplicate, which cannot happen here.
                let _ = registry.register(Box::new(pc));
            }
        }
        ExporterMetrics {
            registry,
            api_requests,
            api_retries,
            refreshes,
            refresh_failures,
            missing_ids,
            parse_anomalies,
            reload_successful,
            reload_success_timestamp,
            credentials_expiry,
            renders,
        }
    }

    /// Create a source's counters at zero so that `rate()` and `increase()` work
    /// from its first scrape, and failures by every reason are visible as 0.
    pub fn init_source(&self, provider: Provider, source: &str) {
        let p = provider.as_str();
        self.refreshes.with_label_values(&[p, source]);
        self.missing_ids.with_label_values(&[p, source]).set(0);
        for field in AnomalyField::ALL {
            self.parse_anomalies
                .with_label_values(&[p, source, field.as_str()]);
        }
        for reason in Reason::ALL {
            self.refresh_failures
                .with_label_values(&[p, source, reason.metric_label()]);
        }
    }

    /// Drop the counters of a source removed by a reload.
    pub fn remove_source(&self, provider: Provider, source: &str) {
        let p = provider.as_str();
        let _ = self.refreshes.remove_label_values(&[p, source]);
        let _ = self.missing_ids.remove_label_values(&[p, source]);
        for field in AnomalyField::ALL {
            let _ = self
                .parse_anomalies
                .remove_label_values(&[p, source, field.as_str()]);
        }
        let _ = self.credentials_expiry.remove_label_values(&[p, source]);
        for reason in Reason::ALL {
            let _ = self
                .refresh_failures
                .remove_label_values(&[p, source, reason.metric_label()]);
        }
        // api_requests/api_retries have open-ended label sets (action, code): find
        // this source's series among what they hold and remove each.
        for vec in [&self.api_requests, &self.api_retries] {
            use prometheus::core::Collector;
            for family in vec.collect() {
                for m in family.get_metric() {
                    let labels: std::collections::HashMap<&str, &str> = m
                        .get_label()
                        .iter()
                        .map(|l| (l.name(), l.value()))
                        .collect();
                    if labels.get("source") == Some(&source) && labels.get("provider") == Some(&p) {
                        let _ = vec.remove(&labels);
                    }
                }
            }
        }
    }

    /// Append the text exposition of these metrics.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let families = self.registry.gather();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&families, out);
    }

    /// Only the metrics of one source (for `/probe`).
    pub fn encode_source_into(&self, source: &str, out: &mut Vec<u8>) {
        let mut families = self.registry.gather();
        families.retain(|f| {
            f.name().starts_with("handshake_api_") || f.name().starts_with("handshake_source_")
        });
        for f in &mut families {
            let kept: Vec<_> = f
                .take_metric()
                .into_iter()
                .filter(|m| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == "source" && l.value() == source)
                })
                .collect();
            f.set_metric(kept);
        }
        families.retain(|f| !f.get_metric().is_empty());
        let _ = TextEncoder::new().encode(&families, out);
    }
}

/// How long `process_*` samples are reused.
#[cfg(target_os = "linux")]
const PROCESS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// The `process_*` metrics, read from /proc at most once per [`PROCESS_MAX_AGE`].
/// Reading them takes several syscalls (about 33 µs, a quarter of a scrape at 1,000
/// invitations, see `cargo bench --bench hot -- registry`), and nothing in them
/// moves meaningfully between scrapes less than a second apart.
#[cfg(target_os = "linux")]
struct CachedProcess {
    inner: prometheus::process_collector::ProcessCollector,
    last: std::sync::Mutex<Option<(std::time::Instant, Vec<prometheus::proto::MetricFamily>)>>,
}

#[cfg(target_os = "linux")]
impl prometheus::core::Collector for CachedProcess {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.inner.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        // Held while reading, so that concurrent scrapes read /proc once, not each.
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, families)) = &*last
            && at.elapsed() < PROCESS_MAX_AGE
        {
            return families.clone();
        }
        let families = self.inner.collect();
        *last = Some((std::time::Instant::now(), families.clone()));
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(m: &ExporterMetrics) -> String {
        let mut out = Vec::new();
        m.encode_into(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn a_removed_source_leaves_no_series_of_its_own_families() {
        let m = ExporterMetrics::new(false);
        m.init_source(Provider::Huawei, "gone");
        m.init_source(Provider::Alibaba, "kept");
        m.missing_ids.with_label_values(&["huawei", "gone"]).set(2);
        m.parse_anomalies
            .with_label_values(&["huawei", "gone", "expire_time"])
            .inc();
        let before = exposition(&m);
        for family in [
            "handshake_source_refreshes_total",
            "handshake_source_refresh_failures_total",
            "handshake_source_missing_ids",
            "handshake_source_parse_anomalies_total",
        ] {
            assert!(
                before.contains(&format!("{family}{{")) && before.contains("source=\"gone\""),
                "{family} missing:\n{before}"
            );
        }
        assert!(before.contains(
            "handshake_source_parse_anomalies_total{field=\"status\",provider=\"alibaba\",source=\"kept\"} 0"
        ));
        m.remove_source(Provider::Huawei, "gone");
        let after = exposition(&m);
        assert!(!after.contains("source=\"gone\""), "{after}");
        assert!(
            after.contains("handshake_source_missing_ids{provider=\"alibaba\",source=\"kept\"} 0")
        );
    }
}
