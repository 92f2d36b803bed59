//! GetTagSignatures: the signature of each tag the revisions name (and of tags reachable
//! through them), with the text it signs: `git rev-list --stdin --objects
//! --filter=object:type=tag --filter-provided-objects`, objects read through cat-file.
//! Gitaly: `internal/gitaly/service/ref/tag_signatures.go`.

use gitrpc_git::validate::gitaly::{self, RevisionRules};
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::get_tag_signatures_response::TagSignature;
use gitrpc_proto::gitaly::{GetTagSignaturesRequest, GetTagSignaturesResponse};
use tonic::Response;

use super::RefServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

/// `(content, signature)` of a raw tag object: the signature starts at the first
/// `-----BEGIN` and loses one trailing newline; no signature if there is none (or it starts
/// the object).
pub(super) fn split_signature(raw: &[u8]) -> (&[u8], &[u8]) {
    match raw.windows(10).position(|w| w == b"-----BEGIN") {
        Some(i) if i > 0 => {
            let sig = &raw[i..];
            (&raw[..i], sig.strip_suffix(b"\n").unwrap_or(sig))
        }
        _ => (raw, &[]),
    }
}

impl RefServiceImpl {
    pub(super) async fn get_tag_signatures(
        &self,
        req: GetTagSignaturesRequest,
    ) -> Result<Response<RpcStream<GetTagSignaturesResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.tag_revisions.is_empty() {
            return Err(Error::invalid("missing revisions"));
        }
        let rules = RevisionRules {
            pseudo: true,
            ..RevisionRules::PLAIN
        };
        for r in &req.tag_revisions {
            gitaly::revision(r.as_bytes(), rules)
                .map_err(|e| Error::invalid(format!("invalid revision: {e}")))?;
        }
        let cmd = repo
            .cmd(Subcommand::RevList)
            .flag("--stdin")
            .flag("--in-commit-order")
            .flag("--objects")
            .flag("--filter=object:type=tag")
            .flag("--filter-provided-objects")
            .stdin();
        let input = cmd.stdin_revisions(&req.tag_revisions, false)?;
        let out = repo.output_with_input(&cmd, &input).await?.stdout;
        let hex = repo.hash_len();
        let oids: Vec<String> = out
            .split(|&b| b == b'\n')
            .filter(|l| l.len() >= hex)
            .map(|l| String::from_utf8_lossy(&l[..hex]).into_owned())
            .collect();
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            let mut batcher = Batcher::new(Limits::GITALY);
            for oid in oids {
                let (_, raw) = cat
                    .read_object(&oid)
                    .await?
                    .ok_or_else(|| Error::internal(format!("tag {oid} vanished")))?;
                let (content, signature) = split_signature(&raw);
                let item = TagSignature {
                    tag_id: oid,
                    signature: signature.to_vec(),
                    content: content.to_vec(),
                };
                if let Some(signatures) = batcher.push(item) {
                    sink.send(GetTagSignaturesResponse { signatures }).await?;
                }
            }
            if let Some(signatures) = batcher.finish() {
                sink.send(GetTagSignaturesResponse { signatures }).await?;
            }
            Ok(())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::split_signature;

    #[test]
    fn signatures_split_at_the_first_begin() {
        let raw =
            b"object x\n\nmsg\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n";
        let (c, s) = split_signature(raw);
        assert_eq!(c, b"object x\n\nmsg\n");
        assert_eq!(
            s,
            b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----"
        );
        assert_eq!(
            split_signature(b"object x\n\nmsg\n"),
            (&b"object x\n\nmsg\n"[..], &b""[..])
        );
    }
}
