//! What the read RPCs share: the default branch, the repository's hash, and the bounds on a
//! client's patterns (a length cap, a size-bounded regex engine, and `[reads] regex_timeout`
//! for git evaluating them).

use std::future::Future;
use std::time::Duration;

use gitrpc_git::Subcommand;

use crate::deps::{Deps, Repo};
use crate::error::{Error, Result};

/// Longest pattern a client may send (Gitaly's cap on SearchFilesByName's `filter`; applied
/// to every client regex).
pub const MAX_PATTERN: usize = 1000;

/// Compiled program and lazy DFA of a client regex stay under this (Rust's `regex` runs in
/// linear time; this bounds its memory).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `value` of `field` is at most [`MAX_PATTERN`] bytes: else `INVALID_ARGUMENT "<field>
/// exceeds maximum length"` (Gitaly's words), before anything is spawned.
pub fn check_pattern(field: &str, value: &[u8]) -> Result<()> {
    if value.len() > MAX_PATTERN {
        return Err(Error::invalid(format!("{field} exceeds maximum length")));
    }
    Ok(())
}

/// A client regex evaluated by us (SearchFilesByName's `filter`): [`check_pattern`], then
/// compiled with bounded memory; `INVALID_ARGUMENT "<field> did not compile: <why>"`.
pub fn bounded_regex(field: &str, pattern: &str) -> Result<regex::bytes::Regex> {
    check_pattern(field, pattern.as_bytes())?;
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| Error::invalid(format!("{field} did not compile: {e}")))
}

/// Run `work`, whose git evaluates a client's pattern (`git grep`, `log --grep/--author`), for
/// at most `[reads] regex_timeout`. At the deadline `work` is dropped, which kills its git's
/// process group, and the call fails with `DEADLINE_EXCEEDED "<rpc>: pattern evaluation
/// exceeded <timeout>"`. Wrap the whole producer, streaming included.
pub async fn with_regex_timeout<T>(
    deps: &Deps,
    rpc: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    pattern_deadline(deps.config.reads.regex_timeout, rpc, work).await
}

async fn pattern_deadline<T>(
    limit: Duration,
    rpc: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(Error::DeadlineExceeded(format!(
            "{rpc}: pattern evaluation exceeded {limit:?}"
        ))),
    }
}

impl Repo<'_> {
    /// Hex digits of an object id here: 40 (SHA-1) or 64 (SHA-256).
    pub fn hash_len(&self) -> usize {
        self.object_format().hex_len()
    }

    /// The empty tree's id in this repository's hash (a root commit's other side).
    pub fn empty_tree_oid(&self) -> &'static str {
        self.object_format().empty_tree_oid()
    }

    /// What HEAD points to (`refs/heads/main`), existing or not; `None` if HEAD is detached.
    pub async fn head_target(&self) -> Result<Option<String>> {
        if let Some(store) = self.refs() {
            return Ok(store.head_target()?);
        }
        let mut p = self.spawn(
            &self
                .cmd(Subcommand::SymbolicRef)
                .flag("--quiet")
                .arg("HEAD"),
        )?;
        let stdout = p.read_stdout_to_end().await?;
        let (status, _) = p.wait_status().await?;
        Ok(status
            .success()
            .then(|| String::from_utf8_lossy(&stdout).trim().to_string()))
    }

    /// The default branch, as Gitaly picks it (FindDefaultBranchName; FindCommits and
    /// CommitsByMessage with no revision): HEAD's branch if it exists; else the only branch;
    /// else `main`, then `master`, if one exists; else the first by name. `None` without
    /// branches.
    pub async fn default_branch(&self) -> Result<Option<Vec<u8>>> {
        // Fast path without listing: HEAD names an existing branch.
        if let Some(h) = self.head_target().await? {
            if h.starts_with("refs/heads/") && self.ref_exists(&h).await? {
                return Ok(Some(h.into_bytes()));
            }
        }
        let cmd = self
            .cmd(Subcommand::ForEachRef)
            .flag("--format=%(refname)")
            .arg("refs/heads/");
        let out = self.output(&cmd).await?.stdout;
        let names: Vec<&[u8]> = out
            .split(|&b| b == b'\n')
            .filter(|n| !n.is_empty())
            .collect();
        let pick = match names.len() {
            0 => return Ok(None),
            1 => names[0],
            _ => [&b"refs/heads/main"[..], b"refs/heads/master"]
                .into_iter()
                .find(|n| names.contains(n))
                .unwrap_or(names[0]),
        };
        Ok(Some(pick.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitrpc_git::{Command, Git};

    #[test]
    fn patterns_are_bounded() {
        assert!(check_pattern("filter", &[b'a'; MAX_PATTERN]).is_ok());
        let e = check_pattern("filter", &[b'a'; MAX_PATTERN + 1]).unwrap_err();
        assert_eq!(e.to_string(), "filter exceeds maximum length");
        assert!(bounded_regex("filter", r"\.rb$").unwrap().is_match(b"a.rb"));
        let e = bounded_regex("filter", "(").unwrap_err();
        assert!(e.to_string().starts_with("filter did not compile: "), "{e}");
        // Within the length cap but too big a program: refused, not built.
        let e = bounded_regex("filter", r"(\w{1000}){1000}").unwrap_err();
        assert!(e.to_string().starts_with("filter did not compile: "), "{e}");
    }

    /// A git still running at the deadline (here `cat-file --batch` waiting for input, as a
    /// `git grep` stuck on a pathological pattern would be) is killed with its group, and the
    /// call ends with DEADLINE_EXCEEDED.
    #[tokio::test]
    async fn git_past_the_pattern_deadline_is_killed() {
        let git = Git::discover(None).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let init = Command::new(Subcommand::Init)
            .flag("--bare")
            .arg(dir.path());
        git.output(&init).await.unwrap();
        let cmd = Command::in_repo(dir.path(), Subcommand::CatFile)
            .flag("--batch")
            .stdin();
        let p = git.spawn(&cmd).unwrap();
        let pid = p.pid();
        let work = async move {
            let _git = p;
            std::future::pending::<Result<()>>().await
        };
        let err = pattern_deadline(Duration::from_millis(300), "SearchFilesByContent", work)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(
            err.to_string(),
            "SearchFilesByContent: pattern evaluation exceeded 300ms"
        );
        let gone = std::time::Instant::now() + Duration::from_secs(10);
        // SAFETY: kill(pid, 0) only asks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 {
            assert!(std::time::Instant::now() < gone, "git {pid} still runs");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
