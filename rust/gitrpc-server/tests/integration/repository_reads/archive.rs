//! GetArchive: bytes equal to `git archive` with the same arguments (tar, zip, tar.gz), the
//! tar.bz2 decompressed equal to git's tar; archives unpacked by `tar` and `unzip`; path,
//! exclude, elide_path, prefix; every refusal.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use gitrpc_proto::gitaly::get_archive_request::Format;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{client, files, Client};
use crate::commit_history::{bad_repos, failure, git_cmd, run, stream, wait_no_git, Work};
use crate::common::TestServer;

fn request(w: &Work, commit: &str, format: Format) -> GetArchiveRequest {
    GetArchiveRequest {
        repository: Some(w.repo()),
        commit_id: commit.into(),
        prefix: "p".into(),
        format: format as i32,
        ..Default::default()
    }
}

async fn archive(c: &mut Client, r: GetArchiveRequest) -> Result<Vec<u8>, tonic::Status> {
    let msgs = stream(c.get_archive(r).await).await?;
    let n = msgs.len();
    for (i, m) in msgs.iter().enumerate() {
        assert!(m.data.len() <= 128 * 1024);
        if i + 1 < n {
            assert_eq!(m.data.len(), 128 * 1024, "only the last message is short");
        }
    }
    Ok(msgs.into_iter().flat_map(|m| m.data).collect())
}

/// `git -c attr.tree=HEAD archive <args>` (the server's attribute source for a bare
/// repository).
fn git_archive<I: IntoIterator<Item = A>, A: AsRef<OsStr>>(w: &Work, args: I) -> Vec<u8> {
    run(git_cmd(&w.path)
        .args(["-c", "attr.tree=HEAD", "archive"])
        .args(args))
}

/// Names of a tar's entries, as `tar -t` lists them.
fn tar_names(tar: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.tar");
    std::fs::write(&f, tar).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// Unpack with `tar -x` or `unzip` and read one file.
fn unpack_read(archive: &[u8], zip: bool, file: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a");
    std::fs::write(&f, archive).unwrap();
    let out = match zip {
        true => std::process::Command::new("unzip")
            .arg("-q")
            .arg(&f)
            .arg("-d")
            .arg(dir.path().join("x"))
            .output(),
        false => {
            std::fs::create_dir(dir.path().join("x")).unwrap();
            std::process::Command::new("tar")
                .arg("-xf")
                .arg(&f)
                .arg("-C")
                .arg(dir.path().join("x"))
                .output()
        }
    }
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.path().join("x").join(file)).unwrap()
}

