use clap::Parser;

fn main() {
    metr_service::http_client::install_crypto_provider();
    // Before the runtime: a TAB's completers start one of their own.
    metrtest::commands::completions::complete_if_asked();
    let args = metrtest::cli::Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let code = runtime.block_on(metrtest::cli::main(args));
    std::process::exit(code);
}
