//! Checks of what a scenario refers to: template names and services. Both are
//! only known outside the file (the stack, `--var`), so they come in a [`Context`].

use std::path::Path;

use crate::load::Diagnostic;
use crate::model::{Action, Scenario};
use crate::network::{Link, NetworkAction};
use crate::span::{NodePath, SourceMap, Span};

/// What a scenario may name besides its own captures.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The stack's services; `None` leaves service names unchecked.
    pub services: Option<Vec<String>>,
    /// Names given with `--var`.
    pub vars: Vec<String>,
}

impl Context {
    fn knows_service(&self, name: &str) -> bool {
        self.services
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == name))
    }

    /// The links a network step may name: what each client connects to.
    /// `None` when the services are not known.
    pub fn links(&self) -> Option<Vec<Link>> {
        let services = self.services.as_ref()?;
        let link = |client: &str, server: &str| Link {
            client: client.to_owned(),
            server: server.to_owned(),
        };
        let has = |name: &str| services.iter().any(|s| s == name);
        let mut out = Vec::new();
        if has("postgres") {
            out.extend(
                ["checker", "api"]
                    .into_iter()
                    .filter(|c| has(c))
                    .map(|c| link(c, "postgres")),
            );
        }
        if has("checker") {
            out.extend(
                services
                    .iter()
                    .filter(|s| *s == "gometr" || s.starts_with("gometr-"))
                    .map(|g| link("checker", g)),
            );
        }
        Some(out)
    }

    /// Whether `link` is one a fault may be put on, and if not, why, listing
    /// the links there are: the same words for `validate`, `run` and `up --faults`.
    /// Unchecked (`Ok`) when the services are not known.
    pub fn check_link(&self, link: &Link) -> Result<(), String> {
        let Some(known) = self.links() else {
            return Ok(());
        };
        if known.contains(link) {
            return Ok(());
        }
        let listed: Vec<String> = known.iter().map(|l| format!("'{l}'")).collect();
        Err(format!(
            "unknown link '{link}': a link is 'CLIENT->SERVER' between services of the stack \
             that talk to each other: {}",
            listed.join(", ")
        ))
    }

    fn services_list(&self) -> String {
        self.services
            .as_ref()
            .map(|l| l.join(", "))
            .unwrap_or_default()
    }
}

/// Every unknown template name and service in the scenario, at its position.
pub fn problems(
    file: &Path,
    text: &str,
    map: &SourceMap,
    scenario: &Scenario,
    context: &Context,
) -> Vec<Diagnostic> {
    let mut out = templates(file, text, scenario, context);
    out.extend(services(file, text, map, scenario, context));
    out
}

fn templates(file: &Path, text: &str, scenario: &Scenario, context: &Context) -> Vec<Diagnostic> {
    let outside = |name: &str| {
        name == "run.id"
            || name.starts_with("env.")
            || context.vars.iter().any(|v| v == name)
            || name
                .strip_prefix("services.")
                .and_then(|rest| rest.strip_suffix(".url"))
                .is_some_and(|service| context.knows_service(service))
    };
    // A capture is set when its step has run: only later steps can use it.
    let first_capture = |name: &str| {
        scenario
            .steps
            .iter()
            .position(|s| s.capture.iter().any(|c| c.name == name))
    };
    let step_at = |line: usize| {
        scenario
            .steps
            .iter()
            .rposition(|s| s.span.line <= line)
            .unwrap_or(0)
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        for (column, name) in template_names(line) {
            if outside(name) {
                continue;
            }
            let used_in = step_at(i + 1);
            let message = match first_capture(name) {
                Some(by) if by < used_in => continue,
                Some(by) => format!(
                    "template variable {name:?} is used before it is captured: step {} ({:?}) \
                     captures it, and a capture is only set for the steps after its own",
                    by + 1,
                    scenario.steps[by].name
                ),
                None => format!(
                    "unknown template variable {name:?}: no step captures it, and it is not \
                     run.id, env.NAME, services.<service>.url or a --var"
                ),
            };
            out.push(Diagnostic::at(
                file,
                text,
                Some(i + 1),
                Some(column),
                message,
            ));
        }
    }
    out
}

/// `{{ name }}` on one line: each name with the column of its `{{` (1-based).
fn template_names(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = line[from..].find("{{").map(|s| s + from) {
        let after = start + 2;
        let Some(end) = line[after..].find("}}").map(|e| e + after) else {
            break;
        };
        let name = line[after..end].trim();
        if !name.is_empty() {
            out.push((line[..start].chars().count() + 1, name));
        }
        from = end + 2;
    }
    out
}

fn services(
    file: &Path,
    text: &str,
    map: &SourceMap,
    scenario: &Scenario,
    context: &Context,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let at = NodePath::root()
            .key("steps")
            .index(i)
            .key(step.action.kind());
        let (key, service) = match &step.action {
            Action::Http(h) => ("service", h.service.as_str()),
            Action::Docker(d) => (d.verb.key(), d.service.as_str()),
            Action::Network(NetworkAction::Partition(s)) => ("partition", s.as_str()),
            Action::Network(NetworkAction::Heal(s)) => ("heal", s.as_str()),
            Action::Network(NetworkAction::Link { link, .. }) => {
                let span = map.value(&at.key("link"));
                out.extend(unknown_link(file, text, span, link, context));
                continue;
            }
            Action::Metrics(m) => ("service", m.service.as_str()),
            Action::Logs(l) => ("service", l.service.as_str()),
            Action::Sql(_) | Action::Sleep(_) => continue,
        };
        if context.knows_service(service) {
            continue;
        }
        out.push(Diagnostic::spanned(
            file,
            text,
            map.value(&at.key(key)),
            format!(
                "unknown service {service:?} (the stack has {})",
                context.services_list()
            ),
        ));
    }
    out
}

/// A link no network step may name: not between services of the stack that talk.
fn unknown_link(
    file: &Path,
    text: &str,
    span: Span,
    link: &Link,
    context: &Context,
) -> Option<Diagnostic> {
    let message = context.check_link(link).err()?;
    let (line, column) = (Some(span.line), Some(span.column));
    Some(Diagnostic::at(file, text, line, column, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_on_a_line_is_found_with_its_column() {
        assert_eq!(
            template_names("a: \"{{ x }}-{{y}}\" {{ }} {{ open"),
            vec![(5, "x"), (13, "y")]
        );
    }
}
