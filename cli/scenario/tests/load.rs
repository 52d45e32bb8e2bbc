//! Loading scenario text: what is accepted, and every mistake told at its
//! line and column.

use std::path::Path;

use metrtest_scenario::expect::Expect;
use metrtest_scenario::load::{Diagnostic, parse};
use metrtest_scenario::model::Action;
use metrtest_scenario::references::Context;

fn problems(text: &str) -> Vec<Diagnostic> {
    parse(Path::new("s.yaml"), text, &Context::default()).expect_err("should be rejected")
}

fn first(text: &str) -> (Option<usize>, Option<usize>, String) {
    let p = problems(text).remove(0);
    (p.line, p.column, p.message)
}

const GOOD: &str = r#"
name: gometr health checks are recorded
tags: [smoke]
steps:
  - name: checks show gometr up
    http:
      path: /api/v1/checks
      query: { target: gometr, limit: 5, label: [a=b, c=d] }
    retry: { timeout: 30s, interval: 500ms }
    expect:
      status: 200
      headers: { content-type: { contains: application/json } }
      json:
        "$.status": success
        "$.data": { length_gte: 1 }
    capture:
      first: "$.data[0].checked_at"
  - docker: { stop: gometr }
  - sql: "SELECT count(*) AS n FROM samples"
    expect: { rows: { "0.n": { gt: 0 } }, row_count: 1 }
  - metrics: { service: checker }
    expect:
      'checker_samples_written_total': { gt: 0 }
      'checker_scrapes_total{result="success"}': { gte: "{{ first }}" }
  - logs: { service: checker, contains: database }
    retry: { timeout: 5s }
  - sleep: 2s
"#;

#[test]
fn the_documented_example_parses() {
    let loaded = parse(Path::new("s.yaml"), GOOD, &Context::default()).unwrap();
    let s = loaded.scenario;
    assert_eq!(s.steps.len(), 6);
    assert!(
        s.needs_own_stack(),
        "a docker step implies a stack of its own"
    );
    let Expect::Http(e) = &s.steps[0].expect else {
        panic!("an http step has http expectations")
    };
    assert_eq!(e.json.0.len(), 2);
    assert_eq!(s.steps[1].name, "docker stop gometr");
    let Expect::Metrics(e) = &s.steps[3].expect else {
        panic!("a metrics step has series expectations")
    };
    assert_eq!(e.series.len(), 2);
}

#[test]
fn errors_point_at_line_and_column() {
    let (line, column, message) =
        first("name: x\nsteps:\n  - http: { path: /a }\n    expect: { status: 200, stauts: 1 }\n");
    assert_eq!(line, Some(4));
    assert!(column.is_some());
    assert!(message.contains("stauts"), "{message}");

    let (line, _, message) = first(
        "name: x\nsteps:\n  - http: { path: /a }\n    expect:\n      json:\n        \"$.data[\": 1\n",
    );
    assert_eq!(line, Some(6), "{message}");
    assert!(message.contains("JSONPath"), "{message}");

    let (line, _, message) =
        first("name: x\nsteps:\n  - http: { path: /a }\n    expect: { status: { greater: 1 } }\n");
    assert_eq!(line, Some(4));
    assert!(message.contains("unknown matcher"), "{message}");

    let (line, _, message) = first("name: x\nsteps:\n  - sleep: soon\n");
    assert_eq!(line, Some(3));
    assert!(message.contains("duration"), "{message}");
}

// Over 80 lines on purpose: one table of cases, each a file or text and
// what its error must say, reads better whole than split.
#[test]
fn structural_mistakes_are_explained() {
    for (text, word) in [
        ("steps: []\n", "name"),
        ("name: x\nsteps: []\n", "at least one step"),
        (
            "name: x\nsteps:\n  - http: { path: /a }\n    sql: SELECT 1\n",
            "exactly one action",
        ),
        (
            "name: x\nsteps:\n  - sql: SELECT 1\n    expect: { status: 200 }\n",
            "does not apply",
        ),
        (
            "name: x\nsteps:\n  - docker: { stop: a, start: b }\n",
            "exactly one of stop",
        ),
        (
            "name: x\nsteps:\n  - logs: { service: a }\n",
            "contains or matches",
        ),
        (
            "name: x\nsteps:\n  - http: { path: /a, methd: GET }\n",
            "methd",
        ),
        (
            "name: x\nsteps:\n  - http: { path: /a }\n    expect: { json_schema: missing.json }\n",
            "json_schema",
        ),
        (
            "name: x\nsteps:\n  - http: { path: '/a?x={{ y' }\n",
            "unclosed",
        ),
        (
            "name: x\nsteps:\n  - http: { path: /a }\n    capture: { a: 'not a path' }\n",
            "JSONPath",
        ),
        (
            "name: x\ntimeout: forever\nsteps:\n  - sleep: 1s\n",
            "duration",
        ),
        ("name: x\nstep:\n  - sleep: 1s\n", "step"),
    ] {
        let all = problems(text);
        assert!(
            all.iter().any(|p| p.message.contains(word)),
            "{text:?}: {all:?}"
        );
        assert!(
            all.iter().all(|p| p.line.is_some()),
            "{text:?} lacks a position: {all:?}"
        );
    }
}

