//! Addresses (`unix:/path`, `tcp://host:port`, `host:port`) and tonic channels to them.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid address {0:?}: expected unix:/path, tcp://host:port or host:port")]
    InvalidAddress(String),
    #[error("connect {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
}

impl Error {
    /// The message with its whole cause chain (tonic's own message is just "transport error").
    pub fn detailed(&self) -> String {
        let mut msg = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(e) = src {
            let part = e.to_string();
            if !msg.contains(&part) {
                msg.push_str(": ");
                msg.push_str(&part);
            }
            src = e.source();
        }
        msg
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        match e {
            Error::InvalidAddress(_) => tonic::Status::invalid_argument(e.to_string()),
            Error::Connect { .. } => tonic::Status::unavailable(e.detailed()),
        }
    }
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp(String),
}

impl Address {
    pub fn parse(s: &str) -> Result<Address, Error> {
        let bad = || Error::InvalidAddress(s.to_string());
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if path.is_empty() {
                return Err(bad());
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        let hostport = s.strip_prefix("tcp://").unwrap_or(s);
        if hostport.contains("://") {
            return Err(bad()); // another scheme (tls:// is not supported yet)
        }
        match hostport.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Address::Tcp(hostport.to_string()))
            }
            _ => Err(bad()),
        }
    }
}

/// Connection options.
#[derive(Clone, Debug)]
pub struct Options {
    pub connect_timeout: Duration,
    /// Deadline applied to every call on the channel (`None`: no deadline).
    pub timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(5),
            timeout: None,
        }
    }
}

/// Open a channel to `address` (connects eagerly, so a bad address fails here).
pub async fn connect(address: &str, opts: &Options) -> Result<Channel, Error> {
    let addr = Address::parse(address)?;
    let conn_err = |source| Error::Connect {
        address: address.to_string(),
        source,
    };
    match addr {
        Address::Unix(path) => {
            let mut ep =
                Endpoint::from_static("http://localhost").connect_timeout(opts.connect_timeout);
            if let Some(t) = opts.timeout {
                ep = ep.timeout(t);
            }
            ep.connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(s))
                }
            }))
            .await
            .map_err(conn_err)
        }
        Address::Tcp(hostport) => {
            let mut ep = Endpoint::from_shared(format!("http://{hostport}"))
                .map_err(|_| Error::InvalidAddress(address.to_string()))?
                .connect_timeout(opts.connect_timeout);
            if let Some(t) = opts.timeout {
                ep = ep.timeout(t);
            }
            ep.connect().await.map_err(conn_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            Address::parse("unix:/tmp/a.sock").unwrap(),
            Address::Unix("/tmp/a.sock".into())
        );
        assert_eq!(
            Address::parse("unix:///tmp/a.sock").unwrap(),
            Address::Unix("/tmp/a.sock".into())
        );
        assert_eq!(
            Address::parse("tcp://127.0.0.1:80").unwrap(),
            Address::Tcp("127.0.0.1:80".into())
        );
        assert_eq!(
            Address::parse("localhost:9").unwrap(),
            Address::Tcp("localhost:9".into())
        );
        for bad in [
            "",
            "unix:",
            "tcp://x",
            "x:notaport",
            "/tmp/a.sock",
            "tls://h:1",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }
}
