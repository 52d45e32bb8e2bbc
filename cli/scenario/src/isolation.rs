//! Whether a scenario may share a stack: decided by what its steps can change.
//!
//! A scenario gets a stack of its own when any step can change what a
//! neighbour sees: `docker` and `network` steps always, an `http` step with a
//! method other than GET, HEAD or OPTIONS, an `sql` step that is not a plain
//! `SELECT` (or `WITH … SELECT`). `isolated: true` forces a stack of its own;
//! `isolated: false` keeps an `http` or `sql` step's scenario on the shared
//! stack (the author vouches for it), but never a `docker` or `network`
//! step's: stopping a service or cutting a link breaks every neighbour.

use crate::model::{Action, HttpMethod, Scenario, Step};
use crate::span::Span;

/// Where a scenario runs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// On the stack its environment's scenarios share.
    Shared,
    /// On a stack of its own, because `isolated: true` says so.
    Asked,
    /// On a stack of its own, because a step can change what a neighbour sees.
    Effect(Effect),
    /// On the shared stack although a step changes it: `isolated: false`.
    OptedOut(Effect),
}

impl Isolation {
    /// Whether the scenario gets a stack of its own.
    pub fn own_stack(&self) -> bool {
        matches!(self, Isolation::Asked | Isolation::Effect(_))
    }

    /// Why the scenario runs on a stack of its own, for reports and `--list`.
    pub fn reason(&self) -> Option<String> {
        match self {
            Isolation::Shared | Isolation::OptedOut(_) => None,
            Isolation::Asked => Some("isolated: true".into()),
            Isolation::Effect(effect) => Some(effect.to_string()),
        }
    }
}

/// The first step that can change what a neighbour on the same stack sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// 1-based, as the steps are counted in reports.
    pub step: usize,
    pub step_name: String,
    /// What the step does to the stack, e.g. "PUT /control on gometr".
    pub what: String,
    pub span: Span,
    /// A step whose effect `isolated: false` cannot waive.
    pub always: bool,
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step {} ({:?}) {}", self.step, self.step_name, self.what)
    }
}

impl Scenario {
    /// Where the scenario runs, from `isolated:` and what its steps do.
    pub fn isolation(&self) -> Isolation {
        let effects = || {
            self.steps
                .iter()
                .enumerate()
                .filter_map(|(i, step)| effect(i, step))
        };
        if let Some(always) = effects().find(|e| e.always) {
            return match self.isolated {
                Some(true) => Isolation::Asked,
                _ => Isolation::Effect(always),
            };
        }
        match (self.isolated, effects().next()) {
            (Some(true), _) => Isolation::Asked,
            (Some(false), Some(e)) => Isolation::OptedOut(e),
            (None, Some(e)) => Isolation::Effect(e),
            (_, None) => Isolation::Shared,
        }
    }

    /// A fresh stack of its own: asked for, or implied by what a step does.
    pub fn needs_own_stack(&self) -> bool {
        self.isolation().own_stack()
    }

    /// What `validate` should warn about: `isolated: false` that keeps a
    /// changing step on the shared stack, or that a step overrides.
    pub fn isolation_warning(&self) -> Option<(Span, String)> {
        match (self.isolated, self.isolation()) {
            (_, Isolation::OptedOut(e)) => Some((
                e.span,
                format!(
                    "{e}, yet isolated: false keeps the scenario on the shared stack: its neighbours see the change"
                ),
            )),
            (Some(false), Isolation::Effect(e)) => Some((
                e.span,
                format!("{e}: isolated: false is ignored, the scenario gets a stack of its own"),
            )),
            _ => None,
        }
    }
}

fn effect(index: usize, step: &Step) -> Option<Effect> {
    let (what, always) = match &step.action {
        Action::Docker(d) => (
            format!("is a docker step ({:?} {})", d.verb, d.service).to_lowercase(),
            true,
        ),
        Action::Network(n) => (format!("is a network step ({})", n.describe()), true),
        Action::Http(h) if !safe_method(h.method) => (
            format!("sends {} {} to {}", h.method, h.path, h.service),
            false,
        ),
        Action::Sql(q) if !plain_select(q) => {
            ("runs SQL that is not a plain SELECT".to_owned(), false)
        }
        _ => return None,
    };
    Some(Effect {
        step: index + 1,
        step_name: step.name.clone(),
        what,
        span: step.span,
        always,
    })
}

/// Methods that, by HTTP's contract, change nothing on the server.
fn safe_method(method: HttpMethod) -> bool {
    matches!(
        method,
        HttpMethod::Get | HttpMethod::Head | HttpMethod::Options
    )
}

