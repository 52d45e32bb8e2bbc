//! A remote engine: a second `dockerd` this test starts in a network namespace
//! of its own, listening on TCP at the namespace's end of a veth pair (a
//! private /30, never an address of the machine's real interfaces). metrtest
//! reaches it through `DOCKER_HOST=tcp://…` and through a Docker context,
//! builds its images there (the engine starts empty and cannot pull) and
//! reaches the published ports at the engine's address, not 127.0.0.1.
//!
//! The same engine is then reached over ssh (`DOCKER_HOST=ssh://root@ADDR:2222`)
//! through a small ssh server the test starts in that namespace.
//!
//! Needs root and `dockerd`; skips with a message otherwise.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The second engine and everything made for it; dropping it removes all of it.
struct SecondEngine {
    netns: String,
    veth: String,
    dir: PathBuf,
    daemon: Option<Child>,
    /// The engine's address inside the namespace.
    address: String,
}

impl SecondEngine {
    fn host(&self) -> String {
        format!("tcp://{}:2375", self.address)
    }

    fn start() -> SecondEngine {
        let id = std::process::id();
        let subnet = 16 + id % 200;
        let mut engine = SecondEngine {
            netns: format!("metrtest-e2e-{id}"),
            veth: format!("mte{id}"),
            dir: std::env::temp_dir().join(format!("metrtest-dockerd-{id}")),
            daemon: None,
            address: format!("10.213.{subnet}.2"),
        };
        let peer = format!("{}n", engine.veth);
        let (ns, veth) = (engine.netns.clone(), engine.veth.clone());
        sh(&["ip", "netns", "add", &ns]);
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer,
        ]);
        sh(&["ip", "link", "set", &peer, "netns", &ns]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("10.213.{subnet}.1/30"),
            "dev",
            &veth,
        ]);
        sh(&["ip", "link", "set", &veth, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &ns];
            all.extend_from_slice(args);
            sh(&all);
        };
        inside(&["ip", "link", "set", "lo", "up"]);
        inside(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", engine.address),
            "dev",
            &peer,
        ]);
        inside(&["ip", "link", "set", &peer, "up"]);

        std::fs::create_dir_all(&engine.dir).unwrap();
        let log = std::fs::File::create(engine.dir.join("dockerd.log")).unwrap();
        let d = |sub: &str| engine.dir.join(sub).display().to_string();
        // The machine's /etc/docker/daemon.json is not this engine's.
        std::fs::write(engine.dir.join("daemon.json"), "{}").unwrap();
        // nsenter (which becomes dockerd), not `ip netns exec`: that remounts
        // /sys, hiding the cgroup mounts dockerd needs ("Devices cgroup isn't mounted").
        let daemon = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{ns}"))
            .arg("dockerd")
            .args(["--config-file", &d("daemon.json")])
            .args(["--data-root", &d("data")])
            .args(["--exec-root", &d("exec")])
            .args(["--pidfile", &d("dockerd.pid")])
            .args(["-H", &engine.host()])
            .args(["-H", &format!("unix://{}", d("docker.sock"))])
            // No docker0: metrtest makes a network of its own per run.
            .args(["--bridge", "none"])
            .args(["--storage-driver", "vfs"])
            .args(["--containerd-namespace", &format!("metrtest-e2e-{id}")])
            .args([
                "--containerd-plugins-namespace",
                &format!("metrtest-e2e-{id}-plugins"),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        engine.daemon = Some(daemon);
        engine.wait_answering(Duration::from_secs(90));
        engine
    }

    fn wait_answering(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.docker(|d| async move { d.ping().await.is_ok() }) == Some(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "the second engine did not answer within {limit:?}:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Runs `f` with a client of the second engine; `None` if it does not answer.
    fn docker<F, T>(&self, f: impl FnOnce(bollard::Docker) -> F) -> Option<T>
    where
        F: std::future::Future<Output = T>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let host = self.host();
        rt.block_on(async move {
            let client =
                bollard::Docker::connect_with_http(&host, 10, bollard::API_DEFAULT_VERSION).ok()?;
            let client = client.negotiate_version().await.ok()?;
            Some(f(client).await)
        })
    }

    /// A run's labelled containers, networks and volumes on this engine.
    fn leftovers(&self, run: &str) -> (usize, usize, usize) {
        self.docker(|d| async move { count_run(&d, run).await })
            .expect("the second engine answers")
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            // SIGTERM lets dockerd stop its containers and unmount; then SIGKILL.
            signal(&daemon, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        // Mounts dockerd may have left under its roots, then the roots.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {0}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l",
                self.dir.display()
            ))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An ssh server on the second engine's address whose `docker` commands
/// reach that engine; killed when dropped.
struct Sshd {
    address: String,
    known_hosts: PathBuf,
    server: Child,
}

impl Sshd {
    const PORT: u16 = 2222;

    fn start(engine: &SecondEngine, dir: &Path) -> Sshd {
        let key = dir.join("ssh_host_key");
        sh(&[
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &key.display().to_string(),
        ]);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sshd.py");
        let mut server = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", engine.netns))
            .arg(paramiko_python())
            .arg(script)
            .args([&engine.address, &Self::PORT.to_string()])
            .arg(&key)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", engine.dir.join("docker.sock").display()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the ssh server");
        let mut first = String::new();
        let stdout = server.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
        assert_eq!(first.trim(), "listening", "the ssh server started");
        Sshd {
            address: engine.address.clone(),
            known_hosts: dir.join("known_hosts"),
            server,
        }
    }

    fn url(&self) -> String {
        format!("ssh://root@{}:{}", self.address, Self::PORT)
    }

    /// The test's own known-hosts file, so that nothing of the machine's
    /// ssh configuration changes.
    fn client_options(&self) -> String {
        format!(
            "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
            self.known_hosts.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A Python with paramiko (pinned, from PyPI) for the ssh server, in a
/// virtual environment under target/ made on first use.
fn paramiko_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-sshd-paramiko-5.1.0");
    let python = venv.join("bin/python");
    if !python.is_file() {
        sh(&["python3", "-m", "venv", &venv.display().to_string()]);
        sh(&[
            &venv.join("bin/pip").display().to_string(),
            "install",
            "-q",
            "paramiko==5.1.0",
        ]);
    }
    python
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?} failed: {status}");
}

/// Why this machine cannot run the test, if it cannot.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces and dockerd need it)".into());
    }
    for tool in ["dockerd", "ip", "nsenter", "ssh", "ssh-keygen", "python3"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// A Docker config folder whose current context is the second engine.
fn context_config(dir: &Path, host: &str) -> PathBuf {
    use sha2::Digest;
    let config = dir.join("docker-config");
    let hex: String = sha2::Sha256::digest(b"second")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta = config.join("contexts/meta").join(hex);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(config.join("config.json"), r#"{"currentContext":"second"}"#).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(r#"{{"Name":"second","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
    )
    .unwrap();
    config
}

#[test]
fn a_stack_on_a_remote_engine_is_reached_at_the_engines_address_by_host_by_context_and_over_ssh() {
    if let Some(why) = cannot_run() {
        eprintln!("skipped: a second engine cannot be started here: {why}");
        return;
    }
    let engine = SecondEngine::start();
    let scratch = tempfile::tempdir().unwrap();

    // DOCKER_HOST=tcp://…: images built there, ports reached at its address.
    let up = metrtest()
        .args(["up", "--detach", "--ttl", "10m"])
        .env("DOCKER_HOST", engine.host())
        .env_remove("METRTEST_HOST")
        .ran();
    up.assert_code_for(0, format_args!("up (dockerd:\n{})", engine.log()));
    let (stdout, stderr) = (&up.stdout, &up.stderr);
    let run = run_id_printed(stdout);
    assert!(
        stderr.contains("no reaper"),
        "a tcp engine runs without a reaper, and says so: {stderr}"
    );
    let at_engine = format!("http://{}:", engine.address);
    assert!(
        stdout.contains(&at_engine) && !stdout.contains("127.0.0.1"),
        "URLs at the engine's address: {stdout}"
    );

    // A Docker context naming the same engine: run on that stack, then down.
    let config = context_config(scratch.path(), &engine.host());
    let with_context = |args: &[&str]| {
        metrtest()
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("METRTEST_HOST")
            .env("DOCKER_CONFIG", &config)
            .ran()
    };
    let passing = fixtures("passing").display().to_string();
    let ran = with_context(&["run", "--stack", &run, &passing]);

    // DOCKER_HOST=ssh://user@host:port: through an ssh server on the engine's
    // address (cli/tests/support/sshd.py) that runs `docker system dial-stdio`.
    let sshd = Sshd::start(&engine, scratch.path());
    let over_ssh = |args: &[&str]| {
        metrtest()
            .args(args)
            .env("DOCKER_HOST", sshd.url())
            .env("METRTEST_SSH_OPTS", sshd.client_options())
            .env_remove("METRTEST_HOST")
            .ran()
    };
    let ps_ssh = over_ssh(&["ps"]);
    let ran_ssh = over_ssh(&["run", "--stack", &run, &passing]);
    drop(sshd);
    let down = with_context(&["down", "--run", &run]);
    let left = engine.leftovers(&run);

    ran.assert_code_for(0, "run --stack by context");
    ran_ssh.assert_code_for(0, "run --stack over ssh with a port");
    assert!(
        ps_ssh.stdout.contains(&run),
        "ps over ssh lists the run: {}",
        ps_ssh.stdout
    );
    down.assert_code(0);
    assert_eq!(
        left,
        (0, 0, 0),
        "nothing of the run left on the second engine"
    );
    assert_eq!(
        leftovers(&run),
        (0, 0, 0),
        "nothing of the run ever on the machine's own engine"
    );
}
