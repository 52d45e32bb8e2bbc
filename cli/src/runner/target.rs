//! The stack a scenario runs against, and the docker steps that change it.

use std::collections::BTreeMap;

use crate::engine::Client;
use crate::engine::endpoint;
use crate::engine::error::EngineError;
use crate::runner::watch::{Death, Watch};
use crate::scenario::model::{DockerAction, DockerVerb};
use crate::scenario::template::Vars;
use crate::stack::control;
use crate::stack::faults::partition::{self, Endpoint};
use crate::stack::spec::{Readiness, StackSpec};
use crate::stack::state;
use crate::stack::{self, Stack};

/// Why an action on the stack could not be done; a step shows it as its error.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("this stack has no service {name:?} (it has: {known})")]
    NoService { name: String, known: String },
    #[error("{name} is already partitioned; heal it first")]
    AlreadyPartitioned { name: String },
    #[error("heal {name}: no partition step cut it off")]
    NotPartitioned { name: String },
    #[error("no spec for {name}")]
    NoSpec { name: String },
    #[error("{name} did not become ready again: {why}")]
    NotReadyAgain { name: String, why: String },
    /// The engine refused `what` (`partition gometr`, `heal gometr`, or
    /// the docker step itself).
    #[error("{what}{}{source}", if what.is_empty() { "" } else { ": " })]
    Engine {
        what: String,
        source: Box<EngineError>,
    },
}

impl TargetError {
    fn engine(what: impl Into<String>) -> impl FnOnce(EngineError) -> TargetError {
        let what = what.into();
        move |source| TargetError::Engine {
            what,
            source: Box::new(source),
        }
    }
}

/// A stack with what is needed to act on it.
#[derive(Clone)]
pub struct StackHandle {
    pub engine: Client,
    pub stack: Stack,
    pub spec: StackSpec,
    /// Services cut off the network by a partition step, with how to reconnect them.
    pub partitioned: BTreeMap<String, Endpoint>,
    /// What each service's container was when the stack was ready for this
    /// run, to notice one that dies or restarts without a step asking.
    pub watch: Watch,
}

impl StackHandle {
    /// A handle on a ready stack, its services' containers inspected now as
    /// the baseline of [`StackHandle::deaths`].
    pub async fn new(engine: Client, stack: Stack, spec: StackSpec) -> StackHandle {
        let mut handle = StackHandle {
            engine,
            stack,
            spec,
            partitioned: BTreeMap::new(),
            watch: Watch::default(),
        };
        let found = state::inspect_all(&handle.engine, &handle.containers()).await;
        handle.watch = Watch::new(found);
        handle
    }

    /// Each service with its container.
    fn containers(&self) -> Vec<(String, String)> {
        self.stack
            .services
            .iter()
            .map(|s| (s.name.clone(), s.container.clone()))
            .collect()
    }

    /// The services that died or restarted without a step asking for it,
    /// noticed after step `after_step` (from 1) named `step_name`, each with
    /// its last `lines` log lines. One inspect per container, side by side.
    pub async fn deaths(&self, after_step: usize, step_name: &str, lines: usize) -> Vec<Death> {
        let found = state::inspect_all(&self.engine, &self.containers()).await;
        let mut deaths = Vec::new();
        for (service, change, state) in self.watch.compare(&found) {
            let logs = match self.container_of(&service) {
                Ok(container) => self.engine.tail_logs(&container, lines).await,
                Err(_) => String::new(),
            };
            deaths.push(Death {
                service,
                change,
                state,
                after_step,
                step_name: step_name.to_owned(),
                logs,
            });
        }
        deaths
    }
    fn service(&self, name: &str) -> Result<&stack::RunningService, TargetError> {
        self.stack.service(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .stack
                .services
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            TargetError::NoService {
                name: name.to_owned(),
                known: known.join(", "),
            }
        })
    }

    /// Base URL of a service from the host.
    pub fn url_of(&self, name: &str) -> Result<String, TargetError> {
        self.service(name).map(|s| s.url.clone())
    }

    pub fn container_of(&self, name: &str) -> Result<String, TargetError> {
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
    pub async fn apply(&mut self, action: &DockerAction) -> Result<(), TargetError> {
        let container = self.container_of(&action.service)?;
        // Whatever a docker step does to its service was asked for: it is let
        // go first, and watched again once a start, restart or unpause made
        // it ready (if that fails, the step fails and says why).
        self.watch.let_go(&action.service);
        control::apply(&self.engine, action.verb, &action.service, &container)
            .await
            .map_err(TargetError::engine(""))?;
        if matches!(
            action.verb,
            DockerVerb::Start | DockerVerb::Restart | DockerVerb::Unpause
        ) {
            self.await_ready(&action.service, &container).await?;
            let found = state::inspect(&self.engine, &container).await;
            self.watch.resume(&action.service, found);
        }
        Ok(())
    }

    /// Cuts a service off the stack's network until it is healed.
    pub async fn partition(&mut self, name: &str) -> Result<(), TargetError> {
        let container = self.container_of(name)?;
        if self.partitioned.contains_key(name) {
            return Err(TargetError::AlreadyPartitioned {
                name: name.to_owned(),
            });
        }
        let endpoint = partition::disconnect(&self.engine, &self.stack.network, &container)
            .await
            .map_err(TargetError::engine(format!("partition {name}")))?;
        self.partitioned.insert(name.to_owned(), endpoint);
        Ok(())
    }

    /// Reconnects a partitioned service with its name and address, and waits
    /// until it is ready again.
    pub async fn heal(&mut self, name: &str) -> Result<(), TargetError> {
        let container = self.container_of(name)?;
        let endpoint =
            self.partitioned
                .get(name)
                .cloned()
                .ok_or_else(|| TargetError::NotPartitioned {
                    name: name.to_owned(),
                })?;
        partition::reconnect(&self.engine, &self.stack.network, &container, &endpoint)
            .await
            .map_err(TargetError::engine(format!("heal {name}")))?;
        self.partitioned.remove(name);
        self.await_ready(name, &container).await
    }

    async fn await_ready(&mut self, name: &str, container: &str) -> Result<(), TargetError> {
        let spec = self
            .spec
            .services
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| TargetError::NoSpec {
                name: name.to_owned(),
            })?;
        let port = stack::published_port(&self.engine, container, spec.port)
            .await
            .map_err(TargetError::engine(""))?;
        stack::wait_ready(&self.engine, &self.spec, &spec, container, port)
            .await
            .map_err(|why| TargetError::NotReadyAgain {
                name: name.to_owned(),
                why,
            })?;
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
                self.engine.tail_logs(&s.container, lines).await,
            );
        }
        out
    }
}
