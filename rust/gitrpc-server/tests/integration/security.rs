use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use gitrpc_client::{client::repository, Client, Options};
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::RefExistsRequest;
use gitrpc_server::config::{AuthConfig, Config, Storage, TlsConfig};
use gitrpc_server::Serving;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::common::*;

const SECRET: &str = "correct horse battery staple";

/// RefExists with the given `authorization` header (or none), over the server's socket.
async fn ref_exists_with(server: &Serving, header: Option<String>) -> Result<bool, tonic::Status> {
    let channel = gitrpc_client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    let mut req = tonic::Request::new(RefExistsRequest {
        repository: Some(repository(STORAGE, "r.git")),
        r#ref: b"refs/heads/main".to_vec(),
    });
    if let Some(h) = header {
        req.metadata_mut()
            .insert("authorization", h.parse().unwrap());
    }
    RefServiceClient::new(channel)
        .ref_exists(req)
        .await
        .map(|r| r.into_inner().value)
}

fn token_at(secret: &str, skew_secs: i64) -> String {
    let now = SystemTime::now();
    let at = if skew_secs >= 0 {
        now + Duration::from_secs(skew_secs as u64)
    } else {
        now - Duration::from_secs((-skew_secs) as u64)
    };
    gitrpc_proto::auth::bearer(secret.as_bytes(), at)
}

fn assert_code(r: Result<bool, tonic::Status>, code: Code, message: &str) {
    let e = r.expect_err("call should be refused");
    assert_eq!((e.code(), e.message()), (code, message), "{e:?}");
}

/// `[auth] token`: calls without a token are UNAUTHENTICATED, with a wrong secret or a
/// timestamp outside ±30 s PERMISSION_DENIED; skew inside the window is fine; health checks
/// and in-process calls need no token; the client sends a fresh token on every call.
#[tokio::test]
async fn token_v2_accepts_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |c| {
        c.auth = AuthConfig {
            token: Some(SECRET.into()),
            ..Default::default()
        }
    })
    .await;
    Fixture::create(&dir.path().join("storage/r.git"), "sha1");

    assert_code(
        ref_exists_with(&server, None).await,
        Code::Unauthenticated,
        "authentication required",
    );
    assert_code(
        ref_exists_with(&server, Some("Bearer not-a-token".into())).await,
        Code::Unauthenticated,
        "authentication required",
    );
    assert_code(
        ref_exists_with(&server, Some(token_at("wrong secret", 0))).await,
        Code::PermissionDenied,
        "permission denied",
    );
    for skew in [-120, -31, 31, 120] {
        assert_code(
            ref_exists_with(&server, Some(token_at(SECRET, skew))).await,
            Code::PermissionDenied,
            "permission denied",
        );
    }
    for skew in [-25, 0, 25] {
        assert!(
            ref_exists_with(&server, Some(token_at(SECRET, skew)))
                .await
                .unwrap(),
            "clock skew {skew}s is inside the window"
        );
    }

    // Health is exempt.
    let channel = gitrpc_client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1);

    // gitrpc_client::Client with the token: every call carries a fresh one.
    let opts = Options {
        token: Some(SECRET.into()),
        ..Default::default()
    };
    let client = Client::connect(&server.addresses()[0], &opts)
        .await
        .unwrap();
    let repo = repository(STORAGE, "r.git");
    for _ in 0..3 {
        assert!(client.ref_exists(&repo, "refs/heads/main").await.unwrap());
    }
    // Without it, refusals are not retried (they are not UNAVAILABLE/RESOURCE_EXHAUSTED).
    let anonymous = Client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    let e = anonymous
        .ref_exists(&repo, "refs/heads/main")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // In-process calls are the process itself.
    let local = Client::from_service(server.in_process(), None);
    assert!(local.ref_exists(&repo, "refs/heads/main").await.unwrap());

    // Refused calls are counted by code like any other.
    let count = |code| {
        server
            .deps()
            .rpcs
            .count("/gitaly.RefService/RefExists", code)
    };
    assert_eq!(count("UNAUTHENTICATED"), 3);
    assert_eq!(count("PERMISSION_DENIED"), 5);
    server.stop(Duration::from_secs(1)).await;
}

