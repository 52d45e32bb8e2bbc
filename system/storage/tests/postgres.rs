//! The PostgreSQL repository against a real, freshly migrated database.

use chrono::{DateTime, Duration, TimeZone, Utc};
use metr_domain::{Check, CheckStatus, Labels, Sample, SampleValue, TargetKind};
use metr_storage::postgres::PoolOptions;
use metr_storage::{
    Batch, CheckQuery, DatabaseUrl, MetricQuery, PgRepository, ReadRepository, SeriesQuery,
    StorageError, TargetRef, WriteRepository, migrate,
};

async fn migrated() -> (PgRepository, DatabaseUrl) {
    let db = metr_testkit::fresh_database().await;
    let url = DatabaseUrl::new(db.url);
    migrate::run(&url).await.expect("migrate");
    (
        PgRepository::connect(&url, &PoolOptions::default()).unwrap(),
        url,
    )
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn target(name: &str) -> TargetRef {
    TargetRef {
        name: name.into(),
        kind: TargetKind::Prometheus,
        url: format!("http://{name}:8080"),
    }
}

fn check(target: &str, seconds: i64, status: CheckStatus) -> Check {
    Check {
        target: target.into(),
        kind: TargetKind::Prometheus,
        status,
        http_status: Some(if status == CheckStatus::Up { 200 } else { 503 }),
        latency_ms: 1.5,
        error: (status == CheckStatus::Down).then(|| "health is fail".into()),
        checked_at: at(seconds),
    }
}

fn sample(target: &str, name: &str, labels: &[(&str, &str)], value: f64, seconds: i64) -> Sample {
    Sample {
        target: target.into(),
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Labels>(),
        value: SampleValue(value),
        timestamp: at(seconds),
    }
}

#[tokio::test]
async fn checks_come_back_newest_first_with_every_field() {
    let (repo, _) = migrated().await;
    let batch = Batch {
        scrapes: vec![],
        targets: vec![target("gometr")],
        checks: vec![
            check("gometr", 1, CheckStatus::Up),
            check("gometr", 2, CheckStatus::Down),
        ],
        samples: vec![],
    };
    repo.write(&batch).await.unwrap();
    let page = repo.checks(&CheckQuery::default()).await.unwrap();
    assert_eq!(
        page.items,
        vec![
            check("gometr", 2, CheckStatus::Down),
            check("gometr", 1, CheckStatus::Up)
        ]
    );
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn walking_the_cursor_visits_every_check_once() {
    let (repo, _) = migrated().await;
    let checks: Vec<_> = (0..25).map(|i| check("a", i, CheckStatus::Up)).collect();
    repo.write(&Batch {
        scrapes: vec![],
        targets: vec![target("a")],
        checks,
        samples: vec![],
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut query = CheckQuery {
        limit: 7,
        ..Default::default()
    };
    loop {
        let page = repo.checks(&query).await.unwrap();
        seen.extend(page.items.iter().map(|c| c.checked_at));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    let expected: Vec<_> = (0..25).rev().map(at).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn check_filters_combine() {
    let (repo, _) = migrated().await;
    let batch = Batch {
        scrapes: vec![],
        targets: vec![target("a"), target("b")],
        checks: vec![
            check("a", 1, CheckStatus::Up),
            check("a", 2, CheckStatus::Down),
            check("a", 3, CheckStatus::Down),
            check("b", 2, CheckStatus::Down),
        ],
        samples: vec![],
    };
    repo.write(&batch).await.unwrap();
    let query = CheckQuery {
        target: Some("a".into()),
        status: Some(CheckStatus::Down),
        from: Some(at(2)),
        to: Some(at(2)),
        ..Default::default()
    };
    let page = repo.checks(&query).await.unwrap();
    assert_eq!(page.items, vec![check("a", 2, CheckStatus::Down)]);
    let unknown = CheckQuery {
        target: Some("nope".into()),
        ..Default::default()
    };
    assert!(repo.checks(&unknown).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn writing_a_batch_twice_stores_it_once() {
    let (repo, _) = migrated().await;
    let batch = Batch {
        scrapes: vec![],
        targets: vec![target("a")],
        checks: vec![check("a", 1, CheckStatus::Up)],
        samples: vec![sample("a", "up", &[], 1.0, 1)],
    };
    repo.write(&batch).await.unwrap();
    repo.write(&batch).await.unwrap();
    assert_eq!(
        repo.checks(&CheckQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        repo.metrics(&MetricQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn samples_keep_labels_special_values_and_filter_by_label() {
    let (repo, _) = migrated().await;
    let tricky = "a \"quoted\", = } value\n";
    let batch = Batch {
        scrapes: vec![],
        targets: vec![target("a")],
        checks: vec![],
        samples: vec![
            sample(
                "a",
                "h_bucket",
                &[("le", "+Inf"), ("path", tricky)],
                f64::INFINITY,
                1,
            ),
            sample(
                "a",
                "h_bucket",
                &[("le", "0.5"), ("path", tricky)],
                f64::NAN,
                1,
            ),
            sample("a", "h_bucket", &[("le", "0.5"), ("path", "/")], -2.5, 2),
        ],
    };
    repo.write(&batch).await.unwrap();
    let query = MetricQuery {
        target: Some("a".into()),
        name: Some("h_bucket".into()),
        labels: vec![("le".into(), "+Inf".into())],
        ..Default::default()
    };
    let page = repo.metrics(&query).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].labels["path"], tricky);
    assert_eq!(page.items[0].value.0, f64::INFINITY);

    let all = repo.metrics(&MetricQuery::default()).await.unwrap().items;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].value.0, -2.5, "newest first");
    assert!(all.iter().any(|s| s.value.0.is_nan()));

    let both = MetricQuery {
        labels: vec![("le".into(), "0.5".into()), ("path".into(), "/".into())],
        ..Default::default()
    };
    assert_eq!(repo.metrics(&both).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn metric_pages_cover_every_sample_across_series() {
    let (repo, _) = migrated().await;
    let samples: Vec<_> = (0..10)
        .flat_map(|t| {
            (0..3).map(move |s| sample("a", "m", &[("s", &s.to_string())], (t * 3 + s) as f64, t))
        })
        .collect();
    repo.write(&Batch {
        scrapes: vec![],
        targets: vec![target("a")],
        checks: vec![],
        samples,
    })
    .await
    .unwrap();
    let mut query = MetricQuery {
        limit: 4,
        ..Default::default()
    };
    let mut values = Vec::new();
    loop {
        let page = repo.metrics(&query).await.unwrap();
        values.extend(page.items.iter().map(|s| s.value.0 as i64));
        let Some(cursor) = page.next_cursor else {
            break;
        };
        query.cursor = Some(cursor);
    }
    values.sort();
    assert_eq!(values, (0..30).collect::<Vec<_>>());
}

#[tokio::test]
async fn series_are_listed_once_each() {
    let (repo, _) = migrated().await;
    let samples = vec![
        sample("a", "up", &[], 1.0, 1),
        sample("a", "up", &[], 1.0, 2),
        sample("a", "m", &[("x", "1")], 1.0, 1),
        sample("b", "up", &[], 0.0, 1),
    ];
    repo.write(&Batch {
        scrapes: vec![],
        targets: vec![target("a"), target("b")],
        checks: vec![],
        samples,
    })
    .await
    .unwrap();
    let all = repo.series(&SeriesQuery::default()).await.unwrap();
    assert_eq!(all.items.len(), 3);
    let ups = repo
        .series(&SeriesQuery {
            name: Some("up".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ups.items.len(), 2);
    let first = repo
        .series(&SeriesQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let rest = repo
        .series(&SeriesQuery {
            cursor: first.next_cursor,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len() + rest.items.len(), 3);
    assert!(rest.next_cursor.is_none());
}

#[tokio::test]
async fn targets_report_last_state_and_hourly_uptime() {
    let (repo, _) = migrated().await;
    let checks = vec![
        check("a", 0, CheckStatus::Up),
        check("a", 10, CheckStatus::Up),
        check("a", 20, CheckStatus::Up),
        check("a", 30, CheckStatus::Down),
    ];
    repo.write(&Batch {
        scrapes: vec![],
        targets: vec![target("a"), target("quiet")],
        checks,
        samples: vec![],
    })
    .await
    .unwrap();
    let targets = repo.targets(at(30)).await.unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].name, "a");
    assert_eq!(targets[0].last_status, Some(CheckStatus::Down));
    assert_eq!(targets[0].last_checked_at, Some(at(30)));
    assert_eq!(targets[0].uptime_ratio, Some(0.75));
    assert_eq!(targets[1].last_status, None);
    assert_eq!(targets[1].uptime_ratio, None);
    let later = repo.targets(at(30) + Duration::hours(2)).await.unwrap();
    assert_eq!(later[0].uptime_ratio, None, "no checks in the last hour");
}

#[tokio::test]
async fn an_unmigrated_database_is_refused_with_a_clear_message() {
    let db = metr_testkit::fresh_database().await;
    let repo = PgRepository::connect(&DatabaseUrl::new(db.url), &PoolOptions::default()).unwrap();
    let err = repo.ensure_migrated().await.unwrap_err();
    assert!(matches!(
        err,
        StorageError::NotMigrated { current: None, .. }
    ));
    assert!(err.to_string().contains("migrate"), "{err}");
}

#[tokio::test]
async fn concurrent_migrations_do_not_race() {
    let db = metr_testkit::fresh_database().await;
    let url = DatabaseUrl::new(db.url);
    let runs = futures_join(&url).await;
    assert!(runs.iter().all(Result::is_ok), "{runs:?}");
    let applied: usize = runs.iter().map(|r| r.as_ref().unwrap().applied.len()).sum();
    assert_eq!(
        applied,
        migrate::latest_version() as usize,
        "each migration applied once"
    );
    let appliers = runs
        .iter()
        .filter(|r| !r.as_ref().unwrap().applied.is_empty())
        .count();
    assert_eq!(appliers, 1, "exactly one runner applies them");
    let repo = PgRepository::connect(&url, &PoolOptions::default()).unwrap();
    repo.ensure_migrated().await.unwrap();
}

async fn futures_join(url: &DatabaseUrl) -> Vec<Result<migrate::Report, StorageError>> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { migrate::run(&url).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_crash() {
    let url = DatabaseUrl::new("postgres://nobody:secret@127.0.0.1:1/none");
    let options = PoolOptions {
        timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let repo = PgRepository::connect(&url, &options).unwrap();
    let err = WriteRepository::ping(&repo).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(!err.to_string().contains("secret"));
}

/// The two main queries use their indexes (the plans are also in the README).
#[tokio::test]
async fn the_main_queries_use_their_indexes() {
    let (repo, url) = migrated().await;
    // The queried target is a small share of the data, as in a real database.
    let mut samples: Vec<_> = (0..200)
        .map(|i| sample("a", "m", &[("i", &(i % 50).to_string())], 1.0, i))
        .collect();
    samples.extend((0..5000).map(|i| sample("b", "m", &[("i", &(i % 50).to_string())], 1.0, i)));
    let mut checks: Vec<_> = (0..20).map(|i| check("a", i, CheckStatus::Up)).collect();
    checks.extend((0..5000).map(|i| check("b", i, CheckStatus::Up)));
    repo.write(&Batch {
        scrapes: vec![],
        targets: vec![target("a"), target("b")],
        checks,
        samples,
    })
    .await
    .unwrap();
    let (client, conn) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("ANALYZE; SET enable_seqscan = off")
        .await
        .unwrap();
    let explain = |sql: metr_storage::sql::Sql| {
        let client = &client;
        async move {
            let rows = client
                .query(&format!("EXPLAIN {}", sql.text), &sql.param_refs())
                .await
                .unwrap();
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let checks_plan = explain(metr_storage::sql::checks(&CheckQuery {
        target: Some("a".into()),
        ..Default::default()
    }))
    .await;
    println!("{checks_plan}");
    assert!(
        checks_plan.contains("checks_target_time_idx"),
        "{checks_plan}"
    );
    let no_sort = |plan: &str| {
        !plan.lines().any(|l| {
            l.trim_start()
                .trim_start_matches("->")
                .trim_start()
                .starts_with("Sort")
        })
    };
    let query = MetricQuery::default();
    let later = (1_700_000_000 + 10_000) * 1_000_000_i64;
    let one_series = explain(metr_storage::sql::pair_rows(
        &query,
        &[(1, 0), (2, 0)],
        Some(later),
        101,
    ))
    .await;
    println!("{one_series}");
    assert!(
        one_series.contains("Index Scan Backward using sample_blocks_"),
        "{one_series}"
    );
    assert!(no_sort(&one_series), "{one_series}");
    let whole_target = explain(metr_storage::sql::time_rows(
        &query,
        Some(1),
        None,
        Some((later, 3, 0)),
        false,
        8,
    ))
    .await;
    println!("{whole_target}");
    assert!(
        whole_target.contains("target_id_ts_block_idx"),
        "{whole_target}"
    );
    assert!(no_sort(&whole_target), "{whole_target}");
    let everything = explain(metr_storage::sql::time_rows(
        &query,
        None,
        Some(&[0, 1]),
        None,
        true,
        8,
    ))
    .await;
    println!("{everything}");
    assert!(
        everything.contains("ts_block_target_id_idx"),
        "{everything}"
    );
    assert!(no_sort(&everything), "{everything}");
    let by_name = explain(metr_storage::sql::series_ids(
        &MetricQuery {
            name: Some("m".into()),
            ..Default::default()
        },
        Some(1),
        None,
        2049,
    ))
    .await;
    println!("{by_name}");
    assert!(by_name.contains("Index"), "{by_name}");
    let series_of_target = explain(metr_storage::sql::series(
        &SeriesQuery {
            target: Some("b".into()),
            ..Default::default()
        },
        Some(2),
    ))
    .await;
    println!("{series_of_target}");
    assert!(
        series_of_target.contains("series_target_id_idx"),
        "{series_of_target}"
    );
    assert!(no_sort(&series_of_target), "{series_of_target}");
    let series_by_name = explain(metr_storage::sql::series(
        &SeriesQuery {
            name: Some("m".into()),
            ..Default::default()
        },
        None,
    ))
    .await;
    println!("{series_by_name}");
    assert!(
        series_by_name.contains("series_name_id_idx"),
        "{series_by_name}"
    );
    assert!(no_sort(&series_by_name), "{series_by_name}");
}
