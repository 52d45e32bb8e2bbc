//! `metrtest-faultproxy`: the control API and the proxies it starts with.

use metrtest_faultproxy::api::Application;
use metrtest_faultproxy::settings::Settings;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let started = async {
        let settings = Settings::load(|key| std::env::var(key).ok())?;
        let app = Application::build(settings.listen, settings.proxies).await?;
        eprintln!("metrtest-faultproxy: control API on {}", app.address());
        app.run_until_stopped().await.map_err(|e| e.to_string())
    };
    match started.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metrtest-faultproxy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
