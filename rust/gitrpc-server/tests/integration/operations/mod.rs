//! OperationService against git's own view of the result: a real server (with hooks given
//! in the config or in code) on a temp socket, repositories made with the git CLI, answers
//! checked with `git cat-file`, `git log`, `git ls-tree`, `git for-each-ref`.

mod branches;
mod client;
mod commit_files;
mod commit_files_input;
mod hooks;
mod merge;
mod pick;
mod quarantine;
mod races;
mod sha256;
mod squash_rebase;
mod tags;

use std::path::{Path, PathBuf};

use gitrpc_proto::gitaly::operation_service_client::OperationServiceClient;
use gitrpc_proto::gitaly::user_commit_files_action::UserCommitFilesActionPayload as ActionPayload;
use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType;
use gitrpc_proto::gitaly::user_commit_files_request::UserCommitFilesRequestPayload as Payload;
use gitrpc_proto::gitaly::*;
use gitrpc_server::config::{Config, Storage};
use gitrpc_server::{Hooks, Serving};
use prost::Message;
use tonic::transport::Channel;
use tonic::Status;

use crate::common::{git, git_output, Fixture, STORAGE};

/// A server with hooks (config and code) on a temp socket.
pub struct Ops {
    /// Holds the storage and the socket.
    pub _dir: tempfile::TempDir,
    pub storage: PathBuf,
    pub serving: Option<Serving>,
    pub channel: Channel,
}

impl Ops {
    pub async fn start() -> Ops {
        Ops::with(|_| {}, Hooks::default()).await
    }

    pub async fn with(edit: impl FnOnce(&mut Config), hooks: Hooks) -> Ops {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let mut config = Config {
            socket_path: Some(socket.clone()),
            storage: vec![Storage {
                name: STORAGE.into(),
                path: dir.path().join("storage"),
            }],
            ..Default::default()
        };
        edit(&mut config);
        let serving = Serving::start_with_hooks(config, hooks).await.unwrap();
        let channel = gitrpc_client::connect(
            &format!("unix:{}", socket.display()),
            &gitrpc_client::Options::default(),
        )
        .await
        .unwrap();
        Ops {
            storage: dir.path().join("storage").canonicalize().unwrap(),
            _dir: dir,
            serving: Some(serving),
            channel,
        }
    }

    pub fn ops(&self) -> OperationServiceClient<Channel> {
        OperationServiceClient::new(self.channel.clone())
    }

    pub fn client(&self) -> gitrpc_client::Client {
        gitrpc_client::Client::from_service(self.channel.clone(), None)
    }

    pub fn repo(&self, rel: &str) -> Repository {
        Repository {
            storage_name: STORAGE.into(),
            relative_path: rel.into(),
            gl_repository: format!("project-{}", rel.len()),
            gl_project_path: format!("group/{rel}"),
            ..Default::default()
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.storage.join(rel)
    }

    /// The fixture repository of `common` (main: c1..c4, feature, tags v1.0 and light).
    pub fn fixture(&self, rel: &str) -> Fixture {
        Fixture::create(&self.path(rel), "sha1")
    }

    /// An empty bare repository.
    pub fn empty(&self, rel: &str, format: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        git(
            &p,
            &[
                "init",
                "--bare",
                "-q",
                "-b",
                "main",
                &format!("--object-format={format}"),
            ],
        );
        p
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        if let Some(s) = self.serving.take() {
            // Stopped in the background: dropping it aborts whatever still runs.
            drop(s);
        }
    }
}

pub fn user() -> User {
    User {
        gl_id: "user-123".into(),
        gl_username: "janedoe".into(),
        name: b"Jane Doe".to_vec(),
        email: b"janedoe@gitlab.com".to_vec(),
        timezone: String::new(),
    }
}

/// The answer of a call that must succeed.
pub fn ok<T>(r: Result<tonic::Response<T>, Status>) -> T {
    r.unwrap().into_inner()
}

pub fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// git in a bare repository; trimmed stdout.
pub fn g(repo: &Path, args: &[&str]) -> String {
    git(repo, args).trim_end_matches('\n').to_string()
}

/// Does git have this object in the repository?
pub fn has_object(repo: &Path, oid: &str) -> bool {
    git_output(repo, &["cat-file", "-e", oid]).status.success()
}

/// `%H %P|%an|%ae|%at %ad|%cn|%ce|%ct|%B` of one commit (dates in their recorded zone).
pub fn show(repo: &Path, rev: &str) -> String {
    g(
        repo,
        &[
            "log",
            "-1",
            "--date=format:%z",
            "--format=%P|%an|%ae|%at %ad|%cn|%ce|%ct %cd|%B",
            rev,
        ],
    )
}

/// Refs, object counts and quarantine directories: "nothing written" compares two of them.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    refs: String,
    objects: String,
    quarantines: Vec<String>,
}

