//! Matchers: what each check accepts when read, and what it says when it fails.

use metrtest_scenario::matcher::{Matcher, Mismatch};
use metrtest_scenario::template::Vars;
use serde_json::{Value, json};

fn check(matcher: Value, actual: Option<Value>) -> Vec<Mismatch> {
    let m = Matcher::from_value(matcher).unwrap();
    m.evaluate(actual.as_ref(), &Vars::default()).unwrap()
}

fn holds(matcher: Value, actual: Value) -> bool {
    check(matcher, Some(actual)).is_empty()
}

#[test]
fn a_plain_value_means_equals_with_numeric_tolerance() {
    assert!(holds(json!("up"), json!("up")));
    assert!(!holds(json!("up"), json!("down")));
    assert!(holds(json!(1), json!(1.0)));
    assert!(holds(json!(200), json!("200")));
}

#[test]
fn comparisons_and_lengths() {
    assert!(holds(json!({"lt": 1000}), json!(3.5)));
    assert!(!holds(json!({"gt": 5}), json!(5)));
    assert!(holds(json!({"gte": 5, "lte": 5}), json!(5)));
    assert!(holds(json!({"length_gte": 1}), json!([1])));
    assert!(!holds(json!({"length": 2}), json!("abc")));
    assert!(
        holds(json!({"gt": "10"}), json!(11)),
        "numeric strings from captures compare as numbers"
    );
}

#[test]
fn contains_is_substring_on_strings_and_membership_on_arrays() {
    assert!(holds(
        json!({"contains": "json"}),
        json!("application/json")
    ));
    assert!(holds(json!({"contains": "up"}), json!(["down", "up"])));
    assert!(!holds(json!({"contains": "u"}), json!(["down", "up"])));
    assert!(holds(json!({"not_contains": "x"}), json!("abc")));
}

#[test]
fn types_regexes_and_one_of() {
    assert!(holds(json!({"type": "array"}), json!([])));
    assert!(!holds(json!({"type": "number"}), json!("1")));
    assert!(holds(json!({"matches": "^2\\d\\d$"}), json!(204)));
    assert!(holds(json!({"one_of": ["up", "down"]}), json!("down")));
}

#[test]
fn nothing_selected_satisfies_only_exists_false() {
    assert!(check(json!({"exists": false}), None).is_empty());
    assert_eq!(check(json!({"exists": true}), None).len(), 1);
    assert_eq!(check(json!("x"), None).len(), 1);
    assert!(check(json!({"exists": true}), Some(json!(null))).is_empty());
}

#[test]
fn every_failed_check_is_reported_with_expected_and_actual() {
    let failed = check(json!({"gt": 10, "lt": 5, "type": "number"}), Some(json!(7)));
    let ops: Vec<_> = failed.iter().map(|m| m.op).collect();
    assert_eq!(ops, ["gt", "lt"]);
    assert_eq!(failed[0].to_string(), "expected gt 10, actual 7");
}

#[test]
fn bad_matchers_are_rejected_when_parsed() {
    for (bad, word) in [
        (json!({"greater": 1}), "unknown matcher"),
        (json!({}), "empty matcher"),
        (json!({"exists": "yes"}), "exists"),
        (json!({"type": "int"}), "type"),
        (json!({"matches": "("}), "regex"),
        (json!({"gt": "many"}), "gt"),
        (json!({"one_of": 1}), "one_of"),
    ] {
        let err = Matcher::from_value(bad.clone())
            .expect_err(&bad.to_string())
            .to_string();
        assert!(err.contains(word), "{bad}: {err}");
    }
}

#[test]
fn templates_in_expected_values_are_rendered() {
    let mut vars = Vars::default();
    vars.set("before", json!(41));
    let m = Matcher::from_value(json!({"gt": "{{ before }}"})).unwrap();
    assert!(m.evaluate(Some(&json!(42)), &vars).unwrap().is_empty());
    assert_eq!(m.evaluate(Some(&json!(41)), &vars).unwrap().len(), 1);
}
