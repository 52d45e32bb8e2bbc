//! Labels and names that mark what metrtest created.

use std::collections::HashMap;

/// Every container, network and volume of a run carries this label with the run id.
pub const RUN: &str = "io.metrtest.run";
/// The service a container plays (postgres, gometr, checker, api, gometr-2, ...).
pub const SERVICE: &str = "io.metrtest.service";
/// Images metrtest built carry this label with the service name.
pub const IMAGE: &str = "io.metrtest.image";
/// The [`SERVICE`] of a run's reaper container, removed after everything else.
pub const REAPER_SERVICE: &str = "reaper";
/// Who owns a run (`run` or `up`), on its reaper container, for `ps`.
pub const OWNER: &str = "io.metrtest.owner";
/// Unix time a run started, for `ps`.
pub const STARTED: &str = "io.metrtest.started";

/// A fresh run id: short, lowercase, safe in container names.
pub fn new_run_id() -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| alphabet[rand::random_range(0..alphabet.len())] as char)
        .collect()
}

/// Name of a run's container for a service: unique per run, readable in `docker ps`.
pub fn container_name(run: &str, service: &str) -> String {
    format!("metrtest-{run}-{service}")
}

/// Name of a run's network.
pub fn network_name(run: &str) -> String {
    format!("metrtest-{run}")
}

/// Labels of a run's resource.
pub fn run_labels(run: &str, service: Option<&str>) -> HashMap<String, String> {
    let mut labels = HashMap::from([(RUN.to_owned(), run.to_owned())]);
    if let Some(service) = service {
        labels.insert(SERVICE.to_owned(), service.to_owned());
    }
    labels
}

/// Engine filter selecting one run (`Some`) or every run (`None`).
pub fn run_filter(run: Option<&str>) -> HashMap<String, Vec<String>> {
    let value = match run {
        Some(run) => format!("{RUN}={run}"),
        None => RUN.to_owned(),
    };
    HashMap::from([("label".to_owned(), vec![value])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_distinct_and_name_safe() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && a.len() == 8
        );
        assert_eq!(container_name(&a, "api"), format!("metrtest-{a}-api"));
    }

    #[test]
    fn filters_select_one_run_or_all() {
        assert_eq!(run_filter(Some("x"))["label"], vec!["io.metrtest.run=x"]);
        assert_eq!(run_filter(None)["label"], vec!["io.metrtest.run"]);
    }
}
