//! BlobService listings (step 11) against git: ListBlobs = `git rev-list --objects
//! --filter=object:type=blob`, ListAllBlobs = every blob of `cat-file --batch-all-objects`,
//! and the three LFS pointer RPCs (the 200-byte boundaries, CRLF pointers).

use std::collections::BTreeSet;

use gitrpc_proto::gitaly::blob_service_client::BlobServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use crate::commit_history::{failure, run, stream, Work};
use crate::common::TestServer;

const OID: &str = "91eff75a492a3ed0dfcb544d7f31326bc4014c8551849c192fd1e48d4dd2c897";

fn pointer(size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize {size}\n")
}

/// A pointer padded with an extra line to exactly `n` bytes.
fn pointer_of_len(n: usize) -> String {
    let mut p = pointer(7);
    let pad = n - p.len() - 1;
    p.push_str(&"x".repeat(pad - 1));
    p.push_str("\n\n");
    assert_eq!(p.len(), n);
    p
}

struct Repo {
    w: Work,
    head: String,
    unreachable: String,
}

fn repo(s: &TestServer) -> Repo {
    let w = Work::new(s, "b.git", "sha1");
    w.write("a.txt", "a\n");
    w.write(b"caf\xe9.txt", "non-utf8 name\n");
    w.write("big.bin", vec![7u8; 300 * 1024]);
    w.write("lfs/valid", pointer(1234));
    w.write("lfs/len199", pointer_of_len(199));
    w.write("lfs/len200", pointer_of_len(200));
    w.write("lfs/len201", pointer_of_len(201));
    w.write("lfs/crlf", pointer(5).replace('\n', "\r\n"));
    w.commit("one");
    w.write("a.txt", "a2\n");
    let head = w.commit("two");
    let mut hash = w.cmd(["hash-object", "-w", "--stdin"]);
    hash.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = hash.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pointer(99).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let unreachable = String::from_utf8(out.stdout).unwrap().trim().to_string();
    Repo {
        w,
        head,
        unreachable,
    }
}

type Client = BlobServiceClient<tonic::transport::Channel>;

/// (oid, size, data, path) per blob, pieces put together; asserts only first pieces carry
/// the id.
async fn list_blobs(
    c: &mut Client,
    req: ListBlobsRequest,
) -> Result<Vec<(String, i64, Vec<u8>, Vec<u8>)>, tonic::Status> {
    let msgs = stream(c.list_blobs(req).await).await?;
    let mut out: Vec<(String, i64, Vec<u8>, Vec<u8>)> = Vec::new();
    for b in msgs.into_iter().flat_map(|m| m.blobs) {
        assert!(b.data.len() <= 128 * 1024);
        if b.oid.is_empty() {
            out.last_mut().unwrap().2.extend_from_slice(&b.data);
        } else {
            out.push((b.oid, b.size, b.data, b.path));
        }
    }
    Ok(out)
}

fn git_blobs(w: &Work, revs: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut args = vec![
        "rev-list",
        "--objects",
        "--in-commit-order",
        "--filter=object:type=blob",
        "--filter-provided-objects",
    ];
    args.extend_from_slice(revs);
    let out = run(&mut w.cmd(args));
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let i = l.iter().position(|&b| b == b' ').unwrap_or(l.len());
            (
                String::from_utf8(l[..i].to_vec()).unwrap(),
                l.get(i + 1..).unwrap_or_default().to_vec(),
            )
        })
        .collect()
}

#[tokio::test]
async fn list_blobs_equals_rev_list() {
    let s = TestServer::start().await;
    let r = repo(&s);
    let mut c = BlobServiceClient::new(s.channel.clone());
    let req = |revs: &[&str], limit: u32, bytes_limit: i64, with_paths: bool| ListBlobsRequest {
        repository: Some(r.w.repo()),
        revisions: revs.iter().map(|s| s.to_string()).collect(),
        limit,
        bytes_limit,
        with_paths,
    };
    let want = git_blobs(&r.w, &["main"]);
    assert!(want.len() >= 8);
    let got = list_blobs(&mut c, req(&["main"], 0, -1, true))
        .await
        .unwrap();
    let ids: Vec<(String, Vec<u8>)> = got.iter().map(|b| (b.0.clone(), b.3.clone())).collect();
    assert_eq!(ids, want);
    for (oid, size, data, _) in &got {
        let content = run(&mut r.w.cmd(["cat-file", "blob", oid]));
        assert_eq!((*size as usize, data), (content.len(), &content));
    }
    assert!(got.iter().any(|b| b.3 == b"caf\xe9.txt"));
    // limit, bytes_limit 0 and N, no paths
    let got = list_blobs(&mut c, req(&["main"], 2, 0, false))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert!(got
        .iter()
        .all(|b| b.2.is_empty() && b.3.is_empty() && b.1 > 0));
    let got = list_blobs(&mut c, req(&["main"], 0, 3, false))
        .await
        .unwrap();
    assert!(got.iter().all(|b| b.2.len() == (b.1 as usize).min(3)));
    // pseudo revisions and exclusions
    let got = list_blobs(
        &mut c,
        req(&["--all", "--not", &format!("{}~1", r.head)], 0, 0, false),
    )
    .await
    .unwrap();
    let want = git_blobs(&r.w, &["--all", "--not", &format!("{}~1", r.head)]);
    assert_eq!(
        got.iter().map(|b| b.0.clone()).collect::<Vec<_>>(),
        want.iter().map(|b| b.0.clone()).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), 1);
    // bad input
    assert_eq!(
        failure(list_blobs(&mut c, req(&[], 0, 0, false)).await),
        (Code::InvalidArgument, "missing revisions".into())
    );
    assert_eq!(
        failure(list_blobs(&mut c, req(&["-x"], 0, 0, false)).await).0,
        Code::InvalidArgument
    );
    assert_eq!(
        failure(list_blobs(&mut c, req(&["a b"], 0, 0, false)).await).0,
        Code::InvalidArgument
    );
    s.stop().await;
}

