//! The images a stack needs, built locally: no registry is required.
//!
//! Service images: `cargo build --release` of static (crt-static glibc) binaries,
//! then an engine build of `Dockerfile.<service>` `FROM scratch` whose context
//! holds only the binary, a CA bundle and passwd/group for the non-root user.
//! Images are tagged by a hash of their context and never rebuilt unchanged.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::engine::Client;
use crate::engine::error::{EngineError, Result};
use crate::stack::build_context::Context;
use crate::stack::image_archive;
use crate::stack::postgres_image;
use crate::stack::progress::Progress;

/// The services built from this workspace.
pub const SERVICES: [&str; 3] = ["gometr", "checker", "api"];
pub(crate) const TARGET: &str = "x86_64-unknown-linux-gnu";
/// What `scripts/metrtest` compiles in one cargo build: metrtest itself, the
/// services, the reaper and the fault proxy, in the services' profile and
/// target. Every binary metrtest packs into an image must be here: a metrtest
/// built this way compiles only this set (see [`packages`]).
pub(crate) const SHARED_BUILD: [&str; 6] = [
    "metrtest",
    "gometr",
    "checker",
    "api",
    "metrtest-reaper",
    "metrtest-faultproxy",
];
/// Unprivileged user the service images run as.
pub const SERVICE_USER: &str = "65532:65532";

/// Image references the stack will run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSet {
    pub postgres: String,
    pub gometr: String,
    pub checker: String,
    pub api: String,
}

/// Images the user chose explicitly (environment file or flags).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageChoice {
    pub postgres: Option<String>,
    pub gometr: Option<String>,
    pub checker: Option<String>,
    pub api: Option<String>,
}

/// The workspace metrtest builds from: `METRTEST_WORKSPACE`, else the nearest
/// ancestor of the current directory holding `Dockerfile.checker`, else the
/// workspace metrtest itself was built from.
pub fn workspace() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("METRTEST_WORKSPACE") {
        return Ok(PathBuf::from(dir));
    }
    let cwd = std::env::current_dir().map_err(EngineError::io("read the current directory"))?;
    if let Some(found) = cwd
        .ancestors()
        .find(|d| d.join("Dockerfile.checker").is_file())
    {
        return Ok(found.to_path_buf());
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if built_from.join("Dockerfile.checker").is_file() {
        return Ok(built_from);
    }
    Err(EngineError::NoWorkspace)
}

/// Builds whatever the stack needs that is not already there.
pub async fn ensure(
    engine: &Client,
    choice: &ImageChoice,
    progress: &Progress,
) -> Result<ImageSet> {
    if let Some(set) = image_archive::loaded_set(engine, choice, progress).await {
        return Ok(set);
    }
    let mut built = Vec::new();
    let needs_build: Vec<&str> = SERVICES
        .into_iter()
        .filter(|s| match *s {
            "gometr" => choice.gometr.is_none(),
            "checker" => choice.checker.is_none(),
            _ => choice.api.is_none(),
        })
        .collect();
    if !needs_build.is_empty() {
        let root = workspace()?;
        compile(&root, &needs_build, progress).await?;
        for service in &needs_build {
            built.push((
                service.to_string(),
                service_image(engine, &root, service, progress).await?,
            ));
        }
    }
    let pick = |name: &str, explicit: &Option<String>| -> String {
        explicit.clone().unwrap_or_else(|| {
            built
                .iter()
                .find(|(s, _)| s == name)
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        })
    };
    let set = ImageSet {
        postgres: postgres_image::ensure(engine, choice.postgres.as_deref(), progress).await?,
        gometr: pick("gometr", &choice.gometr),
        checker: pick("checker", &choice.checker),
        api: pick("api", &choice.api),
    };
    for explicit in [&choice.gometr, &choice.checker, &choice.api]
        .into_iter()
        .flatten()
    {
        require_present(engine, explicit).await?;
    }
    Ok(set)
}

/// Fails unless the engine has `image`.
pub async fn require_present(engine: &Client, image: &str) -> Result<()> {
    engine.image_size(image).await.map(|_| ())
}

