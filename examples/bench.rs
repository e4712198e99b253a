//! Whole-process benchmark: the built-in simulator runs in this process on 127.0.0.1
//! with an injected per-request latency, and
//!
//! 1. refreshes are timed through the library (an `App` built from a fixed
//!    configuration, `fresh_views`), with list calls read from the simulator;
//! 2. `/metrics` latency and throughput, resident memory, start-up time and binary
//!    size are taken from the real release binary (`target/release/handshake_exporter`)
//!    spawned with a configuration pointing at the simulator.
//!
//! Prints Markdown tables. Run with `scripts/bench.sh` (which builds the binary
//! first), or `cargo build --release && cargo run --release --example bench`.
//!
//! Environment: `BENCH_SECONDS` (per load round, default 2), `BENCH_ROUNDS` (rounds
//! per load cell, median reported, default 3), `BENCH_RUNS` (refreshes
//! per refresh cell, default 5), `BENCH_PARTS` (any of `refresh,many,binary,scale`,
//! default `refresh,many,binary`), `HANDSHAKE_EXPORTER_BIN` (binary to test).
//! The `scale` part: `BENCH_SCALE` (any of `10k,100k,200x500`, default all),
//! `BENCH_SETTLE` (seconds to wait before the RSS after the bursts, default 60),
//! `BENCH_SCALE_BUDGET` (sets `max_invitation_series`; unset: the default).
//!
//! Everything talks to 127.0.0.1 only, and every loop is bounded in time.

use handshake_exporter::app::{App, ConfigOrigin};
use handshake_exporter::config::{Config, SourceConfig};
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::model::Provider;
use handshake_exporter::secret::{Credentials, Secret};
use handshake_exporter::sim::{self, Dataset, Sim, SimServer, Tenant, data};
use std::error::Error;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const SECRET: &str = "bench-secret-not-real";
const DOMAIN: &str = "3f1b6a9c2e4d4f7b8a0c1d2e3f4a5b6c";
const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// API calls a bench tenant received: its sources only list (the default view), so
/// every call is a list call.
fn list_calls(sim: &Sim, ak: &str) -> u64 {
    sim.calls(ak).values().sum()
}

/// The dataset of the provider's default view (its simulator lists it first).
fn dataset(provider: Provider) -> Dataset {
    provider.kind().sim().datasets()[0]
}

/// The provider's default (and largest) page size.
fn page_size(provider: Provider) -> usize {
    provider.kind().default_section().page_size as usize
}

/// A tenant whose only dataset holds `n` invitations of the provider's list view.
fn add_tenant(sim: &Sim, ak: &str, provider: Provider, n: usize) {
    let mut t = Tenant::new(ak, SECRET);
    t.datasets.insert(
        dataset(provider),
        data::generate(dataset(provider), n, 42, chrono::Utc::now()),
    );
    sim.add_tenant(t);
}

fn source(name: &str, provider: Provider, endpoint: &str, ak: &str) -> SourceConfig {
    // The provider's default view: the resource directory, or the sent invitations.
    let mut s = SourceConfig::new(
        provider,
        name,
        endpoint,
        Credentials {
            access_key_id: ak.into(),
            access_key_secret: Secret::new(SECRET),
            security_token: None,
            domain_id: (provider == Provider::Huawei).then(|| DOMAIN.to_string()),
        },
    );
    s.connect_timeout = Duration::from_secs(2);
    s.request_timeout = Duration::from_secs(20);
    s
}

/// An app whose data is always stale, so that every `fresh_views` refreshes.
fn app(sources: Vec<SourceConfig>) -> Res<Arc<App>> {
    app_with(
        sources,
        Config::with_sources(Vec::new()).max_concurrent_requests,
    )
}

fn app_with(sources: Vec<SourceConfig>, max_concurrent_requests: usize) -> Res<Arc<App>> {
    let mut config = Config::with_sources(sources);
    config.max_concurrent_requests = max_concurrent_requests;
    config.refresh_interval = Duration::ZERO;
    config.refresh_timeout = Duration::from_secs(60);
    Ok(App::new(
        ConfigOrigin::Fixed(Box::new(config)),
        Arc::new(ExporterMetrics::new(false)),
    )?)
}

