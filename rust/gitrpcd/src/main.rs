//! `gitrpcd`: serve gitrpc on a unix socket and/or TCP.
//!
//! ```text
//! gitrpcd [--config FILE] [--socket PATH] [--listen HOST:PORT] [--prometheus-listen HOST:PORT] [--storage NAME=PATH]...
//! ```
//! (parsed by `clap`; bad flags exit 2, as does a config that can't be served).
//! Flags override the config file. With neither a config nor a storage, it serves the
//! embedded default: storage `default` at `./gitrpc-data/repositories`, socket
//! `./gitrpc-data/gitrpc.sock`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use gitrpc_server::config::{Config, ConfigError, LogFormat, Storage, Valid};
use gitrpc_server::{ServeError, Serving, StartError};

const DEFAULT_DIR: &str = "gitrpc-data";

/// Serves Gitaly-compatible gRPC. Flags override the config file.
#[derive(Debug, Parser)]
#[command(
    name = "gitrpcd",
    version,
    after_help = "With no config and no --storage, serves the embedded default: storage \"default\" in\n./gitrpc-data/repositories on the socket ./gitrpc-data/gitrpc.sock."
)]
struct Args {
    /// TOML config file (Gitaly's key names).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Unix socket to serve on (`socket_path`).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// TCP address to serve on, plaintext (`listen_addr`).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address for /metrics and /diagnostics (`prometheus_listen_addr`).
    #[arg(long, value_name = "HOST:PORT")]
    prometheus_listen: Option<String>,
    /// A storage; repeat for several (replaces the config's storage of that name).
    #[arg(long, value_name = "NAME=PATH", value_parser = parse_storage)]
    storage: Vec<Storage>,
}

fn parse_storage(v: &str) -> Result<Storage, &'static str> {
    match v.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(Storage {
            name: name.to_string(),
            path: path.into(),
        }),
        _ => Err("want NAME=PATH"),
    }
}

/// Why gitrpcd stopped with an error.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The config file (if any) with the flags applied, checked.
fn config(args: Args) -> Result<Valid, ConfigError> {
    let mut config = match &args.config {
        Some(f) => Config::read(f)?,
        None => Config::default(),
    };
    if args.socket.is_some() {
        config.socket_path = args.socket;
    }
    if args.listen.is_some() {
        config.listen_addr = args.listen;
    }
    if args.prometheus_listen.is_some() {
        config.prometheus_listen_addr = args.prometheus_listen;
    }
    for s in args.storage {
        config.storage.retain(|x| x.name != s.name);
        config.storage.push(s);
    }
    if args.config.is_none() && config.storage.is_empty() {
        config.storage.push(Storage {
            name: "default".into(),
            path: Path::new(DEFAULT_DIR).join("repositories"),
        });
        if config.socket_path.is_none() && config.listen_addr.is_none() {
            config.socket_path = Some(Path::new(DEFAULT_DIR).join("gitrpc.sock"));
        }
    }
    if config.socket_path.is_none() && config.listen_addr.is_none() {
        return Err(ConfigError::Invalid {
            key: "socket_path".into(),
            message: "nothing to listen on: set socket_path/--socket or listen_addr/--listen"
                .into(),
        });
    }
    config.validate()
}

fn init_logging(config: &Valid) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GITRPC_LOG")
        .unwrap_or_else(|_| EnvFilter::new(&config.logging.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.logging.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

async fn serve(config: Valid) -> Result<(), Failure> {
    let grace = config.graceful_restart_timeout;
    let mut server = Serving::start(config).await?;
    for addr in server.addresses() {
        tracing::info!(address = %addr, git = server.deps().git.version(), "listening");
    }
    if let Some(url) = server.monitor_url() {
        tracing::info!(url = %format!("{url}/metrics"), diagnostics = %format!("{url}/diagnostics"), "metrics listening");
    }
    tokio::select! {
        sig = shutdown_signal() => {
            tracing::info!(signal = sig, grace_secs = grace.as_secs(), "shutting down: draining in-flight calls");
            server.stop(grace).await;
            Ok(())
        }
        e = server.failed() => Err(e.into()),
    }
}

fn main() -> ExitCode {
    // Bad flags, --help and --version exit here (2, 0, 0).
    let args = Args::parse();
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gitrpcd: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    // Every client connection, git pipe and spill file is a descriptor: take all the process
    // may have (the default [connections] max is derived from it). Only the daemon does this;
    // embedders own their limits (see `raise_open_file_limit`).
    match gitrpc_server::config::raise_open_file_limit() {
        Ok((old, new)) if old != new => {
            tracing::info!(from = old, to = new, "raised the open-file limit")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gitrpcd")
        .build()
        .expect("tokio runtime");
    match rt.block_on(serve(config)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "gitrpcd failed");
            eprintln!("gitrpcd: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Valid, String> {
        let args = Args::try_parse_from(std::iter::once("gitrpcd").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        config(args).map_err(|e| e.to_string())
    }

    #[test]
    fn flags() {
        let c = parse(&["--socket", "/tmp/x.sock", "--storage", "default=/srv/repos"]).unwrap();
        assert_eq!(c.socket_path.as_deref(), Some(Path::new("/tmp/x.sock")));
        assert_eq!(c.storage[0].path, Path::new("/srv/repos"));
        let c = parse(&[
            "--listen=127.0.0.1:0",
            "--storage=a=/a",
            "--storage",
            "b=/b",
        ])
        .unwrap();
        assert_eq!(c.storage.len(), 2);
        let c = parse(&[]).unwrap();
        assert_eq!(c.storage[0].name, "default");
        assert!(c.socket_path.as_ref().unwrap().ends_with("gitrpc.sock"));
        assert!(parse(&["--storage", "nopath"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        let e = parse(&["--storage", "a=/a"]).unwrap_err();
        assert!(
            e.contains("nothing to listen on"),
            "storage but nowhere to listen: {e}"
        );
    }
}
