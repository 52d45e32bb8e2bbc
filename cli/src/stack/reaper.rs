//! Each run's reaper: a container of the run (service `reaper`) that removes
//! the run's labelled resources once this process is gone, SIGKILL included,
//! or once the run's time to live is over. See `cli/reaper` for its side.
//!
//! It is built here like the service images (a static binary `FROM scratch`,
//! no registry), reaches the engine through its socket mounted read-only, and
//! this process holds a TCP connection to it for as long as it owns the run.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::error::{EngineError, Result};
use crate::engine::{Attachment, Client, ContainerRequest, Publish, labels};
use crate::stack::images;
use crate::stack::progress::Progress;
use crate::stack::published_port;

/// The workspace package of the reaper binary.
const PACKAGE: &str = "metrtest-reaper";
/// Where the reaper finds the engine's socket inside its container.
const SOCKET_INSIDE: &str = "/var/run/docker.sock";
/// The reaper's port inside its container (`metrtest_reaper::PORT`).
const PORT: u16 = 8080;
/// How long the reaper may take to start answering.
const CONNECT_WITHIN: Duration = Duration::from_secs(15);

/// Who owns a run, shown by `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A `metrtest run` stack.
    Run,
    /// A `metrtest up` stack, foreground or detached.
    Up,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Run => "run",
            Owner::Up => "up",
        }
    }
}

/// Connections this process holds to its runs' reapers, by run id: while one
/// is open, its run is alive; the kernel closes them when the process dies.
static HELD: Mutex<Vec<(String, TcpStream)>> = Mutex::new(Vec::new());

/// Builds the reaper's image (compiling its static binary) unless the engine has it.
pub async fn image(engine: &Client, progress: &Progress) -> Result<String> {
    images::helper_image(engine, PACKAGE, labels::REAPER_SERVICE, progress).await
}

/// The reaper's image, or `None` after a warning when it cannot be built here
/// (e.g. no workspace to build it from): runs then go without a reaper
/// rather than not at all.
pub async fn image_or_warn(engine: &Client, progress: &Progress) -> Option<String> {
    match image(engine, progress).await {
        Ok(image) => Some(image),
        Err(e) => {
            progress.warn(format!("cannot build the reaper image: {e}"));
            None
        }
    }
}

/// The engine socket's path on the engine's host, if the engine is local.
///
/// A remote engine (tcp, ssh) gets no reaper: its socket's path on its host is
/// not known here, and a socket of the same path could be another engine's
/// (a reaper there would guard nothing); the reaper's port would also have to
/// be published on every address of that host. The run warns instead.
fn host_socket() -> Option<String> {
    crate::engine::endpoint::current()
        .ok()
        .and_then(|e| e.socket())
        .map(str::to_owned)
}

fn request(image: &str, run_id: &str, owner: Owner, socket: &str) -> ContainerRequest {
    let mut labels = labels::run_labels(run_id, Some(labels::REAPER_SERVICE));
    labels.insert(
        labels::STARTED.into(),
        chrono::Utc::now().timestamp().to_string(),
    );
    labels.insert(labels::OWNER.into(), owner.as_str().into());
    ContainerRequest {
        name: labels::container_name(run_id, labels::REAPER_SERVICE),
        service: labels::REAPER_SERVICE.to_owned(),
        image: image.to_owned(),
        env: vec![
            format!("METRTEST_REAPER_RUN={run_id}"),
            format!("METRTEST_REAPER_SOCKET={SOCKET_INSIDE}"),
        ],
        // Root only to open the socket (owned by root); no capabilities.
        user: Some("0:0".into()),
        labels,
        publish: Some(Publish {
            port: PORT,
            host_ip: "127.0.0.1".into(),
            host_port: None,
        }),
        binds: vec![format!("{socket}:{SOCKET_INSIDE}:ro")],
        // Once it has removed the run and exited, the engine removes it too.
        auto_remove: true,
        read_only: true,
        hardened: true,
        memory: Some(32 * 1024 * 1024),
        pids: Some(64),
        attach: Attachment::Default,
        ..Default::default()
    }
}

/// Starts the run's reaper and takes ownership of the run. Call it before
/// creating anything else of the run. Returns `false` when there is no reaper
/// image or the engine is not local (no socket to mount): the run then has no
/// reaper.
pub async fn start(
    engine: &Client,
    image: Option<&str>,
    run_id: &str,
    owner: Owner,
) -> Result<bool> {
    let (Some(image), Some(socket)) = (image, host_socket()) else {
        return Ok(false);
    };
    let request = request(image, run_id, owner, &socket);
    let name = &request.name;
    engine.create_container(&request).await?;
    engine.start_container(name, &request.service).await?;
    let port = published_port(engine, name, PORT).await?;
    let run = run_id.to_owned();
    let connect_failed = |reason: String| EngineError::ConnectReaper {
        run: run_id.to_owned(),
        reason,
    };
    let stream = tokio::task::spawn_blocking(move || hold(port, &run))
        .await
        .map_err(|e| connect_failed(e.to_string()))?
        .map_err(connect_failed)?;
    HELD.lock()
        .expect("held reapers")
        .push((run_id.to_owned(), stream));
    Ok(true)
}

