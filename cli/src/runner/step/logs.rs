//! `logs`: whether a service's log holds a line, by substring or regex.

use crate::runner::expect::{ExpectError, Finding};
use crate::runner::observation::Observation;
use crate::runner::step::{Seen, StepContext, Trouble};
use crate::scenario::model::LogsAction;
use crate::scenario::span::Span;
use crate::scenario::template::{self, Vars};

pub(super) async fn observe(l: &LogsAction, ctx: &StepContext<'_>) -> Result<Seen, Trouble> {
    let container = ctx.stack.container_of(&l.service).map_err(Trouble::new)?;
    let text = ctx.stack.engine.tail_logs(&container, 100_000).await;
    Ok(Seen {
        request: format!("logs of {}", l.service),
        observation: Observation::Logs(text),
    })
}

/// The finding when no line of `text` is what `l` looks for.
pub(super) fn check(l: &LogsAction, text: &str, vars: &Vars) -> Result<Vec<Finding>, ExpectError> {
    let (found, wanted) = match (&l.contains, &l.matches) {
        (Some(needle), _) => {
            let needle = template::render_str(needle, vars)?;
            (text.contains(&needle), format!("contains {needle:?}"))
        }
        (_, Some(pattern)) => {
            let pattern = template::render_str(pattern, vars)?;
            let re = regex::Regex::new(&pattern)?;
            (re.is_match(text), format!("matches {pattern:?}"))
        }
        (None, None) => return Err(ExpectError::NoLogsPattern),
    };
    if found {
        return Ok(vec![]);
    }
    Ok(vec![Finding {
        what: "logs".into(),
        text: format!(
            "expected a line that {wanted}, found none in {} lines",
            text.lines().count()
        ),
        span: Span::default(),
    }])
}

/// The last lines of a log, shown with a failure.
pub(super) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(contains: Option<&str>, matches: Option<&str>) -> LogsAction {
        LogsAction {
            service: "checker".into(),
            contains: contains.map(str::to_owned),
            matches: matches.map(str::to_owned),
        }
    }

    #[test]
    fn a_line_is_found_by_substring_or_regex() {
        let text = "starting\nwrote 10 samples\n";
        let vars = Vars::default();
        assert!(
            check(&logs(Some("wrote"), None), text, &vars)
                .unwrap()
                .is_empty()
        );
        assert!(
            check(&logs(None, Some(r"wrote \d+")), text, &vars)
                .unwrap()
                .is_empty()
        );
        let missing = check(&logs(Some("panic"), None), text, &vars).unwrap();
        assert_eq!(
            missing[0].text,
            "expected a line that contains \"panic\", found none in 2 lines"
        );
    }

    #[test]
    fn the_tail_keeps_the_last_twenty_lines() {
        let text: String = (1..=30).map(|i| format!("{i}\n")).collect();
        let shown = tail(&text);
        assert!(
            shown.starts_with("11\n") && shown.ends_with("30"),
            "{shown}"
        );
    }
}
