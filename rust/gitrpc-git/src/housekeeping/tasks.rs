//! The git commands of an optimization, as plain data (Gitaly's `housekeeping/objects.go`,
//! `commit_graph.go` and its `pack-refs`): flags are constants, dates are ours. The server
//! runs them with its [`crate::Git`], one at a time, in the order of [`super::strategy::Plan`].

use std::path::Path;
use std::time::SystemTime;

use super::stats::FULL_REPACK_TIMESTAMP;
use super::strategy::{CommitGraphWrite, Prune, Repack, RepackStrategy};
use crate::{Command, Subcommand};

/// A date git's `--expire` and `--cruft-expiration` take: `@<unix seconds> +0000`.
pub fn git_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("@{secs} +0000")
}

/// Config for commands that write packs (Gitaly's `GetRepackGitConfig`): delta islands per
/// branch and tag namespace (so forks served from a pool get good deltas), a bitmap with a
/// lookup table when asked.
fn repack_config(cmd: Command, bitmap: bool, pool: bool) -> Command {
    let cmd = cmd
        .config("repack.useDeltaIslands", "true")
        .config("repack.writeBitmaps", if bitmap { "true" } else { "false" })
        .config("pack.writeBitmapLookupTable", "true");
    match pool {
        true => cmd
            .config("pack.island", "refs/gitaly/object-pool/he(a)ds")
            .config("pack.island", "refs/gitaly/object-pool/t(a)gs")
            .config("pack.islandCore", "a"),
        false => cmd
            .config("pack.island", "r(e)fs/heads")
            .config("pack.island", "r(e)fs/tags")
            .config("pack.islandCore", "e"),
    }
}

/// The commands of a repack, in order. `pool`: the repository is an object pool.
pub fn repack(repo: &Path, r: &Repack, pool: bool) -> Vec<Command> {
    match r.strategy {
        // No git-repack mode packs loose objects regardless of reachability: pack-objects
        // with no revisions on stdin takes them all as unreachable, `--incremental` skips
        // what is already packed; then the now-packed loose copies go.
        RepackStrategy::IncrementalWithUnreachable => {
            let pack = repo.join("objects").join("pack").join("pack");
            vec![
                Command::in_repo(repo, Subcommand::PackObjects)
                    .flag("--pack-loose-unreachable")
                    .flag("--local")
                    .flag("--incremental")
                    .flag("--non-empty")
                    .flag("--quiet")
                    .arg(pack),
                Command::in_repo(repo, Subcommand::PrunePacked).flag("--quiet"),
            ]
        }
        RepackStrategy::FullWithCruft => {
            let mut c = Command::in_repo(repo, Subcommand::Repack)
                .flag("--cruft")
                .flag("--pack-kept-objects")
                .flag("-l")
                .flag("-d");
            if let Some(before) = r.cruft_expire_before {
                c = c.flag_value("--cruft-expiration", git_date(before));
            }
            vec![finish_repack(c, r, pool)]
        }
        RepackStrategy::FullWithUnreachable => {
            let c = Command::in_repo(repo, Subcommand::Repack)
                .flag("-a")
                .flag("-l")
                .flag("-d")
                .flag("--keep-unreachable");
            vec![finish_repack(c, r, pool)]
        }
        RepackStrategy::Geometric => {
            let c = Command::in_repo(repo, Subcommand::Repack)
                .flag("--geometric=2")
                .flag("-d")
                .flag("-l");
            vec![finish_repack(c, r, pool)]
        }
    }
}

fn finish_repack(c: Command, r: &Repack, pool: bool) -> Command {
    let c = c.flag("--quiet");
    let c = if r.write_midx {
        c.flag("--write-midx")
    } else {
        c
    };
    repack_config(c, r.write_bitmap, pool)
}

/// Before a full repack: record when (Gitaly writes it first, so a full repack that keeps
/// failing on a huge repository isn't retried at every optimization).
pub fn write_full_repack_timestamp(repo: &Path) -> std::io::Result<()> {
    let f = std::fs::File::create(repo.join(FULL_REPACK_TIMESTAMP))?;
    f.set_modified(SystemTime::now())
}

