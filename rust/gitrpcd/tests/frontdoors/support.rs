//! A private sshd, user keys, gitrpc-shell's config and the application's access script;
//! [`Door`] puts them together with a `gitrpcd`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{git_ok, Daemon};

/// The tests need root (see main.rs); say so instead of failing obscurely.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "the front-door tests start a private sshd and must run as root (CI does): run them as root"
    );
}

pub fn shell_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gitrpc-shell")
}

pub fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An ed25519 key pair in `dir`: (private key file, public key line).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client) is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// An `authorized_keys` line that makes sshd run gitrpc-shell for `key_id`.
pub fn key_line(shell: &str, config: &Path, key_id: &str, public: &str) -> String {
    format!(
        "command=\"{shell} --config {} {key_id}\",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty {public}\n",
        config.display()
    )
}

/// OpenSSH's sshd on a loopback port, in a private mount namespace with a tmpfs `/run`
/// (holding `/run/sshd` and a copy of gitrpc-shell at `/run/gitrpc-test/gitrpc-shell`, a
/// path safe enough for an `AuthorizedKeysCommand`).
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

/// Where the namespace's copy of gitrpc-shell is.
pub const SAFE_SHELL: &str = "/run/gitrpc-test/gitrpc-shell";

impl Sshd {
    /// Start with `authorized_keys` and extra `sshd_config` lines.
    pub fn start(authorized_keys: &str, extra: &str) -> Sshd {
        require_root();
        let mut dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host)
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(dir.path().join("authorized_keys"), authorized_keys).unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {d}/sshd.pid\n\
                     AuthorizedKeysFile {d}/authorized_keys\nUsePAM no\nStrictModes no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\nPrintMotd no\n\
                     # protocol v2: git sends GIT_PROTOCOL with SendEnv\nAcceptEnv GIT_PROTOCOL\n\
                     # 50 sessions at once (the rate-limit test): the default 10:30:100 drops some\n\
                     MaxStartups 200\nLogLevel VERBOSE\n{extra}\n",
                    host = host.display(),
                    d = dir.path().display(),
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
            // sshd re-executes itself: absolute path. `exec` keeps its pid ours to signal.
            let script = format!(
                "mount -t tmpfs -o size=128m,mode=0755 tmpfs /run && \
                 mkdir -m 0755 /run/sshd /run/gitrpc-test && \
                 cp {shell} {SAFE_SHELL} && \
                 exec /usr/sbin/sshd -D -e -f {config}",
                shell = shell_bin(),
                config = config.display(),
            );
            let child = Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("unshare (util-linux) and /usr/sbin/sshd (openssh-server) are needed");
            let mut sshd = Sshd { dir, port, child };
            if sshd.ready() {
                return sshd;
            }
            let log = sshd.log();
            assert!(
                log.contains("Address already in use") || log.contains("Bind to port"),
                "sshd did not start: {log}"
            );
            dir = std::mem::replace(&mut sshd.dir, tempfile::tempdir().unwrap());
            drop(sshd);
        }
        panic!("sshd: no free port after 5 attempts");
    }

    /// Wait until sshd accepts connections; `false` if it exited.
    fn ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if self.log().contains("Server listening on") {
                return true;
            }
            assert!(Instant::now() < deadline, "sshd not ready: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `GIT_SSH_COMMAND` for `key` (no state from ~/.ssh; the port given here, so URLs
    /// carry none).
    pub fn ssh_command(&self, key: &Path) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p {}",
            key.display(),
            self.port
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // SAFETY: signalling our own child (sshd itself, thanks to `exec`).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The application's access check as a script: `key-42` (alice, `user-42`) may do
/// anything, `key-7` (bob) may read, anything else is unknown. Every question is appended to
/// `access.log`. With a barrier, each check first waits until the FIFO `gate` has a writer
/// (opening a FIFO to read blocks until then; see [`Door::release`]).
pub fn access_script(dir: &Path, barrier: bool) -> PathBuf {
    let script = dir.join("access.sh");
    let log = dir.join("access.log");
    let wait = if barrier {
        let gate = dir.join("gate");
        let c = std::ffi::CString::new(gate.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        format!(
            "touch {d}/arrived.$$\n: < {gate}\n",
            d = dir.display(),
            gate = gate.display()
        )
    } else {
        String::new()
    };
    write_exe(
        &script,
        &format!(
            r#"#!/bin/sh
echo "$* ip=$GITRPC_REMOTE_IP proto=$GIT_PROTOCOL" >> {log}
{wait}case "$1" in
  key-42) echo '{{"user": {{"gl_id": "user-42", "username": "alice"}}, "gl_repository": "project-1"}}' ;;
  key-7)
    if [ "$2" = git-receive-pack ]; then
      echo "You are not allowed to push code to this project."
      exit 1
    fi
    echo '{{"user": {{"gl_id": "user-7", "username": "bob"}}}}' ;;
  *) echo "Unknown key: $1" >&2; exit 1 ;;
esac
"#,
            log = log.display()
        ),
    );
    script
}

