//! Checking an archive's volumes against its index, entry by entry, in parallel.
//!
//! Every byte of a volume is accounted for: each header is compared with the canonical one,
//! each entry's data is hashed, padding and the end-of-archive marker must be zeros, and the
//! file must have exactly the indexed size. Because the index (which holds every hash) is
//! signed, this proves each volume is exactly what was written, without hashing it a second
//! time as a whole. Entries are read by offset (`pread`), so all cores share the work whatever
//! the number of volumes, and a large entry (a part of a multi-GiB layer) is hashed on all
//! cores itself.
//!
//! [`Depth::Blake3`] hashes data once with blake3 (fast; sha256 is rechecked by push while it
//! streams). [`Depth::Full`] also computes sha256 of every blob, whole split blobs included.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use sha2::Digest as _;

use crate::index::Index;
use crate::layout;
use crate::tiling::{self, Entry, EntryKind};
use crate::volume::{PartsReader, Problem, Source};

/// How much to hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// blake3 of every blob and part (the index's integrity hash).
    Blake3,
    /// blake3 and sha256 of every blob (sha256 being the registry's content address).
    Full,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub problems: Vec<Problem>,
    /// Indexes into `index.blobs` of blobs damaged, unreadable, or missing from the archive.
    pub bad_blobs: Vec<usize>,
    /// Bytes read.
    pub bytes: u64,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.problems.extend(other.problems);
        self.bad_blobs.extend(other.bad_blobs);
        self.bytes += other.bytes;
    }

    fn problem(&mut self, subject: impl Into<String>, message: String) {
        self.problems.push(Problem {
            subject: subject.into(),
            message,
        });
    }
}

/// Checks every volume of the archive in `dir`, with up to `jobs` threads. `progress`, when
/// given, counts the bytes checked (for a progress display) and `done` the entries.
pub fn check_archive(
    index: &Index,
    dir: &Path,
    jobs: usize,
    depth: Depth,
    progress: Option<(&AtomicU64, &AtomicU64)>,
) -> Outcome {
    let entries = tiling::entries(index);
    let files: Vec<Option<Source>> = index
        .volumes
        .iter()
        .map(|v| File::open(dir.join(&v.name)).ok().map(Source::File))
        .collect();
    let mut out = Outcome::default();
    let mut usable = vec![true; index.volumes.len()];
    for vi in 0..index.volumes.len() {
        let frame = check_frame(
            index,
            &entries[vi],
            vi,
            files[vi].as_ref().and_then(Source::file),
            &dir.join(&index.volumes[vi].name),
        );
        if !frame.1 {
            usable[vi] = false;
            out.bad_blobs.extend(entries[vi].iter().filter_map(blob_of));
        }
        out.merge(frame.0);
    }
    let mut tasks: Vec<(usize, &Entry)> = entries
        .iter()
        .enumerate()
        .filter(|(vi, _)| usable[*vi])
        .flat_map(|(vi, es)| es.iter().map(move |e| (vi, e)))
        .collect();
    tasks.sort_by_key(|(_, e)| std::cmp::Reverse(e.size));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .expect("thread pool");
    let results: Vec<Outcome> = pool.install(|| {
        tasks
            .par_iter()
            .map(|(vi, e)| {
                let f = files[*vi]
                    .as_ref()
                    .and_then(Source::file)
                    .expect("usable volumes are open");
                let r = check_entry(index, f, *vi, e, depth);
                if let Some((bytes, done)) = progress {
                    bytes.fetch_add(r.bytes, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                r
            })
            .collect()
    });
    for r in results {
        out.merge(r);
    }
    if depth == Depth::Full {
        let bad: std::collections::HashSet<usize> = out.bad_blobs.iter().copied().collect();
        let split: Vec<usize> = (0..index.blobs.len())
            .filter(|i| index.blobs[*i].parts.len() > 1 && !bad.contains(i))
            .collect();
        let whole: Vec<Outcome> = pool.install(|| {
            split
                .par_iter()
                .map(|&bi| check_split_whole(index, &files, bi))
                .collect()
        });
        for r in whole {
            out.merge(r);
        }
    }
    out.bad_blobs.sort_unstable();
    out.bad_blobs.dedup();
    out
}

/// Checks one volume alone, sequentially.
pub fn check_volume(
    index: &Index,
    entries: &[Entry],
    vi: usize,
    path: &Path,
    depth: Depth,
) -> Outcome {
    let file = File::open(path).ok();
    let (mut out, usable) = check_frame(index, entries, vi, file.as_ref(), path);
    if !usable {
        out.bad_blobs.extend(entries.iter().filter_map(blob_of));
    } else if let Some(f) = &file {
        for e in entries {
            out.merge(check_entry(index, f, vi, e, depth));
        }
    }
    out.bad_blobs.sort_unstable();
    out.bad_blobs.dedup();
    out
}

fn blob_of(e: &Entry) -> Option<usize> {
    match e.kind {
        EntryKind::Blob { blob, .. } => Some(blob),
        EntryKind::File { .. } => None,
    }
}

/// The volume as a whole: present, the right size, tiled by the index, ending in zeros.
/// Returns whether its entries can be read at all.
fn check_frame(
    index: &Index,
    entries: &[Entry],
    vi: usize,
    file: Option<&File>,
    path: &Path,
) -> (Outcome, bool) {
    let vol = &index.volumes[vi];
    let mut out = Outcome::default();
    if let Err(flaw) = tiling::check_tiling(entries, vol.size) {
        out.problem(&vol.name, format!("index layout is invalid: {flaw}"));
        return (out, false);
    }
    let Some(f) = file else {
        out.problem(
            &vol.name,
            format!(
                "volume is missing (expected {} bytes at {}); copy it from the media set",
                vol.size,
                path.display()
            ),
        );
        return (out, false);
    };
    let actual = f.metadata().map(|m| m.len()).unwrap_or(0);
    if actual != vol.size {
        out.problem(
            &vol.name,
            format!(
                "volume is {actual} bytes, expected {} ({}); the copy is incomplete or altered",
                vol.size,
                if actual < vol.size {
                    "truncated"
                } else {
                    "extra bytes"
                }
            ),
        );
    }
    if actual >= vol.size {
        let mut end = vec![0u8; layout::END_OF_ARCHIVE as usize];
        let at = vol.size - layout::END_OF_ARCHIVE;
        if f.read_exact_at(&mut end, at).is_err() || end.iter().any(|b| *b != 0) {
            out.problem(
                &vol.name,
                "end-of-archive marker is missing or altered".to_string(),
            );
        }
        out.bytes += layout::END_OF_ARCHIVE;
    }
    (out, true)
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; 1 << 20]);
}

