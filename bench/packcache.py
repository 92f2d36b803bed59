#!/usr/bin/env python3
"""Pack-objects cache: --clients identical fetches of the clone benchmark's repository
(--mb MiB of incompressible blobs, one pack with a bitmap; built by bench/clone.py's code and
cached in target/bench-repos/) at once, with `[pack_objects_cache]` off and on.

Two kinds of client, each through gitrpc-ssh (SSHUploadPackWithSidechannel):
- real `git clone --bare` (what CI jobs do; the clients' own index-pack then competes with
  the server for the same 2 cores);
- a discarding fetch: gitrpc-ssh fed a protocol v2 `fetch` of HEAD by this script, its output
  counted and thrown away (the server's side of a storm without the clients' work).

For each: one lone client first, then --clients at once, each on a fresh gitrpcd (a cold
cache). Measured: git CPU seconds of the run (every git the daemon started, from the
daemon's own rusage counters `gitrpc_git_command_cpu_seconds_total`; upload-pack's include
the children it waited for: without the cache its pack-objects, with it the hook's sh and
cat), pack-objects runs and their CPU (with the cache they are the daemon's own children, so
counted apart; without it they run inside upload-pack and are estimated as runs × one
run's CPU), gitrpcd's own CPU (it serves cached packs to the hooks), the slowest client's
wall time, and peak memory (gitrpcd's VmHWM plus the peak of the summed RSS of its git
processes, sampled every 20 ms). Writes bench/results/packcache.json.

    bench/packcache.py [--mb 128] [--clients 20] [--smoke]

With PACKCACHE_NO_DIRECT=1 the cache runs without its fast path (`direct = false`: every
client's upload-pack relays the pack), for comparison; results go to packcache-no-direct.json.
"""
import argparse, json, os, platform, re, shutil, subprocess, sys, tempfile, threading, time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clone import ENV, ROOT, TARGET, build, git, pack_bytes  # noqa: E402

BIN = os.environ.get("GITRPC_BIN_DIR", os.path.join(ROOT, "target", "release"))
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def pkt(s):
    b = s.encode() if isinstance(s, str) else s
    return b"%04x" % (len(b) + 4) + b


def fetch_request(oid):
    """A protocol v2 fetch of `oid`, then the end of input (upload-pack exits after it)."""
    body = pkt("command=fetch\n") + pkt("object-format=sha1\n") + b"0001"
    for line in ("thin-pack\n", "ofs-delta\n", "no-progress\n", f"want {oid}\n", "done\n"):
        body += pkt(line)
    return body + b"0000"


