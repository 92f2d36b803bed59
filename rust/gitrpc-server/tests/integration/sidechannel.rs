use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gitrpc_client::client::repository;
use gitrpc_client::{Client, Options};
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use gitrpc_server::config::{ConcurrencyConfig, PackObjectsLimiting};
use tonic::Code;

use crate::common::*;

const POST: &str = "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel";

fn backchannel() -> Options {
    Options {
        backchannel: true,
        ..Default::default()
    }
}

fn pkt(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

/// A protocol v2 fetch of `oid` (no haves, no progress), for upload-pack --stateless-rpc.
fn v2_fetch(oid: &str) -> Vec<u8> {
    format!(
        "{}0001{}{}{}0000",
        pkt("command=fetch\n"),
        pkt("no-progress\n"),
        pkt(&format!("want {oid}\n")),
        pkt("done\n")
    )
    .into_bytes()
}

/// The pack in the `packfile` section of a v2 fetch response.
fn packfile(mut resp: &[u8]) -> Vec<u8> {
    let mut pack = Vec::new();
    let mut in_pack = false;
    while resp.len() >= 4 {
        let len = usize::from_str_radix(std::str::from_utf8(&resp[..4]).unwrap(), 16).unwrap();
        if len < 4 {
            resp = &resp[4..];
            if in_pack {
                break;
            }
            continue;
        }
        let payload = &resp[4..len];
        if in_pack {
            assert_eq!(payload[0], 1, "band 1 only (no-progress)");
            pack.extend_from_slice(&payload[1..]);
        } else if payload == b"packfile\n" {
            in_pack = true;
        }
        resp = &resp[len..];
    }
    assert!(!pack.is_empty(), "no packfile section");
    pack
}

/// `pack` passes `git index-pack --strict` in an empty repository and holds `oid`.
fn check_pack(pack: &[u8], oid: &str) {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "--bare", "e.git"]);
    let repo = dir.path().join("e.git");
    let mut child = Command::new("git")
        .args(["index-pack", "--stdin", "--strict"])
        .current_dir(&repo)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pack).unwrap();
    assert!(child.wait().unwrap().success(), "index-pack failed");
    git(&repo, &["cat-file", "-e", oid]);
}

/// `/metrics` of a server with `prometheus_listen_addr`.
fn metrics(url: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The sum of every sample of `name` (any labels).
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Processes whose command line names `dir` (git started on a repository inside it).
fn processes_in(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&*dir))
        .collect()
}

