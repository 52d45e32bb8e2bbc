//! When a service is ready: its published port read back, then PostgreSQL
//! accepting a login or the service's `/health` answering, while its
//! container still runs.

use std::time::{Duration, Instant};

use crate::engine::error::{EngineError, Result};
use crate::engine::{Client, endpoint};
use crate::stack::spec::{Readiness, ServiceSpec, StackSpec};

/// The host port the engine chose for `port`, read back by inspect.
pub async fn published_port(engine: &Client, container: &str, port: u16) -> Result<u16> {
    let info = engine.inspect_container(container).await?;
    info.host_port(port)
        .ok_or_else(|| EngineError::NoPublishedPort {
            container: container.to_owned(),
            port: Some(port),
        })
}

pub async fn wait_ready(
    engine: &Client,
    spec: &StackSpec,
    service: &ServiceSpec,
    container: &str,
    port: u16,
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + spec.readiness_timeout;
    let client = metr_service::http_client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let mut last = String::from("no attempt yet");
    while Instant::now() < deadline {
        let attempt = match service.readiness {
            Readiness::Postgres => postgres_ready(spec, port).await,
            Readiness::Http { success } => http_ready(&client, port, success).await,
            // One-shot steps are awaited by `run_to_completion`, not probed.
            Readiness::Exit => return Ok(()),
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(why) => last = why,
        }
        if !container_running(engine, container).await {
            return Err(format!("the container exited ({last})"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

async fn postgres_ready(spec: &StackSpec, port: u16) -> std::result::Result<(), String> {
    let url = spec.host_postgres_url(port);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("login: {e}"))?;
    let task = tokio::spawn(connection);
    let result = client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| format!("SELECT 1: {e}"));
    drop(client);
    let _ = task.await;
    result
}

async fn http_ready(
    client: &reqwest::Client,
    port: u16,
    success: bool,
) -> std::result::Result<(), String> {
    let response = client
        .get(format!("http://{}:{port}/health", endpoint::reach_host()))
        .send()
        .await
        .map_err(|e| format!("GET /health: {e}"))?;
    if !success || response.status().is_success() {
        Ok(())
    } else {
        Err(format!("GET /health answered {}", response.status()))
    }
}

async fn container_running(engine: &Client, container: &str) -> bool {
    engine
        .inspect_container(container)
        .await
        .is_ok_and(|i| i.state.running)
}
