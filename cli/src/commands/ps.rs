//! `metrtest ps`: runs and their services.

use std::collections::BTreeMap;

use comfy_table::Table;

use crate::docker::{engine, labels, stack};
use crate::exit::Result;

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

pub async fn run() -> Result<()> {
    let docker = engine::connect().await?;
    let containers = stack::list_containers(&docker, None).await?;
    let now = chrono::Utc::now().timestamp();
    let mut rows: BTreeMap<(String, String), [String; 3]> = BTreeMap::new();
    for c in containers {
        let labels = c.labels.unwrap_or_default();
        let run = labels.get(labels::RUN).cloned().unwrap_or_default();
        let service = labels.get(labels::SERVICE).cloned().unwrap_or_default();
        let state = c.state.map(|s| s.to_string()).unwrap_or_default();
        let ports: Vec<String> = c
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some(format!("{}:{}->{}", p.ip?, p.public_port?, p.private_port)))
            .collect();
        let created = c.created.unwrap_or(now);
        rows.insert(
            (run, service),
            [state, ports.join(", "), age(now - created)],
        );
    }
    if rows.is_empty() {
        println!("no metrtest runs");
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["run", "service", "state", "ports", "age"]);
    for ((run, service), [state, ports, age]) in rows {
        table.add_row([run, service, state, ports, age]);
    }
    println!("{table}");
    Ok(())
}
