//! Sharding seen from outside: the command line refuses bad shards with exit
//! status 2 naming the flag, and a running replica exports its shard and the
//! number of targets it owns on `/metrics`.

use std::process::Command;
use std::sync::Arc;

use checker::shard::Shard;
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
    let list: Vec<String> = (0..targets)
        .map(|i| format!("{{name: t{i}, kind: http, url: 'http://127.0.0.1:9/'}}"))
        .collect();
    let mut settings = Settings::load(
        None,
        [
            ("CHECKER_DATABASE_URL", "postgres://u@127.0.0.1:9/metr"),
            ("CHECKER_LISTEN", "127.0.0.1:0"),
            ("CHECKER_INTERVAL", "1h"),
            ("CHECKER_TARGETS", &format!("[{}]", list.join(","))),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("valid settings");
    settings.shard = shard;
    settings
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
    let app = Application::build(settings, Arc::new(MemoryRepository::new()))
        .await
        .unwrap();
    let url = format!("http://{}/metrics", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        if let Ok(response) = reqwest::get(&url).await {
            break response.text().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

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
