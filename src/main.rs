//! The `handshake_exporter` binary: flags, signals, and wiring. Logic lives in the library.

use clap::{Parser, Subcommand};
use handshake_exporter::app::{App, ConfigOrigin};
use handshake_exporter::http::{self, WebOptions};
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::{config, demo, logging, webconfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;

/// mimalloc instead of glibc malloc: chosen by measurement (BENCHMARKS.md, scale
/// section). glibc kept the memory of a burst of scrapes in its per-thread arenas
/// and, without `malloc_trim` (unsafe FFI), never gave it back; mimalloc returns
/// freed pages to the system after a short delay and packs small strings tighter
/// (no per-allocation header).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "handshake_exporter",
    version,
    about = "Prometheus exporter for cloud organization invitations (handshakes): Alibaba Cloud Resource Manager and Huawei Cloud Organizations."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (YAML).
    #[arg(
        long = "config.file",
        value_name = "PATH",
        default_value = "handshake_exporter.yml"
    )]
    config_file: PathBuf,
    /// Validate the configuration file and exit (0 valid, 1 invalid).
    #[arg(long = "config.check")]
    config_check: bool,
    /// Address to listen on for metrics and the web interface.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        default_value = ":9866"
    )]
    listen_address: String,
    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    telemetry_path: String,
    /// Web configuration (TLS, basic auth) in the exporter-toolkit format.
    #[arg(long = "web.config.file", value_name = "PATH")]
    web_config_file: Option<PathBuf>,
    /// Maximum number of concurrent scrape requests; more get 503.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = 40)]
    max_requests: usize,
    /// Maximum number of open connections; more wait in the kernel's accept queue.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 512)]
    max_connections: usize,
    /// A request's headers must arrive within this; also closes keep-alive
    /// connections idle this long (slowloris and idle-connection protection).
    #[arg(long = "web.read-header-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    read_header_timeout: std::time::Duration,
    /// Enable POST /-/reload (as Prometheus' flag); SIGHUP always reloads.
    #[arg(long = "web.enable-lifecycle")]
    enable_lifecycle: bool,
    /// Enable GET /api/v1/sources/{source}/handshakes/{id}: a signed cloud call per
    /// request, for invitations the source already knows.
    #[arg(long = "web.enable-live-lookup")]
    enable_live_lookup: bool,
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", default_value = "info", value_parser = ["trace", "debug", "info", "warn", "error"])]
    log_level: String,
    /// Output format of log messages.
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    log_format: String,
    /// Run against a built-in simulated cloud (no credentials needed); ignores --config.file.
    #[arg(long)]
    demo: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run only the simulated cloud (Alibaba and Huawei APIs) with demo tenants.
    Sim {
        /// Address for the simulator.
        #[arg(long, default_value = "127.0.0.1:18080")]
        listen: String,
    },
}

/// `10s`, `500ms`, `2m`, `1h`: a positive duration.
fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{raw:?}: add a unit (ms, s, m, h)"))?;
    let (n, unit) = raw.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{raw:?}: expected a number and a unit, like 10s"))?;
    let d = match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(n.saturating_mul(60)),
        "h" => std::time::Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("{raw:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if d.is_zero() || d > std::time::Duration::from_secs(24 * 3600) {
        return Err(format!("{raw:?}: must be more than 0 and at most 24h"));
    }
    Ok(d)
}

/// `:9866` means every interface, like Prometheus' own flags.
fn listen_addr(raw: &str) -> String {
    if raw.starts_with(':') {
        format!("0.0.0.0{raw}")
    } else {
        raw.to_string()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli));
    // Whatever a cloud API is doing, exit now: refresh tasks stuck on a hung API are
    // dropped instead of awaited (the default drop waits for blocking tasks).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

async fn run(cli: Cli) -> ExitCode {
    logging::init(&cli.log_level, &cli.log_format);
    handshake_exporter::init_crypto();

    if let Some(Command::Sim { listen }) = &cli.command {
        return run_sim(listen).await;
    }

    if cli.config_check {
        return match config::load_file(&cli.config_file) {
            Ok(c) => {
                for w in &c.warnings {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: ok, {} source(s)",
                    cli.config_file.display(),
                    c.sources.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }

    let mut demo_sim = None;
    let origin = if cli.demo {
        match demo::start_sim(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok((sim, config)) => {
                tracing::info!(address = %sim.addr, "demo: simulated cloud started on loopback");
                let origin = ConfigOrigin::Fixed(Box::new(config));
                demo_sim = Some(sim);
                origin
            }
            Err(e) => {
                tracing::error!(error = %e, "demo: cannot start the simulated cloud");
                return ExitCode::FAILURE;
            }
        }
    } else {
        ConfigOrigin::File(cli.config_file.clone())
    };

    let metrics = Arc::new(ExporterMetrics::new(true));
    let app = match App::new(origin, metrics) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    let mut web = WebOptions::new(&cli.telemetry_path, cli.max_requests);
    web.max_connections = cli.max_connections.max(1);
    web.read_header_timeout = cli.read_header_timeout;
    web.enable_lifecycle = cli.enable_lifecycle;
    web.enable_live_lookup = cli.enable_live_lookup;
    web.web_config_file = cli.web_config_file.clone();
    if let Some(path) = &cli.web_config_file {
        match webconfig::load(path) {
            Ok(wc) => web.set_security(http::WebSecurity::from_config(wc)),
            Err(e) => {
                tracing::error!(error = %e, "invalid web configuration");
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let tls = web.security().tls.is_some();
    let web = Arc::new(web);

    let addr = listen_addr(&cli.listen_address);
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
    let rt = app.runtime();
    tracing::info!(
        address = %local,
        tls,
        sources = rt.sources.len(),
        refresh_interval = ?rt.config.refresh_interval,
        version = handshake_exporter::metrics::VERSION,
        "listening"
    );

    let server = tokio::spawn(http::serve(app.clone(), web.clone(), listener));
    wait_for_signals(&app, &web).await;
    tracing::info!("shutting down");
    // Waiting scrapes are answered from the cache now; the server stops accepting
    // and gives open connections a short grace (http::SHUTDOWN_GRACE).
    web.shutdown();
    let _ = server.await;
    if let Some(sim) = demo_sim {
        sim.shutdown().await;
    }
    ExitCode::SUCCESS
}

/// Return on SIGTERM or SIGINT; reload on SIGHUP.
async fn wait_for_signals(app: &Arc<App>, web: &Arc<WebOptions>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = int.recv() => return,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading configuration and web configuration");
                    // Errors are logged where they happen; the running settings stay.
                    let _ = http::reload(app, web).await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run_sim(listen: &str) -> ExitCode {
    let addr: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("--listen {listen:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sim = match demo::start_sim(addr).await {
        Ok((s, _)) => s,
        Err(e) => {
            eprintln!("cannot start the simulator on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(address = %sim.addr, "simulated cloud listening");
    // A configuration for each demo tenant (made-up keys that only this simulator
    // accepts), so that a script can point an exporter at it.
    let url = sim.url();
    let mut banner = format!("Simulated cloud on {url}\n\nsources:\n");
    for (ak, secret, provider) in sim.sim.tenant_keys() {
        banner.push_str(&format!(
            "  - name: sim-{provider}-{n}\n    provider: {provider}\n    endpoint: {url}\n    credentials: {{access_key_id: {ak}, access_key_secret: {secret}}}\n",
            n = ak.to_ascii_lowercase(),
        ));
    }
    println!("{banner}");
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}
