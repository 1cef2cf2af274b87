#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatvault::fuzz_api::bagit_tags(data));
