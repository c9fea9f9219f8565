//! Writing volumes (feature `write`): [`VolumeSet::create`] makes every volume of a [`Layout`]
//! as `NAME.partial`, writes the canonical headers, and hands out [`PartsWriter`]s that put a
//! blob's bytes at their offsets, so that many downloads can fill the volumes in parallel with
//! no staging copy. [`VolumeSet::finish`] hashes each volume, syncs it, and renames it to its
//! final name: a volume under its final name is always complete.

use std::borrow::Borrow;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::PARTIAL_SUFFIX;
use crate::layout::{self, Content, Layout, Placement};
use crate::Digest;

/// Allocates the blocks of a volume of `size` bytes before it is filled (`fallocate`, which
/// keeps the bytes already there). A full medium is then found before anything is downloaded,
/// and filling allocated blocks is far cheaper than filling a sparse file: on ext4, 4 GiB
/// written in 1 MiB pieces took 0.65 s of system time instead of 2.5-7.8 s (delayed
/// allocation reserves space page by page). Where the filesystem cannot (vfat and exFAT
/// media, tmpfs before Linux 3.5), the volume stays sparse.
fn reserve(f: &File, size: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(size).map_err(io::Error::other)?;
        // SAFETY: the descriptor is open for the duration of the call.
        if unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) } != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) | Some(libc::EINVAL) => Ok(()),
                Some(libc::ENOSPC) => Err(io::Error::new(
                    e.kind(),
                    format!("{size} bytes do not fit in the free space ({e}); free some room or pack onto a larger medium"),
                )),
                _ => Err(e),
            };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, size);
    Ok(())
}

/// A blob written in order starts the write-back of each block of this many bytes once it
/// has written the block in full.
const WRITE_BACK_EVERY: u64 = 64 << 20;

/// A finished blob starts the write-back of its last, partial block when it is this long.
const WRITE_BACK_TAIL_FROM: u64 = 256 << 10;

