#!/usr/bin/env python3
"""Clone throughput through the front doors, each against the plain-git door of the same
server:

- SSH: OpenSSH's sshd (Debian's, started here as root in a private mount namespace, as the
  tests do) running gitrpc-shell for one key (access check: /bin/true) relaying to gitrpcd,
  vs the same sshd running git's own `git-upload-pack` for another key. Both sessions pay the
  same SSH crypto and login shell (root's bash, which sources ~/.bashrc).
- HTTP: one puma (`-t 4:4 -e production`) serving GitRPC::SmartHTTP at /a (an in-process
  gitrpc server) and, at /b, `git http-backend` (the 2.47.3 that matches the server's git)
  through a small CGI-to-Rack adapter (bench/http_backend.ru: spawns it per request, pipes
  the body in and the answer out in 64 KiB pieces, as SmartHTTP does).

Same repository as bench/clone.py (--mb MiB of incompressible blobs, cached under
target/bench-repos/), bare clones, the ways alternated --repeats times; the table shows min
and median wall time and throughput relative to the plain door (goal ≥ 0.9x each). Writes
bench/results/frontdoors.json. Needs root (sshd) and puma.

    bench/frontdoors.py [--mb 128] [--repeats 5] [--smoke]
"""
import argparse, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clone import BIN, ENV, ROOT, TARGET, build, git, pack_bytes, timed_clone  # noqa: E402

SSH_OURS = "git clone over ssh: sshd + gitrpc-shell + gitrpcd"
SSH_PLAIN = "git clone over ssh: sshd + git-upload-pack"
HTTP_OURS = "git clone over http: puma + GitRPC::SmartHTTP (in-process server)"
HTTP_PLAIN = "git clone over http: puma + git http-backend (CGI adapter)"
HTTP_BACKEND = "/usr/local/libexec/git-core/git-http-backend"


def wait_for(what, ok, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        v = ok()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"frontdoors: {what}")
        time.sleep(0.02)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return open(path + ".pub").read().strip()


def start_sshd(tmp, authorized_keys):
    """sshd on a free loopback port in a private mount namespace; (process, port)."""
    host = os.path.join(tmp, "host_key")
    keygen(host)
    with open(os.path.join(tmp, "authorized_keys"), "w") as f:
        f.write(authorized_keys)
    port = free_port()
    cfg = os.path.join(tmp, "sshd_config")
    with open(cfg, "w") as f:
        f.write(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {tmp}/sshd.pid\n"
                f"AuthorizedKeysFile {tmp}/authorized_keys\nUsePAM no\nStrictModes no\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PermitRootLogin prohibit-password\nPrintMotd no\nAcceptEnv GIT_PROTOCOL\n"
                "MaxStartups 200\n")
    log = open(os.path.join(tmp, "sshd.log"), "w")
    script = ("mount -t tmpfs -o size=4m,mode=0755 tmpfs /run && mkdir -m 0755 /run/sshd && "
              f"exec /usr/sbin/sshd -D -e -f {cfg}")
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         stdout=subprocess.DEVNULL, stderr=log)
    wait_for("sshd did not start", lambda: p.poll() is not None or "Server listening" in open(log.name).read())
    if p.poll() is not None:
        raise SystemExit("frontdoors: sshd exited: " + open(log.name).read())
    return p, port


def ssh_command(key, port):
    return (f"ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p {port}")


def start_puma(tmp, storage, repo_root):
    ru = os.path.join(tmp, "config.ru")
    with open(ru, "w") as f:
        f.write(f"""$LOAD_PATH.unshift {os.path.join(ROOT, 'lib')!r}
require "gitrpc"
require_relative {os.path.join(ROOT, 'bench', 'http_backend.rb')!r}
client = GitRPC::Client.new(storages: {{ "default" => {storage!r} }}, timeout: nil)
map("/a") {{ run GitRPC::SmartHTTP.new(client: client) }}
map("/b") {{ run HttpBackend.new({repo_root!r}, {HTTP_BACKEND!r}) }}
""")
    log = os.path.join(tmp, "puma.log")
    p = subprocess.Popen(["puma", "-b", "tcp://127.0.0.1:0", "-t", "4:4", "-e", "production", ru],
                         stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=tmp)

    def port():
        text = open(log).read()
        if p.poll() is not None:
            raise SystemExit("frontdoors: puma exited: " + text)
        marker = "Listening on http://127.0.0.1:"
        return text.split(marker, 1)[1].split()[0] if marker in text else None
    return p, wait_for("puma did not start", port, timeout=120)


