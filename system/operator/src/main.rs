//! `operator`: runs the controller, or prints the CRD or a Metr's objects.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Kubernetes operator for the metr system")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile every Metr in the cluster (the default).
    Run {
        /// Where `/health` and `/metrics` listen.
        #[arg(long, env = "OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
    },
    /// Print the Metr CustomResourceDefinition as YAML.
    Crd,
    /// Print the objects a Metr (a YAML file) renders to, or its spec error.
    Render { file: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run = Command::Run {
        listen: ([0, 0, 0, 0], 8080).into(),
    };
    match args.command.unwrap_or(run) {
        Command::Run { listen } => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .init();
            let client = kube::Client::try_default()
                .await
                .context("connect to the Kubernetes API")?;
            let metrics = metr_operator::telemetry::Metrics::new()?;
            let server = tokio::spawn(metr_operator::telemetry::serve(listen, metrics.clone()));
            metr_operator::reconcile::run(client, metrics).await;
            server.abort();
        }
        Command::Crd => print!("{}", metr_operator::crd_yaml()?),
        Command::Render { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("read {}", file.display()))?;
            let metr: metr_operator::Metr = serde_yaml::from_str(&text)
                .with_context(|| format!("parse {} as a Metr", file.display()))?;
            let objects = metr_operator::render(&metr)?;
            print!("{}", metr_operator::objects_yaml(&objects)?);
        }
    }
    Ok(())
}