/// A gitrpcd, gitrpc-shell's config, three keys (alice `key-42`, bob `key-7`, eve
/// `key-99`) and an sshd running the shell for them.
pub struct Door {
    pub daemon: Daemon,
    pub sshd: Sshd,
    pub dir: tempfile::TempDir,
    pub alice: PathBuf,
    pub bob: PathBuf,
    pub eve: PathBuf,
    /// The barrier's FIFO, held open (for writing) once released.
    gate: std::sync::Mutex<Option<std::fs::File>>,
}

impl Door {
    /// `daemon_config` for gitrpcd (a monitor is always added); `access` the shell's access
    /// settings (e.g. `access_command = "…"`); `None`: the access script, no barrier.
    pub fn start(daemon_config: &str, access: Option<&str>) -> Door {
        Door::start_with(daemon_config, access, false)
    }

    pub fn start_with(daemon_config: &str, access: Option<&str>, barrier: bool) -> Door {
        require_root();
        let daemon = Daemon::start(&format!(
            "prometheus_listen_addr = \"127.0.0.1:0\"\n{daemon_config}"
        ));
        let dir = tempfile::tempdir().unwrap();
        let access = match access {
            Some(a) => a.to_string(),
            None => format!(
                "access_command = \"{}\"",
                access_script(dir.path(), barrier).display()
            ),
        };
        let config = dir.path().join("shell.toml");
        std::fs::write(
            &config,
            format!(
                "address = \"{}\"\ndefault_storage = \"default\"\n{access}\n",
                daemon.address()
            ),
        )
        .unwrap();
        let (alice, a) = keygen(dir.path(), "alice");
        let (bob, b) = keygen(dir.path(), "bob");
        let (eve, e) = keygen(dir.path(), "eve");
        let keys = [("key-42", a), ("key-7", b), ("key-99", e)]
            .iter()
            .map(|(id, public)| key_line(shell_bin(), &config, id, public))
            .collect::<String>();
        let sshd = Sshd::start(&keys, "");
        Door {
            daemon,
            sshd,
            dir,
            alice,
            bob,
            eve,
            gate: Default::default(),
        }
    }

    /// git as a client with `key`, and a fixed identity.
    pub fn git(&self, key: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new("git");
        c.args(args)
            .current_dir(cwd)
            .env("GIT_SSH_COMMAND", self.sshd.ssh_command(key))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "C")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .env_remove("GIT_PROTOCOL")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// [`Door::git`], which must succeed: its stdout.
    pub fn git_ok(&self, key: &Path, cwd: &Path, args: &[&str]) -> String {
        let out = self.git(key, cwd, args, &[]);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}\nsshd: {}",
            String::from_utf8_lossy(&out.stderr),
            self.sshd.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ssh` itself (no git) with `key` and a remote command (`None`: a login).
    pub fn ssh(&self, key: &Path, command: Option<&str>) -> Output {
        let cmd = self.sshd.ssh_command(key);
        let mut words: Vec<&str> = cmd.split_whitespace().collect();
        words.push("-T");
        words.push("root@127.0.0.1");
        if let Some(c) = command {
            words.push(c);
        }
        Command::new(words[0])
            .args(&words[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// An ssh URL for `path` (as the user types it after the host).
    pub fn url(&self, path: &str) -> String {
        format!("ssh://root@127.0.0.1/{}", path.trim_start_matches('/'))
    }

    /// Questions the access script was asked.
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// SSHService calls the daemon finished (any code).
    pub fn ssh_rpcs(&self) -> f64 {
        self.daemon
            .monitor_get("/metrics")
            .lines()
            .filter(|l| {
                l.starts_with("gitrpc_rpc_requests_total{") && l.contains("gitaly.SSHService/")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// With a barrier: wait until `n` access checks are waiting, then let them all go.
    pub fn release(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let arrived = std::fs::read_dir(self.dir.path())
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("arrived."))
                .count();
            if arrived >= n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {arrived} of {n} sessions reached the access check\nsshd: {}",
                self.sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Opened read-write so as not to block; held open, so checks arriving later pass too.
        let gate = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.path().join("gate"))
            .unwrap();
        *self.gate.lock().unwrap() = Some(gate);
    }
}

/// Add a commit on `branch` in the work tree `work` (a clone) and return its id.
pub fn commit(work: &Path, name: &str) -> String {
    std::fs::write(work.join(format!("{name}.txt")), name).unwrap();
    git_ok(work, &["add", "."]);
    git_ok(work, &["commit", "-qm", name]);
    git_ok(work, &["rev-parse", "HEAD"]).trim().to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
