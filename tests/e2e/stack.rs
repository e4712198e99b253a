//! The exporter inside the real Prometheus stack: a real Prometheus (with the
//! project's alerting rules) scrapes the real binary in demo mode, a real
//! Alertmanager receives the alerts, and every PromQL expression of the shipped
//! Grafana dashboard is run against Prometheus and must return data.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed (and reaped) on drop, so a failing assertion leaves nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every `expr` in the dashboard (panels, nested row panels), with Grafana variables
/// replaced the way Grafana would for "All" sources and `provider` (a regex: `.*` is
/// "All").
fn dashboard_exprs(provider: &str) -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(repo("dashboards/handshakes.json")).expect("dashboard exists");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut out = Vec::new();
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push((title.clone(), expr.to_string()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    walk(&dash["panels"], &mut out);
    out.into_iter()
        .map(|(t, e)| {
            let e = e
                .replace("$__rate_interval", "1m")
                .replace("${__rate_interval}", "1m")
                .replace("$__interval", "15s")
                .replace("$__range", "5m")
                .replace("${provider:regex}", provider)
                .replace("${source:regex}", ".*")
                .replace("${provider}", provider)
                .replace("${source}", ".*")
                .replace("$provider", provider)
                .replace("$source", ".*");
            (t, e)
        })
        .collect()
}

/// The rules file with every `for:` shortened to 1s: the test checks that the rules
/// fire and reach Alertmanager, not how long Prometheus waits (promtool's rule
/// tests cover the `for` durations).
fn fast_rules(dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(repo("alerts/handshake_exporter.rules.yml")).expect("rules exist");
    let fast: String = text
        .lines()
        .map(|l| {
            let trimmed = l.trim_start();
            if trimmed.starts_with("for:") {
                let indent = &l[..l.len() - trimmed.len()];
                format!("{indent}for: 1s")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("rules.yml");
    std::fs::write(&path, fast).expect("write rules");
    path
}

/// Alert names whose expression uses the expiry countdown and whose severity is
/// critical: the "expires within a day" alert.
fn critical_expiry_alerts() -> Vec<String> {
    let text =
        std::fs::read_to_string(repo("alerts/handshake_exporter.rules.yml")).expect("rules exist");
    let rules: serde_json::Value = serde_saphyr::from_str(&text).expect("rules are YAML");
    let mut names = Vec::new();
    for g in rules["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            let expr = r["expr"].as_str().unwrap_or("");
            if r["alert"].is_string()
                && expr.contains("expires_in_seconds")
                && r["labels"]["severity"] == "critical"
            {
                names.push(r["alert"].as_str().unwrap_or("").to_string());
            }
        }
    }
    names
}

async fn json_get(url: &str) -> Option<serde_json::Value> {
    let r = client().get(url).send().await.ok()?;
    serde_json::from_str(&r.text().await.ok()?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_dashboards_have_data_and_alerts_reach_alertmanager() -> TestResult {
    let (Some(prometheus), Some(alertmanager)) = (
        tool("prometheus"),
        tool("prometheus-alertmanager").or_else(|| tool("alertmanager")),
    ) else {
        return Ok(());
    };
    let exporter = Exporter::start_args(&["--demo"]);
    let dir = tempfile::tempdir()?;
    let am_port = free_port();
    let am_cfg = dir.path().join("am.yml");
    std::fs::write(
        &am_cfg,
        "route:\n  receiver: blackhole\n  group_wait: 0s\nreceivers:\n  - name: blackhole\n",
    )?;
    let am = Proc(
        Command::new(alertmanager)
            .arg(format!("--config.file={}", am_cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let rules = fast_rules(dir.path());
    let prom_port = free_port();
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  scrape_timeout: 1s\n\
rule_files:\n  - {rules}\n\
alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
scrape_configs:\n  - job_name: handshake_exporter\n    static_configs:\n      - targets: ['{addr}']\n",
            rules = rules.display(),
            addr = exporter.addr,
        ),
    )?;
    let prom = Proc(
        Command::new(prometheus)
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let api = format!("http://127.0.0.1:{prom_port}/api/v1");

    // 1. The target is up.
    let up = eventually(Duration::from_secs(30), || async {
        json_get(&format!(
            "{api}/query?query=up%7Bjob%3D%22handshake_exporter%22%7D"
        ))
        .await
        .is_some_and(|v| v["data"]["result"][0]["value"][1] == "1")
    })
    .await;
    assert!(
        up,
        "Prometheus never saw the exporter up; exporter log:\n{}",
        exporter.log()
    );

    // 2. Every dashboard expression returns data (rates need a few scrapes: poll),
    //    for every provider and for the third cloud alone.
    let exprs: Vec<(String, String)> = [".*", "aws"]
        .into_iter()
        .flat_map(|p| {
            dashboard_exprs(p)
                .into_iter()
                .map(move |(t, e)| (format!("{t} (provider={p})"), e))
        })
        .collect();
    assert!(
        exprs.len() >= 16,
        "dashboard has {} expressions",
        exprs.len()
    );
    let mut missing = Vec::new();
    for (title, expr) in &exprs {
        let url =
            reqwest::Url::parse_with_params(&format!("{api}/query"), &[("query", expr.as_str())])?;
        let ok = eventually(Duration::from_secs(20), || {
            let url = url.clone();
            async move {
                json_get(url.as_str()).await.is_some_and(|v| {
                    v["status"] == "success"
                        && v["data"]["result"]
                            .as_array()
                            .is_some_and(|r| !r.is_empty())
                })
            }
        })
        .await;
        if !ok {
            let answer = json_get(url.as_str()).await.unwrap_or_default();
            missing.push(format!("{title}: {expr} -> {answer}"));
        }
    }
    assert!(
        missing.is_empty(),
        "dashboard expressions without data:\n{}",
        missing.join("\n")
    );

    // 3. The critical expiring-soon alert reaches Alertmanager with labels and annotations.
    let names = critical_expiry_alerts();
    assert!(
        !names.is_empty(),
        "no critical expiry alert in the rules file"
    );
    let am_api = format!("http://127.0.0.1:{am_port}/api/v2/alerts");
    let find = || async {
        let alerts = json_get(&am_api).await.unwrap_or_default();
        alerts
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| {
                let name = a["labels"]["alertname"].as_str().unwrap_or("");
                names.iter().any(|n| n == name)
            })
            .cloned()
    };
    let arrived = eventually(Duration::from_secs(45), || async { find().await.is_some() }).await;
    assert!(arrived, "no {names:?} alert reached Alertmanager");
    let alert = find().await.unwrap_or_default();
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "critical", "{alert}");
    assert!(
        labels["handshake_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("h-")),
        "{alert}"
    );
    assert!(
        labels["source"].is_string() && labels["provider"].is_string(),
        "{alert}"
    );
    let ann = &alert["annotations"];
    for key in ["summary", "description", "runbook_url"] {
        assert!(
            ann[key].as_str().is_some_and(|s| !s.is_empty()),
            "annotation {key}: {alert}"
        );
    }
    let description = ann["description"].as_str().unwrap_or("");
    let id = labels["handshake_id"].as_str().unwrap_or("");
    assert!(
        description.contains(id) || ann["summary"].as_str().unwrap_or("").contains(id),
        "annotations name the invitation: {alert}"
    );
    drop(prom);
    drop(am);
    Ok(())
}
