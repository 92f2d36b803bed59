#!/usr/bin/env python3
"""Clone throughput: `git clone` through gitrpc-ssh + gitrpcd against `git clone --no-local
file://` of the same repository (git's own upload-pack, no daemon in between). Through
gitrpcd three ways: gitrpc-ssh's default, SSHUploadPackWithSidechannel over a backchannel
connection (what GitLab's clients use); gitrpc-ssh --no-sidechannel, the streaming
SSHUploadPack; and the Go interop client (interop/go, hashicorp/yamux as gitlab-shell uses it;
informative: it is not our client), built here with Debian's Go packages.

The repository holds --mb MiB of incompressible random blobs (so the pack is about that
big), built with `git fast-import` once and cached in target/bench-repos/clone-<mb>mb/.
Both clones are bare (no checkout: the same work for both, and not what we measure), run
alternately --repeats times; the table shows min and median wall time, the throughput at
the median and each way's throughput as a fraction of plain git's. Writes
bench/results/clone.json.

    bench/clone.py [--mb 128] [--repeats 5] [--smoke]
"""
import argparse, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GITRPC_BIN_DIR", os.path.join(ROOT, "target", "release"))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
ENV = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
           GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com",
           GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.com")
ENV.pop("GIT_SSH_COMMAND", None)


SIDECHANNEL = "git clone through gitrpc-ssh (SSHUploadPackWithSidechannel)"
STREAMING = "git clone through gitrpc-ssh --no-sidechannel (SSHUploadPack)"
GO = "git clone through the Go interop client (gitlab-shell's wire; informative)"


def git(*args, cwd=None, **kw):
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, **kw).stdout


def build(repo, mb):
    """`mb` random 1 MiB files over 10 commits, repacked into one pack with a bitmap."""
    os.makedirs(repo)
    git("init", "-q", "--bare", "-b", "main", repo)
    fi = subprocess.Popen(["git", "--git-dir", repo, "fast-import", "--quiet"], stdin=subprocess.PIPE, env=ENV)
    commits = min(10, mb)
    for c in range(commits):
        msg = f"add files, part {c + 1}\n".encode()
        fi.stdin.write(b"commit refs/heads/main\ncommitter b <b@example.com> %d +0000\ndata %d\n%s"
                       % (1_600_000_000 + c, len(msg), msg))
        for i in range(c, mb, commits):
            data = os.urandom(2**20)
            fi.stdin.write(b"M 100644 inline data/f%04d.bin\ndata %d\n%s\n" % (i, len(data), data))
        fi.stdin.write(b"\n")
    fi.stdin.close()
    assert fi.wait() == 0, "fast-import failed"
    git("--git-dir", repo, "repack", "-a", "-d", "-q", "-b")


def pack_bytes(repo):
    d = os.path.join(repo, "objects", "pack")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".pack"))


def go_client():
    """Build the Go interop client (GOPATH mode, offline; script/setup installs the packages)."""
    out = os.path.join(TARGET, "go", "gitaly-sidechannel-client")
    src = os.path.join(ROOT, "interop", "go", "gitaly-sidechannel-client")
    tmp = f"{out}.{os.getpid()}"
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="", GOPROXY="off",
               GOCACHE=os.path.join(TARGET, "go", "cache"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["go", "build", "-o", tmp, "."], cwd=src, env=env, check=True)
    os.rename(tmp, out)
    return out


