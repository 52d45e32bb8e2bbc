//! Listening for a link's clients and passing their bytes to the server, with
//! the link's faults applied to each chunk in each direction.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::faults::{Faults, Streams};

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
    upstream: String,
    streams: watch::Sender<Streams>,
    /// How many client connections are open.
    open: Arc<watch::Sender<usize>>,
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
        let (streams, _) = watch::channel(Streams::default());
        let open = Arc::new(watch::channel(0).0);
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream.clone(),
            streams.subscribe(),
            open.clone(),
        ));
        Ok(Proxy {
            address,
            upstream,
            streams,
            open,
            accept,
        })
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where connections go.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Puts the same faults on both directions; open connections follow at their next chunk.
    pub fn set(&self, faults: Faults) {
        self.set_streams(Streams::both(faults));
    }

    /// Puts faults on each direction; open connections follow at their next chunk.
    pub fn set_streams(&self, streams: Streams) {
        self.streams.send_replace(streams);
    }

    /// The faults in force on each direction.
    pub fn streams(&self) -> Streams {
        self.streams.borrow().clone()
    }

    /// How many client connections are open.
    pub fn open_connections(&self) -> usize {
        *self.open.borrow()
    }

    /// Waits until no client connection is open (after taking the link down),
    /// for at most `within`; says whether they all closed.
    pub async fn drained(&self, within: Duration) -> bool {
        let mut open = self.open.subscribe();
        tokio::time::timeout(within, open.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Counts a connection as open while it lives.
struct OpenGuard(Arc<watch::Sender<usize>>);

impl OpenGuard {
    fn new(open: Arc<watch::Sender<usize>>) -> OpenGuard {
        open.send_modify(|n| *n += 1);
        OpenGuard(open)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    streams: watch::Receiver<Streams>,
    open: Arc<watch::Sender<usize>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if !streams.borrow().enabled() {
            // Down: the nearest a listening socket gets to refusing.
            reset(&client);
            continue;
        }
        let upstream = upstream.clone();
        let streams = streams.clone();
        let guard = OpenGuard::new(open.clone());
        tokio::spawn(async move {
            let _guard = guard;
            // Resolved on each connection: a server reconnected after a
            // partition may have a new address under the same name.
            let Ok(server) = TcpStream::connect(&upstream).await else {
                reset(&client);
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let ending = tokio::select! {
                e = pipe(&client, &server, streams.clone(), upstream_faults) => e,
                e = pipe(&server, &client, streams.clone(), downstream_faults) => e,
            };
            match ending {
                Ending::Reset => {
                    reset(&client);
                    reset(&server);
                }
                Ending::Close => {
                    let now = streams.borrow().clone();
                    let delay = now.upstream.slow_close.max(now.downstream.slow_close);
                    if now.enabled() && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        });
    }
}

fn upstream_faults(streams: &Streams) -> &Faults {
    &streams.upstream
}

fn downstream_faults(streams: &Streams) -> &Faults {
    &streams.downstream
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

/// Passes one direction's bytes from `from` to `to` under that direction's faults.
async fn pipe(
    from: &TcpStream,
    to: &TcpStream,
    mut streams: watch::Receiver<Streams>,
    direction: fn(&Streams) -> &Faults,
) -> Ending {
    let mut passed: u64 = 0;
    loop {
        let (enabled, now) = {
            let streams = streams.borrow_and_update();
            (streams.enabled(), direction(&streams).clone())
        };
        if !enabled {
            return Ending::Close;
        }
        if now.timeout {
            // A black hole: nothing is read, so nothing passes, and nothing
            // closes unless the toxic says when.
            let close = async {
                match now.timeout_after {
                    Some(after) => tokio::time::sleep(after).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = close => return Ending::Close,
                changed = streams.changed() => if changed.is_err() { return Ending::Close },
            }
            continue;
        }
        tokio::select! {
            ready = from.readable() => if ready.is_err() { return Ending::Close },
            changed = streams.changed() => {
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
        let now = direction(&streams.borrow()).clone();
        if now.reset {
            return Ending::Reset;
        }
        let allowed = now.limit_data.map_or(read as u64, |limit| {
            limit.saturating_sub(passed).min(read as u64)
        }) as usize;
        // A chunk arrives after its latency and its time on the wire; taking
        // the link down meanwhile closes the connection at once.
        if !wait_unless_down(now.delay() + now.transfer_time(allowed), &mut streams).await {
            return Ending::Close;
        }
        if write_all(to, &buffer[..allowed]).await.is_err() {
            return Ending::Close;
        }
        passed += allowed as u64;
        if now.limit_data.is_some_and(|limit| passed >= limit) {
            return Ending::Close;
        }
    }
}

/// Sleeps for `wait`; false if the link went down (or the proxy went away) meanwhile.
async fn wait_unless_down(wait: Duration, streams: &mut watch::Receiver<Streams>) -> bool {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            changed = streams.changed() => {
                if changed.is_err() || !streams.borrow_and_update().enabled() {
                    return false;
                }
            }
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