#[test]
fn statuses_are_checked_but_comparison_bounds_are_free() {
    let step = |expect: &str| {
        format!("name: x\nsteps:\n  - http: {{ path: /a }}\n    expect: {{ status: {expect} }}\n")
    };
    for good in [
        "200",
        "\"201\"",
        "{ lt: 600, gte: 99 }",
        "{ one_of: [200, 503] }",
        "\"{{ env.S }}\"",
    ] {
        assert!(
            parse(Path::new("s.yaml"), &step(good), &Context::default()).is_ok(),
            "{good}"
        );
    }
    for bad in [
        "two hundred",
        "{ not_equals: 700 }",
        "{ one_of: [200, ok] }",
        "true",
    ] {
        let (_, _, message) = first(&step(bad));
        assert!(message.contains("not an HTTP status"), "{bad}: {message}");
    }
}

#[test]
fn a_nul_byte_is_shown_at_its_own_line_and_column() {
    let text = "name: x\nsteps:\n  - sleep: 1s\n  - na\0me: y\n";
    assert_eq!(
        first(text),
        (
            Some(4),
            Some(7),
            "control characters are not allowed in a scenario file: U+0000 here".into()
        )
    );
    // After a character of several bytes the column still counts characters.
    let text = "name: café\u{1b}\nsteps: []\n";
    assert_eq!(first(text).0, Some(1));
    assert_eq!(first(text).1, Some(11));
}

#[test]
fn a_diagnostic_shows_the_line_and_a_caret() {
    let p = problems("name: x\nsteps:\n  - sleep: soon\n").remove(0);
    let shown = p.to_string();
    assert!(shown.starts_with("s.yaml:3:"), "{shown}");
    assert!(shown.contains("3 |   - sleep: soon"), "{shown}");
    assert!(shown.contains('^'), "{shown}");
}

#[test]
fn a_capture_used_before_its_step_runs_is_a_load_error_at_the_use() {
    let text = "name: x\nsteps:\n  - http: { path: '/a/{{ id }}' }\n  - http: { path: /b }\n    capture: { id: $.id }\n  - http: { path: '/c/{{ id }}' }\n";
    let all = problems(text);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((all[0].line, all[0].column), (Some(3), Some(23)));
    assert!(
        all[0].message.contains("used before it is captured"),
        "{}",
        all[0].message
    );
}

#[test]
fn fail_if_takes_the_expectations_of_its_step_kind() {
    let step = |fail_if: &str| {
        format!(
            "name: x\nsteps:\n  - http: {{ path: /a }}\n    retry: {{ timeout: 5s, fail_if: {fail_if} }}\n    expect: {{ status: 200 }}\n"
        )
    };
    let loaded = parse(
        Path::new("s.yaml"),
        &step("{ json: { \"$.state\": down } }"),
        &Context::default(),
    )
    .expect("a valid fail_if");
    let retry = loaded.scenario.steps[0].retry.clone().expect("retry");
    assert_eq!(retry.fail_if.expect("fail_if").first_span().line, 4);
    for (bad, word) in [
        (
            "{ json: { \"$.state\": { greater: 1 } } }",
            "unknown matcher",
        ),
        ("{ rows: { \"0.n\": 1 } }", "does not apply to a http step"),
        ("{}", "at least one expectation"),
    ] {
        let (line, _, message) = first(&step(bad));
        assert_eq!(line, Some(4), "{bad}: {message}");
        assert!(message.contains(word), "{bad}: {message}");
    }
}

