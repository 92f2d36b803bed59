//! The monitor's HTTP/1 server: plain OS threads and blocking I/O, never the gRPC runtime.
//!
//! One request per connection. Up to [`MAX_CONCURRENT`] connections are served at once, each
//! on its own thread, so a slow client can't hold up a scrape; more are closed at once. A
//! connection gets [`REQUEST_DEADLINE`] in all to send its request head (not per read: a
//! client trickling a byte at a time is cut off too) and [`RESPONSE_DEADLINE`] to take the
//! answer. The server's dependencies are held (upgraded from a weak reference) only while a
//! page is rendered.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::deps::Deps;

/// Connections served at once.
pub const MAX_CONCURRENT: usize = 8;
/// Time a connection has to send its whole request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Time a connection has to read the whole answer.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(10);

pub fn serve(listener: TcpListener, deps: Weak<Deps>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) || deps.strong_count() == 0 {
            return;
        }
        let conn = match conn {
            Ok(c) => c,
            Err(_) => {
                // Out of fds or similar: don't spin on a connection we can't accept.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONCURRENT {
            active.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: closed at once
        }
        let slot = Active(active.clone());
        let deps = deps.clone();
        let _ = std::thread::Builder::new()
            .name("gitrpc-monitor-conn".into())
            .spawn(move || {
                let _slot = slot;
                let _ = answer(conn, &deps);
            });
    }
}

/// One of the connections being served (released when dropped).
struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn left(deadline: Instant) -> io::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
}

fn read_head(conn: &mut TcpStream) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        conn.set_read_timeout(Some(left(deadline)?))?;
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

fn write_all(conn: &mut TcpStream, mut data: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + RESPONSE_DEADLINE;
    while !data.is_empty() {
        conn.set_write_timeout(Some(left(deadline)?))?;
        match conn.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn answer(mut conn: TcpStream, deps: &Weak<Deps>) -> io::Result<()> {
    let head = read_head(&mut conn)?;
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = {
        let Some(deps) = deps.upgrade() else {
            return Ok(());
        };
        super::page(&deps, method, path)
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    write_all(&mut conn, response.as_bytes())?;
    conn.flush()
}
