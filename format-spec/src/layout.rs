//! How content is laid out in tar volumes.
//!
//! Every entry is a regular file with a canonical header (ustar, mode 0644, uid/gid 0, mtime 0,
//! plus a PAX `size` record when the data is 8 GiB or more). Entries follow each other with no
//! gaps; data is padded with zeros to 512 bytes; each volume ends with two zero blocks. The
//! layout is therefore fully determined by the index: [`crate::tiling`] rebuilds it, and
//! verification compares every header byte against [`entry_header`] instead of trusting a tar
//! parser.

use std::borrow::Borrow;

use crate::Digest;

/// Tar block size.
pub const BLOCK: u64 = 512;
/// The end-of-archive marker: two zero blocks.
pub const END_OF_ARCHIVE: u64 = 2 * BLOCK;
/// The smallest volume size accepted.
pub const MIN_VOLUME_SIZE: u64 = 1024 * 1024;
/// Data sizes from here on need a PAX `size` record (the ustar field holds 11 octal digits).
const PAX_SIZE_LIMIT: u64 = 8 * 1024 * 1024 * 1024;
/// A part smaller than this is not started at the end of a volume; the next volume takes it.
const MIN_PART: u64 = 64 * 1024;

/// File name of volume `i` (0-based): `ferry-vol-0001.tar`, ...
pub fn volume_name(i: usize) -> String {
    format!("ferry-vol-{:04}.tar", i + 1)
}

/// Whether `name` is a volume file name this format produces.
pub fn is_volume_name(name: &str) -> bool {
    name.strip_prefix("ferry-vol-")
        .and_then(|r| r.strip_suffix(".tar"))
        .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Entry path of a stored blob, or of part `n` (1-based) of a split blob.
pub fn blob_entry_path(digest: &Digest, part: Option<usize>) -> String {
    match part {
        None => digest.blob_path(),
        Some(n) => format!("{}.part{n:06}", digest.blob_path()),
    }
}

/// Entry path of part `part` (0-based) of a blob stored in `parts` entries: numbered only
/// when it is split.
pub fn part_entry_path(digest: &Digest, part: usize, parts: usize) -> String {
    blob_entry_path(digest, (parts > 1).then_some(part + 1))
}

/// Data rounded up to whole blocks.
pub fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

/// Length of the canonical header(s) in front of an entry's data.
pub fn header_len(size: u64) -> u64 {
    if size >= PAX_SIZE_LIMIT {
        3 * BLOCK
    } else {
        BLOCK
    }
}

/// Tar entry type of a regular file.
const REGULAR: u8 = b'0';
/// Tar entry type of a PAX extended header.
const PAX_HEADER: u8 = b'x';

/// A ustar header as the format fixes it: `path` (at most 100 bytes, in the name field), mode
/// 0644, uid/gid 0, mtime 0, empty user and group names, no link. Written by hand (the layout
/// is the POSIX ustar one) so that readers need no tar library; the unit tests check it is the
/// header the `tar` crate makes of the same fields.
fn ustar_header(path: &str, size: u64, kind: u8) -> [u8; 512] {
    assert!(path.len() <= 100, "entry paths fit the ustar name field");
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size >= PAX_SIZE_LIMIT {
        // GNU base-256: the high bit set, the value big-endian in the last 8 bytes.
        h[128..136].copy_from_slice(&size.to_be_bytes());
        h[124] |= 0x80;
    } else {
        octal(&mut h[124..136], size);
    }
    octal(&mut h[136..148], 0);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum counts its own field as eight spaces.
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum::<u64>() + 8 * u64::from(b' ');
    octal(&mut h[148..156], sum);
    h
}

/// Writes `value` in octal, zero-padded, ending in a NUL, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:o}");
    let (last, body) = field.split_last_mut().expect("a field");
    *last = 0;
    let width = body.len();
    let pad = width.saturating_sub(digits.len());
    body[..pad].fill(b'0');
    body[pad..].copy_from_slice(&digits.as_bytes()[digits.len() - (width - pad)..]);
}

/// The canonical header bytes of a regular-file entry (512 bytes, or 1536 with a PAX record).
pub fn entry_header(path: &str, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(size) as usize);
    if size >= PAX_SIZE_LIMIT {
        let record = pax_record("size", &size.to_string());
        let name = path.rsplit('/').next().unwrap_or(path);
        out.extend_from_slice(&ustar_header(
            &format!("v2/PaxHeaders/{name}"),
            record.len() as u64,
            PAX_HEADER,
        ));
        let mut block = [0u8; 512];
        block[..record.len()].copy_from_slice(record.as_bytes());
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&ustar_header(path, size, REGULAR));
    out
}

