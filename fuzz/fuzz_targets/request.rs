//! libFuzzer entry for `brook_wire::fuzzing::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brook_wire::fuzzing::request(data));
