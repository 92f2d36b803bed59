//! CheckObjectsExist (a bidirectional stream), ListCommitsByRefName and GetCommitMessages.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::find_commits::history;
use super::*;
use crate::common::TestServer;

async fn exist(
    c: &mut Client,
    requests: Vec<CheckObjectsExistRequest>,
) -> Result<Vec<(Vec<u8>, bool)>, tonic::Status> {
    let msgs = stream(c.check_objects_exist(tokio_stream::iter(requests)).await).await?;
    Ok(msgs
        .into_iter()
        .flat_map(|m| m.revisions)
        .map(|r| (r.name, r.exists))
        .collect())
}

fn names(n: &[&[u8]]) -> Vec<Vec<u8>> {
    n.iter().map(|x| x.to_vec()).collect()
}

#[tokio::test]
async fn check_objects_exist_across_requests() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = history(&s, "o.git", "sha1");
    w.write("new\nline.txt", "a newline in the name\n");
    w.write(b"caf\xe9.txt", "latin-1\n");
    w.commit("odd names");
    let head = w.rev("main");
    let first = CheckObjectsExistRequest {
        repository: Some(w.repo()),
        revisions: names(&[head.as_bytes(), b"main", b"nope", b"main:README.md"]),
    };
    let second = CheckObjectsExistRequest {
        repository: None,
        revisions: names(&[
            b"main:docs/a b.txt",
            b"main:new\nline.txt",
            b"main:caf\xe9.txt",
            b"main:missing file",
            b"main:new\nmissing",
            b"v1.0^{commit}",
            b"1234567890123456789012345678901234567890",
        ]),
    };
    let third = CheckObjectsExistRequest::default();
    let got = exist(&mut c, vec![first, second, third]).await.unwrap();
    let want: Vec<(Vec<u8>, bool)> = vec![
        (head.as_bytes().to_vec(), true),
        (b"main".to_vec(), true),
        (b"nope".to_vec(), false),
        (b"main:README.md".to_vec(), true),
        (b"main:docs/a b.txt".to_vec(), true),
        (b"main:new\nline.txt".to_vec(), true),
        (b"main:caf\xe9.txt".to_vec(), true),
        (b"main:missing file".to_vec(), false),
        (b"main:new\nmissing".to_vec(), false),
        (b"v1.0^{commit}".to_vec(), true),
        (b"1234567890123456789012345678901234567890".to_vec(), false),
    ];
    assert_eq!(got, want);
    // An invalid revision fails the call, in whichever request it comes.
    let bad = CheckObjectsExistRequest {
        repository: None,
        revisions: names(&[b"main", b"-x"]),
    };
    let ok = CheckObjectsExistRequest {
        repository: Some(w.repo()),
        revisions: names(&[b"main"]),
    };
    assert_eq!(
        failure(exist(&mut c, vec![ok, bad]).await),
        (
            Code::InvalidArgument,
            "invalid revision: revision can't start with '-'".to_string()
        )
    );
    let spaced = CheckObjectsExistRequest {
        repository: Some(w.repo()),
        revisions: names(&[b"ma in"]),
    };
    assert_eq!(
        failure(exist(&mut c, vec![spaced]).await),
        (
            Code::InvalidArgument,
            "invalid revision: revision can't contain whitespace".to_string()
        )
    );
    // No request at all.
    assert_eq!(
        failure(exist(&mut c, vec![]).await),
        (Code::Internal, "EOF".to_string())
    );
    for (repo, code) in bad_repos(&s) {
        let r = CheckObjectsExistRequest {
            repository: repo,
            revisions: names(&[b"main"]),
        };
        assert_eq!(failure(exist(&mut c, vec![r]).await).0, code);
    }
    wait_no_git(s.dir.path(), "o.git").await;
    s.stop().await;
}

