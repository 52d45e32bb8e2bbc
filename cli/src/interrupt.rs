//! Ctrl-C and SIGTERM: the first asks for an orderly stop and teardown, the
//! second forces the teardown (no grace period for containers).

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Tokens cancelled by the first and the second signal.
#[derive(Clone, Default)]
pub struct Interrupt {
    pub stop: CancellationToken,
    pub force: CancellationToken,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM.
    pub fn install() -> Interrupt {
        let interrupt = Interrupt::default();
        let tokens = interrupt.clone();
        tokio::spawn(async move {
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let mut count = 0;
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                count += 1;
                if count == 1 {
                    eprintln!("\ninterrupted: tearing down (press Ctrl-C again to force)");
                    tokens.stop.cancel();
                } else {
                    eprintln!("forcing teardown");
                    tokens.force.cancel();
                }
            }
        });
        interrupt
    }
}