/// A PAX extended header record: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

/// Something to lay out: a blob (may be split) or a named layout file (never split).
#[derive(Debug, Clone)]
pub enum Content {
    Blob { digest: Digest, size: u64 },
    File { path: String, size: u64 },
}

impl Content {
    /// The entry path of part `part` (0-based) of the item laid out in `parts` entries: a
    /// blob's own path, numbered `.partNNNNNN` when it is split; a file's path.
    pub fn entry_path(&self, part: usize, parts: usize) -> String {
        match self {
            Content::Blob { digest, .. } => part_entry_path(digest, part, parts),
            Content::File { path, .. } => path.clone(),
        }
    }
}

/// Where one entry of a content item landed (its path follows from the item:
/// [`Content::entry_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub volume: u32,
    /// Offset of the entry's data.
    pub offset: u64,
    pub size: u64,
}

/// The result of laying content out: 24 bytes per entry and 8 per item, so that a catalog's
/// 200,000 blobs lay out in a few MiB.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Size in bytes of each volume.
    pub volume_sizes: Vec<u64>,
    /// Every item's entries end to end, in input order (several for a split blob).
    placements: Vec<Placement>,
    /// Item `i`'s entries are `placements[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
}

impl Layout {
    /// The number of items laid out.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries of item `i`.
    pub fn item(&self, i: usize) -> &[Placement] {
        &self.placements[self.starts[i]..self.starts[i + 1]]
    }

    /// The entries of each item, in input order.
    pub fn items(&self) -> impl ExactSizeIterator<Item = &[Placement]> + '_ {
        (0..self.len()).map(|i| self.item(i))
    }
}

/// Why content cannot be laid out.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("volume size {0} is below the minimum of {MIN_VOLUME_SIZE} bytes (1 MiB)")]
    VolumeTooSmall(u64),
    #[error("{path} ({size} bytes) does not fit in one volume of {volume_size} bytes; use a larger --volume-size")]
    FileTooLarge {
        path: String,
        size: u64,
        volume_size: u64,
    },
}

/// Lays content out in order, starting a new volume when an item does not fit in what is left
/// of the current one, and splitting only blobs larger than a whole volume (their first chunk
/// fills the rest of the current volume). `items` may be made as they are laid out (a
/// catalog's 200,000 blobs need not be listed twice).
pub fn plan<C: Borrow<Content>>(
    items: impl IntoIterator<Item = C>,
    volume_size: u64,
) -> Result<Layout, LayoutError> {
    if volume_size < MIN_VOLUME_SIZE {
        return Err(LayoutError::VolumeTooSmall(volume_size));
    }
    let cap = volume_size - END_OF_ARCHIVE;
    let mut used: Vec<u64> = vec![0];
    let items = items.into_iter();
    let mut placements = Vec::with_capacity(items.size_hint().0);
    let mut starts = Vec::with_capacity(items.size_hint().0 + 1);
    starts.push(0);
    for item in items {
        let item = item.borrow();
        let size = match item {
            Content::Blob { size, .. } | Content::File { size, .. } => *size,
        };
        let whole = header_len(size) + padded(size);
        if whole <= cap {
            if used.last().expect("one volume") + whole > cap {
                used.push(0);
            }
            placements.push(place(&mut used, size));
            starts.push(placements.len());
            continue;
        }
        if let Content::File { path, .. } = item {
            return Err(LayoutError::FileTooLarge {
                path: path.clone(),
                size,
                volume_size,
            });
        }
        let mut remaining = size;
        while remaining > 0 {
            let avail = cap - *used.last().expect("one volume");
            let mut d = floor_block(avail.saturating_sub(3 * BLOCK));
            if d < PAX_SIZE_LIMIT {
                d = floor_block(avail.saturating_sub(BLOCK)).min(PAX_SIZE_LIMIT - BLOCK);
            }
            let d = d.min(remaining);
            if d < MIN_PART.min(remaining) {
                used.push(0);
                continue;
            }
            placements.push(place(&mut used, d));
            remaining -= d;
            if remaining > 0 {
                used.push(0);
            }
        }
        starts.push(placements.len());
    }
    let volume_sizes = used.iter().map(|u| u + END_OF_ARCHIVE).collect();
    Ok(Layout {
        volume_sizes,
        placements,
        starts,
    })
}

