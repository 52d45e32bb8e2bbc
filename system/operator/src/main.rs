//! `operator`: runs the controller, or prints the CRD or a Metr's objects.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use metr_operator::leader::{self, Elector, Timing};

#[derive(Parser)]
#[command(about = "Kubernetes operator for the metr system")]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile every Metr in the cluster while leading (the default).
    Run(RunArgs),
    /// Print the Metr CustomResourceDefinition as YAML.
    Crd,
    /// Print the objects a Metr (a YAML file) renders to, or its spec error.
    Render { file: PathBuf },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Where `/health` and `/metrics` listen.
    #[arg(long, env = "OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "metr-operator")]
    lease_namespace: String,
    /// This replica's name in the Lease; a random one when absent.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

/// The Lease the operator's replicas compete for.
const LEASE: &str = "metr-operator";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command.unwrap_or(Command::Run(args.run)) {
        Command::Run(run) => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .init();
            let client = kube::Client::try_default()
                .await
                .context("connect to the Kubernetes API")?;
            let metrics = metr_operator::telemetry::Metrics::new()?;
            // Served by every replica, leader or standby.
            let server = tokio::spawn(metr_operator::telemetry::serve(run.listen, metrics.clone()));
            let identity = run
                .identity
                .unwrap_or_else(|| format!("operator-{:08x}", rand::random::<u32>()));
            let timing = Timing::default();
            let elector = Elector::new(
                client.clone(),
                &run.lease_namespace,
                LEASE,
                &identity,
                timing.lease_duration,
            );
            let controller = metr_operator::reconcile::run(client, metrics);
            let led = leader::lead(elector, timing, controller).await;
            server.abort();
            // A replica that lost the Lease exits; Kubernetes restarts it as a candidate.
            led.context("leader election")?;
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
