//! `gitrpc-shell`: the program OpenSSH's sshd runs for a git user's key, relaying the git
//! session to gitrpcd after asking the application whether the user may.
//!
//! ```text
//! # authorized_keys of the git user (one line per key):
//! command="/usr/local/bin/gitrpc-shell --config /etc/gitrpc/shell.toml key-42",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty ssh-ed25519 AAAA…
//! # or, keys served by the application (sshd_config):
//! AuthorizedKeysCommand /usr/local/bin/gitrpc-shell --config /etc/gitrpc/shell.toml authorized-keys %u %t %k
//! AuthorizedKeysCommandUser git
//! ```
//!
//! A session: `SSH_ORIGINAL_COMMAND` is parsed (`gitrpc_client::sshcmd`: upload-pack,
//! receive-pack, upload-archive with one path; anything else, an interactive login included,
//! is refused), the path mapped to a storage and relative path (`default_storage`,
//! `[storage_prefixes]`; `gitrpc_client::paths`), and the access check asked
//! (`access_command` or `access_url`, see `access.rs`) before any RPC. Then the session is
//! relayed (`gitrpc_client::relay`, sidechannel fetches as gitlab-shell's) with
//! `GIT_PROTOCOL` (protocol v2 needs `AcceptEnv GIT_PROTOCOL` in sshd_config), the user's
//! identity (`gl_id` from the check, else the key id; username; `gl_repository`) and the
//! client's address (from `SSH_CONNECTION`). git's exit status is ours; a refusal prints the
//! application's message in gitlab-shell's `remote:` frame and exits 1.
//!
//! Config: `--config FILE` or `$GITRPC_SHELL_CONFIG` (see `config.rs` and the README).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gitrpc_client::relay::{self, Session};
use gitrpc_client::sshcmd::{self, CommandError};
use gitrpc_client::Identity;
use gitrpc_proto::gitaly::Repository;
use tonic::Code;

#[path = "gitrpc-shell/access.rs"]
mod access;
#[path = "gitrpc-shell/config.rs"]
mod config;
#[path = "gitrpc-shell/http.rs"]
mod http;
#[path = "gitrpc-shell/keys.rs"]
mod keys;

use config::Config;

const USAGE: &str = "usage: gitrpc-shell [--config FILE] KEY_ID
       gitrpc-shell [--config FILE] authorized-keys USER TYPE KEY
KEY_ID: [A-Za-z0-9._-]+ (what the application calls the key, e.g. key-42).
The config comes from --config or $GITRPC_SHELL_CONFIG.";

/// gitlab-shell's rule for the id in a key line.
pub fn valid_key_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Session {
        key_id: String,
    },
    AuthorizedKeys {
        user: String,
        kind: String,
        key: String,
    },
}

fn parse_args(args: &[String]) -> Result<(Option<PathBuf>, Mode), String> {
    let mut config = None;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--config" => {
                i += 1;
                config = Some(PathBuf::from(args.get(i).ok_or("--config needs a value")?));
            }
            a if a.starts_with("--config=") => config = Some(PathBuf::from(&a[9..])),
            "-h" | "--help" => return Err(USAGE.into()),
            a => rest.push(a.to_string()),
        }
        i += 1;
    }
    let mode = match rest.as_slice() {
        [mode, user, kind, key] if mode == "authorized-keys" => Mode::AuthorizedKeys {
            user: user.clone(),
            kind: kind.clone(),
            key: key.clone(),
        },
        [key_id] if valid_key_id(key_id) => Mode::Session {
            key_id: key_id.clone(),
        },
        [key_id] => return Err(format!("invalid key id {key_id:?}\n{USAGE}")),
        _ => return Err(USAGE.into()),
    };
    Ok((config, mode))
}

/// A refusal or failure, framed as gitlab-shell frames them.
fn warn(message: &str) {
    let divider = "=".repeat(72);
    let mut out = format!("remote: \nremote: {divider}\nremote: \n");
    for line in message.lines() {
        out.push_str(&format!("remote: {line}\n"));
    }
    out.push_str(&format!("remote: \nremote: {divider}\nremote: \n"));
    eprint!("{out}");
}

/// An informational message from the application.
fn info(message: &str) {
    let mut out = String::from("remote: \n");
    for line in message.lines() {
        out.push_str(&format!("remote: {line}\n"));
    }
    out.push_str("remote: \n");
    eprint!("{out}");
}

/// What the user is told about an RPC that failed instead of giving an exit status.
fn explain(s: &tonic::Status) -> String {
    match s.code() {
        Code::ResourceExhausted => {
            format!("gitrpc is busy, please try again later ({})", s.message())
        }
        Code::Unavailable => "the git server is not available, please try again later".into(),
        Code::NotFound | Code::InvalidArgument => "repository not found".into(),
        Code::Unauthenticated | Code::PermissionDenied => {
            "the git server refused gitrpc-shell's credentials (token_file)".into()
        }
        _ => format!("the git server failed: {}", s.message()),
    }
}

