//! Resource bounds of the server: request message size, connections (`[connections]`) and
//! transport sessions (`[transport]`).

use std::time::Duration;

use serde::Deserialize;

/// Default `max_message_bytes`: the largest request message accepted.
pub fn default_max_message_bytes() -> usize {
    gitrpc_proto::MAX_MESSAGE
}

/// `[connections]`: how many clients may be connected and how long a connection may idle.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// Connections open at once, all listeners together; past it the server stops accepting
    /// (new clients wait in the listen backlog) until one closes. Default: half of the
    /// process's open-file limit (`RLIMIT_NOFILE`), so git pipes and spill files keep the rest.
    #[serde(default)]
    pub max: Option<usize>,
    /// A new connection must send its first bytes (the HTTP/2 preface, or a TLS hello)
    /// within this, or it is closed.
    #[serde(default = "default_handshake", with = "super::duration")]
    pub handshake_timeout: Duration,
    /// A connection with no call in flight for this long is closed (gRPC's
    /// `MAX_CONNECTION_IDLE`); clients reconnect on their next call.
    #[serde(default = "default_idle", with = "super::duration")]
    pub idle_timeout: Duration,
    /// HTTP/2 PING sent after this long without frames from the client (Gitaly: 5m)...
    #[serde(default = "default_idle", with = "super::duration")]
    pub keepalive_interval: Duration,
    /// ...and the connection is closed if the PING is not answered within this.
    #[serde(default = "default_keepalive_timeout", with = "super::duration")]
    pub keepalive_timeout: Duration,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            max: None,
            handshake_timeout: default_handshake(),
            idle_timeout: default_idle(),
            keepalive_interval: default_idle(),
            keepalive_timeout: default_keepalive_timeout(),
        }
    }
}

impl ConnectionsConfig {
    /// `max`, or half the current soft `RLIMIT_NOFILE` (at least 16).
    pub fn max_connections(&self) -> usize {
        self.max
            .unwrap_or_else(|| (open_file_limit().0 / 2).clamp(16, 1 << 20) as usize)
    }
}

/// `[transport]`: SSH and smart-HTTP sessions (upload-pack, receive-pack, upload-archive).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportConfig {
    /// A session in which the client sends nothing and reads nothing for this long is ended
    /// with `DEADLINE_EXCEEDED` and its git killed (git's own `upload-pack --timeout`
    /// semantics: inactivity, not total time).
    #[serde(default = "default_idle", with = "super::duration")]
    pub idle_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            idle_timeout: default_idle(),
        }
    }
}

fn default_handshake() -> Duration {
    Duration::from_secs(10)
}
fn default_idle() -> Duration {
    Duration::from_secs(300)
}
fn default_keepalive_timeout() -> Duration {
    Duration::from_secs(20)
}

/// (soft, hard) `RLIMIT_NOFILE` of this process.
pub fn open_file_limit() -> (u64, u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return (1024, 1024);
    }
    (l.rlim_cur, l.rlim_max)
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; returns the (old, new) soft limit.
///
/// `gitrpcd` calls this at start. [`crate::Serving`] does not: an embedding process (a Ruby
/// or C program) owns its limits, and raising the soft limit past 1024 breaks code that
/// still uses `select(2)` (`FD_SETSIZE`). Embedders that serve many clients should raise it
/// themselves, before starting the server (the default `[connections] max` derives from it).
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let old = l.rlim_cur;
        if l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok((old, l.rlim_cur))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    const STORAGE: &str = "[[storage]]\nname = \"d\"\npath = \"/srv\"\n";

    #[test]
    fn resource_keys() {
        let c = Config::from_toml(&format!(
            "max_message_bytes = 4194304\n{STORAGE}[connections]\nmax = 20\nhandshake_timeout = \"1s\"\nidle_timeout = \"1m\"\nkeepalive_interval = 30\nkeepalive_timeout = \"500ms\"\n[transport]\nidle_timeout = \"2s\"\n[spool]\nmax_bytes = 1048576\n"
        ))
        .unwrap();
        assert_eq!(c.max_message_bytes, 4 << 20);
        assert_eq!(c.connections.max_connections(), 20);
        assert_eq!(c.connections.handshake_timeout, Duration::from_secs(1));
        assert_eq!(c.connections.keepalive_interval, Duration::from_secs(30));
        assert_eq!(c.transport.idle_timeout, Duration::from_secs(2));
        assert_eq!(c.spool.max_bytes, 1 << 20);
        // Defaults: derived from the open-file limit, Gitaly's keepalive.
        let c = Config::from_toml(STORAGE).unwrap();
        assert!(c.connections.max_connections() >= 16);
        assert_eq!(c.connections.keepalive_interval, Duration::from_secs(300));
        for bad in [
            "[connections]\nmax = 0\n",
            "[connections]\nidle_timeout = \"0s\"\n",
            "[transport]\nidle_timeout = 0\n",
        ] {
            let c = Config::parse(&format!("{STORAGE}{bad}")).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
        let e = Config::from_toml(&format!("max_message_bytes = 0\n{STORAGE}")).unwrap_err();
        assert_eq!(e.key(), Some("max_message_bytes"), "{e}");
    }
}
