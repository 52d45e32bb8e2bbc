//! The stack `metrtest up` would start, as a compose file (Compose
//! Specification): the same services, images, variables, limits and start
//! order, for people who run the system with docker compose. A pure function
//! of the stack's spec; `up --export compose` builds the images and writes it.
//!
//! What the file keeps of a stack: each service under its own name, its
//! locally built image (never pulled), its variables, its limits and
//! hardening, its port on 127.0.0.1 (a free one the engine picks, as `up`'s
//! are), the one-shot `migrate` in PostgreSQL's network namespace that the
//! checker and the API wait for, and `up`'s restart policy. What it does not
//! keep: metrtest's run labels (compose owns these containers, so `ps`,
//! `down` and the reaper leave them alone).
//!
//! Health checks: PostgreSQL's with what its image has; gometr, the checker
//! and the API probe themselves (`BINARY health`, their images hold nothing
//! else to run), so `docker compose ps` says when each is healthy and the
//! checker starts once gometr answers, as `up` waits for it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::stack::limits::MIB;
use crate::stack::postgres_image;
use crate::stack::spec::{Readiness, Restart, ServiceSpec, StackSpec};

/// The compose project's default name (`docker compose -p` overrides it).
pub const PROJECT: &str = "metr";
/// On every container: the service it plays.
pub const SERVICE_LABEL: &str = "io.metr.service";
/// On every container, network and volume: what wrote the file.
pub const EXPORTED_BY_LABEL: &str = "io.metr.exported-by";

/// A compose file, in the order a reader expects its keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComposeFile {
    pub name: String,
    pub services: Ordered<Service>,
    pub networks: BTreeMap<String, Resource>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Resource>,
}

/// Entries of a mapping kept in the order they were added (start order for
/// services), where a `BTreeMap` would sort them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Ordered<T> {
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// One service of the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub image: String,
    /// The images are built here, never pulled: a missing one is an error,
    /// not a download of someone else's `metrtest/api` from a registry.
    pub pull_policy: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Written as `KEY=VALUE` lines: a YAML 1.1 reader (compose 1.x) takes
    /// a bare `on` or `no` in a mapping for a boolean and passes `True`.
    #[serde(serialize_with = "assignments")]
    pub environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// `service:NAME`: the namespace of another service (the migration's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub depends_on: Ordered<DependsOn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `None` for a one-shot step: compose's default, never restarted. (A
    /// bare `no` would be a boolean to a YAML 1.1 reader.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub mem_limit: String,
    pub memswap_limit: String,
    pub pids_limit: i64,
    pub stop_grace_period: String,
    pub labels: BTreeMap<String, String>,
}

/// What a service waits for of another before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependsOn {
    pub condition: Condition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

/// A health check run inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: String,
    pub timeout: String,
    pub retries: u32,
    pub start_period: String,
}

/// A network or a volume of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub labels: BTreeMap<String, String>,
}

/// The compose project's network: compose's default one, labelled.
const NETWORK: &str = "default";

impl ComposeFile {
    /// The compose file of `spec`: its services in start order.
    pub fn of(spec: &StackSpec) -> ComposeFile {
        let exported = exported_by();
        let resource = || Resource {
            labels: BTreeMap::from([(EXPORTED_BY_LABEL.to_owned(), exported.clone())]),
        };
        let services = spec
            .services
            .iter()
            .map(|s| (s.name.clone(), service(spec, s)))
            .collect();
        let volumes = spec
            .services
            .iter()
            .flat_map(|s| s.volumes.iter().map(|(suffix, _)| volume(s, suffix)))
            .map(|name| (name, resource()))
            .collect();
        ComposeFile {
            name: PROJECT.to_owned(),
            services: Ordered(services),
            networks: BTreeMap::from([(NETWORK.to_owned(), resource())]),
            volumes,
        }
    }

    /// The file as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a compose file is plain data")
    }
}

fn exported_by() -> String {
    format!("metrtest {}", env!("CARGO_PKG_VERSION"))
}

fn assignments<S: serde::Serializer>(
    env: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(env.iter().map(|(k, v)| format!("{k}={v}")))
}

/// The project's volume for a service's `suffix` volume.
fn volume(service: &ServiceSpec, suffix: &str) -> String {
    format!("{}-{suffix}", service.name)
}

/// Compose reads `$` in any value as the start of a variable of the shell
/// that runs it; `$$` is a literal `$` (in a password, a shell snippet).
fn literal(text: &str) -> String {
    text.replace('$', "$$")
}

