//! Dialing as Gitaly's own clients do (gitlab-shell, workhorse: `sidechannel.Dial`): each
//! connection is opened (TLS first for `tls://`), `backchannel` is written, and the rest of
//! the connection is a yamux *client* session. Its first stream, which we open, carries the
//! HTTP/2 connection tonic uses; the streams the server opens are sidechannels, answered by
//! the process-wide registry in [`crate::sidechannel`]. Used when [`Options::backchannel`]
//! is set; tonic reconnects through the same connector (a new connection, a new session).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::sync::oneshot;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::address::{Address, Error, Options};

/// What a Gitaly backchannel client sends first.
pub const MAGIC: &[u8; 11] = b"backchannel";
/// Write buffer under a session (a frame's header and payload leave in one write).
const WRITE_BUFFER: usize = 128 << 10;
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Connect eagerly (see [`crate::address::connect`]).
pub(crate) async fn connect(address: &str, opts: &Options) -> Result<Channel, Error> {
    let (endpoint, connector) = endpoint(address, opts)?;
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|source| Error::Connect {
            address: address.to_string(),
            source,
        })
}

/// Connect on first use (see [`crate::address::connect_lazy`]).
pub(crate) fn connect_lazy(address: &str, opts: &Options) -> Result<Channel, Error> {
    let (endpoint, connector) = endpoint(address, opts)?;
    Ok(endpoint.connect_with_connector_lazy(connector))
}

fn endpoint(address: &str, opts: &Options) -> Result<(Endpoint, Connector), Error> {
    let invalid = || Error::InvalidAddress(address.to_string());
    let parsed = Address::parse(address)?;
    // HTTP/2 runs inside the session: tonic itself never does TLS here.
    let uri = match &parsed {
        Address::Unix(_) => "http://localhost".to_string(),
        Address::Tcp(hostport) | Address::Tls(hostport) => format!("http://{hostport}"),
    };
    let tls = match &parsed {
        Address::Tls(hostport) => {
            let host = hostport.rsplit_once(':').map_or(&**hostport, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(host.to_string()).map_err(|_| invalid())?;
            Some((tls_config(opts)?, name))
        }
        _ => None,
    };
    let mut endpoint = Endpoint::from_shared(uri)
        .map_err(|_| invalid())?
        .connect_timeout(opts.connect_timeout);
    if let Some(t) = opts.timeout {
        endpoint = endpoint.timeout(t);
    }
    Ok((
        endpoint,
        Connector {
            address: parsed,
            tls,
        },
    ))
}

/// The system's roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured) plus `tls_ca_file`; ALPN h2.
fn tls_config(opts: &Options) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &opts.tls_ca_file {
        let pem =
            std::fs::read(path).map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Dials a backchannel session per connection tonic asks for.
#[derive(Clone)]
struct Connector {
    address: Address,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<GrpcStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<GrpcStream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.dial().await.map(TokioIo::new) })
    }
}

impl Connector {
    async fn dial(self) -> io::Result<GrpcStream> {
        let mut io: Box<dyn Io> = match &self.address {
            Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            Address::Tcp(hostport) => {
                let s = tokio::net::TcpStream::connect(hostport).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Address::Tls(hostport) => {
                let s = tokio::net::TcpStream::connect(hostport).await?;
                s.set_nodelay(true)?;
                let (config, name) = self.tls.clone().expect("tls:// has a TLS config");
                let connector = tokio_rustls::TlsConnector::from(config);
                Box::new(connector.connect(name, s).await?)
            }
        };
        io.write_all(MAGIC).await?;
        let io = BufWriter::with_capacity(WRITE_BUFFER, io).compat();
        let mut conn = yamux::Connection::new(io, config(), yamux::Mode::Client);
        // Opening is lazy (the SYN rides on the stream's first frame): no IO happens here.
        let first = std::future::poll_fn(|cx| conn.poll_new_outbound(cx))
            .await
            .map_err(io::Error::other)?;
        let (gone_tx, gone_rx) = oneshot::channel();
        tokio::spawn(drive(conn, gone_rx));
        Ok(GrpcStream {
            stream: first.compat(),
            _gone: gone_tx,
        })
    }
}

/// The same yamux settings as the server's (windows auto-tuned from 256 KiB; 64 KiB frames).
fn config() -> yamux::Config {
    let mut cfg = yamux::Config::default();
    cfg.set_max_connection_receive_window(Some(256 << 20));
    cfg.set_split_send_size(64 << 10);
    cfg
}

/// Drive a client session: all its socket IO, and each stream the server opens handed to
/// the sidechannel registry. Ends when tonic drops the gRPC stream or the connection ends.
async fn drive<T>(mut conn: yamux::Connection<T>, mut grpc_gone: oneshot::Receiver<()>)
where
    T: futures::AsyncRead + futures::AsyncWrite + Unpin,
{
    std::future::poll_fn(|cx| loop {
        if Pin::new(&mut grpc_gone).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(stream))) => {
                tokio::spawn(crate::sidechannel::accept(stream));
            }
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await;
    let _ = tokio::time::timeout(
        CLOSE_TIMEOUT,
        std::future::poll_fn(|cx| conn.poll_close(cx)),
    )
    .await;
}

/// The session's first stream, given to tonic as the connection. Dropping it ends the
/// session.
pub struct GrpcStream {
    stream: Compat<yamux::Stream>,
    _gone: oneshot::Sender<()>,
}

impl AsyncRead for GrpcStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GrpcStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
