//! GetTagMessages: the whole message of each annotated tag (signature included), in 128 KiB
//! pieces after a message naming the tag.
//! Gitaly: `internal/gitaly/service/ref/tag_messages.go`.

use gitrpc_git::ObjectType;
use gitrpc_proto::gitaly::{GetTagMessagesRequest, GetTagMessagesResponse};
use tonic::Response;

use super::RefServiceImpl;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

/// Where a tag object's message starts: after the header's blank line (the end if none).
pub(super) fn message_start(raw: &[u8]) -> usize {
    if raw.starts_with(b"\n") {
        return 1;
    }
    raw.windows(2)
        .position(|w| w == b"\n\n")
        .map_or(raw.len(), |i| i + 2)
}

impl RefServiceImpl {
    pub(super) async fn get_tag_messages(
        &self,
        req: GetTagMessagesRequest,
    ) -> Result<Response<RpcStream<GetTagMessagesResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            for id in req.tag_ids {
                let not_found = || Error::internal("getting tag: object not found");
                // A name cat-file's line can't carry names no tag.
                if id.is_empty() || id.contains(['\n', '\0']) {
                    return Err(not_found());
                }
                let (info, raw) = cat.read_object(&id).await?.ok_or_else(not_found)?;
                if info.kind != ObjectType::Tag {
                    return Err(Error::internal(format!(
                        "getting tag: expected tag, got {}",
                        info.kind.as_str()
                    )));
                }
                sink.send(GetTagMessagesResponse {
                    tag_id: id,
                    message: Vec::new(),
                })
                .await?;
                let mut message = &raw[message_start(&raw)..];
                sink.send_reader(&mut message, |message| GetTagMessagesResponse {
                    tag_id: String::new(),
                    message,
                })
                .await?;
            }
            Ok(())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::message_start;

    #[test]
    fn message_starts_after_the_header() {
        let raw = b"object x\ntype commit\n\nhello\n\nworld\n";
        assert_eq!(&raw[message_start(raw)..], b"hello\n\nworld\n");
        assert_eq!(message_start(b"object x\n"), 9);
        assert_eq!(message_start(b"\nmsg"), 1);
    }
}
