//! Soak: 20 sources of both providers on the simulator, with datasets that change
//! (also while they are paged) and random faults, scraped by four concurrent
//! scrapers for 1,000 refresh cycles in all. Then: no panic, the exporter's RSS
//! flat (within 5 MiB of what it was after warm-up), and once the faults stop every
//! source's data equal to the simulator's.
//!
//! Bounded: `refresh_interval: 1s` (the configuration's minimum) lets each source
//! refresh at most once a second, so 1,000 cycles take about 50 s; the test gives
//! up after `MAX_DURATION`.

use crate::harness::*;
use handshake_exporter::model::Handshake;
use handshake_exporter::sim::{Churn, Dataset, Fault, FaultKind, Sim};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SOURCES: usize = 20;
const CYCLES: u64 = 1_000;
/// Refresh cycles before the RSS baseline is taken: every source has refreshed a
/// few times, met faults, and grown its caches and connection pools.
const WARM_UP_CYCLES: u64 = 200;
const RSS_GROWTH_LIMIT_KIB: u64 = 5 * 1024;
/// Far above the ~50 s the cycles need; a hard stop rather than a timing assertion.
const MAX_DURATION: Duration = Duration::from_secs(110);
const SCRAPERS: usize = 4;

/// One configured source and where its data lives in the simulator.
struct SoakSource {
    name: String,
    ak: String,
    dataset: Dataset,
    /// `view: ids`: the configured ids.
    ids: Option<Vec<String>>,
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Build the tenants and the configuration: 10 Alibaba sources (resource directory
/// V3 and V1, account, one `ids`) and 10 Huawei ones (sent, received, one `ids`),
/// each on its own tenant so that faults and changes hit one source.
fn setup(sim: &Sim, endpoint: &str) -> (Vec<SoakSource>, String) {
    let mut sources = Vec::new();
    let mut config =
        String::from("refresh_interval: 1s\nrefresh_timeout: 5s\ntarget_label: full\nsources:\n");
    for i in 0..SOURCES {
        let alibaba = i < SOURCES / 2;
        let ak = format!("SOAKAK{i:02}000000000000");
        let sk = format!("soak-secret-{i:02}");
        let n = 60 + 10 * i;
        let (dataset, view) = match (alibaba, i % 5) {
            (true, 0) => (Dataset::AlibabaAccount, "account"),
            (true, 4) => (Dataset::AlibabaResourceDirectory, "ids"),
            (true, _) => (Dataset::AlibabaResourceDirectory, "resource_directory"),
            (false, 0) => (Dataset::HuaweiReceived, "received"),
            (false, 4) => (Dataset::HuaweiSent, "ids"),
            (false, _) => (Dataset::HuaweiSent, "sent"),
        };
        tenant(sim, &ak, &sk, &[(dataset, n)]);
        let name = format!("soak-{i:02}");
        let mut block = if alibaba {
            alibaba_source(&name, endpoint, &ak, &sk, view)
        } else {
            huawei_source(&name, endpoint, &ak, &sk, view)
        };
        // Several pages per refresh, so that changes land between pages.
        block.push_str(if alibaba {
            "    page_size: 40\n"
        } else {
            "    limit: 40\n"
        });
        block.push_str("    request_timeout: 2s\n");
        if alibaba && i % 2 == 1 {
            block.push_str("    signature: v1\n");
        }
        let ids = (view == "ids").then(|| {
            sim.dataset(&ak, dataset)
                .iter()
                .step_by(4)
                .map(|h| h.id.clone())
                .collect::<Vec<_>>()
        });
        if let Some(ids) = &ids {
            block.push_str(&format!("    handshake_ids: [{}]\n", ids.join(", ")));
        }
        config.push_str(&block);
        sources.push(SoakSource {
            name,
            ak,
            dataset,
            ids,
        });
    }
    (sources, config)
}

/// One random disturbance of one source: a fault for the next few calls, a change
/// of its data between two refreshes, or a change while it is paged.
fn disturb(sim: &Sim, source: &SoakSource, rng: &mut fastrand::Rng, serial: u64) {
    match rng.u32(..10) {
        0..=4 => {
            let kind = match rng.u32(..10) {
                0 => FaultKind::Throttle {
                    retry_after_ms: Some(50),
                },
                1 => FaultKind::Throttle {
                    retry_after_ms: None,
                },
                2 => FaultKind::ServerError,
                3 => FaultKind::Hang {
                    ms: rng.u64(100..800),
                },
                4 => FaultKind::Malformed,
                5 => FaultKind::Truncated,
                6 => FaultKind::WrongShape,
                7 => FaultKind::Lie,
                8 => FaultKind::AuthFailure,
                _ => FaultKind::GarbledFields,
            };
            sim.add_fault(
                &source.ak,
                Fault {
                    kind,
                    action: None,
                    times: Some(rng.u32(1..4)),
                },
            );
        }
        5..=6 => {
            sim.set_churn(
                &source.ak,
                Churn::once(source.dataset, rng.u64(..3), rng.usize(..4), rng.usize(..3)),
            );
        }
        _ => {
            // Between refreshes: one invitation goes, another comes.
            let mut items = sim.dataset(&source.ak, source.dataset);
            if !items.is_empty() {
                items.remove(rng.usize(..items.len()));
            }
            let fresh = handshake_exporter::sim::data::generate(
                source.dataset,
                1,
                serial,
                chrono::Utc::now(),
            );
            for mut h in fresh {
                h.id = format!("h-soak{serial}");
                items.insert(rng.usize(..=items.len()), h);
            }
            sim.set_dataset(&source.ak, source.dataset, items);
        }
    }
}

/// What a source should hold, as the JSON API shows invitations.
fn expected(sim: &Sim, source: &SoakSource) -> BTreeMap<String, serde_json::Value> {
    let all = sim.dataset(&source.ak, source.dataset);
    let wanted: Vec<&Handshake> = match &source.ids {
        Some(ids) => ids
            .iter()
            .filter_map(|id| all.iter().find(|h| &h.id == id))
            .collect(),
        None => all.iter().collect(),
    };
    wanted
        .into_iter()
        .map(|h| (h.id.clone(), comparable_sim(h)))
        .collect()
}

fn comparable_sim(h: &Handshake) -> serde_json::Value {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    serde_json::json!({
        "status": h.status.as_str(),
        "target_type": h.target_type.as_str(),
        "target": h.target_entity,
        "directory_id": h.directory_id,
        "management_account_id": h.management_account_id,
        "created_at": time(h.created_at),
        "modified_at": time(h.modified_at),
        "expires_at": time(h.expires_at),
    })
}

fn comparable_api(v: &serde_json::Value) -> serde_json::Value {
    let field = |k: &str| v.get(k).cloned().unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "status": field("status"),
        "target_type": field("target_type"),
        "target": field("target"),
        "directory_id": field("directory_id"),
        "management_account_id": field("management_account_id"),
        "created_at": field("created_at"),
        "modified_at": field("modified_at"),
        "expires_at": field("expires_at"),
    })
}

