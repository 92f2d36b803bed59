//! GetFileAttributes against `git check-attr --source`.

use gitrpc_proto::gitaly::get_file_attributes_response::AttributeInfo;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{client, files};
use crate::commit_history::{bad_repos, failure};
use crate::common::TestServer;

#[tokio::test]
async fn file_attributes_match_check_attr() {
    let s = TestServer::start().await;
    let w = files(&s, "a.git");
    w.write(
        ".gitattributes",
        "*.txt text diff=plain\n*.md -text linguist-documentation\nsub/** merge=ours\n",
    );
    w.commit("attributes");
    let mut c = client(&s);
    let paths = [
        "README.md",
        "sub/b.txt",
        "with space/e.txt",
        "new\nline.txt",
        "none.bin",
    ];
    let attrs = ["text", "diff", "merge", "linguist-documentation"];
    let req = |rev: &[u8], attrs: &[&str], paths: &[&str]| GetFileAttributesRequest {
        repository: Some(w.repo()),
        revision: rev.to_vec(),
        attributes: attrs.iter().map(|a| a.to_string()).collect(),
        paths: paths.iter().map(|p| p.to_string()).collect(),
    };
    let got = c
        .get_file_attributes(req(b"main", &attrs, &paths))
        .await
        .unwrap()
        .into_inner()
        .attribute_infos;
    let mut check = w.cmd(["check-attr", "--source=main", "-z", "--stdin"]);
    check.args(attrs);
    check
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = check.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for p in paths {
            stdin.write_all(p.as_bytes()).unwrap();
            stdin.write_all(b"\0").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let fields: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .map(str::to_string)
        .collect();
    let want: Vec<AttributeInfo> = fields
        .chunks_exact(3)
        .filter(|t| t[2] != "unspecified")
        .map(|t| AttributeInfo {
            path: t[0].clone(),
            attribute: t[1].clone(),
            value: t[2].clone(),
        })
        .collect();
    assert_eq!(got, want);
    assert!(got.len() >= 6, "{got:?}");
    assert!(got.contains(&AttributeInfo {
        path: "README.md".into(),
        attribute: "text".into(),
        value: "unset".into()
    }));
    // The old revision has no such attributes.
    let old = c
        .get_file_attributes(req(b"main~1", &["merge"], &["sub/b.txt"]))
        .await
        .unwrap()
        .into_inner();
    assert!(old.attribute_infos.is_empty());
    for (r, code, msg) in [
        (
            req(b"", &attrs, &paths),
            Code::InvalidArgument,
            "revision is required",
        ),
        (
            req(b"main", &attrs, &[]),
            Code::InvalidArgument,
            "file paths are required",
        ),
        (
            req(b"main", &[], &paths),
            Code::InvalidArgument,
            "attributes are required",
        ),
        (
            req(b"main", &["-a"], &paths),
            Code::InvalidArgument,
            "invalid attribute name: -a",
        ),
        (
            req(b"-x", &attrs, &paths),
            Code::InvalidArgument,
            "invalid revision: \"-x\"",
        ),
        (
            req(b"nope", &attrs, &paths),
            Code::Internal,
            "check attr: exit status 128",
        ),
    ] {
        let got = failure(c.get_file_attributes(r).await);
        if msg.starts_with("invalid revision") {
            assert_eq!(got.0, code, "{got:?}");
        } else {
            assert_eq!(got, (code, msg.to_string()));
        }
    }
    for (repo, code) in bad_repos(&s) {
        let mut r = req(b"main", &attrs, &paths);
        r.repository = repo;
        assert_eq!(failure(c.get_file_attributes(r).await).0, code);
    }
    s.stop().await;
}
