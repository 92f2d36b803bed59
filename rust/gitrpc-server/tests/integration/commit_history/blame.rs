//! RawBlame: the bytes of `git blame -p`, in 128 KiB messages; ranges, ignore-revs blobs,
//! and every error with its `RawBlameError` detail.

use gitrpc_proto::gitaly::raw_blame_error::{
    Error as Kind, InvalidIgnoreRevsFormatError, OutOfRangeError, ResolveIgnoreRevsError,
};
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::*;
use crate::common::TestServer;

fn blame_req(w: &Work, rev: &str, path: &[u8]) -> RawBlameRequest {
    RawBlameRequest {
        repository: Some(w.repo()),
        revision: rev.as_bytes().to_vec(),
        path: path.to_vec(),
        ..Default::default()
    }
}

async fn blame(c: &mut Client, r: RawBlameRequest) -> Result<Vec<Vec<u8>>, tonic::Status> {
    Ok(stream(c.raw_blame(r).await)
        .await?
        .into_iter()
        .map(|m| m.data)
        .collect())
}

fn git_blame(w: &Work, args: &[&[u8]]) -> Vec<u8> {
    let mut c = git_cmd(&w.path);
    c.arg("blame").arg("-p");
    for a in args {
        c.arg(OsStr::from_bytes(a));
    }
    run(&mut c)
}

/// A file touched line by line by several commits, a formatting-only commit to ignore, and
/// a non-UTF-8 name.
fn blamed(s: &TestServer, rel: &str, format: &str) -> (Work, String) {
    let w = Work::new(s, rel, format);
    let mut lines: Vec<String> = (0..40).map(|i| format!("line {i}")).collect();
    w.write("f.txt", lines.join("\n") + "\n");
    w.write(b"caf\xe9.txt", "un\ndeux\n");
    w.commit("root");
    for k in 0..5 {
        for i in (k..40).step_by(5) {
            lines[i] = format!("line {i} changed by {k}");
        }
        w.write("f.txt", lines.join("\n") + "\n");
        w.commit(&format!("change {k}"));
    }
    for l in &mut lines {
        *l = format!("  {l}");
    }
    w.write("f.txt", lines.join("\n") + "\n");
    let reformat = w.commit("reformat");
    w.write(b"caf\xe9.txt", "un\ndeux\ntrois\n");
    w.commit("trois");
    (w, reformat)
}

fn detail(e: &tonic::Status) -> Option<Kind> {
    gitrpc_server::error::detail::<RawBlameError>(e, "RawBlameError").and_then(|d| d.error)
}

#[tokio::test]
async fn bytes_of_git_blame() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    for (rel, format) in [("b1.git", "sha1"), ("b256.git", "sha256")] {
        let (w, reformat) = blamed(&s, rel, format);
        let got = blame(&mut c, blame_req(&w, "main", b"f.txt"))
            .await
            .unwrap();
        assert_eq!(got.concat(), git_blame(&w, &[b"main", b"--", b"f.txt"]));
        let got = blame(&mut c, blame_req(&w, "main~1", b"f.txt"))
            .await
            .unwrap();
        assert_eq!(got.concat(), git_blame(&w, &[b"main~1", b"--", b"f.txt"]));
        let got = blame(&mut c, blame_req(&w, "main", b"caf\xe9.txt"))
            .await
            .unwrap();
        assert_eq!(
            got.concat(),
            git_blame(&w, &[b"main", b"--", b"caf\xe9.txt"])
        );
        // A range.
        let mut r = blame_req(&w, "main", b"f.txt");
        r.range = b"3,9".to_vec();
        let got = blame(&mut c, r).await.unwrap();
        assert_eq!(
            got.concat(),
            git_blame(&w, &[b"-L3,9", b"main", b"--", b"f.txt"])
        );
        // Ignoring the formatting commit, from a blob listing it.
        w.write("ignore-revs", format!("{reformat}\n"));
        w.commit("ignore list");
        let mut r = blame_req(&w, "main", b"f.txt");
        r.ignore_revisions_blob = b"main:ignore-revs".to_vec();
        let got = blame(&mut c, r).await.unwrap().concat();
        let file = w.work_dir().join("ignore-revs");
        let mut flag = b"--ignore-revs-file=".to_vec();
        flag.extend_from_slice(file.as_os_str().as_bytes());
        assert_eq!(got, git_blame(&w, &[&flag, b"main", b"--", b"f.txt"]));
        assert!(!String::from_utf8_lossy(&got).contains(&reformat));
    }
    // Nothing of the ignore-revs files is left.
    let tmp = s.storage.join("+gitrpc/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    s.stop().await;
}

