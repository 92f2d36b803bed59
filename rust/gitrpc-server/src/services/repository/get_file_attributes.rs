//! GetFileAttributes: `git check-attr --stdin -z --source=<rev> <attr>...`; attributes that
//! are `unspecified` are left out.
//! Gitaly: `internal/gitaly/service/repository/file_attributes.go`.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::get_file_attributes_response::AttributeInfo;
use gitrpc_proto::gitaly::{GetFileAttributesRequest, GetFileAttributesResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::RepositoryServiceImpl;
use crate::error::{Error, Result};

/// git's attribute names: `[A-Za-z0-9_.][-A-Za-z0-9_.]*` (git dies on others).
fn valid_attribute(name: &str) -> bool {
    let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
    match name.as_bytes() {
        [first, rest @ ..] => ok(*first) && rest.iter().all(|&c| ok(c) || c == b'-'),
        [] => false,
    }
}

impl RepositoryServiceImpl {
    pub(super) async fn get_file_attributes(
        &self,
        req: GetFileAttributesRequest,
    ) -> Result<GetFileAttributesResponse> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.revision.is_empty() {
            return Err(Error::invalid("revision is required"));
        }
        if req.paths.is_empty() {
            return Err(Error::invalid("file paths are required"));
        }
        if req.attributes.is_empty() {
            return Err(Error::invalid("attributes are required"));
        }
        if let Some(a) = req.attributes.iter().find(|a| !valid_attribute(a)) {
            return Err(Error::invalid(format!("invalid attribute name: {a}")));
        }
        if req.paths.iter().any(|p| p.contains('\0')) {
            return Err(Error::invalid("paths can't contain NUL"));
        }
        let mut cmd = repo
            .cmd(Subcommand::CheckAttr)
            .flag("--stdin")
            .flag("-z")
            .rev_flag("--source", &req.revision);
        for a in &req.attributes {
            cmd = cmd.arg(a);
        }
        let mut p = repo.spawn(&cmd.stdin())?;
        let mut stdin = p
            .take_stdin()
            .ok_or_else(|| Error::internal("check-attr has no stdin"))?;
        let mut stdout = p
            .take_stdout()
            .ok_or_else(|| Error::internal("check-attr has no stdout"))?;
        // Written while read: git answers as it reads, and a pipe holds only so much.
        let write = async move {
            for path in &req.paths {
                stdin.write_all(path.as_bytes()).await?;
                stdin.write_all(b"\0").await?;
            }
            stdin.shutdown().await
        };
        let mut out = Vec::new();
        let (written, read) = tokio::join!(write, stdout.read_to_end(&mut out));
        drop(stdout);
        let (status, stderr) = p.wait_status().await?;
        if !status.success() || written.is_err() || read.is_err() {
            tracing::info!(%stderr, "GetFileAttributes: check-attr failed");
            return Err(Error::internal(format!(
                "check attr: exit status {}",
                status.code().unwrap_or(-1)
            )));
        }
        let fields: Vec<&[u8]> = out.split(|&b| b == 0).collect();
        let attribute_infos = fields
            .chunks_exact(3)
            .filter(|t| t[2] != b"unspecified")
            .map(|t| AttributeInfo {
                path: String::from_utf8_lossy(t[0]).into_owned(),
                attribute: String::from_utf8_lossy(t[1]).into_owned(),
                value: String::from_utf8_lossy(t[2]).into_owned(),
            })
            .collect();
        Ok(GetFileAttributesResponse { attribute_infos })
    }
}

#[cfg(test)]
mod tests {
    use super::valid_attribute;

    #[test]
    fn attribute_names() {
        for a in ["diff", "text", "linguist-generated", "a.b_c", "_x", "9"] {
            assert!(valid_attribute(a), "{a}");
        }
        for a in ["", "-diff", "a b", "a=b", "a\n", "!x"] {
            assert!(!valid_attribute(a), "{a}");
        }
    }
}
