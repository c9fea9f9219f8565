//! Byte sizes on the command line: `4GiB`, `700MiB`, `4G` (binary units), `4.7GB` (decimal), `1048576`.

use anyhow::{bail, Result};

/// Parses a size. `K`, `M`, `G`, `T` and `KiB`.. are powers of 1024; `KB`, `MB`, `GB`, `TB` of 1000.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = match num.parse() {
        Ok(v) => v,
        Err(_) => bail!("{s:?} is not a size; write e.g. 4GiB, 700MiB, 4.7GB or a number of bytes"),
    };
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0_f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            bail!("unknown size unit {other:?} in {s:?}; use KiB, MiB, GiB, TiB, KB, MB, GB or TB")
        }
    };
    Ok((value * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("4.7GB").unwrap(), 4_700_000_000);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("1.5MiB").unwrap(), 3 << 19);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("4XB").is_err());
    }
}
