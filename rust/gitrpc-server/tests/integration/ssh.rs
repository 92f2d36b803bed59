use std::time::{Duration, Instant};

use futures::StreamExt;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use crate::common::*;

/// Live processes (their /proc stat lines) in the group led by `pgid`.
fn group_members(pgid: i32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string() {
            out.push(stat);
        }
    }
    out
}

#[tokio::test]
async fn deadline_kills_upload_pack() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let mut client = SshServiceClient::new(s.channel.clone());
    // First message only, then an open stream that never sends: upload-pack advertises its
    // refs and waits for our wants until the deadline passes.
    let first = SshUploadPackRequest {
        repository: Some(s.repo("r.git")),
        ..Default::default()
    };
    let input = futures::stream::iter(vec![first]).chain(futures::stream::pending());
    let mut req = tonic::Request::new(input);
    req.set_timeout(Duration::from_millis(700));
    let started = Instant::now();
    let mut responses = client.ssh_upload_pack(req).await.unwrap().into_inner();
    let first = responses.message().await.unwrap().unwrap();
    assert!(!first.stdout.is_empty(), "ref advertisement expected");
    let pgid = live_git_children()
        .into_iter()
        .find(|(_, cmd)| {
            cmd.contains("upload-pack") && cmd.contains(s.path("r.git").to_str().unwrap())
        })
        .map(|(pid, _)| pid)
        .expect("upload-pack running");
    let err = loop {
        match responses.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without the deadline"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group_members(pgid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "upload-pack survived its deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn first_message_rules() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let mut client = SshServiceClient::new(s.channel.clone());
    let send = |msgs: Vec<SshUploadPackRequest>| {
        let mut c = client.clone();
        async move {
            c.ssh_upload_pack(futures::stream::iter(msgs))
                .await
                .map(|_| ())
        }
    };
    let repo = Some(s.repo("r.git"));
    let cases = vec![
        (vec![], Code::InvalidArgument),
        (
            vec![SshUploadPackRequest {
                repository: repo.clone(),
                stdin: b"0000".to_vec(),
                ..Default::default()
            }],
            Code::InvalidArgument,
        ),
        (
            vec![SshUploadPackRequest {
                repository: repo.clone(),
                git_protocol: "version=9".into(),
                ..Default::default()
            }],
            Code::InvalidArgument,
        ),
        (
            vec![SshUploadPackRequest {
                repository: repo.clone(),
                git_config_options: vec!["core.sshCommand=sh".into()],
                ..Default::default()
            }],
            Code::InvalidArgument,
        ),
        (
            vec![SshUploadPackRequest {
                repository: Some(s.repo("missing.git")),
                ..Default::default()
            }],
            Code::NotFound,
        ),
    ];
    for (msgs, code) in cases {
        let err = send(msgs).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
    }
    let _ = &mut client;
}
