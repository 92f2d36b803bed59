#!/usr/bin/env python3
"""Spool benchmark: how long `git pack-objects` lives when a client reads slowly.

Builds a repository with one incompressible file (default 50 MB), starts gitrpcd with the
spool on and off, clones through gitrpc-ssh fast and at --limit-rate, and records how long
the upload-pack process group (upload-pack + pack-objects) lived and its peak RSS.
Writes bench/results/spool.json.

    bench/spool.py [--mb 50] [--rate 4000000] [--smoke]
"""
import argparse, json, os, platform, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GITRPC_BIN_DIR", os.path.join(ROOT, "target", "release"))
ENV = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
           GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com",
           GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.com")


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)


def procs():
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open(f"/proc/{p}/stat").read()
            f = stat[stat.rindex(")") + 2:].split()
            if f[0] == "Z":
                continue
            rss = int(f[21]) * 4096
            cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            out[int(p)] = (int(f[1]), int(f[2]), rss, cmd)
        except (OSError, ValueError, IndexError):
            pass
    return out


def run(tmp, storage, spool, rate):
    sock = os.path.join(tmp, f"d-{spool}-{rate}.sock")
    cfg = os.path.join(tmp, "config.toml")
    with open(cfg, "w") as f:
        f.write(f'socket_path = "{sock}"\n[spool]\nenabled = {str(spool).lower()}\n'
                f'[[storage]]\nname = "default"\npath = "{storage}"\n')
    d = subprocess.Popen([os.path.join(BIN, "gitrpcd"), "--config", cfg], stderr=subprocess.DEVNULL)
    while not os.path.exists(sock):
        time.sleep(0.02)
    dest = os.path.join(tmp, f"clone-{spool}-{rate}")
    ssh = f"{os.path.join(BIN, 'gitrpc-ssh')} --address unix:{sock}" + (f" --limit-rate {rate}" if rate else "")
    env = dict(ENV, GIT_SSH_COMMAND=ssh)
    t0 = time.monotonic()
    c = subprocess.Popen(["git", "clone", "-q", "ssh://b/default/big.git", dest], env=env)
    group, git_end, peak = None, None, 0
    while c.poll() is None:
        ps = procs()
        if group is None:
            for pid, (ppid, _, _, cmd) in ps.items():
                if ppid == d.pid and "upload-pack" in cmd:
                    group = pid
        else:
            members = [v for v in ps.values() if v[1] == group]
            peak = max(peak, sum(m[2] for m in members))
            if not members and git_end is None:
                git_end = time.monotonic() - t0
        time.sleep(0.01)
    client = time.monotonic() - t0
    assert c.returncode == 0, "clone failed"
    d.terminate()
    d.wait()
    shutil.rmtree(dest)
    return {"spool": spool, "rate_bytes_per_s": rate, "client_s": round(client, 3),
            "git_s": round(git_end if git_end is not None else client, 3),
            "git_peak_rss_mib": round(peak / 2**20, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--rate", type=int, default=4_000_000)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the harness test")
    a = ap.parse_args()
    if a.smoke:
        a.mb, a.rate = 2, 4_000_000
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
        rows = [run(tmp, storage, s, r) for s in (True, False) for r in (0, a.rate)]
        result = {"benchmark": "spool", "pack_mb": a.mb, "machine": f"{platform.node()} {os.cpu_count()} cpus",
                  "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows}
        out = os.path.join(ROOT, "bench", "results", "spool.json" if not a.smoke else "spool-smoke.json")
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
        print("| spool | client rate | client time | git (upload-pack + pack-objects) lifetime | git peak RSS |")
        print("|---|---|---|---|---|")
        for r in rows:
            rate = f"{r['rate_bytes_per_s']/1e6:.0f} MB/s" if r["rate_bytes_per_s"] else "unlimited"
            print(f"| {'on' if r['spool'] else 'off'} | {rate} | {r['client_s']:.2f} s | {r['git_s']:.2f} s | {r['git_peak_rss_mib']} MiB |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