#[tokio::test]
async fn list_commits_by_ref_name_skips_what_is_missing() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = history(&s, "r.git", "sha1");
    w.git(&["branch", "ʕ•ᴥ•ʔ", "feature"]);
    let asked = names(&[
        b"main",
        b"HEAD",
        "refs/heads/ʕ•ᴥ•ʔ".as_bytes(),
        b"nope",
        b"v1.0",
        b"",
        b"refs/heads/caf\xe9",
        b"bad\nname",
        b"feature",
    ]);
    let msgs = stream(
        c.list_commits_by_ref_name(ListCommitsByRefNameRequest {
            repository: Some(w.repo()),
            ref_names: asked,
        })
        .await,
    )
    .await
    .unwrap();
    let got: Vec<(Vec<u8>, String)> = msgs
        .into_iter()
        .flat_map(|m| m.commit_refs)
        .map(|r| (r.ref_name, r.commit.unwrap().id))
        .collect();
    let want: Vec<(Vec<u8>, String)> = [
        ("main", "main"),
        ("HEAD", "HEAD"),
        ("refs/heads/ʕ•ᴥ•ʔ", "feature"),
        ("v1.0", "v1.0^{commit}"),
        ("feature", "feature"),
    ]
    .iter()
    .map(|(n, r)| (n.as_bytes().to_vec(), w.rev(r)))
    .collect();
    assert_eq!(got, want);
    s.stop().await;
}

async fn messages(
    c: &mut Client,
    w: &Work,
    ids: &[&str],
) -> Result<Vec<GetCommitMessagesResponse>, tonic::Status> {
    stream(
        c.get_commit_messages(GetCommitMessagesRequest {
            repository: Some(w.repo()),
            commit_ids: ids.iter().map(|i| i.to_string()).collect(),
        })
        .await,
    )
    .await
}

#[tokio::test]
async fn commit_messages_whole_and_chunked() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = history(&s, "cm.git", "sha1");
    let long: String = (0..25_000).map(|i| format!("line {i:06}\n")).collect();
    assert!(long.len() > 2 * 128 * 1024);
    let big = w.commit(&format!("subject\n\n{long}"));
    run(&mut w.cmd([
        "commit",
        "-q",
        "--allow-empty",
        "--allow-empty-message",
        "-m",
        "",
    ]));
    let empty = w.rev("HEAD");
    let c2 = w.rev("v1.0^{commit}");
    let msgs = messages(&mut c, &w, &[&big, &empty, &c2, "v1.0"])
        .await
        .unwrap();
    // Each commit: its id alone, then its message in 128 KiB pieces (none if empty).
    let mut got: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    for m in msgs {
        if !m.commit_id.is_empty() {
            assert!(m.message.is_empty());
            got.push((m.commit_id, Vec::new(), Vec::new()));
        } else {
            let last = got.last_mut().unwrap();
            last.2.push(m.message.len());
            last.1.extend_from_slice(&m.message);
        }
    }
    let raw_message = |id: &str| {
        let raw = run(git_cmd(&w.path).args(["cat-file", "commit", id]));
        let i = raw.windows(2).position(|x| x == b"\n\n").unwrap();
        raw[i + 2..].to_vec()
    };
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].0, big);
    assert_eq!(got[0].1, raw_message(&big));
    let n = got[0].1.len();
    assert_eq!(got[0].2, {
        let mut v = vec![128 * 1024; n / (128 * 1024)];
        v.push(n % (128 * 1024));
        v
    });
    assert_eq!((got[1].0.as_str(), got[1].1.len()), (empty.as_str(), 0));
    assert_eq!(got[2].1, raw_message(&c2));
    // As Gitaly: the id as asked.
    assert_eq!((got[3].0.as_str(), &got[3].1), ("v1.0", &raw_message(&c2)));
    for missing in ["1234567890123456789012345678901234567890", "nope", "a\nb"] {
        assert_eq!(
            failure(messages(&mut c, &w, &[missing]).await),
            (
                Code::Internal,
                "failed to get commit message: object not found".to_string()
            )
        );
    }
    s.stop().await;
}
