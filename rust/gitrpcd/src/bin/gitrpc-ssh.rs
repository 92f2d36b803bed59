//! `gitrpc-ssh`: a `GIT_SSH_COMMAND` that talks to gitrpcd instead of sshd.
//!
//! ```text
//! GIT_SSH_COMMAND="gitrpc-ssh --address unix:/path/to.sock" git clone ssh://host/STORAGE/group/repo.git
//! ```
//! git runs it as `gitrpc-ssh [--address A] [-p PORT] [-o OPT] [-4|-6] [user@]host COMMAND`
//! where COMMAND is `git-upload-pack '/STORAGE/path'` (or receive-pack / upload-archive).
//! The first path component names the storage. stdin/stdout are relayed through the
//! SSHService RPCs, stderr is relayed, and the exit status is git's. `GIT_PROTOCOL` from the
//! environment is forwarded, so `-c protocol.version=2 -c ssh.variant=ssh` gives v2;
//! `GL_ID`, `GL_USERNAME` and `GL_REPOSITORY` become the push's identity (its hooks see them).
//!
//! Fetches use `SSHUploadPackWithSidechannel` over a backchannel connection when the server
//! offers it, else the streaming `SSHUploadPack`; `--no-sidechannel` forces the latter. The
//! relay itself is `gitrpc_client::relay`, shared with `gitrpc-shell`.

use std::process::ExitCode;

use gitrpc_client::relay::{self, Session};
use gitrpc_client::sshcmd::{self, Action};
use gitrpc_proto::gitaly::Repository;
use gitrpc_proto::identity::Identity;

const USAGE: &str =
    "usage: gitrpc-ssh [--address ADDR[,ADDR...]] [--token-file PATH] [--tls-ca-file PEM]
                  [--limit-rate BYTES_PER_SEC] [--no-sidechannel]
                  [-p PORT] [-o OPTION] [-4|-6] HOST COMMAND
Use as GIT_SSH_COMMAND=\"gitrpc-ssh --address unix:/path/to.sock\". The address can also come
from $GITRPC_ADDRESS (unix:/path, tcp://host:port, tls://host:port; several: comma-separated).
The server's [auth] token comes from --token-file or $GITRPC_TOKEN.";

#[derive(Debug, PartialEq)]
struct Invocation {
    address: String,
    /// File holding the server's auth token (else `$GITRPC_TOKEN`).
    token_file: Option<String>,
    /// Extra CA certificates (PEM) for `tls://` addresses.
    tls_ca_file: Option<String>,
    /// `--limit-rate BYTES`: cap on stdout bytes per second (simulates a slow link).
    limit_rate: Option<u64>,
    /// Fetch through `SSHUploadPackWithSidechannel` if the server offers it (not with
    /// `--no-sidechannel`).
    sidechannel: bool,
    action: Action,
    storage: String,
    relative_path: String,
}

fn parse(args: &[String], env_address: Option<String>) -> Result<Invocation, String> {
    let mut address = env_address;
    let mut limit_rate = None;
    let mut token_file = None;
    let mut tls_ca_file = None;
    let mut sidechannel = true;
    let mut rest: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "--address" => {
                i += 1;
                address = Some(args.get(i).ok_or("--address needs a value")?.clone());
            }
            _ if a.starts_with("--address=") => address = Some(a["--address=".len()..].to_string()),
            "--token-file" => {
                i += 1;
                token_file = Some(args.get(i).ok_or("--token-file needs a value")?.clone());
            }
            "--tls-ca-file" => {
                i += 1;
                tls_ca_file = Some(args.get(i).ok_or("--tls-ca-file needs a value")?.clone());
            }
            "--no-sidechannel" => sidechannel = false,
            "--limit-rate" => {
                i += 1;
                let v = args.get(i).ok_or("--limit-rate needs a value")?;
                limit_rate = Some(v.parse().map_err(|_| format!("bad --limit-rate {v:?}"))?);
            }
            // ssh options git may pass: -p PORT, -o OPTION, -l USER, -4, -6.
            "-p" | "-o" | "-l" | "-i" | "-F" => i += 1,
            "-4" | "-6" | "-T" | "-x" | "-q" | "-v" => {}
            "-h" | "--help" => return Err(USAGE.into()),
            _ if a.starts_with('-') && rest.is_empty() && a.len() > 2 && !a.starts_with("--") => {
                // -oSendEnv=GIT_PROTOCOL, -p22 (glued values)
            }
            _ => rest.push(a),
        }
        i += 1;
    }
    let address = address.ok_or(format!(
        "no server address: pass --address or set GITRPC_ADDRESS\n{USAGE}"
    ))?;
    let (_host, command) = match rest.as_slice() {
        [host, cmd @ ..] if !cmd.is_empty() => (host, cmd.join(" ")),
        _ => return Err(format!("expected HOST COMMAND\n{USAGE}")),
    };
    let command = sshcmd::parse(&command).map_err(|e| format!("{e}: {command:?}"))?;
    let path = command.path.trim_start_matches('/');
    let (storage, relative_path) = path
        .split_once('/')
        .filter(|(s, r)| !s.is_empty() && !r.is_empty())
        .ok_or_else(|| format!("path must be STORAGE/relative/path, got {path:?}"))?;
    Ok(Invocation {
        address,
        token_file,
        tls_ca_file,
        limit_rate,
        sidechannel,
        action: command.action,
        storage: storage.to_string(),
        relative_path: relative_path.to_string(),
    })
}

