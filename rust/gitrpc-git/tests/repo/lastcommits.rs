//! The one-walk last commits (`gitrpc_git::lastcommits`) against `git log -1 <rev> --
//! <path>` for every entry, on generated histories with merges (clean, evil, criss-cross,
//! side branches as first parents), commit dates going backwards, entries that turn from
//! files into directories, and on SHA-256.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use gitrpc_git::lastcommits::last_commits;
use gitrpc_git::{CatFilePool, CatFilePoolConfig};

use crate::common::{git, git_cli};

/// A tiny deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Files by path (content), as a branch has them.
type State = BTreeMap<String, String>;

/// A fast-import stream of a history: `main` with `commits` commits touching the
/// directory `d/` (entries changed with skewed frequency; `d/flip` turns from a file into
/// a directory and back), merges of side branches every few commits (resolved cleanly, or
/// "evil" with content of neither side, or with the side as first parent), and commit dates
/// that jump backwards.
fn history(seed: u64, commits: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut mark = 0usize;
    let mut time: i64 = 1_600_000_000;
    let names: Vec<String> = (0..24).map(|i| format!("d/e{i:02}")).collect();
    let mut main = State::new();
    for n in &names {
        main.insert(n.clone(), format!("{n} root\n"));
    }
    main.insert("d/sub/x".into(), "x\n".into());
    main.insert("d/flip".into(), "file\n".into());
    main.insert("other".into(), "o\n".into());
    let mut marks: Vec<(usize, State)> = Vec::new();
    let mut commit = |out: &mut Vec<u8>,
                      rng: &mut Rng,
                      branch: &str,
                      parents: &[usize],
                      before: &State,
                      after: &State,
                      msg: &str|
     -> usize {
        mark += 1;
        // Mostly forward; sometimes far back (clock skew).
        time += if rng.below(7) == 0 {
            -(rng.below(200_000) as i64)
        } else {
            60 + rng.below(600) as i64
        };
        write!(
            out,
            "commit refs/heads/{branch}\nmark :{mark}\ncommitter C <c@example.com> {time} +0000\ndata {}\n{msg}\n",
            msg.len() + 1
        )
        .unwrap();
        if let Some(p) = parents.first() {
            writeln!(out, "from :{p}").unwrap();
        }
        for p in parents.iter().skip(1) {
            writeln!(out, "merge :{p}").unwrap();
        }
        if parents.is_empty() {
            out.extend_from_slice(b"deleteall\n");
        }
        // Deletions first: a file may become a directory in the same commit.
        for path in before.keys().filter(|p| !after.contains_key(*p)) {
            writeln!(out, "D {path}").unwrap();
        }
        for (path, content) in after {
            if parents.is_empty() || before.get(path) != Some(content) {
                write!(
                    out,
                    "M 100644 inline {path}\ndata {}\n{content}\n",
                    content.len()
                )
                .unwrap();
            }
        }
        mark
    };
    let change = |rng: &mut Rng, s: &mut State, tag: &str| {
        // Low entries change often, high ones rarely; e23 never does.
        for _ in 0..=rng.below(3) {
            let r = rng.below(1000);
            let i = ((r * r) / 45_000).min(22) as usize;
            let n = &names[i];
            s.insert(n.clone(), format!("{n} {tag} {}\n", rng.next()));
        }
        if rng.below(9) == 0 {
            s.insert("d/sub/x".into(), format!("x {tag}\n"));
        }
        if rng.below(13) == 0 {
            if s.remove("d/flip").is_some() {
                s.insert("d/flip/inner".into(), format!("dir {tag}\n"));
            } else {
                s.remove("d/flip/inner");
                s.insert("d/flip".into(), format!("file {tag}\n"));
            }
        }
        if rng.below(3) == 0 {
            s.insert("other".into(), format!("o {tag}\n"));
        }
    };
    let root = commit(
        &mut out,
        &mut rng,
        "main",
        &[],
        &State::new(),
        &main,
        "root",
    );
    marks.push((root, main.clone()));
    let mut head = root;
    let mut i = 0;
    while i < commits {
        i += 1;
        if i % 7 != 0 || marks.len() < 4 {
            let mut next = main.clone();
            change(&mut rng, &mut next, &format!("m{i}"));
            head = commit(&mut out, &mut rng, "main", &[head], &main, &next, "m");
            main = next;
            marks.push((head, main.clone()));
            continue;
        }
        // A side branch forked a few commits back.
        let back = 1 + rng.below(4.min(marks.len() as u64 - 1)) as usize;
        let (fork, base) = marks[marks.len() - 1 - back].clone();
        let mut side = base.clone();
        let mut tip = fork;
        for k in 0..=rng.below(3) {
            let mut next = side.clone();
            change(&mut rng, &mut next, &format!("s{i}.{k}"));
            tip = commit(&mut out, &mut rng, "side", &[tip], &side, &next, "s");
            side = next;
        }
        // Sometimes the side also makes a change main made since the fork (a cherry-pick):
        // the entry is then the same in both parents of the merge, with different histories.
        if let Some(k) = main
            .keys()
            .find(|k| main.get(*k) != base.get(*k) && rng.below(2) == 0)
        {
            let mut next = side.clone();
            match main.get(k) {
                Some(v) => next.insert(k.clone(), v.clone()),
                None => next.remove(k),
            };
            if k == "d/flip" {
                next.remove("d/flip/inner");
            }
            tip = commit(&mut out, &mut rng, "side", &[tip], &side, &next, "pick");
            side = next;
        }
        // Merge: per path, whichever side changed it; both: one of them, or evil.
        let mut merged = State::new();
        let keys: std::collections::BTreeSet<&String> =
            main.keys().chain(side.keys()).chain(base.keys()).collect();
        for k in keys {
            let (m, s, b) = (main.get(k), side.get(k), base.get(k));
            let pick = if m == b {
                s
            } else if s == b || m == s {
                m
            } else {
                match rng.below(3) {
                    0 => m,
                    1 => s,
                    _ => None,
                }
            };
            let evil = format!("evil {k} {i}\n");
            let v = match pick {
                Some(v) => Some(v.clone()),
                None if m.is_some() && s.is_some() => Some(evil),
                None => None,
            };
            if let Some(v) = v {
                merged.insert(k.clone(), v);
            }
        }
        // A file and a directory of the same name can't both stay.
        if merged.contains_key("d/flip") {
            merged.remove("d/flip/inner");
        }
        let side_first = rng.below(5) == 0;
        let (parents, before) = if side_first {
            ([tip, head], &side)
        } else {
            ([head, tip], &main)
        };
        head = commit(
            &mut out, &mut rng, "main", &parents, before, &merged, "merge",
        );
        main = merged;
        marks.push((head, main.clone()));
        // Criss-cross now and then: the side merges main's previous tip too.
        if rng.below(4) == 0 {
            let (prev, prev_state) = marks[marks.len() - 2].clone();
            let _ = commit(
                &mut out,
                &mut rng,
                "cross",
                &[prev, tip],
                &prev_state,
                &main,
                "cross",
            );
        }
    }
    out.extend_from_slice(b"done\n");
    out
}