/// `cargo build --release` of static binaries of the workspace's `packages`;
/// incremental, so an unchanged workspace costs about a second.
pub(crate) async fn compile(root: &Path, services: &[&str], progress: &Progress) -> Result<()> {
    // One build at a time; what this process compiled already is not asked
    // of cargo again (a shared build compiles every helper at once).
    let mut done = COMPILED.lock().await;
    if done.is_empty() && std::env::var_os(SHARED_BUILD_DONE).is_some() && built_shared(root) {
        // scripts/metrtest compiled the whole shared set a moment ago.
        done.extend(SHARED_BUILD.iter().map(|p| p.to_string()));
    }
    if services.iter().all(|s| done.iter().any(|d| d == s)) {
        progress.debug(format!("cargo build ({}): done", services.join(", ")));
        return Ok(());
    }
    let packages = packages(root, services);
    let task = progress.task(format!(
        "cargo build (static binaries: {})",
        services.join(", ")
    ));
    let mut command =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(root)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for s in &packages {
        command.args(["-p", s]);
    }
    let mut child = command.spawn().map_err(EngineError::io("run cargo"))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut tail: Vec<String> = Vec::new();
    // A first build compiles hundreds of crates for minutes: say how far it is
    // (every line on a terminal's spinner; a log, which cannot show that,
    // gets the count now and then, as its renderer decides).
    let mut compiled = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        let text = line.trim();
        if text.starts_with("Compiling ") {
            compiled += 1;
        }
        let message = format!("[{compiled} crates] {text}");
        match compiled {
            0 => task.update(message),
            _ => task.update_logged(
                message,
                format!("cargo build: {compiled} crates compiled so far ({text})"),
            ),
        }
        tail.push(line);
        if tail.len() > 40 {
            tail.remove(0);
        }
    }
    let status = child
        .wait()
        .await
        .map_err(EngineError::io("wait for cargo"))?;
    if !status.success() {
        task.fail("failed");
        return Err(EngineError::Compile {
            packages: services.iter().map(|s| s.to_string()).collect(),
            output: tail.join("\n"),
        });
    }
    task.done(if compiled > 0 {
        format!("{compiled} crates compiled")
    } else {
        "up to date".to_owned()
    });
    done.extend(packages.iter().map(|p| p.to_string()));
    Ok(())
}

/// Set by `scripts/metrtest` for the metrtest it has just built together with
/// every package of [`SHARED_BUILD`]: nothing is left for cargo to do (a run
/// saves its cargo call, 0.2 s).
const SHARED_BUILD_DONE: &str = "METRTEST_SHARED_BUILD_DONE";

/// Packages compiled by this process.
static COMPILED: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());

/// The packages to compile for `wanted`. Where the workspace holds the
/// shared build (`scripts/metrtest` made it, or this metrtest is it), the
/// whole [`SHARED_BUILD`] set: cargo then resolves the same features as that
/// build and finds every dependency compiled. Asked for `wanted` alone, it
/// would resolve others (metrtest's own dependencies turn on features of
/// clap's, for one) and recompile every crate above them, optimised: minutes,
/// the first time a debug metrtest (the engine tests') needs an image. A
/// debug metrtest in a workspace with no shared build compiles only
/// `wanted`, not a release copy of itself.
fn packages<'a>(root: &Path, wanted: &[&'a str]) -> Vec<&'a str> {
    if built_shared(root) || holds_shared_build(root) {
        let mut all = SHARED_BUILD.to_vec();
        all.extend(wanted.iter().filter(|w| !SHARED_BUILD.contains(w)));
        all
    } else {
        wanted.to_vec()
    }
}

/// Whether `scripts/metrtest` has built the shared set in this workspace.
fn holds_shared_build(root: &Path) -> bool {
    release_dir(root).join("metrtest").is_file()
}

fn release_dir(root: &Path) -> PathBuf {
    root.join("target").join(TARGET).join("release")
}

/// Whether this metrtest was built in the services' profile and target.
fn built_shared(root: &Path) -> bool {
    let release = release_dir(root);
    std::env::current_exe()
        .and_then(|exe| exe.canonicalize())
        .ok()
        .zip(release.canonicalize().ok())
        .is_some_and(|(exe, dir)| exe.starts_with(dir))
}