fn median(xs: &mut [Duration]) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// Outcome of repeated refreshes of one set of sources.
struct Refreshes {
    /// List calls of each source in each run.
    calls: Vec<Vec<u64>>,
    median: Duration,
    min: Duration,
    max: Duration,
    /// The first failure, if any refresh failed or returned the wrong count.
    error: Option<String>,
}

async fn refresh_runs(
    sim: &Sim,
    app: &App,
    tenants: &[(String, Provider, usize)],
    runs: usize,
) -> Refreshes {
    let mut times = Vec::with_capacity(runs);
    let mut calls = Vec::with_capacity(runs);
    let mut error = None;
    for _ in 0..runs {
        for (ak, _, _) in tenants {
            sim.reset_calls(ak);
        }
        let started = Instant::now();
        let views = app
            .runtime()
            .fresh_views(tokio::time::Instant::now() + Duration::from_secs(60))
            .await;
        times.push(started.elapsed());
        calls.push(
            tenants
                .iter()
                .map(|(ak, _, _)| list_calls(sim, ak))
                .collect(),
        );
        for (view, (_, _, n)) in views.iter().zip(tenants) {
            let got = view.snapshot.as_ref().map_or(0, |s| s.handshakes.len());
            if error.is_none() && (!view.up || got != *n) {
                error = Some(match &view.last_error {
                    Some(e) => format!("{}: {e}", view.name),
                    None => format!("{}: {got} invitations, expected {n}", view.name),
                });
            }
        }
    }
    let min = times.iter().min().copied().unwrap_or_default();
    let max = times.iter().max().copied().unwrap_or_default();
    Refreshes {
        calls,
        median: median(&mut times),
        min,
        max,
        error,
    }
}

