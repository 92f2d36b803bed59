//! The daemon these tests drive (a `gitrpcd` child or a server embedded in the test process)
//! and git run through `gitrpc-ssh` against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// A server embedded in the test process instead of a `gitrpcd` child.
    pub embedded: Option<(tokio::runtime::Runtime, gitrpc_server::Serving)>,
    pub socket: PathBuf,
}

impl Daemon {
    pub fn start(extra_config: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "socket_path = \"{}\"\n{extra_config}\n[[storage]]\nname = \"default\"\npath = \"{}\"\n",
                socket.display(),
                dir.path().join("repos").display()
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gitrpcd"))
            .args(["--config", config.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            dir,
            child: Some(child),
            embedded: None,
            socket,
        }
    }

    /// A server in this process (as the Ruby gem and the C API run it) with `hooks`.
    pub fn embedded(hooks: gitrpc_server::Hooks) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("e.sock");
        let config = gitrpc_server::Config::from_toml(&format!(
            "socket_path = \"{}\"\n[[storage]]\nname = \"default\"\npath = \"{}\"\n",
            socket.display(),
            dir.path().join("repos").display()
        ))
        .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let serving = rt
            .block_on(gitrpc_server::Serving::start_with_hooks(config, hooks))
            .unwrap();
        Daemon {
            dir,
            child: None,
            embedded: Some((rt, serving)),
            socket,
        }
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("repos")
    }

    pub fn url(&self, rel: &str) -> String {
        format!("ssh://gitrpc.example/default/{rel}")
    }

    pub fn ssh_command(&self, extra: &str) -> String {
        format!(
            "{} --address unix:{} {extra}",
            env!("CARGO_BIN_EXE_gitrpc-ssh"),
            self.socket.display()
        )
    }

    /// Run git with GIT_SSH_COMMAND pointing at our helper.
    pub fn git(&self, cwd: &Path, args: &[&str]) -> Output {
        self.git_env(cwd, args, &[])
    }

    /// `git` with extra environment (e.g. `GIT_PROTOCOL`, the pusher's identity).
    pub fn git_env(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.git_cmd(cwd, args, "");
        c.envs(env.iter().copied());
        c.output().unwrap()
    }

    pub fn git_cmd(&self, cwd: &Path, args: &[&str], ssh_extra: &str) -> Command {
        let mut c = Command::new("git");
        c.args(args)
            .current_dir(cwd)
            .env("GIT_SSH_COMMAND", self.ssh_command(ssh_extra))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "C")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .stdin(Stdio::null());
        c
    }

    pub fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.git(cwd, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("a gitrpcd child").id() as i32
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((rt, serving)) = self.embedded.take() {
            rt.block_on(serving.stop(Duration::from_secs(1)));
        }
    }
}

/// An executable shell script `name` in `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}
