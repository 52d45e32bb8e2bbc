use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
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
    /// Apply pending migrations before starting.
    #[arg(long)]
    migrate: bool,
    #[command(flatten)]
    log: metr_service::logging::LogArgs,
    #[command(subcommand)]
    command: Option<DbCommand>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    metr_service::logging::init(&args.log);
    let Some(repo) = startup::open(&args.database_url, args.migrate, args.command)
        .await
        .context("cannot start")?
    else {
        return Ok(());
    };
    let app = api::Application::build(args.listen, Arc::new(repo)).await?;
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
