use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use checker::memory::{MemoryBudget, mib};
use clap::Parser;
use metr_storage::PgRepository;
use metr_storage::postgres::PoolOptions;
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
    if args.command == Some(DbCommand::Migrate) {
        startup::open(&settings.database_url, true, args.command)
            .await
            .context("cannot migrate")?;
        return Ok(());
    }
    // Migrating scrapes nothing: only a checker that will check must fit.
    refuse_what_cannot_fit(&settings);
    // Connecting is lazy: /health answers (fail) while the database is away.
    let repo = Arc::new(
        PgRepository::connect(&settings.database_url, &PoolOptions::default())
            .context("cannot start")?,
    );
    let url = settings.database_url.clone();
    let app = checker::Application::build(settings, repo.clone()).await?;
    let ready = async move { startup::wait_until_ready(&url, &repo, args.migrate).await };
    app.run_until(ready, metr_service::shutdown::signal())
        .await
        .context("cannot start")?;
    Ok(())
}

/// Exits 2, naming the settings, when the most memory they let the checker
/// need exceeds its limit: better refused now than killed by the kernel the
/// first time a big target answers, silencing every target.
fn refuse_what_cannot_fit(settings: &checker::Settings) {
    let Some(limit) = settings.memory_limit() else {
        return;
    };
    let budget = MemoryBudget::of(settings);
    if budget.total() > limit {
        eprintln!(
            "error: invalid configuration: these settings let the checker need up to {}, more than its memory limit of {}.\n\
             Lower sample_limit (or a target's sample_limit), max_body_bytes, concurrency or writer.buffer_samples, \
             or raise the memory limit (README: the checker's memory).",
            budget.describe(),
            mib(limit)
        );
        std::process::exit(2);
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        super::Args::command().debug_assert();
    }
}
