//! The stack's services as testcontainers-rs [`Image`]s, for Rust tests that
//! prefer `#[tokio::test]` to YAML: the images `metrtest run` builds locally
//! (never pulled) and the same readiness (PostgreSQL accepting connections,
//! the services' `/health`). Behind the `containers` feature.

use std::borrow::Cow;

use testcontainers::Image;
use testcontainers::core::wait::HttpWaitStrategy;
use testcontainers::core::{ContainerPort, Mount, WaitFor};

use crate::engine;
use crate::engine::labels;
use crate::exit::Failure;
use crate::stack::images::{self, ImageSet};
use crate::stack::postgres_image;
use crate::ui::{Ui, Verbosity};

/// Builds whatever images are missing (quietly) and returns their references.
pub async fn images() -> Result<ImageSet, Failure> {
    let engine = engine::connect().await?;
    let set = images::ensure(
        &engine,
        &images::ImageChoice::default(),
        &Ui::new(Verbosity::Quiet).progress(),
    )
    .await?;
    Ok(set)
}

/// `name:tag` split at the tag's colon.
fn split(reference: &str) -> (String, String) {
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
        _ => (reference.to_owned(), "latest".to_owned()),
    }
}

/// The container name of a service in a test's run: `metrtest-<run>-<service>`,
/// also its host name on the run's network.
pub fn container_name(run: &str, service: &str) -> String {
    labels::container_name(run, service)
}

/// `GET /health` on `port`; `success`: only a 2xx counts (gometr may be told
/// to fail its health, answering is enough there).
fn health(port: u16, success: bool) -> WaitFor {
    // Our client, not testcontainers' default one: that one panics in a
    // process without a TLS crypto provider.
    let client = metr_service::http_client::builder()
        .build()
        .expect("an HTTP client");
    let strategy = HttpWaitStrategy::new("/health")
        .with_port(ContainerPort::Tcp(port))
        .with_client(client);
    let strategy = if success {
        strategy.with_response_matcher(|r| r.status().is_success())
    } else {
        strategy.with_response_matcher(|_| true)
    };
    WaitFor::http(strategy)
}

/// One of the stack's services: image reference, environment, arguments and readiness.
#[derive(Debug, Clone)]
pub struct Service {
    name: String,
    tag: String,
    env: Vec<(String, String)>,
    cmd: Vec<String>,
    ports: Vec<ContainerPort>,
    mounts: Vec<Mount>,
    ready: fn() -> Vec<WaitFor>,
}

impl Service {
    /// Adds (or overrides) an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// Login of [`postgres`]: user, password and database are all `metr`.
pub const DB_LOGIN: &str = "metr";

/// PostgreSQL with durability off (a test database), ready when it accepts connections.
pub fn postgres(images: &ImageSet) -> Service {
    let (name, tag) = split(&images.postgres);
    Service {
        name,
        tag,
        env: ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"]
            .map(|k| (k.to_owned(), DB_LOGIN.to_owned()))
            .to_vec(),
        cmd: ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            .map(String::from)
            .to_vec(),
        ports: vec![ContainerPort::Tcp(5432)],
        // The image assembled from the host's PostgreSQL keeps its sockets
        // and scratch files in /tmp, which a scratch image does not have.
        mounts: if postgres_image::is_host_assembled(&images.postgres) {
            vec![Mount::tmpfs_mount("/tmp").with_mode(0o1777)]
        } else {
            vec![]
        },
        ready: || {
            vec![WaitFor::message_on_either_std(
                "database system is ready to accept connections",
            )]
        },
    }
}

/// The database URL of [`postgres`] from another container of the network.
pub fn database_url(postgres_host: &str) -> String {
    format!("postgres://{DB_LOGIN}:{DB_LOGIN}@{postgres_host}:5432/{DB_LOGIN}")
}

/// gometr on port 8080, ready when `/health` answers.
pub fn gometr(images: &ImageSet) -> Service {
    let (name, tag) = split(&images.gometr);
    Service {
        name,
        tag,
        env: vec![("GOMETR_LISTEN".into(), "0.0.0.0:8080".into())],
        cmd: vec![],
        ports: vec![ContainerPort::Tcp(8080)],
        mounts: vec![],
        ready: || vec![health(8080, false)],
    }
}

/// The checker on port 9090 (migrating the database first), scraping
/// `targets` (the checker's JSON target list) every second.
pub fn checker(images: &ImageSet, database_url: &str, targets: &serde_json::Value) -> Service {
    let (name, tag) = split(&images.checker);
    let env = [
        ("CHECKER_DATABASE_URL", database_url),
        ("CHECKER_LISTEN", "0.0.0.0:9090"),
        ("CHECKER_INTERVAL", "1s"),
        ("CHECKER_TIMEOUT", "800ms"),
        ("CHECKER_WRITER__FLUSH_INTERVAL", "200ms"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into_iter()
    .chain([("CHECKER_TARGETS".to_owned(), targets.to_string())])
    .collect();
    Service {
        name,
        tag,
        env,
        cmd: vec!["--migrate".into()],
        ports: vec![ContainerPort::Tcp(9090)],
        mounts: vec![],
        ready: || vec![health(9090, true)],
    }
}

/// The API on port 8080 (migrating the database first), ready when `/health` is 2xx.
pub fn api(images: &ImageSet, database_url: &str) -> Service {
    let (name, tag) = split(&images.api);
    Service {
        name,
        tag,
        env: vec![
            ("API_DATABASE_URL".into(), database_url.to_owned()),
            ("API_LISTEN".into(), "0.0.0.0:8080".into()),
        ],
        cmd: vec!["--migrate".into()],
        ports: vec![ContainerPort::Tcp(8080)],
        mounts: vec![],
        ready: || vec![health(8080, true)],
    }
}

impl Image for Service {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        (self.ready)()
    }

    fn env_vars(
        &self,
    ) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn cmd(&self) -> impl IntoIterator<Item = impl Into<Cow<'_, str>>> {
        self.cmd.iter().map(String::as_str)
    }

    fn mounts(&self) -> impl IntoIterator<Item = &Mount> {
        &self.mounts
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &self.ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_at_a_registry_port() {
        assert_eq!(
            split("metrtest/api:1b98bb815933"),
            ("metrtest/api".into(), "1b98bb815933".into())
        );
        assert_eq!(
            split("localhost:5000/x"),
            ("localhost:5000/x".into(), "latest".into())
        );
    }
}
