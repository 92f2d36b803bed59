//! Parsed git objects → Gitaly protobuf messages.

use gitrpc_git::objects::{Commit, Signature, SignatureKind, Tag as RawTag};
use gitrpc_proto::gitaly::{CommitAuthor, CommitTrailer, GitCommit, SignatureType, Tag};

pub fn author(s: &Signature) -> CommitAuthor {
    CommitAuthor {
        name: s.name.clone(),
        email: s.email.clone(),
        date: Some(prost_types::Timestamp {
            seconds: s.time,
            nanos: 0,
        }),
        timezone: s.timezone.clone(),
    }
}

pub fn signature_type(k: SignatureKind) -> SignatureType {
    match k {
        SignatureKind::None => SignatureType::None,
        SignatureKind::Pgp => SignatureType::Pgp,
        SignatureKind::X509 => SignatureType::X509,
        SignatureKind::Ssh => SignatureType::Ssh,
    }
}

/// A `GitCommit`; trailers only when asked for (as Gitaly does).
pub fn commit(c: &Commit, with_trailers: bool) -> GitCommit {
    GitCommit {
        id: c.id.clone(),
        subject: c.subject.clone(),
        body: c.body.clone(),
        author: Some(author(&c.author)),
        committer: Some(author(&c.committer)),
        parent_ids: c.parents.clone(),
        body_size: c.body_size as i64,
        signature_type: signature_type(c.signature) as i32,
        tree_id: c.tree.clone(),
        trailers: if with_trailers {
            c.trailers
                .iter()
                .map(|(k, v)| CommitTrailer {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect()
        } else {
            Vec::new()
        },
        encoding: c.encoding.clone(),
        ..Default::default()
    }
}

/// A `Tag` message for an annotated tag object.
pub fn tag(name: &[u8], t: &RawTag, target: Option<GitCommit>) -> Tag {
    Tag {
        name: name.to_vec(),
        id: t.id.clone(),
        target_commit: target,
        message: t.message.clone(),
        message_size: t.message_size as i64,
        tagger: t.tagger.as_ref().map(author),
        signature_type: signature_type(t.signature) as i32,
    }
}
