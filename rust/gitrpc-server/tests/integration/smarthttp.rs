use futures::StreamExt;
use gitrpc_proto::gitaly::smart_http_service_client::SmartHttpServiceClient;
use gitrpc_proto::gitaly::*;
use std::io::Write;
use std::process::{Command, Stdio};
use tonic::Code;

use crate::common::*;

fn client(s: &TestServer) -> SmartHttpServiceClient<tonic::transport::Channel> {
    SmartHttpServiceClient::new(s.channel.clone())
}

async fn concat<T>(
    mut st: tonic::Streaming<T>,
    f: impl Fn(T) -> Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut out = Vec::new();
    while let Some(m) = st.next().await {
        out.extend(f(m?));
    }
    Ok(out)
}

/// What git itself answers for a stateless-rpc request.
fn git_stateless(
    repo: &std::path::Path,
    service: &str,
    advertise: bool,
    protocol: &str,
    input: &[u8],
) -> Vec<u8> {
    let mut args = vec![service, "--stateless-rpc"];
    if advertise {
        args.push("--advertise-refs");
    }
    let mut child = Command::new("git")
        .args(&args)
        .arg(repo)
        .env("GIT_PROTOCOL", protocol)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap().stdout
}

fn info(s: &TestServer, rel: &str, protocol: &str) -> InfoRefsRequest {
    InfoRefsRequest {
        repository: Some(s.repo(rel)),
        git_config_options: vec![],
        git_protocol: protocol.into(),
    }
}

#[tokio::test]
async fn info_refs_matches_git() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let mut c = client(&s);
    let got = concat(
        c.info_refs_upload_pack(info(&s, "r.git", ""))
            .await
            .unwrap()
            .into_inner(),
        |m| m.data,
    )
    .await
    .unwrap();
    let header = b"001e# service=git-upload-pack\n0000";
    assert!(got.starts_with(header), "{}", String::from_utf8_lossy(&got));
    let want = git_stateless(&s.path("r.git"), "upload-pack", true, "", b"");
    // Capabilities differ only in what we configure (allow-filter etc.); refs are identical.
    let refs = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .lines()
            .filter(|l| l.contains("refs/"))
            .map(|l| l.split('\0').next().unwrap()[4..].to_string())
            .collect()
    };
    assert_eq!(refs(&got[header.len()..]), refs(&want));

    let v2 = concat(
        c.info_refs_upload_pack(info(&s, "r.git", "version=2"))
            .await
            .unwrap()
            .into_inner(),
        |m| m.data,
    )
    .await
    .unwrap();
    assert!(
        v2.starts_with(b"000eversion 2\n"),
        "{}",
        String::from_utf8_lossy(&v2)
    );

    let rp = concat(
        c.info_refs_receive_pack(info(&s, "r.git", ""))
            .await
            .unwrap()
            .into_inner(),
        |m| m.data,
    )
    .await
    .unwrap();
    assert!(rp.starts_with(b"001f# service=git-receive-pack\n0000"));
    assert!(String::from_utf8_lossy(&rp).contains("report-status"));
}

#[tokio::test]
async fn post_upload_pack_v2_ls_refs() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let request = b"0014command=ls-refs\n00010000".to_vec();
    let msgs = vec![
        PostUploadPackRequest {
            repository: Some(s.repo("r.git")),
            git_protocol: "version=2".into(),
            ..Default::default()
        },
        PostUploadPackRequest {
            data: request.clone(),
            ..Default::default()
        },
    ];
    let got = concat(
        c.post_upload_pack(tokio_stream::iter(msgs))
            .await
            .unwrap()
            .into_inner(),
        |m| m.data,
    )
    .await
    .unwrap();
    let want = git_stateless(
        &s.path("r.git"),
        "upload-pack",
        false,
        "version=2",
        &request,
    );
    assert_eq!(got, want);
    assert!(
        String::from_utf8_lossy(&got).contains(&format!("{} refs/heads/main", f.rev_parse("main")))
    );
}

#[tokio::test]
async fn bad_input_codes() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let mut c = client(&s);
    let err = c
        .info_refs_upload_pack(info(&s, "missing.git", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .info_refs_upload_pack(info(&s, "../x.git", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .info_refs_upload_pack(info(&s, "r.git", "version=3"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut req = info(&s, "r.git", "");
    req.git_config_options = vec!["core.sshCommand=touch /tmp/pwned".into()];
    let err = c.info_refs_upload_pack(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut req = info(&s, "r.git", "");
    req.git_config_options = vec!["uploadpack.packObjectsHook=/bin/sh".into()];
    assert_eq!(
        c.info_refs_upload_pack(req).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let err = c
        .post_upload_pack(tokio_stream::iter(Vec::<PostUploadPackRequest>::new()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// A push's identity (request fields first, the call's metadata where they are empty)
/// reaches the executable pre-receive hook as Gitaly's GL_* variables; a bad field is
/// refused before anything runs.
#[tokio::test]
async fn pushers_identity_reaches_the_hook() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("pre-receive.sh");
    let seen = dir.path().join("seen.env");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nenv | grep '^GL_' | sort > {}\necho 'policy says no' >&2\nexit 1\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let serving = serving(dir.path(), |c| c.hooks.pre_receive = Some(hook.clone())).await;
    let storage = dir.path().join("storage");
    let f = Fixture::create(&storage.join("r.git"), "sha1");
    let old = f.rev_parse("feature");
    let zero = "0".repeat(40);
    let line = format!("{old} {zero} refs/heads/feature\0report-status delete-refs\n");
    let pkt = format!("{:04x}{line}0000", line.len() + 4).into_bytes();
    let channel = gitrpc_client::connect(&serving.addresses()[0], &Default::default())
        .await
        .unwrap();
    let mut c = SmartHttpServiceClient::new(channel);
    let repo = Repository {
        storage_name: STORAGE.into(),
        relative_path: "r.git".into(),
        gl_project_path: "group/r".into(),
        ..Default::default()
    };
    let push = |gl_id: &str| {
        let msgs = vec![
            PostReceivePackRequest {
                repository: Some(repo.clone()),
                gl_id: gl_id.into(),
                gl_repository: "project-1".into(),
                ..Default::default()
            },
            PostReceivePackRequest {
                data: pkt.clone(),
                ..Default::default()
            },
        ];
        let mut req = tonic::Request::new(tokio_stream::iter(msgs));
        let id = gitrpc_proto::identity::Identity {
            gl_id: "user-from-metadata".into(),
            username: "alice".into(),
            remote_ip: "192.0.2.1".into(),
            ..Default::default()
        };
        id.apply(req.metadata_mut());
        let mut c = c.clone();
        async move {
            let st = c.post_receive_pack(req).await?.into_inner();
            concat(st, |m| m.data).await
        }
    };
    let report = String::from_utf8_lossy(&push("user-7").await.unwrap()).to_string();
    assert!(report.contains("pre-receive hook declined"), "{report}");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "GL_ID=user-7\nGL_PROJECT_PATH=group/r\nGL_PROTOCOL=http\nGL_REPOSITORY=project-1\nGL_USERNAME=alice\n"
    );
    std::fs::remove_file(&seen).unwrap();
    let err = push("user-7\nGL_ID=root").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("gl_id:"), "{err:?}");
    assert!(!seen.exists(), "the hook ran for a refused request");
    let _ = &mut c;
}
