//! GetRawChanges against `git diff --raw`: every status, submodules, odd names, zero ids.

use gitrpc_proto::gitaly::get_raw_changes_response::raw_change::Operation;
use gitrpc_proto::gitaly::get_raw_changes_response::RawChange;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::client;
use crate::commit_history::{bad_repos, failure, stream, Work};
use crate::common::TestServer;

#[tokio::test]
async fn raw_changes_cover_every_status() {
    let s = TestServer::start().await;
    let w = Work::new(&s, "c.git", "sha1");
    let body: String = (0..50).map(|i| format!("line {i}\n")).collect();
    w.write("keep.txt", "keep\n");
    w.write("moved.txt", &body);
    w.write("gone.txt", "gone\n");
    w.write("edit.txt", "old\n");
    w.write("link", "was a file\n");
    let one = w.commit("one");
    std::fs::remove_file(w.work_dir().join("moved.txt")).unwrap();
    w.write("dir/renamed.txt", &body);
    std::fs::remove_file(w.work_dir().join("gone.txt")).unwrap();
    w.write("edit.txt", "new\n");
    std::fs::remove_file(w.work_dir().join("link")).unwrap();
    std::os::unix::fs::symlink("keep.txt", w.work_dir().join("link")).unwrap();
    w.write(b"caf\xe9.txt", "latin-1\n");
    let two = w.commit("two");
    // A submodule entry (gitlink) added by hand.
    w.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{one},sub"),
    ]);
    w.git(&["commit", "--quiet", "-m", "three"]);
    let three = w.rev("HEAD");
    let mut c = client(&s);
    let req = |from: &str, to: &str| GetRawChangesRequest {
        repository: Some(w.repo()),
        from_revision: from.into(),
        to_revision: to.into(),
    };
    let changes = |msgs: Vec<GetRawChangesResponse>| -> Vec<RawChange> {
        msgs.into_iter().flat_map(|m| m.raw_changes).collect()
    };
    let blob = |rev: &str| {
        let oid = w.rev(rev);
        let size: i64 = w.git(&["cat-file", "-s", &oid]).trim().parse().unwrap();
        (oid, size)
    };
    let got = changes(
        stream(c.get_raw_changes(req(&one, &two)).await)
            .await
            .unwrap(),
    );
    let ch = |op: Operation, new: &[u8], old: &[u8], modes: (i32, i32), rev: &str| {
        let (blob_id, size) = blob(rev);
        RawChange {
            blob_id,
            size,
            operation: op as i32,
            old_mode: modes.0,
            new_mode: modes.1,
            new_path_bytes: new.to_vec(),
            old_path_bytes: old.to_vec(),
        }
    };
    let want = vec![
        ch(
            Operation::Renamed,
            b"dir/renamed.txt",
            b"moved.txt",
            (0o100644, 0o100644),
            &format!("{two}:dir/renamed.txt"),
        ),
        ch(
            Operation::Modified,
            b"edit.txt",
            b"edit.txt",
            (0o100644, 0o100644),
            &format!("{two}:edit.txt"),
        ),
        ch(
            Operation::Deleted,
            b"",
            b"gone.txt",
            (0o100644, 0),
            &format!("{one}:gone.txt"),
        ),
        ch(
            Operation::TypeChanged,
            b"link",
            b"link",
            (0o100644, 0o120000),
            &format!("{two}:link"),
        ),
    ];
    // The non-UTF-8 name (no rev-parse by name here): its blob by size.
    assert_eq!(got.len(), 5, "{got:?}");
    for w in &want {
        assert!(got.contains(w), "missing {w:?} in {got:?}");
    }
    let added = got
        .iter()
        .find(|c| c.operation == Operation::Added as i32)
        .unwrap();
    assert_eq!(added.new_path_bytes, b"caf\xe9.txt");
    assert_eq!(added.size, 8);
    // A submodule: no blob.
    let got = changes(
        stream(c.get_raw_changes(req(&two, &three)).await)
            .await
            .unwrap(),
    );
    assert_eq!(
        got,
        vec![RawChange {
            blob_id: String::new(),
            size: 0,
            operation: Operation::Added as i32,
            old_mode: 0,
            new_mode: 0o160000,
            new_path_bytes: b"sub".to_vec(),
            old_path_bytes: Vec::new(),
        }]
    );
    // From the zero id: everything added; to the zero id: nothing.
    let zero = "0".repeat(40);
    let got = changes(
        stream(c.get_raw_changes(req(&zero, &one)).await)
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|c| c.operation == Operation::Added as i32));
    assert!(stream(c.get_raw_changes(req(&one, &zero)).await)
        .await
        .unwrap()
        .is_empty());
    for (r, msg) in [
        (req("nope", &two), "invalid 'from' revision: \"nope\""),
        (req(&one, ""), "invalid 'to' revision: \"\""),
        (req(&one, "a\nb"), "invalid 'to' revision: \"a\\nb\""),
    ] {
        assert_eq!(
            failure(stream(c.get_raw_changes(r).await).await),
            (Code::InvalidArgument, msg.to_string())
        );
    }
    for (repo, code) in bad_repos(&s) {
        let mut r = req(&one, &two);
        r.repository = repo;
        assert_eq!(failure(c.get_raw_changes(r).await).0, code);
    }
    s.stop().await;
}
