//! `cargo fuzz run node_port`: see `aemp_fuzz::node_port`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aemp_fuzz::node_port(data));
