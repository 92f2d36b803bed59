//! CommitDiff against `git diff`: files, ids, modes and patches of every kind of change;
//! each limit flag with Gitaly's semantics; chunking; whitespace modes; bad input.

use gitrpc_proto::gitaly::commit_diff_request::WhitespaceChanges;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{client, rich, Client};
use crate::commit_history::{failure, stream, Work};
use crate::common::TestServer;

/// One file of the answer: the first message's metadata and the whole patch.
#[derive(Debug)]
pub struct File {
    pub meta: CommitDiffResponse,
    pub patch: Vec<u8>,
    pub messages: usize,
}

pub fn files(msgs: Vec<CommitDiffResponse>) -> Vec<File> {
    let mut out: Vec<File> = Vec::new();
    let mut open = false;
    for m in msgs {
        if !open {
            let mut meta = m.clone();
            meta.raw_patch_data.clear();
            out.push(File {
                meta,
                patch: Vec::new(),
                messages: 0,
            });
        } else {
            assert!(m.from_path.is_empty() && m.from_id.is_empty(), "{m:?}");
        }
        let f = out.last_mut().unwrap();
        f.patch.extend_from_slice(&m.raw_patch_data);
        f.messages += 1;
        assert!(m.raw_patch_data.len() <= 5120);
        open = !m.end_of_patch;
    }
    assert!(!open, "the last patch has no end_of_patch");
    out
}

pub fn request(w: &Work, left: &str, right: &str) -> CommitDiffRequest {
    CommitDiffRequest {
        repository: Some(w.repo()),
        left_commit_id: left.into(),
        right_commit_id: right.into(),
        ..Default::default()
    }
}

pub async fn commit_diff(
    c: &mut Client,
    req: CommitDiffRequest,
) -> Result<Vec<File>, tonic::Status> {
    Ok(files(stream(c.commit_diff(req).await).await?))
}

/// (from, to, from id, to id, old mode, new mode).
type Meta = (Vec<u8>, Vec<u8>, String, String, i32, i32);

/// `git diff --raw -z`: (from, to, from id, to id, old mode, new mode), a type change as a
/// deletion and an addition (as CommitDiff shows it).
fn git_raw(w: &Work, left: &str, right: &str, zero: &str) -> Vec<Meta> {
    let out = crate::commit_history::run(&mut w.cmd([
        "diff",
        "--raw",
        "-z",
        "--find-renames=30%",
        "--full-index",
        "--no-abbrev",
        left,
        right,
    ]));
    let mut fields = out.split(|&b| b == 0).filter(|f| !f.is_empty());
    let mut v = Vec::new();
    while let Some(h) = fields.next() {
        let h = String::from_utf8(h.to_vec()).unwrap();
        let p: Vec<&str> = h.trim_start_matches(':').split(' ').collect();
        let (om, nm) = (
            i32::from_str_radix(p[0], 8).unwrap(),
            i32::from_str_radix(p[1], 8).unwrap(),
        );
        let from = fields.next().unwrap().to_vec();
        let to = match p[4].as_bytes()[0] {
            b'R' | b'C' => fields.next().unwrap().to_vec(),
            _ => from.clone(),
        };
        if p[4] == "T" {
            v.push((from.clone(), to.clone(), p[2].into(), zero.into(), om, 0));
            v.push((from, to, zero.into(), p[3].into(), 0, nm));
        } else {
            v.push((from, to, p[2].into(), p[3].into(), om, nm));
        }
    }
    v
}

/// `git diff` with each file's header lines (up to its first hunk or `Binary` line) left
/// out: what CommitDiff's patches add up to.
fn git_patches(w: &Work, left: &str, right: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["diff", "--no-color", "--full-index", "--find-renames=30%"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[left, right]);
    let out = crate::commit_history::run(&mut w.cmd(args));
    let mut kept = Vec::new();
    let mut header = false;
    for line in out.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"diff --git") {
            header = true;
            continue;
        }
        if header && !(line.starts_with(b"@@") || line.starts_with(b"Binary")) {
            continue;
        }
        header = false;
        kept.extend_from_slice(line);
    }
    kept
}