/// Entries from this size on are hashed on all cores, each read shared between them: one part
/// of a multi-GiB layer would otherwise keep one core busy long after the others ran out of
/// work.
const LARGE_ENTRY: u64 = 64 << 20;

/// One entry: canonical header, data hash, zero padding.
fn check_entry(index: &Index, f: &File, vi: usize, e: &Entry, depth: Depth) -> Outcome {
    let vol = &index.volumes[vi].name;
    let mut out = Outcome::default();
    if !check_header(f, vol, e, &mut out) {
        mark_bad(e, &mut out);
        return out;
    }
    if let EntryKind::Blob { blob, .. } = e.kind {
        if index.blobs[blob].missing {
            // Space reserved for a blob pack could not fetch.
            out.bad_blobs.push(blob);
            return out;
        }
    }
    let single =
        matches!(e.kind, EntryKind::Blob { blob, .. } if index.blobs[blob].parts.len() == 1);
    let with_sha = depth == Depth::Full && single;
    let read = read_data(f, e, with_sha, e.size >= LARGE_ENTRY);
    out.bytes += read.bytes;
    let Some((blake3, sha256)) = read.hashes else {
        out.problem(
            &e.path,
            format!(
                "volume {vol} ends inside this entry ({} of {} bytes present)",
                read.bytes, e.size
            ),
        );
        mark_bad(e, &mut out);
        return out;
    };
    compare(index, vol, e, &blake3, sha256, &mut out);
    check_padding(f, vol, e, &mut out);
    out
}

fn mark_bad(e: &Entry, out: &mut Outcome) {
    if let Some(b) = blob_of(e) {
        out.bad_blobs.push(b);
    }
}

/// Compares the header in front of the entry with the canonical one. Returns false when the
/// volume ends before it (nothing more can be read); a differing header is a problem, and the
/// data is still checked.
fn check_header(f: &File, vol: &str, e: &Entry, out: &mut Outcome) -> bool {
    let expected = layout::entry_header(&e.path, e.size);
    let mut header = vec![0u8; expected.len()];
    if f.read_exact_at(&mut header, e.header_offset).is_err() {
        out.problem(
            &e.path,
            format!("volume {vol} ends before this entry's header"),
        );
        return false;
    }
    out.bytes += header.len() as u64;
    if header != expected {
        out.problem(
            vol,
            format!(
                "tar header at offset {} is not the canonical header of {} (altered or foreign entry)",
                e.header_offset, e.path
            ),
        );
        mark_bad(e, out);
    }
    true
}

/// What reading an entry's data gave: the bytes read, and (when all were there) their blake3
/// and, if asked, their sha256.
struct DataRead {
    bytes: u64,
    hashes: Option<(String, Option<crate::Digest>)>,
}

