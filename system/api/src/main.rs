use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use metr_storage::postgres::PoolOptions;
use metr_storage::{DatabaseUrl, PgRepository};

/// The metr API: serves checks and samples from PostgreSQL.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// PostgreSQL connection string.
    #[arg(long, env = "API_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: DatabaseUrl,
    /// Address to listen on.
    #[arg(long, env = "API_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Apply pending migrations before starting.
    #[arg(long)]
    migrate: bool,
    #[command(flatten)]
    log: metr_service::logging::LogArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    metr_service::logging::init(&args.log);
    if args.migrate || matches!(args.command, Some(Command::Migrate)) {
        let report = metr_storage::migrate::run(&args.database_url).await?;
        tracing::info!(applied = ?report.applied, version = report.version, "database migrated");
        if args.command.is_some() {
            return Ok(());
        }
    }
    let repo = PgRepository::connect(&args.database_url, &PoolOptions::default())?;
    repo.ensure_migrated().await.context("cannot start")?;
    let app = api::Application::build(args.listen, Arc::new(repo)).await?;
    app.run_until(metr_service::shutdown::signal()).await?;
    Ok(())
}
