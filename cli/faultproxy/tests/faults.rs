//! Each fault on a loopback echo server, measured on the real clock: the
//! proxy's timing is what is under test, so tokio's paused clock cannot stand in.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use metrtest_faultproxy::faults::Faults;
use metrtest_faultproxy::proxy::Proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;
use support::echo_server;

/// A server that reads one connection to its end and says how many bytes came.
async fn counting_server() -> (SocketAddr, tokio::sync::oneshot::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (tell, told) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all).await;
        let _ = tell.send(all.len());
    });
    (address, told)
}

async fn proxy_to_echo(faults: Faults) -> Proxy {
    let echo = echo_server().await;
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), echo.to_string())
        .await
        .unwrap();
    proxy.set(faults);
    proxy
}

/// Sends `bytes` and reads as many back, returning how long the round trip took.
async fn round_trip(client: &mut TcpStream, bytes: usize) -> Duration {
    let sent = vec![7u8; bytes];
    let started = Instant::now();
    let (mut r, mut w) = client.split();
    let write = async {
        w.write_all(&sent).await.unwrap();
    };
    let read = async {
        let mut back = vec![0u8; bytes];
        r.read_exact(&mut back).await.unwrap();
        assert_eq!(back, sent);
    };
    tokio::join!(write, read);
    started.elapsed()
}

#[tokio::test]
async fn without_faults_bytes_pass_unchanged_and_promptly() {
    let proxy = proxy_to_echo(Faults::default()).await;
    let mut client = TcpStream::connect(proxy.address()).await.unwrap();

    let took = round_trip(&mut client, 100_000).await;

    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[tokio::test]
async fn latency_is_added_to_each_direction_within_tolerance() {
    let latency = Duration::from_millis(300);
    let proxy = proxy_to_echo(Faults {
        latency,
        ..Faults::default()
    })
    .await;
    let mut client = TcpStream::connect(proxy.address()).await.unwrap();

    let took = round_trip(&mut client, 10).await;

    assert!(took >= 2 * latency, "{took:?}");
    assert!(took < 2 * latency + Duration::from_millis(150), "{took:?}");
}

#[tokio::test]
async fn bandwidth_is_within_twenty_percent_of_the_limit() {
    // 40 KB at 50 KB/s each way: the echo's return trails by one chunk only.
    let proxy = proxy_to_echo(Faults {
        bandwidth: Some(50_000),
        ..Faults::default()
    })
    .await;
    let mut client = TcpStream::connect(proxy.address()).await.unwrap();

    let took = round_trip(&mut client, 40_000).await;

    let expected = Duration::from_millis(800);
    assert!(took >= expected.mul_f64(0.8), "{took:?}");
    assert!(took <= expected.mul_f64(1.2), "{took:?}");
}

#[tokio::test]
async fn reset_is_seen_by_the_client_as_a_reset() {
    let proxy = proxy_to_echo(Faults {
        reset: true,
        ..Faults::default()
    })
    .await;
    let mut client = TcpStream::connect(proxy.address()).await.unwrap();

    client.write_all(b"hello").await.unwrap();
    let mut buffer = [0u8; 16];
    let read = client.read(&mut buffer).await;

    let error = read.expect_err("a reset, not data or a clean end");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn limit_data_closes_the_connection_at_the_byte_count() {
    let (server, received) = counting_server().await;
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), server.to_string())
        .await
        .unwrap();
    proxy.set(Faults {
        limit_data: Some(100),
        ..Faults::default()
    });
    let mut client = TcpStream::connect(proxy.address()).await.unwrap();

    let _ = client.write_all(&[1u8; 300]).await;
    let mut buffer = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), client.read(&mut buffer)).await;
    let received = tokio::time::timeout(Duration::from_secs(2), received).await;

    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert!(matches!(received, Ok(Ok(100))), "{received:?}");
}

#[tokio::test]
async fn a_black_hole_passes_nothing_and_closes_nothing_until_cleared() {
    let proxy = proxy_to_echo(Faults {
        timeout: true,
        ..Faults::default()
    })
    .await;
    let mut client = TcpStream::connect(proxy.address()).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut buffer = [0u8; 5];

    let held = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buffer)).await;
    proxy.set(Faults::default());
    let after = tokio::time::timeout(Duration::from_secs(2), client.read_exact(&mut buffer)).await;

    assert!(held.is_err(), "nothing passes and nothing closes: {held:?}");
    assert!(matches!(after, Ok(Ok(5))), "{after:?}");
    assert_eq!(&buffer, b"hello");
}

#[tokio::test]
async fn down_closes_open_connections_and_turns_new_ones_away() {
    let proxy = proxy_to_echo(Faults::default()).await;
    let mut open = TcpStream::connect(proxy.address()).await.unwrap();
    round_trip(&mut open, 10).await;

    proxy.set(Faults {
        enabled: false,
        ..Faults::default()
    });
    let mut buffer = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buffer)).await;
    let mut fresh = TcpStream::connect(proxy.address()).await.unwrap();
    let _ = fresh.write_all(b"x").await;
    let turned_away = tokio::time::timeout(Duration::from_secs(2), fresh.read(&mut buffer)).await;

    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert!(
        matches!(turned_away, Ok(Ok(0)) | Ok(Err(_))),
        "{turned_away:?}"
    );
}
