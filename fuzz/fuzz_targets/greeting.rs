//! `cargo fuzz run greeting`: see `aemp_fuzz::greeting`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aemp_fuzz::greeting(data));
