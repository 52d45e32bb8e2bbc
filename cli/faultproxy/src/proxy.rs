//! Listening for a link's clients and passing their bytes to the server, with
//! the link's faults applied to each chunk in each direction.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::faults::Faults;

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: io::Error,
    },
}

/// A running proxy from its listen address to one upstream server.
pub struct Proxy {
    address: SocketAddr,
    faults: watch::Sender<Faults>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `listen` (port 0 picks one) and passes connections to `upstream`.
    pub async fn start(listen: SocketAddr, upstream: String) -> Result<Proxy, ProxyError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ProxyError::Listen {
                address: listen,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| ProxyError::Listen {
            address: listen,
            source,
        })?;
        let (faults, _) = watch::channel(Faults::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, faults.subscribe()));
        Ok(Proxy {
            address,
            faults,
            accept,
        })
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Replaces the faults in force; open connections follow at their next chunk.
    pub fn set(&self, faults: Faults) {
        self.faults.send_replace(faults);
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults.borrow().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, faults: watch::Receiver<Faults>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if !faults.borrow().enabled {
            // Down: the nearest a listening socket gets to refusing.
            reset(&client);
            continue;
        }
        let upstream = upstream.clone();
        let faults = faults.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                reset(&client);
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let ending = tokio::select! {
                e = pipe(&client, &server, faults.clone()) => e,
                e = pipe(&server, &client, faults) => e,
            };
            if ending == Ending::Reset {
                reset(&client);
                reset(&server);
            }
        });
    }
}

/// Closing with a zero linger sends RST instead of FIN.
#[expect(
    deprecated,
    reason = "the deprecation is about a linger that blocks on drop; a zero linger never blocks"
)]
fn reset(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

/// How a connection ends: closed (FIN) or reset (RST).
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Close,
    Reset,
}

/// Passes one direction's bytes from `from` to `to` under the faults in force.
async fn pipe(from: &TcpStream, to: &TcpStream, mut faults: watch::Receiver<Faults>) -> Ending {
    let mut passed: u64 = 0;
    loop {
        let now = faults.borrow_and_update().clone();
        if !now.enabled {
            return Ending::Close;
        }
        if now.timeout {
            // A black hole: nothing is read, so nothing passes, and nothing closes.
            if faults.changed().await.is_err() {
                return Ending::Close;
            }
            continue;
        }
        tokio::select! {
            ready = from.readable() => if ready.is_err() { return Ending::Close },
            changed = faults.changed() => {
                if changed.is_err() { return Ending::Close }
                continue;
            }
        }
        let mut buffer = vec![0; now.chunk()];
        let read = match from.try_read(&mut buffer) {
            Ok(0) => return Ending::Close,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return Ending::Close,
        };
        let now = faults.borrow().clone();
        if now.reset {
            return Ending::Reset;
        }
        let allowed = now.limit_data.map_or(read as u64, |limit| {
            limit.saturating_sub(passed).min(read as u64)
        }) as usize;
        // A chunk arrives after its latency and its time on the wire.
        tokio::time::sleep(now.delay() + now.transfer_time(allowed)).await;
        if write_all(to, &buffer[..allowed]).await.is_err() {
            return Ending::Close;
        }
        passed += allowed as u64;
        if now.limit_data.is_some_and(|limit| passed >= limit) {
            return Ending::Close;
        }
    }
}

async fn write_all(to: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        to.writable().await?;
        match to.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
