use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::cache::*;
use crate::harness::{git_ok, signal, Daemon};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);

fn spawn(mut c: Command) -> Child {
    c.process_group(0).spawn().unwrap()
}

fn wait(c: Child) -> Output {
    c.wait_with_output().unwrap()
}

/// The one entry of `rel`.
fn entry(s: &Server, rel: &str) -> serde_json::Value {
    let e = entries_of(s, rel);
    assert_eq!(e.len(), 1, "{e:?}");
    e[0].clone()
}

fn readers(s: &Server, rel: &str) -> usize {
    entries_of(s, rel)
        .first()
        .map_or(0, |e| e["readers"].as_array().unwrap().len())
}

/// The generating pack-objects is killed while four clients read its pack: every one of
/// them fails (no clone left behind), nothing is cached, and the next fetch generates
/// again and works.
#[test]
fn a_killed_generation_fails_its_readers_and_keeps_nothing() {
    let s = server("min_occurrences = 0", "");
    let t = tempfile::tempdir().unwrap();
    let failed = "gitrpc_pack_objects_generations_total{result=\"failed\"}";
    let evicted = "gitrpc_pack_objects_cache_evictions_total{reason=\"failed\"}";
    for attempt in 0..3 {
        let rel = format!("killed-{attempt}.git");
        let bare = slow_repo(&s, &rel, 16);
        let clone = |name: &str| spawn(clone_cmd(&s, Via::Sidechannel, &rel, t.path(), name));
        let first = clone(&format!("a{attempt}-0"));
        let Some(pid) = stop_generation(&s) else {
            assert_ok(&wait(first), "a generation that finished early");
            continue;
        };
        assert_eq!(entry(&s, &rel)["pid"], pid);
        let (f0, e0) = (metric(&s, failed), metric(&s, evicted));
        let mut clients = vec![first];
        clients.extend((1..4).map(|k| clone(&format!("a{attempt}-{k}"))));
        until(&s, "four readers", WAIT, || readers(&s, &rel) == 4);
        signal(pid, libc::SIGKILL);
        for (k, c) in clients.into_iter().enumerate() {
            let out = wait(c);
            assert!(!out.status.success(), "client {k} succeeded");
            assert!(!t.path().join(format!("a{attempt}-{k}")).exists());
        }
        until(&s, "the entry gone", WAIT, || {
            entries_of(&s, &rel).is_empty()
        });
        assert_eq!(metric(&s, failed) - f0, 1.0);
        assert_eq!(metric(&s, evicted) - e0, 1.0);
        assert_clean(&s);
        let misses = lookups(&s, "miss");
        let out = clone_cmd(&s, Via::Sidechannel, &rel, t.path(), "after")
            .output()
            .unwrap();
        assert_ok(&out, "the fetch after");
        assert_eq!(lookups(&s, "miss") - misses, 1.0);
        assert_good_clone(&t.path().join("after"), &rev(&bare, "main"));
        return;
    }
    panic!("pack-objects always finished before it could be stopped");
}

/// Three clients share a generation: one leaves mid-way, one stops reading. The
/// generation goes on, the third client gets its pack while the slow one is still stopped
/// (and the entry is finished by then), the slow one gets it when it reads again. One
/// pack-objects; the entry is kept (asked for three times) and the next clone is a hit.
/// (No spool: a stopped client holds its upload-pack, so its reader really stops.)
#[test]
fn slow_and_leaving_readers_hold_nobody_back() {
    let s = server("", "[spool]\nenabled = false");
    let t = tempfile::tempdir().unwrap();
    for attempt in 0..3 {
        let rel = format!("readers-{attempt}.git");
        let bare = slow_repo(&s, &rel, 16);
        let want = rev(&bare, "main");
        let p0 = pack_objects(&s);
        let name = |who: &str| format!("{who}{attempt}");
        let clone = |who: &str| spawn(clone_cmd(&s, Via::Sidechannel, &rel, t.path(), &name(who)));
        let leaving = clone("leaving");
        let Some(pid) = stop_generation(&s) else {
            assert_ok(&wait(leaving), "a generation that finished early");
            continue;
        };
        let (slow, fast) = (clone("slow"), clone("fast"));
        until(&s, "three readers", WAIT, || readers(&s, &rel) == 3);
        let slow_ssh = descendants(slow.id() as i32, "gitrpc-ssh");
        assert!(!slow_ssh.is_empty());
        for p in &slow_ssh {
            signal(*p, libc::SIGSTOP);
        }
        signal(-(leaving.id() as i32), libc::SIGKILL);
        assert!(!wait(leaving).status.success());
        until(&s, "the leaving reader gone", WAIT, || {
            readers(&s, &rel) == 2
        });
        signal(pid, libc::SIGCONT);
        assert_ok(&wait(fast), "the fast client");
        assert_good_clone(&t.path().join(name("fast")), &want);
        let e = entry(&s, &rel);
        assert_eq!(e["state"], "done", "{e}");
        let offsets = e["readers"].as_array().unwrap().clone();
        assert_eq!(offsets.len(), 1, "the slow reader still reads: {e}");
        assert!(offsets[0].as_u64().unwrap() < e["written"].as_u64().unwrap());
        for p in &slow_ssh {
            signal(*p, libc::SIGCONT);
        }
        assert_ok(&wait(slow), "the slow client");
        assert_good_clone(&t.path().join(name("slow")), &want);
        assert_eq!(pack_objects(&s) - p0, 1.0);
        assert_eq!(entry(&s, &rel)["kept"], true);
        let hits0 = hits(&s);
        let out = clone_cmd(&s, Via::Sidechannel, &rel, t.path(), &name("later"))
            .output()
            .unwrap();
        assert_ok(&out, "a later clone");
        assert_eq!(hits(&s) - hits0, 1.0);
        assert_clean(&s);
        return;
    }
    panic!("pack-objects always finished before it could be stopped");
}

