//! The `weir` command line.

pub mod build;
mod client;
mod db_lock;
mod local_plugins;

use client::output::{clean, clean_line, log_line};

use crate::host::{Engine, LoadedComponent};
use crate::model::limits::Limits;
use crate::model::manifest::Definition;
use crate::model::state::State;
use crate::orchestrate::{Event, FlowRequest, LogLevel, Orchestrator};
use crate::store::Store;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "weir", version, about = "Workflows as WebAssembly components")]
struct Cli {
    /// Where Weir keeps its database and compiled components.
    #[arg(long, global = true, env = "WEIR_DATA_DIR", default_value = ".weir")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

/// How instances' CPU is metered.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CpuMetering {
    Fuel,
    Off,
}

#[derive(Subcommand)]
enum Command {
    /// Run a flow of a component locally, without a server.
    Run {
        /// The component (.wasm).
        component: PathBuf,
        /// The flow to run; may be left out when the component has one flow.
        flow: Option<String>,
        /// A parameter, `key=value` (the value is coerced to the parameter's type).
        #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// All parameters as one JSON object (`--param` values go on top).
        #[arg(long, value_name = "JSON")]
        params_json: Option<String>,
        /// The SQLite database file (default: DATA_DIR/local.db, never the server's
        /// DATA_DIR/weir.db; a database a running server holds is refused).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Print the final flow run as one JSON object (events go to stderr).
        #[arg(long)]
        json: bool,
        /// A host the run (and the plugins it calls) may reach over HTTP, as a
        /// deployment's `allowed_hosts` (`api.example.com`, `*.example.com`).
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
        /// An address range the run may reach although it is not on the public internet
        /// (loopback, private...), as `weir server --egress-allow`.
        #[arg(
            long = "egress-allow",
            value_name = "CIDR",
            env = "WEIR_EGRESS_ALLOW",
            value_delimiter = ','
        )]
        egress_allow: Vec<String>,
        /// Where the built-in plugins are (`plugin_<name>.wasm`; default Cargo's target
        /// beside this binary, as for `weir server`).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
        /// A plugin the flow may call, `NAME=FILE.wasm` (version 1), besides the built-in
        /// ones.
        #[arg(long = "plugin", value_name = "NAME=FILE")]
        plugin_files: Vec<String>,
    },
    /// Build a component from a Python, JavaScript or TypeScript file of flows (`weir build flows.py -o flows.wasm`).
    Build(build::BuildArgs),
    /// Show a component's manifest: its flows, tasks, parameter schemas and options.
    Inspect {
        component: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run the server: the HTTP API, the executor and the embedded database.
    Server {
        /// Address to listen on.
        #[arg(long, env = "WEIR_ADDR", default_value = "127.0.0.1:4200")]
        addr: String,
        /// The database: a `sqlite:` URL (default: DATA_DIR/weir.db), or a
        /// `postgres://` URL that several servers may share.
        #[arg(long, env = "WEIR_DB")]
        db: Option<String>,
        /// This node's id among the servers sharing the database (default: a new one
        /// at every start).
        #[arg(long, env = "WEIR_NODE_ID")]
        node_id: Option<String>,
        /// Seconds without a heartbeat after which a node is presumed dead and its
        /// runs are taken over.
        #[arg(long, env = "WEIR_LEASE_SECONDS", default_value_t = 30.0)]
        lease_seconds: f64,
        /// Times a run may be taken over after its node died before it ends Crashed.
        #[arg(long, default_value_t = 3)]
        max_crash_restarts: i64,
        /// Set up a "demo" workspace with the example components in DIR deployed.
        #[arg(long, value_name = "DIR")]
        demo: Option<PathBuf>,
        /// Where the built-in plugins are (`plugin_<name>.wasm`, built from `plugins/`);
        /// default: `wasm32-wasip2/release` beside the directory of the `weir` binary
        /// (Cargo's target directory), when it holds any.
        #[arg(long, env = "WEIR_PLUGINS_DIR", value_name = "DIR")]
        plugins: Option<PathBuf>,
        /// Largest component upload, in MiB.
        #[arg(long, default_value_t = 64)]
        upload_limit_mb: usize,
        /// Seconds runs in progress get to finish at shutdown before they are put back.
        #[arg(long, default_value_t = 30)]
        grace_seconds: u64,
        /// Flow runs executing at once on this node (default: half of --max-instances:
        /// a run holds an instance, and one for its task). Runs past it wait their turn
        /// (`weir_queue_depth` in /metrics).
        #[arg(long, env = "WEIR_MAX_ACTIVE_RUNS")]
        max_active_runs: Option<usize>,
        /// WebAssembly instances (flow runs and task attempts) that may exist at once
        /// (default: one per MiB of the memory budget, as many as the kernel's
        /// vm.max_map_count allows at six mappings each, from 100 to 100,000).
        #[arg(long, env = "WEIR_MAX_INSTANCES")]
        max_instances: Option<u32>,
        /// Days finished runs are kept in workspaces without a retention policy of
        /// their own (default: until deleted).
        #[arg(long, env = "WEIR_RETENTION_DAYS", value_name = "DAYS")]
        retention_days: Option<u32>,
        /// Finished runs kept at most (the newest) in each workspace without a
        /// retention policy of its own (default: all).
        #[arg(long, env = "WEIR_RETENTION_RUNS", value_name = "N")]
        retention_runs: Option<u32>,
        /// Components kept compiled in memory; the least recently used beyond this
        /// (or beyond --component-cache-mb) are reloaded from disk when used again.
        #[arg(long, default_value_t = 256)]
        component_cache_count: usize,
        /// Compiled code of the components kept in memory, in MiB.
        #[arg(long, default_value_t = 1024)]
        component_cache_mb: usize,
        /// Components compiled at once (default: one per core).
        #[arg(long)]
        max_concurrent_compiles: Option<usize>,
        /// Memory one compilation of an upload may take, in MiB (uploads compile in a
        /// worker process bounded by it).
        #[arg(long, default_value_t = 2048)]
        compile_memory_mb: usize,
        /// Seconds of CPU (and of time) one compilation of an upload may take.
        #[arg(long, default_value_t = 120)]
        compile_seconds: u64,
        /// How instances' CPU is metered: `fuel` counts the WebAssembly instructions each
        /// workspace executes (deterministically; needed for fuel quotas), `off` lets
        /// guest code run a little faster.
        #[arg(long, env = "WEIR_CPU_METERING", value_enum, default_value_t = CpuMetering::Fuel)]
        cpu_metering: CpuMetering,
        /// Memory all instances may hold at once, in MiB, their runs' host-side state
        /// included (default: three quarters of the machine's or the cgroup's memory).
        /// Past it an instance cannot grow, and one that cannot start waits.
        #[arg(long, env = "WEIR_MEMORY_BUDGET_MB")]
        memory_budget_mb: Option<usize>,
        /// Task slots (instances running task attempts) one flow run may hold at once,
        /// as a share of them all; one workspace, twice that.
        #[arg(long, default_value_t = 0.25)]
        task_slot_share: f64,
        /// Client connections open at once (default: three quarters of the open-files
        /// limit, which the server raises to its hard limit at start).
        #[arg(long)]
        max_connections: Option<usize>,
        /// Client connections open at once from one address.
        #[arg(long, default_value_t = 256)]
        max_connections_per_peer: usize,
        /// Seconds a client has to send a request's headers; also how long an idle
        /// keep-alive connection stays open.
        #[arg(long, default_value_t = 15.0)]
        header_timeout_seconds: f64,
        /// Seconds a request body may stall before the request is cut off.
        #[arg(long, default_value_t = 30.0)]
        body_timeout_seconds: f64,
        /// An address range flows may reach over HTTP although it is not on the public
        /// internet (loopback, private, link-local and metadata addresses are closed
        /// whatever a deployment grants); repeat for several, e.g. `10.1.2.0/24`.
        #[arg(
            long = "egress-allow",
            value_name = "CIDR",
            env = "WEIR_EGRESS_ALLOW",
            value_delimiter = ','
        )]
        egress_allow: Vec<String>,
        /// Requests per second one client address may make (twice as many in a burst);
        /// past it, 429 with Retry-After. 0: no limit.
        #[arg(long, default_value_t = 2000)]
        rate_limit_per_peer: u32,
        /// API requests per second (webhooks included) one workspace may make. 0: no limit.
        #[arg(long, default_value_t = 2000)]
        rate_limit_per_workspace: u32,
        /// Failed authentications per minute one client address may make after a first
        /// burst of as many; past it, its requests get 429 until its budget grows back.
        #[arg(long, default_value_t = 60)]
        auth_failures_per_minute: u32,
        /// Component uploads received at once (more get 503 with Retry-After).
        #[arg(long, default_value_t = 16)]
        max_concurrent_uploads: usize,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, env = "WEIR_TLS_CERT", requires = "tls_key", value_name = "PEM")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, env = "WEIR_TLS_KEY", requires = "tls_cert", value_name = "PEM")]
        tls_key: Option<PathBuf>,
    },
    /// Measure orchestration overhead: `chain N`, `map N` or `flows N` (each beside the
    /// floor), or `floor N`, N task attempts with nothing orchestrated or persisted; or, with
    /// `runs --db PATH --since T`, report on the runs a load test sent to a server; or
    /// `schedules N [--seconds S]`, run N every-minute schedules; or `ui [N]`, time the
    /// web UI's pages over N generated flow runs (default 1,000,000); or `burst [N]`, a
    /// good tenant's latency while another address sends N bad requests (10,000); or
    /// `isolation --component guest_basic.wasm`, a neighbour tenant's runs beside
    /// hostile ones; or `inflight [N] --component guest_basic.wasm`, N flow runs in flight
    /// at once on one node (10,000); or `history [N]`, runs and the runs list on an empty
    /// database and beside N finished runs (10,000,000); or `startup [N]`, a server's start to ready on a data directory
    /// holding N compiled components (1,000).
    Bench {
        workload: String,
        #[arg(default_value_t = 0)]
        n: u64,
        /// `chain`, `map`, `flows`: a `postgres://` database to store in (default: a
        /// SQLite file); `runs`: the server's database (a path or URL).
        #[arg(long)]
        db: Option<String>,
        /// `runs`: count runs created at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// `schedules`: how long the scheduler runs.
        #[arg(long, default_value_t = 150)]
        seconds: u64,
        /// The bench component (examples/bench built for wasm32-wasip2).
        #[arg(long, default_value = "target/wasm32-wasip2/release/bench.wasm")]
        component: PathBuf,
        /// `chain`, `map`, `flows`: CPU metering, as the server's option.
        #[arg(long, env = "WEIR_CPU_METERING", value_enum, default_value_t = CpuMetering::Fuel)]
        cpu_metering: CpuMetering,
    },
    /// Print a shell completion script: `weir completions bash > ~/.local/share/bash-completion/completions/weir`,
    /// `weir completions zsh > "${fpath[1]}/_weir"`, `weir completions fish > ~/.config/fish/completions/weir.fish`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(client::ClientCommand),
    /// Compiles one component for a server (the server runs it, within its bounds).
    #[command(hide = true)]
    CompileWorker {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        memory_bytes: usize,
        #[arg(long)]
        stack_bytes: usize,
        #[arg(long, action = clap::ArgAction::Set)]
        cpu_metering: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A compile worker starts no runtime and no logging: it compiles and exits.
    if let Command::CompileWorker {
        input,
        output,
        memory_bytes,
        stack_bytes,
        cpu_metering,
    } = &cli.command
    {
        return crate::engine::worker::run_worker(
            input,
            output,
            *memory_bytes,
            *stack_bytes,
            *cpu_metering,
        );
    }
    crate::install_crypto_provider();
    // A server logs every request (target weir::access) and every failed
    // authentication (weir::audit); WEIR_LOG overrides, e.g. `WEIR_LOG=warn`. The
    // certificate verifier logs what the CLI's own error says better.
    let default_filter = match cli.command {
        Command::Server { .. } => {
            "warn,weir::access=info,weir::audit=info,rustls_platform_verifier=off"
        }
        _ => "warn,rustls_platform_verifier=off",
    };
    // Lines are written by a background thread, dropped rather than waited for when
    // the terminal falls behind; the guard flushes what is left at exit.
    let (writer, _flush_at_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(writer)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            // An error may quote a guest or a server (a state message, a problem's detail).
            eprintln!("error: {}", clean(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            component,
            flow,
            params,
            params_json,
            db,
            json,
            allow_hosts,
            egress_allow,
            plugins,
            plugin_files,
        } => {
            let db = db.unwrap_or_else(|| cli.data_dir.join("local.db"));
            let local = LocalRun {
                allow_hosts,
                egress_allow,
                plugins: plugins.or_else(default_plugins_dir),
                plugin_files,
            };
            run(
                &cli.data_dir,
                &component,
                flow,
                &params,
                params_json.as_deref(),
                &db,
                json,
                local,
            )
            .await
        }
        Command::Build(args) => tokio::task::block_in_place(|| build::run(args)),
        Command::Inspect { component, json } => inspect(&cli.data_dir, &component, json).await,
        Command::Server {
            addr,
            db,
            demo,
            plugins,
            upload_limit_mb,
            grace_seconds,
            max_active_runs,
            max_instances,
            retention_days,
            retention_runs,
            node_id,
            lease_seconds,
            max_crash_restarts,
            component_cache_count,
            component_cache_mb,
            max_concurrent_compiles,
            memory_budget_mb,
            cpu_metering,
            compile_memory_mb,
            compile_seconds,
            task_slot_share,
            max_connections,
            max_connections_per_peer,
            header_timeout_seconds,
            body_timeout_seconds,
            egress_allow,
            rate_limit_per_peer,
            rate_limit_per_workspace,
            auth_failures_per_minute,
            max_concurrent_uploads,
            tls_cert,
            tls_key,
        } => {
            let open_files = crate::server::listen::raise_open_files_limit();
            let mut config = crate::server::ServerConfig::new(cli.data_dir.clone());
            let conns = &mut config.connections;
            if let Some(n) = max_connections {
                conns.max_connections = n.max(1);
            }
            conns.max_per_peer = max_connections_per_peer.max(1);
            conns.header_timeout =
                positive_seconds("--header-timeout-seconds", header_timeout_seconds)?;
            conns.body_timeout = positive_seconds("--body-timeout-seconds", body_timeout_seconds)?;
            tracing::info!(
                "open files limit {open_files}: up to {} client connections, {} per address",
                conns.max_connections,
                conns.max_per_peer
            );
            config.db = db;
            if let Some(id) = node_id {
                config.node.node_id = id;
            }
            config.node.lease_ttl = positive_seconds("--lease-seconds", lease_seconds)?;
            config.node.max_crash_restarts = max_crash_restarts.max(0);
            config.admin_token = std::env::var("WEIR_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty());
            config.secret_key = std::env::var("WEIR_SECRET_KEY")
                .ok()
                .filter(|t| !t.is_empty());
            config.body_limits.upload = upload_limit_mb << 20;
            config.grace = std::time::Duration::from_secs(grace_seconds);
            config.max_active_runs = max_active_runs.map(|n| n.max(1));
            config.retention.default = crate::model::retention::Retention::check(
                retention_days.map(i64::from),
                retention_runs.map(i64::from),
                "--retention-",
            )
            .map_err(|errors| anyhow::anyhow!("{}", errors.join("; ")))?;
            config.limits.max_loaded_components = component_cache_count.max(1);
            config.limits.max_loaded_component_bytes = component_cache_mb << 20;
            if let Some(n) = max_concurrent_compiles {
                config.limits.max_concurrent_compiles = n.max(1);
            }
            config.limits.cpu_metering = cpu_metering == CpuMetering::Fuel;
            config.limits.compile_worker = crate::model::limits::CompileWorker::this_executable()
                .map(|mut w| {
                    w.memory_bytes = compile_memory_mb.max(64).saturating_mul(1 << 20);
                    w.time = std::time::Duration::from_secs(compile_seconds.max(1));
                    w
                });
            if let Some(mb) = memory_budget_mb {
                config.limits.memory_budget =
                    crate::model::limits::MemoryBudget::new(mb.max(1).saturating_mul(1 << 20));
            }
            config.size_for_memory();
            if let Some(n) = max_instances {
                // Flow runs keep a tenth, and a task needs one besides.
                config.limits.max_instances = n.max(8);
                if let Some(maps) = crate::server::max_map_count()
                    && crate::server::instances_for_maps(maps) < n as usize
                {
                    eprintln!(
                        "warning: --max-instances {n} needs about {} memory mappings and \
                         vm.max_map_count is {maps}; raise it (sysctl -w vm.max_map_count={}) \
                         or allocations may fail under load",
                        n as usize * crate::server::MAPS_PER_INSTANCE + crate::server::MAPS_KEPT,
                        (n as usize * crate::server::MAPS_PER_INSTANCE + crate::server::MAPS_KEPT)
                            .next_power_of_two()
                    );
                }
            }
            if !(task_slot_share > 0.0 && task_slot_share <= 1.0) {
                anyhow::bail!("--task-slot-share must be more than 0 and at most 1");
            }
            config.limits.task_slot_share_per_run = task_slot_share;
            config.limits.task_slot_share_per_workspace = (task_slot_share * 2.0).min(1.0);
            config.limits.egress =
                crate::model::egress::Egress::parse(&egress_allow).map_err(anyhow::Error::msg)?;
            config.rate = crate::api::rate::RateConfig {
                per_peer: rate_limit_per_peer,
                per_workspace: rate_limit_per_workspace,
                auth_failures_per_minute,
                auth_failure_burst: auth_failures_per_minute,
            };
            config.body_limits.max_concurrent_uploads = max_concurrent_uploads.max(1);
            config.plugins_dir = plugins.or_else(default_plugins_dir);
            if let (Some(cert), Some(key)) = (&tls_cert, &tls_key) {
                config.connections.tls = Some(crate::server::listen::tls_config(cert, key)?);
            }
            serve(config, &addr, demo.as_deref()).await
        }
        Command::Bench {
            workload,
            n,
            db,
            since,
            seconds,
            component,
            cpu_metering,
        } => {
            let report = if workload == "schedules" {
                crate::bench::schedules(n.max(1) as usize, seconds, &component).await?
            } else if workload == "isolation" {
                crate::bench::isolation::run(&component).await?
            } else if workload == "burst" {
                let examples = component.parent().unwrap_or(Path::new("."));
                crate::bench::burst::run(n, examples).await?
            } else if workload == "ui" {
                let examples = component.parent().unwrap_or(Path::new("."));
                let n = if n == 0 { 1_000_000 } else { n };
                crate::bench::ui::run(n, examples, db.as_deref()).await?
            } else if workload == "history" {
                let examples = component.parent().unwrap_or(Path::new("."));
                let n = if n == 0 { 10_000_000 } else { n };
                crate::bench::history::run(n, examples, db.as_deref()).await?
            } else if workload == "inflight" {
                crate::bench::inflight::run(n, &component).await?
            } else if workload == "startup" {
                crate::bench::startup::run(n, &component).await?
            } else if workload == "runs" {
                let db = db.context("bench runs needs --db PATH")?;
                crate::bench::runs_report(&db, since.unwrap_or_default()).await?
            } else {
                let limits = Limits {
                    cpu_metering: cpu_metering == CpuMetering::Fuel,
                    ..Limits::default()
                };
                crate::bench::run(&workload, n, &component, db.as_deref(), limits).await?
            };
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "weir", &mut out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Client(command) => client::dispatch(command).await,
        // Handled in `main`, before any runtime starts.
        Command::CompileWorker { .. } => Ok(ExitCode::FAILURE),
    }
}

/// Reads and loads a component, with an error that names the file.
pub async fn load_component(engine: &Engine, path: &Path) -> anyhow::Result<Arc<LoadedComponent>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    engine
        .load(&bytes)
        .await
        .with_context(|| format!("{} cannot be loaded", path.display()))
}

/// Parameters from `--params-json` and `--param key=value` pairs.
pub fn parse_params(pairs: &[String], json: Option<&str>) -> anyhow::Result<Value> {
    let mut map = match json {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => bail!("--params-json must be a JSON object"),
            Err(e) => bail!("--params-json is not valid JSON: {e}"),
        },
        None => Map::new(),
    };
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--param {pair:?} must look like key=value");
        };
        if k.is_empty() {
            bail!("--param {pair:?} has an empty key");
        }
        map.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(Value::Object(map))
}

