//! GetCommitSignatures with commits signed by real keys: the signature verifies over the
//! signed text (SSH with `ssh-keygen -Y verify`; GPG with `gpg --verify` if gpg is here), in
//! SHA-1 and SHA-256 repositories; unsigned and missing commits are left out.

use std::path::Path;

use gitrpc_proto::gitaly::get_commit_signatures_response::Signer;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::*;
use crate::common::TestServer;

/// One commit's answer, reassembled.
#[derive(Debug, Default)]
struct Signed {
    id: String,
    signature: Vec<u8>,
    text: Vec<u8>,
    signer: i32,
    author: Option<CommitAuthor>,
    pieces: usize,
}

async fn signatures(c: &mut Client, w: &Work, ids: &[&str]) -> Result<Vec<Signed>, tonic::Status> {
    let msgs = stream(
        c.get_commit_signatures(GetCommitSignaturesRequest {
            repository: Some(w.repo()),
            commit_ids: ids.iter().map(|i| i.to_string()).collect(),
        })
        .await,
    )
    .await?;
    let mut out: Vec<Signed> = Vec::new();
    for m in msgs {
        if !m.commit_id.is_empty() {
            assert!(m.signed_text.is_empty());
            out.push(Signed {
                id: m.commit_id,
                signature: m.signature,
                signer: m.signer,
                author: m.author,
                ..Default::default()
            });
        } else {
            let s = out.last_mut().unwrap();
            s.text.extend_from_slice(&m.signed_text);
            s.pieces += 1;
        }
    }
    Ok(out)
}

/// What git itself says is signed and the signature: the raw commit without its
/// `gpgsig*` header, and that header's value.
pub fn git_split(w: &Work, id: &str) -> (Vec<u8>, Vec<u8>) {
    let raw = run(git_cmd(&w.path).args(["cat-file", "commit", id]));
    let (mut text, mut sig) = (Vec::new(), Vec::new());
    let mut in_sig = false;
    let mut body = false;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if !body && line == b"\n" {
            body = true;
        }
        if !body && (line.starts_with(b"gpgsig ") || line.starts_with(b"gpgsig-sha256 ")) {
            in_sig = true;
            let sp = line.iter().position(|&b| b == b' ').unwrap();
            sig.extend_from_slice(&line[sp + 1..]);
            continue;
        }
        if in_sig && !body && line.starts_with(b" ") {
            sig.extend_from_slice(&line[1..]);
            continue;
        }
        in_sig = false;
        text.extend_from_slice(line);
    }
    if sig.last() == Some(&b'\n') {
        sig.pop();
    }
    (text, sig)
}

pub fn ssh_key(dir: &Path) -> Option<PathBuf> {
    let key = dir.join("key");
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "signer@example.com",
            "-f",
        ])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then_some(key)
}

fn ssh_verifies(dir: &Path, key: &Path, signature: &[u8], text: &[u8]) -> bool {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = dir.join("allowed");
    std::fs::write(&allowed, format!("signer@example.com {public}")).unwrap();
    let sig = dir.join("sig");
    let mut with_nl = signature.to_vec();
    with_nl.push(b'\n');
    std::fs::write(&sig, with_nl).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-n",
            "git",
            "-I",
            "signer@example.com",
            "-f",
        ])
        .arg(&allowed)
        .arg("-s")
        .arg(&sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text).unwrap();
    child.wait().unwrap().success()
}