/// The default `min_occurrences = 1` (Gitaly's): a pack asked for once is not kept after
/// its reader is done (the entry and its file go, a `min_occurrences` eviction); asked for
/// again it is generated again and kept, and the next request is a hit. An entry not worth
/// keeping still serves an identical request that comes while its first reader still reads
/// (its file is there anyway): that request is a hit, not a second pack-objects.
#[test]
fn min_occurrences_keeps_what_is_asked_for_again() {
    let s = server("", "[spool]\nenabled = false");
    let t = tempfile::tempdir().unwrap();
    let unwanted = "gitrpc_pack_objects_cache_evictions_total{reason=\"min_occurrences\"}";
    let want = rev(&packed_repo(&s, "once.git", 1), "main");
    let clone = |rel: &str, name: &str| {
        clone_cmd(&s, Via::Sidechannel, rel, t.path(), name)
            .output()
            .unwrap()
    };
    let (p0, e0) = (pack_objects(&s), metric(&s, unwanted));
    assert_ok(&clone("once.git", "o1"), "the first clone");
    until(&s, "the unwanted entry and its file gone", WAIT, || {
        entries_of(&s, "once.git").is_empty() && cache_files(&s).is_empty()
    });
    assert_eq!(metric(&s, unwanted) - e0, 1.0);
    assert_ok(&clone("once.git", "o2"), "the second clone");
    assert_eq!(entry(&s, "once.git")["kept"], true);
    let hits0 = hits(&s);
    assert_ok(&clone("once.git", "o3"), "the third clone");
    assert_eq!(hits(&s) - hits0, 1.0);
    assert_eq!(pack_objects(&s) - p0, 2.0);
    for name in ["o1", "o2", "o3"] {
        assert_good_clone(&t.path().join(name), &want);
    }

    for attempt in 0..3 {
        let rel = format!("stalled-{attempt}.git");
        let want = rev(&slow_repo(&s, &rel, 16), "main");
        let name = |k: usize| format!("s{attempt}-{k}");
        let first = spawn(clone_cmd(&s, Via::Sidechannel, &rel, t.path(), &name(1)));
        let Some(pid) = stop_generation(&s) else {
            assert_ok(&wait(first), "a generation that finished early");
            continue;
        };
        until(&s, "the first reader", WAIT, || readers(&s, &rel) == 1);
        let first_ssh = descendants(first.id() as i32, "gitrpc-ssh");
        assert!(!first_ssh.is_empty());
        for p in &first_ssh {
            signal(*p, libc::SIGSTOP);
        }
        signal(pid, libc::SIGCONT);
        until(&s, "the pack generated", WAIT, || {
            entry(&s, &rel)["state"] == "done"
        });
        let e = entry(&s, &rel);
        assert_eq!(e["occurrences"], 1, "{e}");
        assert_eq!(e["readers"].as_array().unwrap().len(), 1, "{e}");
        let (p1, hits0) = (pack_objects(&s), hits(&s));
        assert_ok(
            &clone(&rel, &name(2)),
            "the clone while the first still reads",
        );
        assert_eq!(hits(&s) - hits0, 1.0);
        assert_eq!(pack_objects(&s) - p1, 0.0);
        for p in &first_ssh {
            signal(*p, libc::SIGCONT);
        }
        assert_ok(&wait(first), "the first clone");
        for k in [1, 2] {
            assert_good_clone(&t.path().join(name(k)), &want);
        }
        // Asked for twice: kept.
        assert_eq!(entry(&s, &rel)["kept"], true);
        assert_clean(&s);
        return;
    }
    panic!("pack-objects always finished before it could be stopped");
}

