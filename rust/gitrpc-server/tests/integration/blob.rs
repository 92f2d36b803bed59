use std::time::{Duration, Instant};

use futures::StreamExt;
use gitrpc_proto::gitaly::blob_service_client::BlobServiceClient;
use gitrpc_proto::gitaly::get_blobs_request::RevisionPath;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use crate::common::*;

type Client = BlobServiceClient<tonic::transport::Channel>;

fn client(s: &TestServer) -> Client {
    BlobServiceClient::new(s.channel.clone())
}

/// Size of the large blob: several messages' worth.
pub const BIG: usize = 3 * 1024 * 1024 + 12345;

/// Deterministic, not trivially repetitive text of exactly `len` bytes.
pub fn big_text(len: usize) -> String {
    let mut s = String::with_capacity(len + 64);
    let mut i = 0u64;
    while s.len() < len {
        s.push_str(&format!(
            "line {i:08} {:016x}\n",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ));
        i += 1;
    }
    s.truncate(len);
    s
}

/// git's stdout as bytes, run in the bare repository.
pub fn raw(f: &Fixture, args: &[&str]) -> Vec<u8> {
    let out = git_output(&f.path, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Adds commit c5 on main (returns its id) with: a modified README.md, src/lib.rs renamed to
/// src/answer.rs, feature.txt deleted, a large text file, a binary file, an executable, a
/// non-ASCII name, `docs/a b.txt` turned into a symlink (type change), and a submodule.
pub fn extras(f: &Fixture) -> String {
    let c1 = f.rev_parse("main~3");
    f.write("README.md", "hello\nworld\nagain\n");
    f.write("src/answer.rs", "pub fn answer() -> u32 {\n    42\n}\n");
    f.write("big.txt", &big_text(BIG));
    f.write("binary.dat", "\0\u{1}\u{2}binary\0data\n");
    f.write("run.sh", "#!/bin/sh\necho hi\n");
    f.write("ünï.txt", "unicode name\n");
    f.write("link-target", "README.md");
    f.git(&["rm", "--quiet", "src/lib.rs", "feature.txt"]);
    f.git(&["add", "-A"]);
    let target = f
        .git(&["hash-object", "-w", "link-target"])
        .trim()
        .to_string();
    f.git(&["rm", "--quiet", "--cached", "link-target"]);
    f.git(&["update-index", "--chmod=+x", "run.sh"]);
    f.git(&[
        "update-index",
        "--cacheinfo",
        &format!("120000,{target},docs/a b.txt"),
    ]);
    f.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{c1},sub"),
    ]);
    f.git(&["commit", "--quiet", "-m", "c5: extras"]);
    f.rev_parse("HEAD")
}

/// (size, oid, data, messages) of a GetBlob call.
async fn get_blob(
    c: &mut Client,
    repo: Repository,
    oid: &str,
    limit: i64,
) -> Result<(i64, String, Vec<u8>, usize), tonic::Status> {
    let mut stream = c
        .get_blob(GetBlobRequest {
            repository: Some(repo),
            oid: oid.into(),
            limit,
        })
        .await?
        .into_inner();
    let first = stream.next().await.expect("at least one message")?;
    let (size, oid) = (first.size, first.oid);
    let mut data = first.data;
    let mut n = 1;
    while let Some(m) = stream.next().await {
        let m = m?;
        assert_eq!(
            (m.size, m.oid.as_str()),
            (0, ""),
            "metadata only in the first message"
        );
        assert!(!m.data.is_empty(), "follow-up messages carry data");
        data.extend(m.data);
        n += 1;
    }
    Ok((size, oid, data, n))
}