def measure(ways, repeats, want, tmp, smoke):
    times = {w: [] for w in ways}
    for i in range(repeats):
        for w, (url, env) in ways.items():
            took, head = timed_clone([url], os.path.join(tmp, "clone"), env)
            assert head == want, f"{w}: cloned {head}, want {want}"
            times[w].append(took)
            if not smoke:
                print(f"clone {i + 1}/{repeats} {w}: {took:.2f} s", file=sys.stderr)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the harness test")
    a = ap.parse_args()
    if a.smoke:
        a.mb, a.repeats = 2, 1
    if os.geteuid() != 0:
        raise SystemExit("frontdoors: the SSH half starts a private sshd and needs root")
    cache = os.path.join(TARGET, "bench-repos", f"clone-{a.mb}mb")
    storage = os.path.join(cache, "repos")
    repo = os.path.join(storage, "clone.git")
    if not os.path.exists(os.path.join(cache, "ready")):
        shutil.rmtree(cache, ignore_errors=True)
        print(f"building {repo} ({a.mb} MiB) ...", file=sys.stderr)
        build(repo, a.mb)
        open(os.path.join(cache, "ready"), "w").close()
    want = git("--git-dir", repo, "rev-parse", "HEAD").strip()  # bytes, as timed_clone's
    size = pack_bytes(repo)

    tmp = tempfile.mkdtemp(prefix="gitrpc-bench-")
    procs = []
    try:
        sock = os.path.join(tmp, "d.sock")
        cfg = os.path.join(tmp, "config.toml")
        with open(cfg, "w") as f:
            f.write(f'socket_path = "{sock}"\n[[storage]]\nname = "default"\npath = "{storage}"\n')
        d = subprocess.Popen([os.path.join(BIN, "gitrpcd"), "--config", cfg], stderr=subprocess.DEVNULL)
        procs.append(d)
        wait_for("gitrpcd did not start", lambda: os.path.exists(sock) and d.poll() is None)
        shell_cfg = os.path.join(tmp, "shell.toml")
        with open(shell_cfg, "w") as f:
            f.write(f'address = "unix:{sock}"\ndefault_storage = "default"\naccess_command = "/bin/true"\n')
        ours, plain = os.path.join(tmp, "ours"), os.path.join(tmp, "plain")
        keys = (f'command="{os.path.abspath(os.path.join(BIN, "gitrpc-shell"))} --config {shell_cfg} key-1",'
                f"no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty {keygen(ours)}\n"
                f"{keygen(plain)}\n")
        sshd, port = start_sshd(tmp, keys)
        procs.append(sshd)
        puma, http_port = start_puma(tmp, storage, storage)
        procs.append(puma)
        ssh_ways = {
            SSH_PLAIN: (f"ssh://root@127.0.0.1{repo}", dict(ENV, GIT_SSH_COMMAND=ssh_command(plain, port))),
            SSH_OURS: ("ssh://root@127.0.0.1/clone.git", dict(ENV, GIT_SSH_COMMAND=ssh_command(ours, port))),
        }
        http_ways = {
            HTTP_PLAIN: (f"http://127.0.0.1:{http_port}/b/clone.git", ENV),
            HTTP_OURS: (f"http://127.0.0.1:{http_port}/a/clone.git", ENV),
        }
        # The same git on both sides of the SSH comparison.
        v = subprocess.run(["ssh", *ssh_command(plain, port).split()[1:], "root@127.0.0.1", "git --version"],
                           capture_output=True, text=True, check=True).stdout.strip()
        ours_git = git("--version").decode().strip()
        assert v == ours_git, f"sshd's git is {v}, ours {ours_git}"
        times = measure({**ssh_ways, **http_ways}, a.repeats, want, tmp, a.smoke)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    rows, goals = [], []
    for plain_way, ours_way in ((SSH_PLAIN, SSH_OURS), (HTTP_PLAIN, HTTP_OURS)):
        base = times[plain_way]
        for w in (plain_way, ours_way):
            t = times[w]
            rows.append({"way": w, "min_s": round(min(t), 3), "median_s": round(statistics.median(t), 3),
                         "mb_per_s_at_median": round(size / 2**20 / statistics.median(t), 1),
                         "over_plain_median": round(statistics.median(base) / statistics.median(t), 3),
                         "over_plain_min": round(min(base) / min(t), 3), "runs_s": [round(x, 3) for x in t]})
        ratio = statistics.median(base) / statistics.median(times[ours_way])
        goals.append({"way": ours_way, "goal": 0.9, "ratio": round(ratio, 3), "met": ratio >= 0.9})
    result = {"benchmark": "frontdoors", "pack_bytes": size, "repeats": a.repeats, "bare": True,
              "machine": f"{platform.node()} {os.cpu_count()} cpus",
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows, "goals": goals}
    out = os.path.join(ROOT, "bench", "results", "frontdoors-smoke.json" if a.smoke else "frontdoors.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"| clone ({size / 2**20:.0f} MiB pack, bare, {a.repeats} runs each) | min | median | throughput (median) | vs the plain door (median / min) |")
    print("|---|---|---|---|---|")
    for r in rows:
        rel = "1.00x" if r["way"] in (SSH_PLAIN, HTTP_PLAIN) else f"{r['over_plain_median']:.2f}x / {r['over_plain_min']:.2f}x"
        print(f"| {r['way']} | {r['min_s']:.2f} s | {r['median_s']:.2f} s | {r['mb_per_s_at_median']:.0f} MiB/s | {rel} |")
    print()
    for g in goals:
        print(f"- {g['way']}: {g['ratio']:.2f}x the plain door's throughput at the median "
              f"(goal ≥ {g['goal']}x): {'met' if g['met'] else '**missed**'}")


if __name__ == "__main__":
    sys.exit(main())
