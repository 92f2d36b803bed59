//! Addresses (`unix:/path`, `tcp://host:port`, `host:port`, `tls://host:port`) and tonic
//! channels to them.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Uri};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid address {0:?}: expected unix:/path, tcp://host:port, tls://host:port or host:port"
    )]
    InvalidAddress(String),
    #[error("invalid storage name {0:?}")]
    InvalidStorage(String),
    #[error("invalid storage route {0:?}: expected STORAGE=ADDRESS[,ADDRESS...]")]
    InvalidRoute(String),
    #[error("tls: {0}")]
    Tls(String),
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
            Error::InvalidAddress(_)
            | Error::InvalidStorage(_)
            | Error::InvalidRoute(_)
            | Error::Tls(_) => tonic::Status::invalid_argument(e.to_string()),
            Error::Connect { .. } => tonic::Status::unavailable(e.detailed()),
        }
    }
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp(String),
    /// `host:port`, over TLS.
    Tls(String),
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
        let (tls, hostport) = match s.strip_prefix("tls://") {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix("tcp://").unwrap_or(s)),
        };
        if hostport.contains("://") {
            return Err(bad()); // another scheme
        }
        match hostport.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(if tls {
                Address::Tls(hostport.to_string())
            } else {
                Address::Tcp(hostport.to_string())
            }),
            _ => Err(bad()),
        }
    }
}

/// The default deadline of every call: 30 seconds, as the C and Ruby clients.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection options.
#[derive(Clone, Debug)]
pub struct Options {
    pub connect_timeout: Duration,
    /// Deadline applied to every call on the channel: `DEFAULT_TIMEOUT` unless set; `None`
    /// only for calls that may rightly last for ever (a clone of any size, as `gitrpc-ssh`).
    pub timeout: Option<Duration>,
    /// The server's `[auth] token`: every call then carries a v2 token made from it.
    pub token: Option<String>,
    /// PEM file of the certificate authorities to trust for `tls://` addresses, in addition
    /// to the system's (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured too).
    pub tls_ca_file: Option<PathBuf>,
    /// How many times a read-only call is retried after `UNAVAILABLE` or
    /// `RESOURCE_EXHAUSTED` (with exponential back-off and jitter, within the deadline).
    pub retries: u32,
    /// Dial as Gitaly's own clients do, with the `backchannel` handshake (a yamux session
    /// per connection; see [`crate::backchannel`]), so the sidechannel RPCs work. Needs a
    /// server with the listener mux (gitrpcd, Gitaly); plain gRPC calls work over it too.
    pub backchannel: bool,
    /// Storage routing: each call goes to the servers of its repository's storage (see
    /// [`crate::routing`]); empty: every call goes to the address given to `connect`.
    pub storages: crate::routing::StorageMap,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(5),
            timeout: Some(DEFAULT_TIMEOUT),
            token: None,
            tls_ca_file: None,
            retries: 2,
            backchannel: false,
            storages: Default::default(),
        }
    }
}

/// Open a channel to `address` (connects eagerly, so a bad or dead address fails here).
pub async fn connect(address: &str, opts: &Options) -> Result<Channel, Error> {
    if opts.backchannel {
        return crate::backchannel::connect(address, opts).await;
    }
    let endpoint = endpoint(address, opts)?;
    let conn_err = |source| Error::Connect {
        address: address.to_string(),
        source,
    };
    match Address::parse(address)? {
        Address::Unix(path) => endpoint
            .connect_with_connector(unix_connector(path))
            .await
            .map_err(conn_err),
        Address::Tcp(_) | Address::Tls(_) => endpoint.connect().await.map_err(conn_err),
    }
}

/// A channel to `address` that connects on first use (and reconnects after failures).
pub fn connect_lazy(address: &str, opts: &Options) -> Result<Channel, Error> {
    if opts.backchannel {
        return crate::backchannel::connect_lazy(address, opts);
    }
    let endpoint = endpoint(address, opts)?;
    Ok(match Address::parse(address)? {
        Address::Unix(path) => endpoint.connect_with_connector_lazy(unix_connector(path)),
        Address::Tcp(_) | Address::Tls(_) => endpoint.connect_lazy(),
    })
}

fn unix_connector(
    path: PathBuf,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<tokio::net::UnixStream>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
       + Send {
    tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move {
            let s = tokio::net::UnixStream::connect(path).await?;
            Ok::<_, std::io::Error>(TokioIo::new(s))
        }
    })
}

fn endpoint(address: &str, opts: &Options) -> Result<Endpoint, Error> {
    let invalid = || Error::InvalidAddress(address.to_string());
    let ep = match Address::parse(address)? {
        Address::Unix(_) => Endpoint::from_static("http://localhost"),
        Address::Tcp(hostport) => {
            Endpoint::from_shared(format!("http://{hostport}")).map_err(|_| invalid())?
        }
        Address::Tls(hostport) => {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = &opts.tls_ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            Endpoint::from_shared(format!("https://{hostport}"))
                .map_err(|_| invalid())?
                .tls_config(tls)
                .map_err(|e| Error::Tls(e.to_string()))?
        }
    };
    let mut ep = ep.connect_timeout(opts.connect_timeout);
    if let Some(t) = opts.timeout {
        ep = ep.timeout(t);
    }
    Ok(ep)
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
            Address::parse("tls://gitaly.example:9999").unwrap(),
            Address::Tls("gitaly.example:9999".into())
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
            "tls://h",
            "http://h:1",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }
}
