//! The server under test as a child process: the embedded host (`soak host`, a growing
//! heap) for the soak, or `gitrpcd` for the fault run, which restarts it with SIGTERM and
//! SIGKILL. Both serve the same config on the same socket and monitor port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub monitor: String,
    pub status: PathBuf,
    /// `Some((mib, secs))`: the host with that ballast; `None`: gitrpcd.
    host: Option<(u64, u64)>,
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `target/<profile>/` (where gitrpcd and gitrpc-ssh of this build are).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

impl Server {
    pub fn new(dir: &Path, storage: &Path, host: Option<(u64, u64)>) -> Server {
        let socket = dir.join("d.sock");
        let monitor = format!("127.0.0.1:{}", free_port());
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"socket_path = "{}"
prometheus_listen_addr = "{monitor}"
graceful_restart_timeout = "5s"
[logging]
level = "warn"
[catfile]
idle_ttl = "10s"
[housekeeping]
after_writes = 10
[[storage]]
name = "default"
path = "{}"
"#,
                socket.display(),
                storage.display()
            ),
        )
        .unwrap();
        Server {
            child: None,
            dir: dir.to_path_buf(),
            status: dir.join("host.status"),
            socket,
            config,
            monitor,
            host,
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Start it and wait until its socket answers (and its monitor, 30 s at most).
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let mut cmd = match self.host {
            Some((mib, secs)) => {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.arg("host")
                    .arg("--config")
                    .arg(&self.config)
                    .arg("--ballast-mib")
                    .arg(mib.to_string())
                    .arg("--ballast-secs")
                    .arg(secs.to_string())
                    .arg("--status")
                    .arg(&self.status);
                c
            }
            None => {
                let mut c = Command::new(bin_dir().join("gitrpcd"));
                c.arg("--config").arg(&self.config);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the server (build gitrpcd first)");
        eprintln!("soak: server pid {}", child.id());
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
                && std::net::TcpStream::connect(&self.monitor).is_ok();
            if up {
                return;
            }
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "server exited at start ({s}); see {}",
                    self.dir.join("server.log").display()
                );
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send `sig` and wait until it exited (SIGKILL after 30 s). Returns how long it took.
    pub fn stop(&mut self, sig: i32) -> Duration {
        let t = Instant::now();
        let Some(mut c) = self.child.take() else {
            return Duration::ZERO;
        };
        // SAFETY: kill(2) on our child.
        unsafe { libc::kill(c.id() as i32, sig) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while c.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        t.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