async fn serve(
    config: crate::server::ServerConfig,
    addr: &str,
    demo: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let data_dir = config.data_dir.clone();
    let db_file = db_lock::sqlite_file(&data_dir, config.db.as_deref());
    let _db_lock = db_file.as_deref().and_then(db_lock::for_server);
    let database = match (&db_file, &config.db) {
        (Some(file), _) => format!("SQLite {}", absolute(file).display()),
        (None, Some(url)) => without_password(url),
        (None, None) => "-".into(),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let scheme = if config.connections.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let server = crate::server::Server::start(config).await?;
    let base = base_url(scheme, local);
    println!("Weir server listening on {base}");
    print!("{}", banner(&base, &data_dir, &database));
    if let Some(token) = &server.generated_admin_token {
        println!("Admin token (shown once; set WEIR_ADMIN_TOKEN to choose your own): {token}");
    }
    if server.recovered > 0 {
        println!("Resumed {} unfinished flow run(s)", server.recovered);
    }
    if !server.builtin_plugins.is_empty() {
        let plugins: Vec<String> = server
            .builtin_plugins
            .iter()
            .map(|(name, version)| format!("{name}@{version}"))
            .collect();
        println!("Built-in plugins: {}", plugins.join(", "));
    }
    if let Some(dir) = demo {
        let env_file = crate::server::demo::env_file(&data_dir);
        let d = crate::server::demo::setup(&server, dir, &env_file).await?;
        crate::server::demo::write_env(&env_file, &base, &d)
            .with_context(|| format!("cannot write {}", env_file.display()))?;
        println!(
            "\nDemo workspace ready: the examples are deployed (hello, etl, retries, caching, subflows)."
        );
        let kept = if d.reused_key {
            " (the same as at the last start)"
        } else {
            ""
        };
        println!(
            "\nWeb UI: open {base}/ and sign in with the demo workspace's API key{kept}:\n  {}\n",
            d.api_key
        );
        println!(
            "Its API URL, key and the hello webhook{} are in {} (readable by you only); in another shell:",
            if d.reused_webhook { " (unchanged)" } else { "" },
            absolute(&env_file).display()
        );
        println!(
            "  . {} && curl -X POST \"$WEIR_API_URL$WEIR_DEMO_HOOK\" -H 'content-type: application/json' -d '{{\"name\": \"Ada\"}}'",
            env_file.display()
        );
        println!(
            "  {} runs ls            # or: curl -H \"Authorization: Bearer $WEIR_API_KEY\" $WEIR_API_URL/api/flow-runs",
            weir_command()
        );
    }
    server.serve(listener, shutdown_signal()).await?;
    println!("Weir server stopped");
    Ok(ExitCode::SUCCESS)
}

/// Cargo's `target/wasm32-wasip2/release` beside `target/release/weir`, when it holds
/// built plugins.
fn default_plugins_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe
        .parent()?
        .parent()?
        .join("wasm32-wasip2")
        .join("release");
    let has_plugins = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("plugin_") && name.ends_with(".wasm")
        });
    has_plugins.then_some(dir)
}

