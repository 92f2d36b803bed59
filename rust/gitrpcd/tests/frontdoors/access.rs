//! `access_url`: the application's check as an HTTP endpoint (a small server in this test
//! that records each question and answers by key).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::support::*;

/// An HTTP/1.1 server on loopback answering the access check: `key-42` allowed (as alice),
/// `key-7` refused with a message, `key-99` a 500. Returns its URL and the JSON bodies it
/// was sent.
fn application() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/allowed", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let ask: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(
                request_line.starts_with("POST /api/allowed "),
                "{request_line}"
            );
            let (status, answer) = match ask["key_id"].as_str().unwrap() {
                "key-42" => (
                    "200 OK",
                    r#"{"status": true, "gl_id": "user-42", "gl_username": "alice", "gl_console_messages": ["Welcome, alice"]}"#,
                ),
                "key-7" => (
                    "200 OK",
                    r#"{"allowed": false, "message": "This project is archived."}"#,
                ),
                _ => (
                    "500 Internal Server Error",
                    r#"{"message": "the database is down"}"#,
                ),
            };
            record.lock().unwrap().push(ask);
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn the_application_decides_over_http() {
    let (url, seen) = application();
    let door = Door::start("", Some(&format!("access_url = \"{url}\"")));
    door.daemon.seed("g/p.git");
    let t = tempfile::tempdir().unwrap();
    // Allowed: the application's console message is shown, the clone works.
    let out = door.git(
        &door.alice,
        t.path(),
        &["clone", &door.url("/g/p"), "c"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("remote: Welcome, alice"),
        "{}",
        stderr(&out)
    );
    let ask = seen.lock().unwrap()[0].clone();
    assert_eq!(ask["key_id"], "key-42");
    assert_eq!(ask["action"], "git-upload-pack");
    assert_eq!(ask["storage"], "default");
    assert_eq!(ask["relative_path"], "g/p.git");
    assert_eq!(ask["project"], "/g/p");
    assert_eq!(ask["protocol"], "ssh");
    assert_eq!(ask["git_protocol"], "version=2");
    assert_eq!(ask["remote_ip"], "127.0.0.1");
    assert_eq!(ask["changes"], "_any");
    // Refused, with a message; a failing application refuses too (fail closed).
    for (key, message) in [
        (&door.bob, "remote: This project is archived."),
        (&door.eve, "remote: the database is down"),
    ] {
        let out = door.git(key, t.path(), &["ls-remote", &door.url("g/p.git")], &[]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
    assert_eq!(door.ssh_rpcs(), 1.0, "only alice's clone reached gitrpcd");
}

#[test]
fn an_unreachable_application_refuses() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/allowed", closed.local_addr().unwrap());
    drop(closed);
    let door = Door::start("", Some(&format!("access_url = \"{url}\"")));
    door.daemon.seed("g/p.git");
    let t = tempfile::tempdir().unwrap();
    let out = door.git(
        &door.alice,
        t.path(),
        &["ls-remote", &door.url("g/p.git")],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("remote: access check failed: connect"),
        "{}",
        stderr(&out)
    );
    assert_eq!(door.ssh_rpcs(), 0.0);
}
