//! `cargo fuzz run auth_line`: see `aemp_fuzz::auth_line`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aemp_fuzz::auth_line(data));
