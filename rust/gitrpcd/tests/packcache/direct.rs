use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::cache::*;
use crate::harness::{git_ok, STORAGE};
use crate::support::*;

fn direct(s: &Server) -> f64 {
    lookups(s, "hit_direct")
}

fn pkt(s: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", s.len() + 4).into_bytes();
    v.extend_from_slice(s.as_bytes());
    v
}

/// A protocol-v2 fetch of `wants` as `git fetch` sends it for a clone (`done`, no haves).
fn fetch_request(wants: &[&str]) -> Vec<u8> {
    let mut r = pkt("command=fetch\n");
    r.extend(pkt("agent=git/test\n"));
    r.extend(pkt("object-format=sha1\n"));
    r.extend(b"0001");
    for a in ["thin-pack\n", "no-progress\n", "ofs-delta\n"] {
        r.extend(pkt(a));
    }
    for w in wants {
        r.extend(pkt(&format!("want {w}\n")));
    }
    r.extend(pkt("done\n"));
    r.extend(b"0000");
    r
}

/// One upload-pack session through `gitrpc-ssh` (SSHUploadPackWithSidechannel, protocol v2):
/// `request`, then the end of input. The pack of the response (band 1 of its `packfile`
/// section), or `None` if the session failed.
fn raw_fetch(s: &Server, rel: &str, request: &[u8]) -> Option<Vec<u8>> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} gitrpc.example \"git-upload-pack '{STORAGE}/{rel}'\"",
            s.gitrpc_ssh(&s.unix, "")
        ))
        .env("GIT_PROTOCOL", "version=2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(request).unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return None;
    }
    Some(pack_of(&out.stdout))
}

/// The band-1 data of the `packfile` section of a v2 session's output (capabilities, then
/// the fetch response); panics on anything else.
fn pack_of(mut out: &[u8]) -> Vec<u8> {
    let mut pack = Vec::new();
    let mut in_pack = false;
    loop {
        let len = usize::from_str_radix(std::str::from_utf8(&out[..4]).unwrap(), 16).unwrap();
        if len < 4 {
            out = &out[4..];
            if len == 0 && in_pack {
                assert!(out.is_empty(), "bytes after the response");
                return pack;
            }
            continue;
        }
        let line = &out[4..len];
        out = &out[len..];
        if !in_pack {
            in_pack = line == b"packfile\n";
            continue;
        }
        match line[0] {
            1 => pack.extend_from_slice(&line[1..]),
            2 => {}
            b => panic!("band {b}: {}", String::from_utf8_lossy(&line[1..])),
        }
    }
}

/// The same fetch twice: the first goes through upload-pack and its hook, the second is
/// answered by the server from the same entry, with the same pack (no upload-pack relaying
/// it: no hook lookup). Once a wanted ref is deleted (behind the server's back: no
/// invalidation), the same request is no longer served by the fast path: it goes to
/// upload-pack.
#[test]
fn a_fetch_is_served_from_the_cache_until_a_wanted_ref_goes() {
    let s = server("min_occurrences = 0", "");
    let work = s.daemon.seed("d.git");
    let bare = s.storage().join("d.git");
    git_ok(&bare, &["branch", "b", "main~1"]);
    let (main, b) = (rev(&bare, "main"), rev(&bare, "b"));
    let req = fetch_request(&[&main, &b]);

    let (h0, d0, p0) = (hook_lookups(&s), direct(&s), pack_objects(&s));
    let first = raw_fetch(&s, "d.git", &req).expect("the first fetch");
    assert_eq!((hook_lookups(&s) - h0, direct(&s) - d0), (1.0, 0.0));
    let second = raw_fetch(&s, "d.git", &req).expect("the second fetch");
    assert_eq!((hook_lookups(&s) - h0, direct(&s) - d0), (1.0, 1.0));
    assert_eq!(second, first, "the cached pack, as upload-pack sent it");
    assert_eq!(pack_objects(&s) - p0, 1.0);
    // The pack is good: every wanted commit is in it.
    let t = tempfile::tempdir().unwrap();
    git_ok(t.path(), &["init", "-q", "--bare", "x.git"]);
    let x = t.path().join("x.git");
    let mut ip = Command::new("git")
        .args(["index-pack", "--stdin", "--fix-thin"])
        .current_dir(&x)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    ip.stdin.take().unwrap().write_all(&second).unwrap();
    assert!(ip.wait().unwrap().success());
    git_ok(&x, &["cat-file", "-e", &format!("{main}^{{tree}}")]);
    git_ok(&x, &["cat-file", "-e", &b]);

    git_ok(&bare, &["update-ref", "-d", "refs/heads/b"]);
    let h = hook_lookups(&s);
    // upload-pack (v2) still gives any object it has: the request goes to it.
    assert!(raw_fetch(&s, "d.git", &req).is_some());
    assert_eq!(hook_lookups(&s) - h, 1.0, "through upload-pack");
    assert_eq!(direct(&s) - d0, 1.0, "no fast path for a deleted ref");
    // A request for what is still a tip learns its own entry and is then served.
    let req = fetch_request(&[&main]);
    assert!(raw_fetch(&s, "d.git", &req).is_some());
    assert!(raw_fetch(&s, "d.git", &req).is_some());
    assert_eq!(direct(&s) - d0, 2.0);
    drop(work);
    assert_clean(&s);
}