/// "5" when every run made the same number of calls, else "min–max".
fn calls_cell(calls: impl Iterator<Item = u64>) -> String {
    let all: Vec<u64> = calls.collect();
    let lo = all.iter().min().copied().unwrap_or(0);
    let hi = all.iter().max().copied().unwrap_or(0);
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

async fn bench_refresh(server: &SimServer, runs: usize) -> Res<String> {
    let mut out = String::from(
        "### Refresh (library, one source)\n\n\
         | provider | invitations | latency | list calls / refresh | expected | refresh p50 ms | min ms | max ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for provider in [Provider::Alibaba, Provider::Huawei] {
        for n in SIZES {
            let ak = format!("BENCH{}{n}", provider.as_str().to_uppercase());
            add_tenant(&server.sim, &ak, provider, n);
            for latency in [0u64, 50] {
                server.sim.set_latency(Duration::from_millis(latency));
                // A new app per cell: the first run pays for the connection, as a
                // freshly started exporter would.
                let app = app(vec![source("s", provider, &server.url(), &ak)])?;
                let r = refresh_runs(&server.sim, &app, &[(ak.clone(), provider, n)], runs).await;
                let expected = n.div_ceil(page_size(provider)).max(1);
                match &r.error {
                    Some(e) => out.push_str(&format!(
                        "| {provider} | {n} | {latency} ms | – | {expected} | failed: {e} | | |\n"
                    )),
                    None => out.push_str(&format!(
                        "| {provider} | {n} | {latency} ms | {} | {expected} | {} | {} | {} |\n",
                        calls_cell(r.calls.iter().flatten().copied()),
                        ms(r.median),
                        ms(r.min),
                        ms(r.max),
                    )),
                }
            }
        }
    }
    server.sim.set_latency(Duration::ZERO);
    Ok(out)
}

async fn bench_many_sources(server: &SimServer, runs: usize) -> Res<String> {
    const PER_PROVIDER: usize = 10;
    const N: usize = 1_000;
    let mut tenants = Vec::new();
    let mut sources = Vec::new();
    for provider in [Provider::Alibaba, Provider::Huawei] {
        for i in 0..PER_PROVIDER {
            let ak = format!("BENCHMANY{}{i}", provider.as_str().to_uppercase());
            add_tenant(&server.sim, &ak, provider, N);
            sources.push(source(
                &format!("{provider}-{i}"),
                provider,
                &server.url(),
                &ak,
            ));
            tenants.push((ak, provider, N));
        }
    }
    let mut out = String::from(
        "### Refresh (library, 20 sources at once: 10 per provider, 1,000 invitations each, 50 ms latency)\n\n\
         | max_concurrent_requests | list calls / refresh (per Alibaba source) | (per Huawei source) | all sources p50 ms | min ms | max ms |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    let default_cap = Config::with_sources(Vec::new()).max_concurrent_requests;
    for cap in [16, default_cap, 128] {
        server.sim.set_latency(Duration::from_millis(50));
        let app = app_with(sources.clone(), cap)?;
        let r = refresh_runs(&server.sim, &app, &tenants, runs).await;
        server.sim.set_latency(Duration::ZERO);
        let per = |p: Provider| {
            calls_cell(r.calls.iter().flat_map(|run| {
                run.iter()
                    .zip(&tenants)
                    .filter(move |(_, t)| t.1 == p)
                    .map(|(c, _)| *c)
            }))
        };
        let label = if cap == default_cap {
            format!("{cap} (default)")
        } else {
            cap.to_string()
        };
        match &r.error {
            Some(e) => out.push_str(&format!("| {label} | failed: {e} | | | | |\n")),
            None => out.push_str(&format!(
                "| {label} | {} | {} | {} | {} | {} |\n",
                per(Provider::Alibaba),
                per(Provider::Huawei),
                ms(r.median),
                ms(r.min),
                ms(r.max)
            )),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// The real binary.

fn binary() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("HANDSHAKE_EXPORTER_BIN") {
        return Ok(PathBuf::from(p));
    }
    // target/release/examples/bench -> target/release/handshake_exporter
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    let bin = dir.join("handshake_exporter");
    if !bin.is_file() {
        return Err(format!(
            "{} not found: run `cargo build --release` first (scripts/bench.sh does)",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

/// A running exporter process, killed on drop.
struct Exporter {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
    /// Spawn to "listening" logged.
    listening_after: Duration,
}

impl Exporter {
    fn start(bin: &Path, config: &str, max_requests: usize) -> Res<(Exporter, Instant)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config)?;
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .arg("--config.file")
            .arg(&path)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .args(["--web.max-requests", &max_requests.to_string()])
            .args(["--log.level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining so that the exporter never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("msg=listening")
                    && let Some(addr) = line
                        .split_whitespace()
                        .find_map(|kv| kv.strip_prefix("address="))
                {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the exporter did not log `listening` within 20 s".into());
            }
        };
        let listening_after = spawned.elapsed();
        Ok((
            Exporter {
                child,
                addr,
                _dir: dir,
                listening_after,
            },
            spawned,
        ))
    }

    fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn config_yaml(endpoint: &str, ak: &str) -> String {
    format!(
        "refresh_interval: 1h\nsources:\n  - name: huawei-sent\n    provider: huawei\n    view: sent\n    endpoint: {endpoint}\n    credentials:\n      access_key_id: {ak}\n      access_key_secret: {SECRET}\n      domain_id: {DOMAIN}\n"
    )
}

fn client() -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build()?)
}

/// One GET; the status and body length.
async fn scrape(client: &reqwest::Client, url: &str, gzip: bool) -> Res<(u16, usize)> {
    let mut req = client.get(url);
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    Ok((status, body.len()))
}

struct Load {
    count: usize,
    p50: Duration,
    p99: Duration,
    per_second: f64,
    errors: usize,
    bytes: usize,
}

/// `concurrency` scrapers, each on its own keep-alive connection, for `duration`.
async fn load(url: &str, concurrency: usize, duration: Duration, gzip: bool) -> Res<Load> {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let url = url.to_string();
        let client = client()?;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut errors, mut bytes) = (0usize, 0usize);
            while started.elapsed() < duration {
                let t = Instant::now();
                match scrape(&client, &url, gzip).await {
                    Ok((200, n)) => {
                        latencies.push(t.elapsed());
                        bytes = n;
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors, bytes)
        }));
    }
    let mut latencies = Vec::new();
    let (mut errors, mut bytes) = (0, 0);
    for t in tasks {
        let (l, e, b) = t.await?;
        latencies.extend(l);
        errors += e;
        bytes = bytes.max(b);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pick = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies.get(i).copied().unwrap_or_default()
    };
    Ok(Load {
        count: latencies.len(),
        p50: pick(0.50),
        p99: pick(0.99),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        errors,
        bytes,
    })
}

/// Start an exporter for one tenant, wait until it is idle, read VmRSS, and scrape
/// once (which refreshes). Returns the process and its idle VmRSS.
async fn start_and_refresh(bin: &Path, endpoint: &str, ak: &str) -> Res<(Exporter, Option<u64>)> {
    let (e, _) = Exporter::start(bin, &config_yaml(endpoint, ak), 128)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = e.status_kib("VmRSS");
    let (status, _) = scrape(&client()?, &e.url(), false).await?;
    if status != 200 {
        return Err(format!("first scrape answered {status}").into());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok((e, idle))
}

fn median_kib(xs: &mut [Option<u64>]) -> Option<u64> {
    xs.sort();
    xs.get(xs.len() / 2).copied().flatten()
}

async fn wait_for_200(url: &str, limit: Duration) -> Res<()> {
    let client = client()?;
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok((200, _)) = scrape(&client, url, false).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(format!("{url} did not answer 200 within {limit:?}").into())
}

async fn bench_binary(server: &SimServer, seconds: u64, rounds_per_cell: usize) -> Res<String> {
    let bin = binary()?;
    let size = std::fs::metadata(&bin)?.len();
    let mut out = String::new();

    // Start-up: spawn to the first 200 on /metrics (which includes the first refresh
    // of one source with 100 invitations at no latency).
    let ak = "BENCHSTARTHUAWEI";
    add_tenant(&server.sim, ak, Provider::Huawei, 100);
    let mut to_listen = Vec::new();
    let mut to_200 = Vec::new();
    for _ in 0..5 {
        let (e, spawned) = Exporter::start(&bin, &config_yaml(&server.url(), ak), 40)?;
        wait_for_200(&e.url(), Duration::from_secs(20)).await?;
        to_200.push(spawned.elapsed());
        to_listen.push(e.listening_after);
    }

    let mut scrapes = String::from(
        "### `/metrics` with a warm cache (real binary, one Huawei source)\n\n\
         | invitations | scrapers | encoding | body bytes | p50 ms | p99 ms | scrapes/s | scrapes/s, all rounds | errors |\n\
         |---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut memory = Vec::new();
    let duration = Duration::from_secs(seconds);
    for n in SIZES {
        let ak = format!("BENCHSCRAPEHUAWEI{n}");
        add_tenant(&server.sim, &ak, Provider::Huawei, n);
        // Idle and after the first refresh: the median of 3 fresh processes (which
        // thread parses and which renders moves a few hundred KiB between runs).
        let mut idle = Vec::new();
        let mut after_refresh = Vec::new();
        for _ in 0..3 {
            let (e, first) = start_and_refresh(&bin, &server.url(), &ak).await?;
            idle.push(first);
            after_refresh.push(e.status_kib("VmRSS"));
        }
        let idle = median_kib(&mut idle);
        let after_refresh = median_kib(&mut after_refresh);
        // The cache then stays warm for an hour.
        let (e, _) = start_and_refresh(&bin, &server.url(), &ak).await?;
        for concurrency in [1usize, 64] {
            for gzip in [false, true] {
                // Several rounds, reporting the median one: on a shared 2-core machine
                // single rounds of the 64-scraper cells vary by tens of percent.
                let mut rounds = Vec::with_capacity(rounds_per_cell);
                for _ in 0..rounds_per_cell {
                    rounds.push(load(&e.url(), concurrency, duration, gzip).await?);
                }
                rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
                let lo = rounds.first().map_or(0.0, |l| l.per_second);
                let hi = rounds.last().map_or(0.0, |l| l.per_second);
                let errors: usize = rounds.iter().map(|l| l.errors).sum();
                let Some(l) = rounds.get(rounds.len() / 2) else {
                    continue;
                };
                scrapes.push_str(&format!(
                    "| {n} | {concurrency} | {} | {} | {} | {} | {:.0} | {:.0}–{:.0} | {errors} |\n",
                    if gzip { "gzip" } else { "identity" },
                    l.bytes,
                    format_args!("{:.2}", l.p50.as_secs_f64() * 1e3),
                    format_args!("{:.2}", l.p99.as_secs_f64() * 1e3),
                    l.per_second,
                    lo,
                    hi,
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        memory.push((
            n,
            idle,
            after_refresh,
            e.status_kib("VmRSS"),
            e.status_kib("VmHWM"),
        ));
    }

    out.push_str(&scrapes);
    out.push_str(
        "\n### Memory (VmRSS of the exporter process, MiB)\n\n\
         | invitations | idle (nothing scraped yet), median of 3 | after the first refresh, median of 3 | after the load above | peak (VmHWM) |\n\
         |---:|---:|---:|---:|---:|\n",
    );
    for (n, idle, refreshed, loaded, peak) in memory {
        out.push_str(&format!(
            "| {n} | {} | {} | {} | {} |\n",
            mib(idle),
            mib(refreshed),
            mib(loaded),
            mib(peak)
        ));
    }
    out.push_str(&format!(
        "\n### Binary and start-up\n\n\
         | what | value |\n|---|---:|\n\
         | release binary ({}) | {:.2} MB ({size} bytes) |\n\
         | spawn to `listening` logged, median of 5 | {} ms |\n\
         | spawn to first 200 on `/metrics` (incl. first refresh of 100 invitations), median of 5 | {} ms |\n",
        bin.display(),
        size as f64 / 1e6,
        ms(median(&mut to_listen)),
        ms(median(&mut to_200)),
    ));
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Scale: large directories and many sources (`BENCH_PARTS=scale`).

/// A `/metrics` GET that gives up waiting after 100 ms (the shortest wait the
/// exporter allows): it starts the refresh without waiting for it.
async fn kick_refresh(client: &reqwest::Client, url: &str) -> Res<()> {
    client
        .get(url)
        .header("x-prometheus-scrape-timeout-seconds", "0.1")
        .send()
        .await?
        .bytes()
        .await?;
    Ok(())
}

/// Poll the landing page until no source is refreshing or waiting for its first
/// refresh.
async fn wait_refreshed(client: &reqwest::Client, base: &str, limit: Duration) -> Res<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let page = client.get(base).send().await?.text().await?;
        if !page.contains("<td>refreshing</td>") && !page.contains("not yet fetched") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("refresh not finished within {limit:?}").into())
}

/// `handshake_exporter_renders_total` in a body (gzip or not); `None` if absent.
fn renders_in(body: &[u8], gzip: bool) -> Option<u64> {
    let mut text = String::new();
    if gzip {
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body), &mut text).ok()?;
    } else {
        text = String::from_utf8_lossy(body).into_owned();
    }
    text.lines()
        .find_map(|l| l.strip_prefix("handshake_exporter_renders_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// One GET returning the body.
async fn scrape_bytes(client: &reqwest::Client, url: &str, gzip: bool) -> Res<Vec<u8>> {
    let mut req = client.get(url);
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let resp = req.send().await?;
    if resp.status() != 200 {
        return Err(format!("scrape answered {}", resp.status()).into());
    }
    Ok(resp.bytes().await?.to_vec())
}

struct ScaleCase {
    label: &'static str,
    sources: usize,
    per_source: usize,
}

fn scale_config(endpoint: &str, ak: &str, sources: usize) -> String {
    let mut c = String::from("refresh_interval: 1h\nrefresh_timeout: 5m\n");
    if let Ok(b) = std::env::var("BENCH_SCALE_BUDGET") {
        c.push_str(&format!("max_invitation_series: {b}\n"));
    }
    c.push_str("sources:\n");
    for i in 0..sources {
        c.push_str(&format!(
            "  - name: rd-{i}\n    provider: alibaba\n    view: resource_directory\n    endpoint: {endpoint}\n    request_timeout: 60s\n    credentials: {{access_key_id: {ak}, access_key_secret: {SECRET}}}\n"
        ));
    }
    c
}

async fn bench_scale(server: &SimServer, seconds: u64, settle: u64) -> Res<String> {
    let bin = binary()?;
    let latency = Duration::from_millis(50);
    let wanted = std::env::var("BENCH_SCALE").unwrap_or_else(|_| "10k,100k,200x500".into());
    let cases = [
        ScaleCase {
            label: "10k",
            sources: 1,
            per_source: 10_000,
        },
        ScaleCase {
            label: "100k",
            sources: 1,
            per_source: 100_000,
        },
        ScaleCase {
            label: "200x500",
            sources: 200,
            per_source: 500,
        },
    ];
    let page = handshake_exporter::provider::alibaba::MAX_PAGE_SIZE as usize;
    let in_flight = handshake_exporter::provider::alibaba::MAX_IN_FLIGHT;
    let cap = Config::with_sources(Vec::new()).max_concurrent_requests;
    let mut refresh = String::from(
        "### Scale: cold refresh and memory (real binary, Alibaba, 50 ms per request)\n\n\
         | case | invitations | sources | list calls | bound: round trips × 50 ms | cold refresh s | idle MiB | VmHWM during refresh MiB | RSS after refresh MiB | refresh peak ÷ snapshot | first scrape s | body bytes | RSS 1.5 s after the first scrape MiB |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut scrapes = String::from(
        "\n### Scale: warm scrapes (real binary)\n\n\
         | case | scrapers | encoding | p50 ms | p99 ms | scrapes/s | scrapes | renders | errors |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut bursts = String::from(
        "\n### Scale: bursts of 40 concurrent scrapes (20 gzip), 6 waves\n\n\
         | case | VmHWM over the waves MiB | RSS right after MiB | RSS after SETTLE s MiB | renders per wave | errors |\n\
         |---|---:|---:|---:|---|---:|\n",
    )
    .replace("SETTLE", &settle.to_string());
    for case in cases
        .iter()
        .filter(|c| wanted.split(',').any(|w| w.trim() == c.label))
    {
        let n = case.sources * case.per_source;
        eprintln!("scale {}…", case.label);
        let ak = format!("BENCHSCALE{}", case.label.to_uppercase());
        add_tenant(&server.sim, &ak, Provider::Alibaba, case.per_source);
        server.sim.set_latency(latency);
        server.sim.reset_calls(&ak);
        let (e, _) = Exporter::start(&bin, &scale_config(&server.url(), &ak, case.sources), 128)?;
        let base = format!("http://{}/", e.addr);
        let c = client()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = e.status_kib("VmRSS");
        let started = Instant::now();
        kick_refresh(&c, &e.url()).await?;
        wait_refreshed(&c, &base, Duration::from_secs(300)).await?;
        let cold = started.elapsed();
        let hwm_refresh = e.status_kib("VmHWM");
        let calls = list_calls(&server.sim, &ak);
        server.sim.set_latency(Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after_refresh = e.status_kib("VmRSS");
        let pages = case.per_source.div_ceil(page);
        let round_trips = if case.sources == 1 {
            1 + (pages - 1).div_ceil(in_flight)
        } else {
            (case.sources * pages).div_ceil(cap)
        };
        let ratio = match (idle, hwm_refresh, after_refresh) {
            (Some(i), Some(h), Some(a)) if a > i => {
                format!("{:.2}", (h.saturating_sub(i)) as f64 / (a - i) as f64)
            }
            _ => "n/a".into(),
        };
        let t = Instant::now();
        let first = scrape_bytes(&c, &e.url(), false).await?;
        let first_s = t.elapsed();
        // The body is shared until the end of its second: measured after that.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let after_first = e.status_kib("VmRSS");
        refresh.push_str(&format!(
            "| {} | {n} | {} | {calls} | {round_trips} × 50 = {} ms | {:.2} | {} | {} | {} | {ratio} | {:.2} | {} | {} |\n",
            case.label,
            case.sources,
            round_trips * 50,
            cold.as_secs_f64(),
            mib(idle),
            mib(hwm_refresh),
            mib(after_refresh),
            first_s.as_secs_f64(),
            first.len(),
            mib(after_first),
        ));
        for concurrency in [1usize, 4] {
            for gzip in [false, true] {
                let before = scrape_bytes(&c, &e.url(), false).await?;
                let r0 = renders_in(&before, false);
                let l = load(&e.url(), concurrency, Duration::from_secs(seconds), gzip).await?;
                let after = scrape_bytes(&c, &e.url(), false).await?;
                let renders = match (r0, renders_in(&after, false)) {
                    // Counted by the scrapes just before and just after the load.
                    (Some(a), Some(b)) => format!("{}", b.saturating_sub(a)),
                    _ => "n/a".into(),
                };
                scrapes.push_str(&format!(
                    "| {} | {concurrency} | {} | {:.2} | {:.2} | {:.1} | {} | {renders} | {} |\n",
                    case.label,
                    if gzip { "gzip" } else { "identity" },
                    l.p50.as_secs_f64() * 1e3,
                    l.p99.as_secs_f64() * 1e3,
                    l.per_second,
                    l.count,
                    l.errors,
                ));
            }
        }
        // Bursts: peak from here on (clear_refs 5 resets VmHWM to the current RSS).
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let _ = std::fs::write(format!("/proc/{}/clear_refs", e.child.id()), "5");
        let mut per_wave = Vec::new();
        let mut errors = 0;
        for _ in 0..6 {
            let r0 = renders_in(&scrape_bytes(&c, &e.url(), false).await?, false);
            // Start the wave just after a second begins (and not in the second of the
            // scrape above): its scrapes then fall into one second unless the wave
            // lasts longer than that.
            let frac = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_millis();
            tokio::time::sleep(Duration::from_millis(u64::from(1_005 - frac))).await;
            let mut tasks = Vec::new();
            for i in 0..40 {
                let url = e.url();
                tasks.push(tokio::spawn(async move {
                    let gzip = i % 2 == 0;
                    let c = client()?;
                    let body = scrape_bytes(&c, &url, gzip).await?;
                    Ok::<_, Box<dyn Error + Send + Sync>>(renders_in(&body, gzip))
                }));
            }
            let mut seen = Vec::new();
            for t in tasks {
                match t.await? {
                    Ok(r) => seen.push(r),
                    Err(_) => errors += 1,
                }
            }
            per_wave.push(match (r0, seen.iter().flatten().max()) {
                (Some(a), Some(b)) => format!("{}", b - a),
                _ => "n/a".into(),
            });
            // The next wave in another second: each wave renders afresh.
            tokio::time::sleep(Duration::from_millis(1_100)).await;
        }
        let hwm = e.status_kib("VmHWM");
        let right_after = e.status_kib("VmRSS");
        tokio::time::sleep(Duration::from_secs(settle)).await;
        let settled = e.status_kib("VmRSS");
        bursts.push_str(&format!(
            "| {} | {} | {} | {} | {} | {errors} |\n",
            case.label,
            mib(hwm),
            mib(right_after),
            mib(settled),
            per_wave.join(", "),
        ));
    }
    server.sim.set_latency(Duration::ZERO);
    Ok(format!("{refresh}{scrapes}{bursts}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    handshake_exporter::init_crypto();
    let seconds = env_u64("BENCH_SECONDS", 2).max(1);
    let rounds = env_u64("BENCH_ROUNDS", 3).max(1) as usize;
    let runs = env_u64("BENCH_RUNS", 5).max(1) as usize;
    let server = sim::start(Sim::new(), "127.0.0.1:0".parse()?).await?;
    eprintln!("simulator on {}", server.url());

    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "refresh,many,binary".into());
    let wants = |part: &str| parts.split(',').any(|p| p.trim() == part);

    let started = Instant::now();
    let mut refresh = String::new();
    let mut many = String::new();
    let mut binary = String::new();
    let mut scale = String::new();
    if wants("scale") {
        eprintln!("scale: large directories, many sources…");
        scale = bench_scale(&server, seconds, env_u64("BENCH_SETTLE", 60)).await?;
    }
    if wants("refresh") {
        eprintln!("refresh, one source…");
        refresh = bench_refresh(&server, runs).await?;
    }
    if wants("many") {
        eprintln!("refresh, 20 sources…");
        many = bench_many_sources(&server, runs).await?;
    }
    if wants("binary") {
        eprintln!("real binary: start-up, scrapes, memory…");
        binary = bench_binary(&server, seconds, rounds).await?;
    }

    println!(
        "## handshake_exporter benchmark\n\n\
         Simulator in-process on 127.0.0.1; latency is added by the simulator to every API answer. \
         Refresh times are the wall time of `Runtime::fresh_views` (median of {runs} runs, the first of which \
         opens the connections). Each load cell runs {rounds} rounds of {seconds} s with keep-alive \
         connections; the table shows the round with the median throughput.\n"
    );
    println!("{refresh}\n{many}\n{binary}\n{scale}");
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    server.shutdown().await;
    Ok(())
}
