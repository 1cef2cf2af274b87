#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatvault::fuzz_api::approval_files(data));
