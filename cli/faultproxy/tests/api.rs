//! The control API over HTTP, in process on port 0: proxies and toxics are
//! created, replaced and removed the way Toxiproxy's clients do it, and a
//! toxic changes real traffic through the proxy.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use metrtest_faultproxy::api::{Application, ProxyView};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;
use support::echo_server;

/// A client for the control API. The workspace's reqwest brings no crypto
/// provider of its own (no aws-lc C build) and panics without one installed,
/// even for plain HTTP; this crate has no TLS otherwise, so ring's is
/// installed here rather than through the services' `metr-service`.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

struct Control {
    base: String,
    http: reqwest::Client,
}

impl Control {
    async fn start() -> Control {
        let app = Application::build("127.0.0.1:0".parse().unwrap(), vec![])
            .await
            .unwrap();
        let base = format!("http://{}", app.address());
        tokio::spawn(app.run_until_stopped());
        Control { base, http: http() }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A proxy named `echo` in front of a fresh echo server; its listen address.
    async fn echo_proxy(&self) -> SocketAddr {
        let upstream = echo_server().await;
        let (status, body) = self
            .send(
                "POST",
                "/proxies",
                Some(json!({"name": "echo", "listen": "127.0.0.1:0", "upstream": upstream.to_string()})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let view: ProxyView = serde_json::from_value(body).unwrap();
        view.listen.parse().unwrap()
    }
}

async fn round_trip(address: SocketAddr) -> Duration {
    let mut client = TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    client.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");
    started.elapsed()
}

#[tokio::test]
async fn a_created_proxy_is_listed_and_a_second_of_that_name_is_a_conflict() {
    let control = Control::start().await;
    control.echo_proxy().await;

    let (listed, proxies) = control.send("GET", "/proxies", None).await;
    let (again, error) = control
        .send(
            "POST",
            "/proxies",
            Some(json!({"name": "echo", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"})),
        )
        .await;

    assert_eq!(listed, StatusCode::OK);
    assert_eq!(proxies["echo"]["enabled"], true);
    assert_eq!(proxies["echo"]["toxics"], json!([]));
    assert_eq!(again, StatusCode::CONFLICT);
    assert_eq!(error["error"], "proxy \"echo\" already exists");
}

#[tokio::test]
async fn a_latency_toxic_slows_traffic_and_removing_it_restores_it() {
    let control = Control::start().await;
    let address = control.echo_proxy().await;
    let before = round_trip(address).await;

    let (added, toxic) = control
        .send(
            "POST",
            "/proxies/echo/toxics",
            Some(json!({"type": "latency", "attributes": {"latency": 400}})),
        )
        .await;
    let slowed = round_trip(address).await;
    let (removed, _) = control
        .send("DELETE", "/proxies/echo/toxics/latency_downstream", None)
        .await;
    let after = round_trip(address).await;

    assert_eq!(added, StatusCode::OK, "{toxic}");
    assert_eq!(toxic["name"], "latency_downstream");
    assert!(before < Duration::from_millis(200), "{before:?}");
    assert!(
        slowed >= Duration::from_millis(400) && slowed < Duration::from_millis(700),
        "{slowed:?}"
    );
    assert_eq!(removed, StatusCode::NO_CONTENT);
    assert!(after < Duration::from_millis(200), "{after:?}");
}

#[tokio::test]
async fn updating_a_toxic_replaces_its_value() {
    let control = Control::start().await;
    let address = control.echo_proxy().await;
    control
        .send(
            "POST",
            "/proxies/echo/toxics",
            Some(json!({"name": "slow", "type": "latency", "stream": "upstream", "attributes": {"latency": 800}})),
        )
        .await;

    let (updated, toxic) = control
        .send(
            "POST",
            "/proxies/echo/toxics/slow",
            Some(json!({"attributes": {"latency": 100}})),
        )
        .await;
    let took = round_trip(address).await;
    let (_, shown) = control.send("GET", "/proxies/echo/toxics/slow", None).await;

    assert_eq!(updated, StatusCode::OK, "{toxic}");
    assert_eq!(shown["attributes"]["latency"], 100);
    assert_eq!(shown["stream"], "upstream");
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_millis(400),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_disabled_proxy_has_closed_its_connections_when_the_call_returns() {
    let control = Control::start().await;
    let address = control.echo_proxy().await;
    let mut open = TcpStream::connect(address).await.unwrap();
    open.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    open.read_exact(&mut one).await.unwrap();

    let (disabled, view) = control
        .send("POST", "/proxies/echo", Some(json!({"enabled": false})))
        .await;
    let mut buffer = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_millis(200), open.read(&mut buffer)).await;
    let (enabled, _) = control
        .send("POST", "/proxies/echo", Some(json!({"enabled": true})))
        .await;
    let after = round_trip(address).await;

    assert_eq!(disabled, StatusCode::OK);
    assert_eq!(view["enabled"], false);
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert_eq!(enabled, StatusCode::OK);
    assert!(after < Duration::from_millis(200), "{after:?}");
}

#[tokio::test]
async fn reset_removes_every_toxic_and_enables_every_proxy() {
    let control = Control::start().await;
    let address = control.echo_proxy().await;
    control
        .send(
            "POST",
            "/proxies/echo/toxics",
            Some(json!({"type": "timeout"})),
        )
        .await;
    control
        .send("POST", "/proxies/echo", Some(json!({"enabled": false})))
        .await;

    let (status, _) = control.send("POST", "/reset", None).await;
    let (_, view) = control.send("GET", "/proxies/echo", None).await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(view["enabled"], true);
    assert_eq!(view["toxics"], json!([]));
    assert!(round_trip(address).await < Duration::from_millis(200));
}

#[tokio::test]
async fn mistakes_are_answered_with_toxiproxys_error_body() {
    let control = Control::start().await;
    control.echo_proxy().await;

    let cases = [
        (
            "GET",
            "/proxies/nope",
            None,
            StatusCode::NOT_FOUND,
            "proxy \"nope\" not found",
        ),
        (
            "DELETE",
            "/proxies/echo/toxics/nope",
            None,
            StatusCode::NOT_FOUND,
            "toxic \"nope\" not found on proxy \"echo\"",
        ),
        (
            "POST",
            "/proxies/echo/toxics",
            Some(json!({"type": "loss"})),
            StatusCode::BAD_REQUEST,
            "unknown toxic type \"loss\"",
        ),
        (
            "POST",
            "/proxies/echo",
            Some(json!({"upstream": "elsewhere:1"})),
            StatusCode::BAD_REQUEST,
            "upstream cannot change here",
        ),
    ];
    for (method, path, body, status, words) in cases {
        let (got, error) = control.send(method, path, body).await;
        assert_eq!(got, status, "{method} {path}");
        assert_eq!(error["status"], status.as_u16());
        assert!(
            error["error"].as_str().unwrap().contains(words),
            "{method} {path}: {error}"
        );
    }
}

/// The README's `curl` example for a link, found in the README itself.
fn readme_curl() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("curl -X POST $URL/proxies/")
        .expect("the README shows how to cut a link with curl");
    let line = &readme[start..];
    let end = line.find("'`").or_else(|| line.find("'\n")).unwrap() + 1;
    line[..end].to_owned()
}

#[tokio::test]
async fn the_readmes_curl_line_works_verbatim_and_every_mistake_is_a_json_error() {
    let control = Control::start().await;
    let command = readme_curl();
    let name = command
        .split("/proxies/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let upstream = echo_server().await;
    let (status, _) = control
        .send(
            "POST",
            "/proxies",
            Some(json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream.to_string()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // curl -d sends application/x-www-form-urlencoded: read as JSON anyway.
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} -sS -w '\\n%{{http_code}}'"))
        .env("URL", &control.base)
        .output()
        .await
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with("\n200"), "{command}: {stdout}");
    let (_, view) = control.send("GET", &format!("/proxies/{name}"), None).await;
    assert_eq!(view["enabled"], false, "{command} cut the link");

    let raw = |method: &'static str, path: &'static str, body: &'static str| {
        let http = http();
        let url = format!("{}{path}", control.base);
        async move {
            let response = http
                .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
                .header("content-type", "text/plain")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            (status, text)
        }
    };
    for (method, path, body, status) in [
        ("POST", "/proxies", "{not json", StatusCode::BAD_REQUEST),
        ("POST", "/proxies", "{\"name\": 1}", StatusCode::BAD_REQUEST),
        ("GET", "/nowhere", "", StatusCode::NOT_FOUND),
        ("PUT", "/proxies", "{}", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let (got, text) = raw(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {text}");
        let error: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!(error["status"], status.as_u16(), "{error}");
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{error}"
        );
    }
}
