//! DiffService's step-11 reads against git's own answers: CommitDiff (every limit, chunking,
//! whitespace modes), FindChangedPaths, GetPatchID; bad input refused before git starts.

mod changed_paths;
mod client;
mod commit_diff;
mod patch_id;

use std::os::unix::fs::{symlink, PermissionsExt};

use gitrpc_proto::gitaly::diff_service_client::DiffServiceClient;

use crate::commit_history::{git_cmd, run, Work};
use crate::common::TestServer;

pub type Client = DiffServiceClient<tonic::transport::Channel>;

pub fn client(s: &TestServer) -> Client {
    DiffServiceClient::new(s.channel.clone())
}

/// The commits of [`rich`], in order.
pub struct Rich {
    pub w: Work,
    /// root, rename+edit, binary, type change and gitlink, non-UTF-8 and odd names, mode
    /// and whitespace-only change, merge, empty tree.
    pub commits: Vec<String>,
}

/// A repository with every kind of change a diff shows.
pub fn rich(s: &TestServer, rel: &str, format: &str) -> Rich {
    let w = Work::new(s, rel, format);
    let mut commits = Vec::new();
    let body: String = (0..40)
        .map(|i| format!("line {i} of the story\n"))
        .collect();
    w.write("story.txt", &body);
    w.write("dir/keep.txt", "keep\n");
    w.write("ws.txt", "a b  c\n");
    w.write("mode.sh", "echo hi\n");
    w.write("empty", "");
    commits.push(w.commit("root"));
    // rename with an edit, and a pure rename
    std::fs::remove_file(w.work_dir().join("story.txt")).unwrap();
    w.write("tale.txt", body.replace("line 3 ", "LINE 3 "));
    std::fs::rename(w.work_dir().join("empty"), w.work_dir().join("empty2")).unwrap();
    commits.push(w.commit("renames"));
    // binary
    w.write("blob.bin", b"\x00\x01\x02binary\x00".as_slice());
    commits.push(w.commit("binary"));
    // symlink then a type change, a gitlink
    symlink("tale.txt", w.work_dir().join("link")).unwrap();
    commits.push(w.commit("symlink"));
    std::fs::remove_file(w.work_dir().join("link")).unwrap();
    w.write("link", "now a file\n");
    w.write("blob.bin", b"\x00\x01\x03binary changed\x00".as_slice());
    // a nested repository is added as a gitlink
    let sub = w.work_dir().join("sub");
    std::fs::create_dir(&sub).unwrap();
    run(git_cmd(&sub).args(["init", "--quiet"]));
    run(git_cmd(&sub).args(["commit", "--quiet", "--allow-empty", "-m", "sub"]));
    commits.push(w.commit("type change, gitlink"));
    // non-UTF-8 and odd names
    w.write(b"caf\xe9.txt", "caf\n");
    w.write("a b.txt", "space\n");
    w.write("tab\there.txt", "tab\n");
    w.write("-dash", "dash\n");
    w.write("quote\".txt", "quote\n");
    commits.push(w.commit("odd names"));
    // a mode change and a whitespace-only change
    let mode = w.work_dir().join("mode.sh");
    std::fs::set_permissions(&mode, std::fs::Permissions::from_mode(0o755)).unwrap();
    w.write("ws.txt", "a  b c\n");
    w.write("dir/keep.txt", "keep\nmore\n");
    commits.push(w.commit("mode and whitespace"));
    // a merge
    w.git(&["checkout", "--quiet", "-b", "side", "HEAD~1"]);
    w.write("side.txt", "side\n");
    w.commit("side");
    w.git(&["checkout", "--quiet", "main"]);
    commits.push(w.merge("side", "merge side", &[]));
    Rich { w, commits }
}
