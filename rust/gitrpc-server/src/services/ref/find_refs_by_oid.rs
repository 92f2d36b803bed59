//! FindRefsByOID: `git for-each-ref --points-at`.
//! Gitaly: `internal/gitaly/service/ref/find_refs_by_oid.go`.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::{FindRefsByOidRequest, FindRefsByOidResponse};

use super::RefServiceImpl;
use crate::error::{Error, Result};

/// Where Gitaly looks when the client names no pattern.
const DEFAULT_PATTERNS: [&str; 2] = ["refs/tags/", "refs/heads/"];

impl RefServiceImpl {
    pub(super) async fn find_refs_by_oid(
        &self,
        req: FindRefsByOidRequest,
    ) -> Result<FindRefsByOidResponse> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.oid.is_empty() {
            return Err(Error::invalid("empty Oid"));
        }
        let mut cmd = repo.cmd(Subcommand::ForEachRef).flag("--format=%(refname)");
        if !req.sort_field.is_empty() {
            cmd = cmd.flag_value_bytes("--sort", &req.sort_field);
        }
        cmd = cmd.flag_value_bytes("--points-at", &req.oid);
        if req.limit > 0 {
            cmd = cmd.flag_value("--count", req.limit);
        }
        if req.ref_patterns.is_empty() {
            cmd = DEFAULT_PATTERNS.iter().fold(cmd, |c, p| c.arg(p));
        } else {
            cmd = req.ref_patterns.iter().fold(cmd, |c, p| c.arg(p));
        }
        let mut p = repo.spawn(&cmd)?;
        let out = p.read_stdout_to_end().await?;
        let (status, stderr) = p.wait_status().await?;
        if !status.success() {
            tracing::info!(%stderr, "FindRefsByOID: for-each-ref failed");
            let code = status.code().unwrap_or(-1);
            let message = format!("for-each-ref pipeline command: exit status {code}");
            // 129: git's usage error (an oid too short or malformed to be one).
            return Err(match code {
                129 => Error::invalid(message),
                _ => Error::internal(message),
            });
        }
        let refs = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        Ok(FindRefsByOidResponse { refs })
    }
}
