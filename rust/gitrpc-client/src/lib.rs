//! Client side of gitrpc: parse an address (`unix:/path`, `tcp://host:port`, `host:port`),
//! open a tonic [`Channel`], and hand out the generated Gitaly clients on it.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

pub use gitrpc_proto::gitaly;

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
        for bad in ["", "unix:", "tcp://x", "x:notaport", "/tmp/a.sock"] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }
}
