//! A sample `Metr` shared by the tests.

use metr_operator::Metr;

/// A valid `Metr` named `demo` in namespace `metr`, with two targets.
pub fn sample() -> Metr {
    serde_yaml::from_str(SAMPLE).expect("the sample Metr parses")
}

pub const SAMPLE: &str = include_str!("../../../../deploy/kubernetes/operator/sample-metr.yaml");
