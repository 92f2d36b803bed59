//! The operations family's OperationService call: UserCommitFiles through the typed Rust
//! client.

use std::time::Instant;

use gitrpc_client::gitaly::User;
use gitrpc_client::{CommitFiles, FileAction};

use super::{repo, Ctx, OPERATIONS};

/// UserCommitFiles of a new file to one of 50 branches of `push.git` (created from `main`
/// by the first commit). A commit it reports is checked at the end like a push.
pub async fn commit_files(ctx: &Ctx, k: u64) {
    let branch = format!("files-{:02}", (k / 2) % 50);
    let commit = CommitFiles {
        user: User {
            gl_id: "user-soak".into(),
            gl_username: "soak".into(),
            name: b"Soak".to_vec(),
            email: b"soak@example.com".to_vec(),
            timezone: String::new(),
        },
        branch: branch.clone().into_bytes(),
        message: format!("soak operation {k}").into_bytes(),
        actions: vec![FileAction::Create {
            path: format!("ops/{k}.txt").into_bytes(),
            content: format!("{k}\n").into_bytes(),
            executable: false,
        }],
        start_branch: Some(b"main".to_vec()),
        ..Default::default()
    };
    // A branch that exists is its own start (`start_branch` only seeds a new one).
    let exists = ctx
        .client
        .ref_exists(&repo("push.git"), &format!("refs/heads/{branch}"))
        .await;
    let commit = match exists {
        Ok(true) => CommitFiles {
            start_branch: None,
            ..commit
        },
        _ => commit,
    };
    let t = Instant::now();
    let res = ctx.client.commit_files(&repo("push.git"), &commit).await;
    match &res {
        Ok(u) => ctx
            .pushed
            .lock()
            .unwrap()
            .push((branch, u.commit_id.clone())),
        Err(e) if !ctx.faults => ctx.wrong(format!("UserCommitFiles: {e:?}")),
        Err(_) => {}
    }
    ctx.record(OPERATIONS, t, res.is_ok());
}
