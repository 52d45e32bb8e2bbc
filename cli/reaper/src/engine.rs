//! The few Docker engine calls the reaper makes, as HTTP/1.0 over the unix
//! socket. Hand-written on purpose: an HTTP client crate would multiply the
//! reaper's build time and size for five requests.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// The engine behind a unix socket.
pub struct Engine {
    socket: PathBuf,
}

/// An engine answer: status code and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Engine {
    pub fn new(socket: impl Into<PathBuf>) -> Engine {
        Engine {
            socket: socket.into(),
        }
    }

    /// One request with an empty body; the engine closes the connection after
    /// an HTTP/1.0 answer, so the whole answer is what can be read.
    pub fn request(&self, method: &str, path: &str) -> Result<Response, String> {
        let fail = |e: std::io::Error| format!("{method} {path}: {e}");
        let mut stream = UnixStream::connect(&self.socket)
            .map_err(|e| format!("connect to {}: {e}", self.socket.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(fail)?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
        )
        .map_err(fail)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(fail)?;
        parse(&raw).ok_or_else(|| format!("{method} {path}: malformed answer"))
    }
}

/// Parses an HTTP answer, de-chunking the body if it is chunked.
pub fn parse(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_answers_parse() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[1]";
        assert_eq!(
            parse(plain),
            Some(Response {
                status: 200,
                body: b"[1]".to_vec()
            })
        );
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        assert_eq!(
            parse(chunked),
            Some(Response {
                status: 404,
                body: b"[1,2]".to_vec()
            })
        );
        assert_eq!(parse(b"garbage"), None);
    }

    #[test]
    fn filters_are_percent_encoded() {
        assert_eq!(
            encode(r#"{"label":["io.metrtest.run=ab1"]}"#),
            "%7B%22label%22%3A%5B%22io.metrtest.run%3Dab1%22%5D%7D"
        );
    }
}
