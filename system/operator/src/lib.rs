//! The metr operator: a `Metr` custom resource reconciled into the system's
//! Kubernetes objects (see `deploy/kubernetes/operator/` and docs/kubernetes.md).

pub mod crd;
pub mod leader;
pub mod memory;
pub mod object;
pub mod reconcile;
pub mod render;
pub mod retry;
pub mod status;
pub mod telemetry;
pub mod validate;

pub use crd::{Metr, MetrSpec, MetrStatus};
pub use object::Object;
pub use render::render;
pub use validate::{SpecError, validate};

/// The CustomResourceDefinition of `Metr`, as YAML.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&Metr::crd())
}

/// Rendered objects as one multi-document YAML stream.
pub fn objects_yaml(objects: &[Object]) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&object.to_json())?);
    }
    Ok(out)
}
