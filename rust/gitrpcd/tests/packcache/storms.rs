use crate::cache::*;
use crate::support::*;

/// Concurrent identical clones in each storm.
const N: usize = 6;

/// N identical clones at once, through the streaming SSHUploadPack, the sidechannel and
/// smart HTTP (workhorse's PostUploadPackWithSidechannel): one pack-objects per path (from
/// the executor's own count), one miss, every other request a hit or coalesced, every clone
/// the same commit and clean under `git fsck --strict`.
#[test]
fn identical_fetches_run_one_pack_objects() {
    let s = server("min_occurrences = 0", "");
    let http = HttpFront::start(&s);
    for how in ["stream", "sidechannel", "http"] {
        let rel = format!("storm-{how}.git");
        let bare = packed_repo(&s, &rel, 4);
        let want = rev(&bare, "main");
        let t = tempfile::tempdir().unwrap();
        let (p0, miss0) = (pack_objects(&s), lookups(&s, "miss"));
        let joined0 = lookups(&s, "hit") + lookups(&s, "coalesced");
        let cmds = (0..N)
            .map(|k| {
                let name = format!("c{k}");
                match how {
                    "stream" => clone_cmd(&s, Via::Stream, &rel, t.path(), &name),
                    "sidechannel" => clone_cmd(&s, Via::Sidechannel, &rel, t.path(), &name),
                    _ => http.clone_cmd(&rel, t.path(), &name),
                }
            })
            .collect();
        for (k, out) in run_all(cmds).iter().enumerate() {
            assert_ok(out, &format!("{how} clone {k}"));
            assert_good_clone(&t.path().join(format!("c{k}")), &want);
        }
        assert_eq!(pack_objects(&s) - p0, 1.0, "{how}: pack-objects runs");
        assert_eq!(lookups(&s, "miss") - miss0, 1.0, "{how}: misses");
        let joined = lookups(&s, "hit") + lookups(&s, "coalesced") - joined0;
        assert_eq!(joined, (N - 1) as f64, "{how}: hits and coalesced readers");
        // Generated once, served N times.
        let generated = metric(&s, "gitrpc_pack_objects_generated_bytes_total");
        let served = metric(
            &s,
            "gitrpc_pack_objects_served_bytes_total{source=\"cache\"}",
        ) + metric(
            &s,
            "gitrpc_pack_objects_served_bytes_total{source=\"generated\"}",
        );
        assert_eq!(served, generated * N as f64, "{how}");
        assert_eq!(entries_of(&s, &rel).len(), 1, "{how}");
    }
    assert_clean(&s);
}
