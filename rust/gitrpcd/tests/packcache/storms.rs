use crate::cache::*;
use crate::support::*;

/// Concurrent identical clones in each storm.
const N: usize = 6;

/// N identical protocol-v2 clones at once, through the streaming SSHUploadPack, the
/// sidechannel and smart HTTP (workhorse's PostUploadPackWithSidechannel): one pack-objects
/// per path (from the executor's own count), one miss, every clone the same commit and clean
/// under `git fsck --strict`.
///
/// With the fast path (`direct`, the default) only the first request's upload-pack relays
/// the pack (one lookup through the hook); the others wait for it to learn which entry
/// holds their pack and get it from the server (`hit_direct`). Without it, every
/// upload-pack relays the pack, the others' hooks hitting or joining the one generation.
#[test]
fn identical_fetches_run_one_pack_objects() {
    for direct in [true, false] {
        storm(direct);
    }
}

fn storm(direct: bool) {
    let s = server(&format!("min_occurrences = 0\ndirect = {direct}"), "");
    let http = HttpFront::start(&s);
    for how in ["stream", "sidechannel", "http"] {
        let what = format!("{how} (direct = {direct})");
        let rel = format!("storm-{how}.git");
        let bare = packed_repo(&s, &rel, 4);
        let want = rev(&bare, "main");
        let t = tempfile::tempdir().unwrap();
        let (p0, miss0, hook0) = (pack_objects(&s), lookups(&s, "miss"), hook_lookups(&s));
        let joined0 = hits(&s) + lookups(&s, "coalesced");
        let direct0 = lookups(&s, "hit_direct");
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
            assert_ok(out, &format!("{what} clone {k}"));
            assert_good_clone(&t.path().join(format!("c{k}")), &want);
        }
        assert_eq!(pack_objects(&s) - p0, 1.0, "{what}: pack-objects runs");
        assert_eq!(lookups(&s, "miss") - miss0, 1.0, "{what}: misses");
        let joined = hits(&s) + lookups(&s, "coalesced") - joined0;
        assert_eq!(joined, (N - 1) as f64, "{what}: hits and coalesced readers");
        let (relayed, served_direct) = if direct { (1, N - 1) } else { (N, 0) };
        assert_eq!(
            hook_lookups(&s) - hook0,
            relayed as f64,
            "{what}: upload-packs that relayed the pack"
        );
        assert_eq!(
            lookups(&s, "hit_direct") - direct0,
            served_direct as f64,
            "{what}: served by the fast path"
        );
        // Generated once, served N times.
        let generated = metric(&s, "gitrpc_pack_objects_generated_bytes_total");
        let served = ["cache", "generated", "direct"]
            .iter()
            .map(|src| {
                metric(
                    &s,
                    &format!("gitrpc_pack_objects_served_bytes_total{{source=\"{src}\"}}"),
                )
            })
            .sum::<f64>();
        assert_eq!(served, generated * N as f64, "{what}");
        assert_eq!(entries_of(&s, &rel).len(), 1, "{what}");
    }
    assert_clean(&s);
}
