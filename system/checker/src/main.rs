use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use metr_storage::PgRepository;
use metr_storage::postgres::PoolOptions;

/// The checker: polls targets and writes samples and checks to PostgreSQL.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// YAML configuration; every field can be overridden by CHECKER_* variables.
    #[arg(long, env = "CHECKER_CONFIG", global = true)]
    config: Option<PathBuf>,
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
    let settings = checker::Settings::load(args.config.as_deref(), std::env::vars())
        .context("invalid configuration")?;
    if args.migrate || matches!(args.command, Some(Command::Migrate)) {
        let report = metr_storage::migrate::run(&settings.database_url).await?;
        tracing::info!(applied = ?report.applied, version = report.version, "database migrated");
        if args.command.is_some() {
            return Ok(());
        }
    }
    let repo = PgRepository::connect(&settings.database_url, &PoolOptions::default())?;
    repo.ensure_migrated().await.context("cannot start")?;
    let app = checker::Application::build(settings, Arc::new(repo)).await?;
    app.run_until(metr_service::shutdown::signal()).await?;
    Ok(())
}
