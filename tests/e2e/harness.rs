//! Test harness: the real `handshake_exporter` binary as a child process, the
//! simulator in-process on loopback, and helpers to read the exposition.

#![allow(dead_code)]

use handshake_exporter::sim::{self, Dataset, Sim, SimServer, Tenant, data};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_handshake_exporter");

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Start a simulator on 127.0.0.1 with no tenants.
pub async fn start_sim() -> SimServer {
    handshake_exporter::init_crypto();
    let s = Sim::new();
    sim::start(s, "127.0.0.1:0".parse().expect("static address"))
        .await
        .expect("simulator binds loopback")
}

/// Add a tenant with `n` generated invitations in `dataset`.
pub fn tenant(sim: &Sim, ak: &str, secret: &str, sets: &[(Dataset, usize)]) {
    let mut t = Tenant::new(ak, secret);
    let now = chrono::Utc::now();
    for (i, (d, n)) in sets.iter().enumerate() {
        t.datasets
            .insert(*d, data::generate(*d, *n, 42 + i as u64, now));
    }
    sim.add_tenant(t);
}

/// A running exporter process; killed on drop.
pub struct Exporter {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
}

impl Exporter {
    /// Write `config` to a temp file and start the binary on a free loopback port.
    pub fn start(config: &str, extra: &[&str]) -> Exporter {
        Self::try_start(config, extra).expect("exporter starts and listens")
    }

    pub fn try_start(config: &str, extra: &[&str]) -> Result<Exporter, String> {
        Self::try_start_env(config, extra, &[])
    }

