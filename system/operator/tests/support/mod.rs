//! A sample `Metr` shared by the tests.

use metr_operator::Metr;

/// A valid `Metr` named `demo` in namespace `metr`, with two targets.
pub fn sample() -> Metr {
    serde_yaml::from_str(SAMPLE).expect("the sample Metr parses")
}

/// A valid `Metr` named `demo` in namespace `metr` with an embedded
/// PostgreSQL and gometr.
pub fn embedded() -> Metr {
    serde_yaml::from_str(EMBEDDED).expect("the embedded sample Metr parses")
}

pub const EMBEDDED: &str =
    include_str!("../../../../deploy/kubernetes/operator/sample-metr-embedded.yaml");

pub const SAMPLE: &str = include_str!("../../../../deploy/kubernetes/operator/sample-metr.yaml");