/// The exporter's cached invitations per source, from `/api/v1/handshakes`.
async fn exported(
    http: &reqwest::Client,
    exporter: &Exporter,
) -> Option<BTreeMap<String, BTreeMap<String, serde_json::Value>>> {
    let text = http
        .get(exporter.url("/api/v1/handshakes"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let body: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut by_source: BTreeMap<String, BTreeMap<String, serde_json::Value>> = BTreeMap::new();
    for item in body.get("handshakes")?.as_array()? {
        let source = item.get("source")?.as_str()?.to_string();
        let id = item.get("id")?.as_str()?.to_string();
        by_source
            .entry(source)
            .or_default()
            .insert(id, comparable_api(item));
    }
    Some(by_source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_twenty_sources_changing_data_random_faults_four_scrapers() -> TestResult {
    let sim = start_sim().await;
    let (sources, config) = setup(&sim.sim, &sim.url());
    let exporter = Arc::new(Exporter::start(&config, &["--log.level", "info"]));
    let pid = exporter.pid();
    let started = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let scrapes = Arc::new(AtomicU64::new(0));
    let mut scrapers = Vec::new();
    for _ in 0..SCRAPERS {
        let (exporter, stop, cycles, scrapes) = (
            exporter.clone(),
            stop.clone(),
            cycles.clone(),
            scrapes.clone(),
        );
        scrapers.push(tokio::spawn(async move {
            let http = client();
            while !stop.load(Ordering::SeqCst) {
                // As Prometheus does: a scrape waits at most ~0.5 s (1 s minus the
                // default 0.5 s offset) and then answers from the cache, so a source
                // whose API hangs does not hold up the refreshes of the others.
                let answer = http
                    .get(exporter.url("/metrics"))
                    .header("X-Prometheus-Scrape-Timeout-Seconds", "1")
                    .send()
                    .await;
                if let Ok(r) = answer
                    && r.status().as_u16() == 200
                    && let Ok(text) = r.text().await
                {
                    scrapes.fetch_add(1, Ordering::SeqCst);
                    let n = sum(&text, "handshake_source_refreshes_total", &[]) as u64;
                    cycles.fetch_max(n, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    let mut rng = fastrand::Rng::with_seed(0x50A4);
    let mut serial = 0u64;
    let mut warm_rss = None;
    while cycles.load(Ordering::SeqCst) < CYCLES {
        assert!(
            started.elapsed() < MAX_DURATION,
            "only {} refresh cycles after {:?}",
            cycles.load(Ordering::SeqCst),
            started.elapsed()
        );
        serial += 1;
        let source = &sources[rng.usize(..sources.len())];
        disturb(&sim.sim, source, &mut rng, serial);
        if warm_rss.is_none() && cycles.load(Ordering::SeqCst) >= WARM_UP_CYCLES {
            warm_rss = vm_rss_kib(pid);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let end_rss = vm_rss_kib(pid);
    let soak_time = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for s in scrapers {
        s.await?;
    }

    // The faults and changes stop; every source must catch up with the simulator.
    for s in &sources {
        sim.sim.clear_faults(&s.ak);
        sim.sim.clear_churn(&s.ak);
    }
    let http = client();
    let settle = Instant::now();
    let mut last_difference = String::new();
    let mut equal = false;
    while settle.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let text = exporter.scrape().await;
        let Some(got) = exported(&http, &exporter).await else {
            last_difference = "no JSON from /api/v1/handshakes".into();
            continue;
        };
        last_difference.clear();
        for s in &sources {
            let up = value(&text, "handshake_source_up", &[("source", &s.name)]);
            let want = expected(&sim.sim, s);
            let have = got.get(&s.name).cloned().unwrap_or_default();
            if up != Some(1.0) {
                last_difference.push_str(&format!("{}: up {up:?}\n", s.name));
            } else if have != want {
                let missing: Vec<_> = want.keys().filter(|k| !have.contains_key(*k)).collect();
                let extra: Vec<_> = have.keys().filter(|k| !want.contains_key(*k)).collect();
                last_difference.push_str(&format!(
                    "{}: missing {missing:?}, extra {extra:?}, differing values: {}\n",
                    s.name,
                    want.iter()
                        .filter(|(k, v)| have.get(*k).is_some_and(|h| h != *v))
                        .count()
                ));
            }
        }
        if last_difference.is_empty() {
            equal = true;
            break;
        }
    }
    if !equal {
        let log = exporter.log();
        let failures: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("refresh failed"))
            .collect();
        let recent = &failures[failures.len().saturating_sub(10)..];
        panic!(
            "after the faults stopped, sources still differ from the simulator:\n{last_difference}\nlast refresh failures:\n{}",
            recent.join("\n")
        );
    }

    let log = exporter.log();
    assert!(!log.contains("panicked"), "the exporter panicked:\n{log}");
    let warm = warm_rss.ok_or("no RSS reading after warm-up")?;
    let end = end_rss.ok_or("no RSS reading at the end")?;
    println!(
        "soak: {} refresh cycles, {} scrapes by {SCRAPERS} scrapers, {} disturbances in {:.1?}; \
         RSS {warm} KiB after {WARM_UP_CYCLES} cycles, {end} KiB at the end ({:+} KiB)",
        cycles.load(Ordering::SeqCst),
        scrapes.load(Ordering::SeqCst),
        serial,
        soak_time,
        end as i64 - warm as i64,
    );
    assert!(
        end <= warm + RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {warm} KiB to {end} KiB"
    );
    Ok(())
}