/// `git diff --numstat` totals (binary files count 0).
fn git_numstat(w: &Work, left: &str, right: &str) -> (i32, i32) {
    let out = crate::commit_history::run(&mut w.cmd([
        "diff",
        "--numstat",
        "-z",
        "--find-renames=30%",
        left,
        right,
    ]));
    let text = String::from_utf8_lossy(&out).into_owned();
    let (mut a, mut r) = (0, 0);
    for rec in text.split('\0') {
        let p: Vec<&str> = rec.split('\t').collect();
        if p.len() >= 2 {
            a += p[0].parse::<i32>().unwrap_or(0);
            r += p[1].parse::<i32>().unwrap_or(0);
        }
    }
    (a, r)
}

async fn equals_git(format: &str) {
    let s = TestServer::start().await;
    let r = rich(&s, "r.git", format);
    let zero = "0".repeat(if format == "sha1" { 40 } else { 64 });
    let mut c = client(&s);
    let mut pairs: Vec<(String, String)> = r
        .commits
        .windows(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    pairs.push((r.commits[0].clone(), r.commits.last().unwrap().clone()));
    for (left, right) in pairs {
        let got = commit_diff(&mut c, request(&r.w, &left, &right))
            .await
            .unwrap();
        let meta: Vec<_> = got
            .iter()
            .map(|f| {
                let m = &f.meta;
                (
                    m.from_path.clone(),
                    m.to_path.clone(),
                    m.from_id.clone(),
                    m.to_id.clone(),
                    m.old_mode,
                    m.new_mode,
                )
            })
            .collect();
        assert_eq!(meta, git_raw(&r.w, &left, &right, &zero), "{left}..{right}");
        let patches: Vec<u8> = got.iter().flat_map(|f| f.patch.clone()).collect();
        assert_eq!(
            String::from_utf8_lossy(&patches),
            String::from_utf8_lossy(&git_patches(&r.w, &left, &right, &[])),
            "{left}..{right}"
        );
        let added: i32 = got.iter().map(|f| f.meta.lines_added).sum();
        let removed: i32 = got.iter().map(|f| f.meta.lines_removed).sum();
        let binary = got.iter().any(|f| f.meta.binary);
        if !binary {
            assert_eq!(
                (added, removed),
                git_numstat(&r.w, &left, &right),
                "{left}..{right}"
            );
        }
        for f in &got {
            assert!(!f.meta.overflow_marker && !f.meta.collapsed && !f.meta.too_large);
            assert_eq!(f.meta.binary, f.patch.starts_with(b"Binary files"), "{f:?}");
        }
    }
    // the non-UTF-8 name comes back as bytes
    let got = commit_diff(&mut c, request(&r.w, &r.commits[4], &r.commits[5]))
        .await
        .unwrap();
    assert!(got.iter().any(|f| f.meta.to_path == b"caf\xe9.txt"));
    s.stop().await;
}

#[tokio::test]
async fn commit_diff_equals_git_for_every_kind_of_change() {
    equals_git("sha1").await;
}

#[tokio::test]
async fn commit_diff_equals_git_sha256() {
    equals_git("sha256").await;
}

/// Gitaly's limits table: three files of 10 added lines (110 patch bytes each, plus hunk
/// headers).
fn three_files(s: &TestServer) -> (Work, String, String) {
    let w = Work::new(s, "l.git", "sha1");
    w.write("keep", "x\n");
    let left = w.commit("base");
    for name in ["a.aa", "b.bb", "c.cc"] {
        w.write(name, "xxxxxxxxx\n".repeat(10));
    }
    let right = w.commit("three");
    (w, left, right)
}

fn big() -> CommitDiffRequest {
    CommitDiffRequest {
        max_files: 100,
        max_lines: 1000,
        max_bytes: 100_000,
        safe_max_files: 100,
        safe_max_lines: 1000,
        safe_max_bytes: 100_000,
        max_patch_bytes: 100_000,
        ..Default::default()
    }
}

/// (to_path, overflow, collapsed, too_large, patch empty) of each file.
type Shape = Vec<(&'static str, bool, bool, bool, bool)>;

async fn shape(
    c: &mut Client,
    w: &Work,
    l: &str,
    r: &str,
    f: impl Fn(&mut CommitDiffRequest),
) -> Shape {
    let mut req = big();
    req.repository = Some(w.repo());
    req.left_commit_id = l.into();
    req.right_commit_id = r.into();
    f(&mut req);
    commit_diff(c, req)
        .await
        .unwrap()
        .into_iter()
        .map(|f| {
            let p: &'static str = match f.meta.to_path.as_slice() {
                b"a.aa" => "a",
                b"b.bb" => "b",
                b"c.cc" => "c",
                b"" => "",
                other => panic!("{other:?}"),
            };
            (
                p,
                f.meta.overflow_marker,
                f.meta.collapsed,
                f.meta.too_large,
                f.patch.is_empty(),
            )
        })
        .collect()
}

#[tokio::test]
async fn commit_diff_every_limit_flag() {
    let s = TestServer::start().await;
    let (w, l, r) = three_files(&s);
    let mut c = client(&s);
    let plain = vec![
        ("a", false, false, false, false),
        ("b", false, false, false, false),
        ("c", false, false, false, false),
    ];
    // no limits asked for
    assert_eq!(shape(&mut c, &w, &l, &r, |_| {}).await, plain);
    // the max_* limits count only with enforce_limits
    assert_eq!(shape(&mut c, &w, &l, &r, |q| q.max_files = 1).await, plain);
    let overflow = vec![
        ("a", false, false, false, false),
        ("b", false, false, false, false),
        ("", true, false, false, true),
    ];
    let enforce = |f: fn(&mut CommitDiffRequest)| {
        move |q: &mut CommitDiffRequest| {
            q.enforce_limits = true;
            f(q)
        }
    };
    assert_eq!(
        shape(&mut c, &w, &l, &r, enforce(|q| q.max_files = 2)).await,
        overflow
    );
    // lines: 10 a file, overflow when the count reaches the limit (>=)
    assert_eq!(
        shape(&mut c, &w, &l, &r, enforce(|q| q.max_lines = 25)).await,
        overflow
    );
    assert_eq!(
        shape(&mut c, &w, &l, &r, enforce(|q| q.max_lines = 20)).await,
        vec![
            ("a", false, false, false, false),
            ("", true, false, false, true)
        ]
    );
    // bytes: 110 a file
    assert_eq!(
        shape(&mut c, &w, &l, &r, enforce(|q| q.max_bytes = 250)).await,
        overflow
    );
    // collect_all_paths: the overflowing file keeps its path, the patches stop
    let collected = vec![
        ("a", false, false, false, false),
        ("b", false, false, false, false),
        ("c", true, false, false, true),
    ];
    assert_eq!(
        shape(
            &mut c,
            &w,
            &l,
            &r,
            enforce(|q| {
                q.max_files = 2;
                q.collect_all_paths = true
            })
        )
        .await,
        collected
    );
    // negative: overflow at once
    assert_eq!(
        shape(&mut c, &w, &l, &r, enforce(|q| q.max_files = -1)).await,
        vec![("", true, false, false, true)]
    );
    // max_patch_bytes 0: every patch too large
    let all_large = vec![
        ("a", false, false, true, true),
        ("b", false, false, true, true),
        ("c", false, false, true, true),
    ];
    assert_eq!(
        shape(&mut c, &w, &l, &r, enforce(|q| q.max_patch_bytes = 0)).await,
        all_large
    );
    // per extension (a patch is 110 bytes of lines + its hunk header)
    assert_eq!(
        shape(
            &mut c,
            &w,
            &l,
            &r,
            enforce(|q| {
                q.max_patch_bytes_for_file_extension
                    .insert(".bb".into(), 100);
            })
        )
        .await,
        vec![
            ("a", false, false, false, false),
            ("b", false, false, true, true),
            ("c", false, false, false, false)
        ]
    );
    // safe limits collapse (with collapse_diffs, enforced or not)
    let collapsed = vec![
        ("a", false, false, false, false),
        ("b", false, true, false, true),
        ("c", false, true, false, true),
    ];
    assert_eq!(
        shape(&mut c, &w, &l, &r, |q| {
            q.collapse_diffs = true;
            q.safe_max_files = 1
        })
        .await,
        collapsed
    );
    assert_eq!(
        shape(&mut c, &w, &l, &r, |q| {
            q.collapse_diffs = true;
            q.safe_max_lines = 15
        })
        .await,
        collapsed
    );
    assert_eq!(
        shape(&mut c, &w, &l, &r, |q| {
            q.collapse_diffs = true;
            q.safe_max_bytes = 150
        })
        .await,
        collapsed
    );
    // safe limits without collapse_diffs change nothing
    assert_eq!(
        shape(&mut c, &w, &l, &r, |q| q.safe_max_files = 1).await,
        plain
    );
    // upper bounds: 5000 files at most even if more are asked for
    assert_eq!(
        shape(&mut c, &w, &l, &r, enforce(|q| q.max_files = i32::MAX)).await,
        plain
    );
    s.stop().await;
}

#[tokio::test]
async fn commit_diff_cuts_patches_into_5120_byte_messages() {
    let s = TestServer::start().await;
    let w = Work::new(&s, "c.git", "sha1");
    w.write("x", "");
    let l = w.commit("empty");
    w.write(
        "x",
        "0123456789abcdefghijklmnopqrstuvwxyz01234567890\n".repeat(400),
    );
    let r = w.commit("big");
    let mut c = client(&s);
    let got = commit_diff(&mut c, request(&w, &l, &r)).await.unwrap();
    assert_eq!(got.len(), 1);
    let f = &got[0];
    assert_eq!(f.messages, f.patch.len().div_ceil(5120));
    assert!(f.messages > 3);
    assert_eq!(f.meta.lines_added, 400);
    assert_eq!(f.patch, git_patches(&w, &l, &r, &[]));
    s.stop().await;
}

#[tokio::test]
async fn commit_diff_whitespace_modes_and_paths() {
    let s = TestServer::start().await;
    let r = rich(&s, "r.git", "sha1");
    let (l, rt) = (&r.commits[5], &r.commits[6]);
    let mut c = client(&s);
    for (mode, flag) in [
        (WhitespaceChanges::Ignore, "--ignore-space-change"),
        (WhitespaceChanges::IgnoreAll, "--ignore-all-space"),
    ] {
        let mut req = request(&r.w, l, rt);
        req.whitespace_changes = mode as i32;
        let got = commit_diff(&mut c, req).await.unwrap();
        let patches: Vec<u8> = got.iter().flat_map(|f| f.patch.clone()).collect();
        assert_eq!(patches, git_patches(&r.w, l, rt, &[flag]), "{flag}");
        let ws = got
            .iter()
            .find(|f| f.meta.to_path == b"ws.txt")
            .expect("ws.txt still listed");
        assert!(ws.patch.is_empty());
        let paths: Vec<&[u8]> = got.iter().map(|f| f.meta.to_path.as_slice()).collect();
        assert_eq!(paths, [&b"dir/keep.txt"[..], b"mode.sh", b"ws.txt"]);
    }
    // a paths filter
    let mut req = request(&r.w, l, rt);
    req.paths = vec![b"dir".to_vec()];
    let got = commit_diff(&mut c, req).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].meta.to_path, b"dir/keep.txt");
    s.stop().await;
}