#[tokio::test]
async fn get_blob_matches_cat_file() {
    let s = TestServer::start().await;
    for (rel, f) in [
        ("r.git", s.fixture("r.git")),
        ("r256.git", s.fixture_sha256("r256.git")),
    ] {
        let mut c = client(&s);
        let tree = f.git(&["ls-tree", "-r", "main"]);
        assert!(tree.lines().count() >= 4);
        for line in tree.lines() {
            let (meta, path) = line.split_once('\t').unwrap();
            let oid = meta.split(' ').nth(2).unwrap();
            let want = raw(&f, &["cat-file", "blob", oid]);
            let (size, got_oid, data, _) = get_blob(&mut c, s.repo(rel), oid, -1).await.unwrap();
            assert_eq!(data, want, "{rel} {path}");
            assert_eq!(size as usize, want.len());
            assert_eq!(got_oid, oid);
            // Limits: 0 is metadata only, a prefix, more than the size.
            let (size0, oid0, data0, n0) = get_blob(&mut c, s.repo(rel), oid, 0).await.unwrap();
            assert_eq!(
                (size0 as usize, oid0.as_str(), data0.len(), n0),
                (want.len(), oid, 0, 1)
            );
            let (_, _, data3, _) = get_blob(&mut c, s.repo(rel), oid, 3).await.unwrap();
            assert_eq!(data3, want[..3.min(want.len())]);
            let (_, _, all, _) = get_blob(&mut c, s.repo(rel), oid, want.len() as i64 + 100)
                .await
                .unwrap();
            assert_eq!(all, want);
            // Any negative limit means everything, as in Gitaly.
            let (_, _, all, _) = get_blob(&mut c, s.repo(rel), oid, -7).await.unwrap();
            assert_eq!(all, want);
        }
        // Abbreviated ids and revision syntax resolve like cat-file does.
        let readme = f.rev_parse("main:README.md");
        let (_, oid, data, _) = get_blob(&mut c, s.repo(rel), &readme[..12], -1)
            .await
            .unwrap();
        assert_eq!(
            (oid.as_str(), data.as_slice()),
            (readme.as_str(), &b"hello\nworld\n"[..])
        );
        let (_, oid, _, _) = get_blob(&mut c, s.repo(rel), "main:README.md", -1)
            .await
            .unwrap();
        assert_eq!(oid, readme);

        // Missing objects, and objects that are not blobs: one empty message (as Gitaly).
        let zero = "0".repeat(f.rev_parse("main").len());
        let commit = f.rev_parse("main");
        let tree = f.rev_parse("main^{tree}");
        for missing in [
            zero.as_str(),
            "doesnotexist",
            &commit,
            &tree,
            "main:nope",
            "main:./README.md",
            "main:../x",
        ] {
            let (size, oid, data, n) = get_blob(&mut c, s.repo(rel), missing, -1).await.unwrap();
            assert_eq!(
                (size, oid.as_str(), data.len(), n),
                (0, "", 0, 1),
                "{missing}"
            );
        }
        // The pool survived all of that.
        let (_, oid, _, _) = get_blob(&mut c, s.repo(rel), &readme, -1).await.unwrap();
        assert_eq!(oid, readme);
    }
}

#[tokio::test]
async fn get_blob_large_is_streamed_in_pieces() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    extras(&f);
    let mut c = client(&s);
    let oid = f.rev_parse("main:big.txt");
    let want = raw(&f, &["cat-file", "blob", &oid]);
    assert_eq!(want.len(), BIG);
    let (size, got, data, n) = get_blob(&mut c, s.repo("r.git"), &oid, -1).await.unwrap();
    assert_eq!((size as usize, got.as_str()), (BIG, oid.as_str()));
    assert!(n >= 4, "{n} messages");
    assert!(data == want, "large blob differs");
    // A limit in the middle of the blob: exact prefix; the half-read process is not reused.
    for limit in [1, 200_000, BIG as i64 - 1] {
        let (size, _, data, _) = get_blob(&mut c, s.repo("r.git"), &oid, limit)
            .await
            .unwrap();
        assert_eq!(size as usize, BIG);
        assert!(data == want[..limit as usize], "limit {limit}");
    }
    let (_, _, data, _) = get_blob(&mut c, s.repo("r.git"), &oid, -1).await.unwrap();
    assert!(data == want);
}

