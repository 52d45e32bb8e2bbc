//! The line protocol between metrtest and its reaper, over TCP.
//!
//! On connect the reaper greets with `metrtest-reaper RUN`. Then, one command
//! a line, each answered with one line:
//! - `hold`: this connection owns the run; its closing starts the reap.
//! - `ttl SECONDS`: the run ends that many seconds from now whatever its
//!   owners do; `ttl 0`: it never ends by itself (only `metrtest down`).
//! - `note TEXT`: what the run is kept for, shown by `metrtest ps`.
//! - `status`: `owners N policy owner|never|until UNIX_SECONDS[ note TEXT]`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Shared;
use crate::watch::{Policy, Watch};

/// Accepts connections on a thread of its own, each served on another.
pub fn serve(listener: TcpListener, run: String, shared: Shared) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (run, shared) = (run.clone(), shared.clone());
            std::thread::spawn(move || connection(stream, &run, &shared));
        }
    });
}

fn connection(stream: TcpStream, run: &str, shared: &Shared) {
    let mut holding = false;
    let _ = serve_lines(&stream, run, shared, &mut holding);
    if holding {
        let (lock, changed) = &**shared;
        lock.lock().expect("watch").release(Instant::now());
        changed.notify_all();
    }
}

fn serve_lines(
    stream: &TcpStream,
    run: &str,
    shared: &Shared,
    holding: &mut bool,
) -> std::io::Result<()> {
    let mut out = stream;
    writeln!(out, "metrtest-reaper {run}")?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        let (lock, changed) = &**shared;
        let mut watch = lock.lock().expect("watch");
        let reply = apply(&mut watch, line.trim(), holding);
        drop(watch);
        changed.notify_all();
        writeln!(out, "{reply}")?;
    }
    Ok(())
}

/// Applies one command to the watch; returns the reply line.
pub fn apply(watch: &mut Watch, command: &str, holding: &mut bool) -> String {
    if let Some(text) = command.strip_prefix("note ") {
        watch.note = Some(text.trim().to_owned());
        return "ok".into();
    }
    let mut words = command.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("hold"), None, None) => {
            if !*holding {
                *holding = true;
                watch.hold(Instant::now());
            }
            "ok".into()
        }
        (Some("ttl"), Some(seconds), None) => match seconds.parse::<u64>() {
            Ok(0) => {
                watch.policy = Policy::Never;
                "ok".into()
            }
            Ok(s) => {
                watch.policy = Policy::Until(SystemTime::now() + Duration::from_secs(s));
                "ok".into()
            }
            Err(_) => format!("error: ttl wants whole seconds, got {seconds:?}"),
        },
        (Some("status"), None, None) => {
            let policy = match watch.policy {
                Policy::Owner => "owner".to_owned(),
                Policy::Never => "never".to_owned(),
                Policy::Until(t) => format!(
                    "until {}",
                    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
                ),
            };
            let note = watch
                .note
                .as_ref()
                .map(|n| format!(" note {n}"))
                .unwrap_or_default();
            format!("owners {} policy {policy}{note}", watch.owners())
        }
        _ => format!("error: unknown command {command:?} (hold, ttl SECONDS, note TEXT, status)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_change_the_policy_and_status_reports_it() {
        let mut watch = Watch::new(Instant::now());
        let mut holding = false;
        assert_eq!(apply(&mut watch, "hold", &mut holding), "ok");
        assert_eq!(apply(&mut watch, "hold", &mut holding), "ok");
        assert_eq!(
            apply(&mut watch, "status", &mut holding),
            "owners 1 policy owner",
            "a connection holds once"
        );
        assert_eq!(apply(&mut watch, "ttl 0", &mut holding), "ok");
        assert_eq!(watch.policy, Policy::Never);
        assert_eq!(apply(&mut watch, "ttl 60", &mut holding), "ok");
        assert!(
            apply(&mut watch, "status", &mut holding).starts_with("owners 1 policy until "),
            "{watch:?}"
        );
        assert_eq!(apply(&mut watch, "note kept for: a b", &mut holding), "ok");
        assert!(apply(&mut watch, "status", &mut holding).ends_with(" note kept for: a b"));
    }

    #[test]
    fn bad_commands_are_answered_with_an_error_naming_them() {
        let mut watch = Watch::new(Instant::now());
        let mut holding = false;
        assert!(apply(&mut watch, "ttl soon", &mut holding).contains("\"soon\""));
        assert!(apply(&mut watch, "reap everything", &mut holding).starts_with("error: unknown"));
        assert_eq!(watch.policy, Policy::Owner);
    }
}
