use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use checker::memory::{MemoryBudget, mib};
use clap::Parser;
use metr_service::traces::{Sampler, TraceSettings};
use metr_storage::PgRepository;
use metr_storage::postgres::PoolOptions;
use metr_storage::startup::{self, DbCommand};

mod check_exposition;

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
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Db(DbCommand),
    /// Check exposition files with the parsers the checker scrapes with, like
    /// `promtool check metrics`.
    ///
    /// Prints nothing and exits 0 when every file parses; otherwise prints
    /// FILE:LINE:COLUMN: REASON for the first error of each file that does
    /// not, and exits 1 (2 for a usage error).
    CheckExposition(check_exposition::Args),
    /// Asks this checker's own /health (on its configured `listen` port) and
    /// exits 0 when it answers 200: a container health check for an image
    /// that holds nothing but this binary.
    Health(metr_service::health_probe::ProbeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    metr_service::http_client::install_crypto_provider();
    let args = Args::parse();
    let traces = metr_service::traces::init(&args.log, &trace_settings())?;
    let db_command = match &args.command {
        Some(Command::CheckExposition(check)) => return Ok(check_exposition::run(check)),
        Some(Command::Db(command)) => Some(*command),
        Some(Command::Health(_)) | None => None,
    };
    let mut settings = checker::Settings::load(args.config.as_deref(), std::env::vars())
        .context("invalid configuration")?;
    if let Some(Command::Health(probe)) = &args.command {
        return Ok(metr_service::health_probe::run(settings.listen, probe));
    }
    settings.shard = args.shard;
    if db_command == Some(DbCommand::Migrate) {
        startup::open(&settings.database_url, true, db_command)
            .await
            .context("cannot migrate")?;
        return Ok(ExitCode::SUCCESS);
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
    let ran = app.run_until(ready, metr_service::shutdown::signal()).await;
    traces.shutdown().await;
    ran.context("cannot start")?;
    Ok(ExitCode::SUCCESS)
}

/// The checker traces 1 in 100 of its scrapes unless `OTEL_TRACES_SAMPLER`
/// says otherwise: a trace per scrape would cost more than the scrape.
fn trace_settings() -> TraceSettings {
    TraceSettings::from_env("checker").with_default_sampler(Sampler::ParentBased(Box::new(
        Sampler::TraceIdRatioBased(checker::scrape::TRACED_SCRAPES),
    )))
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