/// Asks the kernel to start writing a range of `f` to the medium, without waiting
/// (`sync_file_range`). The final sync of a multi-GiB volume then finds most of it written
/// instead of waiting for gigabytes of dirty pages: in the huge benchmark the volumes phase
/// fell from 0.9-1.7 s to 0.7 s. Only a hint: a failure changes nothing (the sync comes).
fn start_write_back(f: &File, off: u64, len: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the duration of the call.
        unsafe {
            libc::sync_file_range(
                f.as_raw_fd(),
                off as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, off, len);
}

/// The volumes of an archive being written.
pub struct VolumeSet {
    dir: PathBuf,
    names: Vec<String>,
    files: Vec<File>,
    /// One per volume, held around each write to it (see [`Region::write_at`]).
    write_locks: Vec<Mutex<()>>,
}

impl VolumeSet {
    /// Opens (creating where missing) every volume as `NAME.partial` at its final size and
    /// writes the headers of all entries of `items`, the content `layout` was made of. Bytes
    /// already in a `.partial` file from an interrupted run are kept, so that
    /// [`VolumeSet::holds`] can find blobs that need no new download.
    pub fn create<C: Borrow<Content>>(
        dir: &Path,
        layout: &Layout,
        items: impl IntoIterator<Item = C>,
    ) -> io::Result<VolumeSet> {
        let mut names = Vec::new();
        let mut files = Vec::new();
        for (i, size) in layout.volume_sizes.iter().enumerate() {
            let name = layout::volume_name(i);
            let path = dir.join(format!("{name}{PARTIAL_SUFFIX}"));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| ctx(e, &path, "create"))?;
            f.set_len(*size).map_err(|e| ctx(e, &path, "size"))?;
            reserve(&f, *size).map_err(|e| ctx(e, &path, "reserve room for"))?;
            names.push(name);
            files.push(f);
        }
        let set = VolumeSet {
            dir: dir.to_path_buf(),
            write_locks: files.iter().map(|_| Mutex::new(())).collect(),
            names,
            files,
        };
        let mut count = 0;
        for (item, entries) in items.into_iter().zip(layout.items()) {
            count += 1;
            for (k, p) in entries.iter().enumerate() {
                let path = item.borrow().entry_path(k, entries.len());
                let h = layout::entry_header(&path, p.size);
                let at = p.offset - h.len() as u64;
                set.files[p.volume as usize]
                    .write_all_at(&h, at)
                    .map_err(|e| ctx(e, &set.partial_path(p.volume as usize), "write"))?;
            }
        }
        if count != layout.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{count} item(s) given for a layout of {}", layout.len()),
            ));
        }
        Ok(set)
    }

    fn partial_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}{PARTIAL_SUFFIX}", self.names[i]))
    }

    /// The number of volumes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A writer that puts a blob's bytes, in order, at its placements.
    pub fn writer<'a>(&'a self, placements: &'a [Placement]) -> PartsWriter<'a> {
        let region = self.region(placements);
        PartsWriter {
            region,
            written: 0,
            parts: region.part_hasher(),
        }
    }

    /// A blob's placements as one range, for reads and writes at any offset.
    pub fn region<'a>(&'a self, placements: &'a [Placement]) -> Region<'a> {
        Region {
            files: &self.files,
            write_locks: &self.write_locks,
            placements,
        }
    }

    /// Whether the volumes already hold the blob `digest` at `placements` (left by an
    /// interrupted run): if its bytes hash right, returns its blake3 and part hashes.
    pub fn holds(
        &self,
        placements: &[Placement],
        digest: &Digest,
    ) -> Option<(String, Vec<String>)> {
        let first = placements.first()?;
        // A region never written is zeros: skip hashing it.
        let mut probe = vec![0u8; first.size.min(4096) as usize];
        self.files[first.volume as usize]
            .read_exact_at(&mut probe, first.offset)
            .ok()?;
        if !probe.is_empty() && probe.iter().all(|b| *b == 0) {
            return None;
        }
        let mut whole = crate::hash::DualHasher::new();
        let mut parts = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        for p in placements {
            let mut part = blake3::Hasher::new();
            let mut at = 0u64;
            while at < p.size {
                let n = buf.len().min((p.size - at) as usize);
                self.files[p.volume as usize]
                    .read_exact_at(&mut buf[..n], p.offset + at)
                    .ok()?;
                whole.update(&buf[..n]);
                part.update(&buf[..n]);
                at += n as u64;
            }
            parts.push(part.finalize().to_hex().to_string());
        }
        let h = whole.finish();
        (h.sha256 == *digest).then_some((h.blake3, parts))
    }

    /// Writes a whole small item (a layout file or a manifest) at its placements.
    pub fn write_item(&self, placements: &[Placement], bytes: &[u8]) -> io::Result<Vec<String>> {
        let mut w = self.writer(placements);
        w.write_all(bytes)?;
        w.finish()
    }

    /// Syncs, hashes and renames every volume to its final name. Returns (name, size, blake3).
    /// Volumes are hashed in parallel (they are independent files).
    pub fn finish(self) -> io::Result<Vec<(String, u64, String)>> {
        Ok(self.finish_with_parity(0)?.0)
    }

    /// Like [`VolumeSet::finish`], and writes `parity` parity volumes beside the data volumes
    /// (computed in the same pass that hashes the data volumes: no second read). Returns the
    /// data volumes and the parity volumes, each as (name, size, blake3).
    pub fn finish_with_parity(self, parity: usize) -> io::Result<(Finished, Finished)> {
        use rayon::prelude::*;
        let (sizes, data_b3, parity_files) = if parity == 0 {
            // The page cache holds what will reach the media: hash it while the write-back
            // runs, instead of after.
            let (synced, hashed) = rayon::join(
                || self.sync_volumes(),
                || {
                    (0..self.files.len())
                        .into_par_iter()
                        .map(|i| {
                            crate::hash::blake3_of_own_file(&self.files[i])
                                .map_err(|e| ctx(e, &self.partial_path(i), "read back"))
                        })
                        .collect::<io::Result<Vec<(u64, String)>>>()
                },
            );
            synced?;
            let hashed = hashed?;
            let (sizes, b3) = hashed.into_iter().unzip();
            (sizes, b3, Vec::new())
        } else {
            self.write_parity(parity)?
        };
        let mut data = Vec::new();
        for (i, (size, b3)) in sizes.iter().zip(data_b3).enumerate() {
            let path = self.partial_path(i);
            let final_path = self.dir.join(&self.names[i]);
            fs::rename(&path, &final_path).map_err(|e| ctx(e, &path, "rename"))?;
            data.push((self.names[i].clone(), *size, b3));
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok((data, parity_files))
    }

    fn sync_volumes(&self) -> io::Result<()> {
        for (i, f) in self.files.iter().enumerate() {
            f.sync_all()
                .map_err(|e| ctx(e, &self.partial_path(i), "sync"))?;
        }
        Ok(())
    }

    /// Syncs the data volumes, computes and syncs the parity volumes, renames those. Returns the
    /// data volumes' sizes and blake3, and the parity volumes.
    fn write_parity(&self, count: usize) -> io::Result<(Vec<u64>, Vec<String>, Finished)> {
        self.sync_volumes()?;
        let mut sizes = Vec::new();
        for f in &self.files {
            sizes.push(f.metadata()?.len());
        }
        let shard = sizes.iter().copied().max().unwrap_or(0);
        let mut paths = Vec::new();
        let mut files = Vec::new();
        for r in 0..count {
            let path = self
                .dir
                .join(format!("{}{PARTIAL_SUFFIX}", crate::parity::parity_name(r)));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| ctx(e, &path, "create"))?;
            f.set_len(shard).map_err(|e| ctx(e, &path, "size"))?;
            paths.push(path);
            files.push(f);
        }
        let data: Vec<&File> = self.files.iter().collect();
        let parity: Vec<&File> = files.iter().collect();
        let (data_b3, parity_b3) = crate::parity::encode(&data, &sizes, &parity)
            .map_err(|e| ctx(e, &self.dir, "compute parity in"))?;
        let mut out = Vec::new();
        for (r, (f, b3)) in files.iter().zip(parity_b3).enumerate() {
            f.sync_all().map_err(|e| ctx(e, &paths[r], "sync"))?;
            let name = crate::parity::parity_name(r);
            fs::rename(&paths[r], self.dir.join(&name)).map_err(|e| ctx(e, &paths[r], "rename"))?;
            out.push((name, shard, b3));
        }
        Ok((sizes, data_b3, out))
    }
}