fn floor_block(n: u64) -> u64 {
    n / BLOCK * BLOCK
}

fn place(used: &mut [u64], size: u64) -> Placement {
    let volume = used.len() - 1;
    let at = &mut used[volume];
    let offset = *at + header_len(size);
    *at = offset + padded(size);
    Placement {
        volume: volume as u32,
        offset,
        size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn pax_record_counts_itself() {
        let r = pax_record("size", "8589934592");
        assert_eq!(r, "19 size=8589934592\n");
        assert_eq!(r.len(), 19);
        let r = pax_record("size", "1");
        assert_eq!(
            r.len(),
            r.split(' ').next().unwrap().parse::<usize>().unwrap()
        );
    }

    #[test]
    fn small_blobs_share_a_volume_and_big_ones_split() {
        let mib = 1024 * 1024;
        let items = vec![
            Content::File {
                path: "v2/oci-layout".into(),
                size: 30,
            },
            Content::Blob {
                digest: d(1),
                size: 100_000,
            },
            Content::Blob {
                digest: d(2),
                size: 5 * mib / 2,
            },
            Content::Blob {
                digest: d(3),
                size: 700_000,
            },
        ];
        let l = plan(&items, mib).unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(l.item(0).len(), 1);
        assert_eq!(l.item(1).len(), 1);
        assert_eq!(l.item(1)[0].volume, 0);
        // 2.5 MiB in 1 MiB volumes: first chunk fills volume 0, then two more.
        let parts = l.item(2);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(|p| p.size).sum::<u64>(), 5 * mib / 2);
        assert!(items[2].entry_path(0, 3).ends_with(".part000001"));
        assert_eq!(items[1].entry_path(0, 1), d(1).blob_path());
        for v in &l.volume_sizes {
            assert!(*v <= mib, "volume of {v} bytes exceeds the limit");
        }
        // The last blob does not fit after the tail of the split blob: it opens a new volume.
        assert_eq!(l.item(3)[0].volume as usize, l.volume_sizes.len() - 1);
    }

    #[test]
    fn files_never_split() {
        let items = vec![Content::File {
            path: "v2/index.json".into(),
            size: 3 * 1024 * 1024,
        }];
        assert!(matches!(
            plan(&items, 1024 * 1024),
            Err(LayoutError::FileTooLarge { .. })
        ));
    }

    /// The header the tar crate makes of the same fields.
    fn tar_crate_header(path: &str, size: u64, kind: tar::EntryType) -> [u8; 512] {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(kind);
        h.set_cksum();
        *h.as_bytes()
    }

    #[test]
    fn hand_written_headers_are_the_tar_crates() {
        let long = format!("v2/blobs/sha256/{}.part000001", "a".repeat(64));
        for (path, size) in [
            ("v2/oci-layout", 30u64),
            ("v2/index.json", 0),
            (long.as_str(), 4 << 30),
            (long.as_str(), PAX_SIZE_LIMIT - 1),
            (long.as_str(), PAX_SIZE_LIMIT),
            (long.as_str(), 5 * PAX_SIZE_LIMIT + 12345),
        ] {
            assert_eq!(
                ustar_header(path, size, REGULAR),
                tar_crate_header(path, size, tar::EntryType::Regular),
                "{path} {size}"
            );
        }
        assert_eq!(
            ustar_header("v2/PaxHeaders/x", 19, PAX_HEADER),
            tar_crate_header("v2/PaxHeaders/x", 19, tar::EntryType::XHeader)
        );
    }

    #[test]
    fn headers_are_canonical_tar() {
        let h = entry_header("v2/blobs/sha256/abc", 5);
        assert_eq!(h.len(), 512);
        let parsed = tar::Header::from_byte_slice(&h);
        assert_eq!(parsed.size().unwrap(), 5);
        assert_eq!(
            parsed.path().unwrap().to_str().unwrap(),
            "v2/blobs/sha256/abc"
        );
        let big = entry_header("v2/blobs/sha256/abc.part000001", PAX_SIZE_LIMIT + 7);
        assert_eq!(big.len(), 1536);
        assert!(std::str::from_utf8(&big[512..540])
            .unwrap()
            .contains("size=8589934599"));
    }
}
