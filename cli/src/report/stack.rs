//! A running stack as a person reads it: its services and their addresses.

use comfy_table::Table;

use crate::stack::Stack;

/// The services of a stack and how to reach them from the host.
pub fn service_table(stack: &Stack) -> Table {
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["service", "container", "url"]);
    for s in &stack.services {
        let url = if s.name == "postgres" {
            stack.postgres_url.clone()
        } else {
            s.url.clone()
        };
        table.add_row([s.name.as_str(), s.container.as_str(), url.as_str()]);
    }
    table
}
