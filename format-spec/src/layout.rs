//! How content is laid out in tar volumes.
//!
//! Every entry is a regular file with a canonical header (ustar, mode 0644, uid/gid 0, mtime 0,
//! plus a PAX `size` record when the data is 8 GiB or more). Entries follow each other with no
//! gaps; data is padded with zeros to 512 bytes; each volume ends with two zero blocks. The
//! layout is therefore fully determined by the index: [`entries`] rebuilds it, and verification
//! compares every header byte against [`entry_header`] instead of trusting a tar parser.

use crate::index::Index;
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

fn ustar_header(path: &str, size: u64, kind: tar::EntryType) -> [u8; 512] {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).expect("entry paths are short ASCII");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(kind);
    h.set_cksum();
    *h.as_bytes()
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
            tar::EntryType::XHeader,
        ));
        let mut block = [0u8; 512];
        block[..record.len()].copy_from_slice(record.as_bytes());
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&ustar_header(path, size, tar::EntryType::Regular));
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

/// Where one entry of a content item landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub volume: u32,
    /// Offset of the entry's data.
    pub offset: u64,
    pub size: u64,
    /// The entry path.
    pub path: String,
}

/// The result of laying content out.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Size in bytes of each volume.
    pub volume_sizes: Vec<u64>,
    /// For each content item, in input order, its entries (several for a split blob).
    pub placements: Vec<Vec<Placement>>,
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
/// fills the rest of the current volume).
pub fn plan(items: &[Content], volume_size: u64) -> Result<Layout, LayoutError> {
    if volume_size < MIN_VOLUME_SIZE {
        return Err(LayoutError::VolumeTooSmall(volume_size));
    }
    let cap = volume_size - END_OF_ARCHIVE;
    let mut used: Vec<u64> = vec![0];
    let mut placements = Vec::with_capacity(items.len());
    for item in items {
        let (size, whole_path, splittable) = match item {
            Content::Blob { digest, size } => (*size, blob_entry_path(digest, None), true),
            Content::File { path, size } => (*size, path.clone(), false),
        };
        let whole = header_len(size) + padded(size);
        let cur = *used.last().expect("one volume");
        if cur + whole <= cap {
            placements.push(vec![place(&mut used, whole_path, size)]);
            continue;
        }
        if whole <= cap {
            used.push(0);
            placements.push(vec![place(&mut used, whole_path, size)]);
            continue;
        }
        let Content::Blob { digest, .. } = item else {
            return Err(LayoutError::FileTooLarge {
                path: whole_path,
                size,
                volume_size,
            });
        };
        debug_assert!(splittable);
        let mut parts = Vec::new();
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
            let path = blob_entry_path(digest, Some(parts.len() + 1));
            parts.push(place(&mut used, path, d));
            remaining -= d;
            if remaining > 0 {
                used.push(0);
            }
        }
        placements.push(parts);
    }
    let volume_sizes = used.iter().map(|u| u + END_OF_ARCHIVE).collect();
    Ok(Layout {
        volume_sizes,
        placements,
    })
}

fn floor_block(n: u64) -> u64 {
    n / BLOCK * BLOCK
}

fn place(used: &mut [u64], path: String, size: u64) -> Placement {
    let volume = used.len() - 1;
    let at = &mut used[volume];
    let offset = *at + header_len(size);
    *at = offset + padded(size);
    Placement {
        volume: volume as u32,
        offset,
        size,
        path,
    }
}

/// What an entry of a volume holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Part `part` of `index.blobs[blob]`.
    Blob { blob: usize, part: usize },
    /// `index.files[file]`.
    File { file: usize },
}

/// One entry of a volume as the index describes it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryKind,
    pub path: String,
    pub header_offset: u64,
    pub offset: u64,
    pub size: u64,
}

/// Rebuilds every volume's entries from the index, sorted by offset. The caller checks that
/// they tile the volume exactly ([`check_tiling`]).
pub fn entries(index: &Index) -> Vec<Vec<Entry>> {
    let mut out: Vec<Vec<Entry>> = vec![Vec::new(); index.volumes.len()];
    for (bi, b) in index.blobs.iter().enumerate() {
        let split = b.parts.len() > 1;
        for (pi, p) in b.parts.iter().enumerate() {
            let path = blob_entry_path(&b.digest, split.then_some(pi + 1));
            if let Some(v) = out.get_mut(p.volume as usize) {
                v.push(Entry {
                    kind: EntryKind::Blob { blob: bi, part: pi },
                    path,
                    header_offset: p.offset.saturating_sub(header_len(p.size)),
                    offset: p.offset,
                    size: p.size,
                });
            }
        }
    }
    for (fi, f) in index.files.iter().enumerate() {
        if let Some(v) = out.get_mut(f.volume as usize) {
            v.push(Entry {
                kind: EntryKind::File { file: fi },
                path: f.path.clone(),
                header_offset: f.offset.saturating_sub(header_len(f.size)),
                offset: f.offset,
                size: f.size,
            });
        }
    }
    for v in &mut out {
        v.sort_by_key(|e| e.offset);
    }
    out
}

/// Checks that entries follow each other with no gap or overlap from offset 0 and that the
/// volume ends right after the end-of-archive marker. Returns a description of the first flaw.
pub fn check_tiling(entries: &[Entry], volume_size: u64) -> Result<(), String> {
    let mut at = 0u64;
    for e in entries {
        if e.offset < header_len(e.size) || e.header_offset != at {
            return Err(format!(
                "entry {} starts at offset {}, expected {at}",
                e.path, e.header_offset
            ));
        }
        at = e.offset + padded(e.size);
    }
    if at + END_OF_ARCHIVE != volume_size {
        return Err(format!(
            "entries end at {at}, so the volume should be {} bytes, but the index says {volume_size}",
            at + END_OF_ARCHIVE
        ));
    }
    Ok(())
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
        assert_eq!(l.placements[0].len(), 1);
        assert_eq!(l.placements[1].len(), 1);
        assert_eq!(l.placements[1][0].volume, 0);
        // 2.5 MiB in 1 MiB volumes: first chunk fills volume 0, then two more.
        let parts = &l.placements[2];
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(|p| p.size).sum::<u64>(), 5 * mib / 2);
        assert!(parts[0].path.ends_with(".part000001"));
        for v in &l.volume_sizes {
            assert!(*v <= mib, "volume of {v} bytes exceeds the limit");
        }
        // The last blob does not fit after the tail of the split blob: it opens a new volume.
        assert_eq!(l.placements[3][0].volume as usize, l.volume_sizes.len() - 1);
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
