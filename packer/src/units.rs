//! Byte sizes on the command line: `4GiB`, `700MiB`, `4G` (binary units), `4.7GB` (decimal),
//! `1048576`, and the media presets (`fat32`, `dvd`, `dvd-dl`, `bd`).

use anyhow::{bail, Result};
use ferry_format::archive::write::Parity;

/// FAT32's largest file: 4 GiB − 1 byte.
pub const FAT32_MAX_FILE: u64 = (4 << 30) - 1;
/// The default volume size: the largest that fits FAT32.
pub const DEFAULT_VOLUME_SIZE: u64 = FAT32_MAX_FILE;

/// Named sizes: what fits each medium.
pub const PRESETS: &[(&str, u64, &str)] = &[
    (
        "fat32",
        FAT32_MAX_FILE,
        "FAT32's largest file (4 GiB - 1 byte)",
    ),
    (
        "dvd",
        4_700_372_992,
        "a single-layer DVD±R (2,295,104 sectors of 2 KiB)",
    ),
    ("dvd-dl", 8_543_666_176, "a dual-layer DVD+R"),
    ("bd", 25_025_314_816, "a single-layer BD-R"),
];

/// Parses `--parity`: a percentage of the data volumes (`10%`, rounded up, at least one
/// volume) or a number of parity volumes (`2`).
pub fn parse_parity(s: &str) -> Result<Parity> {
    let t = s.trim();
    let bad = || anyhow::anyhow!("{s:?} is not a parity amount; write e.g. 10% or 2 (volumes)");
    if let Some(p) = t.strip_suffix('%') {
        let p: u32 = p.trim().parse().map_err(|_| bad())?;
        if p == 0 || p > 100 {
            bail!("--parity {s}: give a percentage from 1% to 100%");
        }
        return Ok(Parity::Percent(p));
    }
    match t.parse::<usize>().map_err(|_| bad())? {
        0 => Ok(Parity::None),
        k if k > 1000 => bail!("--parity {s}: at most 1000 parity volumes"),
        k => Ok(Parity::Volumes(k)),
    }
}

/// Parses a size or a preset name. `K`, `M`, `G`, `T` and `KiB`.. are powers of 1024; `KB`,
/// `MB`, `GB`, `TB` of 1000.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    if let Some((_, size, _)) = PRESETS.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(t)) {
        return Ok(*size);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = match num.parse() {
        Ok(v) => v,
        Err(_) => {
            bail!("{s:?} is not a size; write e.g. fat32, dvd, 700MiB, 4.7GB or a number of bytes")
        }
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

/// A warning for a volume size that looks meant for FAT32 but does not fit it (4 GiB exactly:
/// FAT32's largest file is one byte less).
pub fn fat32_warning(volume_size: u64) -> Option<String> {
    (volume_size > FAT32_MAX_FILE && volume_size <= 4 << 30).then(|| {
        format!(
            "volumes of {volume_size} bytes do not fit FAT32, whose largest file is {FAT32_MAX_FILE} bytes; for a FAT32 stick use --volume-size fat32 (the default)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_is_a_percentage_or_a_count() {
        assert_eq!(parse_parity("10%").unwrap(), Parity::Percent(10));
        assert_eq!(parse_parity(" 2 ").unwrap(), Parity::Volumes(2));
        assert_eq!(parse_parity("0").unwrap(), Parity::None);
        for bad in ["0%", "101%", "x", "-1", "5000"] {
            assert!(parse_parity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("4.7GB").unwrap(), 4_700_000_000);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("1.5MiB").unwrap(), 3 << 19);
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_size("fat32").unwrap(), (1 << 32) - 1);
        assert_eq!(parse_size("DVD").unwrap(), 4_700_372_992);
        assert!(fat32_warning(4 << 30).is_some());
        assert!(fat32_warning(DEFAULT_VOLUME_SIZE).is_none());
        assert!(
            fat32_warning(8 << 30).is_none(),
            "exFAT-sized volumes are meant"
        );
        assert!(parse_size("4XB").is_err());
    }

    /// The layout is computable, so the default is checked without writing 4 GiB: with a blob
    /// larger than a volume and many small ones, no volume reaches 2^32 bytes.
    #[test]
    fn default_volumes_fit_fat32() {
        use ferry_format::layout::{plan, Content};
        let d = |n: u32| ferry_format::Digest::of(&n.to_le_bytes());
        let mut items = vec![Content::File {
            path: "v2/oci-layout".into(),
            size: 30,
        }];
        items.push(Content::Blob {
            digest: d(0),
            size: 10 << 30,
        });
        items.extend((1..2000).map(|n| Content::Blob {
            digest: d(n),
            size: 3 << 20,
        }));
        let layout = plan(&items, DEFAULT_VOLUME_SIZE).unwrap();
        assert!(layout.volume_sizes.len() >= 4);
        let largest = *layout.volume_sizes.iter().max().unwrap();
        assert!(
            largest < 1 << 32,
            "a volume of {largest} bytes does not fit FAT32"
        );
        assert!(largest <= FAT32_MAX_FILE);
        assert!(
            largest > FAT32_MAX_FILE - (1 << 20),
            "volumes are filled: {largest}"
        );
    }
}