fn git_via(s: &Server, cwd: &Path, args: &[&str]) -> Output {
    let mut c = git_cmd(cwd);
    c.env("GIT_SSH_COMMAND", s.gitrpc_ssh(&s.unix, ""))
        .args(["-c", "ssh.variant=ssh", "-c", "protocol.version=2"])
        .args(args);
    let out = c.output().unwrap();
    assert_ok(&out, &format!("{args:?}"));
    out
}

/// Fetches with haves (into an existing clone), shallow and partial clones go through
/// upload-pack every time, and work.
#[test]
fn other_fetches_go_through_upload_pack() {
    let s = server("min_occurrences = 0", "");
    let work = s.daemon.seed("o.git");
    let bare = s.storage().join("o.git");
    let url = "ssh://gitrpc.example/default/o.git";
    let t = tempfile::tempdir().unwrap();
    git_via(&s, t.path(), &["clone", "-q", "--bare", url, "c1"]);
    git_via(&s, t.path(), &["clone", "-q", "--bare", url, "c2"]);
    let d0 = direct(&s);
    assert_eq!(d0, 1.0, "an identical clone is served directly");
    let cases: [&[&str]; 2] = [
        &["clone", "-q", "--bare", "--depth", "1"],
        &["clone", "-q", "--bare", "--filter=blob:none"],
    ];
    for (k, args) in cases.iter().enumerate() {
        for n in 0..2 {
            let h = hook_lookups(&s);
            let name = format!("o{k}{n}");
            let mut a = args.to_vec();
            a.extend([url, &name]);
            git_via(&s, t.path(), &a);
            assert_eq!(hook_lookups(&s) - h, 1.0, "{args:?}");
            assert_eq!(rev(&t.path().join(&name), "HEAD"), rev(&bare, "main"));
        }
    }
    commit_to(work.path(), &bare, "three");
    for c in ["c1", "c2"] {
        let h = hook_lookups(&s);
        git_via(&s, &t.path().join(c), &["fetch", "-q", url, "main"]);
        assert_eq!(hook_lookups(&s) - h, 1.0, "a fetch with haves");
        assert_eq!(rev(&t.path().join(c), "FETCH_HEAD"), rev(&bare, "main"));
        git_ok(&t.path().join(c), &["fsck", "--no-progress", "--strict"]);
    }
    assert_eq!(direct(&s), d0);
    assert_clean(&s);
}

/// A fetch of `main` into empty repositories (tags followed: `include-tag`) is served
/// directly the second time; after a push of an annotated tag pointing at `main` (the
/// wants are the same) the next fetch gets the tag, and after a push of a commit the new
/// commit: no stale pack is served.
#[test]
fn a_push_between_serves_no_stale_pack() {
    let s = server("min_occurrences = 0", "");
    let work = s.daemon.seed("p.git");
    let bare = s.storage().join("p.git");
    let url = "ssh://gitrpc.example/default/p.git";
    let t = tempfile::tempdir().unwrap();
    let fetch = |name: &str| {
        let dir = t.path().join(name);
        git_ok(t.path(), &["init", "-q", "--bare", name]);
        git_via(&s, &dir, &["fetch", "-q", url, "main:refs/heads/main"]);
        dir
    };
    let d0 = direct(&s);
    fetch("f1");
    fetch("f2");
    assert_eq!(direct(&s) - d0, 1.0);

    git_ok(work.path(), &["tag", "-a", "-m", "v1", "v1", "main"]);
    let out = s
        .daemon
        .client_git(work.path(), &["push", "-q", url, "v1"])
        .output()
        .unwrap();
    assert_ok(&out, "push a tag");
    let tag = rev(&bare, "v1");
    let f3 = fetch("f3");
    assert_eq!(direct(&s) - d0, 1.0, "a pack from before the push");
    assert_eq!(git_ok(&f3, &["cat-file", "-t", &tag]).trim(), "tag");
    assert_eq!(rev(&f3, "refs/tags/v1"), tag);
    let f4 = fetch("f4");
    assert_eq!(direct(&s) - d0, 2.0, "the pack with the tag, again");
    assert_eq!(rev(&f4, "refs/tags/v1"), tag);

    std::fs::write(work.path().join("new.txt"), "new").unwrap();
    git_ok(work.path(), &["add", "."]);
    git_ok(work.path(), &["commit", "-qm", "new"]);
    let out = s
        .daemon
        .client_git(work.path(), &["push", "-q", url, "main"])
        .output()
        .unwrap();
    assert_ok(&out, "push a commit");
    let f5 = fetch("f5");
    assert_eq!(rev(&f5, "main"), rev(&bare, "main"));
    git_ok(&f5, &["fsck", "--no-progress", "--strict"]);
    assert_eq!(direct(&s) - d0, 2.0);
    assert_clean(&s);
}
