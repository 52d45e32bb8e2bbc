//! The default stack's services, one builder each: PostgreSQL, each gometr
//! replica, the one-shot migrations, the checker and the API, with what the
//! environment file adds.

use crate::config::envfile::{DataStore, EnvFile};
use crate::stack::images::{ImageSet, SERVICE_USER};
use crate::stack::limits::Limits;
use crate::stack::postgres_image;
use crate::stack::spec::{
    CHECKER_SHUTDOWN_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, MIGRATE, Readiness, ServiceSpec,
    default_targets, postgres_url,
};

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

impl ServiceSpec {
    /// One of our services: as a non-root user on a read-only root, ready
    /// when its health answers success, within the services' limits.
    pub(crate) fn ours(
        name: &str,
        image: &str,
        port: u16,
        env: Vec<(String, String)>,
    ) -> ServiceSpec {
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
pub(crate) struct Parts<'a> {
    pub(crate) images: &'a ImageSet,
    pub(crate) file: &'a EnvFile,
    pub(crate) db_user: String,
    pub(crate) db_name: String,
    pub(crate) db_password: String,
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

    pub(crate) fn postgres(&self) -> ServiceSpec {
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

    pub(crate) fn gometr(&self, name: &str) -> ServiceSpec {
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
    pub(crate) fn migrate(&self) -> ServiceSpec {
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

    pub(crate) fn checker(&self, gometrs: &[String]) -> ServiceSpec {
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

    pub(crate) fn api(&self) -> ServiceSpec {
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