/// `max_bytes` below two packs: while a client still reads pack A (it stopped reading),
/// caching pack B evicts B, not A — A's file stays and its client gets a complete clone.
/// Once nobody reads A, the next pack evicts it (least recently used).
#[test]
fn max_bytes_never_evicts_a_pack_being_read() {
    let s = server(
        &format!("min_occurrences = 0\nmax_bytes = {}", 22 << 20),
        "[spool]\nenabled = false",
    );
    let t = tempfile::tempdir().unwrap();
    let max_bytes = "gitrpc_pack_objects_cache_evictions_total{reason=\"max_bytes\"}";
    packed_repo(&s, "b.git", 12);
    for attempt in 0..3 {
        let rel = format!("a-{attempt}.git");
        let want = rev(&slow_repo(&s, &rel, 16), "main");
        let a = spawn(clone_cmd(
            &s,
            Via::Sidechannel,
            &rel,
            t.path(),
            &format!("a{attempt}"),
        ));
        let Some(pid) = stop_generation(&s) else {
            assert_ok(&wait(a), "a generation that finished early");
            continue;
        };
        until(&s, "A's reader", WAIT, || readers(&s, &rel) == 1);
        let a_ssh = descendants(a.id() as i32, "gitrpc-ssh");
        for p in &a_ssh {
            signal(*p, libc::SIGSTOP);
        }
        signal(pid, libc::SIGCONT);
        until(&s, "A generated", WAIT, || {
            entry(&s, &rel)["state"] == "done"
        });
        let key_a = entry(&s, &rel)["key"].as_str().unwrap().to_string();
        let evictions = metric(&s, max_bytes);

        let out = clone_cmd(
            &s,
            Via::Sidechannel,
            "b.git",
            t.path(),
            &format!("b{attempt}"),
        )
        .output()
        .unwrap();
        assert_ok(&out, "clone B");
        until(&s, "B evicted", WAIT, || metric(&s, max_bytes) > evictions);
        let a_entry = entry(&s, &rel);
        assert_eq!(a_entry["kept"], true, "{a_entry}");
        assert_eq!(a_entry["readers"].as_array().unwrap().len(), 1);
        let files = cache_files(&s);
        assert!(
            files
                .iter()
                .any(|f| f.file_name().unwrap().to_string_lossy().starts_with(&key_a)),
            "A's file is gone: {files:?}"
        );
        assert!(entries_of(&s, "b.git").iter().all(|e| e["kept"] == false));

        for p in &a_ssh {
            signal(*p, libc::SIGCONT);
        }
        assert_ok(&wait(a), "clone A");
        assert_good_clone(&t.path().join(format!("a{attempt}")), &want);
        assert_eq!(entry(&s, &rel)["kept"], true);

        // Nobody reads A now: B's next generation pushes it out.
        let out = clone_cmd(
            &s,
            Via::Sidechannel,
            "b.git",
            t.path(),
            &format!("b{attempt}-2"),
        )
        .output()
        .unwrap();
        assert_ok(&out, "clone B again");
        until(&s, "A evicted", WAIT, || entries_of(&s, &rel).is_empty());
        assert!(!cache_files(&s).iter().any(|f| f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&key_a)));
        assert_clean(&s);
        return;
    }
    panic!("pack-objects always finished before it could be stopped");
}

/// `max_age = "1s"`: the entry and its file go soon after, and the same request misses
/// again.
#[test]
fn max_age_expires_entries_and_their_files() {
    let s = server("min_occurrences = 0\nmax_age = \"1s\"", "");
    let _work = s.daemon.seed("aged.git");
    let t = tempfile::tempdir().unwrap();
    let expired = "gitrpc_pack_objects_cache_evictions_total{reason=\"max_age\"}";
    let misses = lookups(&s, "miss");
    let out = clone_cmd(&s, Via::Sidechannel, "aged.git", t.path(), "c1")
        .output()
        .unwrap();
    assert_ok(&out, "clone");
    assert_eq!(lookups(&s, "miss") - misses, 1.0);
    until(&s, "expired", WAIT, || {
        metric(&s, expired) >= 1.0 && cache_files(&s).is_empty()
    });
    assert!(entries_of(&s, "aged.git").is_empty());
    let out = clone_cmd(&s, Via::Sidechannel, "aged.git", t.path(), "c2")
        .output()
        .unwrap();
    assert_ok(&out, "clone again");
    assert_eq!(lookups(&s, "miss") - misses, 2.0);
}

