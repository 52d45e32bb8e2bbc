use clap::Parser;

#[tokio::main]
async fn main() {
    let args = metrtest::cli::Args::parse();
    let code = metrtest::cli::main(args).await;
    std::process::exit(code);
}
