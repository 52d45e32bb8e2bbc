//! Helpers shared by the black-box tests that use the real engine.
#![allow(dead_code, reason = "each test file uses a subset of the helpers")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub mod expected;
pub mod failures;
mod ran;

pub use ran::{Ran, RunExt};

/// The metrtest binary under test, run from the workspace root without colour.
pub fn metrtest() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_metrtest"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    c.env("NO_COLOR", "1");
    c
}

/// [`metrtest`] with no engine reachable: proves a command needs none, as any
/// attempt to reach one would fail.
pub fn without_engine() -> Command {
    let mut c = metrtest();
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    c
}

/// `metrtest down --run RUN`.
pub fn down(run: &str) -> Ran {
    metrtest().args(["down", "--run", run]).ran()
}

/// What `metrtest ps` prints on stdout.
pub fn ps() -> String {
    metrtest().arg("ps").ran().stdout
}

/// A folder of `cli/tests/fixtures`.
pub fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

/// Runs `future` to completion from a blocking test.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Runs `work` with a bollard client of the engine (`DOCKER_HOST` or the
/// local socket), from a blocking test: the tests look at the engine through
/// a client of their own, not through the metrtest code they check.
pub fn with_engine<T>(work: impl AsyncFnOnce(&bollard::Docker) -> T) -> T {
    block_on(async {
        let docker = bollard::Docker::connect_with_defaults()
            .expect("engine")
            .negotiate_version()
            .await
            .expect("engine's API version");
        work(&docker).await
    })
}

/// A request from a blocking test: its status and body; status 0 when it
/// got no answer.
pub fn request(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    block_on(async {
        let mut req = metr_service::http_client::builder()
            .build()
            .unwrap()
            .request(method.parse().unwrap(), url);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        match req.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    })
}

/// The status a GET of `url` answers; 0 when it got no answer.
pub fn get_status(url: &str) -> u16 {
    request("GET", url, None).0
}

/// Labelled resources of a run still on the engine (containers, networks, volumes).
pub fn leftovers(run: &str) -> (usize, usize, usize) {
    with_engine(async |docker| count_run(docker, run).await)
}

/// An engine filter on one label, `KEY=VALUE`.
pub type LabelFilter = std::collections::HashMap<String, Vec<String>>;

/// The containers `filter` selects, stopped ones included.
pub async fn labelled_containers(
    docker: &bollard::Docker,
    filter: &LabelFilter,
) -> Vec<bollard::models::ContainerSummary> {
    let options = bollard::query_parameters::ListContainersOptions {
        all: true,
        filters: Some(filter.clone()),
        ..Default::default()
    };
    docker.list_containers(Some(options)).await.unwrap()
}

/// A run's labelled containers, stopped ones included.
pub async fn run_containers(
    docker: &bollard::Docker,
    run: &str,
) -> Vec<bollard::models::ContainerSummary> {
    labelled_containers(docker, &metrtest::engine::labels::run_filter(Some(run))).await
}

/// A run's labelled containers, networks and volumes on `docker`.
pub async fn count_run(docker: &bollard::Docker, run: &str) -> (usize, usize, usize) {
    count_labelled(docker, &metrtest::engine::labels::run_filter(Some(run))).await
}

/// The containers, networks and volumes `filter` selects on `docker`.
pub async fn count_labelled(
    docker: &bollard::Docker,
    filter: &LabelFilter,
) -> (usize, usize, usize) {
    let containers = labelled_containers(docker, filter).await.len();
    let networks = docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
            filters: Some(filter.clone()),
        }))
        .await
        .unwrap()
        .len();
    let volumes = docker
        .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
            filters: Some(filter.clone()),
        }))
        .await
        .unwrap()
        .volumes
        .unwrap_or_default()
        .len();
    (containers, networks, volumes)
}

/// Sends `sig` to a child process.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Waits for a child's exit code, panicking past `limit`.
pub fn wait(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "metrtest did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of a child's stderr, as they come.
pub type Lines = std::io::Lines<std::io::BufReader<std::process::ChildStderr>>;

/// Starts `metrtest ARGS` with stdout discarded and stderr readable line by line.
pub fn spawn(args: &[&std::ffi::OsStr]) -> (Child, Lines) {
    use std::io::BufRead;
    let mut child = metrtest()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    (child, std::io::BufReader::new(stderr).lines())
}

/// Starts `metrtest up` and reads its stderr up to `needle`; returns the
/// process, the rest of its stderr and the run id of the stack it starts.
pub fn up_until(needle: &str) -> (Child, Lines, String) {
    let (child, mut lines) = spawn(&["up".as_ref()]);
    let seen = read_until(&mut lines, needle);
    let run = run_id_in(&seen);
    (child, lines, run)
}

/// Reads stderr lines until one contains `needle`; returns everything read.
pub fn read_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    needle: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains(needle);
        seen.push(line);
        if done {
            return seen;
        }
    }
    panic!("stream ended before {needle:?}; saw:\n{}", seen.join("\n"));
}

/// The run id of the first `starting stack ID [for WHOM]` line.
pub fn run_id_in(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| run_id_started(l))
        .expect("a 'starting stack' line")
}

/// ID of a `starting stack ID [for WHOM]` line.
pub fn run_id_started(line: &str) -> Option<String> {
    let rest = line.strip_prefix("starting stack ")?;
    rest.split_whitespace().next().map(str::to_owned)
}

/// `metrtest up --detach ARGS`: the run id and the printed table.
pub fn up_detached(args: &[&std::ffi::OsStr]) -> (String, String) {
    let up = metrtest().args(["up", "--detach"]).args(args).ran();
    up.assert_code(0);
    (run_id_printed(&up.stdout), up.stdout)
}

/// The run id `up --detach` printed (`run id: …`).
pub fn run_id_printed(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("run id: "))
        .expect("run id")
        .trim()
        .to_owned()
}

/// The host URL `up` printed for a service.
pub fn url_in(table: &str, run: &str, service: &str) -> String {
    table
        .lines()
        .find(|l| l.contains(&format!("metrtest-{run}-{service} ")))
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("http://127.0.0.1:"))
        })
        .unwrap_or_else(|| panic!("no {service} in\n{table}"))
        .to_owned()
}

/// Polls until the run has no labelled container, network or volume left;
/// returns how long that took, or the leftovers at `limit`.
pub fn wait_gone(run: &str, limit: Duration) -> Result<Duration, (usize, usize, usize)> {
    let started = Instant::now();
    loop {
        let left = leftovers(run);
        if left == (0, 0, 0) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Inspects a container of the engine.
pub fn inspect(container: &str) -> bollard::models::ContainerInspectResponse {
    with_engine(async |docker| docker.inspect_container(container, None).await.unwrap())
}

/// Stops then starts a container, as a `docker: { stop/start }` step does.
pub fn stop_and_start(container: &str) {
    with_engine(async |docker| {
        docker.stop_container(container, None).await.unwrap();
        docker.start_container(container, None).await.unwrap();
    })
}
