//! `DOCKER_HOST=ssh://[user@]host[:port]`: the engine reached the way the
//! docker CLI reaches it, by running `docker system dial-stdio` on that host
//! through the system's ssh client, once per connection (so `~/.ssh/config`,
//! the agent and known hosts apply as they do for `docker`).
//!
//! bollard is given a local Unix socket bridged to those ssh processes rather
//! than its own ssh support, which loses the port of `ssh://user@host:port`
//! (it hands `user@host:port` to ssh as a host name) and takes no client
//! options. Extra ssh options come from `METRTEST_SSH_OPTS`.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// Where an `ssh://` engine URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl Destination {
    /// Parses `ssh://[user@]host[:port]` (a path after the host is refused,
    /// as the docker CLI refuses it).
    pub fn parse(url: &str) -> Result<Destination, String> {
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("{url:?} is not an ssh:// URL"))?;
        if rest.contains('/') {
            return Err(format!("{url:?}: an ssh engine URL has no path"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.to_owned()), hostport),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse()
                    .map_err(|_| format!("{url:?}: {port:?} is not a port"))?;
                (host, Some(port))
            }
            None => (hostport, None),
        };
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        Ok(Destination {
            user,
            host: host.to_owned(),
            port,
        })
    }

    /// The ssh command that connects a client to the engine on this host.
    fn command(&self, extra: &[String]) -> Command {
        let mut ssh = Command::new("ssh");
        // Never a prompt: a run in CI must fail, not wait for a password.
        ssh.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
        ssh.args(extra);
        if let Some(user) = &self.user {
            ssh.args(["-l", user]);
        }
        if let Some(port) = self.port {
            ssh.args(["-p", &port.to_string()]);
        }
        ssh.args(["--", &self.host, "docker", "system", "dial-stdio"]);
        ssh
    }
}

/// `METRTEST_SSH_OPTS`, split as a shell splits plain words.
fn extra_options() -> Vec<String> {
    std::env::var("METRTEST_SSH_OPTS")
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The bridges this process runs: one socket per ssh URL.
static BRIDGES: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();

/// A local socket whose connections reach the engine at `url` through ssh.
/// The bridge is started on first use and serves until the process ends.
pub fn bridge(url: &str) -> Result<PathBuf, String> {
    let destination = Destination::parse(url)?;
    let bridges = BRIDGES.get_or_init(Mutex::default);
    let mut bridges = bridges.lock().expect("ssh bridges");
    if let Some((_, path)) = bridges.iter().find(|(u, _)| u == url) {
        return Ok(path.clone());
    }
    let dir = std::env::temp_dir().join(format!("metrtest-ssh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.sock", bridges.len()));
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).map_err(|e| format!("listen on {}: {e}", path.display()))?;
    let extra = extra_options();
    std::thread::Builder::new()
        .name("ssh bridge".into())
        .spawn(move || {
            for client in listener.incoming().flatten() {
                let ssh = destination.command(&extra);
                std::thread::spawn(move || serve(client, ssh));
            }
        })
        .map_err(|e| format!("start the ssh bridge: {e}"))?;
    bridges.push((url.to_owned(), path.clone()));
    Ok(path)
}

/// Removes the bridges' sockets; called once the command is done.
pub fn cleanup() {
    if let Some(bridges) = BRIDGES.get()
        && let Ok(bridges) = bridges.lock()
        && let Some((_, path)) = bridges.first()
        && let Some(dir) = path.parent()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Pipes one client connection through one ssh process, both ways, until
/// either side closes. ssh's own messages (a refused key, an unknown host)
/// go to metrtest's stderr, as with the docker CLI.
fn serve(client: UnixStream, mut ssh: Command) {
    let Ok(mut child) = ssh
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    else {
        return;
    };
    let (Some(mut to_ssh), Some(mut from_ssh)) = (child.stdin.take(), child.stdout.take()) else {
        finish(child);
        return;
    };
    let Ok(mut reader) = client.try_clone() else {
        finish(child);
        return;
    };
    let upstream = std::thread::spawn(move || {
        pass(&mut reader, &mut to_ssh);
        // Closing ssh's stdin ends dial-stdio's input: the engine's side
        // then finishes its answer and closes.
        drop(to_ssh);
    });
    let mut writer = client;
    pass(&mut from_ssh, &mut writer);
    let _ = writer.shutdown(std::net::Shutdown::Both);
    let _ = upstream.join();
    finish(child);
}

/// Copies what `from` reads to `to` as it comes, until either side ends.
/// Not `std::io::copy`: from a socket to a pipe it splices, and a splice
/// from a Unix socket waits for more than one request's bytes.
fn pass(from: &mut impl Read, to: &mut impl Write) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to
                    .write_all(&buffer[..n])
                    .and_then(|()| to.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn finish(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_host_and_port_are_read_from_the_url() {
        assert_eq!(
            Destination::parse("ssh://ci@build-7:2222"),
            Ok(Destination {
                user: Some("ci".into()),
                host: "build-7".into(),
                port: Some(2222)
            })
        );
        assert_eq!(
            Destination::parse("ssh://build-7"),
            Ok(Destination {
                user: None,
                host: "build-7".into(),
                port: None
            })
        );
        for bad in ["ssh://", "ssh://h:port", "ssh://h/path", "tcp://h:1"] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_runs_dial_stdio_on_the_host_without_prompting() {
        let d = Destination::parse("ssh://ci@build-7:2222").unwrap();
        let ssh = d.command(&["-o".into(), "UserKnownHostsFile=/k".into()]);
        let args: Vec<String> = ssh
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "-o BatchMode=yes -o ConnectTimeout=10 -o UserKnownHostsFile=/k -l ci -p 2222 -- build-7 docker system dial-stdio"
        );
    }
}
