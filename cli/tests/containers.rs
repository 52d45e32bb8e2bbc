//! The stack from a Rust test through testcontainers-rs, with metrtest's
//! locally built images and readiness (`metrtest::containers`).

use std::time::{Duration, Instant};

use metrtest::containers::{self, container_name, database_url};
use metrtest::engine;
use metrtest::engine::labels;
use metrtest::stack;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};

/// Starts a service on the run's network, named and labelled as metrtest does.
async fn start(
    service: containers::Service,
    run: &str,
    name: &str,
    network: &str,
) -> Result<ContainerAsync<containers::Service>, String> {
    service
        .with_network(network)
        .with_container_name(container_name(run, name))
        .with_labels(labels::run_labels(run, Some(name)))
        .start()
        .await
        .map_err(|e| format!("{name} did not start: {e}"))
}

/// Starts the four services and returns gometr's last status as the API
/// serves it; every container is removed before this returns.
async fn last_gometr_status(
    images: &metrtest::stack::images::ImageSet,
    run: &str,
    network: &str,
) -> Result<String, String> {
    let postgres = start(containers::postgres(images), run, "postgres", network).await?;
    let gometr = start(containers::gometr(images), run, "gometr", network).await?;
    let db = database_url(&container_name(run, "postgres"));
    let gometr_url = format!("http://{}:8080", container_name(run, "gometr"));
    let targets =
        serde_json::json!([{ "name": "gometr", "kind": "prometheus", "url": gometr_url }]);
    let checker = start(
        containers::checker(images, &db, &targets),
        run,
        "checker",
        network,
    )
    .await?;
    let api = start(containers::api(images, &db), run, "api", network).await?;
    let port = api
        .get_host_port_ipv4(8080)
        .await
        .map_err(|e| e.to_string())?;

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let body: serde_json::Value = match metr_service::http_client::builder()
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/api/v1/targets"))
            .send()
            .await
        {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let status = body["data"][0]["last_status"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if !status.is_empty() || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for container in [api, checker, gometr, postgres] {
        container.rm().await.map_err(|e| e.to_string())?;
    }
    Ok(status)
}

#[tokio::test]
async fn a_stack_started_from_rust_checks_gometr_and_serves_the_result() {
    let images = containers::images().await.expect("images");
    let docker = engine::connect().await.expect("engine");
    let run = labels::new_run_id();
    let network = labels::network_name(&run);
    docker
        .create_network(&network, labels::run_labels(&run, None), None)
        .await
        .unwrap();

    let status = last_gometr_status(&images, &run, &network).await;
    // Whatever happened, the run's network (and any container left) goes.
    let removed = stack::teardown(&docker, Some(&run), Duration::ZERO, &Default::default())
        .await
        .unwrap();

    assert_eq!(
        status,
        Ok("up".to_owned()),
        "the checker scraped gometr and the API serves it"
    );
    assert_eq!(
        removed.containers, 0,
        "testcontainers removed its containers"
    );
    assert_eq!(removed.networks, 1, "the run's network");
}
