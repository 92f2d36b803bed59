use std::io::Write;
use std::process::{Command, Stdio};

use futures::StreamExt;
use gitrpc_client::Client;
use gitrpc_proto::gitaly::smart_http_service_client::SmartHttpServiceClient;
use gitrpc_proto::gitaly::*;

use crate::common::*;

fn pkt(line: &str) -> Vec<u8> {
    format!("{:04x}{line}", line.len() + 4).into_bytes()
}

/// A protocol v2 `fetch` of `want` as a stateless-RPC body.
fn fetch_body(want: &str) -> Vec<u8> {
    let mut b = pkt("command=fetch\n");
    b.extend(pkt("object-format=sha1\n"));
    b.extend(b"0001");
    for l in ["thin-pack\n", "ofs-delta\n", "no-progress\n"] {
        b.extend(pkt(l));
    }
    b.extend(pkt(&format!("want {want}\n")));
    b.extend(pkt("done\n"));
    b.extend(b"0000");
    b
}

/// The pack in a v2 fetch response: the side-band 1 data after `packfile`.
fn pack_of(response: &[u8]) -> Vec<u8> {
    let mut at = 0;
    let mut in_pack = false;
    let mut pack = Vec::new();
    while at + 4 <= response.len() {
        let len =
            usize::from_str_radix(std::str::from_utf8(&response[at..at + 4]).unwrap(), 16).unwrap();
        if len < 4 {
            at += 4;
            continue;
        }
        let payload = &response[at + 4..at + len];
        if in_pack {
            if payload[0] == 1 {
                pack.extend_from_slice(&payload[1..]);
            }
        } else if payload == b"packfile\n" {
            in_pack = true;
        }
        at += len;
    }
    pack
}

/// An in-process server (no listener at all) with the cache: six identical PostUploadPack
/// calls at once through `Serving::in_process` run one pack-objects (the hook reaches the
/// server through its own FIFOs); every answer is a pack `git index-pack --strict` takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_process_fetches_share_one_pack_objects() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |c| {
        c.socket_path = None;
        c.pack_objects_cache.enabled = true;
        c.pack_objects_cache.min_occurrences = 0;
    })
    .await;
    assert!(server.addresses().is_empty());
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let head = fx.git(&["rev-parse", "main"]).trim().to_string();
    let client = Client::from_service(server.in_process(), None);
    let calls = (0..6).map(|_| {
        let mut http = SmartHttpServiceClient::new(client.transport());
        let req = PostUploadPackRequest {
            repository: Some(repository(STORAGE, "r.git")),
            data: fetch_body(&head),
            git_protocol: "version=2".into(),
            ..Default::default()
        };
        async move {
            let mut stream = http
                .post_upload_pack(futures::stream::iter([req]))
                .await
                .unwrap()
                .into_inner();
            let mut out = Vec::new();
            while let Some(m) = stream.next().await {
                out.extend(m.unwrap().data);
            }
            out
        }
    });
    let answers = futures::future::join_all(calls).await;
    for answer in answers {
        let t = tempfile::tempdir().unwrap();
        git(t.path(), &["init", "-q", "--bare", "e.git"]);
        let repo = t.path().join("e.git");
        let mut index = Command::new("git")
            .args(["index-pack", "--stdin", "--strict"])
            .current_dir(&repo)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        index
            .stdin
            .take()
            .unwrap()
            .write_all(&pack_of(&answer))
            .unwrap();
        assert!(index.wait().unwrap().success());
        git(&repo, &["cat-file", "-e", &head]);
    }
    let metrics = gitrpc_server::metrics::encode(&server.deps().metrics);
    let line = |series: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or("0")
            .to_string()
    };
    assert_eq!(
        line("gitrpc_git_commands_started_total{subcommand=\"pack-objects\"}"),
        "1"
    );
    assert_eq!(
        line("gitrpc_pack_objects_cache_lookups_total{result=\"miss\"}"),
        "1"
    );
    assert_eq!(server.deps().packcache.as_ref().unwrap().entries().len(), 1);
}

fn repository(storage: &str, rel: &str) -> Repository {
    Repository {
        storage_name: storage.into(),
        relative_path: rel.into(),
        ..Default::default()
    }
}

/// The hook run by hand with its output in a file (not a pipe, so the server can't write
/// into it directly and the pack goes through the hook's `out` FIFO and `cat`): the pack is
/// git's; arguments outside the allowlist, input that is no object id, or no bridge at all
/// make the hook fail with a reason and start nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_through_its_fifos() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |c| {
        c.pack_objects_cache.enabled = true;
    })
    .await;
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let head = fx.git(&["rev-parse", "main"]).trim().to_string();
    let deps = server.deps();
    let cache = deps.packcache.as_ref().unwrap();
    let session = cache
        .session(
            &fx.path,
            "default/r.git".into(),
            "",
            &Default::default(),
            &deps.git,
        )
        .unwrap();
    let (env_key, env_value) = session.env();
    let hook = cache.hook_path().to_path_buf();
    let run = move |args: &'static [&'static str], input: String, with_bridge: bool| {
        let (hook, env_value) = (hook.clone(), env_value.clone());
        tokio::task::spawn_blocking(move || {
            let out = tempfile::NamedTempFile::new().unwrap();
            let mut c = Command::new("sh");
            c.arg(&hook)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(out.reopen().unwrap())
                .stderr(Stdio::piped());
            if with_bridge {
                c.env(env_key, &env_value);
            }
            let mut child = c.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let result = child.wait_with_output().unwrap();
            (result, std::fs::read(out.path()).unwrap())
        })
    };
    let started = |deps: &gitrpc_server::Deps| {
        let text = gitrpc_server::metrics::encode(&deps.metrics);
        text.lines()
            .find_map(|l| {
                l.strip_prefix("gitrpc_git_commands_started_total{subcommand=\"pack-objects\"} ")
            })
            .unwrap_or("0")
            .to_string()
    };
    let args: &[&str] = &["git", "pack-objects", "--revs", "--stdout"];
    let (result, pack) = run(args, format!("{head}\n\n"), true).await.unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let t = tempfile::tempdir().unwrap();
    git(t.path(), &["init", "-q", "--bare", "e.git"]);
    let mut index = Command::new("git")
        .args(["index-pack", "--stdin", "--strict"])
        .current_dir(t.path().join("e.git"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    index.stdin.take().unwrap().write_all(&pack).unwrap();
    assert!(index.wait().unwrap().success());
    assert_eq!(started(deps), "1");

    for (args, input, with_bridge, says) in [
        (
            &["git", "pack-objects", "--revs", "--stdout", "--all"][..],
            format!("{head}\n\n"),
            true,
            "gitrpc: unsupported pack-objects arguments",
        ),
        (
            args,
            "main\n\n".to_string(),
            true,
            "gitrpc: pack-objects input: unexpected line",
        ),
        (
            args,
            format!("{head}\n\n"),
            false,
            "gitrpc: pack-objects bridge missing",
        ),
    ] {
        let (result, pack) = run(args, input, with_bridge).await.unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(
            !result.status.success() && stderr.contains(says),
            "{stderr}"
        );
        assert!(pack.is_empty());
    }
    assert_eq!(started(deps), "1");
    drop(session);
}