#[tokio::test]
async fn large_output_comes_in_128_kib_messages() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = Work::new(&s, "big.git", "sha1");
    let text: String = (0..6000).map(|i| format!("line number {i}\n")).collect();
    w.write("big.txt", &text);
    w.commit("big");
    let got = blame(&mut c, blame_req(&w, "main", b"big.txt"))
        .await
        .unwrap();
    let want = git_blame(&w, &[b"main", b"--", b"big.txt"]);
    assert!(want.len() > 2 * 128 * 1024, "{}", want.len());
    assert_eq!(got.concat(), want);
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 128 * 1024),
        "{sizes:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn errors_with_gitalys_details() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let (w, _) = blamed(&s, "e.git", "sha1");
    w.write("dir/x", "x\n");
    w.write("bad-revs", "not-a-revision\n");
    w.commit("more");
    let with = |f: &dyn Fn(&mut RawBlameRequest)| {
        let mut r = blame_req(&w, "main", b"f.txt");
        f(&mut r);
        r
    };
    let plain: Vec<(RawBlameRequest, Code, &str)> = vec![
        (
            with(&|r| r.revision.clear()),
            Code::InvalidArgument,
            "empty revision",
        ),
        (
            with(&|r| r.revision = b"-L1,2".to_vec()),
            Code::InvalidArgument,
            "revision can't start with '-'",
        ),
        (
            with(&|r| r.path.clear()),
            Code::InvalidArgument,
            "empty Path",
        ),
        (
            with(&|r| r.path = b"../../etc/passwd".to_vec()),
            Code::InvalidArgument,
            "path escapes repository root",
        ),
        (
            with(&|r| r.path = b"/etc/passwd".to_vec()),
            Code::InvalidArgument,
            "path escapes repository root",
        ),
        (
            with(&|r| r.range = b"1".to_vec()),
            Code::InvalidArgument,
            "invalid Range",
        ),
        (
            with(&|r| r.range = b"-1,5".to_vec()),
            Code::InvalidArgument,
            "invalid Range",
        ),
        (
            with(&|r| r.revision = b"nope".to_vec()),
            Code::Internal,
            "blaming file: exit status 128",
        ),
    ];
    for (r, code, msg) in plain {
        let what = format!("{r:?}");
        assert_eq!(
            failure(blame(&mut c, r).await),
            (code, msg.to_string()),
            "{what}"
        );
    }
    let cases: Vec<(RawBlameRequest, Code, &str, Kind)> = vec![
        (
            with(&|r| r.path = b"nope.txt".to_vec()),
            Code::NotFound,
            "path not found in revision",
            Kind::PathNotFound(PathNotFoundError {
                path: b"nope.txt".to_vec(),
            }),
        ),
        (
            with(&|r| r.range = b"100,200".to_vec()),
            Code::InvalidArgument,
            "range is outside of the file length",
            Kind::OutOfRange(OutOfRangeError { actual_lines: 40 }),
        ),
        (
            with(&|r| r.ignore_revisions_blob = b"main:nope".to_vec()),
            Code::NotFound,
            "cannot resolve ignore-revs blob",
            Kind::ResolveIgnoreRevs(ResolveIgnoreRevsError {
                ignore_revisions_blob: b"main:nope".to_vec(),
            }),
        ),
        (
            with(&|r| r.ignore_revisions_blob = b"main:dir".to_vec()),
            Code::InvalidArgument,
            "ignore revision is not a blob",
            Kind::ResolveIgnoreRevs(ResolveIgnoreRevsError {
                ignore_revisions_blob: b"main:dir".to_vec(),
            }),
        ),
        (
            with(&|r| r.ignore_revisions_blob = b"main:bad-revs".to_vec()),
            Code::NotFound,
            "invalid object name",
            Kind::InvalidIgnoreRevsFormat(InvalidIgnoreRevsFormatError {
                content: b"not-a-revision\n".to_vec(),
            }),
        ),
    ];
    for (r, code, msg, kind) in cases {
        let what = format!("{r:?}");
        let e = blame(&mut c, r).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (code, msg), "{what}");
        assert_eq!(detail(&e), Some(kind), "{what}");
    }
    for (r, code) in bad_repos(&s) {
        let q = RawBlameRequest {
            repository: r,
            ..with(&|_| {})
        };
        assert_eq!(failure(blame(&mut c, q).await).0, code);
    }
    wait_no_git(s.dir.path(), "e.git").await;
    let tmp = s.storage.join("+gitrpc/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    s.stop().await;
}
