//! `metrtest up --export compose`: the file a real compose implementation
//! accepts, brings up with the images metrtest built, and removes whole.
//!
//! Needs `docker-compose` (v1, Debian's) or `docker compose` (v2); skips,
//! saying why, without either. Every container, network and volume of the
//! test's compose project is removed when the test ends, passing or not.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions,
};
use support::*;

/// Compose's own label on everything of a project.
const PROJECT_LABEL: &str = "com.docker.compose.project";

/// The compose implementation found here.
struct Compose {
    program: &'static str,
    /// `compose` for the docker CLI's plugin (v2).
    prefix: Option<&'static str>,
    /// 1.x predates the Compose Specification's top-level `name`.
    v1: bool,
}

impl Compose {
    fn find() -> Option<Compose> {
        let version = |program: &str, args: &[&str]| {
            let out = Command::new(program).args(args).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        if let Some(v) = version("docker-compose", &["version", "--short"]) {
            let v1 = v.starts_with("1.");
            return Some(Compose {
                program: "docker-compose",
                prefix: None,
                v1,
            });
        }
        version("docker", &["compose", "version", "--short"]).map(|_| Compose {
            program: "docker",
            prefix: Some("compose"),
            v1: false,
        })
    }

    fn command(&self, file: &Path, project: &str) -> Command {
        let mut c = Command::new(self.program);
        c.args(self.prefix)
            .arg("-f")
            .arg(file)
            .args(["-p", project])
            .env_remove("COMPOSE_PROJECT_NAME");
        c
    }
}

/// A compose project of this test: `down -v` when dropped, then whatever
/// still carries its label is removed through the engine, so that a failed
/// assertion leaves nothing behind either.
struct Project<'a> {
    compose: &'a Compose,
    file: PathBuf,
    name: String,
}

impl Project<'_> {
    fn run(&self, args: &[&str]) -> Output {
        self.compose
            .command(&self.file, &self.name)
            .args(args)
            .output()
            .expect("compose runs")
    }

    /// Runs compose with `args`, panicking with its output unless it succeeds.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "compose {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "--remove-orphans", "--timeout", "5"]);
        with_engine(async |docker| remove_project(docker, &self.name).await);
    }
}

fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        vec![format!("{PROJECT_LABEL}={project}")],
    )])
}

/// Containers, networks and volumes labelled as `project`'s.
async fn count_project(docker: &bollard::Docker, project: &str) -> (usize, usize, usize) {
    count_labelled(docker, &project_filter(project)).await
}

async fn project_containers(
    docker: &bollard::Docker,
    project: &str,
) -> Vec<bollard::models::ContainerSummary> {
    labelled_containers(docker, &project_filter(project)).await
}

/// What compose's `down` left of `project`, removed by its label.
async fn remove_project(docker: &bollard::Docker, project: &str) {
    for c in project_containers(docker, project).await {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let _ = docker
            .remove_container(&c.id.unwrap_or_default(), Some(options))
            .await;
    }
    let networks = ListNetworksOptions {
        filters: Some(project_filter(project)),
    };
    for n in docker
        .list_networks(Some(networks))
        .await
        .unwrap_or_default()
    {
        let _ = docker.remove_network(&n.id.unwrap_or_default()).await;
    }
    let volumes = ListVolumesOptions {
        filters: Some(project_filter(project)),
    };
    let listed = docker.list_volumes(Some(volumes)).await.ok();
    for v in listed.and_then(|l| l.volumes).unwrap_or_default() {
        let _ = docker
            .remove_volume(&v.name, None::<RemoveVolumeOptions>)
            .await;
    }
}

/// A container of the project as the engine sees it.
#[derive(Debug)]
struct State {
    /// Compose's service label.
    service: String,
    status: String,
    /// `None` without a health check.
    health: Option<String>,
    exit_code: i64,
}

impl State {
    /// Running (and healthy where it has a check); the migration exited 0.
    fn ready(&self) -> bool {
        match (self.service.as_str(), self.health.as_deref()) {
            ("migrate", _) => self.status == "exited" && self.exit_code == 0,
            (_, None) => self.status == "running",
            (_, Some(health)) => self.status == "running" && health == "healthy",
        }
    }
}

fn states(project: &str) -> Vec<State> {
    with_engine(async |docker| {
        let mut states = Vec::new();
        for c in project_containers(docker, project).await {
            let info = docker
                .inspect_container(&c.id.unwrap_or_default(), None)
                .await
                .unwrap();
            let service = info
                .config
                .and_then(|c| c.labels)
                .and_then(|l| l.get("com.docker.compose.service").cloned())
                .unwrap_or_default();
            let state = info.state.unwrap_or_default();
            states.push(State {
                service,
                status: state.status.map(|s| s.to_string()).unwrap_or_default(),
                health: state.health.and_then(|h| h.status).map(|s| s.to_string()),
                exit_code: state.exit_code.unwrap_or(-1),
            });
        }
        states
    })
}

