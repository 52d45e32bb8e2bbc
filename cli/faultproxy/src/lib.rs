//! A TCP fault proxy for one link of a metrtest stack: the data plane.
//! Faults are named after Toxiproxy's toxics so its users feel at home.

pub mod faults;
pub mod proxy;
