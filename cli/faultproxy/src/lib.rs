//! A TCP fault proxy for the links of a metrtest stack: the data plane
//! (`proxy`, `faults`) and a control API shaped like Toxiproxy's (`api`, `toxic`).

pub mod api;
pub mod faults;
pub mod proxy;
pub mod settings;
pub mod toxic;
