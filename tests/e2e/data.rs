//! What the data itself can do to a source: configured ids the cloud forgot, and
//! values that do not parse. Both are reported (metric and one log line), neither
//! takes the source down.

use crate::harness::*;
use handshake_exporter::sim::{Dataset, Fault, FaultKind, SimServer};
use std::time::Duration;

const ALI_AK: &str = "LTAIdataTest000000001";
const ALI_SK: &str = "data-test-alibaba-secret";
const HW_AK: &str = "HWDATATESTAK00000001";
const HW_SK: &str = "data-test-huawei-secret";

/// One refresh interval (1 s) and a little.
const PAST_INTERVAL: Duration = Duration::from_millis(1100);

fn ids_block(ids: &[String]) -> String {
    format!("    handshake_ids: [{}]\n", ids.join(", "))
}

/// `view: ids` on both providers: an id the cloud no longer knows is left out,
/// counted in `handshake_source_missing_ids`, logged once (not on every refresh),
/// the other ids are served and the source stays up; when it is back, the gauge
/// returns to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_the_cloud_forgot_are_left_out_counted_and_logged_once() -> TestResult {
    let first_ids = |sim: &SimServer, ak: &str, dataset: Dataset| -> Vec<String> {
        sim.sim.dataset(ak, dataset)[..3]
            .iter()
            .map(|h| h.id.clone())
            .collect()
    };
    let (sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 5)])
        .tenant(HW_AK, HW_SK, &[(Dataset::HuaweiSent, 5)])
        .top("refresh_interval: 1s\nper_invitation: all\n")
        .alibaba("ali-ids", ALI_AK, ALI_SK, "ids")
        .source_yaml(move |sim| {
            ids_block(&first_ids(sim, ALI_AK, Dataset::AlibabaResourceDirectory))
        })
        .huawei("hw-ids", HW_AK, HW_SK, "ids")
        .source_yaml(move |sim| ids_block(&first_ids(sim, HW_AK, Dataset::HuaweiSent)))
        .start()
        .await;
    let ali: Vec<_> = sim.sim.dataset(ALI_AK, Dataset::AlibabaResourceDirectory)[..3].to_vec();
    let hw: Vec<_> = sim.sim.dataset(HW_AK, Dataset::HuaweiSent)[..3].to_vec();
    let ali_ids: Vec<String> = ali.iter().map(|h| h.id.clone()).collect();
    let hw_ids: Vec<String> = hw.iter().map(|h| h.id.clone()).collect();
    let text = exporter.scrape().await;
    for source in ["ali-ids", "hw-ids"] {
        assert_eq!(
            value(&text, "handshake_source_missing_ids", &[("source", source)]),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            samples(&text, "handshake_info", &[("source", source)]).len(),
            3
        );
    }

    assert!(sim.sim.delete_handshake(ALI_AK, &ali_ids[1]));
    assert!(sim.sim.delete_handshake(HW_AK, &hw_ids[0]));
    // Three refreshes while the ids stay missing.
    let mut text = String::new();
    for _ in 0..3 {
        tokio::time::sleep(PAST_INTERVAL).await;
        text = exporter.scrape().await;
    }
    for (source, gone) in [("ali-ids", &ali_ids[1]), ("hw-ids", &hw_ids[0])] {
        assert_eq!(
            value(&text, "handshake_source_up", &[("source", source)]),
            Some(1.0),
            "{source} stays up"
        );
        assert_eq!(
            value(&text, "handshake_source_missing_ids", &[("source", source)]),
            Some(1.0),
            "{source}"
        );
        assert!(
            value(
                &text,
                "handshake_source_refreshes_total",
                &[("source", source)]
            )
            .is_some_and(|n| n >= 4.0),
            "{source}: three refreshes after the first"
        );
        let served = samples(&text, "handshake_info", &[("source", source)]).len();
        assert_eq!(served, 2, "{source}: the other ids are served");
        assert!(samples(&text, "handshake_info", &[("handshake_id", gone)]).is_empty());
        let logged = exporter
            .log()
            .lines()
            .filter(|l| l.contains("does not exist") && l.contains(gone.as_str()))
            .count();
        assert_eq!(logged, 1, "{source}: logged once, not on every refresh");
    }

    // Back again (the id is known to the cloud once more): the gauge says 0.
    let mut tenant_data = sim.sim.dataset(ALI_AK, Dataset::AlibabaResourceDirectory);
    tenant_data.push(ali[1].clone());
    sim.sim
        .set_dataset(ALI_AK, Dataset::AlibabaResourceDirectory, tenant_data);
    tokio::time::sleep(PAST_INTERVAL).await;
    let text = exporter.scrape().await;
    assert_eq!(
        value(
            &text,
            "handshake_source_missing_ids",
            &[("source", "ali-ids")]
        ),
        Some(0.0)
    );
    assert_eq!(
        samples(&text, "handshake_info", &[("source", "ali-ids")]).len(),
        3
    );
    Ok(())
}