/// `/etc/passwd` and `/etc/group` for the unprivileged user of scratch images.
fn account_files(ctx: &mut Context) -> std::io::Result<()> {
    ctx.add_bytes(
        "passwd",
        0o644,
        b"root:x:0:0:root:/:/sbin/nologin\nmetr:x:65532:65532:metr:/:/sbin/nologin\n",
    )?;
    ctx.add_bytes("group", 0o644, b"root:x:0:\nmetr:x:65532:\n")
}

async fn service_image(
    engine: &Client,
    root: &Path,
    service: &str,
    progress: &Progress,
) -> Result<String> {
    let io = |what: &str, source: std::io::Error| EngineError::Io {
        what: format!("prepare the {service} image: {what}"),
        source,
    };
    let mut ctx = Context::new();
    let dockerfile = root.join(format!("Dockerfile.{service}"));
    ctx.add_file("Dockerfile", &dockerfile)
        .map_err(|e| io(&dockerfile.display().to_string(), e))?;
    let binary = root
        .join("target")
        .join(TARGET)
        .join("release")
        .join(service);
    ctx.add_file(service, &binary)
        .map_err(|e| io(&binary.display().to_string(), e))?;
    let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if ca.is_file() {
        ctx.add_file("ca-certificates.crt", ca)
            .map_err(|e| io("CA bundle", e))?;
    } else {
        ctx.add_bytes("ca-certificates.crt", 0o644, b"")
            .map_err(|e| io("CA bundle", e))?;
    }
    account_files(&mut ctx).map_err(|e| io("account files", e))?;
    let tag = format!("metrtest/{service}:{}", ctx.tag());
    build(engine, &tag, service, ctx, progress).await?;
    Ok(tag)
}

/// One of metrtest's own helpers (the reaper, the fault proxy): the static
/// binary of workspace `package` alone in a `FROM scratch` image, run as
/// `/{name}`, tagged `metrtest/{name}:<hash of the context>`.
pub(crate) async fn helper_image(
    engine: &Client,
    package: &str,
    name: &str,
    progress: &Progress,
) -> Result<String> {
    if let Some(tag) = image_archive::loaded_helper(engine, name, progress).await {
        return Ok(tag);
    }
    let root = workspace()?;
    compile(&root, &[package], progress).await?;
    let binary = root
        .join("target")
        .join(TARGET)
        .join("release")
        .join(package);
    let mut ctx = Context::new();
    let io = |source| EngineError::Io {
        what: format!("prepare the {name} image"),
        source,
    };
    let dockerfile = format!("FROM scratch\nCOPY {package} /{name}\nENTRYPOINT [\"/{name}\"]\n");
    ctx.add_bytes("Dockerfile", 0o644, dockerfile.as_bytes())
        .map_err(io)?;
    ctx.add_file(package, &binary).map_err(io)?;
    let tag = format!("metrtest/{name}:{}", ctx.tag());
    build(engine, &tag, name, ctx, progress).await?;
    Ok(tag)
}

/// Builds `ctx` as `tag` through the engine unless the engine already has it.
pub async fn build(
    engine: &Client,
    tag: &str,
    service: &str,
    ctx: Context,
    progress: &Progress,
) -> Result<()> {
    if engine.has_image(tag).await {
        progress.debug(format!("image {tag} is up to date"));
        return Ok(());
    }
    let task = progress.task(format!("image {tag}"));
    let size = ctx.size;
    let tar = ctx
        .finish()
        .map_err(EngineError::io(format!("pack the {service} build context")))?;
    let built = engine
        .build_image(tag, service, tar, |line| task.update(line.to_owned()))
        .await;
    match built {
        Ok(()) => task.done(format!("built ({} MB context)", size / 1_000_000)),
        Err(_) => task.fail("failed"),
    }
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_metrtest_builds_exactly_the_shared_set() {
        let script = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/metrtest"),
        )
        .expect("scripts/metrtest");
        let words: Vec<&str> = script.split_whitespace().collect();
        let mut built: Vec<&str> = words
            .windows(2)
            .filter(|w| w[0] == "-p")
            .map(|w| w[1])
            .collect();
        let mut shared = SHARED_BUILD.to_vec();
        built.sort_unstable();
        shared.sort_unstable();
        assert_eq!(built, shared);
    }
}
