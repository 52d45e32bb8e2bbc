//! A dead service is never silent: each service container's state when the
//! stack was ready for this run is the baseline, and after every step of a
//! scenario each container is inspected again. A service that no longer runs,
//! or that the engine restarted (its restart count rose, or it started again
//! at another time), fails the scenario, unless a docker step of the
//! scenario itself acted on it (stop, kill, restart, pause, …): such a
//! service is let go, and watched again from its new state once a step
//! started, restarted or unpaused it and it is ready.
//! The comparison is pure; the inspects are `stack::state`'s.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::stack::state::{ContainerState, Inspected};

/// How a service changed without a step asking for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum Change {
    /// Its container no longer runs.
    Exited,
    /// The engine started it again (a restart policy, or a hand outside metrtest).
    Restarted { restarts_before: i64 },
    /// Its container was removed.
    Gone,
    /// The engine could not say: its words.
    Unreadable { error: String },
}

/// A service that died or restarted without a step asking for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Death {
    pub service: String,
    #[serde(flatten)]
    pub change: Change,
    /// The state found, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ContainerState>,
    /// The step after which it was noticed (from 1), with its name.
    pub after_step: usize,
    pub step_name: String,
    /// Its last log lines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub logs: String,
}

impl Death {
    /// One line naming the service, what became of it, its exit code,
    /// `OOMKilled` and restart count, and when it was noticed.
    pub fn headline(&self) -> String {
        let service = &self.service;
        let what = match &self.change {
            Change::Exited => format!("service {service} died without a step asking for it"),
            Change::Restarted { .. } => {
                format!("service {service} restarted without a step asking for it")
            }
            Change::Gone => {
                format!("service {service}'s container was removed without a step asking for it")
            }
            Change::Unreadable { error } => {
                format!("service {service}'s container could not be inspected: {error}")
            }
        };
        let state = match (&self.state, &self.change) {
            (Some(s), Change::Restarted { restarts_before }) => format!(
                ": restart count {} (was {restarts_before}), last exit code {}, OOMKilled: {}, running again since {}",
                s.restart_count, s.exit_code, s.oom_killed, s.started_at
            ),
            (Some(s), _) => format!(
                ": {}, exit code {}, OOMKilled: {}, restart count {}",
                s.status, s.exit_code, s.oom_killed, s.restart_count
            ),
            (None, _) => String::new(),
        };
        format!(
            "{what}{state} (noticed after step {} \"{}\")",
            self.after_step, self.step_name
        )
    }

    /// The headline and the last log lines, indented.
    pub fn render(&self) -> String {
        if self.logs.trim().is_empty() {
            return self.headline();
        }
        let lines: Vec<String> = self.logs.lines().map(|l| format!("  | {l}")).collect();
        format!(
            "{}\n  last lines of {}:\n{}",
            self.headline(),
            self.service,
            lines.join("\n")
        )
    }
}

/// What a scenario expects of its stack's services.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// Each watched service's state when it was last known good.
    baseline: BTreeMap<String, ContainerState>,
    /// Services a step stopped, killed or paused: not watched until a step
    /// starts them again.
    let_go: BTreeSet<String>,
}

impl Watch {
    /// Watches the services as `found` (each service's container inspected
    /// when the stack was ready). A service found not running is reported at
    /// the first check, like one that died later.
    pub fn new(found: BTreeMap<String, Inspected>) -> Watch {
        let baseline = found
            .into_iter()
            .filter_map(|(service, seen)| match seen {
                Inspected::State(state) => Some((service, state)),
                _ => None,
            })
            .collect();
        Watch {
            baseline,
            let_go: BTreeSet::new(),
        }
    }

    /// A docker step acts on `service`: not watched until [`Watch::resume`].
    pub fn let_go(&mut self, service: &str) {
        self.let_go.insert(service.to_owned());
    }

    /// A step started, restarted or unpaused `service`, and it is ready:
    /// it is watched again from the state `found` now.
    pub fn resume(&mut self, service: &str, found: Inspected) {
        self.let_go.remove(service);
        match found {
            Inspected::State(state) => {
                self.baseline.insert(service.to_owned(), state);
            }
            _ => {
                self.baseline.remove(service);
            }
        }
    }

    /// Whether `service` is watched now.
    pub fn watches(&self, service: &str) -> bool {
        !self.let_go.contains(service)
    }

    /// The services that died or restarted unasked, comparing what is
    /// `found` now with the baseline; services let go are ignored. A watched
    /// service must run, and run the same container process as at its
    /// baseline: the same restart count and start time.
    pub fn compare(
        &self,
        found: &BTreeMap<String, Inspected>,
    ) -> Vec<(String, Change, Option<ContainerState>)> {
        let mut changes = Vec::new();
        for (service, seen) in found.iter().filter(|(s, _)| self.watches(s)) {
            let change = match seen {
                Inspected::Gone => Some((Change::Gone, None)),
                Inspected::Unreadable(error) => Some((
                    Change::Unreadable {
                        error: error.clone(),
                    },
                    None,
                )),
                Inspected::State(now) => {
                    change_of(self.baseline.get(service), now).map(|c| (c, Some(now.clone())))
                }
            };
            if let Some((change, state)) = change {
                changes.push((service.clone(), change, state));
            }
        }
        changes
    }
}