/// The URL clients reach a listening address at (a wildcard address as loopback).
fn base_url(scheme: &str, addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("{scheme}://{}", std::net::SocketAddr::new(ip, addr.port()))
}

/// What `weir server` prints at start: where its UI, API, OpenAPI document and metrics
/// are, and where its data lives.
fn banner(base: &str, data_dir: &Path, database: &str) -> String {
    format!(
        "  Web UI    {base}/   (sign in with a workspace API key)\n\
         \x20 API       {base}/api   (Authorization: Bearer <workspace API key>)\n\
         \x20 OpenAPI   {base}/api/openapi.json\n\
         \x20 Metrics   {base}/metrics   (Prometheus; needs the admin token: Authorization: Bearer $WEIR_ADMIN_TOKEN)\n\
         \x20 Data      {}   (components, compiled code, secret.key)\n\
         \x20 Database  {database}\n",
        absolute(data_dir).display()
    )
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// A database URL fit to print: its password left out.
fn without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(an unparsable database URL)".into(),
    }
}

/// How to run this `weir` again: its name when the PATH finds this very binary, else its
/// full path (as when it runs from target/release).
fn weir_command() -> String {
    let Ok(me) = std::env::current_exe() else {
        return "weir".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            dir.join("weir")
                .canonicalize()
                .is_ok_and(|p| me.canonicalize().is_ok_and(|m| m == p))
        })
    });
    if on_path {
        "weir".into()
    } else {
        me.display().to_string()
    }
}