/// cat-file processes of the repository at `path` that are still running.
fn catfiles_of(path: &std::path::Path) -> Vec<(i32, String)> {
    let needle = format!("--git-dir={}", path.display());
    live_git_children()
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("cat-file") && cmd.contains(&needle))
        .collect()
}

#[tokio::test]
async fn cancelled_get_blob_kills_its_cat_file() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    // Far more than the server's channel and the HTTP/2 windows can hold.
    f.write("huge.txt", &big_text(48 * 1024 * 1024));
    f.commit("huge");
    let oid = f.rev_parse("main:huge.txt");
    let mut c = client(&s);
    let mut stream = c
        .get_blob(GetBlobRequest {
            repository: Some(s.repo("r.git")),
            oid: oid.clone(),
            limit: -1,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.oid, oid);
    assert!(!first.data.is_empty());
    assert_eq!(
        catfiles_of(&f.path).len(),
        1,
        "one cat-file serves the call"
    );
    drop(stream);

    // The producer is stopped and its dirty cat-file killed, not pooled.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !catfiles_of(&f.path).is_empty() {
        assert!(
            Instant::now() < deadline,
            "cat-file left behind: {:?}",
            catfiles_of(&f.path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.deps.catfile.stats().2, 0, "nothing idle in the pool");

    // The server is healthy: the next call works (with a fresh process).
    let readme = f.rev_parse("main:README.md");
    let (_, got, data, _) = get_blob(&mut c, s.repo("r.git"), &readme, -1)
        .await
        .unwrap();
    assert_eq!(
        (got.as_str(), data.as_slice()),
        (readme.as_str(), &b"hello\nworld\n"[..])
    );
    let (size, _, data, _) = get_blob(&mut c, s.repo("r.git"), &oid, 10).await.unwrap();
    assert_eq!(
        (size as usize, data.as_slice()),
        (48 * 1024 * 1024, big_text(10).as_bytes())
    );
}

#[tokio::test]
async fn get_blob_bad_input() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let oid = f.rev_parse("main:README.md");
    let mut c = client(&s);
    let code = |r: Result<(i64, String, Vec<u8>, usize), tonic::Status>| r.unwrap_err().code();

    for bad in [
        "",
        "-p",
        "--output=/tmp/x",
        "main README.md",
        "a\nb",
        "a\0b",
    ] {
        let err = get_blob(&mut c, s.repo("r.git"), bad, -1).await;
        assert_eq!(code(err), Code::InvalidArgument, "{bad:?}");
    }
    let mut unknown = s.repo("r.git");
    unknown.storage_name = "nope".into();
    assert_eq!(
        code(get_blob(&mut c, unknown, &oid, -1).await),
        Code::InvalidArgument
    );
    for traversal in ["../r.git", "x/../../r.git", "/etc"] {
        assert_eq!(
            code(get_blob(&mut c, s.repo(traversal), &oid, -1).await),
            Code::InvalidArgument,
            "{traversal}"
        );
    }
    assert_eq!(
        code(get_blob(&mut c, s.repo("missing.git"), &oid, -1).await),
        Code::NotFound
    );
    let err = c
        .get_blob(GetBlobRequest {
            repository: None,
            oid: oid.clone(),
            limit: -1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// One blob of a GetBlobs answer, messages joined.
#[derive(Debug, Default, Clone, PartialEq)]
struct Found {
    revision: String,
    path: Vec<u8>,
    oid: String,
    size: i64,
    mode: i32,
    kind: i32,
    is_submodule: bool,
    data: Vec<u8>,
}

async fn get_blobs(
    c: &mut Client,
    repo: Repository,
    pairs: &[(&str, &str)],
    limit: i64,
) -> Result<Vec<Found>, tonic::Status> {
    let revision_paths = pairs
        .iter()
        .map(|(r, p)| RevisionPath {
            revision: r.to_string(),
            path: p.as_bytes().to_vec(),
        })
        .collect();
    let mut stream = c
        .get_blobs(GetBlobsRequest {
            repository: Some(repo),
            revision_paths,
            limit,
        })
        .await?
        .into_inner();
    let mut out: Vec<Found> = Vec::new();
    while let Some(m) = stream.next().await {
        let m = m?;
        if m.revision.is_empty() {
            // A continuation: data only.
            assert_eq!(
                (m.size, m.oid.as_str(), m.mode, m.path.len()),
                (0, "", 0, 0)
            );
            out.last_mut()
                .expect("continuation after a first message")
                .data
                .extend(m.data);
            continue;
        }
        out.push(Found {
            revision: m.revision,
            path: m.path,
            oid: m.oid,
            size: m.size,
            mode: m.mode,
            kind: m.r#type,
            is_submodule: m.is_submodule,
            data: m.data,
        });
    }
    Ok(out)
}

/// What `git ls-tree` and `git cat-file` say about `rev`/`path`, as GetBlobs should report it.
fn expected(f: &Fixture, rev: &str, path: &str, limit: i64) -> Found {
    let shown = path.trim_end_matches('/');
    let mut want = Found {
        revision: rev.into(),
        path: if path.len() > 1 { shown } else { path }
            .as_bytes()
            .to_vec(),
        ..Default::default()
    };
    let out = git_output(
        &f.path,
        &[
            "-c",
            "core.quotePath=false",
            "ls-tree",
            "-z",
            rev,
            "--",
            shown,
        ],
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let Some(line) = line.split('\0').find(|l| !l.is_empty() && !path.is_empty()) else {
        return want;
    };
    let (meta, name) = line.split_once('\t').unwrap();
    if name != shown {
        return want;
    }
    let mut m = meta.split(' ');
    let (mode, kind, oid) = (m.next().unwrap(), m.next().unwrap(), m.next().unwrap());
    want.mode = i32::from_str_radix(mode, 8).unwrap();
    want.oid = oid.into();
    match kind {
        "commit" => {
            want.kind = ObjectType::Commit as i32;
            want.is_submodule = true;
        }
        "tree" => {
            want.kind = ObjectType::Tree as i32;
            want.size = git(&f.path, &["cat-file", "-s", oid])
                .trim()
                .parse()
                .unwrap();
        }
        _ => {
            want.kind = ObjectType::Blob as i32;
            let data = raw(f, &["cat-file", "blob", oid]);
            want.size = data.len() as i64;
            want.data = if limit < 0 {
                data
            } else {
                data[..data.len().min(limit as usize)].to_vec()
            };
        }
    }
    want
}

#[tokio::test]
async fn get_blobs_matches_ls_tree() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let c4 = f.rev_parse("main");
    let c5 = extras(&f);
    let mut c = client(&s);
    let pairs: Vec<(&str, &str)> = vec![
        ("main", "README.md"),
        ("main", "src/answer.rs"),
        ("main", "big.txt"),
        ("main", "binary.dat"),
        ("main", "run.sh"),
        ("main", "ünï.txt"),
        ("main", "docs/a b.txt"),
        ("main", "sub"),
        ("main", "docs"),
        ("main", "docs/"),
        ("main", "docs//"),
        (&c4, "docs/a b.txt"),
        (&c4, "src/lib.rs"),
        ("v1.0", "src/lib.rs"),
        ("main~1^{tree}", "feature.txt"),
        // Not found: only revision and path come back.
        ("main", "nope"),
        ("main", "src/lib.rs"),
        ("main", "README.md/x"),
        ("main", "docs/a b.txt/x"),
        ("main", "sub/x"),
        ("main", ""),
        ("main", "/"),
        ("main", "./README.md"),
        ("main", "../README.md"),
        ("main", "docs/../README.md"),
        ("main", "/README.md"),
        ("does-not-exist", "README.md"),
        (&c5[..10], "README.md"),
    ];
    for limit in [-1, 0, 5, 200_000] {
        let got = get_blobs(&mut c, s.repo("r.git"), &pairs, limit)
            .await
            .unwrap();
        assert_eq!(got.len(), pairs.len(), "one entry per pair (limit {limit})");
        for (g, (rev, path)) in got.iter().zip(&pairs) {
            let want = expected(&f, rev, path, limit);
            assert!(
                g == &want,
                "limit {limit} {rev}:{path}: got {:?}, want {:?}",
                Short(g),
                Short(&want)
            );
        }
    }
    // Spot checks independent of the helper.
    let got = get_blobs(
        &mut c,
        s.repo("r.git"),
        &[
            ("main", "run.sh"),
            ("main", "sub"),
            ("main", "docs/a b.txt"),
            ("main", "nope"),
        ],
        -1,
    )
    .await
    .unwrap();
    assert_eq!(
        (got[0].mode, got[0].kind),
        (0o100755, ObjectType::Blob as i32)
    );
    assert_eq!(
        (got[1].mode, got[1].kind, got[1].is_submodule),
        (0o160000, ObjectType::Commit as i32, true)
    );
    assert_eq!(got[1].oid, f.rev_parse("main~4"));
    assert_eq!(
        (got[2].mode, got[2].data.as_slice()),
        (0o120000, &b"README.md"[..])
    );
    assert_eq!(
        (
            got[3].oid.as_str(),
            got[3].revision.as_str(),
            got[3].path.as_slice()
        ),
        ("", "main", &b"nope"[..])
    );
}

/// Debug output without the (possibly megabytes of) data.
struct Short<'a>(&'a Found);

impl std::fmt::Debug for Short<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut x = self.0.clone();
        let len = x.data.len();
        x.data.truncate(16);
        write!(f, "{x:?} ({len} data bytes)")
    }
}