pub fn snapshot(repo: &Path) -> Snapshot {
    let objects = g(repo, &["count-objects", "-v"])
        .lines()
        .filter(|l| l.starts_with("count:") || l.starts_with("in-pack:"))
        .collect::<Vec<_>>()
        .join(" ");
    Snapshot {
        refs: g(repo, &["for-each-ref", "--format=%(objectname) %(refname)"]),
        objects,
        quarantines: quarantines(repo),
    }
}

/// `objects/tmp_objdir-*` left in a repository.
pub fn quarantines(repo: &Path) -> Vec<String> {
    std::fs::read_dir(repo.join("objects"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp_objdir-"))
        .collect()
}

/// The `gitaly.<name>` detail of a status.
pub fn detail<M: Message + Default>(s: &Status, name: &str) -> Option<M> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<prost_types::Any>,
    }
    let st = RpcStatus::decode(s.details()).ok()?;
    assert_eq!(st.code, s.code() as i32, "detail's code");
    let any = st
        .details
        .iter()
        .find(|a| a.type_url == format!("type.googleapis.com/gitaly.{name}"))?;
    M::decode(any.value.as_slice()).ok()
}

/// A file action: header and content.
pub fn action(
    kind: ActionType,
    path: &str,
    content: &[u8],
) -> (UserCommitFilesActionHeader, Vec<u8>) {
    (
        UserCommitFilesActionHeader {
            action: kind as i32,
            file_path: path.as_bytes().to_vec(),
            ..Default::default()
        },
        content.to_vec(),
    )
}

pub fn header(repo: Repository, branch: &str, message: &str) -> UserCommitFilesRequestHeader {
    UserCommitFilesRequestHeader {
        repository: Some(repo),
        user: Some(user()),
        branch_name: branch.as_bytes().to_vec(),
        commit_message: message.as_bytes().to_vec(),
        timestamp: ts(1_700_000_000),
        ..Default::default()
    }
}

/// UserCommitFiles: the header, then each action's header and its content in pieces.
pub async fn commit_files(
    client: &mut OperationServiceClient<Channel>,
    header: UserCommitFilesRequestHeader,
    actions: Vec<(UserCommitFilesActionHeader, Vec<u8>)>,
) -> Result<UserCommitFilesResponse, Status> {
    let mut msgs = vec![UserCommitFilesRequest {
        user_commit_files_request_payload: Some(Payload::Header(header)),
    }];
    let wrap = |p: ActionPayload| UserCommitFilesRequest {
        user_commit_files_request_payload: Some(Payload::Action(UserCommitFilesAction {
            user_commit_files_action_payload: Some(p),
        })),
    };
    for (h, content) in actions {
        msgs.push(wrap(ActionPayload::Header(h)));
        for piece in content.chunks(7) {
            msgs.push(wrap(ActionPayload::Content(piece.to_vec())));
        }
    }
    client
        .user_commit_files(futures::stream::iter(msgs))
        .await
        .map(|r| r.into_inner())
}

/// The commit a branch update names, checked against git.
pub fn branch_update(r: &UserCommitFilesResponse) -> &OperationBranchUpdate {
    r.branch_update.as_ref().expect("branch update")
}

/// `mode type oid\tpath` lines of a commit's whole tree.
pub fn ls_tree(repo: &Path, rev: &str) -> String {
    g(repo, &["ls-tree", "-r", rev])
}

/// A blob's content at `rev:path`.
pub fn blob(repo: &Path, rev: &str, path: &str) -> Vec<u8> {
    git_output(repo, &["cat-file", "blob", &format!("{rev}:{path}")]).stdout
}

/// A hook executable in `dir` named `name` with a /bin/sh body.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}
