//! The PostgreSQL image: the official `postgres:16-alpine` when the engine has
//! it or can pull it; otherwise one assembled from the host's PostgreSQL
//! installation (binaries, `lib/`, `share/`, zoneinfo and the `ldd` closure,
//! dash as `/bin/sh`), with the official image's environment interface.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::Client;
use crate::engine::error::{EngineError, Result};
use crate::stack::build_context::Context;
use crate::stack::images::{self, require_present};
use crate::stack::progress::Progress;

/// The image used when nothing else is asked for.
pub const OFFICIAL: &str = "postgres:16-alpine";
/// Repository of host-assembled images; their containers run as this uid.
pub const HOST_REPOSITORY: &str = "metrtest/postgres-host";
pub const HOST_UID: u32 = 999;

/// Whether an image reference is one metrtest assembled from the host.
pub fn is_host_assembled(image: &str) -> bool {
    image.starts_with(HOST_REPOSITORY)
}

/// Resolves the PostgreSQL image to run.
pub async fn ensure(
    engine: &Client,
    explicit: Option<&str>,
    progress: &Progress,
) -> Result<String> {
    if let Some(image) = explicit {
        if !engine.has_image(image).await && !pull(engine, image, progress).await {
            require_present(engine, image).await?;
        }
        return Ok(image.to_owned());
    }
    if engine.has_image(OFFICIAL).await || pull(engine, OFFICIAL, progress).await {
        return Ok(OFFICIAL.to_owned());
    }
    let install = HostInstall::find().ok_or_else(|| EngineError::NoPostgres {
        image: OFFICIAL.to_owned(),
    })?;
    // Tagged by the host files' metadata: reading their ~80 MB on every run
    // took 0.5 s; they change only when a package update rewrites them.
    let major = install.major.clone();
    let assemble = |ctx: Context| {
        let install = install.clone();
        async move {
            tokio::task::spawn_blocking(move || install.context(ctx))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|ctx| ctx)
                .map_err(EngineError::io("assemble a PostgreSQL image from the host"))
        }
    };
    let tag = format!(
        "{HOST_REPOSITORY}:{major}-{}",
        assemble(Context::fingerprint()).await?.tag()
    );
    if engine.has_image(&tag).await {
        progress.debug(format!("image {tag} is up to date"));
        return Ok(tag);
    }
    progress.info(format!(
        "{OFFICIAL} cannot be pulled: assembling {tag} from the host's PostgreSQL {major}"
    ));
    images::build(
        engine,
        &tag,
        "postgres",
        assemble(Context::new()).await?,
        progress,
    )
    .await?;
    Ok(tag)
}

/// Tries a pull for a few seconds; air-gapped engines fail fast or time out.
async fn pull(engine: &Client, image: &str, progress: &Progress) -> bool {
    let pulled = engine.try_pull(image, Duration::from_secs(20)).await;
    progress.debug(format!(
        "pull {image}: {}",
        if pulled { "ok" } else { "not possible" }
    ));
    pulled
}

/// A Debian-layout PostgreSQL installation on the host.
#[derive(Clone)]
struct HostInstall {
    major: String,
    bin: PathBuf,
    lib: PathBuf,
    share: PathBuf,
}

/// The cluster `initdb` made when the image was built, as one archive: a
/// stack's start unpacks it instead of running `initdb` (0.47 CPU-s on the
/// host; unpacking and the single-user set-up cost a container 0.17). One file, because each file read through the engine's
/// storage driver has a cost of its own (fuse-overlayfs: ~0.5 ms; a copy of
/// the 990 files took 0.5 s, reading one 16 MB file nothing measurable).
const TEMPLATE: &str = "/usr/local/share/metrtest/pgdata.tar";

/// Run once, when the image is built (superuser `postgres`, no password yet;
/// the entrypoint gives the container's user, password and database).
const INITDB: &str = r#"#!/bin/sh
set -e
cd /usr/local/share/metrtest
initdb -D pgdata -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync
echo "host all all all scram-sha-256" >> pgdata/pg_hba.conf
tar -cf pgdata.tar -C pgdata .
rm -rf pgdata
"#;

