#!/usr/bin/env python3
"""Spool benchmark: how long `git pack-objects` lives, and how much memory the server's git
processes hold, when clients read slowly.

Builds a (packed) repository with one incompressible file (default 50 MB), starts gitrpcd with the
spool on and off, and clones through gitrpc-ssh: one client at full speed, then --clients
clients at once, each reading at --rate bytes/s (gitrpc-ssh --limit-rate). While they run it
samples /proc every 20 ms: the upload-pack process groups gitrpcd started (upload-pack +
pack-objects), their lifetimes, pack-objects' lifetimes, the peak of the summed RSS and PSS
of all of them at once, and gitrpcd's own peak RSS (the spool's memory). Writes
bench/results/spool.json.

    bench/spool.py [--mb 50] [--rate 2000000] [--clients 10] [--smoke]
"""
import argparse, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GITRPC_BIN_DIR", os.path.join(ROOT, "target", "release"))
ENV = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
           GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com",
           GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.com")
ENV.pop("GIT_SSH_COMMAND", None)
PAGE = os.sysconf("SC_PAGE_SIZE")


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)


def procs():
    """pid → (ppid, pgid, rss bytes, cmdline) of every live process."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open(f"/proc/{p}/stat").read()
            f = stat[stat.rindex(")") + 2:].split()
            if f[0] == "Z":
                continue
            rss = int(f[21]) * PAGE
            cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            out[int(p)] = (int(f[1]), int(f[2]), rss, cmd)
        except (OSError, ValueError, IndexError):
            pass
    return out


def pss(pid):
    """Proportional set size in bytes (shared pages split between their users), or 0."""
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def spread(values):
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)} if values else None


def run(tmp, storage, spool, clients, rate):
    tag = f"{spool}-{clients}-{rate}"
    sock = os.path.join(tmp, f"d-{tag}.sock")
    cfg = os.path.join(tmp, "config.toml")
    with open(cfg, "w") as f:
        f.write(f'socket_path = "{sock}"\n[spool]\nenabled = {str(spool).lower()}\n'
                f'[[storage]]\nname = "default"\npath = "{storage}"\n')
    d = subprocess.Popen([os.path.join(BIN, "gitrpcd"), "--config", cfg], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            assert time.monotonic() < deadline and d.poll() is None, "gitrpcd did not start"
            time.sleep(0.02)
        ssh = f"{os.path.join(BIN, 'gitrpc-ssh')} --address unix:{sock}" + (f" --limit-rate {rate}" if rate else "")
        env = dict(ENV, GIT_SSH_COMMAND=ssh)
        t0 = time.monotonic()
        dests = [os.path.join(tmp, f"clone-{tag}-{i}") for i in range(clients)]
        cs = [subprocess.Popen(["git", "clone", "-q", "ssh://b/default/big.git", dest], env=env) for dest in dests]
        client_end = [None] * clients
        groups = {}  # upload-pack pgid → [first seen, last seen]
        packers = {}  # pack-objects pid → [first seen, last seen]
        peak_rss = peak_pss = peak_daemon = 0
        while True:
            now = time.monotonic() - t0
            for i, c in enumerate(cs):
                if client_end[i] is None and c.poll() is not None:
                    client_end[i] = now
            ps = procs()
            for pid, (ppid, _, _, cmd) in ps.items():
                if ppid == d.pid and "upload-pack" in cmd and pid not in groups:
                    groups[pid] = [now, now]
            members = [(pid, v) for pid, v in ps.items() if v[1] in groups]
            for pid, (_, pgid, _, cmd) in members:
                groups[pgid][1] = now
                if "pack-objects" in cmd:
                    packers.setdefault(pid, [now, now])[1] = now
            if members:
                peak_rss = max(peak_rss, sum(v[2] for _, v in members))
                peak_pss = max(peak_pss, sum(pss(pid) for pid, _ in members))
            if d.pid in ps:
                peak_daemon = max(peak_daemon, ps[d.pid][2])
            if all(e is not None for e in client_end) and not members:
                break
            assert now < 600, "clones did not finish"
            time.sleep(0.02)
        assert all(c.returncode == 0 for c in cs), "clone failed"
        for dest in dests:
            shutil.rmtree(dest)
    finally:
        d.terminate()
        d.wait()
    return {"spool": spool, "clients": clients, "rate_bytes_per_s": rate,
            "client_s": spread(client_end),
            "upload_pack_group_s": spread([b - a for a, b in groups.values()]),
            "pack_objects_s": spread([b - a for a, b in packers.values()]),
            "git_groups_seen": len(groups),
            "git_peak_rss_mib": round(peak_rss / 2**20, 1),
            "git_peak_pss_mib": round(peak_pss / 2**20, 1),
            "gitrpcd_peak_rss_mib": round(peak_daemon / 2**20, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--rate", type=int, default=2_000_000)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the harness test")
    a = ap.parse_args()
    if a.smoke:
        a.mb, a.rate, a.clients = 2, 4_000_000, 2
    tmp = tempfile.mkdtemp(prefix="gitrpc-bench-")
    try:
        storage = os.path.join(tmp, "repos")
        repo = os.path.join(storage, "big.git")
        os.makedirs(repo)
        git("init", "-q", "--bare", "-b", "main", repo)
        work = os.path.join(tmp, "work")
        git("init", "-q", "-b", "main", work)
        with open(os.path.join(work, "big.bin"), "wb") as f:
            f.write(os.urandom(a.mb * 2**20))
        git("add", ".", cwd=work)
        git("commit", "-qm", "big", cwd=work)
        git("push", "-q", repo, "main", cwd=work)
        # A pushed handful of objects lands loose; servers' repositories are packed (then
        # pack-objects reuses the packed data instead of recompressing it).
        git("--git-dir", repo, "repack", "-a", "-d", "-q")
        shutil.rmtree(work)
        rows = []
        for s in (True, False):
            for clients, rate in ((1, 0), (a.clients, a.rate)):
                if not a.smoke:
                    print(f"spool {'on' if s else 'off'}: {clients} client(s) at {rate or 'full'} B/s", file=sys.stderr)
                rows.append(run(tmp, storage, s, clients, rate))
        result = {"benchmark": "spool", "pack_mb": a.mb, "machine": f"{platform.node()} {os.cpu_count()} cpus",
                  "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "note": "lifetimes sampled every 20 ms; *_s are {median, max} over clients/processes",
                  "rows": rows}
        out = os.path.join(ROOT, "bench", "results", "spool.json" if not a.smoke else "spool-smoke.json")
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
        ms = lambda v: f"{v['median']:.1f} / {v['max']:.1f} s" if v else "—"
        print("| spool | clients × rate | client time (median / max) | upload-pack + pack-objects lifetime (median / max) "
              "| pack-objects lifetime (median / max) | server git peak RSS (PSS), all at once | gitrpcd peak RSS |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            rate = f"{r['rate_bytes_per_s']/1e6:g} MB/s" if r["rate_bytes_per_s"] else "unlimited"
            print(f"| {'on' if r['spool'] else 'off'} | {r['clients']} × {rate} | {ms(r['client_s'])} "
                  f"| {ms(r['upload_pack_group_s'])} | {ms(r['pack_objects_s'])} "
                  f"| {r['git_peak_rss_mib']:.0f} MiB ({r['git_peak_pss_mib']:.0f} MiB) | {r['gitrpcd_peak_rss_mib']:.0f} MiB |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