/// Values that do not parse (times, status, target type) keep the invitation, with
/// the field absent or unknown; each is counted in
/// `handshake_source_parse_anomalies_total{field}` on every refresh that sees it, and
/// the invitation is logged once, not on every refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_values_keep_the_invitation_and_are_counted_and_logged_once() -> TestResult {
    let (sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 5)])
        .tenant(HW_AK, HW_SK, &[(Dataset::HuaweiSent, 5)])
        .sim(|sim| {
            for ak in [ALI_AK, HW_AK] {
                sim.add_fault(
                    ak,
                    Fault {
                        kind: FaultKind::GarbledFields,
                        action: None,
                        times: None,
                    },
                );
            }
        })
        .top("refresh_interval: 1s\nper_invitation: all\n")
        .alibaba("ali-rd", ALI_AK, ALI_SK, "resource_directory")
        .huawei("hw-sent", HW_AK, HW_SK, "sent")
        .start()
        .await;
    let garbled = [
        (
            "ali-rd",
            sim.sim.dataset(ALI_AK, Dataset::AlibabaResourceDirectory)[0]
                .id
                .clone(),
        ),
        (
            "hw-sent",
            sim.sim.dataset(HW_AK, Dataset::HuaweiSent)[0].id.clone(),
        ),
    ];
    let mut text = exporter.scrape().await;
    for _ in 0..2 {
        tokio::time::sleep(PAST_INTERVAL).await;
        text = exporter.scrape().await;
    }
    for (source, id) in &garbled {
        let refreshes = value(
            &text,
            "handshake_source_refreshes_total",
            &[("source", source)],
        )
        .unwrap_or(0.0);
        assert!(refreshes >= 3.0, "{source}: {refreshes} refreshes");
        assert_eq!(
            value(&text, "handshake_source_up", &[("source", source)]),
            Some(1.0)
        );
        assert_eq!(
            sum(&text, "handshake_invitations", &[("source", source)]),
            5.0,
            "{source}: the garbled invitation is kept"
        );
        let info = samples(&text, "handshake_info", &[("handshake_id", id)]);
        assert_eq!(info.len(), 1, "{source}");
        assert_eq!(
            samples(
                &text,
                "handshake_info",
                &[
                    ("handshake_id", id),
                    ("status", "unknown"),
                    ("target_type", "unknown")
                ]
            )
            .len(),
            1,
            "{source}: status and target type become unknown"
        );
        assert!(
            samples(
                &text,
                "handshake_expiry_timestamp_seconds",
                &[("handshake_id", id)]
            )
            .is_empty(),
            "{source}: no expiry"
        );
        for field in [
            "expire_time",
            "create_time",
            "modify_time",
            "status",
            "target_type",
        ] {
            assert_eq!(
                value(
                    &text,
                    "handshake_source_parse_anomalies_total",
                    &[("source", source), ("field", field)]
                ),
                Some(refreshes),
                "{source} {field}: one garbled invitation per refresh\n{text}"
            );
        }
        let logged = exporter
            .log()
            .lines()
            .filter(|l| l.contains("did not parse") && l.contains(id.as_str()))
            .count();
        assert_eq!(logged, 1, "{source}: logged once, not on every refresh");
    }
    Ok(())
}
