use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use metr_service::traces::TraceSettings;
use metr_storage::DatabaseUrl;
use metr_storage::startup::{self, DbCommand};

/// The metr API: serves checks and samples from PostgreSQL.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// PostgreSQL connection string.
    #[arg(long, env = "API_DATABASE_URL", hide_env_values = true)]
    database_url: DatabaseUrl,
    /// Address to listen on.
    #[arg(long, env = "API_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// How long a request may wait for the database (a connection and its
    /// query) before it is answered 503 `unavailable`.
    #[arg(long, env = "API_QUERY_TIMEOUT", default_value = "3s", value_parser = positive_duration)]
    query_timeout: Duration,
    /// Apply pending migrations before starting.
    #[arg(long)]
    migrate: bool,
    #[command(flatten)]
    log: metr_service::logging::LogArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Db(DbCommand),
    /// Asks this API's own /health (on API_LISTEN's port) and exits 0 when it
    /// answers 200: a container health check for an image that holds nothing
    /// but this binary.
    Health(metr_service::health_probe::ProbeArgs),
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be more than zero".into()),
        Err(e) => Err(format!(
            "{text:?} is not a duration such as 3s or 500ms: {e}"
        )),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    metr_service::http_client::install_crypto_provider();
    let args = Args::parse();
    let db_command = match &args.command {
        Some(Command::Health(probe)) => {
            return Ok(metr_service::health_probe::run(args.listen, probe));
        }
        Some(Command::Db(command)) => Some(*command),
        None => None,
    };
    let traces = metr_service::traces::init(&args.log, &TraceSettings::from_env("api"))?;
    let Some(repo) = startup::open(&args.database_url, args.migrate, db_command)
        .await
        .context("cannot start")?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let options = api::Options {
        query_timeout: args.query_timeout,
    };
    let app = api::Application::build_with(args.listen, Arc::new(repo), &options).await?;
    let served = app.run_until(metr_service::shutdown::signal()).await;
    traces.shutdown().await;
    served?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        super::Args::command().debug_assert();
    }
}
