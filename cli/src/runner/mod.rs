//! Running scenarios: steps, scenarios, the whole suite, what they report,
//! and which scenarios a run takes.

pub mod event;
pub mod expect;
pub mod needs;
pub mod observation;
pub mod report;
pub mod scenario;
pub mod select;
pub mod shared;
pub mod step;
pub mod suite;
pub mod target;
pub mod task;
pub mod watch;
