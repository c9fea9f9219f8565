//! Fuzzes the index parser and validator: arbitrary bytes must give Ok or Err, never a panic,
//! and an accepted index must rebuild its volume entries without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = ferry_format::Index::from_slice(data) {
        let entries = ferry_format::tiling::entries(&index);
        for (v, e) in entries.iter().enumerate() {
            let _ = ferry_format::tiling::check_tiling(e, index.volumes[v].size);
        }
    }
});