/// `git prune --expire=<date>`: loose objects that are unreachable and older than the date
/// (the grace period protects objects a concurrent writer has not referenced yet).
pub fn prune(repo: &Path, p: &Prune) -> Command {
    Command::in_repo(repo, Subcommand::Prune).flag_value("--expire", git_date(p.expire_before))
}

/// `git pack-refs --all` (Gitaly also passes `--auto`, which git 2.46 added and older git
/// refuses; the decision is ours anyway).
pub fn pack_refs(repo: &Path) -> Command {
    Command::in_repo(repo, Subcommand::PackRefs).flag("--all")
}

/// `git commit-graph write --reachable --changed-paths --size-multiple=4 --split[=replace]`.
pub fn write_commit_graph(repo: &Path, c: &CommitGraphWrite) -> Command {
    let cmd = Command::in_repo(repo, Subcommand::CommitGraph)
        .flag("write")
        .flag("--reachable")
        .flag("--changed-paths")
        .flag("--size-multiple=4");
    match c.replace_chain {
        true => cmd.flag("--split=replace"),
        false => cmd.flag("--split"),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::time::Duration;

    use super::*;

    fn argv(c: &Command) -> Vec<String> {
        c.args(&[] as &[OsString])
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn command_lines() {
        let repo = Path::new("/s/r.git");
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let full = Repack {
            strategy: RepackStrategy::FullWithCruft,
            write_bitmap: true,
            write_midx: true,
            cruft_expire_before: Some(when),
        };
        let cmds = repack(repo, &full, false);
        assert_eq!(
            argv(&cmds[0]),
            [
                "-c",
                "repack.useDeltaIslands=true",
                "-c",
                "repack.writeBitmaps=true",
                "-c",
                "pack.writeBitmapLookupTable=true",
                "-c",
                "pack.island=r(e)fs/heads",
                "-c",
                "pack.island=r(e)fs/tags",
                "-c",
                "pack.islandCore=e",
                "--git-dir=/s/r.git",
                "repack",
                "--cruft",
                "--pack-kept-objects",
                "-l",
                "-d",
                "--cruft-expiration=@1700000000 +0000",
                "--quiet",
                "--write-midx",
            ]
        );
        let inc = Repack {
            strategy: RepackStrategy::IncrementalWithUnreachable,
            write_bitmap: false,
            write_midx: false,
            cruft_expire_before: None,
        };
        let cmds = repack(repo, &inc, false);
        assert_eq!(
            argv(&cmds[0]),
            [
                "--git-dir=/s/r.git",
                "pack-objects",
                "--pack-loose-unreachable",
                "--local",
                "--incremental",
                "--non-empty",
                "--quiet",
                "/s/r.git/objects/pack/pack"
            ]
        );
        assert_eq!(
            argv(&cmds[1]),
            ["--git-dir=/s/r.git", "prune-packed", "--quiet"]
        );
        let geo = Repack {
            strategy: RepackStrategy::Geometric,
            write_bitmap: false,
            write_midx: true,
            cruft_expire_before: None,
        };
        let a = argv(&repack(repo, &geo, true)[0]);
        assert!(a.contains(&"pack.islandCore=a".to_string()));
        assert!(a.contains(&"repack.writeBitmaps=false".to_string()));
        assert!(a.ends_with(&[
            "repack".into(),
            "--geometric=2".into(),
            "-d".into(),
            "-l".into(),
            "--quiet".into(),
            "--write-midx".into()
        ]));
        assert_eq!(
            argv(&prune(
                repo,
                &Prune {
                    expire_before: when
                }
            )),
            ["--git-dir=/s/r.git", "prune", "--expire=@1700000000 +0000"]
        );
        assert_eq!(
            argv(&pack_refs(repo)),
            ["--git-dir=/s/r.git", "pack-refs", "--all"]
        );
        assert_eq!(
            argv(&write_commit_graph(
                repo,
                &CommitGraphWrite {
                    replace_chain: true
                }
            )),
            [
                "--git-dir=/s/r.git",
                "commit-graph",
                "write",
                "--reachable",
                "--changed-paths",
                "--size-multiple=4",
                "--split=replace"
            ]
        );
    }
}
