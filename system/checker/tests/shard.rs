//! Sharding seen from outside: the command line refuses bad shards with exit
//! status 2 naming the flag, two replicas split the targets between them, and
//! a running replica exports its shard and the number of targets it owns on
//! `/metrics`.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use checker::app::RunError;
use checker::shard::Shard;
use checker::writer::WriterReport;
use checker::{Application, Settings};
use metr_storage::MemoryRepository;

fn checker(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(args)
        .env_remove("CHECKER_SHARD")
        .envs(env.iter().copied())
        .output()
        .expect("run the checker binary")
}

#[test]
fn a_bad_shard_flag_exits_2_naming_the_flag() {
    for spec in ["3/2", "x", "0/0", "1/1", "checker/3"] {
        let out = checker(&["--shard", spec], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--shard {spec}: {stderr}");
        assert!(stderr.contains("--shard"), "--shard {spec}: {stderr}");
    }
}

#[test]
fn a_bad_shard_in_the_environment_exits_2_naming_the_flag() {
    let out = checker(&[], &[("CHECKER_SHARD", "checker-3/3")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--shard"), "{stderr}");
    assert!(stderr.contains("out of range"), "{stderr}");
}

fn settings(targets: usize, shard: Shard) -> Settings {
    settings_every(targets, shard, "1h", "10s")
}

fn settings_every(targets: usize, shard: Shard, interval: &str, timeout: &str) -> Settings {
    let list: Vec<String> = (0..targets)
        .map(|i| format!("{{name: t{i}, kind: http, url: 'http://127.0.0.1:9/'}}"))
        .collect();
    let mut settings = Settings::load(
        None,
        [
            ("CHECKER_DATABASE_URL", "postgres://u@127.0.0.1:9/metr"),
            ("CHECKER_LISTEN", "127.0.0.1:0"),
            ("CHECKER_INTERVAL", interval),
            ("CHECKER_TIMEOUT", timeout),
            ("CHECKER_TARGETS", &format!("[{}]", list.join(","))),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("valid settings");
    settings.shard = shard;
    settings
}

/// A running checker: its `/metrics` URL and how to stop it.
struct Replica {
    metrics: String,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<WriterReport, RunError>>,
}

async fn start(settings: Settings, repo: Arc<MemoryRepository>) -> Replica {
    let app = Application::build(settings, repo).await.unwrap();
    let metrics = format!("http://{}/metrics", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async { Ok(()) }, async {
        let _ = stopped.await;
    }));
    Replica {
        metrics,
        stop,
        running,
    }
}

impl Replica {
    async fn metrics(&self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(response) = http().get(&self.metrics).send().await {
                return response.text().await.unwrap();
            }
            let url = &self.metrics;
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url} never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.running.await.unwrap().unwrap();
    }
}

/// Targets named in `checker_scrapes_total` lines: the ones this replica checked.
/// A client through the shared builder, which installs the TLS provider
/// reqwest needs before any client is built.
fn http() -> reqwest::Client {
    metr_service::http_client::builder().build().unwrap()
}

fn checked_targets(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("checker_scrapes_total{"))
        .filter_map(|l| {
            let rest = l.split("target=\"").nth(1)?;
            rest.split('"').next().map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn two_replicas_check_every_target_and_none_twice() {
    let repo = Arc::new(MemoryRepository::new());
    let mut replicas = Vec::new();
    for pod in ["checker-0/2", "checker-1/2"] {
        let settings = settings_every(12, pod.parse().unwrap(), "200ms", "100ms");
        replicas.push(start(settings, repo.clone()).await);
    }
    let all: BTreeSet<String> = (0..12).map(|i| format!("t{i}")).collect();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let checked = loop {
        let mut checked = Vec::new();
        for replica in &replicas {
            checked.push(checked_targets(&replica.metrics().await));
        }
        if checked.iter().map(BTreeSet::len).sum::<usize>() >= all.len() {
            break checked;
        }
        let late = tokio::time::Instant::now() >= deadline;
        assert!(!late, "not every target was checked: {checked:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // More rounds of checks must not bring a target to the other replica.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut later = Vec::new();
    for replica in replicas {
        later.push(checked_targets(&replica.metrics().await));
        replica.stop().await;
    }

    assert_eq!(later, checked);
    assert!(checked[0].is_disjoint(&checked[1]), "{checked:?}");
    assert_eq!(&checked[0] | &checked[1], all);
    assert!(
        !checked[0].is_empty() && !checked[1].is_empty(),
        "{checked:?}"
    );
}

#[tokio::test]
async fn metrics_show_the_shard_and_how_many_targets_it_owns() {
    let shard = Shard::new(1, 3).unwrap();
    let settings = settings(30, shard);
    let owned = settings
        .targets
        .iter()
        .filter(|t| shard.owns(&t.name))
        .count();
    let replica = start(settings, Arc::new(MemoryRepository::new())).await;

    let body = replica.metrics().await;
    replica.stop().await;

    assert!(
        body.contains("checker_shard{count=\"3\",index=\"1\"} 1"),
        "{body}"
    );
    assert!(
        body.contains(&format!("checker_targets {owned}\n")),
        "{body}"
    );
    assert!((5..=15).contains(&owned), "owned {owned} of 30");
}