/// Words that make a statement change something: data-modifying statements
/// (also inside `WITH`), `SELECT … INTO` (creates a table), `FOR UPDATE` /
/// `FOR SHARE` locks, and functions with effects beyond the query.
const CHANGING_WORDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "merge",
    "into",
    "truncate",
    "share",
    "nextval",
    "setval",
    "set_config",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_switch_wal",
    "pg_notify",
    "dblink",
    "dblink_exec",
    "lo_import",
    "lo_export",
    "lo_unlink",
];

/// One statement that starts with `SELECT` or `WITH` and holds no word of
/// [`CHANGING_WORDS`] outside strings, quoted names and comments.
pub fn plain_select(sql: &str) -> bool {
    let words = words(sql);
    let mut statements = words.split(|w| w == ";").filter(|s| !s.is_empty());
    let (Some(statement), None) = (statements.next(), statements.next()) else {
        return false;
    };
    matches!(statement[0].as_str(), "select" | "with")
        && !statement.iter().any(|w| {
            CHANGING_WORDS.contains(&w.as_str())
                || w.starts_with("pg_advisory")
                || w.starts_with("pg_try_advisory")
        })
}

/// The statement's words (lowercased) and `;`, skipping comments, string
/// literals, dollar quotes and quoted names.
fn words(sql: &str) -> Vec<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        i = match c {
            '-' if next == Some('-') => skip_until(&chars, i, "\n"),
            '/' if next == Some('*') => skip_block_comment(&chars, i),
            '\'' => skip_quoted(&chars, i + 1, '\''),
            '"' => skip_quoted(&chars, i + 1, '"'),
            '$' => skip_dollar_quoted(&chars, i),
            ';' => {
                words.push(";".to_owned());
                i + 1
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = (i..chars.len())
                    .find(|&j| !(chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '$'))
                    .unwrap_or(chars.len());
                words.push(chars[i..end].iter().collect::<String>().to_lowercase());
                end
            }
            _ => i + 1,
        };
    }
    words
}

fn skip_until(chars: &[char], from: usize, end: &str) -> usize {
    let end: Vec<char> = end.chars().collect();
    (from..chars.len())
        .find(|&j| chars[j..].starts_with(&end))
        .map_or(chars.len(), |j| j + end.len())
}

/// `/* … */`, nested as PostgreSQL nests them.
fn skip_block_comment(chars: &[char], from: usize) -> usize {
    let (mut depth, mut i) = (0usize, from);
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('/', Some('*')) => (depth, i) = (depth + 1, i + 2),
            ('*', Some('/')) => {
                (depth, i) = (depth - 1, i + 2);
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// A string or quoted name; a doubled quote is one quote inside it.
fn skip_quoted(chars: &[char], mut i: usize, quote: char) -> usize {
    while i < chars.len() {
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    chars.len()
}

/// `$tag$ … $tag$`; a `$` that opens no tag (a parameter `$1`) is skipped alone.
fn skip_dollar_quoted(chars: &[char], from: usize) -> usize {
    let tag_char = |c: &char| c.is_alphanumeric() || *c == '_';
    let mut end = from + 1;
    if chars
        .get(end)
        .is_some_and(|c| c.is_alphabetic() || *c == '_')
    {
        while chars.get(end).is_some_and(tag_char) {
            end += 1;
        }
    }
    if chars.get(end) != Some(&'$') {
        return from + 1;
    }
    let tag: String = chars[from..=end].iter().collect();
    skip_until(chars, end + 1, &tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_selects_share_a_stack() {
        for sql in [
            "SELECT 1",
            "  select count(*) from sample_values where name = 'up';",
            "WITH t AS (SELECT 1 AS n) SELECT n FROM t",
            "SELECT 'insert into x' AS text -- delete\n",
            "SELECT \"update\" FROM t /* truncate /* nested */ merge */",
            "SELECT $$ drop table x; $$ AS s",
            "SELECT $q$ insert $q$",
            "SELECT substring('abc' from 1 for 2)",
        ] {
            assert!(plain_select(sql), "{sql}");
        }
    }

    #[test]
    fn statements_that_change_something_need_a_stack_of_their_own() {
        for sql in [
            "DELETE FROM checks",
            "SELECT 1; DELETE FROM checks",
            "WITH gone AS (DELETE FROM checks RETURNING *) SELECT count(*) FROM gone",
            "SELECT * INTO copy FROM checks",
            "SELECT * FROM checks FOR UPDATE",
            "SELECT * FROM checks FOR SHARE",
            "SELECT setval('s', 1)",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
            "SELECT pg_advisory_lock(1)",
            "UPDATE targets SET interval_ms = 1",
            "VACUUM",
            "",
        ] {
            assert!(!plain_select(sql), "{sql}");
        }
    }
}