#[tokio::test]
async fn ssh_signed_commits_verify_over_the_signed_text() {
    let keys = tempfile::tempdir().unwrap();
    let Some(key) = ssh_key(keys.path()) else {
        eprintln!("skipped: ssh-keygen is not installed");
        return;
    };
    let s = TestServer::start().await;
    let mut c = client(&s);
    for (rel, format) in [("ssh1.git", "sha1"), ("ssh256.git", "sha256")] {
        let w = Work::new(&s, rel, format);
        w.write("a.txt", "a\n");
        let unsigned = w.commit("unsigned");
        let sign = |message: &str| {
            w.write("a.txt", message);
            run(&mut w.cmd(["add", "-A"]));
            let file = message_file(message);
            run(w
                .cmd([
                    "-c",
                    "gpg.format=ssh",
                    "-c",
                    &format!("user.signingkey={}", key.display()),
                    "commit",
                    "-q",
                    "-S",
                    "-F",
                ])
                .arg(file.path()));
            w.rev("HEAD")
        };
        let signed = sign("signed");
        let long: String = (0..30_000).map(|i| format!("line {i:06}\n")).collect();
        let big = sign(&format!("big\n\n{long}"));
        let missing = "1".repeat(if format == "sha1" { 40 } else { 64 });
        let got = signatures(&mut c, &w, &[&unsigned, &signed, &missing, &big])
            .await
            .unwrap();
        assert_eq!(got.len(), 2, "unsigned and missing commits are left out");
        for (g, id) in got.iter().zip([&signed, &big]) {
            assert_eq!(&g.id, id);
            assert_eq!(g.signer, Signer::User as i32);
            let (text, sig) = git_split(&w, id);
            assert_eq!((&g.text, &g.signature), (&text, &sig), "{id}");
            assert!(g.signature.starts_with(b"-----BEGIN SSH SIGNATURE-----"));
            assert!(
                ssh_verifies(keys.path(), &key, &g.signature, &g.text),
                "{id}"
            );
            let mut tampered = g.text.clone();
            tampered.push(b'x');
            assert!(!ssh_verifies(keys.path(), &key, &g.signature, &tampered));
            assert_eq!(g.author.as_ref().unwrap().name, b"Ada Lovelace");
        }
        assert_eq!(got[0].pieces, 1);
        assert!(got[1].pieces >= 3, "{}", got[1].pieces);
        // Raw commits of this hash: `gpgsig` for SHA-1, `gpgsig-sha256` for SHA-256.
        let raw = run(git_cmd(&w.path).args(["cat-file", "commit", &signed]));
        let header: &[u8] = if format == "sha1" {
            b"\ngpgsig "
        } else {
            b"\ngpgsig-sha256 "
        };
        assert!(raw.windows(header.len()).any(|x| x == header));
    }
    s.stop().await;
}

#[tokio::test]
async fn gpg_signed_commits_verify_over_the_signed_text() {
    if Command::new("gpg").arg("--version").output().is_err() {
        eprintln!("skipped: gpg is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        out.status.success()
    };
    assert!(gpg(&[
        "--quick-gen-key",
        "Signer <gpg@example.com>",
        "ed25519",
        "sign",
        "1d"
    ]));
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = Work::new(&s, "gpg.git", "sha1");
    w.write("a.txt", "a\n");
    run(&mut w.cmd(["add", "-A"]));
    run(w
        .cmd([
            "-c",
            "gpg.program=gpg",
            "-c",
            "user.signingkey=gpg@example.com",
            "commit",
            "-q",
            "-S",
            "-m",
            "gpg signed",
        ])
        .env("GNUPGHOME", home.path()));
    let id = w.rev("HEAD");
    let got = signatures(&mut c, &w, &[&id]).await.unwrap();
    assert_eq!(got.len(), 1);
    let (text, sig) = git_split(&w, &id);
    assert_eq!((&got[0].text, &got[0].signature), (&text, &sig));
    assert!(got[0]
        .signature
        .starts_with(b"-----BEGIN PGP SIGNATURE-----"));
    let sig_file = home.path().join("sig.asc");
    let text_file = home.path().join("text");
    std::fs::write(&sig_file, &got[0].signature).unwrap();
    std::fs::write(&text_file, &got[0].text).unwrap();
    assert!(gpg(&[
        "--verify",
        sig_file.to_str().unwrap(),
        text_file.to_str().unwrap()
    ]));
    std::fs::write(&text_file, b"tampered").unwrap();
    assert!(!gpg(&[
        "--verify",
        sig_file.to_str().unwrap(),
        text_file.to_str().unwrap()
    ]));
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "gpg-agent"])
        .status();
    s.stop().await;
}

#[tokio::test]
async fn bad_ids_as_gitaly() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = Work::new(&s, "ids.git", "sha1");
    w.write("a", "a\n");
    let head = w.commit("one");
    assert_eq!(
        failure(signatures(&mut c, &w, &[]).await),
        (Code::InvalidArgument, "empty CommitIds".to_string())
    );
    assert_eq!(
        failure(signatures(&mut c, &w, &[&head, "a17a9f6"]).await),
        (
            Code::InvalidArgument,
            "invalid object ID: \"a17a9f6\", expected length 40, got 7".to_string()
        )
    );
    let upper = head.to_uppercase();
    assert_eq!(
        failure(signatures(&mut c, &w, &[&upper]).await).0,
        Code::InvalidArgument
    );
    assert!(signatures(&mut c, &w, &[&head]).await.unwrap().is_empty());
    s.stop().await;
}
