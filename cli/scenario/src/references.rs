//! What a scenario may refer to besides itself — the stack's services and
//! links, `--var` names — in a [`Context`], and the check of its template
//! names. (Services and links are checked where they are read, in
//! [`crate::decode`].)

use crate::error::{LoadError, Problem};
use crate::model::Scenario;
use crate::network::{Link, UnknownLink};
use crate::span::Span;

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
    pub fn check_link(&self, link: &Link) -> Result<(), UnknownLink> {
        let Some(known) = self.links() else {
            return Ok(());
        };
        if known.contains(link) {
            return Ok(());
        }
        let listed: Vec<String> = known.iter().map(|l| format!("'{l}'")).collect();
        Err(UnknownLink {
            link: link.clone(),
            known: listed.join(", "),
        })
    }
}

/// Every template name in `text` that neither a `--var`, the run nor an
/// earlier step's capture sets, at its `{{`.
pub(crate) fn templates(text: &str, scenario: &Scenario, context: &Context) -> Vec<Problem> {
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
            let error = match first_capture(name) {
                Some(by) if by < used_in => continue,
                Some(by) => LoadError::UsedBeforeCaptured {
                    name: name.to_owned(),
                    step: by + 1,
                    step_name: scenario.steps[by].name.clone(),
                },
                None => LoadError::UnknownVariable(name.to_owned()),
            };
            out.push(Problem::new(Span::new(i + 1, column), error));
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