async fn session(config: &Config, key_id: &str) -> u8 {
    let Ok(connection) = std::env::var("SSH_CONNECTION") else {
        warn("gitrpc-shell: only SSH allowed");
        return 1;
    };
    let remote_ip = connection
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let original = std::env::var("SSH_ORIGINAL_COMMAND").unwrap_or_default();
    let command = match sshcmd::parse(&original) {
        Ok(c) => c,
        Err(CommandError::Interactive) => {
            eprintln!(
                "Hi {key_id}! You've successfully authenticated, but gitrpc does not provide shell access."
            );
            return 1;
        }
        Err(e) => {
            warn(&e.to_string());
            return 1;
        }
    };
    let Ok((storage, relative_path)) = config.storages().locate(&command.path) else {
        warn("repository not found");
        return 1;
    };
    let git_protocol = relay::git_protocol(&std::env::var("GIT_PROTOCOL").unwrap_or_default());
    let ask = access::Ask {
        key_id,
        action: command.action,
        storage: &storage,
        relative_path: &relative_path,
        project: &command.path,
        remote_ip: &remote_ip,
        git_protocol: &git_protocol,
    };
    let grant = match access::check(config, &ask).await {
        Ok(g) => g,
        Err(message) => {
            warn(&message);
            return 1;
        }
    };
    for m in &grant.messages {
        info(m);
    }
    let (storage, relative_path) = grant.repository.unwrap_or((storage, relative_path));
    let options = match config.client_options() {
        Ok(o) => o,
        Err(e) => {
            warn(&format!("gitrpc-shell: {e}"));
            return 1;
        }
    };
    let session = Session {
        address: config.address.clone(),
        options,
        action: command.action,
        repository: Repository {
            storage_name: storage,
            relative_path,
            gl_repository: grant.gl_repository.clone(),
            ..Default::default()
        },
        git_protocol,
        identity: Identity {
            gl_id: if grant.gl_id.is_empty() {
                key_id.to_string()
            } else {
                grant.gl_id
            },
            username: grant.username,
            gl_repository: grant.gl_repository,
            remote_ip,
            key_id: key_id.to_string(),
        },
        sidechannel: config.sidechannel,
        limit_rate: None,
    };
    match relay::run(&session).await {
        Ok(code) => code.clamp(0, 255) as u8,
        Err(s) => {
            warn(&explain(&s));
            1
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config_path, mode) = match parse_args(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("gitrpc-shell: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(config_path) = config_path.or_else(|| {
        std::env::var_os("GITRPC_SHELL_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }) else {
        eprintln!("gitrpc-shell: no config (use --config or GITRPC_SHELL_CONFIG)");
        return ExitCode::from(1);
    };
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            // For the operator (sshd's log for authorized-keys; the user otherwise).
            eprintln!("gitrpc-shell: {e}");
            return ExitCode::from(1);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match mode {
        Mode::Session { key_id } => rt.block_on(session(&config, &key_id)),
        Mode::AuthorizedKeys { user, kind, key } => {
            rt.block_on(authorized_keys(&config, &config_path, &user, &kind, &key))
        }
    };
    // Don't wait for the stdin reader (a blocking read git may never end): exit now.
    rt.shutdown_background();
    ExitCode::from(code)
}

async fn authorized_keys(config: &Config, path: &Path, user: &str, kind: &str, key: &str) -> u8 {
    let exe = std::env::current_exe();
    let path = std::fs::canonicalize(path);
    let (Ok(exe), Ok(path)) = (exe, path) else {
        eprintln!(
            "gitrpc-shell: authorized-keys: can't resolve this program's or the config's path"
        );
        return 1;
    };
    match keys::lines(config, &path, &exe, user, kind, key).await {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("gitrpc-shell: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<(Option<PathBuf>, Mode), String> {
        parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        assert_eq!(
            p(&["--config", "/etc/s.toml", "key-42"]).unwrap(),
            (
                Some("/etc/s.toml".into()),
                Mode::Session {
                    key_id: "key-42".into()
                }
            )
        );
        assert_eq!(
            p(&[
                "--config=/c",
                "authorized-keys",
                "git",
                "ssh-ed25519",
                "AAAA"
            ])
            .unwrap()
            .1,
            Mode::AuthorizedKeys {
                user: "git".into(),
                kind: "ssh-ed25519".into(),
                key: "AAAA".into()
            }
        );
        assert_eq!(p(&["key-42"]).unwrap().0, None);
        assert!(p(&["key 42"]).is_err());
        assert!(p(&["key;42"]).is_err());
        assert!(p(&[]).is_err());
        assert!(p(&["a", "b"]).is_err());
        assert!(p(&["--config"]).is_err());
    }

    #[test]
    fn key_ids() {
        assert!(valid_key_id("key-42") && valid_key_id("username-a.b_c"));
        assert!(!valid_key_id("") && !valid_key_id("a/b") && !valid_key_id("a\"b"));
    }

    #[test]
    fn failures_users_see() {
        assert!(
            explain(&tonic::Status::resource_exhausted("rate limit reached"))
                .starts_with("gitrpc is busy")
        );
        assert_eq!(
            explain(&tonic::Status::not_found("repository not found: /x")),
            "repository not found"
        );
    }
}
