//! Where the engine is, as the docker CLI finds it: `DOCKER_HOST`, else the
//! current Docker context (`DOCKER_CONTEXT`, else `currentContext` in the
//! config file), else the local socket. And where its published ports are
//! reached: the engine's host for a remote engine, `METRTEST_HOST` if set.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The local engine's socket, used when nothing says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A context or configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("read the Docker context {name:?} ({path}): {source}")]
    ReadContext {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the Docker context {name:?} has no docker endpoint host ({path})")]
    NoHost { name: String, path: PathBuf },
}

/// The engine this process talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///…`, `tcp://host:port`, `ssh://user@host`, …
    pub host: String,
    /// Where `host` came from, for messages (`DOCKER_HOST=…`, `context ci`).
    pub source: String,
}

/// What the environment says about the engine, read once.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: Option<PathBuf>,
}

impl Settings {
    pub fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Settings {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            config_dir: var("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker"))),
        }
    }
}

impl Endpoint {
    /// Resolves the engine the way the docker CLI does.
    pub fn resolve(settings: &Settings) -> Result<Endpoint, EndpointError> {
        if let Some(host) = &settings.docker_host {
            return Ok(Endpoint {
                host: host.clone(),
                source: format!("DOCKER_HOST={host}"),
            });
        }
        let local = || Endpoint {
            host: DEFAULT_HOST.to_owned(),
            source: format!("{DEFAULT_HOST} (DOCKER_HOST is not set)"),
        };
        let Some(dir) = &settings.config_dir else {
            return Ok(local());
        };
        let name = match &settings.docker_context {
            Some(name) => Some(name.clone()),
            None => current_context(dir)?,
        };
        match name {
            Some(name) if name != "default" => Ok(Endpoint {
                host: context_host(dir, &name)?,
                source: format!("Docker context {name:?}"),
            }),
            _ => Ok(local()),
        }
    }

    /// The socket path of a local engine; `None` for a remote one.
    pub fn socket(&self) -> Option<&str> {
        self.host.strip_prefix("unix://")
    }

    /// Whether the engine runs on another host (tcp, ssh, http).
    pub fn is_remote(&self) -> bool {
        self.socket().is_none()
    }

    /// The host name or address in a `tcp://`, `ssh://` or `http(s)://` host
    /// (an IPv6 address keeps its brackets, ready for a URL).
    pub fn engine_host(&self) -> Option<&str> {
        let rest = self.host.split_once("://")?.1;
        let authority = rest.split('/').next()?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match authority.strip_prefix('[') {
            Some(v6) => &authority[..v6.find(']')? + 2],
            None => authority.split(':').next()?,
        };
        (!host.is_empty()).then_some(host)
    }

    /// Where published ports are reached from here: `METRTEST_HOST` if set,
    /// the engine's host for a remote engine, else 127.0.0.1.
    pub fn reach_host(&self, metrtest_host: Option<&str>) -> String {
        if let Some(host) = metrtest_host.filter(|h| !h.is_empty()) {
            return host.to_owned();
        }
        match self.engine_host() {
            Some(host) if self.is_remote() => host.to_owned(),
            _ => "127.0.0.1".to_owned(),
        }
    }

    /// The address ports are published on, on the engine's host: loopback for
    /// a local engine, every address for a remote one (else nothing here could
    /// reach them).
    pub fn bind_ip(&self) -> &'static str {
        if self.is_remote() {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        }
    }
}

/// `currentContext` of the config file, if any.
fn current_context(dir: &Path) -> Result<Option<String>, EndpointError> {
    let path = dir.join("config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| EndpointError::Parse { path, source })?;
    Ok(config["currentContext"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_owned))
}

/// `Endpoints.docker.Host` of a context: its metadata lives in
/// `contexts/meta/<sha256 of the name>/meta.json` (the docker CLI's layout).
fn context_host(dir: &Path, name: &str) -> Result<String, EndpointError> {
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join("contexts/meta").join(hex).join("meta.json");
    let text = std::fs::read_to_string(&path).map_err(|source| EndpointError::ReadContext {
        name: name.to_owned(),
        path: path.clone(),
        source,
    })?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| EndpointError::Parse {
            path: path.clone(),
            source,
        })?;
    meta["Endpoints"]["docker"]["Host"]
        .as_str()
        .map(str::to_owned)
        .ok_or(EndpointError::NoHost {
            name: name.to_owned(),
            path,
        })
}