#[tokio::test]
async fn commit_diff_bad_input() {
    let s = TestServer::start().await;
    let r = rich(&s, "r.git", "sha1");
    let head = r.commits.last().unwrap().clone();
    let mut c = client(&s);
    let cases = [
        (
            "",
            head.as_str(),
            Code::InvalidArgument,
            "empty LeftCommitId",
        ),
        (
            head.as_str(),
            "",
            Code::InvalidArgument,
            "empty RightCommitId",
        ),
    ];
    for (l, rt, code, msg) in cases {
        let got = failure(commit_diff(&mut c, request(&r.w, l, rt)).await);
        assert_eq!(got, (code, msg.to_string()));
    }
    let (code, msg) = failure(commit_diff(&mut c, request(&r.w, "-x", &head)).await);
    assert_eq!(code, Code::InvalidArgument, "{msg}");
    let (code, msg) = failure(commit_diff(&mut c, request(&r.w, &"1".repeat(40), &head)).await);
    assert_eq!(
        (code, msg.as_str()),
        (Code::FailedPrecondition, "eachDiff: exit status 128")
    );
    let mut req = request(&r.w, &head, &head);
    req.repository = None;
    assert_eq!(
        failure(commit_diff(&mut c, req).await).0,
        Code::InvalidArgument
    );
    assert!(crate::common::git_processes(&s.storage, "diff").is_empty());
    s.stop().await;
}
