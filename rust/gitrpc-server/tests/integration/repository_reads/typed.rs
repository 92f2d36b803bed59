//! The typed calls of `gitrpc_client::Client` for the step-11 file and ref reads: the same
//! answers as git.

use futures::TryStreamExt;
use gitrpc_client::gitaly::get_archive_request::Format;
use gitrpc_client::{ArchiveOptions, Client as Typed, Options};

use super::files;
use crate::commit_history::{git_cmd, run};
use crate::common::TestServer;

#[tokio::test]
async fn typed_file_and_ref_calls() {
    let s = TestServer::start().await;
    let w = files(&s, "t.git");
    let head = w.rev("main");
    w.git(&["tag", "-a", "v1", "-m", "tag message", "main"]);
    w.git(&["branch", "other", "main"]);
    w.git(&["update-ref", "refs/remotes/origin/x", "main"]);
    let client = Typed::connect(&format!("unix:{}", s.socket.display()), &Options::default())
        .await
        .unwrap();
    let repo = w.repo();

    let mut opts = ArchiveOptions::new(head.clone(), Format::Tar);
    opts.prefix = "p".into();
    let tar: Vec<u8> = client
        .get_archive(&repo, opts)
        .await
        .unwrap()
        .try_concat()
        .await
        .unwrap();
    let want = run(git_cmd(&w.path).args([
        "-c",
        "attr.tree=HEAD",
        "archive",
        "--format=tar",
        "--prefix=p/",
        &head,
    ]));
    assert!(tar == want);

    let names = client
        .search_files_by_name(&repo, b"main", ".", r"^sub/", 0, 0)
        .await
        .unwrap();
    assert_eq!(
        names,
        [&b"sub/b.txt"[..], b"sub/deep/c.txt", b"sub/deep/more/d.txt"]
    );
    let blocks = client
        .search_files_by_content(&repo, b"main", "readme")
        .await
        .unwrap();
    assert_eq!(blocks, [b"main:README.md\x001\x00# readme\n".to_vec()]);

    let branches = client
        .branch_names_containing(&repo, &head, 0)
        .await
        .unwrap();
    assert_eq!(branches, [b"main".to_vec(), b"other".to_vec()]);
    let tags = client.tag_names_containing(&repo, &head, 0).await.unwrap();
    assert_eq!(tags, [b"v1".to_vec()]);
    let refs = client
        .find_refs_by_oid(&repo, &head, vec![], "", 0)
        .await
        .unwrap();
    // git counts an annotated tag of the commit too.
    assert_eq!(
        refs,
        ["refs/heads/main", "refs/heads/other", "refs/tags/v1"]
    );
    let tag = w.rev("refs/tags/v1");
    let msgs = client
        .get_tag_messages(&repo, vec![tag.clone()])
        .await
        .unwrap();
    assert_eq!(msgs, [(tag.clone(), b"tag message\n".to_vec())]);
    let sigs = client
        .get_tag_signatures(&repo, vec!["v1".into()])
        .await
        .unwrap();
    assert_eq!(sigs.len(), 1);
    assert!(sigs[0].signature.is_empty());
    let remote = client
        .find_all_remote_branches(&repo, "origin")
        .await
        .unwrap();
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].name, b"refs/remotes/origin/x");
    s.stop().await;
}