#[tokio::test]
async fn every_format_equals_git_archive() {
    let s = TestServer::start().await;
    let w = files(&s, "a.git");
    let head = w.rev("main");
    let mut c = client(&s);
    let tar = git_archive(&w, ["--format=tar", "--prefix=p/", &head, "--", "."]);
    for (format, flag) in [
        (Format::Tar, "--format=tar"),
        (Format::Zip, "--format=zip"),
        (Format::TarGz, "--format=tar.gz"),
    ] {
        let got = archive(&mut c, request(&w, &head, format)).await.unwrap();
        let want = git_archive(&w, [flag, "--prefix=p/", &head, "--", "."]);
        assert!(
            got == want,
            "{format:?}: {} vs {} bytes",
            got.len(),
            want.len()
        );
    }
    let bz = archive(&mut c, request(&w, &head, Format::TarBz2))
        .await
        .unwrap();
    assert!(bz.starts_with(b"BZh9"));
    let mut plain = Vec::new();
    bzip2::read::BzDecoder::new(&bz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert!(plain == tar, "tar.bz2 decompresses to git's tar");
    // Unpacked by the tools: export-ignore and export-subst applied, names kept.
    let names = tar_names(&tar);
    assert!(
        names.contains(&"p/with space/e.txt".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("ignored")), "{names:?}");
    assert_eq!(
        unpack_read(&tar, false, "p/subst.txt"),
        format!("commit {head}\n").into_bytes()
    );
    let zip = archive(&mut c, request(&w, &head, Format::Zip))
        .await
        .unwrap();
    assert_eq!(unpack_read(&zip, true, "p/sub/deep/c.txt"), b"c\n");
    let tgz = archive(&mut c, request(&w, &head, Format::TarGz))
        .await
        .unwrap();
    assert_eq!(unpack_read(&tgz, false, "p/README.md"), b"# readme\n");
    // A big, incompressible-enough file spans several messages (checked in `archive`).
    w.write(
        "big.bin",
        (0..400_000u32)
            .flat_map(|i| (i.wrapping_mul(2654435761)).to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let head2 = w.commit("big");
    let got = archive(&mut c, request(&w, &head2, Format::Tar))
        .await
        .unwrap();
    assert!(got.len() > 1_600_000);
    assert!(got == git_archive(&w, ["--format=tar", "--prefix=p/", &head2, "--", "."]));
    wait_no_git(s.dir.path(), "a.git").await;
    s.stop().await;
}

#[tokio::test]
async fn path_exclude_elide_and_prefix() {
    let s = TestServer::start().await;
    let w = files(&s, "a.git");
    let head = w.rev("main");
    let mut c = client(&s);
    let tar = |path: &[u8], exclude: &[&[u8]], elide: bool, prefix: &str| GetArchiveRequest {
        path: path.to_vec(),
        exclude: exclude.iter().map(|e| e.to_vec()).collect(),
        elide_path: elide,
        prefix: prefix.into(),
        ..request(&w, &head, Format::Tar)
    };
    // path (with a trailing slash, cleaned) and exclude: git's own bytes.
    for path in [&b"sub/"[..], b"sub", b"/sub", b"x/../sub"] {
        let got = archive(&mut c, tar(path, &[b"sub/deep/more"], false, "p"))
            .await
            .unwrap();
        let want = git_archive(
            &w,
            [
                "--format=tar",
                "--prefix=p/",
                &head,
                "--",
                "sub",
                ":(exclude)sub/deep/more",
            ],
        );
        assert!(got == want, "{path:?}");
    }
    // Spaced and non-UTF-8 directories.
    let got = archive(&mut c, tar(b"with space", &[], false, "p"))
        .await
        .unwrap();
    assert_eq!(
        tar_names(&got),
        ["p/", "p/with space/", "p/with space/e.txt"]
    );
    let got = archive(&mut c, tar(b"caf\xe9", &[], false, "p"))
        .await
        .unwrap();
    let want = run(git_cmd(&w.path)
        .args(["archive", "--format=tar", "--prefix=p/", &head, "--"])
        .arg(OsStr::from_bytes(b"caf\xe9")));
    assert!(got == want);
    // elide_path: the directory becomes the root.
    let got = archive(&mut c, tar(b"sub", &[b"sub/deep/more"], true, "p"))
        .await
        .unwrap();
    assert_eq!(
        tar_names(&got),
        ["p/", "p/b.txt", "p/deep/", "p/deep/c.txt"]
    );
    let got = archive(&mut c, tar(b"with space", &[], true, "q"))
        .await
        .unwrap();
    assert_eq!(tar_names(&got), ["q/", "q/e.txt"]);
    // elide_path of the whole tree: no exclude can be under "./" (Gitaly's rule).
    let got = archive(&mut c, tar(b"", &[], true, "p")).await.unwrap();
    assert!(got == git_archive(&w, ["--format=tar", "--prefix=p/", &head]));
    assert_eq!(
        failure(archive(&mut c, tar(b"", &[b"sub"], true, "p")).await),
        (
            Code::InvalidArgument,
            "invalid exclude: \"sub\" is not a subdirectory of \".\"".to_string()
        )
    );
    // No prefix: entries start at "/" (as Gitaly), as git writes them.
    let got = archive(&mut c, tar(b"sub/deep", &[], false, ""))
        .await
        .unwrap();
    let want = git_archive(&w, ["--format=tar", "--prefix=/", &head, "--", "sub/deep"]);
    assert!(got == want);
    wait_no_git(s.dir.path(), "a.git").await;
    s.stop().await;
}

fn no_output_file(dir: &Path) {
    assert!(!dir.join("owned").exists());
}

#[tokio::test]
async fn archive_refusals() {
    let s = TestServer::start().await;
    let w = files(&s, "a.git");
    let empty = Work::new(&s, "empty.git", "sha1");
    let head = w.rev("main");
    let mut c = client(&s);
    let base = request(&w, &head, Format::Tar);
    let output = format!("--output={}", s.dir.path().join("owned").display());
    let cases: Vec<(GetArchiveRequest, Code, &str)> = vec![
        (
            GetArchiveRequest {
                path: b"../../foo".to_vec(),
                ..base.clone()
            },
            Code::InvalidArgument,
            "relative path escapes root directory",
        ),
        (
            GetArchiveRequest {
                exclude: vec![b"a/../..".to_vec()],
                ..base.clone()
            },
            Code::InvalidArgument,
            "relative path escapes root directory",
        ),
        (
            GetArchiveRequest {
                commit_id: String::new(),
                ..base.clone()
            },
            Code::InvalidArgument,
            "invalid commitId: empty revision",
        ),
        (
            GetArchiveRequest {
                commit_id: output.clone(),
                ..base.clone()
            },
            Code::InvalidArgument,
            "invalid commitId: revision can't start with '-'",
        ),
        (
            GetArchiveRequest {
                format: 9,
                ..base.clone()
            },
            Code::InvalidArgument,
            "invalid format",
        ),
        (
            GetArchiveRequest {
                path: b"sub".to_vec(),
                exclude: vec![b"README.md".to_vec()],
                elide_path: true,
                ..base.clone()
            },
            Code::InvalidArgument,
            "invalid exclude: \"README.md\" is not a subdirectory of \"sub\"",
        ),
        (
            GetArchiveRequest {
                path: b"nope".to_vec(),
                ..base.clone()
            },
            Code::FailedPrecondition,
            "path doesn't exist",
        ),
        (
            GetArchiveRequest {
                path: output.clone().into_bytes(),
                ..base.clone()
            },
            Code::FailedPrecondition,
            "path doesn't exist",
        ),
        (
            GetArchiveRequest {
                path: b"sub/*".to_vec(),
                ..base.clone()
            },
            Code::FailedPrecondition,
            "path doesn't exist",
        ),
        (
            GetArchiveRequest {
                exclude: vec![b"sub".to_vec(), b"gone".to_vec()],
                ..base.clone()
            },
            Code::FailedPrecondition,
            "exclude[1] doesn't exist",
        ),
        (
            GetArchiveRequest {
                commit_id: "1234567890123456789012345678901234567890".into(),
                ..base.clone()
            },
            Code::FailedPrecondition,
            "path doesn't exist",
        ),
        (
            GetArchiveRequest {
                commit_id: "main".into(),
                ..request(&empty, "main", Format::Tar)
            },
            Code::FailedPrecondition,
            "path doesn't exist",
        ),
    ];
    for (r, code, msg) in cases {
        let what = format!("{r:?}");
        assert_eq!(
            failure(archive(&mut c, r).await),
            (code, msg.to_string()),
            "{what}"
        );
    }
    no_output_file(s.dir.path());
    for (repo, code) in bad_repos(&s) {
        let r = GetArchiveRequest {
            repository: repo,
            ..base.clone()
        };
        assert_eq!(failure(archive(&mut c, r).await).0, code);
    }
    // A commit whose tree is empty.
    let root = empty.git(&[
        "commit-tree",
        "-m",
        "empty",
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    ]);
    let r = request(&empty, root.trim(), Format::Zip);
    assert_eq!(
        failure(archive(&mut c, r).await),
        (Code::FailedPrecondition, "path doesn't exist".to_string())
    );
    wait_no_git(s.dir.path(), "a.git").await;
    s.stop().await;
}

/// The client going away mid-stream stops git and the compressor.
#[tokio::test]
async fn cancelled_archive_stops_git() {
    let s = TestServer::start().await;
    let w = Work::new(&s, "big.git", "sha1");
    // ~24 MiB of incompressible data: far more than the channel and pipe buffers.
    let mut x = 0x1234_5678u32;
    let data: Vec<u8> = (0..6_000_000)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()
        })
        .collect();
    w.write("big.bin", data);
    let head = w.commit("big");
    let mut c = client(&s);
    for format in [Format::Tar, Format::TarBz2] {
        let mut st = c
            .get_archive(request(&w, &head, format))
            .await
            .unwrap()
            .into_inner();
        assert!(!st.message().await.unwrap().unwrap().data.is_empty());
        drop(st);
        wait_no_git(s.dir.path(), "big.git").await;
    }
    s.stop().await;
}
