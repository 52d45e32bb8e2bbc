//! `metrtest up`: a throwaway environment, in the foreground or detached.

use std::time::Duration;

use crate::config::envfile::EnvFile;
use crate::engine;
use crate::engine::EngineError;
use crate::engine::labels;
use crate::exit::{Failure, Result};
use crate::interrupt::Interrupt;
use crate::report::stack::service_table;
use crate::scenario::network::{Link, LinkError};
use crate::stack::faults;
use crate::stack::images;
use crate::stack::reaper::{self, Owner};
use crate::stack::spec::{Restart, StackSpec, UP_RESTARTS};
use crate::stack::{self, Stack};
use crate::ui::{self, Ui};

/// Parses `--ttl`: a duration such as `2h` or `30m`, or `0` for none.
pub fn parse_ttl(text: &str) -> std::result::Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 2h or 30m, or 0 for none ({e})"))
}

/// Parses `--faults`' links: `CLIENT->SERVER`.
pub fn parse_link(text: &str) -> std::result::Result<Link, LinkError> {
    text.parse()
}

/// Refuses links no service of the stack uses, with the words `validate`
/// and `run` use for them: one list of links for all three.
fn check_links(file: &EnvFile, links: &[Link]) -> Result<()> {
    let context = crate::scenarios::context(file, &[]);
    for link in links {
        context
            .check_link(link)
            .map_err(|why| Failure::invalid(format!("--faults: {why}")))?;
    }
    Ok(())
}

/// `up --export compose [FILE]`: the stack `up` would start as a compose file,
/// on stdout without FILE. Its images are built, since the file names them;
/// nothing is started.
pub async fn export_compose(
    file: &EnvFile,
    to: Option<&std::path::Path>,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<()> {
    let engine = engine::connect().await?;
    let progress = ui.progress();
    let set = tokio::select! {
        set = images::ensure(&engine, &file.images, &progress) => set?,
        _ = interrupt.stop.cancelled() => return Err(Failure::interrupted()),
    };
    let names = [&set.postgres, &set.gometr, &set.checker, &set.api];
    let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    ui.info(format!(
        "images the compose file names are on the engine: {}",
        names.join(", ")
    ));
    let mut spec = StackSpec::build(&set, file);
    spec.restart = Restart::OnFailure { max: UP_RESTARTS };
    let yaml = stack::compose::ComposeFile::of(&spec).to_yaml();
    // `-` is stdout too, as for most tools that take an output file.
    match to.filter(|path| *path != std::path::Path::new("-")) {
        None => ui::write(yaml.as_bytes()),
        Some(path) => std::fs::write(path, yaml)
            .map_err(|e| Failure::environment(format!("cannot write {}: {e}", path.display())))?,
    }
    Ok(())
}

/// Builds what is missing and starts a stack; on failure the run is torn down.
/// The run's reaper starts first, before the service images are built, so
/// that the run is guarded from its first resource on.
pub async fn start_stack(
    file: &EnvFile,
    links: &[Link],
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<(engine::Client, Stack)> {
    if !links.is_empty() {
        // Before anything starts: a wrong link is the user's, not the engine's.
        check_links(file, links)?;
    }
    let engine = engine::connect().await?;
    let progress = ui.progress();
    let reaper_image = tokio::select! {
        image = reaper::image_or_warn(&engine, &progress) => image,
        _ = interrupt.stop.cancelled() => return Err(Failure::interrupted()),
    };
    let run_id = labels::new_run_id();
    stack::register(&run_id);
    let started = async {
        if reaper::start(&engine, reaper_image.as_deref(), &run_id, Owner::Up).await? {
            ui.info(format!("run {run_id}: guarded by its reaper"));
        } else {
            ui.warn(reaper::NO_REAPER);
        }
        let set = tokio::select! {
            set = images::ensure(&engine, &file.images, &progress) => set?,
            _ = interrupt.stop.cancelled() => return Err(EngineError::Interrupted),
        };
        let mut spec = StackSpec::build(&set, file);
        // A person works on this stack: a crashed service comes back, a few
        // times (`run` stacks never restart one: the scenario must fail).
        spec.restart = Restart::OnFailure { max: UP_RESTARTS };
        if !links.is_empty() {
            let proxy = tokio::select! {
                image = faults::image(&engine, &progress) => image?,
                _ = interrupt.stop.cancelled() => return Err(EngineError::Interrupted),
            };
            faults::place(&mut spec, &proxy, links);
        }
        ui.info(format!("starting stack {}", ui.bold(&run_id)));
        stack::start(&engine, &spec, &run_id, &progress, &interrupt.stop).await
    };
    match started.await {
        Ok(stack) => Ok((engine, stack)),
        Err(e) => {
            let grace = Duration::ZERO;
            if let Err(t) = stack::teardown(&engine, Some(&run_id), grace, &interrupt.force).await {
                ui.error(format!("teardown of {run_id} failed: {t}"));
            }
            Err(e.into())
        }
    }
}

/// `ttl` applies to a detached stack only; zero means none.
pub async fn run(
    file: &EnvFile,
    detach: bool,
    ttl: Duration,
    links: &[Link],
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<()> {
    let (engine, stack) = start_stack(file, links, ui, interrupt).await?;
    ui.info(format!(
        "stack {} ready in {:.1} s",
        stack.run_id,
        stack.ready_in.as_secs_f64()
    ));
    ui::print(service_table(&stack).to_string());
    if let Some(proxy) = stack.service(faults::SERVICE) {
        let names: Vec<String> = links.iter().map(faults::proxy_name).collect();
        ui::print(format!(
            "fault proxy (Toxiproxy's control API): {} with proxies {}",
            proxy.url,
            names.join(", ")
        ));
    }
    if detach {
        let handed = reaper::release_to_ttl(&stack.run_id, (!ttl.is_zero()).then_some(ttl), None);
        if let Err(e) = &handed {
            ui.warn(format!("{e}: the stack has no time to live"));
        }
        stack::release(&stack.run_id);
        ui::print(format!("run id: {}", stack.run_id));
        if handed.is_ok() && !ttl.is_zero() {
            ui::print(format!(
                "removed automatically in {} (--ttl)",
                humantime::format_duration(ttl)
            ));
        }
        ui::print(format!(
            "remove it with: metrtest down --run {}",
            stack.run_id
        ));
        return Ok(());
    }
    ui.info("press Ctrl-C to stop and remove the stack");
    interrupt.stop.cancelled().await;
    let removed = stack::teardown(
        &engine,
        Some(&stack.run_id),
        Duration::from_secs(2),
        &interrupt.force,
    )
    .await?;
    ui.info(format!(
        "removed {} containers and {} network",
        removed.containers, removed.networks
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_durations_or_zero_and_nothing_else() {
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_ttl("0"), Ok(Duration::ZERO));
        for bad in ["soon", "-1h", "", "2 parsecs"] {
            let err = parse_ttl(bad).expect_err(bad);
            assert!(err.contains("not a duration"), "{bad}: {err}");
        }
    }
}
