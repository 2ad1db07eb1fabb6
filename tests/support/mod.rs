//! Test support: log capture, a raw protocol-0 client and a fault-injecting
//! TCP proxy.

pub mod logs;
pub mod proxy;
pub mod raw;
