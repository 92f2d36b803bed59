//! `gitrpcd`: serve gitrpc on a unix socket and/or TCP.
//!
//! ```text
//! gitrpcd [--config FILE] [--socket PATH] [--listen HOST:PORT] [--prometheus-listen HOST:PORT] [--storage NAME=PATH]...
//! ```
//! Flags override the config file. With neither a config nor a storage, it serves the
//! embedded default: storage `default` at `./gitrpc-data/repositories`, socket
//! `./gitrpc-data/gitrpc.sock`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use gitrpc_server::config::{Config, Storage};
use gitrpc_server::Serving;

const USAGE: &str =
    "usage: gitrpcd [--config FILE] [--socket PATH] [--listen HOST:PORT] [--prometheus-listen HOST:PORT] [--storage NAME=PATH]...

Serves Gitaly-compatible gRPC. Flags override the config file. With no config and no
--storage, serves the embedded default: storage \"default\" in ./gitrpc-data/repositories
on the socket ./gitrpc-data/gitrpc.sock.";

const DEFAULT_DIR: &str = "gitrpc-data";

fn parse_args(args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut config_file: Option<PathBuf> = None;
    let mut socket: Option<PathBuf> = None;
    let mut listen: Option<String> = None;
    let mut prometheus: Option<String> = None;
    let mut storages: Vec<Storage> = Vec::new();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Err(USAGE.to_string()),
            "-V" | "--version" => return Err(format!("gitrpcd {}", env!("CARGO_PKG_VERSION"))),
            "-c" | "--config" => config_file = Some(value()?.into()),
            "--socket" => socket = Some(value()?.into()),
            "--listen" => listen = Some(value()?),
            "--prometheus-listen" => prometheus = Some(value()?),
            "--storage" => {
                let v = value()?;
                let (name, path) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--storage wants NAME=PATH, got {v:?}"))?;
                storages.push(Storage {
                    name: name.to_string(),
                    path: path.into(),
                });
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    let mut config = match &config_file {
        Some(f) => Config::from_file(f)?,
        None => Config::default(),
    };
    if socket.is_some() {
        config.socket_path = socket;
    }
    if listen.is_some() {
        config.listen_addr = listen;
    }
    if prometheus.is_some() {
        config.prometheus_listen_addr = prometheus;
    }
    for s in storages {
        config.storage.retain(|x| x.name != s.name);
        config.storage.push(s);
    }
    if config_file.is_none() && config.storage.is_empty() {
        config.storage.push(Storage {
            name: "default".into(),
            path: Path::new(DEFAULT_DIR).join("repositories"),
        });
        if config.socket_path.is_none() && config.listen_addr.is_none() {
            config.socket_path = Some(Path::new(DEFAULT_DIR).join("gitrpc.sock"));
        }
    }
    if config.socket_path.is_none() && config.listen_addr.is_none() {
        return Err(
            "nothing to listen on: set socket_path/--socket or listen_addr/--listen".into(),
        );
    }
    config.validate()?;
    Ok(config)
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GITRPC_LOG")
        .unwrap_or_else(|_| EnvFilter::new(&config.logging.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.logging.format == "json" {
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

async fn serve(config: Config) -> Result<(), String> {
    let grace = Duration::from_secs(config.graceful_restart_timeout);
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
        e = server.failed() => Err(e),
    }
}

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(msg) => {
            let help = msg.starts_with("usage:") || msg.starts_with("gitrpcd ");
            eprintln!("{msg}");
            return if help {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
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

    fn parse(args: &[&str]) -> Result<Config, String> {
        parse_args(args.iter().map(|s| s.to_string()))
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
        assert!(c.socket_path.unwrap().ends_with("gitrpc.sock"));
        assert!(parse(&["--storage", "nopath"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(
            parse(&["--storage", "a=/a"]).is_err(),
            "storage but nowhere to listen"
        );
    }
}