class Daemon:
    def __init__(self, tmp, storage, cache):
        self.sock = os.path.join(tmp, f"d-{cache}.sock")
        cfg = os.path.join(tmp, f"config-{cache}.toml")
        self.log = os.path.join(tmp, f"gitrpcd-{cache}.log")
        with open(cfg, "w") as f:
            f.write(f'socket_path = "{self.sock}"\nprometheus_listen_addr = "127.0.0.1:0"\n'
                    f'[pack_objects_cache]\nenabled = {str(cache).lower()}\n'
                    f'direct = {str(not os.environ.get("PACKCACHE_NO_DIRECT")).lower()}\n'
                    f'[[storage]]\nname = "default"\npath = "{storage}"\n')
        self.p = subprocess.Popen([os.path.join(BIN, "gitrpcd"), "--config", cfg],
                                  stderr=open(self.log, "w"), env=dict(os.environ, NO_COLOR="1"))
        deadline = time.monotonic() + 30
        self.url = None
        while self.url is None:
            assert time.monotonic() < deadline and self.p.poll() is None, "gitrpcd did not start"
            m = re.search(r"(http://[0-9.:]+)/metrics", open(self.log).read())
            if m and os.path.exists(self.sock):
                self.url = m.group(1)
            time.sleep(0.02)

    def metrics(self):
        return urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()

    def series(self, prefix, where=""):
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(prefix) and where in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def cpu(self):
        """gitrpcd's own user + system seconds."""
        f = open(f"/proc/{self.p.pid}/stat").read()
        f = f[f.rindex(")") + 2:].split()
        return (int(f[11]) + int(f[12])) / TICK

    def hwm(self):
        for line in open(f"/proc/{self.p.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def settle(self):
        """Wait until every git is reaped (their rusage is counted when they are)."""
        deadline = time.monotonic() + 60
        while self.series("gitrpc_git_processes_running") > 0:
            assert time.monotonic() < deadline, "git still running"
            time.sleep(0.05)

    def stop(self):
        self.p.terminate()
        self.p.wait()


def descendants_rss(root):
    kids, rss = {}, {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open(f"/proc/{p}/stat").read()
            f = stat[stat.rindex(")") + 2:].split()
            kids.setdefault(int(f[1]), []).append(int(p))
            rss[int(p)] = int(f[21]) * PAGE
        except (OSError, ValueError, IndexError):
            pass
    total, todo = 0, list(kids.get(root, []))
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(kids.get(p, []))
    return total


def storm(d, n, kind, url, sock, oid, tmp, size):
    """`n` clients at once; returns (wall times, peak RSS of the daemon's git processes)."""
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], descendants_rss(d.p.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    ssh = [os.path.join(BIN, "gitrpc-ssh"), "--address", f"unix:{sock}"]
    procs, dests = [], []
    req = fetch_request(oid)
    t0 = time.monotonic()
    for i in range(n):
        if kind == "clone":
            dest = os.path.join(tmp, f"clone-{i}")
            dests.append(dest)
            env = dict(ENV, GIT_SSH_COMMAND=" ".join(ssh))
            procs.append(subprocess.Popen(["git", "-c", "ssh.variant=ssh", "-c", "protocol.version=2",
                                           "clone", "-q", "--bare", url, dest], env=env))
        else:
            p = subprocess.Popen(ssh + ["b", "git-upload-pack '/default/clone.git'"],
                                 env=dict(ENV, GIT_PROTOCOL="version=2"),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            procs.append(p)
    times = [None] * n

    def finish(i, p):
        got = 0
        if kind == "fetch":
            p.stdin.write(req)
            p.stdin.close()
            while True:
                b = p.stdout.read(1 << 20)
                if not b:
                    break
                got += len(b)
        assert p.wait() == 0, f"{kind} failed"
        times[i] = (time.monotonic() - t0, got)

    waiters = [threading.Thread(target=finish, args=(i, p)) for i, p in enumerate(procs)]
    for t in waiters:
        t.start()
    for t in waiters:
        t.join()
    assert all(t is not None for t in times), "a client failed"
    # A discarding fetch gets the pack in side-band packets (their headers vary with how
    # upload-pack's reads fall): check it got about the pack.
    assert kind == "clone" or all(g > 0.9 * size for _, g in times), f"short fetches {times}"
    times = [t for t, _ in times]
    stop.set()
    sampler.join()
    for dest in dests:
        assert git("--git-dir", dest, "rev-parse", "HEAD").strip().decode() == oid
        shutil.rmtree(dest)
    return times, peak[0]


def run(tmp, storage, oid, size, cache, kind, n):
    d = Daemon(tmp, storage, cache)
    try:
        cpu0 = d.series("gitrpc_git_command_cpu_seconds_total")
        po0 = d.series("gitrpc_git_command_cpu_seconds_total", 'subcommand="pack-objects"')
        runs0 = d.series("gitrpc_git_commands_started_total", 'subcommand="pack-objects"')
        own0 = d.cpu()
        times, git_peak = storm(d, n, kind, "ssh://b/default/clone.git", d.sock, oid, tmp, size)
        d.settle()
        row = {
            "cache": cache, "kind": kind, "clients": n,
            "git_cpu_s": round(d.series("gitrpc_git_command_cpu_seconds_total") - cpu0, 3),
            "pack_objects_runs": int(d.series("gitrpc_git_commands_started_total", 'subcommand="pack-objects"') - runs0) if cache else n,
            "pack_objects_cpu_s": round(d.series("gitrpc_git_command_cpu_seconds_total", 'subcommand="pack-objects"') - po0, 3) if cache else None,
            "gitrpcd_cpu_s": round(d.cpu() - own0, 3),
            "slowest_s": round(max(times), 3),
            "median_s": round(sorted(times)[len(times) // 2], 3),
            "gitrpcd_peak_rss": d.hwm(),
            "git_peak_rss": git_peak,
        }
        if cache:
            row["lookups"] = {r: int(d.series("gitrpc_pack_objects_cache_lookups_total", f'result="{r}"'))
                              for r in ("miss", "hit", "coalesced", "hit_direct")}
        return row
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=128)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the harness test")
    a = ap.parse_args()
    if a.smoke:
        a.mb, a.clients = 2, 3
    cache_dir = os.path.join(TARGET, "bench-repos", f"clone-{a.mb}mb")
    storage = os.path.join(cache_dir, "repos")
    repo = os.path.join(storage, "clone.git")
    if not os.path.exists(os.path.join(cache_dir, "ready")):
        shutil.rmtree(cache_dir, ignore_errors=True)
        print(f"building {repo} ({a.mb} MiB) ...", file=sys.stderr)
        build(repo, a.mb)
        open(os.path.join(cache_dir, "ready"), "w").close()
    oid = git("--git-dir", repo, "rev-parse", "HEAD").strip().decode()
    size = pack_bytes(repo)
    tmp = tempfile.mkdtemp(prefix="gitrpc-bench-packcache-")
    load_before = open("/proc/loadavg").read().split()[:3]
    rows = []
    try:
        for kind in ("clone", "fetch"):
            for cache in (False, True):
                for n in (1, a.clients):
                    row = run(tmp, storage, oid, size, cache, kind, n)
                    rows.append(row)
                    if not a.smoke:
                        print(f"{kind} x{n} cache={'on' if cache else 'off'}: {row}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def find(kind, cache, n):
        return next(r for r in rows if (r["kind"], r["cache"], r["clients"]) == (kind, cache, n))

    # Without the cache pack-objects runs inside upload-pack: estimate its CPU from one run
    # with the cache (the same pack-objects, started by the daemon instead).
    for r in rows:
        if not r["cache"]:
            one = find(r["kind"], True, 1)["pack_objects_cpu_s"]
            r["pack_objects_cpu_s_estimated"] = round(one * r["pack_objects_runs"], 3)
    goals = []
    for kind in ("clone", "fetch"):
        lone = find(kind, False, 1)
        on = find(kind, True, a.clients)
        cpu_ratio = on["git_cpu_s"] / max(lone["git_cpu_s"], 1e-9)
        po_ratio = on["pack_objects_cpu_s"] / max(find(kind, True, 1)["pack_objects_cpu_s"], 1e-9)
        wall_ratio = on["slowest_s"] / max(lone["slowest_s"], 1e-9)
        goals.append({"kind": kind, "git_cpu_over_one_clone": round(cpu_ratio, 2),
                      "pack_objects_cpu_over_one_run": round(po_ratio, 2),
                      "pack_objects_runs": on["pack_objects_runs"],
                      "slowest_over_lone": round(wall_ratio, 2)})
    result = {"benchmark": "packcache", "pack_bytes": size, "clients": a.clients,
              "machine": f"{platform.node()} {os.cpu_count()} cpus",
              "loadavg_before": load_before, "loadavg_after": open("/proc/loadavg").read().split()[:3],
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows, "goals": goals}
    name = "packcache-smoke.json" if a.smoke else "packcache.json"
    if os.environ.get("PACKCACHE_NO_DIRECT"):
        name = name.replace(".json", "-no-direct.json")
    out = os.path.join(ROOT, "bench", "results", name)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)

    mib = lambda b: f"{b / 2**20:.0f} MiB"
    print(f"| {size / 2**20:.0f} MiB pack | cache | clients | git CPU | pack-objects runs / CPU | gitrpcd CPU | slowest client (median) | gitrpcd peak RSS + git peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"clone": "git clone --bare", "fetch": "discarding fetch"}
    for r in rows:
        po = (f"{r['pack_objects_runs']} / {r['pack_objects_cpu_s']:.2f} s" if r["cache"]
              else f"{r['pack_objects_runs']} / ≈{r['pack_objects_cpu_s_estimated']:.2f} s")
        print(f"| {names[r['kind']]} | {'on' if r['cache'] else 'off'} | {r['clients']} | {r['git_cpu_s']:.2f} s | {po} "
              f"| {r['gitrpcd_cpu_s']:.2f} s | {r['slowest_s']:.2f} s ({r['median_s']:.2f} s) "
              f"| {mib(r['gitrpcd_peak_rss'])} + {mib(r['git_peak_rss'])} |")
    print()
    print(f"- load average (1/5/15 min) {' / '.join(load_before)} before the run, "
          f"{' / '.join(result['loadavg_after'])} after it: wall times are only as good as the machine was quiet")
    for g in goals:
        k = names[g["kind"]]
        print(f"- {k}, {a.clients} at once with the cache: {g['pack_objects_runs']} pack-objects, "
              f"{g['pack_objects_cpu_over_one_run']:.2f}x one run's pack-objects CPU (goal ≤ 1.5x): "
              f"{'met' if g['pack_objects_cpu_over_one_run'] <= 1.5 else '**missed**'}; all git CPU "
              f"{g['git_cpu_over_one_clone']:.2f}x one lone clone's (issue's goal ≤ 1.5x): "
              f"{'met' if g['git_cpu_over_one_clone'] <= 1.5 else '**missed**'}; slowest client "
              f"{g['slowest_over_lone']:.2f}x a lone one (goal ≤ 1.5x): "
              f"{'met' if g['slowest_over_lone'] <= 1.5 else '**missed**'}")


if __name__ == "__main__":
    sys.exit(main())