#[tokio::test]
async fn get_blobs_sha256() {
    let s = TestServer::start().await;
    let f = s.fixture_sha256("r.git");
    let mut c = client(&s);
    let pairs = [
        ("main", "README.md"),
        ("main", "docs/a b.txt"),
        ("main", "src"),
        ("v1.0", "src/lib.rs"),
        ("main", "nope"),
    ];
    let got = get_blobs(&mut c, s.repo("r.git"), &pairs, -1)
        .await
        .unwrap();
    assert_eq!(got.len(), pairs.len());
    for (g, (rev, path)) in got.iter().zip(&pairs) {
        assert_eq!(g, &expected(&f, rev, path, -1), "{rev}:{path}");
    }
    assert_eq!(got[0].oid.len(), 64);
}

#[tokio::test]
async fn get_blobs_bad_input() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let mut c = client(&s);
    let ok = [("main", "README.md")];
    let err = get_blobs(&mut c, s.repo("r.git"), &[], -1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for bad in [
        "",
        "-p",
        "--output=/tmp/x",
        "main:README.md",
        "main\\x",
        "a b",
        "a\nb",
    ] {
        let err = get_blobs(
            &mut c,
            s.repo("r.git"),
            &[("main", "README.md"), (bad, "README.md")],
            -1,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
    }
    let mut unknown = s.repo("r.git");
    unknown.storage_name = "nope".into();
    assert_eq!(
        get_blobs(&mut c, unknown, &ok, -1)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    for traversal in ["../r.git", "x/../../r.git"] {
        let err = get_blobs(&mut c, s.repo(traversal), &ok, -1)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{traversal}");
    }
    let err = get_blobs(&mut c, s.repo("missing.git"), &ok, -1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Still serving.
    assert_eq!(
        get_blobs(&mut c, s.repo("r.git"), &ok, -1)
            .await
            .unwrap()
            .len(),
        1
    );
}
