//! The shared client speaks HTTPS through ring's provider in a process that
//! installed none itself: a TLS server on loopback, its certificate signed by
//! a test CA that only this client trusts.
//!
//! One test in this file, so that its process starts without a provider. The
//! certificates under `tls/` are test fixtures, valid 2000-2100: an ECDSA P-256
//! CA and a leaf for IP 127.0.0.1 it signed (`openssl ca` with `-startdate`, so
//! a clock behind the machine that made them still accepts them).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CA: &[u8] = include_bytes!("tls/ca.pem");
const CERTIFICATE: &[u8] = include_bytes!("tls/loopback.pem");
const KEY: &[u8] = include_bytes!("tls/loopback.key");

#[tokio::test]
async fn a_client_from_the_shared_builder_speaks_https_with_ring() {
    assert!(
        CryptoProvider::get_default().is_none(),
        "the process must start without a provider"
    );
    let (address, server) = serve_one_request();
    let client = metr_service::http_client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(CA).unwrap()])
        .https_only(true)
        .no_proxy()
        .build()
        .unwrap();

    let response = client
        .get(format!("https://{address}/"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    server.join().unwrap();
}

/// A TLS server on a free loopback port that answers one request `200 ok`,
/// with ring named explicitly: the process-wide provider is the client's to
/// install.
fn serve_one_request() -> (SocketAddr, JoinHandle<()>) {
    let chain = CertificateDer::pem_slice_iter(CERTIFICATE)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        let mut request = BufReader::new(&mut tls);
        let mut line = String::new();
        // The request's head ends at its first empty line; a GET has no body.
        while request.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
    });
    (address, server)
}