/// A command-line number of seconds that must be positive and finite.
fn positive_seconds(flag: &str, secs: f64) -> anyhow::Result<std::time::Duration> {
    let secs = crate::model::duration::check(flag, secs)?;
    if secs <= 0.0 {
        anyhow::bail!("{flag} must be a positive number of seconds");
    }
    Ok(crate::model::duration::to_std(secs))
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn pick_flow(component: &LoadedComponent, flow: Option<String>) -> anyhow::Result<String> {
    let flows = &component.manifest.flows;
    match flow {
        Some(f) => match component.manifest.find_flow(&f) {
            Ok(_) => Ok(f),
            Err(message) => bail!("{message}"),
        },
        None if flows.len() == 1 => Ok(flows[0].name.clone()),
        None if flows.is_empty() => bail!("the component has no flows"),
        None => {
            // Flows sharing a name are named by their functions.
            let ids: Vec<&str> = flows
                .iter()
                .map(|d| match component.manifest.find_flow(&d.name) {
                    Ok(_) => d.name.as_str(),
                    Err(_) => d.key(),
                })
                .collect();
            bail!(
                "the component has several flows; name one of: {}",
                ids.join(", ")
            )
        }
    }
}

fn printer(to_stderr: bool) -> crate::orchestrate::EventSink {
    Arc::new(move |event: &Event| {
        let now = chrono::Local::now().format("%H:%M:%S%.3f");
        let (level, who, text) = match event {
            Event::FlowRunCreated { name, flow, .. } => (
                LogLevel::Info,
                format!("Flow run '{name}'"),
                format!("Created flow run '{name}' for flow '{flow}'"),
            ),
            Event::FlowRunState { name, state, .. } => (
                level_of(state),
                format!("Flow run '{name}'"),
                transition(state),
            ),
            Event::TaskRunCreated { name, .. } => (
                LogLevel::Info,
                format!("Task run '{name}'"),
                format!("Created task run '{name}'"),
            ),
            Event::TaskRunState { name, state, .. } => (
                level_of(state),
                format!("Task run '{name}'"),
                transition(state),
            ),
            Event::Log {
                flow_run_name,
                task_run_name,
                level,
                message,
            } => (
                *level,
                match task_run_name {
                    Some(t) => format!("Task run '{t}'"),
                    None => format!("Flow run '{flow_run_name}'"),
                },
                message.clone(),
            ),
        };
        if level < LogLevel::Info {
            return;
        }
        let line = log_line(&now.to_string(), level.as_str(), &who, &text);
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    })
}

fn level_of(state: &State) -> LogLevel {
    match state.kind {
        crate::model::state::StateType::Failed | crate::model::state::StateType::Crashed => {
            LogLevel::Error
        }
        _ => LogLevel::Info,
    }
}

fn transition(state: &State) -> String {
    if state.is_final() {
        format!("Finished in state {state}")
    } else {
        format!("Entered state {state}")
    }
}

async fn open(
    data_dir: &Path,
    db: &Path,
    events: Option<crate::orchestrate::EventSink>,
    limits: Limits,
) -> anyhow::Result<Arc<Orchestrator>> {
    let engine = Engine::new(limits, Some(data_dir.join("compiled")))?;
    let store = Store::open_sqlite(db)
        .await
        .with_context(|| format!("cannot open the database {}", db.display()))?;
    Ok(Orchestrator::with_events(engine, store, events))
}

/// What `weir run` grants the run: hosts, and the plugins it may call.
struct LocalRun {
    allow_hosts: Vec<String>,
    egress_allow: Vec<String>,
    plugins: Option<PathBuf>,
    plugin_files: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    data_dir: &Path,
    component: &Path,
    flow: Option<String>,
    params: &[String],
    params_json: Option<&str>,
    db: &Path,
    as_json: bool,
    local: LocalRun,
) -> anyhow::Result<ExitCode> {
    let parameters = parse_params(params, params_json)?;
    if let Some(host) = local
        .allow_hosts
        .iter()
        .find(|h| h.is_empty() || h.contains('/') || h.contains(' '))
    {
        anyhow::bail!("--allow-host {host:?} is not a host name");
    }
    let _lock = db_lock::for_run(db)?;
    let limits = Limits {
        egress: crate::model::egress::Egress::parse(&local.egress_allow)
            .map_err(anyhow::Error::msg)?,
        ..Limits::default()
    };
    let orch = open(data_dir, db, Some(printer(as_json)), limits).await?;
    let plugins: Arc<dyn crate::orchestrate::PluginSource> =
        Arc::new(local_plugins::LocalPlugins::new(
            orch.engine().clone(),
            local.plugins.as_deref(),
            &local.plugin_files,
        )?);
    orch.set_plugin_source(Arc::downgrade(&plugins));
    let loaded = load_component(orch.engine(), component).await?;
    orch.store()
        .put_component(
            &loaded.digest,
            loaded.size,
            &serde_json::to_value(&loaded.manifest)?,
        )
        .await?;
    let flow = pick_flow(&loaded, flow)?;
    let outcome = orch
        .run_flow(FlowRequest {
            allowed_hosts: local.allow_hosts,
            ..FlowRequest::new(loaded, &flow, parameters)
        })
        .await?;
    drop(plugins);
    if as_json {
        let report = flow_run_json(orch.store(), &outcome.flow_run_id).await?;
        client::output::print_json(&report);
    } else if let Some(value) = &outcome.value {
        // The result's JSON text, its terminal controls escaped (or dropped if not JSON).
        let shown = serde_json::from_str::<Value>(value)
            .map(|v| client::output::json_text(&v, false))
            .unwrap_or_else(|_| clean(value));
        println!("Result: {shown}");
    }
    Ok(if outcome.state.is_completed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A flow run as one JSON object: its state and history, result, task runs, subflows,
/// logs and artifacts.
pub async fn flow_run_json(store: &Store, id: &str) -> anyhow::Result<Value> {
    let run = store
        .flow_run(id)
        .await?
        .with_context(|| format!("flow run {id} is not in the database"))?;
    let history = store.state_history(id).await?;
    let tasks = store.task_runs(id).await?;
    let mut task_json = Vec::with_capacity(tasks.len());
    for t in tasks {
        task_json.push(json!({
            "id": t.id,
            "name": t.name,
            "task": t.task_name,
            "position": t.position,
            "state": state_json(&t.state),
            "run_count": t.run_count,
            "result": t.result,
            "cache_key": t.cache_key,
        }));
    }
    let subflows: Vec<Value> = store
        .subflow_runs(id)
        .await?
        .into_iter()
        .map(|f| json!({"id": f.id, "name": f.name, "flow": f.flow_name, "state": state_json(&f.state), "result": f.result}))
        .collect();
    let logs = store.logs(id).await?;
    let artifacts = store.artifacts(id).await?;
    Ok(json!({
        "id": run.id,
        "name": run.name,
        "flow": run.flow_name,
        "component_digest": run.component_digest,
        "parameters": run.parameters,
        "tags": run.tags,
        "parent_flow_run_id": run.parent_flow_run_id,
        "state": state_json(&run.state),
        "state_history": history.iter().map(state_json).collect::<Vec<_>>(),
        "run_count": run.run_count,
        "result": run.result,
        "created": run.created,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "task_runs": task_json,
        "subflow_runs": subflows,
        "logs": logs,
        "artifacts": artifacts,
    }))
}

fn state_json(s: &State) -> Value {
    json!({"type": s.kind, "name": s.name, "message": s.message, "timestamp": s.timestamp})
}

async fn inspect(data_dir: &Path, component: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let engine = Engine::new(Limits::default(), Some(data_dir.join("compiled")))?;
    let loaded = load_component(&engine, component).await?;
    if as_json {
        let report = json!({
            "digest": loaded.digest,
            "size": loaded.size,
            "manifest": loaded.manifest,
        });
        client::output::print_json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "component sha256:{} ({} bytes, {})",
        loaded.digest,
        loaded.size,
        clean_line(&loaded.manifest.sdk)
    );
    println!("\nflows:");
    for f in &loaded.manifest.flows {
        describe_definition(f);
    }
    println!("\ntasks:");
    for t in &loaded.manifest.tasks {
        describe_definition(t);
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_definition(d: &Definition) {
    let version = d
        .version
        .as_deref()
        .map(|v| format!(" v{v}"))
        .unwrap_or_default();
    println!("  {}{}", clean_line(&d.name), clean_line(&version));
    if let Some(desc) = &d.description {
        println!("    {}", clean_line(desc.lines().next().unwrap_or("")));
    }
    let required: Vec<&str> = d.parameters["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = d.parameters["properties"].as_object() {
        for (name, schema) in props {
            let ty = schema
                .get("type")
                .map(|t| t.to_string().replace('"', ""))
                .or_else(|| {
                    schema
                        .get("$ref")
                        .and_then(Value::as_str)
                        .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
                })
                .unwrap_or_else(|| "any".into());
            let default = schema
                .get("default")
                .map(|d| format!(" = {d}"))
                .unwrap_or_default();
            let req = if required.contains(&name.as_str()) {
                " (required)"
            } else {
                ""
            };
            println!(
                "    param {}",
                clean_line(&format!("{name}: {ty}{default}{req}"))
            );
        }
    }
    let o = &d.options;
    let mut opts = Vec::new();
    if o.retries > 0 {
        opts.push(format!(
            "retries={} delays={:?}",
            o.retries, o.retry_delay_seconds
        ));
    }
    if let Some(t) = o.timeout_seconds {
        opts.push(format!("timeout={t}s"));
    }
    if o.cache_policy != crate::model::manifest::CachePolicy::None {
        opts.push(format!(
            "cache={:?} expiration={:?}",
            o.cache_policy, o.cache_expiration_seconds
        ));
    }
    if !o.tags.is_empty() {
        opts.push(format!("tags={:?}", o.tags));
    }
    if let Some(log_prints) = o.log_prints {
        opts.push(format!("log_prints={log_prints}"));
    }
    if let Some(n) = o.max_workers {
        opts.push(format!("max_workers={n}"));
    }
    if !o.validate_parameters {
        opts.push("validate_parameters=false".into());
    }
    if !opts.is_empty() {
        println!("    options: {}", clean_line(&opts.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_merge_json_and_pairs() {
        let v = parse_params(
            &["n=5".into(), "name=a=b".into()],
            Some(r#"{"n": 1, "x": true}"#),
        )
        .unwrap();
        assert_eq!(v, json!({"n": "5", "name": "a=b", "x": true}));
        assert!(parse_params(&["novalue".into()], None).is_err());
        assert!(parse_params(&[], Some("[1]")).is_err());
        assert!(
            parse_params(&[], Some("{"))
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
    }
}
