//! `cargo fuzz run json_stream`: see `aemp_fuzz::json_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aemp_fuzz::json_stream(data));
