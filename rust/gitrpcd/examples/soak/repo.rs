//! The soak's repositories, built once with `git fast-import` and cached under
//! `target/bench-repos/soak-<commits>c-<refs>r/`, then copied into each run's storage:
//!
//! - `reads.git`: `commits` commits over ~`commits/50` files, `refs` branches and tags; what
//!   reads, listings and cancelled calls use (never written);
//! - `clone.git`: a 300-commit repository that clients clone (never written: clone cost
//!   must not grow with the run);
//! - `push.git`: a copy of `clone.git` that pushes and ref writes go to.
//!
//! `samples.txt` holds what reads must answer: refs, commits, (commit, path, blob), blob sizes.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::Rng;

/// What reads are asked, with the right answers.
pub struct Samples {
    pub refs: Vec<String>,
    pub commits: Vec<String>,
    /// (commit, path, blob oid, blob size)
    pub entries: Vec<(String, String, String, i64)>,
    /// `main` of `clone.git` (what every clone must have).
    pub clone_head: String,
}

pub fn git(args: &[&str], dir: &Path) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Soak")
        .env("GIT_AUTHOR_EMAIL", "soak@example.com")
        .env("GIT_COMMITTER_NAME", "Soak")
        .env("GIT_COMMITTER_EMAIL", "soak@example.com")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cache_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target")
                .canonicalize()
                .unwrap()
        });
    target.join("bench-repos")
}

fn fast_import(repo: &Path, commits: usize, refs: usize, seed: u64) -> Vec<String> {
    std::fs::create_dir_all(repo).unwrap();
    git(&["init", "-q", "--bare", "-b", "main", "."], repo);
    let marks = repo.join("marks");
    let mut fi = Command::new("git")
        .args(["fast-import", "--quiet"])
        .arg(format!("--export-marks={}", marks.display()))
        .current_dir(repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let files = (commits / 50).clamp(10, 400);
    let mut rng = Rng(seed | 1);
    let line = |rng: &mut Rng| format!("{:016x} {:016x}\n", rng.next_u64(), rng.next_u64());
    let mut contents: Vec<Vec<String>> = (0..files)
        .map(|_| (0..30).map(|_| line(&mut rng)).collect())
        .collect();
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, fi.stdin.take().unwrap());
        for k in 1..=commits {
            let ts = 1_600_000_000 + k as u64 * 60;
            let msg = format!("Change {k}\n");
            write!(
                w,
                "commit refs/heads/main\nmark :{k}\nauthor A <a@example.com> {ts} +0000\ncommitter C <c@example.com> {ts} +0000\ndata {}\n{msg}",
                msg.len()
            )
            .unwrap();
            let changed: Vec<usize> = match k {
                1 => (0..files).collect(),
                _ => vec![rng.below(files)],
            };
            for i in changed {
                if k > 1 {
                    let l = rng.below(30);
                    contents[i][l] = line(&mut rng);
                }
                let data = contents[i].concat();
                write!(
                    w,
                    "M 100644 inline src/d{:02}/f{i:04}.txt\ndata {}\n{data}\n",
                    i % 20,
                    data.len()
                )
                .unwrap();
            }
            writeln!(w).unwrap();
        }
        for j in 0..refs {
            let mark = 1 + j * (commits - 1) / refs.saturating_sub(1).max(1);
            let name = match j % 10 {
                9 => format!("refs/tags/v{j:05}"),
                _ => format!("refs/heads/feature/b{j:05}"),
            };
            write!(w, "reset {name}\nfrom :{mark}\n\n").unwrap();
        }
        w.flush().unwrap();
    }
    assert!(fi.wait().unwrap().success(), "fast-import failed");
    git(&["pack-refs", "--all"], repo);
    git(&["repack", "-a", "-d", "-q"], repo);
    let oids = std::fs::read_to_string(&marks)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    std::fs::remove_file(&marks).unwrap();
    oids
}

/// Build (once) and return the cache directory for this size.
fn cached(commits: usize, refs: usize) -> PathBuf {
    let dir = cache_root().join(format!("soak-{commits}c-{refs}r"));
    if dir.join("samples.txt").exists() {
        return dir;
    }
    eprintln!("soak: building {} ...", dir.display());
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let reads = tmp.join("reads.git");
    let oids = fast_import(&reads, commits, refs, 42);
    let clone_oids = fast_import(&tmp.join("clone.git"), 300, 10, 7);
    let mut rng = Rng(99);
    let mut out = String::new();
    for r in git(&["for-each-ref", "--format=%(refname)"], &reads).lines() {
        writeln!(out, "ref {r}").unwrap();
    }
    for _ in 0..500 {
        writeln!(out, "commit {}", oids[rng.below(oids.len())]).unwrap();
    }
    // (commit, path) pairs that exist: the files of the first commit exist in every commit.
    let files: Vec<String> = git(&["ls-tree", "-r", "--name-only", &oids[0]], &reads)
        .lines()
        .map(str::to_string)
        .collect();
    let mut input = String::new();
    let mut pairs = Vec::new();
    for _ in 0..500 {
        let c = &oids[rng.below(oids.len())];
        let p = &files[rng.below(files.len())];
        writeln!(input, "{c}:{p}").unwrap();
        pairs.push((c.clone(), p.clone()));
    }
    let mut check = Command::new("git")
        .args(["cat-file", "--batch-check"])
        .current_dir(&reads)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = check.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let answer = check.wait_with_output().unwrap();
    writer.join().unwrap();
    for ((c, p), line) in pairs
        .iter()
        .zip(String::from_utf8(answer.stdout).unwrap().lines())
    {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[1], "blob", "{c}:{p}: {line}");
        writeln!(out, "entry {c} {p} {} {}", f[0], f[2]).unwrap();
    }
    writeln!(out, "clone_head {}", clone_oids.last().unwrap()).unwrap();
    std::fs::write(tmp.join("samples.txt"), out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).unwrap();
    dir
}

/// Copy the repositories into `storage` (a fresh directory) and read the samples.
pub fn prepare(storage: &Path, commits: usize, refs: usize) -> Arc<Samples> {
    let cache = cached(commits, refs);
    std::fs::create_dir_all(storage).unwrap();
    for r in ["reads.git", "clone.git"] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(cache.join(r))
            .arg(storage.join(r))
            .status()
            .unwrap();
        assert!(status.success(), "cp {r}");
    }
    git(
        &[
            "clone",
            "-q",
            "--bare",
            "--no-local",
            "clone.git",
            "push.git",
        ],
        storage,
    );
    git(&["remote", "remove", "origin"], &storage.join("push.git"));
    let mut s = Samples {
        refs: Vec::new(),
        commits: Vec::new(),
        entries: Vec::new(),
        clone_head: String::new(),
    };
    for line in std::fs::read_to_string(cache.join("samples.txt"))
        .unwrap()
        .lines()
    {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "ref" => s.refs.push(f[1].into()),
            "commit" => s.commits.push(f[1].into()),
            "entry" => {
                s.entries
                    .push((f[1].into(), f[2].into(), f[3].into(), f[4].parse().unwrap()))
            }
            "clone_head" => s.clone_head = f[1].into(),
            _ => panic!("bad samples line {line:?}"),
        }
    }
    Arc::new(s)
}
