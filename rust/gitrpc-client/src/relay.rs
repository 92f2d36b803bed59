//! An SSH session relayed onto the SSHService RPCs, shared by `gitrpc-ssh` (the
//! `GIT_SSH_COMMAND` stand-in) and `gitrpc-shell` (sshd's forced command): this process's
//! stdin goes to git, git's stdout and stderr come back to ours, and git's exit status is
//! returned. No deadline: a clone or push takes as long as it takes.
//!
//! Fetches use `SSHUploadPackWithSidechannel` over a backchannel connection, as gitlab-shell
//! does, when the server offers it: if that connection fails, or the call fails before
//! anything of stdin was read without a verdict on the request (the connection broke:
//! `UNAVAILABLE`, `CANCELLED`, `UNKNOWN`; `UNIMPLEMENTED`; `FAILED_PRECONDITION`, no
//! backchannel), the streaming `SSHUploadPack` is used instead: a server without the listener
//! mux closes a connection that starts with `backchannel`. [`Session::sidechannel`] `false`
//! forces the streaming RPC.
//!
//! The caller's [`Identity`] goes with every call as metadata (what rate limits key on), and
//! a push carries it in `SSHReceivePackRequest`'s `gl_id`, `gl_username`, `gl_repository`
//! (what hooks see).

mod sidechannel;
mod stdout;

use std::io::Write;

use futures::StreamExt;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use gitrpc_proto::identity::Identity;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use crate::sshcmd::Action;
use crate::Options;

/// One SSH session to relay.
#[derive(Clone, Debug)]
pub struct Session {
    /// Server address(es), as [`crate::Client::connect`] takes them.
    pub address: String,
    /// Token, TLS; the deadline is ignored (sessions have none).
    pub options: Options,
    pub action: Action,
    pub repository: Repository,
    /// `GIT_PROTOCOL` as git sent it; only its `version=N` is passed on ([`git_protocol`]).
    pub git_protocol: String,
    pub identity: Identity,
    /// Fetch over a sidechannel when the server offers one.
    pub sidechannel: bool,
    /// Cap on stdout bytes per second (simulates a slow link; benchmarks).
    pub limit_rate: Option<u64>,
}

/// The `version=N` element of a `GIT_PROTOCOL` value (git may send a colon-separated list);
/// empty if there is none we pass on. The server accepts `version=1` and `version=2` only.
pub fn git_protocol(value: &str) -> String {
    value
        .split(':')
        .find(|p| *p == "version=2" || *p == "version=1")
        .unwrap_or_default()
        .to_string()
}

/// Relay the session on this process's stdio; git's exit status. An error is a gRPC failure
/// before or instead of an exit status (the repository is missing, the server refused or
/// could not be reached).
pub async fn run(session: &Session) -> Result<i32, Status> {
    let opts = Options {
        // A clone or push takes as long as it takes: git gives up on a dead peer itself.
        timeout: None,
        ..session.options.clone()
    };
    let repository = Some(session.repository.clone());
    let git_protocol = git_protocol(&session.git_protocol);
    if session.action == Action::UploadPack && session.sidechannel {
        let request = SshUploadPackWithSidechannelRequest {
            repository: repository.clone(),
            git_protocol: git_protocol.clone(),
            ..Default::default()
        };
        if let Some(done) = sidechannel::upload_pack(session, &opts, request).await {
            return done;
        }
    }
    let transport = crate::transport::connect(&session.address, &opts)
        .await
        .map_err(Status::from)?;
    let mut client = SshServiceClient::new(transport)
        .max_decoding_message_size(gitrpc_proto::MAX_MESSAGE)
        .max_encoding_message_size(gitrpc_proto::MAX_MESSAGE);
    let id = &session.identity;
    let rate = session.limit_rate;
    match session.action {
        Action::UploadPack => {
            let first = SshUploadPackRequest {
                repository,
                git_protocol,
                ..Default::default()
            };
            let input = stdin_stream(first, |stdin| SshUploadPackRequest {
                stdin,
                ..Default::default()
            });
            let responses = client.ssh_upload_pack(with_identity(input, id)).await?;
            relay(responses.into_inner(), rate).await
        }
        Action::ReceivePack => {
            let first = SshReceivePackRequest {
                repository,
                git_protocol,
                gl_id: id.gl_id.clone(),
                gl_username: id.username.clone(),
                gl_repository: id.gl_repository.clone(),
                ..Default::default()
            };
            let input = stdin_stream(first, |stdin| SshReceivePackRequest {
                stdin,
                ..Default::default()
            });
            let responses = client.ssh_receive_pack(with_identity(input, id)).await?;
            relay(responses.into_inner(), rate).await
        }
        Action::UploadArchive => {
            let first = SshUploadArchiveRequest {
                repository,
                ..Default::default()
            };
            let input = stdin_stream(first, |stdin| SshUploadArchiveRequest {
                stdin,
                ..Default::default()
            });
            let responses = client.ssh_upload_archive(with_identity(input, id)).await?;
            relay(responses.into_inner(), rate).await
        }
    }
}

/// A request carrying the identity's metadata.
fn with_identity<T>(message: T, identity: &Identity) -> Request<T> {
    let mut req = Request::new(message);
    identity.apply(req.metadata_mut());
    req
}

/// What each SSH RPC's responses have in common.
trait Output {
    fn parts(self) -> (Vec<u8>, Vec<u8>, Option<i32>);
}

macro_rules! output {
    ($t:ty) => {
        impl Output for $t {
            fn parts(self) -> (Vec<u8>, Vec<u8>, Option<i32>) {
                (self.stdout, self.stderr, self.exit_status.map(|e| e.value))
            }
        }
    };
}
output!(SshUploadPackResponse);
output!(SshReceivePackResponse);
output!(SshUploadArchiveResponse);

/// Read our stdin into a channel of chunks, after the `first` message.
fn stdin_stream<T: Send + 'static>(first: T, wrap: fn(Vec<u8>) -> T) -> ReceiverStream<T> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        if tx.send(first).await.is_err() {
            return;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(wrap(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Relay responses to stdout/stderr; returns git's exit status.
async fn relay<T: Output>(
    mut responses: tonic::Streaming<T>,
    limit_rate: Option<u64>,
) -> Result<i32, Status> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let mut exit = None;
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    while let Some(msg) = responses.next().await {
        let (out, err, code) = msg?.parts();
        if !out.is_empty() {
            if stdout.write_all(&out).and_then(|_| stdout.flush()).is_err() {
                // git hung up; dropping the stream cancels the call on the server.
                return Ok(128);
            }
            sent += out.len() as u64;
            if let Some(rate) = limit_rate.filter(|r| *r > 0) {
                let due = std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        if !err.is_empty() {
            let _ = stderr.write_all(&err);
        }
        if code.is_some() {
            exit = code;
        }
    }
    Ok(exit.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_version_of_git_protocol_is_passed_on() {
        assert_eq!(git_protocol("version=2"), "version=2");
        assert_eq!(git_protocol("version=2:object-format=sha256"), "version=2");
        assert_eq!(git_protocol("x=y:version=1"), "version=1");
        assert_eq!(git_protocol("version=3"), "");
        assert_eq!(git_protocol(""), "");
    }
}