fn import(dir: &Path, format: &str, stream: &[u8]) {
    git_cli(
        dir,
        &["init", "-q", "--bare", &format!("--object-format={format}")],
    );
    let mut child = StdCommand::new("git")
        .args(["fast-import", "--quiet", "--done", "--force"])
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stream).unwrap();
    assert!(child.wait().unwrap().success());
}

/// For each entry of `dir` at `rev`: what `git log -1 --format=%H <rev> -- <path>` says.
fn baseline(repo: &Path, rev: &str, paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .map(|p| git_cli(repo, &["log", "-1", "--format=%H", rev, "--", p]))
        .collect()
}

async fn check(repo: &Path, rev: &str, dir: &str) {
    let git = git().await;
    let start = git_cli(repo, &["rev-parse", &format!("{rev}^{{commit}}")]);
    let spec = if dir.is_empty() {
        ".".to_string()
    } else {
        format!("{dir}/")
    };
    let listed = git_cli(repo, &["ls-tree", "--name-only", &start, "--", &spec]);
    let paths: Vec<String> = listed.lines().map(str::to_string).collect();
    assert!(!paths.is_empty());
    let names: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| p.rsplit('/').next().unwrap().as_bytes().to_vec())
        .collect();
    let pool = CatFilePool::new(git.clone(), CatFilePoolConfig::default());
    let mut cat = pool.get(repo).unwrap();
    let got = last_commits(&git, &mut cat, repo, &start, dir.as_bytes(), names)
        .await
        .unwrap();
    assert_eq!(got, baseline(repo, &start, &paths), "{rev} -- {dir}/");
}

#[tokio::test]
async fn one_walk_equals_git_log_for_every_entry() {
    for (seed, format) in [(7, "sha1"), (99, "sha1"), (2024, "sha256")] {
        let d = tempfile::tempdir().unwrap();
        import(d.path(), format, &history(seed, 160));
        for rev in ["main", "main~3", "main^2", "side", "cross"] {
            let exists = StdCommand::new("git")
                .args(["rev-parse", "--verify", "-q", rev])
                .current_dir(d.path())
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success();
            if exists {
                check(d.path(), rev, "d").await;
                check(d.path(), rev, "").await;
            }
        }
        check(d.path(), "main", "d/sub").await;
    }
}
