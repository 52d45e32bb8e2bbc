//! What a stack is made of: the default services and targets, and the
//! environment file (`metrtest.yaml` or `--env FILE`) that overrides them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::stack::images::{ImageChoice, ImageSet, SERVICE_USER};
use crate::stack::postgres_image;

/// The environment file: every key optional, unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    #[serde(default)]
    pub images: ImageChoice,
    /// Extra environment variables per service name (postgres, gometr, checker, api).
    #[serde(default)]
    pub env: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub gometr: GometrOptions,
    #[serde(default)]
    pub checker: CheckerOptions,
    #[serde(default)]
    pub postgres: PostgresOptions,
    /// How long each service may take to become ready.
    #[serde(default, with = "humantime_serde_opt")]
    pub readiness_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GometrOptions {
    #[serde(default = "one")]
    pub replicas: u32,
}

impl Default for GometrOptions {
    fn default() -> Self {
        GometrOptions { replicas: 1 }
    }
}

fn one() -> u32 {
    1
}

/// Where PostgreSQL keeps its data during a run (`postgres: { data: ... }`).
/// When the environment file says nothing, `metrtest run` chooses for each
/// stack (`runner::suite::Needs`) and everything else takes a volume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataStore {
    /// A volume of the run: survives `docker: { restart: postgres }`.
    #[default]
    Volume,
    /// Memory only: lost when the container stops.
    Tmpfs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresOptions {
    #[serde(default)]
    pub data: Option<DataStore>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerOptions {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    /// Replaces the default targets; the checker validates each entry.
    pub targets: Option<Vec<serde_json::Value>>,
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            humantime::parse_duration(&t)
                .map_err(|e| serde::de::Error::custom(format!("{t:?}: {e}")))
        })
        .transpose()
    }
}

/// A problem in the environment file, with its position.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct EnvFileError {
    pub location: String,
    pub message: String,
}