/// Reads and hashes an entry's data; each read of a `large` one is hashed on all cores.
fn read_data(f: &File, e: &Entry, with_sha: bool, large: bool) -> DataRead {
    let mut b3 = blake3::Hasher::new();
    let mut sha = with_sha.then(sha2::Sha256::new);
    let mut at = 0u64;
    let complete = BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        while at < e.size {
            let n = buf.len().min((e.size - at) as usize);
            match f.read_at(&mut buf[..n], e.offset + at) {
                Ok(0) | Err(_) => return false,
                Ok(k) => {
                    if large {
                        b3.update_rayon(&buf[..k]);
                    } else {
                        b3.update(&buf[..k]);
                    }
                    if let Some(s) = sha.as_mut() {
                        s.update(&buf[..k]);
                    }
                    at += k as u64;
                }
            }
        }
        true
    });
    let hashes = complete.then(|| {
        let sha256 = sha.map(|s| {
            let d: [u8; 32] = s.finalize().into();
            crate::Digest::from_sha256_bytes(&d)
        });
        (b3.finalize().to_hex().to_string(), sha256)
    });
    DataRead { bytes: at, hashes }
}

/// Compares an entry's hashes with what the index says: a whole blob's digest and blake3, a
/// part's blake3, a layout file's blake3.
fn compare(
    index: &Index,
    vol: &str,
    e: &Entry,
    found: &str,
    sha256: Option<crate::Digest>,
    out: &mut Outcome,
) {
    match e.kind {
        EntryKind::Blob { blob, part } => {
            let b = &index.blobs[blob];
            let problem = if b.parts.len() > 1 {
                let expected = b.parts[part].blake3.as_deref().unwrap_or("");
                (found != expected).then(|| {
                    format!(
                        "part {} of {} (in {vol} at offset {}) is corrupt: blake3 {found} expected {expected}",
                        part + 1,
                        b.parts.len(),
                        e.offset
                    )
                })
            } else if let Some(d) = sha256.filter(|d| *d != b.digest) {
                Some(format!(
                    "blob content does not match its digest (found {d}) in {vol} at offset {}",
                    e.offset
                ))
            } else {
                (found != b.blake3).then(|| {
                    format!(
                        "blob content does not match its digest (blake3 {found}, the index says {}) in {vol} at offset {}",
                        b.blake3, e.offset
                    )
                })
            };
            if let Some(message) = problem {
                out.problem(b.digest.to_string(), message);
                out.bad_blobs.push(blob);
            }
        }
        EntryKind::File { file } => {
            if found != index.files[file].blake3 {
                out.problem(
                    &e.path,
                    format!("file does not match the index (blake3 {found})"),
                );
            }
        }
    }
}

/// The padding after the data must be zeros.
fn check_padding(f: &File, vol: &str, e: &Entry, out: &mut Outcome) {
    let pad = (layout::padded(e.size) - e.size) as usize;
    if pad == 0 {
        return;
    }
    let mut zeros = vec![0u8; pad];
    if f.read_exact_at(&mut zeros, e.offset + e.size).is_err() || zeros.iter().any(|b| *b != 0) {
        out.problem(
            vol,
            format!("padding after {} is not zero or missing", e.path),
        );
        mark_bad(e, out);
    }
    out.bytes += pad as u64;
}

/// A split blob read whole through its parts: sha256 and blake3 of the joined bytes.
fn check_split_whole(index: &Index, files: &[Option<Source>], bi: usize) -> Outcome {
    let b = &index.blobs[bi];
    let mut out = Outcome::default();
    let mut h = crate::hash::DualHasher::new();
    match std::io::copy(&mut PartsReader::new(files, &b.parts), &mut h) {
        Err(e) => out.problem(b.digest.to_string(), format!("cannot read its parts: {e}")),
        Ok(n) => {
            out.bytes += n;
            let got = h.finish();
            if got.sha256 != b.digest {
                out.problem(
                    b.digest.to_string(),
                    format!("joined parts have digest {}", got.sha256),
                );
            } else if got.blake3 != b.blake3 {
                out.problem(
                    b.digest.to_string(),
                    format!("joined parts have blake3 {}", got.blake3),
                );
            }
        }
    }
    if !out.problems.is_empty() {
        out.bad_blobs.push(bi);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Both ways of hashing an entry's reads (on one core, and a large entry's on all cores)
    /// give the blake3 and sha256 of exactly its bytes over several reads, and stop short where
    /// the volume ends inside it.
    #[test]
    fn an_entry_hashes_the_same_read_either_way() {
        let data: Vec<u8> = (0..(2 << 20) + 1234u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 512]).unwrap();
        f.write_all(&data).unwrap();
        let entry = |size: u64| Entry {
            kind: EntryKind::File { file: 0 },
            path: "x".into(),
            header_offset: 0,
            offset: 512,
            size,
        };
        let whole = entry(data.len() as u64);
        let want_sha = crate::Digest::of(&data);
        for large in [false, true] {
            let r = read_data(&f, &whole, true, large);
            assert_eq!(r.bytes, data.len() as u64);
            let (b3, sha) = r.hashes.expect("complete");
            assert_eq!(
                b3,
                blake3::hash(&data).to_hex().to_string(),
                "large: {large}"
            );
            assert_eq!(sha, Some(want_sha.clone()), "large: {large}");
            let short = read_data(&f, &entry(data.len() as u64 + 10), false, large);
            assert!(short.hashes.is_none(), "large: {large}");
            assert_eq!(short.bytes, data.len() as u64, "large: {large}");
        }
    }
}