const ENTRYPOINT: &str = r#"#!/bin/sh
# Same interface as the official image: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA.
set -e
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
template=/usr/local/share/metrtest/pgdata.tar
# $1 with each $2 doubled: a value for SQL quotes ($2 = ') or identifier quotes ($2 = ").
double() {
  rest=$1 out=
  while :; do
    case $rest in
      *"$2"*) out="$out${rest%%"$2"*}$2$2"; rest=${rest#*"$2"} ;;
      *) printf '%s' "$out$rest"; return ;;
    esac
  done
}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  if [ -s "$template" ] && [ ! -e "$PGDATA" ]; then
    # The image's cluster, given its user, password and database in
    # single-user mode, then moved into place: a start cut short redoes it.
    staging="$PGDATA.init"
    rm -rf "$staging"
    mkdir -m 700 "$staging"
    tar -xf "$template" -C "$staging"
    password=$(double "$POSTGRES_PASSWORD" "'")
    role=$(double "$user" '"')
    # printf, not echo: dash's echo would read backslashes in a password.
    {
      if [ "$user" = postgres ]; then
        printf '%s\n' "ALTER ROLE postgres PASSWORD '$password';"
      else
        printf '%s\n' "CREATE ROLE \"$role\" SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS LOGIN PASSWORD '$password';"
      fi
      if [ "$db" != postgres ]; then
        printf '%s\n' "CREATE DATABASE \"$(double "$db" '"')\" OWNER \"$role\";"
      fi
    } | postgres --single -D "$staging" -c fsync=off postgres >/tmp/.init.log 2>&1 || { cat /tmp/.init.log; echo "setting up the database failed" >&2; exit 1; }
    case "$(cat /tmp/.init.log)" in
      *ERROR:*|*FATAL:*) cat /tmp/.init.log; echo "setting up the database failed" >&2; exit 1 ;;
    esac
    mv "$staging" "$PGDATA"
  else
    echo "$POSTGRES_PASSWORD" > /tmp/.pwfile
    initdb -D "$PGDATA" -U "$user" --pwfile=/tmp/.pwfile --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C --no-sync >/tmp/.initdb.log 2>&1 || { cat /tmp/.initdb.log 2>/dev/null; echo "initdb failed" >&2; exit 1; }
    : > /tmp/.pwfile
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$db" != "postgres" ]; then
      echo "CREATE DATABASE \"$db\" OWNER \"$user\";" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
  fi
  echo "metrtest: database $db initialised for $user"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp -c jit=off "$@"
"#;

impl HostInstall {
    fn find() -> Option<HostInstall> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("bin/postgres").is_file() && p.join("bin/initdb").is_file())
            .collect();
        versions.sort();
        let dir = versions.pop()?;
        let major = dir.file_name()?.to_string_lossy().into_owned();
        let share = PathBuf::from(format!("/usr/share/postgresql/{major}"));
        share.is_dir().then(|| HostInstall {
            bin: dir.join("bin"),
            lib: dir.join("lib"),
            share,
            major,
        })
    }

    fn dockerfile(&self) -> String {
        format!(
            "# Assembled by metrtest from the host's PostgreSQL {major} (see cli/src/stack/postgres_image.rs).\n\
             FROM scratch\n\
             COPY rootfs/ /\n\
             # A volume mounted here inherits this ownership: the server runs unprivileged.\n\
             COPY --chown={HOST_UID}:{HOST_UID} pgdata /var/lib/postgresql\n\
             COPY --chown={HOST_UID}:{HOST_UID} pgdata {template_parent}\n\
             ENV PATH=/usr/lib/postgresql/{major}/bin:/usr/bin:/bin \\\n    \
             LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu \\\n    \
             TZ=UTC LANG=C PGDATA=/var/lib/postgresql/data\n\
             USER {HOST_UID}:{HOST_UID}\n\
             RUN [\"/bin/sh\", \"/usr/local/bin/metrtest-initdb.sh\"]\n\
             EXPOSE 5432\n\
             STOPSIGNAL SIGINT\n\
             ENTRYPOINT [\"/bin/sh\", \"/usr/local/bin/docker-entrypoint.sh\"]\n",
            major = self.major,
            template_parent = TEMPLATE.trim_end_matches("/pgdata.tar"),
        )
    }

    /// Fills `ctx` with the image's files.
    fn context(&self, mut ctx: Context) -> std::io::Result<Context> {
        ctx.add_bytes("Dockerfile", 0o644, self.dockerfile().as_bytes())?;
        ctx.add_bytes("pgdata/.keep", 0o644, b"")?;
        let root = |p: &Path| format!("rootfs{}", p.display());
        let mut elves = Vec::new();
        for tool in ["postgres", "initdb"] {
            let path = self.bin.join(tool);
            ctx.add_file(&root(&path), &path)?;
            elves.push(path);
        }
        // JIT is off in the entrypoint; llvmjit and its bitcode are most of lib/'s size.
        let skip_jit = |p: &Path| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with("llvmjit") || name == "bitcode"
        };
        ctx.add_tree(&root(&self.lib), &self.lib, &skip_jit)?;
        for entry in std::fs::read_dir(&self.lib)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "so") && !skip_jit(&path) {
                elves.push(path);
            }
        }
        ctx.add_tree(&root(&self.share), &self.share, &|_| false)?;
        let zoneinfo = Path::new("/usr/share/zoneinfo");
        if zoneinfo.is_dir() {
            ctx.add_tree("rootfs/usr/share/zoneinfo", zoneinfo, &|p| {
                p.ends_with("right") || p.ends_with("posix")
            })?;
        }
        add_shell_and_tools(&mut ctx, &mut elves)?;
        if ctx.is_fingerprint() {
            // The libraries' folders stand for the `ldd` closure (0.3 s to
            // compute): a package that adds, replaces or removes a library
            // renames in the folder, which changes its modification time.
            let arch = std::env::consts::ARCH;
            for dir in [
                format!("/lib/{arch}-linux-gnu"),
                format!("/usr/lib/{arch}-linux-gnu"),
                "/lib64".to_owned(),
            ] {
                ctx.add_metadata(Path::new(&dir))?;
            }
        } else {
            for library in shared_library_closure(&elves)? {
                ctx.add_file(&root(&library), &library)?;
            }
        }
        add_scripts_and_accounts(&mut ctx)?;
        Ok(ctx)
    }
}

