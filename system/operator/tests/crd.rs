//! The checked-in CRD is the one generated from the Rust type.

const CHECKED_IN: &str = include_str!("../../../deploy/kubernetes/operator/crd.yaml");

#[test]
fn the_checked_in_crd_matches_the_rust_type() {
    let generated = metr_operator::crd_yaml().unwrap();

    assert!(
        generated == CHECKED_IN,
        "deploy/kubernetes/operator/crd.yaml is stale: regenerate it with \
         `cargo run -q -p metr-operator -- crd > deploy/kubernetes/operator/crd.yaml`"
    );
}
