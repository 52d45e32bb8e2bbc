//! A throwaway PostgreSQL cluster for tests, started from the host installation.
//!
//! One cluster per test process (initdb takes a second or two), one fresh database
//! per test. `initdb` and `postgres` refuse to run as root, so under root (as in
//! CI) both run as the `postgres` system user. The server is started by a shell
//! that dies with this process and then removes the data directory, so nothing
//! is left behind even when a test panics.

pub mod proxy;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running cluster reachable on 127.0.0.1.
pub struct Cluster {
    pub port: u16,
    pub data_dir: PathBuf,
}

/// A database of its own for one test.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The process-wide cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER
        .get_or_init(|| Cluster::start().unwrap_or_else(|e| panic!("start a test PostgreSQL: {e}")))
}

/// Creates an empty database on the shared cluster.
pub async fn fresh_database() -> TestDatabase {
    let cluster = cluster();
    let name = format!("t_{:016x}", rand::random::<u64>());
    let admin = cluster.url("postgres");
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = task.await;
    TestDatabase {
        url: cluster.url(&name),
        name,
    }
}

struct Account {
    uid: u32,
    gid: u32,
}

/// The `postgres` account when we are root: the server must not run as root.
fn service_account() -> Option<Account> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&"postgres") || fields.len() < 4 {
            return None;
        }
        Some(Account {
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
        })
    })
}

/// Directory holding `initdb` and `postgres`, newest major version first.
fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| {
            "PostgreSQL is not installed (no /usr/lib/postgresql); install postgresql or set PG_BIN"
                .to_owned()
        })?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    candidates.sort();
    candidates
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

fn as_account(command: &mut Command, account: &Option<Account>) {
    if let Some(account) = account {
        // std also drops root's supplementary groups when a uid is set.
        command.uid(account.uid).gid(account.gid);
    }
}

impl Cluster {
    fn start() -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let account = service_account();
        let dir = tempfile::Builder::new()
            .prefix("metr-testpg-")
            .tempdir()
            .map_err(|e| format!("make a temp dir: {e}"))?
            .keep();
        if let Some(a) = &account {
            std::os::unix::fs::chown(&dir, Some(a.uid), Some(a.gid))
                .map_err(|e| format!("chown {dir:?}: {e}"))?;
        }
        let data = dir.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_account(&mut initdb, &account);
        let out = initdb.output().map_err(|e| format!("run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port();
        spawn_server(&bin, &dir, &data, port, account)?;
        let cluster = Cluster {
            port,
            data_dir: data,
        };
        cluster.wait_ready(&dir)?;
        Ok(cluster)
    }

    /// URL of a database on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn wait_ready(&self, dir: &Path) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && dir.join("data/postmaster.pid").exists()
            {
                // Accepting TCP is not accepting logins: probe with a real query.
                let url = self.url("postgres");
                let ok = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                            .await
                            .ok()?;
                        tokio::spawn(conn);
                        client.simple_query("SELECT 1").await.ok()
                    })
                })
                .join()
                .ok()
                .flatten()
                .is_some();
                if ok {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        Err(format!(
            "the test PostgreSQL did not become ready within 30 s; its log:\n{log}"
        ))
    }
}

/// Starts the server under a shell that stops it and deletes its files when this
/// process exits. The shell is spawned from a thread that lives as long as the
/// process, because the parent-death signal follows the spawning thread.
fn spawn_server(
    bin: &Path,
    dir: &Path,
    data: &Path,
    port: u16,
    account: Option<Account>,
) -> Result<(), String> {
    let script = r#"
        "$PG_BIN/postgres" -D "$DATA" -p "$PORT" -h 127.0.0.1 -k "$DIR" \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c max_connections=300 -c shared_buffers=64MB >"$DIR/server.log" 2>&1 &
        pid=$!
        trap 'kill -INT $pid 2>/dev/null; wait $pid; rm -rf "$DIR"; exit 0' TERM INT HUP
        wait $pid
        rm -rf "$DIR"
    "#;
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", script])
        .env("PG_BIN", bin)
        .env("DATA", data)
        .env("DIR", dir)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_account(&mut command, &account);
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || {
            let child = command.spawn();
            let failed = child.as_ref().err().map(|e| e.to_string());
            let _ = tx.send(failed);
            if let Ok(mut child) = child {
                let _ = child.wait();
            }
            // Keep the thread alive for the life of the process.
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("spawn the postgres thread: {e}"))?;
    match rx.recv() {
        Ok(None) => Ok(()),
        Ok(Some(e)) => Err(format!("start postgres: {e}")),
        Err(_) => Err("the postgres thread died".into()),
    }
}