/// `token_file` (trailing newline ignored) and `transitioning` (refusals only logged).
#[tokio::test]
async fn token_file_and_transitioning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let server = serving(&dir, |c| {
        c.auth = AuthConfig {
            token_file: Some(file.clone()),
            ..Default::default()
        }
    })
    .await;
    Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    assert!(ref_exists_with(&server, Some(token_at(SECRET, 0)))
        .await
        .unwrap());
    assert_code(
        ref_exists_with(&server, None).await,
        Code::Unauthenticated,
        "authentication required",
    );
    server.stop(Duration::from_secs(1)).await;

    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |c| {
        c.auth = AuthConfig {
            token: Some(SECRET.into()),
            transitioning: true,
            ..Default::default()
        }
    })
    .await;
    Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    assert!(ref_exists_with(&server, None).await.unwrap());
    assert!(ref_exists_with(&server, Some(token_at("wrong", 0)))
        .await
        .unwrap());
    server.stop(Duration::from_secs(1)).await;

    // A missing token file is a start-up error naming the file.
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        storage: vec![Storage {
            name: STORAGE.into(),
            path: dir.path().join("storage"),
        }],
        auth: AuthConfig {
            token_file: Some(dir.path().join("nope")),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = Serving::start(config).await.err().unwrap().to_string();
    assert!(err.contains("token_file") && err.contains("nope"), "{err}");
}

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files.
pub fn certificate(dir: &std::path::Path) -> TlsConfig {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let tls = TlsConfig {
        certificate_path: dir.join("cert.pem"),
        key_path: dir.join("key.pem"),
    };
    std::fs::write(&tls.certificate_path, ck.cert.pem()).unwrap();
    std::fs::write(&tls.key_path, ck.key_pair.serialize_pem()).unwrap();
    tls
}

/// `tls_listen_addr` + `[tls]`: a client trusting the certificate makes calls over
/// `tls://`, with auth on top; one that doesn't trust it, or speaks plaintext, can't.
#[tokio::test]
async fn tls_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let tls = certificate(dir.path());
    let server = serving(&dir, |c| {
        c.socket_path = None;
        c.tls_listen_addr = Some("127.0.0.1:0".into());
        c.tls = Some(tls.clone());
        c.auth.token = Some(SECRET.into());
    })
    .await;
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let address = server.addresses()[0].clone();
    assert!(address.starts_with("tls://127.0.0.1:"), "{address}");
    let port = address.rsplit(':').next().unwrap();
    let repo = repository(STORAGE, "r.git");

    for addr in [address.clone(), format!("tls://localhost:{port}")] {
        let opts = Options {
            token: Some(SECRET.into()),
            tls_ca_file: Some(tls.certificate_path.clone()),
            ..Default::default()
        };
        let client = Client::connect(&addr, &opts).await.unwrap();
        let commit = client
            .find_commit(&repo, b"main")
            .await
            .unwrap()
            .expect("commit");
        assert_eq!(commit.id, fx.rev_parse("main"));
    }

    // Not trusted: the handshake fails, so does connect.
    let untrusted = Client::connect(&address, &Options::default()).await;
    let e = untrusted.err().expect("untrusted certificate must fail");
    assert!(e.detailed().contains("certificate"), "{}", e.detailed());
    // Plaintext HTTP/2 to the TLS port gets nowhere.
    let plain = format!("tcp://127.0.0.1:{port}");
    let opts = Options {
        connect_timeout: Duration::from_secs(2),
        timeout: Some(Duration::from_secs(2)),
        retries: 0,
        ..Default::default()
    };
    if let Ok(c) = Client::connect(&plain, &opts).await {
        assert!(c.find_commit(&repo, b"main").await.is_err());
    }
    server.stop(Duration::from_secs(1)).await;

    // A bad key is a start-up error naming the files.
    let dir = tempfile::tempdir().unwrap();
    let mut tls = certificate(dir.path());
    std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
    tls.key_path = dir.path().join("bad.pem");
    let config = Config {
        tls_listen_addr: Some("127.0.0.1:0".into()),
        tls: Some(tls),
        storage: vec![Storage {
            name: STORAGE.into(),
            path: dir.path().join("storage"),
        }],
        ..Default::default()
    };
    let err = Serving::start(config).await.err().unwrap().to_string();
    assert!(err.contains("bad.pem"), "{err}");
}

/// The unix socket gets `socket_mode` (default 0600) from the moment it is reachable, and
/// binding leaves nothing else behind.
#[tokio::test]
async fn unix_socket_mode() {
    for (mode, want) in [(None, 0o600), (Some("0660"), 0o660), (Some("0o666"), 0o666)] {
        let dir = tempfile::tempdir().unwrap();
        let server = serving(&dir, |c| {
            if let Some(m) = mode {
                c.socket_mode = m.parse().unwrap();
            }
        })
        .await;
        let meta = std::fs::metadata(dir.path().join("s.sock")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, want, "{mode:?}");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        server.stop(Duration::from_secs(1)).await;
    }
    // A mode that isn't one is refused with the config, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let err = Config::from_toml(&format!(
        "socket_path = {socket:?}\nsocket_mode = \"rw-------\"\n[[storage]]\nname = \"{STORAGE}\"\npath = {:?}\n",
        dir.path().join("storage")
    ))
    .unwrap_err();
    assert_eq!(err.key(), Some("socket_mode"), "{err}");
    assert!(!socket.exists());
}
