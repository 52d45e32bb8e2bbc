//! Ctrl-C, SIGTERM and SIGHUP (a closed terminal, some CI cancels): the first
//! asks for an orderly stop and teardown, the second forces the teardown (no
//! grace period for containers).

use std::io::Write;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Tokens cancelled by the first and the second signal.
#[derive(Clone, Default)]
pub struct Interrupt {
    pub stop: CancellationToken,
    pub force: CancellationToken,
}

impl Interrupt {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP.
    pub fn install() -> Interrupt {
        let interrupt = Interrupt::default();
        let tokens = interrupt.clone();
        let kinds = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ];
        let Ok(mut streams) = kinds.into_iter().map(signal).collect::<Result<Vec<_>, _>>() else {
            return interrupt;
        };
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                let any = streams.iter_mut().map(|s| Box::pin(s.recv()));
                futures::future::select_all(any).await;
                count += 1;
                // Not eprintln!: after SIGHUP the terminal may be gone, and a
                // failed write must not panic this task.
                let mut err = std::io::stderr();
                if count == 1 {
                    let _ = writeln!(
                        err,
                        "\ninterrupted: tearing down (press Ctrl-C again to force)"
                    );
                    tokens.stop.cancel();
                } else {
                    let _ = writeln!(err, "forcing teardown");
                    tokens.force.cancel();
                }
            }
        });
        interrupt
    }
}