fn service(spec: &StackSpec, s: &ServiceSpec) -> Service {
    let one_shot = s.readiness == Readiness::Exit;
    // Later entries win, as the engine reads a container's variables.
    let environment = s.env.iter().map(|(k, v)| (k.clone(), literal(v))).collect();
    let restart = match spec.restart {
        Restart::OnFailure { max } if !one_shot => Some(format!("on-failure:{max}")),
        _ => None,
    };
    Service {
        image: s.image.clone(),
        pull_policy: "never",
        command: s.cmd.iter().map(|c| literal(c)).collect(),
        user: s.user.clone(),
        environment,
        ports: match (one_shot, &s.joins) {
            (false, None) => vec![format!("127.0.0.1::{}", s.port)],
            _ => vec![],
        },
        network_mode: s.joins.as_ref().map(|other| format!("service:{other}")),
        depends_on: Ordered(
            s.after
                .iter()
                .map(|name| (name.clone(), depends_on(spec, name)))
                .collect(),
        ),
        healthcheck: healthcheck(spec, s),
        restart,
        read_only: s.read_only,
        tmpfs: s
            .tmpfs
            .iter()
            .map(|(path, options)| format!("{path}:{options}"))
            .collect(),
        volumes: s
            .volumes
            .iter()
            .map(|(suffix, path)| format!("{}:{path}", volume(s, suffix)))
            .collect(),
        cap_drop: vec!["ALL".into()],
        security_opt: vec!["no-new-privileges".into()],
        mem_limit: bytes(s.limits.memory),
        memswap_limit: bytes(s.limits.memory),
        pids_limit: s.limits.pids,
        stop_grace_period: seconds(s.limits.stop_grace),
        labels: BTreeMap::from([
            (SERVICE_LABEL.to_owned(), s.name.clone()),
            (EXPORTED_BY_LABEL.to_owned(), exported_by()),
        ]),
    }
}

/// What waiting for `name` means: healthy where it has a health check,
/// exited 0 for a one-shot step, started otherwise.
fn depends_on(spec: &StackSpec, name: &str) -> DependsOn {
    let dependency = spec.services.iter().find(|s| s.name == name);
    let condition = match dependency {
        Some(d) if d.readiness == Readiness::Exit => Condition::ServiceCompletedSuccessfully,
        Some(d) if healthcheck(spec, d).is_some() => Condition::ServiceHealthy,
        _ => Condition::ServiceStarted,
    };
    DependsOn { condition }
}

/// The health check of a service, where its image can run one.
fn healthcheck(spec: &StackSpec, s: &ServiceSpec) -> Option<Healthcheck> {
    let test = match s.readiness {
        Readiness::Postgres => postgres_probe(spec, s),
        Readiness::Http { success } => self_probe(s, success)?,
        Readiness::Exit => return None,
    };
    Some(Healthcheck {
        test,
        interval: "1s".into(),
        timeout: "5s".into(),
        retries: 10,
        // Failures while it starts do not count, for as long as `up` waits.
        start_period: seconds(spec.readiness_timeout),
    })
}

/// PostgreSQL's probe, with what its image has: `pg_isready` in the
/// official image (over TCP: its set-up server listens on a socket only); in
/// one metrtest assembled from the host (a shell, `cat`, no client), the
/// status line PostgreSQL writes into `postmaster.pid` once it accepts
/// connections.
fn postgres_probe(spec: &StackSpec, s: &ServiceSpec) -> Vec<String> {
    if postgres_image::is_host_assembled(&s.image) {
        let script = r#"case "$(cat "$PGDATA/postmaster.pid" 2>/dev/null)" in *ready*) exit 0 ;; esac; exit 1"#;
        vec!["CMD".into(), "/bin/sh".into(), "-c".into(), literal(script)]
    } else {
        ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U"]
            .into_iter()
            .map(str::to_owned)
            .chain([literal(&spec.db_user), "-d".into(), literal(&spec.db_name)])
            .collect()
    }
}

/// Our services' images hold their binary alone, which probes its own
/// `/health` (`BINARY health`): healthy on a 200, or on any answer where
/// answering is what `up` waits for (gometr, which may fail its health on
/// purpose). An image of someone else's has no such subcommand: no check.
fn self_probe(s: &ServiceSpec, success: bool) -> Option<Vec<String>> {
    let repository = s.image.split(':').next()?;
    let binary = ["gometr", "checker", "api"]
        .into_iter()
        .find(|b| repository == format!("metrtest/{b}"))?;
    let mut test = vec![
        "CMD".to_owned(),
        format!("/usr/local/bin/{binary}"),
        "health".to_owned(),
    ];
    if !success {
        test.push("--answering".to_owned());
    }
    Some(test)
}

/// Bytes as compose's units: MiB (`m`) when whole, else bytes (`b`).
fn bytes(n: i64) -> String {
    if n % MIB == 0 {
        format!("{}m", n / MIB)
    } else {
        format!("{n}b")
    }
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

#[cfg(test)]
mod tests;