/// What became of a service from `before` (none: never seen running) to `now`.
fn change_of(before: Option<&ContainerState>, now: &ContainerState) -> Option<Change> {
    let Some(before) = before else {
        return (!now.running).then_some(Change::Exited);
    };
    let restarted = now.restart_count > before.restart_count || now.started_at != before.started_at;
    if restarted && now.running {
        Some(Change::Restarted {
            restarts_before: before.restart_count,
        })
    } else if !now.running {
        Some(Change::Exited)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(started_at: &str, restarts: i64) -> ContainerState {
        ContainerState {
            running: true,
            status: "running".into(),
            exit_code: 0,
            oom_killed: false,
            restart_count: restarts,
            started_at: started_at.into(),
        }
    }

    fn exited(code: i64, oom: bool) -> ContainerState {
        ContainerState {
            running: false,
            status: "exited".into(),
            exit_code: code,
            oom_killed: oom,
            ..running("t0", 0)
        }
    }

    fn found(entries: &[(&str, Inspected)]) -> BTreeMap<String, Inspected> {
        entries
            .iter()
            .map(|(s, i)| ((*s).to_owned(), i.clone()))
            .collect()
    }

    fn stack() -> Watch {
        Watch::new(found(&[
            ("checker", Inspected::State(running("t0", 0))),
            ("api", Inspected::State(running("t0", 0))),
        ]))
    }

    #[test]
    fn services_that_run_as_they_did_are_fine() {
        let now = found(&[
            ("checker", Inspected::State(running("t0", 0))),
            ("api", Inspected::State(running("t0", 0))),
        ]);
        assert_eq!(stack().compare(&now), vec![]);
    }

    #[test]
    fn a_service_that_exited_is_reported_with_its_state() {
        let now = found(&[
            ("checker", Inspected::State(exited(137, true))),
            ("api", Inspected::State(running("t0", 0))),
        ]);
        let changes = stack().compare(&now);
        assert_eq!(
            changes,
            vec![(
                "checker".to_owned(),
                Change::Exited,
                Some(exited(137, true))
            )]
        );
    }

    #[test]
    fn a_restart_shows_in_the_count_or_in_the_start_time() {
        let counted = found(&[("api", Inspected::State(running("t1", 1)))]);
        assert_eq!(
            stack().compare(&counted)[0].1,
            Change::Restarted { restarts_before: 0 }
        );
        // `docker restart` by hand leaves the count alone; the start time moves.
        let by_hand = found(&[("api", Inspected::State(running("t1", 0)))]);
        assert_eq!(
            stack().compare(&by_hand)[0].1,
            Change::Restarted { restarts_before: 0 }
        );
    }

    #[test]
    fn a_removed_or_unreadable_container_is_reported() {
        let now = found(&[
            ("checker", Inspected::Gone),
            ("api", Inspected::Unreadable("boom".into())),
        ]);
        let changes: Vec<Change> = stack().compare(&now).into_iter().map(|c| c.1).collect();
        assert_eq!(
            changes,
            vec![
                Change::Unreadable {
                    error: "boom".into()
                },
                Change::Gone
            ]
        );
    }

    #[test]
    fn a_service_not_running_at_the_baseline_is_reported_too() {
        // On a shared stack a service may die before a later scenario starts.
        let watch = Watch::new(found(&[("checker", Inspected::State(exited(1, false)))]));
        let now = found(&[("checker", Inspected::State(exited(1, false)))]);
        assert_eq!(watch.compare(&now)[0].1, Change::Exited);
        let never_seen = Watch::new(found(&[("checker", Inspected::Gone)]));
        assert_eq!(never_seen.compare(&now)[0].1, Change::Exited);
    }

    #[test]
    fn a_service_a_step_stopped_is_let_go_until_a_step_starts_it_again() {
        let mut watch = stack();
        watch.let_go("checker");
        let stopped = found(&[("checker", Inspected::State(exited(0, false)))]);
        assert_eq!(watch.compare(&stopped), vec![]);
        // Started again by a step: watched from its new start on.
        watch.resume("checker", Inspected::State(running("t2", 0)));
        let again = found(&[("checker", Inspected::State(running("t2", 0)))]);
        assert_eq!(watch.compare(&again), vec![]);
        let died = found(&[("checker", Inspected::State(exited(2, false)))]);
        assert_eq!(watch.compare(&died)[0].1, Change::Exited);
    }

    #[test]
    fn the_message_names_the_service_exit_code_oom_and_restarts_with_the_last_lines() {
        let death = Death {
            service: "checker".into(),
            change: Change::Exited,
            state: Some(exited(137, true)),
            after_step: 2,
            step_name: "wait".into(),
            logs: "line one\nline two\n".into(),
        };
        assert_eq!(
            death.render(),
            "service checker died without a step asking for it: exited, exit code 137, OOMKilled: true, restart count 0 (noticed after step 2 \"wait\")\n  last lines of checker:\n  | line one\n  | line two"
        );
        let restarted = Death {
            change: Change::Restarted { restarts_before: 0 },
            state: Some(ContainerState {
                exit_code: 1,
                ..running("2026-12-03T10:00:00Z", 3)
            }),
            logs: String::new(),
            ..death
        };
        assert_eq!(
            restarted.render(),
            "service checker restarted without a step asking for it: restart count 3 (was 0), last exit code 1, OOMKilled: false, running again since 2026-12-03T10:00:00Z (noticed after step 2 \"wait\")"
        );
    }
}