/// Finished volumes: (name, size, blake3).
pub type Finished = Vec<(String, u64, String)>;

fn ctx(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// A blob's placements seen as one byte range `0..len`: positional reads and writes that cross
/// from one part to the next, so that several downloads can fill one blob out of order while a
/// reader hashes it in order behind them (from the page cache, just written).
#[derive(Clone, Copy)]
pub struct Region<'a> {
    files: &'a [File],
    write_locks: &'a [Mutex<()>],
    placements: &'a [Placement],
}

impl<'a> Region<'a> {
    /// The blob's size.
    pub fn len(&self) -> u64 {
        self.placements.iter().map(|p| p.size).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f(volume, file offset, range of buf)` for each piece of `len` bytes from `at`.
    fn each_piece(
        &self,
        mut at: u64,
        len: usize,
        mut f: impl FnMut(usize, u64, std::ops::Range<usize>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut done = 0usize;
        for p in self.placements {
            if done == len {
                break;
            }
            if at >= p.size {
                at -= p.size;
                continue;
            }
            let n = (len - done).min((p.size - at) as usize);
            f(p.volume as usize, p.offset + at, done..done + n)?;
            done += n;
            at = 0;
        }
        if done < len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{len} bytes from the given offset run past the blob's {} bytes",
                    self.len()
                ),
            ));
        }
        Ok(())
    }

    /// Writes `buf` at blob offset `at`. Writes to one volume take turns on a lock of ours:
    /// filesystems serialize buffered writes to a file on its inode lock anyway (ext4, XFS,
    /// vfat), and a writer waiting there spins on the CPU while the holder copies; waiting on
    /// our lock it sleeps, leaving the core to the hashing (measured on 2 cores: the spin
    /// took about a tenth of ferry-pack's CPU when several downloads filled one volume).
    pub fn write_at(&self, buf: &[u8], at: u64) -> io::Result<()> {
        self.each_piece(at, buf.len(), |v, off, r| {
            let _turn = self.write_locks[v]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.files[v].write_all_at(&buf[r], off)
        })
    }

    /// Starts writing the `len` bytes from blob offset `at` to the medium, without waiting
    /// (a hint for bytes that are final: see [`start_write_back`]).
    pub fn write_back(&self, at: u64, len: usize) {
        let _ = self.each_piece(at, len, |v, off, r| {
            start_write_back(&self.files[v], off, r.len());
            Ok(())
        });
    }

    /// Reads `buf.len()` bytes from blob offset `at`.
    pub fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let len = buf.len();
        self.each_piece(at, len, |v, off, r| {
            self.files[v].read_exact_at(&mut buf[r], off)
        })
    }

    /// Maps the `len` bytes from blob offset `at`, read only: one map per volume they lie in
    /// ([`crate::hash::map_own`]: the volumes are files this process created, holds open and
    /// never shrinks). Only for bytes that are final (no write to them while they are mapped).
    pub fn map(&self, at: u64, len: usize) -> io::Result<Vec<memmap2::Mmap>> {
        let mut maps = Vec::new();
        self.each_piece(at, len, |v, off, r| {
            maps.push(crate::hash::map_own(&self.files[v], off, r.len())?);
            Ok(())
        })?;
        Ok(maps)
    }

    /// A hasher of the blob's parts, to be fed its bytes in order.
    pub fn part_hasher(&self) -> PartHasher {
        PartHasher {
            sizes: self.placements.iter().map(|p| p.size).collect(),
            part: 0,
            in_part: 0,
            hasher: blake3::Hasher::new(),
            hashes: Vec::with_capacity(self.placements.len()),
        }
    }
}

/// The blake3 of each part of a blob, fed the blob's bytes in order. An unsplit blob's only
/// part hash is recorded as an empty string (its hash is the blob's own, which the caller
/// computes anyway), so nothing is hashed for it.
pub struct PartHasher {
    sizes: Vec<u64>,
    part: usize,
    in_part: u64,
    hasher: blake3::Hasher,
    hashes: Vec<String>,
}

impl PartHasher {
    /// Hashes the next bytes of the blob; refuses bytes past its end.
    pub fn update(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.close_full_parts();
            let Some(size) = self.sizes.get(self.part) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "blob is longer than its recorded size",
                ));
            };
            let n = bytes.len().min((size - self.in_part) as usize);
            if self.sizes.len() > 1 {
                self.hasher.update(&bytes[..n]);
            }
            self.in_part += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn close_full_parts(&mut self) {
        while self.part < self.sizes.len() && self.in_part == self.sizes[self.part] {
            let h = std::mem::replace(&mut self.hasher, blake3::Hasher::new());
            self.hashes.push(if self.sizes.len() > 1 {
                h.finalize().to_hex().to_string()
            } else {
                String::new()
            });
            self.part += 1;
            self.in_part = 0;
        }
    }

    /// Checks that every part was fed in full; returns the part hashes.
    pub fn finish(mut self) -> io::Result<Vec<String>> {
        self.close_full_parts();
        if self.part != self.sizes.len() {
            let expected: u64 = self.sizes.iter().sum();
            let got: u64 = self.sizes[..self.part].iter().sum::<u64>() + self.in_part;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("blob ended after {got} of {expected} bytes"),
            ));
        }
        Ok(self.hashes)
    }
}

/// Writes a blob's bytes, in order, at its placements. Refuses more bytes than they hold.
pub struct PartsWriter<'a> {
    region: Region<'a>,
    written: u64,
    parts: PartHasher,
}

impl<'a> PartsWriter<'a> {
    /// Starts the blob over from its first byte (the source sent it again from the start).
    pub fn restart(&mut self) {
        self.written = 0;
        self.parts = self.region.part_hasher();
    }

    /// The blob's placements as one range, for filling it out of order
    /// ([`crate::archive::write::ArchiveWriter::fill_at`]).
    pub fn region(&self) -> Region<'a> {
        self.region
    }

    /// Checks that every placement was filled and returns the blake3 of each part (an empty
    /// string for the only part of an unsplit blob, whose hash is the blob's own). Starts the
    /// write-back of the bytes after the last whole block, unless they are only a few pages
    /// (those the final sync writes cheaply): a set of many mid-sized blobs then reaches its
    /// sync with little left to write.
    pub fn finish(self) -> io::Result<Vec<String>> {
        let hashes = self.parts.finish()?;
        let tail = self.written % WRITE_BACK_EVERY;
        if tail >= WRITE_BACK_TAIL_FROM {
            self.region.write_back(self.written - tail, tail as usize);
        }
        Ok(hashes)
    }
}

impl Write for PartsWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min((self.region.len() - self.written) as usize);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "blob is longer than its recorded size",
            ));
        }
        self.region.write_at(&buf[..n], self.written)?;
        self.parts.update(&buf[..n])?;
        self.written += n as u64;
        // Each 64 MiB block this write completed is final: start its write-back.
        let block_start = |w: u64| w - w % WRITE_BACK_EVERY;
        let (from, to) = (
            block_start(self.written - n as u64),
            block_start(self.written),
        );
        if to > from {
            self.region.write_back(from, (to - from) as usize);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Volumes are created with their blocks allocated (not sparse), and bytes an interrupted
    /// run left in a `.partial` volume survive being opened again.
    #[test]
    fn volumes_are_reserved_and_keep_what_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let items = [Content::Blob {
            digest: Digest::of(b"x"),
            size: 3 << 20,
        }];
        let layout = layout::plan(&items, 8 << 20).unwrap();
        let set = VolumeSet::create(dir.path(), &layout, &items).unwrap();
        set.region(layout.item(0))
            .write_at(b"kept", 1 << 20)
            .unwrap();
        drop(set);
        let path = dir
            .path()
            .join(format!("{}{PARTIAL_SUFFIX}", layout::volume_name(0)));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), layout.volume_sizes[0]);
        assert!(
            meta.blocks() * 512 >= meta.len(),
            "{} of {} bytes allocated: the volume is sparse",
            meta.blocks() * 512,
            meta.len()
        );
        let set = VolumeSet::create(dir.path(), &layout, &items).unwrap();
        let mut back = [0u8; 4];
        set.region(layout.item(0))
            .read_at(&mut back, 1 << 20)
            .unwrap();
        assert_eq!(&back, b"kept");
    }

    /// A blob split over two volumes maps back, from any offset, as the bytes written there:
    /// one map per volume the range touches, at offsets that are not page-aligned.
    #[test]
    fn a_split_blob_maps_back_across_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i * 31 + i / 977) as u8)
            .collect();
        let items = [Content::Blob {
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
        }];
        let layout = layout::plan(&items, 2 << 20).unwrap();
        let placements = layout.item(0);
        assert_eq!(placements.len(), 2, "the blob is split");
        let set = VolumeSet::create(dir.path(), &layout, &items).unwrap();
        set.write_item(placements, &bytes).unwrap();
        let region = set.region(placements);
        for (at, len) in [(0usize, bytes.len()), (1_234_567, 1_500_000), (77, 4096)] {
            let maps = region.map(at as u64, len).unwrap();
            let back: Vec<u8> = maps.iter().flat_map(|m| m.iter().copied()).collect();
            assert_eq!(back, bytes[at..at + len], "{len} bytes from {at}");
        }
        assert_eq!(region.map(0, bytes.len()).unwrap().len(), 2);
        assert!(region.map(1, bytes.len()).is_err(), "a range past the end");
    }
}
