use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// gometr: a demo target exposing Prometheus metrics and health, with fault injection.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "GOMETR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    log: metr_service::logging::LogArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Asks this gometr's own /health (on GOMETR_LISTEN's port) and exits 0
    /// when it answers 200: a container health check for an image that holds
    /// nothing but this binary.
    Health(metr_service::health_probe::ProbeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    metr_service::http_client::install_crypto_provider();
    let args = Args::parse();
    if let Some(Command::Health(probe)) = &args.command {
        return Ok(metr_service::health_probe::run(args.listen, probe));
    }
    let settings = metr_service::traces::TraceSettings::from_env("gometr");
    let traces = metr_service::traces::init(&args.log, &settings)?;
    let control =
        gometr::Control::from_env(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    let app = gometr::Application::build(args.listen, control).await?;
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
