//! `cargo fuzz run msgpack_frames`: see `aemp_fuzz::msgpack_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aemp_fuzz::msgpack_frames(data));
