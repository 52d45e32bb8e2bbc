//! The stack a scenario runs against, and the docker steps that change it.

use std::collections::BTreeMap;

use bollard::Docker;

use crate::docker::partition::{self, Endpoint};
use crate::docker::spec::{Readiness, StackSpec};
use crate::docker::stack::{self, Stack};
use crate::docker::{control, endpoint};
use crate::scenario::model::{DockerAction, DockerVerb};
use crate::scenario::template::Vars;

/// A stack with what is needed to act on it.
#[derive(Clone)]
pub struct StackHandle {
    pub docker: Docker,
    pub stack: Stack,
    pub spec: StackSpec,
    /// Services cut off the network by a partition step, with how to reconnect them.
    pub partitioned: BTreeMap<String, Endpoint>,
}

impl StackHandle {
    fn service(&self, name: &str) -> Result<&stack::RunningService, String> {
        self.stack.service(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .stack
                .services
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            format!(
                "this stack has no service {name:?} (it has: {})",
                known.join(", ")
            )
        })
    }

    /// Base URL of a service from the host.
    pub fn url_of(&self, name: &str) -> Result<String, String> {
        self.service(name).map(|s| s.url.clone())
    }

    pub fn container_of(&self, name: &str) -> Result<String, String> {
        self.service(name).map(|s| s.container.clone())
    }

    /// `run.id`, `services.<name>.url` (Postgres: its connection string).
    pub fn export_vars(&self, vars: &mut Vars) {
        vars.set("run.id", self.stack.run_id.clone().into());
        for s in &self.stack.services {
            let url = if s.name == "postgres" {
                self.stack.postgres_url.clone()
            } else {
                s.url.clone()
            };
            vars.set(format!("services.{}.url", s.name), url.into());
        }
    }

    /// Applies a docker step. After start, restart and unpause the service must
    /// be ready again; its published port is read anew, though it is published
    /// on a fixed host port and normally stays the same.
    pub async fn apply(&mut self, action: &DockerAction) -> Result<(), String> {
        let container = self.container_of(&action.service)?;
        control::apply(&self.docker, action.verb, &action.service, &container)
            .await
            .map_err(|e| e.to_string())?;
        if matches!(
            action.verb,
            DockerVerb::Start | DockerVerb::Restart | DockerVerb::Unpause
        ) {
            self.await_ready(&action.service, &container).await?;
        }
        Ok(())
    }

    /// Cuts a service off the stack's network until it is healed.
    pub async fn partition(&mut self, name: &str) -> Result<(), String> {
        let container = self.container_of(name)?;
        if self.partitioned.contains_key(name) {
            return Err(format!("{name} is already partitioned; heal it first"));
        }
        let endpoint = partition::disconnect(&self.docker, &self.stack.network, &container)
            .await
            .map_err(|e| format!("partition {name}: {e}"))?;
        self.partitioned.insert(name.to_owned(), endpoint);
        Ok(())
    }

    /// Reconnects a partitioned service with its name and address, and waits
    /// until it is ready again.
    pub async fn heal(&mut self, name: &str) -> Result<(), String> {
        let container = self.container_of(name)?;
        let endpoint = self
            .partitioned
            .get(name)
            .cloned()
            .ok_or_else(|| format!("heal {name}: no partition step cut it off"))?;
        partition::reconnect(&self.docker, &self.stack.network, &container, &endpoint)
            .await
            .map_err(|e| format!("heal {name}: {e}"))?;
        self.partitioned.remove(name);
        self.await_ready(name, &container).await
    }

    async fn await_ready(&mut self, name: &str, container: &str) -> Result<(), String> {
        let spec = self
            .spec
            .services
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| format!("no spec for {name}"))?;
        let port = stack::published_port(&self.docker, container, spec.port)
            .await
            .map_err(|e| e.to_string())?;
        stack::wait_ready(&self.docker, &self.spec, &spec, container, port)
            .await
            .map_err(|why| format!("{name} did not become ready again: {why}"))?;
        if let Some(s) = self.stack.services.iter_mut().find(|s| s.name == name) {
            s.host_port = port;
            s.url = spec.readiness.url(&endpoint::reach_host(), port);
        }
        if spec.readiness == Readiness::Postgres {
            self.stack.postgres_url = format!(
                "postgres://{}:{}@{}:{port}/{}",
                self.spec.db_user,
                self.spec.db_password,
                endpoint::reach_host(),
                self.spec.db_name
            );
        }
        Ok(())
    }

    /// The last `lines` log lines of every service, for failure reports.
    pub async fn logs(&self, lines: usize) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for s in &self.stack.services {
            out.insert(
                s.name.clone(),
                stack::tail_logs(&self.docker, &s.container, lines).await,
            );
        }
        out
    }
}
