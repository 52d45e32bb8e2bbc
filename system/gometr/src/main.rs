use std::net::SocketAddr;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    metr_service::http_client::install_crypto_provider();
    let args = Args::parse();
    let settings = metr_service::traces::TraceSettings::from_env("gometr");
    let traces = metr_service::traces::init(&args.log, &settings)?;
    let control =
        gometr::Control::from_env(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    let app = gometr::Application::build(args.listen, control).await?;
    let served = app.run_until(metr_service::shutdown::signal()).await;
    traces.shutdown().await;
    Ok(served?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        super::Args::command().debug_assert();
    }
}