def timed_clone(url, dest, env):
    t = time.monotonic()
    subprocess.run(["git", "clone", "-q", "--bare", *url, dest], env=env, check=True)
    took = time.monotonic() - t
    head = git("--git-dir", dest, "rev-parse", "HEAD").strip()
    shutil.rmtree(dest)
    return took, head


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the harness test")
    a = ap.parse_args()
    if a.smoke:
        a.mb, a.repeats = 2, 1
    cache = os.path.join(TARGET, "bench-repos", f"clone-{a.mb}mb")
    storage = os.path.join(cache, "repos")
    repo = os.path.join(storage, "clone.git")
    if not os.path.exists(os.path.join(cache, "ready")):
        shutil.rmtree(cache, ignore_errors=True)
        print(f"building {repo} ({a.mb} MiB) ...", file=sys.stderr)
        build(repo, a.mb)
        open(os.path.join(cache, "ready"), "w").close()
    want = git("--git-dir", repo, "rev-parse", "HEAD").strip()
    size = pack_bytes(repo)

    tmp = tempfile.mkdtemp(prefix="gitrpc-bench-")
    d = None
    try:
        sock = os.path.join(tmp, "d.sock")
        cfg = os.path.join(tmp, "config.toml")
        with open(cfg, "w") as f:
            f.write(f'socket_path = "{sock}"\n[[storage]]\nname = "default"\npath = "{storage}"\n')
        d = subprocess.Popen([os.path.join(BIN, "gitrpcd"), "--config", cfg], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            assert time.monotonic() < deadline and d.poll() is None, "gitrpcd did not start"
            time.sleep(0.02)
        gitrpc_ssh = f"{os.path.join(BIN, 'gitrpc-ssh')} --address unix:{sock}"
        url = ["ssh://b/default/clone.git"]
        ways = {
            "git clone --no-local file://": (["--no-local", f"file://{repo}"], ENV),
            SIDECHANNEL: (url, dict(ENV, GIT_SSH_COMMAND=gitrpc_ssh)),
            STREAMING: (url, dict(ENV, GIT_SSH_COMMAND=f"{gitrpc_ssh} --no-sidechannel")),
            GO: (url, dict(ENV, GIT_SSH_COMMAND=f"{go_client()} ssh", GITALY_ADDRESS=f"unix:{sock}")),
        }
        times = {w: [] for w in ways}
        for i in range(a.repeats):
            for w, (url, env) in ways.items():
                took, head = timed_clone(url, os.path.join(tmp, "clone"), env)
                assert head == want, f"{w}: cloned {head}, want {want}"
                times[w].append(took)
                if not a.smoke:
                    print(f"clone {i + 1}/{a.repeats} {w}: {took:.2f} s", file=sys.stderr)
    finally:
        if d is not None:
            d.terminate()
            d.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    plain = next(iter(ways))
    rows = []
    ratios = {}
    for w in ways:
        t = times[w]
        ratios[w] = (statistics.median(times[plain]) / statistics.median(t), min(times[plain]) / min(t))
        rows.append({"way": w, "min_s": round(min(t), 3), "median_s": round(statistics.median(t), 3),
                     "mb_per_s_at_median": round(size / 2**20 / statistics.median(t), 1),
                     "over_git_throughput_median": round(ratios[w][0], 3),
                     "over_git_throughput_min": round(ratios[w][1], 3), "runs_s": [round(x, 3) for x in t]})
    goals = {SIDECHANNEL: 0.95, STREAMING: 0.9}
    met = {w: ratios[w][0] >= g for w, g in goals.items()}
    result = {"benchmark": "clone", "pack_bytes": size, "repeats": a.repeats, "bare": True,
              "machine": f"{platform.node()} {os.cpu_count()} cpus",
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows,
              "goals": [{"way": w, "goal": g, "met": met[w]} for w, g in goals.items()]}
    out = os.path.join(ROOT, "bench", "results", "clone-smoke.json" if a.smoke else "clone.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"| clone ({size / 2**20:.0f} MiB pack, bare, {a.repeats} runs each) | min | median | throughput (median) | vs plain git (median / min) |")
    print("|---|---|---|---|---|")
    for r in rows:
        rel = "1.00x" if r["way"] == plain else f"{ratios[r['way']][0]:.2f}x / {ratios[r['way']][1]:.2f}x"
        print(f"| {r['way']} | {r['min_s']:.2f} s | {r['median_s']:.2f} s | {r['mb_per_s_at_median']:.0f} MiB/s | {rel} |")
    print()
    for w, g in goals.items():
        print(f"- {w}: {ratios[w][0]:.2f}x plain git's throughput at the median "
              f"(goal ≥ {g}x): {'met' if met[w] else '**missed**'}")


if __name__ == "__main__":
    sys.exit(main())
