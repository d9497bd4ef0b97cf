//! The gregor binary: parse flags, load configuration, open the data directory, serve until
//! SIGTERM/SIGINT, then stop cleanly (exit 0). A second signal during the stop exits at once
//! with status 130, leaving the next start to verify the logs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use gregor::broker::Broker;
use gregor::cli;
use gregor::config::{parse_host_port, Config, ListenerSecurity, Overrides};
use gregor::handlers::Advertised;
use gregor::server::tls::TlsListener;

/// The version line: crate version, the commit it was built from, the protocol it speaks.
const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("GREGOR_COMMIT"), "; speaks the Kafka 4.1 protocol)");

/// A Kafka wire-protocol compatible broker.
#[derive(Parser, Debug)]
#[command(version = VERSION)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log lines as text (colour only on a terminal) or as JSON objects, one per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Configuration file: TOML, or a Kafka `server.properties` (by its `.properties` name).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on, HOST:PORT (port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
    /// Address to advertise to clients, HOST:PORT. Default: the address each client dialled.
    #[arg(long)]
    advertised: Option<String>,
    /// Data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Node id.
    #[arg(long)]
    node_id: Option<i32>,
    /// Emulate an Apache Kafka release's broker (2.8, 3.9, 4.1 or 4.2): only the API versions
    /// it served are advertised and served. Default: every version gregor serves.
    #[arg(long)]
    kafka_version: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Topics of any Kafka broker: list, create, describe, alter, delete.
    Topics {
        #[command(subcommand)]
        cmd: cli::TopicsCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Write lines from standard input as records.
    Produce {
        #[command(flatten)]
        args: cli::ProduceArgs,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Print a topic's records.
    Consume {
        #[command(flatten)]
        args: cli::ConsumeArgs,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Consumer groups: list, describe (members, offsets, lag), reset-offsets, delete.
    Groups {
        #[command(subcommand)]
        cmd: cli::GroupsCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Topic and broker configs: describe, alter.
    Configs {
        #[command(subcommand)]
        cmd: cli::ConfigsCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// The cluster: id, controller, brokers.
    Cluster {
        #[command(subcommand)]
        cmd: cli::ClusterCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Exit 0 when the broker this configuration describes answers ApiVersions (it does once
    /// recovery is done), 1 otherwise. For container HEALTHCHECKs without curl or nc.
    Healthcheck {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match &args.command {
        Some(Command::Healthcheck { timeout }) => {
            return healthcheck(&args, std::time::Duration::from_secs(*timeout));
        }
        Some(Command::Topics { cmd, common }) => return cli::run(cli::topics(common, cmd)),
        Some(Command::Produce { args, common }) => return cli::run(cli::produce(common, args)),
        Some(Command::Consume { args, common }) => return cli::run(cli::consume(common, args)),
        Some(Command::Groups { cmd, common }) => return cli::run(cli::groups(common, cmd)),
        Some(Command::Configs { cmd, common }) => return cli::run(cli::configs(common, cmd)),
        Some(Command::Cluster { cmd, common }) => return cli::run(cli::cluster(common, cmd)),
        None => {}
    }
    keep_freed_memory();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gregor: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Do not wait for blocking work (a retention pass) past the stop.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, without a backtrace: these are configuration, start-up and
            // final flush errors.
            eprintln!("gregor: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load_config(args: &Args) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen: args.listen.clone(),
        advertised: args.advertised.clone(),
        data_dir: args.data_dir.clone(),
        node_id: args.node_id,
        kafka_version: args.kafka_version.clone(),
    };
    let env = std::env::vars().collect();
    Ok(Config::load(args.config.as_deref(), &env, &overrides)?)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt().with_env_filter(filter).json().init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            // Colour codes only on a terminal, not in log files and pipes.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
    }
    let config = Arc::new(load_config(&args)?);
    let mut listeners = Vec::new();
    for spec in config.listeners()? {
        // Keys and certificates are read before anything is bound: a bad one stops the start.
        let tls = match spec.security.tls() {
            None => None,
            Some(settings) => Some(Arc::new(TlsListener::from_settings(settings)?)),
        };
        let sasl = spec.security.sasl().map(|s| Arc::new(s.clone()));
        let socket = tokio::net::TcpListener::bind(&spec.bind)
            .await
            .with_context(|| format!("cannot listen on {} (listener {})", spec.bind, spec.name))?;
        let advertised = spec.advertised.map(|(host, port)| Advertised { host: Arc::from(host.as_str()), port });
        listeners.push(gregor::server::Listener { name: spec.name, socket, advertised, tls, sasl });
    }
    // The broker's own address, where nothing better is known: the first listener's.
    let first = &listeners[0];
    let (host, port) = own_address(first)?;
    let http = Arc::new(gregor::server::http::HttpState::default());
    if let Some(addr) = config.server.http_address() {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(socket) => {
                let bound = socket.local_addr()?;
                tracing::info!(address = %format!("http://{bound}"), "HTTP endpoint: /healthz /readyz /metrics");
                tokio::spawn(gregor::server::http::serve(socket, http.clone()));
            }
            // The broker is still useful without it; the log says why probes fail.
            Err(e) => {
                tracing::warn!(%addr, error = %e, "cannot open the HTTP endpoint (server.http_listen); running without it")
            }
        }
    }
    let dialing = match config.cluster.is_shared() {
        true => Some(inter_broker_dialing(&config)?),
        false => None,
    };
    let mut shutdown = Box::pin(shutdown_signal().context("cannot install the SIGTERM/SIGINT handlers")?);
    let Some(cluster) = join_cluster(&config, &listeners, &mut shutdown).await? else {
        tracing::info!("stopped before joining the shared-mode cluster");
        return Ok(());
    };
    // Recovery reads and fsyncs files: on a blocking thread, not a runtime worker.
    let opening = {
        let config = config.clone();
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || Broker::open_in(config, host, port, cluster))
    };
    let broker = Arc::new(opening.await?.context("cannot open the data directory")?);
    if let Some(dialing) = dialing {
        gregor::handlers::peers::Peers::install(&broker, dialing);
    }
    if cluster.shared().is_some() {
        tokio::spawn(gregor::broker::follow_cluster(broker.clone()));
    }
    http.set_broker(broker.clone());
    http.set_ready(true);
    let shutdown = async move {
        shutdown.await;
        http.set_ready(false);
    };
    let served = gregor::server::serve_listeners(listeners, broker, shutdown).await;
    if let Some(shared) = cluster.shared() {
        shared.leave().await;
    }
    served.context("clean shutdown failed: cannot flush the logs")
}

/// A listener's address as the broker gives it out where no client's dialled address is known:
/// the advertised one, else the bound one (the host name when bound to every interface, as
/// Kafka does).
fn own_address(l: &gregor::server::Listener) -> std::io::Result<(String, u16)> {
    if let Some(a) = &l.advertised {
        return Ok((a.host.to_string(), a.port));
    }
    let bound = l.socket.local_addr()?;
    let host = if bound.ip().is_unspecified() { host_name() } else { bound.ip().to_string() };
    Ok((host, bound.port()))
}

/// Shared mode: how this broker reaches the others on the inter-broker listener. Settings
/// that cannot dial it (TLS, or a SASL login) stop the start, naming the setting, before the
/// broker joins the cluster.
fn inter_broker_dialing(config: &Config) -> anyhow::Result<gregor::handlers::peers::Dialing> {
    let chosen = gregor::handlers::peers::inter_broker_listener(config)
        .map_err(anyhow::Error::msg)
        .context("cannot reach the other brokers")?;
    let tls = match &chosen.tls {
        Some(ssl) => Some(gregor::server::tls::dialer(ssl).context("cannot reach the other brokers over TLS")?),
        None => None,
    };
    Ok(gregor::handlers::peers::Dialing { listener: chosen.name, tls, sasl: chosen.sasl })
}

/// A single node, or (with `cluster.postgres_url`) this broker's membership of a shared-mode
/// cluster: registered with each listener's advertised address, or the address it is bound to
/// (the host name when bound to every interface).
///
/// A store that does not answer yet (PostgreSQL still starting, say, in a compose stack), or a
/// node id whose previous process's lease has not run out, is waited for, with a warning per
/// attempt; `None` when a stop signal comes meanwhile.
async fn join_cluster(
    config: &Config,
    listeners: &[gregor::server::Listener],
    shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
) -> anyhow::Result<Option<gregor::cluster::Cluster>> {
    use gregor::cluster::{shared, store::Registration, Cluster};
    let c = &config.cluster;
    if !c.is_shared() {
        return Ok(Some(Cluster::Single { node_id: config.server.node_id }));
    }
    let mut endpoints = std::collections::BTreeMap::new();
    for l in listeners {
        let (host, port) = own_address(l)?;
        endpoints.insert(l.name.clone(), format!("{host}:{port}"));
    }
    let settings = shared::Settings {
        postgres_url: c.postgres_url.clone(),
        object_store_url: c.object_store_url.clone(),
        session_timeout: std::time::Duration::from_millis(c.session_timeout_ms),
        heartbeat_interval: std::time::Duration::from_millis(c.heartbeat_interval_ms),
        commit_linger: std::time::Duration::from_millis(c.commit_linger_ms),
        merge_interval: std::time::Duration::from_millis(c.merge_interval_ms),
        read_cache_bytes: c.read_cache_bytes,
        fsync_objects: config.log.fsync_acks_all,
        store_timeout: std::time::Duration::from_millis(c.store_timeout_ms),
    };
    let registration = Registration { node_id: config.server.node_id, rack: None, listeners: endpoints };
    let proposed = gregor::metadata::existing_cluster_id(&config.log.dir)
        .or_else(|| config.server.cluster_id.clone())
        .unwrap_or_else(gregor::metadata::new_cluster_id);
    let internal = |cluster_id: &str| {
        gregor::broker::INTERNAL_TOPICS
            .iter()
            .map(|n| (n.to_string(), gregor::cluster::internal_topic_id(cluster_id, n)))
            .collect()
    };
    let mut backoff = std::time::Duration::from_millis(250);
    loop {
        let started = shared::Shared::start(settings.clone(), registration.clone(), &proposed, internal).await;
        match started {
            Ok(joined) => return Ok(Some(Cluster::Shared(joined))),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot join the shared-mode cluster yet; retrying");
            }
            Err(e) => {
                return Err(e)
                    .context("cannot join the shared-mode cluster (cluster.postgres_url, cluster.object_store_url)")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut *shutdown => return Ok(None),
        }
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
    }
}

/// `gregor healthcheck`: dials the broker's first PLAINTEXT listener from the same
/// configuration (a wildcard address is dialled on 127.0.0.1) and asks for ApiVersions (v0,
/// which every broker answers).
fn healthcheck(args: &Args, timeout: std::time::Duration) -> std::process::ExitCode {
    use std::io::{Read, Write};
    let check = || -> anyhow::Result<usize> {
        let config = load_config(args)?;
        // It speaks Kafka in the clear: the first PLAINTEXT listener.
        let first = config
            .listeners()?
            .into_iter()
            .find(|l| l.security == ListenerSecurity::Plaintext)
            .context("healthcheck needs a PLAINTEXT listener; every listener here uses TLS or SASL")?;
        let (host, port) = parse_host_port(&first.bind).context("server.listen")?;
        let host = match host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            _ if host.is_empty() => "127.0.0.1".to_string(),
            _ => host,
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))?
            .next()
            .with_context(|| format!("{host} does not resolve"))?;
        let mut conn = std::net::TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("no broker answers on {addr}"))?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        // ApiVersions v0: size, api key 18, version 0, correlation id, client id.
        let client = b"gregor-healthcheck";
        let mut req = Vec::with_capacity(32);
        req.extend_from_slice(&((10 + client.len()) as i32).to_be_bytes());
        req.extend_from_slice(&18i16.to_be_bytes());
        req.extend_from_slice(&0i16.to_be_bytes());
        req.extend_from_slice(&7i32.to_be_bytes());
        req.extend_from_slice(&(client.len() as i16).to_be_bytes());
        req.extend_from_slice(client);
        conn.write_all(&req)?;
        let mut head = [0u8; 10];
        conn.read_exact(&mut head).with_context(|| format!("the broker on {addr} did not answer in time"))?;
        let correlation = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let error = i16::from_be_bytes([head[8], head[9]]);
        anyhow::ensure!(correlation == 7, "the answer from {addr} is not an ApiVersions response");
        anyhow::ensure!(error == 0, "the broker on {addr} answered ApiVersions with error {error}");
        let mut count = [0u8; 4];
        conn.read_exact(&mut count)?;
        Ok(i32::from_be_bytes(count).max(0) as usize)
    };
    match check() {
        Ok(apis) => {
            println!("ok: the broker answers ({apis} APIs)");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gregor healthcheck: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves at the first SIGTERM or SIGINT; a second one exits the process at once.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            eprintln!("gregor: second signal, exiting without finishing the shutdown");
            std::process::exit(130);
        });
    })
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates within it.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = ok.then(|| std::ffi::CStr::from_bytes_until_nul(&buf).ok()).flatten();
    name.and_then(|n| n.to_str().ok()).filter(|n| !n.is_empty()).unwrap_or("localhost").to_string()
}

/// glibc hands buffers of a few hundred KiB and up (a produce request, a partition's fetch
/// read, a fetch response) to the kernel on free and faults fresh zeroed pages in for the next
/// one. With these two settings such buffers come from the heap and freed memory stays there for
/// reuse, which on a busy broker saves a page fault and a page clear per 4 KiB moved. Memory
/// above 32 MiB per allocation is still mapped on its own, and heaps still shrink once more
/// than 64 MiB sits free at their top. What stays is given back once the broker is quiet for a
/// second (`gregor::alloc::release_when_quiet`, started by the server).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