/// Closes this process's connection to a run's reaper: the run was removed,
/// or handed over to its time to live.
pub fn forget(run_id: &str) {
    HELD.lock()
        .expect("held reapers")
        .retain(|(r, _)| r != run_id);
}

/// The warning for a run without a reaper.
pub const NO_REAPER: &str = "the engine is not local (DOCKER_HOST or the Docker context is not unix://): this run has no reaper, so a killed metrtest leaves its stack (remove it with `metrtest down --run ID`) and `--ttl` does not apply";

/// Connects to the reaper on `port`, checks it guards `run`, and says `hold`.
fn hold(port: u16, run: &str) -> std::result::Result<TcpStream, String> {
    let deadline = Instant::now() + CONNECT_WITHIN;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match greet(port, run) {
            Ok(mut stream) => {
                command(&mut stream, "hold")?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "no answer on 127.0.0.1:{port} within {CONNECT_WITHIN:?}: {last}"
    ))
}

fn greet(port: u16, run: &str) -> std::result::Result<TcpStream, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let greeting = read_line(&mut stream)?;
    if greeting != format!("metrtest-reaper {run}") {
        return Err(format!("unexpected greeting {greeting:?}"));
    }
    Ok(stream)
}

/// Sends one command line and returns the answer; an `error: ...` answer is an error.
fn command(stream: &mut TcpStream, line: &str) -> std::result::Result<String, String> {
    writeln!(stream, "{line}").map_err(|e| format!("send {line:?}: {e}"))?;
    let answer = read_line(stream)?;
    match answer.strip_prefix("error: ") {
        Some(why) => Err(why.to_owned()),
        None => Ok(answer),
    }
}

/// One line, read byte by byte (no buffer may swallow a later answer).
fn read_line(stream: &mut TcpStream) -> std::result::Result<String, String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => return Err("connection closed".into()),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
        if line.len() > 1024 {
            return Err("answer too long".into());
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Hands the run over to its time to live: the reaper removes it after `ttl`
/// (`None`: never by itself), whatever becomes of this process. `note` says
/// what the run is kept for, for `ps`.
pub fn release_to_ttl(run_id: &str, ttl: Option<Duration>, note: Option<&str>) -> Result<()> {
    let mut held = HELD.lock().expect("held reapers");
    let Some((_, stream)) = held.iter_mut().find(|(r, _)| r == run_id) else {
        return Err(EngineError::NoReaperConnection {
            run: run_id.to_owned(),
        });
    };
    let fail = |reason: String| EngineError::SetTtl {
        run: run_id.to_owned(),
        reason,
    };
    if let Some(note) = note {
        let line: String = note.chars().filter(|c| !c.is_control()).collect();
        command(stream, &format!("note {line}")).map_err(fail)?;
    }
    let seconds = ttl.map(|t| t.as_secs().max(1)).unwrap_or(0);
    command(stream, &format!("ttl {seconds}"))
        .map(|_| ())
        .map_err(fail)
}

/// When a run ends by itself, as its reaper reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// When its owner process goes.
    WithOwner,
    /// Never (`--ttl 0`): only `metrtest down`.
    Never,
    /// At this Unix time.
    At(i64),
}

/// A reaper's `status` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub owners: usize,
    pub expiry: Expiry,
    pub note: Option<String>,
}

/// Parses `owners N policy owner|never|until T[ note TEXT]`.
pub fn parse_status(line: &str) -> Option<Status> {
    let (head, note) = match line.split_once(" note ") {
        Some((head, note)) => (head, Some(note.to_owned())),
        None => (line, None),
    };
    let words: Vec<&str> = head.split_whitespace().collect();
    let (owners, expiry) = match words.as_slice() {
        ["owners", n, "policy", "owner"] => (n, Expiry::WithOwner),
        ["owners", n, "policy", "never"] => (n, Expiry::Never),
        ["owners", n, "policy", "until", t] => (n, Expiry::At(t.parse().ok()?)),
        _ => return None,
    };
    Some(Status {
        owners: owners.parse().ok()?,
        expiry,
        note,
    })
}

/// What a run's reaper says about it, for `ps`.
pub async fn status(engine: &Client, run_id: &str) -> Option<Status> {
    let name = labels::container_name(run_id, labels::REAPER_SERVICE);
    let port = published_port(engine, &name, PORT).await.ok()?;
    let run = run_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = greet(port, &run).ok()?;
        parse_status(&command(&mut stream, "status").ok()?)
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_with_and_without_a_note() {
        assert_eq!(
            parse_status("owners 1 policy owner"),
            Some(Status {
                owners: 1,
                expiry: Expiry::WithOwner,
                note: None
            })
        );
        assert_eq!(
            parse_status("owners 0 policy until 1700000000 note scenario x y"),
            Some(Status {
                owners: 0,
                expiry: Expiry::At(1_700_000_000),
                note: Some("scenario x y".into())
            })
        );
        assert_eq!(
            parse_status("owners 0 policy never").unwrap().expiry,
            Expiry::Never
        );
        assert_eq!(parse_status("owners x policy never"), None);
        assert_eq!(parse_status("hello"), None);
    }
}