impl EnvFile {
    pub fn load(path: &Path) -> Result<EnvFile, EnvFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| EnvFileError {
            location: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, name: &str) -> Result<EnvFile, EnvFileError> {
        if text.trim().is_empty() {
            return Ok(EnvFile::default());
        }
        let de = serde_yaml::Deserializer::from_str(text);
        let file: EnvFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let location = match e.inner().location() {
                Some(l) => format!("{name}:{}:{}", l.line(), l.column()),
                None => name.to_owned(),
            };
            let path = e.path().to_string();
            let message = if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            };
            EnvFileError { location, message }
        })?;
        file.validate(name)?;
        Ok(file)
    }

    /// An environment from YAML already read (layered files, see
    /// [`crate::config::layers`]); `name` says where it came from.
    pub fn from_value(value: serde_yaml::Value, name: &str) -> Result<EnvFile, EnvFileError> {
        let file: EnvFile = serde_path_to_error::deserialize(value).map_err(|e| EnvFileError {
            location: name.to_owned(),
            message: format!("{}: {}", e.path(), e.inner()),
        })?;
        file.validate(name)?;
        Ok(file)
    }

    fn validate(&self, name: &str) -> Result<(), EnvFileError> {
        let bad = |message: String| {
            Err(EnvFileError {
                location: name.to_owned(),
                message,
            })
        };
        if self.gometr.replicas == 0 || self.gometr.replicas > 20 {
            return bad(format!(
                "gometr.replicas: must be from 1 to 20, got {}",
                self.gometr.replicas
            ));
        }
        for (key, value) in [
            ("checker.interval", &self.checker.interval),
            ("checker.timeout", &self.checker.timeout),
        ] {
            if let Some(v) = value
                && humantime::parse_duration(v).is_err()
            {
                return bad(format!(
                    "{key}: {v:?} is not a duration such as 1s or 500ms"
                ));
            }
        }
        for service in self.env.keys() {
            let known = ["postgres", "gometr", "migrate", "checker", "api"];
            if !known.contains(&service.as_str()) && !service.starts_with("gometr-") {
                return bad(format!(
                    "env.{service}: unknown service (expected one of {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// How a service proves it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// A real login and `SELECT 1`: a published port accepts TCP before PostgreSQL listens.
    Postgres,
    /// `GET /health` answers; `success` additionally requires a 2xx.
    Http { success: bool },
    /// A one-shot step (`migrate`): the container must exit 0 before the
    /// services after it start; it publishes no port and is removed then.
    Exit,
}

impl Readiness {
    /// Where the service is reached from the host, at `host:port`.
    pub fn url(&self, host: &str, port: u16) -> String {
        match self {
            Readiness::Postgres => format!("postgres://{host}:{port}"),
            Readiness::Http { .. } => format!("http://{host}:{port}"),
            Readiness::Exit => String::new(),
        }
    }
}

/// One container of the stack.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub image: String,
    pub env: Vec<(String, String)>,
    pub cmd: Vec<String>,
    pub port: u16,
    pub user: Option<String>,
    pub read_only: bool,
    pub tmpfs: Vec<(String, String)>,
    /// Named volumes of the run: (name suffix, mount path). They survive a
    /// container restart and are removed with the run.
    pub volumes: Vec<(String, String)>,
    /// Services that must be ready before this one starts.
    pub after: Vec<String>,
    /// The service whose network namespace this one shares (it reaches that
    /// service on 127.0.0.1), instead of a place on the stack's network: for
    /// a one-shot that talks to nothing else. A namespace of its own costs
    /// the engine about 0.16 CPU-s (measured: 0.32 against 0.16 per container).
    pub joins: Option<String>,
    pub readiness: Readiness,
    /// Memory, process and stop-grace limits of the container.
    pub limits: Limits,
}

/// Resource limits every container runs with: a leaking or forking service
/// fails inside its own container instead of taking the machine down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory in bytes, swap included (no swap beyond it).
    pub memory: i64,
    /// Most processes (threads included) at once.
    pub pids: i64,
    /// Time from SIGTERM to SIGKILL on stop.
    pub stop_grace: Duration,
}

const MIB: i64 = 1024 * 1024;

impl Limits {
    /// The services built here: small and single-process, but tokio starts a
    /// worker per core plus blocking threads (DNS lookups) on demand.
    pub const SERVICE: Limits = Limits {
        memory: 512 * MIB,
        pids: 1024,
        stop_grace: Duration::from_secs(10),
    };
    /// PostgreSQL forks a backend per connection.
    pub const POSTGRES: Limits = Limits {
        memory: 1024 * MIB,
        pids: 512,
        stop_grace: Duration::from_secs(10),
    };
    /// The checker flushes its buffer on SIGTERM for up to
    /// [`CHECKER_SHUTDOWN_TIMEOUT`]; its grace must outlast that flush, or a
    /// stop kills it (exit 137) mid-flush and loses buffered samples.
    pub const CHECKER: Limits = Limits {
        stop_grace: Duration::from_secs(30),
        ..Limits::SERVICE
    };
}

impl Limits {
    /// The checker's limits for the configuration `env` gives it: at least
    /// [`Limits::CHECKER`]'s memory, more when the bound that configuration
    /// lets the checker need (README: the checker's memory) plus a quarter
    /// does not fit in it, e.g. with many gometr replicas. The checker
    /// refuses to start in a container smaller than its bound; a
    /// configuration the checker cannot load keeps the default, and the
    /// checker names the problem when it starts.
    pub fn for_checker(env: &[(String, String)]) -> Limits {
        let Ok(settings) = checker::Settings::load(None, env.iter().cloned()) else {
            return Limits::CHECKER;
        };
        let bound = checker::memory::MemoryBudget::of(&settings).total();
        let wanted =
            i64::try_from((bound + bound / 4).div_ceil(MIB as u64)).unwrap_or(i64::MAX / MIB) * MIB;
        Limits {
            memory: Limits::CHECKER.memory.max(wanted),
            ..Limits::CHECKER
        }
    }
}

/// What the stack tells the checker its shutdown flush may take (its
/// `writer.shutdown_timeout`); [`Limits::CHECKER`]'s stop grace is longer.
pub const CHECKER_SHUTDOWN_TIMEOUT: &str = "10s";

/// The whole stack of one run.
#[derive(Debug, Clone)]
pub struct StackSpec {
    pub services: Vec<ServiceSpec>,
    pub db_user: String,
    pub db_name: String,
    pub db_password: String,
    pub readiness_timeout: Duration,
    /// The stack's network gets a pinned subnet, so that a service a
    /// `partition` step cuts off is healed with its former address
    /// ([`crate::stack::private_network`]); it costs the start three engine calls.
    pub pinned_subnet: bool,
    /// What the engine does when a long-running service exits.
    pub restart: Restart,
}

/// The restart policy of a stack's long-running services (one-shot steps
/// such as `migrate` are never restarted: they must exit 0 once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Restart {
    /// Never: in `run`, a service that dies must fail the scenario, not be
    /// hidden by a restart.
    #[default]
    Never,
    /// After a non-zero exit, at most `max` times: `up` stacks, where a
    /// person works and a crashed service should come back (a crash loop
    /// stops after `max`, and `ps` shows the restarts).
    OnFailure { max: u32 },
}

/// How often an `up` stack's service is restarted after crashing.
pub const UP_RESTARTS: u32 = 5;

/// The one-shot container that applies the database migrations.
pub const MIGRATE: &str = "migrate";

pub const DEFAULT_INTERVAL: &str = "1s";
pub const DEFAULT_TIMEOUT: &str = "800ms";

/// gometr replica names: `gometr` alone, or `gometr-1`, `gometr-2`, ...
pub fn gometr_names(replicas: u32) -> Vec<String> {
    if replicas <= 1 {
        vec!["gometr".into()]
    } else {
        (1..=replicas).map(|i| format!("gometr-{i}")).collect()
    }
}

/// The checker's default targets: each gometr scraped (`prometheus`) and probed (`http`).
pub fn default_targets(replicas: u32) -> Vec<serde_json::Value> {
    gometr_names(replicas)
        .into_iter()
        .flat_map(|g| {
            [
                serde_json::json!({"name": g, "kind": "prometheus", "url": format!("http://{g}:8080")}),
                serde_json::json!({"name": format!("{g}-http"), "kind": "http", "url": format!("http://{g}:8080/health")}),
            ]
        })
        .collect()
}

/// The database's connection string at `host:port`.
fn postgres_url(user: &str, password: &str, host: &str, port: u16, db: &str) -> String {
    format!("postgres://{user}:{password}@{host}:{port}/{db}")
}

fn random_password() -> String {
    let alphabet = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..24)
        .map(|_| alphabet[rand::random_range(0..alphabet.len())] as char)
        .collect()
}

