//! Writing objects for operations, into the operation's quarantine (the `Repo` given is the
//! quarantined one): blobs with `hash-object`, commits with `commit-tree`, tags with
//! `mktag`. Contents go to git as they are (no filters, no line-ending changes).

use gitrpc_git::Subcommand;

use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::signature::Signature;

/// The id printed by a git that writes one object.
fn oid_of(stdout: &[u8], what: &str) -> Result<String> {
    let oid = String::from_utf8_lossy(stdout).trim().to_string();
    if oid.is_empty() || !oid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::internal(format!(
            "{what}: unexpected output {oid:?}"
        )));
    }
    Ok(oid)
}

/// Write `contents` as blobs; their ids in the same order.
pub async fn blobs(repo: &Repo<'_>, contents: &[&[u8]]) -> Result<Vec<String>> {
    let cmd = repo
        .cmd(Subcommand::HashObject)
        .flag("-w")
        .flag("--no-filters");
    match contents {
        [] => Ok(Vec::new()),
        [one] => {
            let out = repo.output_with_input(&cmd.flag("--stdin"), one).await?;
            Ok(vec![oid_of(&out.stdout, "hash-object")?])
        }
        many => {
            // One git for all of them: the contents as files of a private temp directory.
            let storage = repo.deps.locator.storage(&repo.repository.storage_name)?;
            let tmp = crate::tempdir::TempDir::new_in_storage(storage, "blobs")?;
            let mut paths = Vec::new();
            for (i, c) in many.iter().enumerate() {
                let p = tmp.path().join(i.to_string());
                tokio::fs::write(&p, c).await?;
                paths.push(p.to_string_lossy().into_owned());
            }
            let input = paths.join("\n") + "\n";
            let out = repo
                .output_with_input(&cmd.flag("--stdin-paths"), input.as_bytes())
                .await?;
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            if ids.len() != many.len() {
                return Err(Error::internal("hash-object: one id per blob expected"));
            }
            Ok(ids)
        }
    }
}

/// Write a commit of `tree` with `parents`; the message is recorded as sent.
pub async fn commit(
    repo: &Repo<'_>,
    tree: &str,
    parents: &[&str],
    author: &Signature,
    committer: &Signature,
    message: &[u8],
) -> Result<String> {
    let mut cmd = repo.cmd(Subcommand::CommitTree);
    for p in parents {
        cmd = cmd.short_flag_value("-p", p);
    }
    cmd = cmd.flag("-F").flag("-");
    for (k, v) in author
        .author_env()
        .into_iter()
        .chain(committer.committer_env())
    {
        cmd = cmd.env(k, v);
    }
    let out = repo.output_with_input(&cmd.rev(tree), message).await?;
    oid_of(&out.stdout, "commit-tree")
}

/// Write an annotated tag object from its full text.
pub async fn tag(repo: &Repo<'_>, text: &[u8]) -> Result<String> {
    let out = repo
        .output_with_input(&repo.cmd(Subcommand::Mktag), text)
        .await?;
    oid_of(&out.stdout, "mktag")
}
