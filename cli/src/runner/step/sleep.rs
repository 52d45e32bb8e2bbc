//! `sleep`: wait a fixed time (prefer `retry` on a condition where one exists).

use std::time::Duration;

use crate::runner::observation::Observation;
use crate::runner::step::Seen;

pub(super) async fn act(d: Duration) -> Seen {
    tokio::time::sleep(d).await;
    Seen {
        request: format!("sleep {}", humantime::format_duration(d)),
        observation: Observation::Nothing,
    }
}
