//! What a stack is made of: the default services and targets, with what the
//! environment file ([`crate::config::envfile`]) overrides.

use std::time::Duration;

use crate::config::envfile::{DataStore, EnvFile};
use crate::stack::images::{ImageSet, SERVICE_USER};
use crate::stack::postgres_image;

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
        let parts = Parts {
            images,
            file,
            db_user: "metr".to_owned(),
            db_name: "metr".to_owned(),
            db_password: random_password(),
        };
        let gometrs = gometr_names(file.gometr.replicas);
        let mut services = vec![parts.postgres()];
        services.extend(gometrs.iter().map(|name| parts.gometr(name)));
        services.push(parts.migrate());
        services.push(parts.checker(&gometrs));
        services.push(parts.api());
        StackSpec {
            services,
            readiness_timeout: file.readiness_timeout.unwrap_or(Duration::from_secs(60)),
            db_user: parts.db_user,
            db_name: parts.db_name,
            db_password: parts.db_password,
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

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

impl ServiceSpec {
    /// One of our services: as a non-root user on a read-only root, ready
    /// when its health answers success, within the services' limits.
    fn ours(name: &str, image: &str, port: u16, env: Vec<(String, String)>) -> ServiceSpec {
        ServiceSpec {
            name: name.to_owned(),
            image: image.to_owned(),
            env,
            cmd: vec![],
            port,
            user: Some(SERVICE_USER.into()),
            read_only: true,
            tmpfs: vec![],
            volumes: vec![],
            after: vec![],
            joins: None,
            readiness: Readiness::Http { success: true },
            limits: Limits::SERVICE,
        }
    }
}

/// What every service of one stack is built from.
struct Parts<'a> {
    images: &'a ImageSet,
    file: &'a EnvFile,
    db_user: String,
    db_name: String,
    db_password: String,
}

impl Parts<'_> {
    /// The environment file's variables for `service`; a gometr replica
    /// (`gometr-2`) gets gometr's, then its own.
    fn extra(&self, service: &str) -> Vec<(String, String)> {
        let base = service.strip_prefix("gometr-").map(|_| "gometr");
        let mut env: Vec<(String, String)> = Vec::new();
        for key in [base, Some(service)].into_iter().flatten() {
            if let Some(vars) = self.file.env.get(key) {
                env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        env
    }

    fn db_url(&self, host: &str) -> String {
        postgres_url(&self.db_user, &self.db_password, host, 5432, &self.db_name)
    }

    fn postgres(&self) -> ServiceSpec {
        let host_pg = postgres_image::is_host_assembled(&self.images.postgres);
        let mut env = vec![
            kv("POSTGRES_USER", &self.db_user),
            kv("POSTGRES_PASSWORD", &self.db_password),
            kv("POSTGRES_DB", &self.db_name),
        ];
        env.extend(self.extra("postgres"));
        let mut postgres = ServiceSpec {
            // Test mode: durability off; the stack is thrown away.
            cmd: [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ]
            .into_iter()
            .flat_map(|setting| ["-c".to_owned(), setting.to_owned()])
            .collect(),
            user: None,
            read_only: host_pg,
            readiness: Readiness::Postgres,
            limits: Limits::POSTGRES,
            ..ServiceSpec::ours("postgres", &self.images.postgres, 5432, env)
        };
        // Data on a volume of the run (fsync off): it survives `docker restart`
        // in fault-injection scenarios, which a tmpfs would not.
        let data_dir = if host_pg {
            "/var/lib/postgresql"
        } else {
            "/var/lib/postgresql/data"
        };
        let owner = format!("uid={0},gid={0}", postgres_image::HOST_UID);
        match self.file.postgres.data.unwrap_or_default() {
            DataStore::Volume => postgres.volumes = vec![("pgdata".into(), data_dir.into())],
            DataStore::Tmpfs if host_pg => postgres
                .tmpfs
                .push((data_dir.into(), format!("rw,mode=0700,{owner}"))),
            DataStore::Tmpfs => postgres.tmpfs.push((data_dir.into(), "rw".into())),
        }
        if host_pg {
            postgres
                .tmpfs
                .push(("/tmp".into(), format!("rw,mode=1777,{owner}")));
        }
        postgres
    }

    fn gometr(&self, name: &str) -> ServiceSpec {
        let mut env = vec![kv("GOMETR_LISTEN", "0.0.0.0:8080")];
        env.extend(self.extra(name));
        ServiceSpec {
            // gometr may be told to fail its health at start-up; answering is enough.
            readiness: Readiness::Http { success: false },
            ..ServiceSpec::ours(name, &self.images.gometr, 8080, env)
        }
    }

    /// Migrations run once, as a one-shot container that must exit 0 before
    /// the checker and the API start (the Kubernetes deploy's migrate Job),
    /// in PostgreSQL's network namespace.
    fn migrate(&self) -> ServiceSpec {
        let mut env = vec![kv("API_DATABASE_URL", &self.db_url("127.0.0.1"))];
        env.extend(self.extra(MIGRATE));
        ServiceSpec {
            cmd: vec!["migrate".into()],
            after: vec!["postgres".into()],
            joins: Some("postgres".into()),
            readiness: Readiness::Exit,
            ..ServiceSpec::ours(MIGRATE, &self.images.api, 0, env)
        }
    }

    fn checker(&self, gometrs: &[String]) -> ServiceSpec {
        let checker = &self.file.checker;
        let targets = checker
            .targets
            .clone()
            .unwrap_or_else(|| default_targets(self.file.gometr.replicas));
        let mut env = vec![
            kv("CHECKER_DATABASE_URL", &self.db_url("postgres")),
            kv("CHECKER_LISTEN", "0.0.0.0:9090"),
            kv(
                "CHECKER_INTERVAL",
                checker.interval.as_deref().unwrap_or(DEFAULT_INTERVAL),
            ),
            kv(
                "CHECKER_TIMEOUT",
                checker.timeout.as_deref().unwrap_or(DEFAULT_TIMEOUT),
            ),
            kv("CHECKER_WRITER__FLUSH_INTERVAL", "200ms"),
            kv("CHECKER_WRITER__MAX_BACKOFF", "1s"),
            kv("CHECKER_WRITER__SHUTDOWN_TIMEOUT", CHECKER_SHUTDOWN_TIMEOUT),
            kv(
                "CHECKER_TARGETS",
                &serde_json::Value::Array(targets).to_string(),
            ),
        ];
        env.extend(self.extra("checker"));
        let limits = Limits::for_checker(&env);
        let mut after = vec!["postgres".to_owned(), MIGRATE.to_owned()];
        after.extend(gometrs.iter().cloned());
        ServiceSpec {
            after,
            limits,
            ..ServiceSpec::ours("checker", &self.images.checker, 9090, env)
        }
    }

    fn api(&self) -> ServiceSpec {
        let mut env = vec![
            kv("API_DATABASE_URL", &self.db_url("postgres")),
            kv("API_LISTEN", "0.0.0.0:8080"),
        ];
        env.extend(self.extra("api"));
        ServiceSpec {
            after: vec!["postgres".into(), MIGRATE.into()],
            ..ServiceSpec::ours("api", &self.images.api, 8080, env)
        }
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
}
