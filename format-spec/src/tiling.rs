//! The entries of each volume as the index describes them, rebuilt from the index alone, and
//! the check that they tile their volume exactly (no gap, no overlap, nothing after the end
//! marker).

use crate::index::Index;
use crate::layout::{header_len, padded, part_entry_path, END_OF_ARCHIVE};

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
        for (pi, p) in b.parts.iter().enumerate() {
            let path = part_entry_path(&b.digest, pi, b.parts.len());
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