/// `min_free_disk` over what the filesystem has: packs stream to their readers without a
/// file, nothing is kept, the fallback is counted.
#[test]
fn min_free_disk_streams_without_writing() {
    let s = server(
        "min_occurrences = 0\nmin_free_disk = 1000000000000000000",
        "",
    );
    let bare = packed_repo(&s, "full.git", 2);
    let t = tempfile::tempdir().unwrap();
    for name in ["c1", "c2"] {
        let out = clone_cmd(&s, Via::Sidechannel, "full.git", t.path(), name)
            .output()
            .unwrap();
        assert_ok(&out, name);
        assert_good_clone(&t.path().join(name), &rev(&bare, "main"));
    }
    let reason = "gitrpc_pack_objects_cache_fallbacks_total{reason=\"min_free_disk\"}";
    assert_eq!(metric(&s, reason), 2.0);
    assert_eq!(lookups(&s, "miss"), 2.0);
    assert!(cache_files(&s).is_empty());
    assert_eq!(metric(&s, "gitrpc_pack_objects_cache_entries"), 0.0);
    assert_clean(&s);
}

/// The cache directory on a 4 MiB tmpfs (a mount namespace of the daemon's own, made with
/// `unshare -m`; skipped where that is not allowed) and an 8 MiB pack: the write fails with
/// `ENOSPC` mid-pack, the rest streams from memory, the clone is whole, the failure is
/// logged and counted, and nothing is kept.
#[test]
fn a_full_disk_streams_the_rest_of_the_pack() {
    let mnt = tempfile::tempdir().unwrap();
    let cache_dir = mnt.path().join("cache");
    std::fs::create_dir(&cache_dir).unwrap();
    let config = format!(
        "prometheus_listen_addr = \"127.0.0.1:0\"\n[pack_objects_cache]\nenabled = true\n\
         min_occurrences = 0\ndir = \"{}\"",
        cache_dir.display()
    );
    let started = Daemon::start_wrapped(&config, |bin, config| {
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o size=4m tmpfs \"$1\" && exec \"$2\" --config \"$3\"")
            .arg("sh")
            .arg(&cache_dir)
            .arg(bin)
            .arg(config);
        c
    });
    let d = match started {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: no private tmpfs for the cache ({e})");
            return;
        }
    };
    let bare = d.storage().join("full.git");
    one_blob_repo(&bare, 8);
    let t = tempfile::tempdir().unwrap();
    let enospc = "gitrpc_pack_objects_cache_fallbacks_total{reason=\"enospc\"}";
    for (k, name) in ["c1", "c2"].into_iter().enumerate() {
        let out = d
            .client_git(
                t.path(),
                &["clone", "-q", "--bare", &d.ssh_url("full.git"), name],
            )
            .output()
            .unwrap();
        assert_ok(&out, name);
        assert_good_clone(&t.path().join(name), &rev(&bare, "main"));
        assert_eq!(d.metric(enospc), (k + 1) as f64);
        assert_eq!(
            d.metric("gitrpc_pack_objects_cache_lookups_total{result=\"miss\"}"),
            (k + 1) as f64
        );
    }
    assert_eq!(d.metric("gitrpc_pack_objects_cache_entries"), 0.0);
    crate::harness::wait_for("the partial files removed", WAIT, || {
        d.metric("gitrpc_pack_objects_cache_disk_bytes") == 0.0
    });
    assert!(d.log().contains("write failed"), "{}", d.log());
}

/// A bare repository at `bare` with one `mb` MiB incompressible blob, packed.
fn one_blob_repo(bare: &Path, mb: usize) {
    std::fs::create_dir_all(bare).unwrap();
    git_ok(bare, &["init", "--bare", "-q", "-b", "main"]);
    let work = tempfile::tempdir().unwrap();
    git_ok(work.path(), &["init", "-q", "-b", "main"]);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = Vec::with_capacity(mb << 20);
    while data.len() < mb << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(work.path().join("big.bin"), &data).unwrap();
    git_ok(work.path(), &["add", "."]);
    git_ok(work.path(), &["commit", "-qm", "big"]);
    git_ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    git_ok(bare, &["repack", "-adq"]);
}
