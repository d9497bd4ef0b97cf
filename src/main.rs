//! The gregor binary: parse flags, load configuration, open the data directory, serve until
//! SIGTERM/SIGINT, then stop cleanly (exit 0). A second signal during the stop exits at once
//! with status 130, leaving the next start to verify the logs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use gregor::broker::Broker;
use gregor::config::{parse_host_port, Config, Overrides};

/// A Kafka wire-protocol compatible broker.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Configuration file: TOML, or a Kafka `server.properties` (by its `.properties` name).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on, HOST:PORT (port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
    /// Address to advertise to clients, HOST:PORT. Default: the bound address.
    #[arg(long)]
    advertised: Option<String>,
    /// Data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Node id.
    #[arg(long)]
    node_id: Option<i32>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
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

async fn run(args: Args) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        // Colour codes only on a terminal, not in log files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let overrides =
        Overrides { listen: args.listen, advertised: args.advertised, data_dir: args.data_dir, node_id: args.node_id };
    let env = std::env::vars().collect();
    let config = Arc::new(Config::load(args.config.as_deref(), &env, &overrides)?);
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let bound = listener.local_addr()?;
    let (host, port) = match &config.server.advertised {
        Some(a) => parse_host_port(a).context("server.advertised")?,
        // Bound to every interface: advertise the host name, as Kafka does.
        None if bound.ip().is_unspecified() => (host_name(), bound.port()),
        None => (bound.ip().to_string(), bound.port()),
    };
    let shutdown = shutdown_signal().context("cannot install the SIGTERM/SIGINT handlers")?;
    // Recovery reads and fsyncs files: on a blocking thread, not a runtime worker.
    let opening = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Broker::open(config, host, port))
    };
    let broker = Arc::new(opening.await?.context("cannot open the data directory")?);
    gregor::server::serve(listener, broker, shutdown).await.context("clean shutdown failed: cannot flush the logs")
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