#[tokio::test]
async fn list_all_blobs_includes_unreachable_ones() {
    let s = TestServer::start().await;
    let r = repo(&s);
    let mut c = BlobServiceClient::new(s.channel.clone());
    let msgs = stream(
        c.list_all_blobs(ListAllBlobsRequest {
            repository: Some(r.w.repo()),
            limit: 0,
            bytes_limit: -1,
        })
        .await,
    )
    .await
    .unwrap();
    let got: BTreeSet<String> = msgs
        .iter()
        .flat_map(|m| &m.blobs)
        .filter(|b| !b.oid.is_empty())
        .map(|b| b.oid.clone())
        .collect();
    let mut want: BTreeSet<String> = git_blobs(&r.w, &["--all"])
        .into_iter()
        .map(|b| b.0)
        .collect();
    want.insert(r.unreachable.clone());
    assert_eq!(got, want);
    let data: usize = msgs
        .iter()
        .flat_map(|m| &m.blobs)
        .map(|b| b.data.len())
        .sum();
    assert!(data > 300 * 1024);
    let msgs = stream(
        c.list_all_blobs(ListAllBlobsRequest {
            repository: Some(r.w.repo()),
            limit: 3,
            bytes_limit: 0,
        })
        .await,
    )
    .await
    .unwrap();
    assert_eq!(msgs.iter().flat_map(|m| &m.blobs).count(), 3);
    s.stop().await;
}

#[tokio::test]
async fn lfs_pointers_and_their_boundaries() {
    let s = TestServer::start().await;
    let r = repo(&s);
    let mut c = BlobServiceClient::new(s.channel.clone());
    let blob = |p: &str| r.w.rev(&format!("{}:{p}", r.head));
    let (valid, l199, l200, l201, crlf) = (
        blob("lfs/valid"),
        blob("lfs/len199"),
        blob("lfs/len200"),
        blob("lfs/len201"),
        blob("lfs/crlf"),
    );
    // ListLFSPointers: rev-list keeps blobs < 200 bytes
    let msgs = stream(
        c.list_lfs_pointers(ListLfsPointersRequest {
            repository: Some(r.w.repo()),
            revisions: vec!["main".into()],
            limit: 0,
        })
        .await,
    )
    .await
    .unwrap();
    let got: BTreeSet<String> = msgs
        .iter()
        .flat_map(|m| &m.lfs_pointers)
        .map(|p| p.oid.clone())
        .collect();
    assert_eq!(got, BTreeSet::from([valid.clone(), l199.clone()]));
    let p = msgs
        .iter()
        .flat_map(|m| &m.lfs_pointers)
        .find(|p| p.oid == valid)
        .unwrap();
    assert_eq!(
        (p.file_size, p.file_oid.as_slice(), p.data.as_slice()),
        (1234, OID.as_bytes(), pointer(1234).as_bytes())
    );
    assert_eq!(p.size, pointer(1234).len() as i64);
    // ListAllLFSPointers: <= 200 bytes, unreachable ones too
    let msgs = stream(
        c.list_all_lfs_pointers(ListAllLfsPointersRequest {
            repository: Some(r.w.repo()),
            limit: 0,
        })
        .await,
    )
    .await
    .unwrap();
    let got: BTreeSet<String> = msgs
        .iter()
        .flat_map(|m| &m.lfs_pointers)
        .map(|p| p.oid.clone())
        .collect();
    assert_eq!(
        got,
        BTreeSet::from([
            valid.clone(),
            l199.clone(),
            l200.clone(),
            r.unreachable.clone()
        ])
    );
    // GetLFSPointers: <= 200 bytes, only pointers, CRLF is none
    let msgs = stream(
        c.get_lfs_pointers(GetLfsPointersRequest {
            repository: Some(r.w.repo()),
            blob_ids: vec![
                valid.clone(),
                l200.clone(),
                l201,
                crlf,
                blob("a.txt"),
                r.head.clone(),
            ],
        })
        .await,
    )
    .await
    .unwrap();
    let got: Vec<String> = msgs
        .iter()
        .flat_map(|m| &m.lfs_pointers)
        .map(|p| p.oid.clone())
        .collect();
    assert_eq!(got, [valid, l200]);
    let e = failure(
        stream(
            c.get_lfs_pointers(GetLfsPointersRequest {
                repository: Some(r.w.repo()),
                blob_ids: vec![],
            })
            .await,
        )
        .await,
    );
    assert_eq!(e, (Code::InvalidArgument, "empty BlobIds".into()));
    let e = failure(
        stream(
            c.list_lfs_pointers(ListLfsPointersRequest {
                repository: Some(r.w.repo()),
                revisions: vec![],
                limit: 0,
            })
            .await,
        )
        .await,
    );
    assert_eq!(e, (Code::InvalidArgument, "missing revisions".into()));
    s.stop().await;
}
