use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use metr_storage::startup::{self, DbCommand};

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
    /// This replica's share of the targets when several share them: INDEX/COUNT
    /// (0-based, e.g. 2/3), or a StatefulSet pod name and the replica count
    /// (checker-2/3 is 2/3).
    #[arg(long, env = "CHECKER_SHARD", default_value = "0/1", value_name = "I/N")]
    shard: checker::shard::Shard,
    #[command(flatten)]
    log: metr_service::logging::LogArgs,
    #[command(subcommand)]
    command: Option<DbCommand>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    metr_service::logging::init(&args.log);
    let mut settings = checker::Settings::load(args.config.as_deref(), std::env::vars())
        .context("invalid configuration")?;
    settings.shard = args.shard;
    let Some(repo) = startup::open(&settings.database_url, args.migrate, args.command)
        .await
        .context("cannot start")?
    else {
        return Ok(());
    };
    let app = checker::Application::build(settings, Arc::new(repo)).await?;
    app.run_until(metr_service::shutdown::signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        super::Args::command().debug_assert();
    }
}
