//! Three-way merges without a work tree or an index: `git merge-tree --write-tree -z
//! --name-only` (git 2.38+), whose trees are written as objects and whose answer is parsed
//! here.
//!
//! git 2.47's output with `-z --name-only`:
//! - exit 0: `<tree>\0`;
//! - exit 1, conflicts: `<tree>\0<path>\0<path>\0\0` followed by informational messages
//!   (each conflicted path once);
//! - exit 1 and nothing on stdout: a side is not something git can merge (resolve revisions
//!   before merging);
//! - exit 128 `fatal: refusing to merge unrelated histories` without
//!   `--allow-unrelated-histories`.

use crate::{Command, Error, Git, Result, Subcommand};

/// What merging two sides gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeTree {
    Clean {
        tree: String,
    },
    /// `tree` holds conflict markers; `paths` are the conflicted paths, in git's order.
    Conflict {
        tree: String,
        paths: Vec<Vec<u8>>,
    },
}

/// Why `merge-tree` gave no result.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("refusing to merge unrelated histories")]
    UnrelatedHistories,
    #[error(transparent)]
    Git(#[from] Error),
}

/// Parse the stdout of `merge-tree --write-tree -z --name-only` that exited with `code`.
pub fn parse_merge_tree(code: i32, stdout: &[u8]) -> Option<MergeTree> {
    let mut records = stdout.split(|&b| b == 0);
    let tree = std::str::from_utf8(records.next()?).ok()?;
    if tree.is_empty() || !tree.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tree = tree.to_string();
    match code {
        0 => Some(MergeTree::Clean { tree }),
        1 => {
            let paths = records
                .take_while(|r| !r.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            Some(MergeTree::Conflict { tree, paths })
        }
        _ => None,
    }
}

/// The `merge-tree` command for merging `theirs` into `ours` (object ids), with an explicit
/// merge base (a commit or tree id) if given. Run it with [`run_merge_tree`].
pub fn merge_tree_command(
    cmd: Command,
    ours: &str,
    theirs: &str,
    merge_base: Option<&str>,
    allow_unrelated: bool,
) -> Command {
    debug_assert_eq!(cmd.subcommand(), Subcommand::MergeTree);
    let mut cmd = cmd.flag("--write-tree").flag("-z").flag("--name-only");
    if allow_unrelated {
        cmd = cmd.flag("--allow-unrelated-histories");
    }
    if let Some(base) = merge_base {
        cmd = cmd.flag_value("--merge-base", base);
    }
    cmd.rev(ours).rev(theirs)
}

/// Run a command made by [`merge_tree_command`].
pub async fn run_merge_tree(git: &Git, cmd: &Command) -> Result<MergeTree, MergeError> {
    let mut p = git.spawn(cmd)?;
    let stdout = p.read_stdout_to_end().await?;
    let (status, stderr) = p.wait_status().await?;
    let code = status.code().unwrap_or(-1);
    if let Some(result) = parse_merge_tree(code, &stdout) {
        return Ok(result);
    }
    if stderr.contains("refusing to merge unrelated histories") {
        return Err(MergeError::UnrelatedHistories);
    }
    Err(Error::failed(Subcommand::MergeTree, status.to_string(), stderr).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_and_conflicted_merges() {
        let t = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        assert_eq!(
            parse_merge_tree(0, format!("{t}\0").as_bytes()),
            Some(MergeTree::Clean { tree: t.into() })
        );
        let out = format!(
            "{t}\0f\0dir/g h\0\01\0f\0Auto-merging\0CONFLICT (content): Merge conflict in f\n\0"
        );
        assert_eq!(
            parse_merge_tree(1, out.as_bytes()),
            Some(MergeTree::Conflict {
                tree: t.into(),
                paths: vec![b"f".to_vec(), b"dir/g h".to_vec()]
            })
        );
        // A side git could not merge: exit 1, nothing on stdout.
        assert_eq!(parse_merge_tree(1, b""), None);
        assert_eq!(parse_merge_tree(128, format!("{t}\0").as_bytes()), None);
        assert_eq!(parse_merge_tree(0, b"fatal\0"), None);
    }
}
