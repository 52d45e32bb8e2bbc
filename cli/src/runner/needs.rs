//! What a scenario asks of a stack of its own, read from its steps: the
//! links its network steps put faults on, whether it cuts services off, and
//! whether PostgreSQL's data must outlive a stop of its container.

use crate::config::envfile::DataStore;
use crate::scenario::load::Loaded;
use crate::scenario::model::{Action, DockerVerb};
use crate::scenario::network::{Link, NetworkAction};

/// What a scenario asks of a stack of its own.
#[derive(Debug, Default)]
pub struct Needs {
    /// Links to put the fault proxy on.
    pub links: Vec<Link>,
    /// A service is cut off and healed: the subnet is pinned.
    pub partitions: bool,
    /// PostgreSQL is stopped, killed or restarted, and its data must outlive that.
    pub durable_postgres: bool,
}

impl Needs {
    pub fn of(loaded: &Loaded) -> Needs {
        Needs {
            links: fault_links(loaded),
            partitions: has_partitions(loaded),
            durable_postgres: restarts_postgres(loaded),
        }
    }

    /// Where PostgreSQL keeps its data when the environment file does not
    /// say: in memory, unless it must outlive a stop of its container, or
    /// the stack may be kept for someone to work on by hand (`--keep`,
    /// `--keep-failed`). Its files on the engine's disk were a quarter of a
    /// stack's cost (on ext4: 1.0 of the 4.3 CPU-s of a one-scenario run).
    pub fn data(&self, may_be_kept: bool) -> DataStore {
        if self.durable_postgres || may_be_kept {
            DataStore::Volume
        } else {
            DataStore::Tmpfs
        }
    }
}

/// Whether a docker step stops, kills or restarts PostgreSQL's container (or
/// starts it again), which a database in memory would not survive.
fn restarts_postgres(loaded: &Loaded) -> bool {
    loaded.scenario.steps.iter().any(|step| match &step.action {
        Action::Docker(docker) => {
            docker.service == "postgres"
                && !matches!(docker.verb, DockerVerb::Pause | DockerVerb::Unpause)
        }
        _ => false,
    })
}

/// The links a scenario's network steps put faults on.
pub fn fault_links(loaded: &Loaded) -> Vec<Link> {
    loaded
        .scenario
        .network_actions()
        .filter_map(|n| match n {
            NetworkAction::Link { link, .. } => Some(link.clone()),
            _ => None,
        })
        .collect()
}

/// Whether a scenario's network steps cut a service off (and heal it).
fn has_partitions(loaded: &Loaded) -> bool {
    loaded
        .scenario
        .network_actions()
        .any(|n| matches!(n, NetworkAction::Partition(_)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::load::parse;
    use crate::scenario::references::Context as References;

    fn loaded(steps: &str) -> Loaded {
        let text = format!("name: s\nsteps:\n{steps}");
        parse(Path::new("s.yaml"), &text, &References::default()).expect("valid")
    }

    #[test]
    fn postgres_keeps_its_data_on_disk_only_when_a_step_stops_it_or_the_stack_may_be_kept() {
        let paused = loaded("  - docker: { pause: postgres }\n  - docker: { unpause: postgres }\n");
        let restarted = loaded("  - docker: { restart: postgres }\n");
        let stopped = loaded("  - docker: { stop: postgres }\n  - docker: { start: postgres }\n");
        let other = loaded("  - docker: { restart: gometr }\n");
        let plain = false;
        assert_eq!(Needs::of(&paused).data(plain), DataStore::Tmpfs);
        assert_eq!(Needs::of(&other).data(plain), DataStore::Tmpfs);
        assert_eq!(Needs::default().data(plain), DataStore::Tmpfs);
        assert_eq!(Needs::of(&restarted).data(plain), DataStore::Volume);
        assert_eq!(Needs::of(&stopped).data(plain), DataStore::Volume);
        assert_eq!(Needs::of(&paused).data(true), DataStore::Volume);
        assert_eq!(Needs::of(&paused).data(true), DataStore::Volume);
    }

    #[test]
    fn links_and_partitions_are_read_from_the_network_steps() {
        let faults = loaded(
            "  - network: { link: checker->postgres, latency: 1s }\n  - network: { link: api->postgres, down: true }\n",
        );
        let links: Vec<String> = fault_links(&faults).iter().map(|l| l.to_string()).collect();
        assert_eq!(links, ["checker->postgres", "api->postgres"]);
        assert!(!has_partitions(&faults));
        let cut = loaded("  - network: { partition: gometr }\n  - network: { heal: gometr }\n");
        assert!(fault_links(&cut).is_empty());
        assert!(has_partitions(&cut));
    }
}
