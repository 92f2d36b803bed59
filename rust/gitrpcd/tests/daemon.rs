//! The real `gitrpcd` binary: flags, config file, serving, graceful SIGTERM/SIGINT.
#![allow(clippy::disallowed_methods)] // starts the daemon binary under test

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gitrpc_proto::gitaly::server_service_client::ServerServiceClient;
use gitrpc_proto::gitaly::ServerInfoRequest;

fn start(args: &[&str], cwd: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gitrpcd"))
        .args(args)
        .current_dir(cwd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

async fn storages(socket: &Path) -> Vec<String> {
    let ch = gitrpc_client::connect(&format!("unix:{}", socket.display()), &Default::default())
        .await
        .unwrap();
    ServerServiceClient::new(ch)
        .server_info(ServerInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .storage_statuses
        .into_iter()
        .map(|s| s.storage_name)
        .collect()
}

/// Polls asynchronously so the test's own client connection keeps being driven (it must
/// see the server's GOAWAY and close for the drain to finish).
async fn exit_ok_and_clean(mut child: Child, socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "gitrpcd did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drain waited for an idle client"
    );
    assert!(!socket.exists(), "socket left behind");
}

#[tokio::test]
async fn flags_serve_and_sigterm_drains() {
    let d = tempfile::tempdir().unwrap();
    let socket = d.path().join("x.sock");
    let storage = d.path().join("repos");
    let child = start(
        &[
            "--socket",
            socket.to_str().unwrap(),
            "--storage",
            &format!("default={}", storage.display()),
        ],
        d.path(),
    );
    wait_for(&socket);
    assert_eq!(storages(&socket).await, ["default"]);
    signal(&child, libc::SIGTERM);
    exit_ok_and_clean(child, &socket).await;
}

#[tokio::test]
async fn config_file_and_sigint() {
    let d = tempfile::tempdir().unwrap();
    let socket = d.path().join("c.sock");
    let config = d.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "socket_path = \"{}\"\n[[storage]]\nname = \"a\"\npath = \"{}\"\n[[storage]]\nname = \"b\"\npath = \"{}\"\n[logging]\nformat = \"json\"\n",
            socket.display(),
            d.path().join("a").display(),
            d.path().join("b").display()
        ),
    )
    .unwrap();
    let child = start(&["--config", config.to_str().unwrap()], d.path());
    wait_for(&socket);
    let mut names = storages(&socket).await;
    names.sort();
    assert_eq!(names, ["a", "b"]);
    signal(&child, libc::SIGINT);
    exit_ok_and_clean(child, &socket).await;
}

#[tokio::test]
async fn embedded_default_needs_no_arguments() {
    let d = tempfile::tempdir().unwrap();
    let child = start(&[], d.path());
    let socket = d.path().join("gitrpc-data/gitrpc.sock");
    wait_for(&socket);
    assert_eq!(storages(&socket).await, ["default"]);
    assert!(d.path().join("gitrpc-data/repositories").is_dir());
    signal(&child, libc::SIGTERM);
    exit_ok_and_clean(child, &socket).await;
}

#[test]
fn bad_config_fails_clearly() {
    let d = tempfile::tempdir().unwrap();
    let config = d.path().join("bad.toml");
    std::fs::write(&config, "socket_path = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gitrpcd"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("config"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
