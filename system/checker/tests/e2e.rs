//! End to end: gometr, the checker and the API as separate processes on a real
//! PostgreSQL; the checker reaches the database through a proxy that can cut
//! the connection to play an outage.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use metr_testkit::proxy::Proxy;
use serde_json::Value;

struct Stack {
    gometr: String,
    api: String,
    checker: Child,
    others: Vec<Child>,
    checker_health: String,
    database_url: String,
    proxy: Proxy,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in self
            .others
            .iter_mut()
            .chain(std::iter::once(&mut self.checker))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The gometr and api binaries beside the checker's, built if missing or
/// stale. `cargo test --workspace` has just built them; asking cargo again
/// would not be free even then: `cargo build -p gometr -p api` resolves other
/// features than the test build did and recompiles the crates that differ.
fn sibling_binaries() -> (PathBuf, PathBuf) {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let checker = Path::new(env!("CARGO_BIN_EXE_checker"));
    let profile_dir = checker.parent().expect("the binary's folder");
    let (gometr, api) = (profile_dir.join("gometr"), profile_dir.join("api"));
    BUILT.get_or_init(|| {
        let sources = newest_source();
        if built_after(&gometr, sources) && built_after(&api, sources) {
            return;
        }
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--bins", "-p", "gometr", "-p", "api"])
            .arg("--target-dir")
            .arg(profile_dir.parent().expect("the target folder"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "building gometr and api failed");
    });
    (gometr, api)
}

fn built_after(binary: &Path, sources: SystemTime) -> bool {
    binary
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|built| built > sources)
}

/// When the newest file gometr and the API are built from changed: the
/// system's crates (sources and manifests), the migrations the API embeds,
/// the workspace's manifest and lock file.
fn newest_source() -> SystemTime {
    let system = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = system.join("..");
    let mut roots = vec![
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join("migrations"),
    ];
    for entry in std::fs::read_dir(&system).expect("system/").flatten() {
        roots.push(entry.path().join("Cargo.toml"));
        roots.push(entry.path().join("src"));
    }
    roots
        .iter()
        .map(|root| newest_under(root))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn newest_under(path: &Path) -> SystemTime {
    let Ok(meta) = path.metadata() else {
        return SystemTime::UNIX_EPOCH;
    };
    if !meta.is_dir() {
        return meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| newest_under(&entry.path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A client through the shared builder, which installs the TLS provider
/// reqwest needs before any client is built.
fn http() -> reqwest::Client {
    metr_service::http_client::builder().build().unwrap()
}

/// Waits until `url` answers at all.
async fn answers(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while http().get(url).send().await.is_err() {
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start() -> Stack {
    start_with(false, FAST).await
}

/// The checker's schedule in most tests: fast, for small targets.
const FAST: &str = "interval: 250ms\ntimeout: 200ms";

/// Starts the processes; with `database_away`, the checker starts while its
/// path to the database is cut. `schedule` is the checker's interval and timeout.
async fn start_with(database_away: bool, schedule: &str) -> Stack {
    let db = metr_testkit::fresh_database().await;
    let cluster_port = metr_testkit::cluster().port;
    let proxy = Proxy::start(format!("127.0.0.1:{cluster_port}").parse().unwrap()).await;
    if database_away {
        proxy.cut();
    }
    let proxied_url = db.url.replace(
        &format!(":{cluster_port}/"),
        &format!(":{}/", proxy.addr.port()),
    );
    let (gometr_bin, api_bin) = sibling_binaries();

    let gometr_port = free_port();
    let gometr_url = format!("http://127.0.0.1:{gometr_port}");
    let gometr = Command::new(gometr_bin)
        .args(["--listen", &format!("127.0.0.1:{gometr_port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("checker.yaml");
    let listen_port = free_port();
    std::fs::write(
        &config,
        format!(
            "database_url: {proxied_url}\nlisten: 127.0.0.1:{listen_port}\n{schedule}\n\
             writer: {{ flush_interval: 100ms, min_backoff: 100ms, max_backoff: 500ms }}\n\
             targets:\n  - {{ name: gometr, kind: prometheus, url: '{gometr_url}' }}\n  \
             - {{ name: gometr-http, kind: http, url: '{gometr_url}/health' }}\n"
        ),
    )
    .unwrap();
    let checker = Command::new(env!("CARGO_BIN_EXE_checker"))
        .arg("--config")
        .arg(&config)
        .arg("--migrate")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // The API reads the database directly; only the checker's path is cut.
    let api_port = free_port();
    let api_url = format!("http://127.0.0.1:{api_port}");
    let api = Command::new(api_bin)
        .args([
            "--listen",
            &format!("127.0.0.1:{api_port}"),
            "--migrate",
            "--database-url",
            &db.url,
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stack = Stack {
        gometr: gometr_url,
        api: api_url,
        checker,
        others: vec![gometr, api],
        checker_health: format!("http://127.0.0.1:{listen_port}/health"),
        database_url: db.url.clone(),
        proxy,
        _dir: dir,
    };
    answers(&format!("{}/health", stack.gometr)).await;
    answers(&format!("{}/health", stack.api)).await;
    stack
}

async fn get(url: &str) -> Option<Value> {
    http().get(url).send().await.ok()?.json().await.ok()
}

/// Polls `url` until `pred` holds on its JSON, or fails after `timeout`.
async fn eventually(url: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Some(body) = get(url).await {
            if pred(&body) {
                return body;
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not satisfy the condition within {timeout:?}; last body: {last}");
}

/// The `data` list, or nothing while the API still answers errors (e.g. before
/// the checker has migrated the database).
fn data(body: &Value) -> &[Value] {
    body["data"].as_array().map_or(&[], Vec::as_slice)
}

/// Waits until the checker's `/health` fails and says the database is why.
async fn health_fails_naming_the_database(stack: &Stack) {
    let health = eventually(&stack.checker_health, Duration::from_secs(10), |b| {
        b["status"] == "fail"
    })
    .await;
    assert!(
        health["output"].as_str().unwrap_or("").contains("database"),
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_and_samples_come_out_of_the_api_and_follow_gometr_health() {
    let stack = start().await;
    let checks = format!("{}/api/v1/checks?target=gometr", stack.api);
    eventually(&checks, Duration::from_secs(10), |b| {
        data(b).iter().any(|c| c["status"] == "up")
    })
    .await;
    let up = format!("{}/api/v1/metrics?target=gometr&name=up", stack.api);
    let body = eventually(&up, Duration::from_secs(10), |b| !data(b).is_empty()).await;
    assert_eq!(data(&body)[0]["value"], 1.0);
    let probes = format!(
        "{}/api/v1/metrics?target=gometr-http&name=probe_success",
        stack.api
    );
    eventually(&probes, Duration::from_secs(10), |b| {
        data(b).first().is_some_and(|s| s["value"] == 1.0)
    })
    .await;

    let client = http();
    let put = client
        .put(format!("{}/control", stack.gometr))
        .json(&serde_json::json!({"health": "fail"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let down = format!("{}/api/v1/checks?target=gometr&status=down", stack.api);
    let body = eventually(&down, Duration::from_secs(10), |b| !data(b).is_empty()).await;
    assert_eq!(data(&body)[0]["http_status"], 503);

    let targets = eventually(
        &format!("{}/api/v1/targets", stack.api),
        Duration::from_secs(5),
        |b| data(b).len() == 2,
    )
    .await;
    assert_eq!(data(&targets)[0]["name"], "gometr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_no_scrape_and_sigterm_flushes_and_exits_zero() {
    let mut stack = start().await;
    let scrapes = format!(
        "{}/api/v1/metrics?target=gometr&name=gometr_scrapes_total&limit=1000",
        stack.api
    );
    eventually(&scrapes, Duration::from_secs(10), |b| data(b).len() >= 3).await;

    stack.proxy.cut();
    health_fails_naming_the_database(&stack).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.proxy.restore();
    eventually(&stack.checker_health, Duration::from_secs(10), |b| {
        b["status"] == "pass"
    })
    .await;

    // Stop the checker: it must flush what it holds and exit 0.
    // SAFETY: kill(2) on the pid of our own, still running child.
    unsafe {
        libc::kill(stack.checker.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = stack.checker.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "checker did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "checker exited with {status}");

    let body = get(&scrapes).await.unwrap();
    let mut values: Vec<i64> = data(&body)
        .iter()
        .map(|s| s["value"].as_f64().unwrap() as i64)
        .collect();
    values.sort();
    assert!(values.len() >= 10, "{values:?}");
    let gaps: Vec<_> = values.windows(2).filter(|w| w[1] != w[0] + 1).collect();
    assert!(
        gaps.is_empty(),
        "lost scrapes around the outage: {gaps:?} in {values:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checker_started_before_its_database_waits_for_it_and_reports_fail_meanwhile() {
    let mut stack = start_with(true, FAST).await;
    health_fails_naming_the_database(&stack).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        stack.checker.try_wait().unwrap().is_none(),
        "the checker must wait for its database, not exit"
    );
    stack.proxy.restore();
    let checks = format!("{}/api/v1/checks?target=gometr", stack.api);
    eventually(&checks, Duration::from_secs(15), |b| !data(b).is_empty()).await;
    eventually(&stack.checker_health, Duration::from_secs(10), |b| {
        b["status"] == "pass"
    })
    .await;
}

/// A line of the checker's `/proc/PID/status`, in bytes (`VmRSS`, `VmHWM`).
fn process_memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// A gauge of the checker's own `/metrics`.
async fn checker_gauge(stack: &Stack, name: &str) -> f64 {
    let url = stack.checker_health.replace("/health", "/metrics");
    let text = http().get(&url).send().await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in the checker's metrics"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn stored_samples(database_url: &str, name: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .query_one(
            "SELECT count(*) FROM sample_values WHERE name = $1",
            &[&name],
        )
        .await
        .map_or(0, |row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200k_series_scrape_at_the_default_limits_is_stored_within_the_stated_memory_bound() {
    const SERIES: u32 = 199_000;
    let stack = start_with(false, "interval: 5s\ntimeout: 4s").await;
    let checks = format!("{}/api/v1/checks?target=gometr", stack.api);
    eventually(&checks, Duration::from_secs(20), |b| !data(b).is_empty()).await;
    let pid = stack.checker.id();
    let steady = process_memory(pid, "VmRSS");

    let control = http()
        .put(format!("{}/control", stack.gometr))
        .json(&serde_json::json!({ "extra_series": SERIES }))
        .send()
        .await
        .unwrap();
    assert!(control.status().is_success(), "{:?}", control.status());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = stored_samples(&stack.database_url, "gometr_synthetic_series").await;
        if stored >= i64::from(SERIES) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {SERIES} samples stored within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let peak = process_memory(pid, "VmHWM");
    let bound = checker_gauge(&stack, "checker_memory_bound_bytes").await as u64;
    assert!(
        peak < bound,
        "peak {peak} bytes is over the stated bound of {bound} bytes"
    );
    let per_series = peak.saturating_sub(steady) / u64::from(SERIES);
    eprintln!("steady {steady} B, peak {peak} B, bound {bound} B, {per_series} B per new series");
    assert!(
        per_series <= 1024,
        "{per_series} bytes per new series above the steady {steady} bytes (peak {peak})"
    );
    assert_eq!(
        checker_gauge(&stack, "checker_dropped_samples_total").await,
        0.0
    );
}

#[test]
fn a_configuration_that_cannot_fit_its_memory_limit_is_refused_naming_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("checker.yaml");
    std::fs::write(
        &config,
        "database_url: postgres://u:p@127.0.0.1:1/metr\nmemory_limit_bytes: 134217728\n\
         targets:\n  - { name: big, kind: prometheus, url: 'http://127.0.0.1:1' }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_checker"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for named in [
        "128 MiB",
        "sample_limit",
        "max_body_bytes",
        "writer.buffer_samples",
    ] {
        assert!(stderr.contains(named), "{named:?} missing from: {stderr}");
    }

    // Migrating scrapes nothing: the same configuration may migrate (here it
    // waits for its missing database instead of exiting 2).
    let mut migrate = Command::new(env!("CARGO_BIN_EXE_checker"))
        .arg("--config")
        .arg(&config)
        .arg("migrate")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let migrate_status = migrate.try_wait().unwrap();
    let _ = migrate.kill();
    let _ = migrate.wait();
    assert!(
        migrate_status.is_none_or(|s| s.code() != Some(2)),
        "migrate was refused: {migrate_status:?}"
    );

    // The same target within a limit it fits is not refused: it starts (and
    // waits for its database, which is not there).
    std::fs::write(
        &config,
        "database_url: postgres://u:p@127.0.0.1:1/metr\nmemory_limit_bytes: 1073741824\n\
         listen: 127.0.0.1:0\ntargets:\n  - { name: big, kind: prometheus, url: 'http://127.0.0.1:1' }\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_checker"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "a configuration that fits must start");
}
