//! `metrtest ps`: runs (owner, age, time to live left, what a kept stack is
//! kept for) and their services.

use std::collections::BTreeMap;

use comfy_table::Table;

use crate::engine::{self, Container, labels};
use crate::exit::Result;
use crate::stack::reaper::{self, Expiry};
use crate::stack::state::{self, ContainerState, Inspected};
use crate::ui;

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// The "ttl left" column: how a run ends, as its reaper reports it.
pub fn ttl_left(status: Option<&reaper::Status>, now: i64) -> String {
    match status.map(|s| &s.expiry) {
        None => "? (no reaper)".into(),
        Some(Expiry::WithOwner) => "with its owner".into(),
        Some(Expiry::Never) => "none".into(),
        Some(Expiry::At(t)) => age((t - now).max(0)),
    }
}

/// One run as `ps` shows it.
#[derive(Default)]
struct RunRow {
    owner: String,
    started: Option<i64>,
    services: Vec<String>,
}

pub async fn run() -> Result<()> {
    let engine = engine::connect().await?;
    let containers = engine.list_containers(None).await?;
    let now = chrono::Utc::now().timestamp();
    let (runs, services) = read_runs(containers, now);
    // `up` stacks restart a crashed service: one inspect per container tells how often.
    let containers: Vec<(String, String)> = services
        .values()
        .map(|[_, container, ..]| (container.clone(), container.clone()))
        .collect();
    let found = state::inspect_all(&engine, &containers).await;
    if runs.is_empty() {
        ui::print("no metrtest runs");
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["run", "owner", "age", "ttl left", "kept for", "services"]);
    for (run, row) in &runs {
        let status = reaper::status(&engine, run).await;
        let kept_for = status
            .as_ref()
            .and_then(|s| s.note.clone())
            .unwrap_or_default();
        table.add_row([
            run.clone(),
            row.owner.clone(),
            row.started.map(|s| age(now - s)).unwrap_or_default(),
            ttl_left(status.as_ref(), now),
            kept_for,
            row.services.len().to_string(),
        ]);
    }
    ui::print(table.to_string());
    if !services.is_empty() {
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(["run", "service", "state", "restarts", "ports", "age"]);
        for ((run, service), [state, container, ports, age]) in services {
            let (state, restarts) = match found.get(&container) {
                Some(Inspected::State(s)) => (state_text(s), s.restart_count.to_string()),
                _ => (state, String::new()),
            };
            table.add_row([run, service, state, restarts, ports, age]);
        }
        ui::print(table.to_string());
    }
    Ok(())
}

/// Each run's row and each service's (state, container, ports, age) read
/// from the labelled containers; a run's reaper counts for its age only.
#[expect(clippy::type_complexity, reason = "two tables' rows, used once")]
fn read_runs(
    containers: Vec<Container>,
    now: i64,
) -> (
    BTreeMap<String, RunRow>,
    BTreeMap<(String, String), [String; 4]>,
) {
    let mut runs: BTreeMap<String, RunRow> = BTreeMap::new();
    let mut services: BTreeMap<(String, String), [String; 4]> = BTreeMap::new();
    for c in containers {
        let labels = &c.labels;
        let run = c.run().unwrap_or_default().to_owned();
        let service = c.service().unwrap_or_default().to_owned();
        let row = runs.entry(run.clone()).or_default();
        if let Some(owner) = labels.get(labels::OWNER) {
            row.owner = owner.clone();
        }
        let started = labels
            .get(labels::STARTED)
            .and_then(|s| s.parse().ok())
            .or(c.created);
        row.started = match (row.started, started) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if service == labels::REAPER_SERVICE {
            continue;
        }
        row.services.push(service.clone());
        let state = c.state.clone();
        let container = labels::container_name(&run, &service);
        let ports: Vec<String> = c
            .ports
            .iter()
            .filter_map(|p| {
                Some(format!(
                    "{}:{}->{}",
                    p.host_ip.as_ref()?,
                    p.host,
                    p.container
                ))
            })
            .collect();
        let created = c.created.unwrap_or(now);
        services.insert(
            (run, service),
            [state, container, ports.join(", "), age(now - created)],
        );
    }
    (runs, services)
}

/// The state column: the engine's word, with the exit code of a container
/// that exited (`exited (137, OOM-killed)`).
fn state_text(s: &ContainerState) -> String {
    if s.running {
        return s.status.clone();
    }
    let oom = if s.oom_killed { ", OOM-killed" } else { "" };
    format!("{} ({}{oom})", s.status, s.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::reaper::Status;

    #[test]
    fn an_exited_service_shows_its_exit_code_and_an_oom_kill() {
        let mut s = ContainerState {
            running: true,
            status: "running".into(),
            exit_code: 0,
            oom_killed: false,
            restart_count: 2,
            started_at: String::new(),
        };
        assert_eq!(state_text(&s), "running");
        s.running = false;
        s.status = "exited".into();
        s.exit_code = 137;
        assert_eq!(state_text(&s), "exited (137)");
        s.oom_killed = true;
        assert_eq!(state_text(&s), "exited (137, OOM-killed)");
    }

    #[test]
    fn the_ttl_column_says_how_a_run_ends() {
        let status = |expiry| Status {
            owners: 0,
            expiry,
            note: None,
        };
        assert_eq!(ttl_left(None, 0), "? (no reaper)");
        assert_eq!(ttl_left(Some(&status(Expiry::Never)), 0), "none");
        assert_eq!(
            ttl_left(Some(&status(Expiry::WithOwner)), 0),
            "with its owner"
        );
        assert_eq!(ttl_left(Some(&status(Expiry::At(7260))), 0), "2h1m");
        assert_eq!(ttl_left(Some(&status(Expiry::At(10))), 20), "0s");
    }
}