    /// As [`Exporter::try_start`], with environment changes for the process
    /// (`Some(value)` sets, `None` removes): the credential chains read the
    /// environment, and a test must not change its own.
    pub fn try_start_env(
        config: &str,
        extra: &[&str],
        env: &[(String, Option<String>)],
    ) -> Result<Exporter, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let mut args = vec![
            "--config.file".to_string(),
            path.display().to_string(),
            "--web.listen-address".into(),
            "127.0.0.1:0".into(),
        ];
        if !extra.contains(&"--log.level") {
            args.extend(["--log.level".to_string(), "debug".to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(&args, dir, env)
    }

    /// Start with exactly these arguments (plus a loopback listen address).
    pub fn start_args(args: &[&str]) -> Exporter {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend([
            "--web.listen-address".to_string(),
            "127.0.0.1:0".to_string(),
        ]);
        Self::spawn(&all, dir, &[]).expect("exporter starts and listens")
    }

    fn spawn(
        args: &[String],
        dir: tempfile::TempDir,
        env: &[(String, Option<String>)],
    ) -> Result<Exporter, String> {
        let mut command = Command::new(BIN);
        for (name, value) in env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let mut child = command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {BIN}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Store the line before announcing the address, so that a test that
                // reads the log right after start sees the listening line.
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if line.contains("msg=listening") {
                    if let Some(addr) = line
                        .split_whitespace()
                        .find_map(|kv| kv.strip_prefix("address="))
                    {
                        let _ = tx.send(addr.to_string());
                    }
                } else if line.contains("\"message\":\"listening\"") {
                    // --log.format json
                    let parsed: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                    if let Some(addr) = parsed.as_ref().and_then(|v| v["address"].as_str()) {
                        let _ = tx.send(addr.to_string());
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Ok(Exporter {
                child,
                addr,
                log,
                dir,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                Err(format!(
                    "exporter did not report listening; log:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                ))
            }
        }
    }

    /// The exporter's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exporter's resident set size in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Send `sig` and return how long the process took to exit (at most 10 s).
    pub fn stop_timed(mut self, sig: &str) -> (Option<i32>, Duration) {
        let started = Instant::now();
        self.signal(sig);
        let deadline = started + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status.code(), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (None, started.elapsed())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("config.yml")
    }

    /// GET /metrics; panics unless 200.
    pub async fn scrape(&self) -> String {
        let (status, body) = get(&self.url("/metrics")).await;
        assert_eq!(status, 200, "/metrics answered {status}: {body}");
        body
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status();
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(self) -> Option<i32> {
        self.stop_with("TERM")
    }

    /// Send `sig` and wait (at most 10 s) for the exit status.
    pub fn stop_with(mut self, sig: &str) -> Option<i32> {
        self.signal(sig);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    handshake_exporter::init_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub async fn get(url: &str) -> (u16, String) {
    match client().get(url).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Value of the first sample of `name` whose labels include all of `labels`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text, name, labels).first().copied()
}

/// Every sample value of `name` matching `labels`.
pub fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
        .collect()
}

pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name, labels).iter().sum()
}

/// `handshake_source_refresh_failures_total` of a source for one reason.
pub fn refresh_failures(text: &str, source: &str, reason: &str) -> f64 {
    sum(
        text,
        "handshake_source_refresh_failures_total",
        &[("source", source), ("reason", reason)],
    )
}

/// Invitations a source reports (`handshake_invitations`, every status).
pub fn invitations(text: &str, source: &str) -> f64 {
    sum(text, "handshake_invitations", &[("source", source)])
}

/// Whether external tools are required (the test script sets this; CI runs it).
pub fn tools_required() -> bool {
    std::env::var_os("HANDSHAKE_REQUIRE_TOOLS").is_some() || std::env::var_os("CI").is_some()
}

/// Find a tool on PATH; when tools are required its absence fails the test.
pub fn tool(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !tools_required(),
            "{name} is required but not installed: run scripts/install-test-tools.sh"
        );
        eprintln!(
            "SKIPPED part of this test: {name} not installed (run scripts/install-test-tools.sh)"
        );
    }
    found
}

/// `promtool check metrics` on an exposition; returns its complaints (empty = clean).
pub fn promtool_check(text: &str) -> Option<String> {
    let promtool = tool("promtool")?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool finishes");
    let mut complaints = String::from_utf8_lossy(&out.stdout).into_owned();
    complaints.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() && complaints.trim().is_empty() {
        Some(String::new())
    } else {
        Some(format!("exit {:?}: {complaints}", out.status.code()))
    }
}

/// Poll `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// An Alibaba source block for a config.
pub fn alibaba_source(name: &str, endpoint: &str, ak: &str, sk: &str, view: &str) -> String {
    format!(
        "  - name: {name}\n    provider: alibaba\n    view: {view}\n    endpoint: {endpoint}\n    credentials:\n      access_key_id: {ak}\n      access_key_secret: {sk}\n"
    )
}

/// A Huawei source block for a config.
pub fn huawei_source(name: &str, endpoint: &str, ak: &str, sk: &str, view: &str) -> String {
    format!(
        "  - name: {name}\n    provider: huawei\n    view: {view}\n    endpoint: {endpoint}\n    credentials:\n      access_key_id: {ak}\n      access_key_secret: {sk}\n      domain_id: 3f1b6a9c2e4d4f7b8a0c1d2e3f4a5b6c\n"
    )
}

/// Configuration text, written once the simulator runs (its address, its data).
type ConfigText = Box<dyn FnOnce(&SimServer) -> String>;
/// A step run on the simulator before the exporter starts (latency, faults, roles).
type SimStep = Box<dyn FnOnce(&Sim)>;
/// A tenant: access key id, secret, and how many invitations of which dataset.
type TenantSpec = (String, String, Vec<(Dataset, usize)>);

/// The set-up most e2e tests share: a simulator with tenants, a configuration
/// pointing at it, and the exporter started on that configuration.
///
/// ```ignore
/// let (sim, exporter) = Harness::builder()
///     .tenant(AK, SK, &[(Dataset::AlibabaResourceDirectory, 250)])
///     .top("refresh_interval: 60s\n")
///     .alibaba("corp-rd", AK, SK, "resource_directory")
///     .start()
///     .await;
/// ```
///
/// Sources are written as YAML text (through [`alibaba_source`], [`huawei_source`] or
/// [`HarnessBuilder::source_yaml`]), never as `SourceConfig` values, so that a change
/// in how sources are built in Rust does not reach the tests.
pub struct Harness;

impl Harness {
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }
}

#[derive(Default)]
pub struct HarnessBuilder {
    tenants: Vec<TenantSpec>,
    top: String,
    sources: Vec<ConfigText>,
    config: Option<ConfigText>,
    sim_steps: Vec<SimStep>,
    args: Vec<String>,
    env: Vec<(String, Option<String>)>,
}

impl HarnessBuilder {
    /// A tenant with `n` generated invitations per dataset (as [`tenant`]).
    pub fn tenant(mut self, ak: &str, secret: &str, sets: &[(Dataset, usize)]) -> Self {
        self.tenants
            .push((ak.to_string(), secret.to_string(), sets.to_vec()));
        self
    }

    /// Top-level configuration lines written before `sources:`
    /// (`"refresh_interval: 1s\n"`); each ends in a newline.
    pub fn top(mut self, yaml: &str) -> Self {
        self.top.push_str(yaml);
        self
    }

    /// An Alibaba source with an access key (see [`alibaba_source`]).
    pub fn alibaba(self, name: &str, ak: &str, sk: &str, view: &str) -> Self {
        let (name, ak, sk, view) = (
            name.to_string(),
            ak.to_string(),
            sk.to_string(),
            view.to_string(),
        );
        self.source_yaml(move |sim| alibaba_source(&name, &sim.url(), &ak, &sk, &view))
    }

    /// A Huawei source with an access key (see [`huawei_source`]).
    pub fn huawei(self, name: &str, ak: &str, sk: &str, view: &str) -> Self {
        let (name, ak, sk, view) = (
            name.to_string(),
            ak.to_string(),
            sk.to_string(),
            view.to_string(),
        );
        self.source_yaml(move |sim| huawei_source(&name, &sim.url(), &ak, &sk, &view))
    }

    /// Any source block (text under `sources:`), given the running simulator (for
    /// its URL, or ids from its datasets).
    pub fn source_yaml(mut self, block: impl FnOnce(&SimServer) -> String + 'static) -> Self {
        self.sources.push(Box::new(block));
        self
    }

    /// The whole configuration text instead of `top` + sources, given the running
    /// simulator.
    pub fn config(mut self, config: impl FnOnce(&SimServer) -> String + 'static) -> Self {
        self.config = Some(Box::new(config));
        self
    }

    /// Work on the simulator after the tenants are added and before the exporter
    /// starts (latency, faults, identity roles).
    pub fn sim(mut self, step: impl FnOnce(&Sim) + 'static) -> Self {
        self.sim_steps.push(Box::new(step));
        self
    }

    /// Command-line arguments for the exporter (as [`Exporter::start`]'s `extra`).
    pub fn extra_args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Set (`Some`) or remove (`None`) an environment variable of the exporter
    /// process only.
    pub fn env(mut self, name: &str, value: Option<&str>) -> Self {
        self.env.push((name.to_string(), value.map(str::to_string)));
        self
    }

    /// Start the simulator, add the tenants, run the simulator steps, and write
    /// the configuration text.
    async fn prepare(
        self,
    ) -> (
        SimServer,
        String,
        Vec<String>,
        Vec<(String, Option<String>)>,
    ) {
        let sim = start_sim().await;
        for (ak, secret, sets) in &self.tenants {
            tenant(&sim.sim, ak, secret, sets);
        }
        for step in self.sim_steps {
            step(&sim.sim);
        }
        let config = match self.config {
            Some(config) => config(&sim),
            None => {
                let mut text = format!("{}sources:\n", self.top);
                for block in self.sources {
                    text.push_str(&block(&sim));
                }
                text
            }
        };
        (sim, config, self.args, self.env)
    }

    /// Start the simulator and the exporter.
    pub async fn start(self) -> (SimServer, Exporter) {
        let (sim, config, args, env) = self.prepare().await;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let exporter =
            Exporter::try_start_env(&config, &args, &env).expect("exporter starts and listens");
        (sim, exporter)
    }
}