#[test]
fn an_http_method_is_a_known_method_in_any_case() {
    let text = |m: &str| format!("name: x\nsteps:\n  - http: {{ path: /a, method: {m} }}\n");
    let loaded = parse(Path::new("s.yaml"), &text("post"), &Context::default()).unwrap();
    let Action::Http(h) = &loaded.scenario.steps[0].action else {
        panic!("an http step")
    };
    assert_eq!(h.method.as_str(), "POST");
    let (line, _, message) = first(&text("FETCH"));
    assert_eq!(line, Some(3));
    assert!(message.contains("\"FETCH\" is not one of GET"), "{message}");
}

#[test]
fn every_step_matcher_and_capture_knows_its_line() {
    let s = parse(Path::new("s.yaml"), GOOD, &Context::default())
        .unwrap()
        .scenario;
    let lines: Vec<usize> = s.steps.iter().map(|st| st.span.line).collect();
    assert_eq!(lines, [5, 18, 19, 21, 25, 27]);
    let spans: Vec<usize> = s.steps[0]
        .expect
        .matchers()
        .iter()
        .map(|m| m.span.line)
        .collect();
    assert_eq!(spans, [11, 12, 14, 15]);
    assert_eq!(s.steps[0].capture[0].span.line, 17);
}

#[test]
fn every_problem_is_returned_in_the_order_of_its_position() {
    let text = "name: x\nsteps:\n  - http: { path: /a, methd: GET }\n  - sleep: soon\n  - sql: SELECT 1\n    expect: { stauts: 1 }\n";
    let all = problems(text);
    let at: Vec<(Option<usize>, Option<usize>)> = all.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(
        at,
        [
            (Some(3), Some(23)),
            (Some(4), Some(12)),
            (Some(6), Some(15))
        ],
        "{all:?}"
    );
    assert_eq!(all[0].help.as_deref(), Some("did you mean `method`?"));
    assert_eq!(all[2].help, None, "an sql step has no status: {all:?}");
}

#[test]
fn a_misspelt_expectation_is_told_at_its_key_with_the_one_meant() {
    let text =
        "name: x\nsteps:\n  - name: a\n    http: { path: /a }\n    expect:\n      stauts: 200\n";
    let all = problems(text);
    assert_eq!((all[0].line, all[0].column), (Some(6), Some(7)), "{all:?}");
    assert_eq!(all[0].help.as_deref(), Some("did you mean \"status\"?"));
}

#[test]
fn a_part_that_cannot_be_read_does_not_hide_its_neighbours() {
    let text = "name: x\nsteps:\n  - http: { path: /a }\n    expect: { status: { one_of: [200, ok] }, json: { \"$.a\": {} } }\n";
    let all = problems(text);
    let at: Vec<(Option<usize>, Option<usize>)> = all.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(at, [(Some(4), Some(15)), (Some(4), Some(61))], "{all:?}");
}

#[test]
fn a_repeated_key_is_told_once() {
    let all = problems("name: x\nsteps:\n  - sleep: 1s\nname: y\n");
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].message.contains("duplicate key \"name\""), "{all:?}");
}

#[test]
fn a_step_whose_action_cannot_be_read_still_has_its_expectations_checked() {
    let text = "name: x\nsteps:\n  - sql: [SELECT 1]\n    expect: { status: 200 }\n";
    let all = problems(text);
    let at: Vec<(Option<usize>, Option<usize>)> = all.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(at, [(Some(3), Some(10)), (Some(4), Some(15))], "{all:?}");
    assert!(
        all[1].message.contains("does not apply to a sql step"),
        "{all:?}"
    );
}

#[test]
fn slots_are_a_count_from_one_or_all_and_never_more_than_the_jobs() {
    use metrtest_scenario::model::Slots;
    let with = |slots: &str| format!("name: x\nslots: {slots}\nsteps:\n  - sleep: 1s\n");
    let loaded = |slots: &str| {
        parse(Path::new("s.yaml"), &with(slots), &Context::default())
            .expect("loads")
            .scenario
            .slots
    };
    assert_eq!(loaded("all"), Slots::All);
    assert_eq!(loaded("3"), Slots::Count(3));
    assert_eq!(Slots::default(), Slots::Count(1));
    assert_eq!(Slots::All.of(8), 8);
    assert_eq!(Slots::Count(3).of(2), 2, "never more than there are");
    assert_eq!(Slots::Count(3).of(8), 3);
    for bad in ["0", "-1", "some", "1.5"] {
        let (line, column, message) = first(&with(bad));
        assert_eq!((line, column), (Some(2), Some(8)), "{bad}: {message}");
        assert!(message.contains("slots"), "{bad}: {message}");
    }
}
