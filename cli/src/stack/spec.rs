//! What a stack is made of: the default services and targets, with what the
//! environment file ([`crate::config::envfile`]) overrides.

use std::time::Duration;

use crate::config::envfile::EnvFile;
use crate::stack::images::ImageSet;
pub use crate::stack::limits::Limits;
use crate::stack::services::Parts;

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
pub(crate) fn postgres_url(user: &str, password: &str, host: &str, port: u16, db: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::limits::MIB;

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
