//! libFuzzer entry for `brook_wire::fuzzing::record_batches`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brook_wire::fuzzing::record_batches(data));