/// Polls `probe` until it returns `Some`, panicking with its last `Err` at `limit`.
fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(why) if Instant::now() >= deadline => panic!("not within {limit:?}: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The exported file as this compose reads it: 1.x refuses the top-level
/// `name` (it predates it), so for 1.x the test gives the project name with
/// `-p` and drops that one key, checking it was `metr`.
fn for_this_compose(yaml: &str, compose: &Compose) -> String {
    let mut document: serde_yaml::Mapping = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(document["name"], "metr", "the project's default name");
    if compose.v1 {
        document.remove("name");
    }
    serde_yaml::to_string(&document).unwrap()
}

#[test]
fn the_exported_compose_file_runs_the_stack_with_the_built_images_and_leaves_nothing() {
    let Some(compose) = Compose::find() else {
        eprintln!("skipped: neither docker-compose nor `docker compose` is installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("compose.yaml");

    let started = Instant::now();
    let export = metrtest()
        .args(["up", "--export", "compose"])
        .arg(&exported)
        .ran();
    export.assert_code(0);
    eprintln!(
        "export with images built: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        export.stdout, "",
        "the file goes to FILE, nothing to stdout"
    );
    let said = "images the compose file names are on the engine: ";
    assert_eq!(
        export.stderr.matches(said).count(),
        1,
        "{}",
        export.streams()
    );
    let yaml = std::fs::read_to_string(&exported).unwrap();

    // Without FILE: the file alone on stdout, the same stack.
    let to_stdout = metrtest().args(["up", "--export", "compose"]).ran();
    to_stdout.assert_code(0);
    let again: serde_yaml::Value = serde_yaml::from_str(&to_stdout.stdout)
        .unwrap_or_else(|e| panic!("stdout is YAML alone ({e}): {}", to_stdout.streams()));
    let first: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(
        again["services"]["api"]["image"],
        first["services"]["api"]["image"]
    );

    let file = dir.path().join("compose.run.yaml");
    std::fs::write(&file, for_this_compose(&yaml, &compose)).unwrap();
    let project = Project {
        compose: &compose,
        file,
        name: format!("metrcompose{}x{}", std::process::id(), rand_suffix()),
    };
    let services = project.ok(&["config", "--services"]);
    let mut services: Vec<&str> = services.lines().collect();
    services.sort_unstable();
    assert_eq!(
        services,
        ["api", "checker", "gometr", "migrate", "postgres"]
    );

    let started = Instant::now();
    project.ok(&["up", "-d"]);
    wait_healthy(&project.name);
    eprintln!(
        "compose up to healthy: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_the_system_works(&project);
    assert!(
        !ps().contains(&project.name),
        "metrtest ps does not take compose's containers for a run"
    );

    project.ok(&["down", "-v", "--timeout", "5"]);
    let left = with_engine(async |docker| count_project(docker, &project.name).await);
    assert_eq!(
        left,
        (0, 0, 0),
        "containers, networks, volumes of the project"
    );
}

/// A few random lowercase characters, for a project name of this test alone.
fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:x}")
}

/// Every long-running service running (and healthy where it has a check),
/// the migration exited 0.
fn wait_healthy(project: &str) {
    poll(Duration::from_secs(120), || {
        let states = states(project);
        let long_running = states.iter().filter(|s| s.service != "migrate").count();
        match long_running == 4 && states.iter().all(State::ready) {
            true => Ok(()),
            false => Err(format!("{states:?}")),
        }
    });
    let states = states(project);
    let postgres = states.iter().find(|s| s.service == "postgres").unwrap();
    assert_eq!(
        postgres.health.as_deref(),
        Some("healthy"),
        "checked by its image"
    );
}

/// The API answers on its published port; the checker stored checks of gometr.
fn assert_the_system_works(project: &Project) {
    let port = project.ok(&["port", "api", "8080"]);
    let address = port.trim();
    assert!(
        address.starts_with("127.0.0.1:"),
        "published on loopback: {address}"
    );
    let api = format!("http://{address}");
    let targets = poll(Duration::from_secs(30), || {
        match request("GET", &format!("{api}/api/v1/targets"), None) {
            (200, body) if body.contains("\"gometr\"") => Ok(body),
            (status, body) => Err(format!("{status} {body}")),
        }
    });
    assert!(targets.contains("\"status\":\"success\""), "{targets}");
    let checks = format!("{api}/api/v1/checks?target=gometr&limit=1");
    poll(Duration::from_secs(30), || {
        match request("GET", &checks, None) {
            (200, body) if body.contains("\"status\":\"up\"") => Ok(()),
            (status, body) => Err(format!("{status} {body}")),
        }
    });
}
