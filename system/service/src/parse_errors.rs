//! Bodies for the answers hyper writes on its own.
//!
//! A request hyper cannot parse (a URI over 64 KiB, too many or too large
//! headers, a malformed header) never reaches the router: hyper answers 400,
//! 414 or 431 itself, with an empty body, and offers no hook to change that.
//! So the connection's writes are watched instead: such an answer is a lone
//! response head with `content-length: 0`, and it is replaced by the same head
//! with a body the service chooses. Hand-written because no crate does this.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Makes the JSON body of an automatic answer with this status.
pub type BodyFor = fn(StatusCode) -> Vec<u8>;

/// The statuses hyper answers on its own (see hyper's `Server::on_error`).
const AUTOMATIC: &[u16] = &[400, 414, 431];

/// A listener whose connections get bodies on hyper's automatic answers.
pub struct Listener {
    pub inner: TcpListener,
    pub body: BodyFor,
}

impl axum::serve::Listener for Listener {
    type Io = Connection<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (Connection::new(io, self.body), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One connection: reads pass through, an automatic answer is rewritten.
pub struct Connection<S> {
    inner: S,
    body: BodyFor,
    /// A rewritten answer not yet fully written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<S> Connection<S> {
    pub fn new(inner: S, body: BodyFor) -> Self {
        Connection {
            inner,
            body,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> Connection<S> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Connection<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Connection<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(answer) = with_body(buf, self.body) {
            self.pending = answer;
            // Taken whole: what is left is written by later calls and flushes.
            if let Poll::Ready(Err(e)) = self.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `buf` with a body when it is exactly one automatic answer: a head of status
/// 400, 414 or 431 with `content-length: 0`, no content type and nothing after.
fn with_body(buf: &[u8], body_for: BodyFor) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(buf).ok()?;
    let rest = head.strip_prefix("HTTP/1.")?;
    let code: u16 = rest.get(2..5)?.parse().ok()?;
    if !AUTOMATIC.contains(&code) {
        return None;
    }
    let head = head.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    let named = |line: &&str, name: &str| {
        line.split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(name))
    };
    let empty = headers.iter().any(|l| {
        named(l, "content-length") && l.split_once(':').is_some_and(|(_, v)| v.trim() == "0")
    });
    if !empty || headers.iter().any(|l| named(l, "content-type")) {
        return None;
    }
    let body = body_for(StatusCode::from_u16(code).ok()?);
    let mut out = String::from(status_line);
    for line in headers
        .iter()
        .filter(|l| !named(l, "content-length") && !named(l, "connection"))
    {
        out.push_str("\r\n");
        out.push_str(line);
    }
    out.push_str(&format!(
        "\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(status: StatusCode) -> Vec<u8> {
        format!("{{\"code\":{}}}", status.as_u16()).into_bytes()
    }

    #[test]
    fn an_automatic_answer_gets_a_body() {
        let head =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_body(head, body).unwrap()).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\ndate: x\r\n"), "{out}");
        assert!(
            out.contains("\r\ncontent-type: application/json\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\ncontent-length: 12\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n{\"code\":431}"), "{out}");
    }

    #[test]
    fn other_writes_pass_unchanged() {
        for buf in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 5\r\n\r\n",
            b"{\"HTTP/1.1 400\"}",
            b"\xff\xfe",
        ] {
            assert_eq!(with_body(buf, body), None, "{}", String::from_utf8_lossy(buf));
        }
    }
}