impl StackSpec {
    /// The database's connection string from where metrtest runs, through
    /// the host port `port` that postgres publishes.
    pub fn host_postgres_url(&self, port: u16) -> String {
        let host = crate::engine::endpoint::reach_host();
        postgres_url(&self.db_user, &self.db_password, &host, port, &self.db_name)
    }

    /// The default stack with the environment file's overrides applied.
    pub fn build(images: &ImageSet, file: &EnvFile) -> StackSpec {
        let db_user = "metr".to_owned();
        let db_name = "metr".to_owned();
        let db_password = random_password();
        let db_url = postgres_url(&db_user, &db_password, "postgres", 5432, &db_name);
        let extra = |service: &str| -> Vec<(String, String)> {
            let base = service.strip_prefix("gometr-").map(|_| "gometr");
            let mut env: Vec<(String, String)> = Vec::new();
            for key in [base, Some(service)].into_iter().flatten() {
                if let Some(vars) = file.env.get(key) {
                    env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            env
        };
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());

        let host_pg = postgres_image::is_host_assembled(&images.postgres);
        let mut postgres = ServiceSpec {
            name: "postgres".into(),
            image: images.postgres.clone(),
            env: vec![
                kv("POSTGRES_USER", &db_user),
                kv("POSTGRES_PASSWORD", &db_password),
                kv("POSTGRES_DB", &db_name),
            ],
            // Test mode: durability off; the stack is thrown away.
            cmd: [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
            .map(String::from)
            .to_vec(),
            port: 5432,
            user: None,
            read_only: host_pg,
            tmpfs: vec![],
            volumes: vec![],
            after: vec![],
            joins: None,
            readiness: Readiness::Postgres,
            limits: Limits::POSTGRES,
        };
        // Data on a volume of the run (fsync off): it survives `docker restart`
        // in fault-injection scenarios, which a tmpfs would not.
        let data_dir = if host_pg {
            "/var/lib/postgresql"
        } else {
            "/var/lib/postgresql/data"
        };
        match file.postgres.data.unwrap_or_default() {
            DataStore::Volume => postgres.volumes = vec![("pgdata".into(), data_dir.into())],
            DataStore::Tmpfs if host_pg => {
                let owner = format!("uid={0},gid={0}", postgres_image::HOST_UID);
                postgres
                    .tmpfs
                    .push((data_dir.into(), format!("rw,mode=0700,{owner}")));
            }
            DataStore::Tmpfs => postgres.tmpfs.push((data_dir.into(), "rw".into())),
        }
        if host_pg {
            let owner = format!("uid={0},gid={0}", postgres_image::HOST_UID);
            postgres
                .tmpfs
                .push(("/tmp".into(), format!("rw,mode=1777,{owner}")));
        }
        postgres.env.extend(extra("postgres"));

        let mut services = vec![postgres];
        let gometrs = gometr_names(file.gometr.replicas);
        for name in &gometrs {
            let mut env = vec![kv("GOMETR_LISTEN", "0.0.0.0:8080")];
            env.extend(extra(name));
            services.push(ServiceSpec {
                name: name.clone(),
                image: images.gometr.clone(),
                env,
                cmd: vec![],
                port: 8080,
                user: Some(SERVICE_USER.into()),
                read_only: true,
                tmpfs: vec![],
                volumes: vec![],
                after: vec![],
                joins: None,
                // gometr may be told to fail its health at start-up; answering is enough.
                readiness: Readiness::Http { success: false },
                limits: Limits::SERVICE,
            });
        }

        // Migrations run once, as a one-shot container that must exit 0 before
        // the checker and the API start (the Kubernetes deploy's migrate Job),
        // in PostgreSQL's network namespace.
        let local_db_url = postgres_url(&db_user, &db_password, "127.0.0.1", 5432, &db_name);
        let mut migrate_env = vec![kv("API_DATABASE_URL", &local_db_url)];
        migrate_env.extend(extra("migrate"));
        services.push(ServiceSpec {
            name: MIGRATE.into(),
            image: images.api.clone(),
            env: migrate_env,
            cmd: vec!["migrate".into()],
            port: 0,
            user: Some(SERVICE_USER.into()),
            read_only: true,
            tmpfs: vec![],
            volumes: vec![],
            after: vec!["postgres".into()],
            joins: Some("postgres".into()),
            readiness: Readiness::Exit,
            limits: Limits::SERVICE,
        });

        let targets = file
            .checker
            .targets
            .clone()
            .unwrap_or_else(|| default_targets(file.gometr.replicas));
        let mut checker_env = vec![
            kv("CHECKER_DATABASE_URL", &db_url),
            kv("CHECKER_LISTEN", "0.0.0.0:9090"),
            kv(
                "CHECKER_INTERVAL",
                file.checker.interval.as_deref().unwrap_or(DEFAULT_INTERVAL),
            ),
            kv(
                "CHECKER_TIMEOUT",
                file.checker.timeout.as_deref().unwrap_or(DEFAULT_TIMEOUT),
            ),
            kv("CHECKER_WRITER__FLUSH_INTERVAL", "200ms"),
            kv("CHECKER_WRITER__MAX_BACKOFF", "1s"),
            kv("CHECKER_WRITER__SHUTDOWN_TIMEOUT", CHECKER_SHUTDOWN_TIMEOUT),
            kv(
                "CHECKER_TARGETS",
                &serde_json::Value::Array(targets).to_string(),
            ),
        ];
        checker_env.extend(extra("checker"));
        let checker_limits = Limits::for_checker(&checker_env);
        let mut after = vec!["postgres".to_owned(), MIGRATE.to_owned()];
        after.extend(gometrs.iter().cloned());
        services.push(ServiceSpec {
            name: "checker".into(),
            image: images.checker.clone(),
            env: checker_env,
            cmd: vec![],
            port: 9090,
            user: Some(SERVICE_USER.into()),
            read_only: true,
            tmpfs: vec![],
            volumes: vec![],
            after: after.clone(),
            joins: None,
            readiness: Readiness::Http { success: true },
            limits: checker_limits,
        });

        let mut api_env = vec![
            kv("API_DATABASE_URL", &db_url),
            kv("API_LISTEN", "0.0.0.0:8080"),
        ];
        api_env.extend(extra("api"));
        services.push(ServiceSpec {
            name: "api".into(),
            image: images.api.clone(),
            env: api_env,
            cmd: vec![],
            port: 8080,
            user: Some(SERVICE_USER.into()),
            read_only: true,
            tmpfs: vec![],
            volumes: vec![],
            after: vec!["postgres".into(), MIGRATE.into()],
            joins: None,
            readiness: Readiness::Http { success: true },
            limits: Limits::SERVICE,
        });

        StackSpec {
            services,
            db_user,
            db_name,
            db_password,
            readiness_timeout: file.readiness_timeout.unwrap_or(Duration::from_secs(60)),
            pinned_subnet: false,
            restart: Restart::Never,
        }
    }

    /// Start order as waves: each wave's services depend only on earlier waves.
    pub fn waves(&self) -> Vec<Vec<&ServiceSpec>> {
        let mut placed: Vec<&str> = Vec::new();
        let mut waves = Vec::new();
        let mut left: Vec<&ServiceSpec> = self.services.iter().collect();
        while !left.is_empty() {
            let (ready, blocked): (Vec<&ServiceSpec>, Vec<&ServiceSpec>) = left
                .into_iter()
                .partition(|s| s.after.iter().all(|d| placed.contains(&d.as_str())));
            assert!(!ready.is_empty(), "dependency cycle among {blocked:?}");
            placed.extend(ready.iter().map(|s| s.name.as_str()));
            waves.push(ready);
            left = blocked;
        }
        waves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> ImageSet {
        ImageSet {
            postgres: "metrtest/postgres-host:15-x".into(),
            gometr: "g".into(),
            checker: "c".into(),
            api: "a".into(),
        }
    }

    fn env_of<'a>(spec: &'a StackSpec, service: &str, key: &str) -> Option<&'a str> {
        let s = spec.services.iter().find(|s| s.name == service)?;
        s.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_default_stack_has_the_contract_names_and_targets() {
        let spec = StackSpec::build(&images(), &EnvFile::default());
        let names: Vec<_> = spec.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["postgres", "gometr", "migrate", "checker", "api"]);
        let targets: Vec<serde_json::Value> =
            serde_json::from_str(env_of(&spec, "checker", "CHECKER_TARGETS").unwrap()).unwrap();
        assert_eq!(targets[0]["name"], "gometr");
        assert_eq!(targets[0]["kind"], "prometheus");
        assert_eq!(targets[0]["url"], "http://gometr:8080");
        assert_eq!(targets[1]["name"], "gometr-http");
        assert_eq!(targets[1]["kind"], "http");
        assert_eq!(targets[1]["url"], "http://gometr:8080/health");
        assert_eq!(env_of(&spec, "checker", "CHECKER_INTERVAL"), Some("1s"));
    }

    #[test]
    fn every_container_has_limits_and_the_checker_outlasts_its_flush() {
        let spec = StackSpec::build(&images(), &EnvFile::default());
        for s in &spec.services {
            assert!(s.limits.memory >= 256 * MIB, "{}", s.name);
            assert!(s.limits.pids >= 128, "{}", s.name);
        }
        let checker = spec.services.iter().find(|s| s.name == "checker").unwrap();
        let flush = humantime::parse_duration(
            env_of(&spec, "checker", "CHECKER_WRITER__SHUTDOWN_TIMEOUT").unwrap(),
        )
        .unwrap();
        assert!(
            checker.limits.stop_grace > flush + Duration::from_secs(5),
            "grace {:?} vs flush {flush:?}",
            checker.limits.stop_grace
        );
    }

    #[test]
    fn the_checker_gets_the_memory_its_configuration_needs() {
        let memory = |text: &str| {
            let file = EnvFile::parse(text, "metrtest.yaml").unwrap();
            let spec = StackSpec::build(&images(), &file);
            let checker = spec.services.iter().find(|s| s.name == "checker").unwrap();
            checker.limits.memory
        };
        assert_eq!(
            memory("{}"),
            Limits::CHECKER.memory,
            "the default fits 512 MiB"
        );
        let four = memory("gometr: { replicas: 4 }\n");
        assert!(four > Limits::CHECKER.memory, "{four}");
        let raised = memory(
            "env: { checker: { CHECKER_SAMPLE_LIMIT: \"1000000\", CHECKER_WRITER__BUFFER_SAMPLES: \"3000000\" } }\n",
        );
        assert!(raised > four, "{raised}");
    }

    #[test]
    fn dependencies_start_in_waves() {
        let spec = StackSpec::build(&images(), &EnvFile::default());
        let waves: Vec<Vec<&str>> = spec
            .waves()
            .iter()
            .map(|w| w.iter().map(|s| s.name.as_str()).collect())
            .collect();
        assert_eq!(
            waves,
            vec![
                vec!["postgres", "gometr"],
                vec!["migrate"],
                vec!["checker", "api"]
            ]
        );
    }

    #[test]
    fn migrations_are_a_one_shot_step_of_the_api_image_the_services_wait_for() {
        let file = EnvFile::parse(
            "env:\n  migrate: { API_DATABASE_URL: 'postgres://x@nowhere/x' }\n",
            "metrtest.yaml",
        )
        .unwrap();
        let spec = StackSpec::build(&images(), &file);
        let migrate = spec.services.iter().find(|s| s.name == MIGRATE).unwrap();
        assert_eq!(migrate.image, "a");
        assert_eq!(migrate.cmd, ["migrate"]);
        assert_eq!(migrate.readiness, Readiness::Exit);
        assert_eq!(
            env_of(&spec, MIGRATE, "API_DATABASE_URL"),
            Some("postgres://x@nowhere/x")
        );
        for name in ["checker", "api"] {
            let service = spec.services.iter().find(|s| s.name == name).unwrap();
            assert!(service.after.iter().any(|a| a == MIGRATE), "{name}");
            assert!(service.cmd.is_empty(), "{name} does not migrate itself");
        }
    }

    #[test]
    fn each_run_gets_its_own_password() {
        let a = StackSpec::build(&images(), &EnvFile::default());
        let b = StackSpec::build(&images(), &EnvFile::default());
        assert_ne!(a.db_password, b.db_password);
        assert_eq!(a.db_password.len(), 24);
    }

    #[test]
    fn the_env_file_overrides_replicas_env_and_targets() {
        let file = EnvFile::parse(
            "gometr: { replicas: 2 }\nenv:\n  gometr: { GOMETR_HEALTH: warn }\n  gometr-2: { GOMETR_DELAY_MS: '5' }\nchecker: { interval: 2s }\n",
            "metrtest.yaml",
        )
        .unwrap();
        let spec = StackSpec::build(&images(), &file);
        let names: Vec<_> = spec.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "postgres", "gometr-1", "gometr-2", "migrate", "checker", "api"
            ]
        );
        assert_eq!(env_of(&spec, "gometr-1", "GOMETR_HEALTH"), Some("warn"));
        assert_eq!(env_of(&spec, "gometr-2", "GOMETR_DELAY_MS"), Some("5"));
        assert_eq!(env_of(&spec, "gometr-1", "GOMETR_DELAY_MS"), None);
        assert_eq!(env_of(&spec, "checker", "CHECKER_INTERVAL"), Some("2s"));
        assert!(
            env_of(&spec, "checker", "CHECKER_TARGETS")
                .unwrap()
                .contains("gometr-2-http")
        );
    }

    #[test]
    fn postgres_data_is_on_a_volume_unless_tmpfs_is_asked_for() {
        let spec = StackSpec::build(&images(), &EnvFile::default());
        assert_eq!(
            spec.services[0].volumes,
            vec![("pgdata".to_owned(), "/var/lib/postgresql".to_owned())]
        );
        let file = EnvFile::parse("postgres: { data: tmpfs }\n", "metrtest.yaml").unwrap();
        let spec = StackSpec::build(&images(), &file);
        assert!(spec.services[0].volumes.is_empty());
        assert!(
            spec.services[0]
                .tmpfs
                .iter()
                .any(|(path, _)| path == "/var/lib/postgresql")
        );
    }

    #[test]
    fn env_file_errors_name_the_key_and_position() {
        let cases = [
            ("imagez: {}\n", "imagez", "metrtest.yaml:1:1"),
            ("gometr:\n  replica: 2\n", "replica", "metrtest.yaml:2:3"),
            (
                "gometr: { replicas: 0 }\n",
                "gometr.replicas",
                "metrtest.yaml",
            ),
            (
                "checker: { interval: soon }\n",
                "checker.interval",
                "metrtest.yaml",
            ),
            ("env: { gomtr: { A: b } }\n", "env.gomtr", "metrtest.yaml"),
            (
                "readiness_timeout: forever\n",
                "readiness_timeout",
                "metrtest.yaml",
            ),
        ];
        for (text, key, location) in cases {
            let err = EnvFile::parse(text, "metrtest.yaml")
                .expect_err(text)
                .to_string();
            assert!(
                err.contains(key) && err.starts_with(location),
                "{text:?} gave {err:?}"
            );
        }
    }
}
