//! The landing page of the real binary, read with a real HTML parser: the first
//! visit shows the simulator's data (it refreshes like the JSON API), a second one
//! with fresh data costs no cloud call, and basic auth protects it.

use crate::harness::*;
use handshake_exporter::model::{Handshake, Status};
use handshake_exporter::sim::Dataset;
use scraper::{ElementRef, Html, Selector};
use std::collections::BTreeMap;

const ALI_AK: &str = "LTAIlandingTest000001";
const ALI_SK: &str = "landing-alibaba-secret";
const HW_AK: &str = "HWLANDINGTEST0000001";
const HW_SK: &str = "landing-huawei-secret";

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("a valid selector")
}

fn attr<'a>(e: ElementRef<'a>, name: &str) -> &'a str {
    e.value().attr(name).unwrap_or_default()
}

/// Per status, how many (only statuses that occur), as the page lists them.
fn by_status(handshakes: &[Handshake]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for h in handshakes {
        *m.entry(h.status.as_str().to_string()).or_default() += 1;
    }
    m
}

/// (total, per status, pending) of `source` in the page's sources table.
fn figures(doc: &Html, source: &str) -> (usize, BTreeMap<String, usize>, usize) {
    let row = doc
        .select(&sel("table.sources tbody tr"))
        .find(|r| attr(*r, "data-source") == source)
        .unwrap_or_else(|| panic!("no row for {source}"));
    let cell = |class: &str| {
        row.select(&sel(&format!("td.{class}")))
            .next()
            .unwrap_or_else(|| panic!("no td.{class} for {source}"))
    };
    let number = |s: &str| s.parse::<usize>().unwrap_or(usize::MAX);
    let inv = cell("invitations");
    let statuses = inv
        .select(&sel("li"))
        .map(|li| {
            (
                attr(li, "data-status").to_string(),
                number(attr(li, "data-count")),
            )
        })
        .collect();
    (
        number(attr(inv, "data-total")),
        statuses,
        number(attr(cell("pending"), "data-pending")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_visit_shows_the_clouds_data_and_a_fresh_one_costs_no_call() -> TestResult {
    let (sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 137)])
        .tenant(HW_AK, HW_SK, &[(Dataset::HuaweiSent, 64)])
        .top("refresh_interval: 10m\n")
        .alibaba("ali-rd", ALI_AK, ALI_SK, "resource_directory")
        .huawei("hw-sent", HW_AK, HW_SK, "sent")
        .start()
        .await;
    let ali = sim.sim.dataset(ALI_AK, Dataset::AlibabaResourceDirectory);
    let hw = sim.sim.dataset(HW_AK, Dataset::HuaweiSent);

    // No scrape of /metrics before: the page itself fetches.
    let r = client().get(exporter.url("/")).send().await?;
    assert_eq!(r.status().as_u16(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert!(header("content-security-policy").starts_with("default-src 'none'"));
    let doc = Html::parse_document(&r.text().await?);
    for (source, data) in [("ali-rd", &ali), ("hw-sent", &hw)] {
        let (total, statuses, pending) = figures(&doc, source);
        let pending_in_sim = data.iter().filter(|h| h.status == Status::Pending).count();
        // Failed before (the page showed what a /metrics scrape had fetched, nothing
        // yet): "ali-rd: left: 0 right: 137".
        assert_eq!(total, data.len(), "{source}");
        assert_eq!(statuses, by_status(data), "{source}");
        assert_eq!(pending, pending_in_sim, "{source}");
        assert!(pending > 0, "{source}: the dataset has pending invitations");
        let state = doc
            .select(&sel(&format!("tr[data-source={source}] td.state")))
            .next()
            .map(|td| attr(td, "data-state").to_string());
        assert_eq!(state.as_deref(), Some("up"), "{source}");
    }
    // "Expiring next": the soonest of all pending invitations with an expiry.
    let mut expected: Vec<(i64, String)> = ali
        .iter()
        .chain(hw.iter())
        .filter(|h| h.status == Status::Pending)
        .filter_map(|h| h.expires_at.map(|e| (e.timestamp(), h.id.clone())))
        .collect();
    expected.sort();
    let shown: Vec<String> = doc
        .select(&sel("table.expiring tbody tr"))
        .map(|r| attr(r, "data-id").to_string())
        .collect();
    assert_eq!(shown.len(), 20.min(expected.len()));
    let soonest: Vec<i64> = expected.iter().take(shown.len()).map(|x| x.0).collect();
    let times: Vec<i64> = shown
        .iter()
        .filter_map(|id| expected.iter().find(|x| x.1 == *id).map(|x| x.0))
        .collect();
    assert_eq!(times, soonest, "the soonest expiries, in order");
    let count = doc.select(&sel("p.count")).next().expect("a count line");
    assert_eq!(attr(count, "data-total"), expected.len().to_string());

    // Fresh data: the second visit (and a filtered one) costs no cloud call.
    let before = (sim.sim.calls(ALI_AK), sim.sim.calls(HW_AK));
    assert!(before.0.values().sum::<u64>() > 0 && before.1.values().sum::<u64>() > 0);
    for path in ["/", "/?source=hw-sent&limit=500"] {
        let (status, body) = get(&exporter.url(path)).await;
        assert_eq!(status, 200, "{path}");
        let doc = Html::parse_document(&body);
        assert_eq!(figures(&doc, "ali-rd").0, ali.len(), "{path}");
    }
    assert_eq!((sim.sim.calls(ALI_AK), sim.sim.calls(HW_AK)), before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_protects_the_landing_page_and_not_the_probes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let web = dir.path().join("web.yml");
    let hash = bcrypt::hash("landing-pass", 4)?;
    std::fs::write(&web, format!("basic_auth_users:\n  ops: '{hash}'\n"))?;
    let web_arg = web.display().to_string();
    let (sim, exporter) = Harness::builder()
        .tenant(ALI_AK, ALI_SK, &[(Dataset::AlibabaResourceDirectory, 5)])
        .alibaba("ali", ALI_AK, ALI_SK, "resource_directory")
        .extra_args(&["--web.config.file", &web_arg])
        .start()
        .await;
    let c = client();
    let r = c.get(exporter.url("/")).send().await?;
    assert_eq!(r.status().as_u16(), 401, "no credentials");
    assert!(r.headers().contains_key("www-authenticate"));
    let r = c
        .get(exporter.url("/"))
        .basic_auth("ops", Some("wrong"))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401, "wrong password");
    // Refused requests fetched nothing.
    assert_eq!(sim.sim.calls(ALI_AK).values().sum::<u64>(), 0);
    let r = c
        .get(exporter.url("/"))
        .basic_auth("ops", Some("landing-pass"))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    let doc = Html::parse_document(&r.text().await?);
    assert_eq!(figures(&doc, "ali").0, 5);
    for (path, body) in [("/-/healthy", "Healthy\n"), ("/-/ready", "Ready\n")] {
        let (status, text) = get(&exporter.url(path)).await;
        assert_eq!((status, text.as_str()), (200, body), "{path} stays open");
    }
    Ok(())
}
