#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokentray_core::fuzzing::endpoint_request(data));
