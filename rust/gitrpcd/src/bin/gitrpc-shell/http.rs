//! The one HTTP request gitrpc-shell makes: to the application's access check (or key
//! lookup), over TCP (`http://host:port/path`) or a unix socket (`unix:/path/to.sock:/path`,
//! gitlab-shell's `http+unix`). HTTP/1.1 with hyper; no TLS: the application is expected on
//! loopback or a socket.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;

/// Largest answer read from the application.
const MAX_BODY: usize = 1 << 20;

/// Where a URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    socket: Socket,
    /// `Host` header.
    host: String,
    /// Path and query.
    path: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Socket {
    Tcp(String),
    Unix(PathBuf),
}

/// An answer: status and (capped) body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        if let Some(rest) = url.strip_prefix("unix:") {
            let (sock, path) = rest
                .split_once(":/")
                .ok_or("expected unix:/path/to.sock:/url/path")?;
            if !sock.starts_with('/') {
                return Err("the socket path must be absolute".into());
            }
            return Ok(Target {
                socket: Socket::Unix(sock.into()),
                host: "localhost".into(),
                path: format!("/{path}"),
            });
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or("expected http://host:port/path or unix:/path/to.sock:/path")?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if hostport.is_empty() {
            return Err("no host".into());
        }
        let addr = if hostport.contains(':') && !hostport.ends_with(']') {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        Ok(Target {
            socket: Socket::Tcp(addr),
            host: hostport.to_string(),
            path: path.to_string(),
        })
    }

    /// The same endpoint with `query` appended.
    pub fn with_query(&self, query: &str) -> Target {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        Target {
            path: format!("{}{sep}{query}", self.path),
            ..self.clone()
        }
    }
}

/// `method` the target with an optional JSON body and bearer token.
pub async fn request(
    target: &Target,
    method: http::Method,
    json: Option<Vec<u8>>,
    bearer: Option<&str>,
) -> Result<Response, String> {
    match &target.socket {
        Socket::Tcp(addr) => {
            let s = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            exchange(s, target, method, json, bearer).await
        }
        Socket::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("connect {}: {e}", path.display()))?;
            exchange(s, target, method, json, bearer).await
        }
    }
}

async fn exchange<S>(
    stream: S,
    target: &Target,
    method: http::Method,
    json: Option<Vec<u8>>,
    bearer: Option<&str>,
) -> Result<Response, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http: {e}"))?;
    let driver = tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(&target.path)
        .header(http::header::HOST, &target.host)
        .header(http::header::USER_AGENT, "gitrpc-shell")
        .header(http::header::ACCEPT, "application/json");
    if json.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    if let Some(t) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::from(json.unwrap_or_default())))
        .map_err(|e| format!("http: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("http: {e}"))?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("http: reading the answer: {e}"))?
        .to_bytes();
    driver.abort();
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:3000/api/allowed").unwrap();
        assert_eq!(t.socket, Socket::Tcp("127.0.0.1:3000".into()));
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:3000", "/api/allowed")
        );
        let t = Target::parse("http://app").unwrap();
        assert_eq!(t.socket, Socket::Tcp("app:80".into()));
        assert_eq!(t.path, "/");
        let t = Target::parse("unix:/run/app.sock:/api/allowed").unwrap();
        assert_eq!(t.socket, Socket::Unix("/run/app.sock".into()));
        assert_eq!(t.path, "/api/allowed");
        assert_eq!(t.with_query("key=a%20b").path, "/api/allowed?key=a%20b");
        for bad in [
            "https://x/a",
            "unix:rel.sock:/a",
            "unix:/s",
            "http:///a",
            "x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