static CURRENT: OnceLock<Result<Endpoint, String>> = OnceLock::new();

/// This process's engine, resolved from the environment once.
pub fn current() -> Result<&'static Endpoint, String> {
    CURRENT
        .get_or_init(|| Endpoint::resolve(&Settings::from_env()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Where this process reaches published ports (see [`Endpoint::reach_host`]).
pub fn reach_host() -> String {
    let metrtest_host = std::env::var("METRTEST_HOST").ok();
    match current() {
        Ok(endpoint) => endpoint.reach_host(metrtest_host.as_deref()),
        Err(_) => metrtest_host.unwrap_or_else(|| "127.0.0.1".to_owned()),
    }
}

/// The address ports are published on (see [`Endpoint::bind_ip`]).
pub fn bind_ip() -> &'static str {
    current().map_or("127.0.0.1", Endpoint::bind_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str) -> Endpoint {
        Endpoint {
            host: host.into(),
            source: String::new(),
        }
    }

    #[test]
    fn docker_host_wins_over_any_context() {
        let settings = Settings {
            docker_host: Some("tcp://docker:2375".into()),
            docker_context: Some("elsewhere".into()),
            config_dir: Some("/nonexistent".into()),
        };
        assert_eq!(
            Endpoint::resolve(&settings).unwrap().host,
            "tcp://docker:2375"
        );
    }

    #[test]
    fn nothing_set_is_the_local_socket() {
        let settings = Settings {
            config_dir: Some("/nonexistent".into()),
            ..Default::default()
        };
        let endpoint = Endpoint::resolve(&settings).unwrap();
        assert_eq!(endpoint.host, DEFAULT_HOST);
        assert_eq!(endpoint.reach_host(None), "127.0.0.1");
        assert_eq!(endpoint.bind_ip(), "127.0.0.1");
    }

    #[test]
    fn the_current_context_of_the_config_file_names_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"currentContext":"ci"}"#).unwrap();
        let digest = Sha256::digest(b"ci");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let meta = dir.path().join("contexts/meta").join(hex);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"ci","Endpoints":{"docker":{"Host":"tcp://10.0.0.7:2375"}}}"#,
        )
        .unwrap();
        let settings = Settings {
            config_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let endpoint = Endpoint::resolve(&settings).unwrap();
        assert_eq!(endpoint.host, "tcp://10.0.0.7:2375");
        assert_eq!(endpoint.source, "Docker context \"ci\"");
        let unknown = Settings {
            docker_context: Some("gone".into()),
            ..settings
        };
        let err = Endpoint::resolve(&unknown).unwrap_err().to_string();
        assert!(err.contains("\"gone\""), "{err}");
    }

    #[test]
    fn ports_of_a_remote_engine_are_reached_at_its_host() {
        assert_eq!(endpoint("tcp://docker:2375").reach_host(None), "docker");
        assert_eq!(endpoint("ssh://ci@build-7:22").reach_host(None), "build-7");
        assert_eq!(
            endpoint("tcp://[fd00::2]:2375").reach_host(None),
            "[fd00::2]"
        );
        assert_eq!(endpoint("tcp://docker:2375").bind_ip(), "0.0.0.0");
        assert_eq!(
            endpoint("tcp://docker:2375").reach_host(Some("10.1.2.3")),
            "10.1.2.3"
        );
        assert_eq!(
            endpoint("unix:///run/user/1000/docker.sock").reach_host(Some("")),
            "127.0.0.1"
        );
    }
}
