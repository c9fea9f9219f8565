//! What ferry-pack and ferry-unpack show on a terminal, and nothing else: a progress line for
//! long transfers ([`progress`]) and byte sizes for people ([`human`]).
//!
//! It has no dependencies, so that the offline verifier can show progress without linking the
//! registry client.

pub mod progress;

pub use progress::{Counters, Progress};

/// Bytes as a short human figure (`1.5 GiB`).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(4 << 30), "4.0 GiB");
    }
}
