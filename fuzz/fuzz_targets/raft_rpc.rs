//! libFuzzer entry for `brook_raft::fuzzing::rpc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brook_raft::fuzzing::rpc(data));