/// Wait (up to 10 s) until none of the server's limiters holds a slot and no git runs on
/// its storage.
async fn settled(url: &str, dir: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(url);
        assert!(
            text.contains("gitrpc_limit_in_flight{"),
            "no limiter in /metrics"
        );
        let in_flight = total(&text, "gitrpc_limit_in_flight");
        let gits = processes_in(dir);
        if in_flight == 0.0 && gits.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{in_flight} slots still held; git left: {gits:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn post(repo: Repository, protocol: &str) -> PostUploadPackWithSidechannelRequest {
    PostUploadPackWithSidechannelRequest {
        repository: Some(repo),
        git_protocol: protocol.into(),
        ..Default::default()
    }
}

/// Over a plain connection, without the id, with a bad id: refused; bad requests over a
/// backchannel open no sidechannel. (That no git starts is checked against a daemon of its
/// own, whose git counters no other test shares: `gitrpcd/tests/sidechannel`.)
#[tokio::test]
async fn refusals_open_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |_| {}).await;
    Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let address = server.addresses()[0].clone();
    let repo = repository(STORAGE, "r.git");

    let plain = Client::connect(&address, &Options::default())
        .await
        .unwrap();
    let err = plain
        .post_upload_pack_with_sidechannel(post(repo.clone(), ""), &b""[..], tokio::io::sink())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("backchannel"), "{err:?}");

    let client = Client::connect(&address, &backchannel()).await.unwrap();
    let mut raw = SshServiceClient::new(client.transport());
    let req = SshUploadPackWithSidechannelRequest {
        repository: Some(repo.clone()),
        ..Default::default()
    };
    let err = raw
        .ssh_upload_pack_with_sidechannel(req.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("gitaly-sidechannel-id"), "{err:?}");
    let mut bad_id = tonic::Request::new(req);
    bad_id
        .metadata_mut()
        .insert("gitaly-sidechannel-id", "twelve".parse().unwrap());
    let err = raw
        .ssh_upload_pack_with_sidechannel(bad_id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let bad = [
        (post(repository(STORAGE, "missing.git"), ""), Code::NotFound),
        (
            post(repository(STORAGE, "../x.git"), ""),
            Code::InvalidArgument,
        ),
        (post(repo.clone(), "version=9"), Code::InvalidArgument),
        (
            PostUploadPackWithSidechannelRequest {
                git_config_options: vec!["core.sshCommand=touch /tmp/x".into()],
                ..post(repo.clone(), "")
            },
            Code::InvalidArgument,
        ),
    ];
    for (req, code) in bad {
        let opened = Arc::new(AtomicBool::new(false));
        let flag = opened.clone();
        let transport = client.transport();
        let err = client
            .with_sidechannel(
                req,
                |r| async move {
                    gitrpc_proto::gitaly::smart_http_service_client::SmartHttpServiceClient::new(
                        transport,
                    )
                    .post_upload_pack_with_sidechannel(r)
                    .await
                },
                |_chan| async move {
                    flag.store(true, Ordering::SeqCst);
                    Ok(())
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            !opened.load(Ordering::SeqCst),
            "{code:?}: a sidechannel was opened"
        );
    }
    server.stop(Duration::from_secs(1)).await;
}

/// PostUploadPackWithSidechannel answers what `git upload-pack --stateless-rpc` answers;
/// a v2 fetch's pack is complete and valid; the statistics describe the request.
#[tokio::test]
async fn post_upload_pack_with_sidechannel_matches_git() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |_| {}).await;
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let client = Client::connect(&server.addresses()[0], &backchannel())
        .await
        .unwrap();
    let repo = repository(STORAGE, "r.git");

    let ls_refs = b"0014command=ls-refs\n00010000".to_vec();
    let mut out = Vec::new();
    client
        .post_upload_pack_with_sidechannel(post(repo.clone(), "version=2"), &ls_refs[..], &mut out)
        .await
        .unwrap();
    let mut git = Command::new("git")
        .args(["upload-pack", "--stateless-rpc"])
        .arg(&fx.path)
        .env("GIT_PROTOCOL", "version=2")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    git.stdin.take().unwrap().write_all(&ls_refs).unwrap();
    assert_eq!(out, git.wait_with_output().unwrap().stdout);

    let head = fx.rev_parse("main");
    let mut out = Vec::new();
    let resp = client
        .post_upload_pack_with_sidechannel(
            post(repo.clone(), "version=2"),
            &v2_fetch(&head)[..],
            &mut out,
        )
        .await
        .unwrap();
    check_pack(&packfile(&out), &head);
    let stats = resp.packfile_negotiation_statistics.unwrap();
    assert_eq!((stats.wants, stats.haves), (1, 0));
    assert_eq!(
        stats.packets, 4,
        "command, delim, no-progress, want: {stats:?}"
    );

    // v0: capabilities on the first want, a shallow fetch with a filter and a have.
    let first = fx.rev_parse("main~1");
    let request = format!(
        "{}{}{}0000{}{}",
        pkt(&format!("want {head} side-band-64k filter\n")),
        pkt("deepen 1\n"),
        pkt("filter blob:none\n"),
        pkt(&format!("have {first}\n")),
        pkt("done\n"),
    );
    let mut out = Vec::new();
    let resp = client
        .post_upload_pack_with_sidechannel(post(repo, ""), request.as_bytes(), &mut out)
        .await
        .unwrap();
    let stats = resp.packfile_negotiation_statistics.unwrap();
    assert_eq!((stats.wants, stats.haves, stats.shallows), (1, 1, 0));
    assert_eq!(stats.caps, ["side-band-64k", "filter"]);
    assert_eq!(
        (stats.deepen.as_str(), stats.filter.as_str()),
        ("deepen 1", "blob:none")
    );
    assert!(String::from_utf8_lossy(&out).contains("shallow"), "{out:?}");
    server.stop(Duration::from_secs(1)).await;
}

/// Plain HTTP/2 clients and backchannel clients on the same unix socket and TCP port, at
/// the same time.
#[tokio::test]
async fn plain_and_backchannel_clients_share_a_listener() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |c| c.listen_addr = Some("127.0.0.1:0".into())).await;
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let head = fx.rev_parse("main");
    let repo = repository(STORAGE, "r.git");
    assert_eq!(server.addresses().len(), 2);
    for address in server.addresses() {
        let plain = Client::connect(address, &Options::default()).await.unwrap();
        let multiplexed = Client::connect(address, &backchannel()).await.unwrap();
        let calls = (0..8).map(|i| {
            let (plain, multiplexed, repo, head) = (
                plain.clone(),
                multiplexed.clone(),
                repo.clone(),
                head.clone(),
            );
            async move {
                assert!(plain.ref_exists(&repo, "refs/heads/main").await.unwrap());
                assert!(multiplexed
                    .ref_exists(&repo, "refs/heads/main")
                    .await
                    .unwrap());
                if i % 2 == 0 {
                    let mut out = Vec::new();
                    multiplexed
                        .post_upload_pack_with_sidechannel(
                            post(repo.clone(), "version=2"),
                            &v2_fetch(&head)[..],
                            &mut out,
                        )
                        .await
                        .unwrap();
                    check_pack(&packfile(&out), &head);
                }
            }
        });
        futures::future::join_all(calls).await;
    }
    server.stop(Duration::from_secs(1)).await;
}

