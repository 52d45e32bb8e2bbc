//! `SERVICE health`: asks the service's own `/health`, from inside its
//! container, for a container health check (compose's `healthcheck`, Docker's
//! `HEALTHCHECK`). The images hold the binary alone — no shell, no curl — so
//! the binary is its own probe. Plain HTTP/1.1 over a blocking socket: no
//! runtime, no TLS, no client to build, and it answers in one round trip.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long connecting, and then each read or write, may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The `health` subcommand's arguments.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProbeArgs {
    /// Any HTTP answer counts, not only 200: for a service that serves while
    /// its health says fail on purpose (gometr told to fail it).
    #[arg(long)]
    pub answering: bool,
}

/// Asks `GET /health` of the service listening on `listen` (an unspecified
/// address means its loopback) and says on stderr why it is not healthy:
/// exit 0 for a 200 answer (any answer with `--answering`), 1 otherwise, as
/// health checks expect.
pub fn run(listen: SocketAddr, args: &ProbeArgs) -> ExitCode {
    match probe(listen, TIMEOUT, args.answering) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok` when `GET /health` on `listen` answers 200 (any status, when
/// `any_answer`) within `timeout`; otherwise what went wrong, naming the address.
pub fn probe(listen: SocketAddr, timeout: Duration, any_answer: bool) -> Result<(), String> {
    let address = local(listen);
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| format!("connect to {address}: {e}"))?;
    let io = |e: std::io::Error| format!("GET http://{address}/health: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {address}\r\nUser-Agent: metr-health-probe\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    // The status line is all we need: read until it is complete.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    match status_code(line) {
        Some(200) => Ok(()),
        Some(_) if any_answer => Ok(()),
        Some(code) => Err(format!("GET http://{address}/health answered {code}")),
        None if line.is_empty() => Err(format!(
            "GET http://{address}/health: the connection closed without an answer"
        )),
        None => Err(format!(
            "GET http://{address}/health: not an HTTP answer: {line:?}"
        )),
    }
}

/// Where to reach a server that listens on `listen` from the same host.
fn local(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The code of an `HTTP/1.x NNN reason` status line.
fn status_code(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// A one-connection server on loopback that answers `response` verbatim.
    fn answering(response: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).unwrap();
            assert!(request[..n].starts_with(b"GET /health HTTP/1.1\r\n"));
            stream.write_all(response.as_bytes()).unwrap();
        });
        address
    }

    #[test]
    fn a_200_is_healthy() {
        let address = answering("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        assert_eq!(probe(address, TIMEOUT, false), Ok(()));
    }

    #[test]
    fn a_503_is_unhealthy_and_says_so() {
        let address = answering("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let error = probe(address, TIMEOUT, false).unwrap_err();
        assert_eq!(error, format!("GET http://{address}/health answered 503"));
    }

    #[test]
    fn with_answering_a_503_is_enough_but_silence_is_not() {
        let address = answering("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert_eq!(probe(address, TIMEOUT, true), Ok(()));
        let address = answering("");
        let error = probe(address, TIMEOUT, true).unwrap_err();
        assert!(error.contains("closed without an answer"), "{error}");
    }

    #[test]
    fn a_closed_port_is_unhealthy_and_names_the_address() {
        let address = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // The listener is dropped: nothing listens there any more.
        let error = probe(address, TIMEOUT, false).unwrap_err();
        assert!(
            error.starts_with(&format!("connect to {address}: ")),
            "{error}"
        );
    }

    #[test]
    fn something_that_is_not_http_is_unhealthy() {
        let address = answering("SSH-2.0-OpenSSH\r\n");
        let error = probe(address, TIMEOUT, false).unwrap_err();
        assert!(error.contains("not an HTTP answer"), "{error}");
    }

    #[test]
    fn an_unspecified_listen_address_is_probed_on_loopback() {
        assert_eq!(
            local("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(local("[::]:9".parse().unwrap()), "[::1]:9".parse().unwrap());
        assert_eq!(
            local("10.1.2.3:80".parse().unwrap()),
            "10.1.2.3:80".parse().unwrap()
        );
    }
}