async fn run(inv: Invocation) -> Result<i32, String> {
    let token = match &inv.token_file {
        Some(path) => Some(
            gitrpc_proto::auth::read_secret_file(path.as_ref())
                .map_err(|e| format!("--token-file {path}: {e}"))?,
        ),
        None => std::env::var("GITRPC_TOKEN").ok(),
    };
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let session = Session {
        address: inv.address.clone(),
        options: gitrpc_client::Options {
            token,
            tls_ca_file: inv.tls_ca_file.as_ref().map(Into::into),
            ..Default::default()
        },
        action: inv.action,
        repository: Repository {
            storage_name: inv.storage.clone(),
            relative_path: inv.relative_path.clone(),
            ..Default::default()
        },
        git_protocol: std::env::var("GIT_PROTOCOL").unwrap_or_default(),
        // Who pushes, for the server's hooks (what gitlab-shell passes on).
        identity: Identity {
            gl_id: env("GL_ID"),
            username: env("GL_USERNAME"),
            gl_repository: env("GL_REPOSITORY"),
            ..Default::default()
        },
        sidechannel: inv.sidechannel,
        limit_rate: inv.limit_rate,
    };
    relay::run(&session)
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("-G") {
        // `ssh -G` probe (ssh.variant=auto): we behave like OpenSSH.
        return ExitCode::SUCCESS;
    }
    let inv = match parse(&args, std::env::var("GITRPC_ADDRESS").ok()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("gitrpc-ssh: {e}");
            return ExitCode::from(255);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match rt.block_on(run(inv)) {
        Ok(code) => code.clamp(0, 255),
        Err(e) => {
            eprintln!("gitrpc-ssh: {e}");
            128
        }
    };
    // Don't wait for the stdin reader (a blocking read git may never end): exit now.
    rt.shutdown_background();
    ExitCode::from(code as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, String> {
        parse(
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            None,
        )
    }

    #[test]
    fn parses_git_invocations() {
        let i = p(&[
            "--address",
            "unix:/s",
            "--limit-rate",
            "1000",
            "-o",
            "SendEnv=GIT_PROTOCOL",
            "-p",
            "22",
            "git@host",
            "git-upload-pack '/default/group/r.git'",
        ])
        .unwrap();
        assert_eq!(i.address, "unix:/s");
        assert_eq!(i.limit_rate, Some(1000));
        assert_eq!(i.action, Action::UploadPack);
        assert_eq!(
            (i.storage.as_str(), i.relative_path.as_str()),
            ("default", "group/r.git")
        );
        let i = p(&[
            "--address=unix:/s",
            "-4",
            "host",
            "git-receive-pack 'default/it'\\''s.git'",
        ])
        .unwrap();
        assert_eq!(i.relative_path, "it's.git");
        assert!(p(&["host", "git-upload-pack 'x'"]).is_err(), "no address");
        assert!(p(&[
            "--address",
            "unix:/s",
            "host",
            "git-upload-pack '/onlystorage'"
        ])
        .is_err());
        assert!(p(&["--address", "unix:/s", "host"]).is_err());
    }
}