/// The TLS listener: the mux runs after the handshake, so backchannel sessions and plain
/// HTTP/2 both work over TLS.
#[tokio::test]
async fn backchannel_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = crate::security::certificate(dir.path());
    let server = serving(&dir, |c| {
        c.tls_listen_addr = Some("127.0.0.1:0".into());
        c.tls = Some(tls.clone());
    })
    .await;
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let head = fx.rev_parse("main");
    let address = server
        .addresses()
        .iter()
        .find(|a| a.starts_with("tls://"))
        .unwrap()
        .replace("127.0.0.1", "localhost");
    let opts = Options {
        tls_ca_file: Some(tls.certificate_path.clone()),
        ..Default::default()
    };
    let plain = Client::connect(&address, &opts).await.unwrap();
    let multiplexed = Client::connect(
        &address,
        &Options {
            backchannel: true,
            ..opts
        },
    )
    .await
    .unwrap();
    let repo = repository(STORAGE, "r.git");
    assert!(plain.ref_exists(&repo, "refs/heads/main").await.unwrap());
    let mut out = Vec::new();
    multiplexed
        .post_upload_pack_with_sidechannel(post(repo, "version=2"), &v2_fetch(&head)[..], &mut out)
        .await
        .unwrap();
    check_pack(&packfile(&out), &head);
    // Not trusted: the backchannel dial fails like any TLS dial.
    let untrusted = Client::connect(&address, &backchannel()).await;
    assert!(untrusted.is_err());
    server.stop(Duration::from_secs(1)).await;
}

/// 200 sidechannel fetches at once on one backchannel session (one client, one
/// connection), under a `[[concurrency]]` limit and `[pack_objects_limiting]`: all succeed,
/// sampled packs are valid, and afterwards no slot is held and no git runs.
#[tokio::test]
async fn two_hundred_concurrent_sidechannel_fetches_on_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |c| {
        c.prometheus_listen_addr = Some("127.0.0.1:0".into());
        c.concurrency = vec![ConcurrencyConfig {
            rpc: POST.into(),
            max_concurrency: 40,
            max_queue_size: 0,
            max_queue_wait: None,
            adaptive: false,
            min_limit: None,
            max_limit: None,
        }];
        c.pack_objects_limiting = Some(PackObjectsLimiting {
            max_concurrency: 20,
            max_queue_length: 0,
            max_queue_wait: None,
            key: Default::default(),
        });
    })
    .await;
    let monitor = server.monitor_url().unwrap();
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let head = fx.rev_parse("main");
    let client = Client::connect(&server.addresses()[0], &backchannel())
        .await
        .unwrap();
    client.set_timeout(Some(Duration::from_secs(180)));
    let repo = repository(STORAGE, "r.git");
    let calls = (0..200).map(|i| {
        let (client, repo, head) = (client.clone(), repo.clone(), head.clone());
        async move {
            let mut out = Vec::new();
            client
                .post_upload_pack_with_sidechannel(
                    post(repo, "version=2"),
                    &v2_fetch(&head)[..],
                    &mut out,
                )
                .await
                .unwrap_or_else(|e| panic!("fetch {i}: {e:?}"));
            (i % 40 == 0).then_some(out)
        }
    });
    let outs = tokio::time::timeout(Duration::from_secs(180), futures::future::join_all(calls))
        .await
        .expect("200 fetches within 180 s");
    let sampled: Vec<Vec<u8>> = outs.into_iter().flatten().collect();
    assert_eq!(sampled.len(), 5);
    for out in &sampled {
        check_pack(&packfile(out), &head);
    }
    settled(&monitor, dir.path()).await;
    server.stop(Duration::from_secs(1)).await;
}

/// Reflection (here over a backchannel connection) knows both RPCs.
#[tokio::test]
async fn reflection_describes_the_sidechannel_rpcs() {
    use prost::Message;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |_| {}).await;
    let client = Client::connect(&server.addresses()[0], &backchannel())
        .await
        .unwrap();
    for (service, method) in [
        ("gitaly.SSHService", "SSHUploadPackWithSidechannel"),
        ("gitaly.SmartHTTPService", "PostUploadPackWithSidechannel"),
    ] {
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(format!(
                "{service}.{method}"
            ))),
        };
        let msg = ServerReflectionClient::new(client.transport())
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner()
            .message()
            .await
            .unwrap()
            .unwrap();
        let Some(MessageResponse::FileDescriptorResponse(files)) = msg.message_response else {
            panic!("unexpected {msg:?}")
        };
        let found = files.file_descriptor_proto.iter().any(|f| {
            let file = prost_types::FileDescriptorProto::decode(&f[..]).unwrap();
            file.service
                .iter()
                .any(|s| service.ends_with(s.name()) && s.method.iter().any(|m| m.name() == method))
        });
        assert!(found, "{service}.{method} not described");
    }
    server.stop(Duration::from_secs(1)).await;
}
