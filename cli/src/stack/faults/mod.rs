//! Network faults of a stack, in one place: where the fault proxy goes
//! (`placement`), the client of its control API that the `network` steps use
//! (`proxy_client`), and cutting a service off its network (`partition`).

pub mod partition;
pub mod placement;
pub mod proxy_client;

pub use placement::*;
