//! A finished `metrtest` process: its exit code and both streams, with the
//! assertions every black-box test makes on them.

use std::fmt::Display;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How a `metrtest` process exited and what it printed.
#[derive(Debug)]
pub struct Ran {
    /// The exit code; -1 when a signal ended the process.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(out: Output) -> Self {
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Ran {
    /// Panics unless the process exited with `expected`, showing both streams.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        self.assert_code_for(expected, "metrtest")
    }

    /// As [`Ran::assert_code`], with `what` ran (a file, the arguments…) named first.
    #[track_caller]
    pub fn assert_code_for(&self, expected: i32, what: impl Display) -> &Self {
        assert!(
            self.code == expected,
            "{what}: exit code {}, expected {expected}\n{}",
            self.code,
            self.streams()
        );
        self
    }

    /// Panics if the process exited 0, showing both streams.
    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert!(
            self.code != 0,
            "metrtest: exit code 0, expected a failure\n{}",
            self.streams()
        );
        self
    }

    /// The JSON document on stdout; panics with both streams when there is none.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no JSON on stdout ({e})\n{}", self.streams()))
    }

    /// Both streams, long ones cut, for a failure message.
    pub fn streams(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

/// The first 8000 bytes of `text` (at a character boundary), and how much was left out.
fn cut(text: &str) -> String {
    const KEEP: usize = 8000;
    if text.len() <= KEEP {
        return text.to_owned();
    }
    let end = (0..=KEEP)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// Runs a command to its end and keeps what it printed.
pub trait RunExt {
    /// Runs to the end, however long it takes.
    fn ran(&mut self) -> Ran;
    /// Runs to the end, killing the process and panicking past `limit`.
    fn ran_within(&mut self, limit: Duration) -> Ran;
}

impl RunExt for Command {
    fn ran(&mut self) -> Ran {
        self.output().expect("run metrtest").into()
    }

    fn ran_within(&mut self, limit: Duration) -> Ran {
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run metrtest");
        // Drained as it comes, so a chatty process never blocks on a full pipe.
        let stdout = drain(child.stdout.take().unwrap());
        let stderr = drain(child.stderr.take().unwrap());
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for metrtest") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{self:?} did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout.join().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&stderr.join().unwrap()).into_owned(),
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}