/// `/bin/sh` and the entrypoint's tools from the host, noted in `elves` for
/// their libraries: cat shows a failed set-up's log; mkdir, tar, mv and rm
/// unpack the image's cluster (and pack it, at build time).
fn add_shell_and_tools(ctx: &mut Context, elves: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let shell = ["/bin/dash", "/usr/bin/dash", "/bin/sh"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file());
    let shell =
        shell.ok_or_else(|| std::io::Error::other("no /bin/dash or /bin/sh on the host"))?;
    ctx.add_file("rootfs/bin/sh", shell)?;
    elves.push(shell.to_path_buf());
    for tool in ["cat", "mkdir", "mv", "rm", "tar"] {
        let path = ["/bin", "/usr/bin"]
            .into_iter()
            .map(|dir| Path::new(dir).join(tool))
            .find(|p| p.is_file())
            .ok_or_else(|| std::io::Error::other(format!("no {tool} on the host")))?;
        ctx.add_file(&format!("rootfs/bin/{tool}"), &path)?;
        elves.push(path);
    }
    Ok(())
}

/// The entrypoint and initdb scripts, and the accounts PostgreSQL runs as.
fn add_scripts_and_accounts(ctx: &mut Context) -> std::io::Result<()> {
    ctx.add_bytes(
        "rootfs/usr/local/bin/docker-entrypoint.sh",
        0o755,
        ENTRYPOINT.as_bytes(),
    )?;
    ctx.add_bytes(
        "rootfs/usr/local/bin/metrtest-initdb.sh",
        0o755,
        INITDB.as_bytes(),
    )?;
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\npostgres:x:{HOST_UID}:{HOST_UID}:PostgreSQL:/var/lib/postgresql:/bin/sh\n"
    );
    ctx.add_bytes("rootfs/etc/passwd", 0o644, passwd.as_bytes())?;
    ctx.add_bytes(
        "rootfs/etc/group",
        0o644,
        format!("root:x:0:\npostgres:x:{HOST_UID}:\n").as_bytes(),
    )?;
    ctx.add_bytes(
        "rootfs/etc/nsswitch.conf",
        0o644,
        b"passwd: files\ngroup: files\nhosts: files dns\n",
    )?;
    Ok(())
}

/// Every shared library the given ELF files load, as `ldd` reports them.
fn shared_library_closure(elves: &[PathBuf]) -> std::io::Result<BTreeSet<PathBuf>> {
    let mut libraries = BTreeSet::new();
    for chunk in elves.chunks(64) {
        let out = std::process::Command::new("ldd").args(chunk).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            let line = line.trim();
            // With several files, ldd heads each block with "path:".
            if line.ends_with(':') {
                continue;
            }
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line
                    .split_whitespace()
                    .next()
                    .filter(|p| p.starts_with('/')),
            };
            if let Some(path) = path.filter(|p| p.starts_with('/')) {
                libraries.insert(PathBuf::from(path));
            }
        }
    }
    Ok(libraries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_yields_library_paths() {
        let Some(sh) = ["/bin/dash", "/bin/sh"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        else {
            return;
        };
        let libs = shared_library_closure(&[sh]).unwrap();
        assert!(
            libs.iter().any(|p| p.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
        assert!(
            libs.iter()
                .any(|p| p.to_string_lossy().contains("ld-linux")),
            "{libs:?}"
        );
    }

    #[test]
    fn the_scripts_and_the_dockerfile_agree_on_where_the_template_is() {
        let (folder, archive) = TEMPLATE.rsplit_once('/').unwrap();
        assert!(INITDB.contains(&format!("cd {folder}\n")), "{INITDB}");
        assert!(INITDB.contains(&format!("tar -cf {archive} ")), "{INITDB}");
        assert!(ENTRYPOINT.contains(&format!("template={TEMPLATE}\n")));
        let install = HostInstall {
            major: "15".into(),
            bin: PathBuf::new(),
            lib: PathBuf::new(),
            share: PathBuf::new(),
        };
        let dockerfile = install.dockerfile();
        assert!(
            dockerfile.contains(&format!("pgdata {folder}\n")),
            "{dockerfile}"
        );
        assert!(dockerfile.contains("RUN [\"/bin/sh\", \"/usr/local/bin/metrtest-initdb.sh\"]"));
    }

    #[test]
    fn host_images_are_recognised_by_name() {
        assert!(is_host_assembled("metrtest/postgres-host:15-abc"));
        assert!(!is_host_assembled(OFFICIAL));
    }
}
