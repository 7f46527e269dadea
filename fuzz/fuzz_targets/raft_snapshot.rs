//! libFuzzer entry for `brook_raft::fuzzing::snapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brook_raft::fuzzing::snapshot(data));
