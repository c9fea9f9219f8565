//! Writing an archive (feature `write`).
//!
//! [`ArchiveWriter::create`] prepares the directory, lays the objects out in volumes (the OCI
//! layout marker first, `v2/index.json` last) and creates every volume at its final size as
//! `NAME.partial`. Objects are then filled in place, in parallel and in any order:
//! [`ArchiveWriter::write_small`] for bytes in memory, [`ArchiveWriter::fill`] for a stream that
//! the caller checks (a download). [`ArchiveWriter::finish`] syncs, hashes and renames the
//! volumes and returns their records; [`seal`] signs the index and writes it last, so that a
//! directory with an index is always a finished archive.
//!
//! Crash safety: bytes an interrupted run left in the `.partial` volumes are found again
//! ([`ArchiveWriter::reuse`]) because the layout is a function of the object list; an archive
//! marked incomplete is reopened with its objects kept where they are.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::hash::blake3_hex;
use crate::index::{Blob, File, Index, IndexError, ParityRecord, Part, Volume};
use crate::layout::{self, Content, LayoutError, Placement};
use crate::oci::{self, LayoutRef};
use crate::sign::{self, PrivateKey, SignError};
use crate::volume::{PartsWriter, Region, VolumeSet, PARTIAL_SUFFIX};
use crate::{Digest, INDEX_FILE, SIGNATURE_FILE};

/// The machine-readable list of what an incomplete archive lacks, beside its index.
pub const FAILURES_FILE: &str = "failures.json";

/// Why an archive cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{} already holds an archive ({INDEX_FILE}); pack into an empty directory", .0.display())]
    NotEmpty(PathBuf),
    #[error("cannot {what} {}: {cause}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("internal error: the index written does not validate: {0}")]
    Invalid(IndexError),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |cause| WriteError::Io {
        what,
        path: path.to_path_buf(),
        cause,
    }
}

/// An object to store: a manifest, config or layer, by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub digest: Digest,
    pub size: u64,
}

/// What filling an object produced: its blake3 and that of each part (split blobs only).
/// Held per object until the index is built: 56 bytes, and an allocation only for the parts
/// of a split blob.
#[derive(Debug, Clone)]
struct Stored {
    blake3: blake3::Hash,
    parts: Vec<String>,
}

impl Stored {
    /// An unsplit blob's only part hash (empty, see [`crate::volume::PartHasher`]) is not kept.
    fn new(blake3: blake3::Hash, parts: Vec<String>) -> Stored {
        let parts = if parts.len() > 1 { parts } else { Vec::new() };
        Stored { blake3, parts }
    }
}

/// The blake3 a filler returns, as hex.
fn parse_blake3(hex: &str) -> Result<blake3::Hash, io::Error> {
    blake3::Hash::from_hex(hex)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("blake3 {hex:?}: {e}")))
}

/// What a filler of [`ArchiveWriter::fill_at`] checked and hashed.
#[derive(Debug)]
pub struct Filled {
    /// blake3 of the whole object.
    pub blake3: String,
    /// blake3 of each part, from [`Region::part_hasher`].
    pub parts: Vec<String>,
}

/// What [`ArchiveWriter::finish`] returns: the records of the volumes and of what is in them.
#[derive(Debug)]
pub struct Written {
    pub volumes: Vec<Volume>,
    /// One per object, in object order; an object never filled is marked `missing`.
    pub blobs: Vec<Blob>,
    pub files: Vec<File>,
    /// The parity volumes, when asked for.
    pub parity: Option<ParityRecord>,
}

/// An archive being written.
pub struct ArchiveWriter {
    dir: PathBuf,
    objects: Vec<Object>,
    /// Object `i` is item `i + 1` of the layout (the marker file is first, `index.json` last).
    layout: layout::Layout,
    set: VolumeSet,
    files: Vec<File>,
    stored: Mutex<Vec<Option<Stored>>>,
    completing: Option<Index>,
}

impl ArchiveWriter {
    /// Prepares `dir` (see [`prepare`]), lays out the layout files and `objects` (in the
    /// given order, except that objects an incomplete archive already holds keep their place),
    /// creates the volumes and writes the layout files.
    pub fn create(
        dir: &Path,
        objects: Vec<Object>,
        refs: &[LayoutRef],
        volume_size: u64,
    ) -> Result<ArchiveWriter, WriteError> {
        let completing = prepare(dir)?;
        let objects = match &completing {
            Some(old) => keep_places(objects, old),
            None => objects,
        };
        let planned = lay_out(&objects, refs, volume_size)?;
        let layout = &planned.layout;
        remove_extra_partials(dir, layout.volume_sizes.len())?;
        let set = VolumeSet::create(dir, layout, planned.items(&objects))
            .map_err(io_err("create volumes in", dir))?;
        let mut files = Vec::new();
        for (p, bytes, path) in [
            (layout.item(0), &planned.oci_layout, oci::OCI_LAYOUT_PATH),
            (
                layout.item(layout.len() - 1),
                &planned.oci_index,
                oci::OCI_INDEX_PATH,
            ),
        ] {
            set.write_item(p, bytes)
                .map_err(io_err("write the layout file into", dir))?;
            files.push(File {
                path: path.into(),
                size: bytes.len() as u64,
                blake3: blake3_hex(bytes),
                volume: p[0].volume,
                offset: p[0].offset,
            });
        }
        Ok(ArchiveWriter {
            dir: dir.to_path_buf(),
            stored: Mutex::new(vec![None; objects.len()]),
            objects,
            layout: planned.layout,
            set,
            files,
            completing,
        })
    }

    /// The incomplete archive this writer completes, if the directory held one.
    pub fn completing(&self) -> Option<&Index> {
        self.completing.as_ref()
    }

    /// The objects in layout order.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Where object `i` goes.
    fn placements(&self, i: usize) -> &[Placement] {
        self.layout.item(i + 1)
    }

    /// Whether object `i` is stored.
    pub fn is_stored(&self, i: usize) -> bool {
        self.stored.lock().expect("lock")[i].is_some()
    }

    /// Writes object `i` from bytes in memory (the caller checked them).
    pub fn write_small(&self, i: usize, bytes: &[u8]) -> Result<(), WriteError> {
        let parts = self
            .set
            .write_item(self.placements(i), bytes)
            .map_err(io_err("write into", &self.dir))?;
        self.record(i, blake3::hash(bytes), parts);
        Ok(())
    }

    /// Fills object `i` with what `f` writes into its placements. `f` returns the object's
    /// blake3 once it has checked the bytes (their sha256); only then is it recorded as
    /// stored. `f` may call [`PartsWriter::restart`] to begin again.
    pub fn fill<E: From<io::Error>>(
        &self,
        i: usize,
        f: impl FnOnce(&mut PartsWriter<'_>) -> Result<String, E>,
    ) -> Result<(), E> {
        let mut w = self.set.writer(self.placements(i));
        let blake3 = f(&mut w)?;
        let parts = w.finish()?;
        self.record(i, parse_blake3(&blake3)?, parts);
        Ok(())
    }

    /// Fills object `i` out of order: `f` writes anywhere in its [`Region`] (several
    /// connections at once) and returns, once it has checked the bytes' sha256, the object's
    /// blake3 and its part hashes ([`Region::part_hasher`], fed the bytes in order). Only
    /// then is the object recorded as stored.
    pub fn fill_at<E: From<io::Error>>(
        &self,
        i: usize,
        f: impl FnOnce(Region<'_>) -> Result<Filled, E>,
    ) -> Result<(), E> {
        let placements = self.placements(i);
        let filled = f(self.set.region(placements))?;
        if filled.parts.len() != placements.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} part hash(es) for an object in {} part(s)",
                    filled.parts.len(),
                    placements.len()
                ),
            )
            .into());
        }
        self.record(i, parse_blake3(&filled.blake3)?, filled.parts);
        Ok(())
    }

    fn record(&self, i: usize, blake3: blake3::Hash, parts: Vec<String>) {
        self.stored.lock().expect("lock")[i] = Some(Stored::new(blake3, parts));
    }

    /// Finds objects an interrupted run already wrote at their places (hashing them, in
    /// parallel on the current rayon pool) and records them. Returns how many, and their bytes.
    pub fn reuse(&self) -> (usize, u64) {
        let found: Vec<(usize, Stored)> = (0..self.objects.len())
            .into_par_iter()
            .filter(|i| !self.is_stored(*i))
            .filter_map(|i| {
                let (blake3, parts) = self
                    .set
                    .holds(self.placements(i), &self.objects[i].digest)?;
                Some((i, Stored::new(parse_blake3(&blake3).ok()?, parts)))
            })
            .collect();
        let bytes = found.iter().map(|(i, _)| self.objects[*i].size).sum();
        let count = found.len();
        let mut stored = self.stored.lock().expect("lock");
        for (i, s) in found {
            stored[i] = Some(s);
        }
        (count, bytes)
    }

    /// Syncs, hashes and renames the volumes, and writes the `parity` volumes beside them
    /// (computed in the same pass that hashes the data volumes); returns the records for the
    /// index.
    pub fn finish(self, parity: Parity) -> Result<Written, WriteError> {
        let stored = self.stored.into_inner().expect("lock");
        let count = parity.count(self.set.len());
        let (finished, parity_volumes) = self
            .set
            .finish_with_parity(count)
            .map_err(io_err("finish the volumes in", &self.dir))?;
        let parity = parity_record(&finished, parity_volumes);
        let blobs = self
            .objects
            .iter()
            .enumerate()
            .zip(stored)
            .map(|((i, o), s)| blob_record(o, self.layout.item(i + 1), s))
            .collect();
        Ok(Written {
            volumes: finished
                .into_iter()
                .map(|(name, size, blake3)| Volume { name, size, blake3 })
                .collect(),
            blobs,
            files: self.files,
            parity,
        })
    }
}

/// The index record of parity volumes (none when there are none).
fn parity_record(
    data: &[(String, u64, String)],
    parity: Vec<(String, u64, String)>,
) -> Option<ParityRecord> {
    (!parity.is_empty()).then(|| ParityRecord {
        scheme: crate::parity::SCHEME.into(),
        stripe: crate::parity::stripe_for(data.len()),
        shard_size: data.iter().map(|(_, s, _)| *s).max().unwrap_or(0),
        volumes: parity
            .into_iter()
            .map(|(name, size, blake3)| Volume { name, size, blake3 })
            .collect(),
    })
}

/// The layout of an archive: its layout files and where everything goes.
struct Planned {
    layout: layout::Layout,
    oci_layout: Vec<u8>,
    oci_index: Vec<u8>,
}

impl Planned {
    /// What was laid out, made again as it is needed.
    fn items<'a>(&self, objects: &'a [Object]) -> impl Iterator<Item = Content> + 'a {
        items(objects, &self.oci_layout, &self.oci_index)
    }
}

/// The content of an archive in layout order: the marker file, the objects, `v2/index.json`.
fn items<'a>(
    objects: &'a [Object],
    oci_layout: &[u8],
    oci_index: &[u8],
) -> impl Iterator<Item = Content> + 'a {
    let file = |path: &str, bytes: &[u8]| Content::File {
        path: path.into(),
        size: bytes.len() as u64,
    };
    let marker = file(oci::OCI_LAYOUT_PATH, oci_layout);
    let index = file(oci::OCI_INDEX_PATH, oci_index);
    let blobs = objects.iter().map(|o| Content::Blob {
        digest: o.digest.clone(),
        size: o.size,
    });
    std::iter::once(marker).chain(blobs).chain([index])
}

/// Lays out the marker file first, the objects in order, `v2/index.json` last.
fn lay_out(
    objects: &[Object],
    refs: &[LayoutRef],
    volume_size: u64,
) -> Result<Planned, WriteError> {
    let oci_layout = oci::oci_layout_bytes();
    let oci_index = oci::index_json_bytes(refs);
    let layout = layout::plan(items(objects, &oci_layout, &oci_index), volume_size)?;
    Ok(Planned {
        layout,
        oci_layout,
        oci_index,
    })
}

/// What [`ArchiveWriter::finish`] would return for these objects, without writing anything:
/// the exact volume sizes and placements, with every hash zero (hashes have a fixed length, so
/// an index made from this has the exact size of the real one).
pub fn plan(
    objects: &[Object],
    refs: &[LayoutRef],
    volume_size: u64,
    parity: Parity,
) -> Result<Written, WriteError> {
    let Planned {
        layout,
        oci_layout,
        oci_index,
    } = lay_out(objects, refs, volume_size)?;
    let zero = "0".repeat(64);
    let files = [
        (layout.item(0), &oci_layout, oci::OCI_LAYOUT_PATH),
        (
            layout.item(layout.len() - 1),
            &oci_index,
            oci::OCI_INDEX_PATH,
        ),
    ]
    .into_iter()
    .map(|(p, bytes, path)| File {
        path: path.into(),
        size: bytes.len() as u64,
        blake3: zero.clone(),
        volume: p[0].volume,
        offset: p[0].offset,
    })
    .collect();
    let blobs = objects
        .iter()
        .zip(layout.items().skip(1))
        .map(|(o, placements)| {
            let parts = vec![zero.clone(); placements.len()];
            let stored = Stored::new(blake3::Hash::from_bytes([0; 32]), parts);
            blob_record(o, placements, Some(stored))
        })
        .collect();
    let volumes: Vec<Volume> = layout
        .volume_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| Volume {
            name: layout::volume_name(i),
            size: *size,
            blake3: zero.clone(),
        })
        .collect();
    let data: Vec<(String, u64, String)> = volumes
        .iter()
        .map(|v| (v.name.clone(), v.size, zero.clone()))
        .collect();
    let shard = layout.volume_sizes.iter().copied().max().unwrap_or(0);
    let parity_volumes = (0..parity.count(volumes.len()))
        .map(|r| (crate::parity::parity_name(r), shard, zero.clone()))
        .collect();
    Ok(Written {
        parity: parity_record(&data, parity_volumes),
        volumes,
        blobs,
        files,
    })
}

/// How many parity volumes to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parity {
    #[default]
    None,
    /// This many.
    Volumes(usize),
    /// This percentage of the data volumes, rounded up (at least one).
    Percent(u32),
}

impl Parity {
    /// The number of parity volumes for `data` data volumes.
    pub fn count(self, data: usize) -> usize {
        match self {
            Parity::None => 0,
            Parity::Volumes(k) => k,
            Parity::Percent(p) => crate::parity::count_for_percent(data, p),
        }
    }
}

fn blob_record(o: &Object, placements: &[Placement], stored: Option<Stored>) -> Blob {
    let split = placements.len() > 1;
    let missing = stored.is_none();
    let (blake3, mut part_hashes) = match stored {
        Some(s) => (s.blake3.to_hex().to_string(), s.parts),
        None => (String::new(), Vec::new()),
    };
    part_hashes.resize(placements.len(), String::new());
    Blob {
        digest: o.digest.clone(),
        size: o.size,
        blake3,
        missing,
        parts: placements
            .iter()
            .zip(part_hashes)
            .map(|(p, h)| Part {
                volume: p.volume,
                offset: p.offset,
                size: p.size,
                blake3: (split && !missing).then_some(h),
            })
            .collect(),
        base: None,
    }
}

/// Makes `dir` ready for a new archive. A finished archive is refused. What an interrupted run
/// left behind is kept for reuse: volumes it had finished go back to `.partial`, so their
/// objects need no new download. An archive marked incomplete is reopened the same way and
/// returned, so that its objects keep their places.
pub fn prepare(dir: &Path) -> Result<Option<Index>, WriteError> {
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let index_path = dir.join(INDEX_FILE);
    let mut completing = None;
    if index_path.exists() {
        let old = std::fs::read(&index_path)
            .ok()
            .and_then(|b| Index::from_slice(&b).ok())
            .filter(|i| i.incomplete);
        let Some(old) = old else {
            return Err(WriteError::NotEmpty(dir.to_path_buf()));
        };
        completing = Some(old);
        let _ = std::fs::remove_file(dir.join(FAILURES_FILE));
    }
    for entry in std::fs::read_dir(dir).map_err(io_err("read", dir))? {
        let path = entry.map_err(io_err("read", dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if layout::is_volume_name(name) {
            let partial = dir.join(format!("{name}{PARTIAL_SUFFIX}"));
            std::fs::rename(&path, &partial).map_err(io_err("reuse leftover", &path))?;
        } else if name.starts_with(INDEX_FILE) || is_parity_leftover(name) {
            std::fs::remove_file(&path).map_err(io_err("remove leftover", &path))?;
        }
    }
    Ok(completing)
}

/// A parity volume, finished or not: it is computed again from the finished data volumes.
fn is_parity_leftover(name: &str) -> bool {
    crate::parity::is_parity_name(name.strip_suffix(PARTIAL_SUFFIX).unwrap_or(name))
}

/// Orders `objects` so that those `old` placed keep its order (and so their bytes).
fn keep_places(mut objects: Vec<Object>, old: &Index) -> Vec<Object> {
    let mut placed: Vec<(u32, u64, &Digest)> = old
        .blobs
        .iter()
        .filter_map(|b| b.parts.first().map(|p| (p.volume, p.offset, &b.digest)))
        .collect();
    placed.sort();
    let rank: HashMap<&Digest, usize> = placed
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, d))| (d, i))
        .collect();
    objects.sort_by_key(|o| rank.get(&o.digest).copied().unwrap_or(usize::MAX));
    objects
}

/// Removes `.partial` volumes beyond the `count` the layout has (left by a larger earlier run).
fn remove_extra_partials(dir: &Path, count: usize) -> Result<(), WriteError> {
    for entry in std::fs::read_dir(dir).map_err(io_err("read", dir))? {
        let path = entry.map_err(io_err("read", dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(vol) = name.strip_suffix(PARTIAL_SUFFIX) {
            let keep = (0..count).any(|i| layout::volume_name(i) == vol);
            if layout::is_volume_name(vol) && !keep {
                std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
    }
    Ok(())
}

/// Validates and signs `index`, then writes `failures.json` (when it lists failures), the
/// signature and, last, the index, each atomically. Returns the size of the index as written.
pub fn seal(dir: &Path, index: &Index, key: &PrivateKey) -> Result<u64, WriteError> {
    index.validate().map_err(WriteError::Invalid)?;
    // Streamed to its file and signed as it is read back: a catalog-scale index is never
    // held in memory as bytes.
    let path = dir.join(INDEX_FILE);
    let tmp = path.with_extension("tmp");
    let f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    let mut w = io::BufWriter::with_capacity(1 << 20, f);
    index.write_to(&mut w).map_err(io_err("write", &tmp))?;
    let f = w
        .into_inner()
        .map_err(|e| io_err("write", &tmp)(e.into_error()))?;
    f.sync_all().map_err(io_err("sync", &tmp))?;
    let written = f.metadata().map_err(io_err("read back", &tmp))?.len();
    drop(f);
    let back = std::fs::File::open(&tmp).map_err(io_err("read back", &tmp))?;
    let signature = sign::sign_stream(back, key).map_err(|e| match e {
        SignError::Read(cause) => io_err("read back", &tmp)(cause),
        other => other.into(),
    })?;
    if !index.failures.is_empty() {
        let list = serde_json::to_vec_pretty(&index.failures).expect("failures serialize");
        write_atomic(&dir.join(FAILURES_FILE), &list)?;
    }
    write_atomic(&dir.join(SIGNATURE_FILE), signature.as_bytes())?;
    std::fs::rename(&tmp, &path).map_err(io_err("rename to", &path))?;
    Ok(written)
}

/// Writes a file under a temporary name, syncs it and renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("sync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename to", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9u32;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// A blob larger than a 1 MiB volume, and a small one.
    fn create(dir: &Path, big: &[u8], small: &[u8]) -> ArchiveWriter {
        let objects = vec![
            Object {
                digest: Digest::of(big),
                size: big.len() as u64,
            },
            Object {
                digest: Digest::of(small),
                size: small.len() as u64,
            },
        ];
        ArchiveWriter::create(dir, objects, &[], 1 << 20).unwrap()
    }

    fn fill_out_of_order(w: &ArchiveWriter, i: usize, bytes: &[u8]) -> Result<(), io::Error> {
        w.fill_at(i, |region| {
            // Segments written last to first, hashed in order behind them.
            for (k, seg) in bytes.chunks(100_000).enumerate().rev() {
                region.write_at(seg, k as u64 * 100_000)?;
            }
            let mut parts = region.part_hasher();
            let mut back = vec![0u8; bytes.len()];
            region.read_at(&mut back, 0)?;
            parts.update(&back)?;
            Ok(Filled {
                blake3: blake3_hex(&back),
                parts: parts.finish()?,
            })
        })
    }

    #[test]
    fn filling_out_of_order_writes_what_filling_in_order_writes() {
        let (big, small) = (noise(2_500_017), noise(4_321));
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (wa, wb) = (
            create(a.path(), &big, &small),
            create(b.path(), &big, &small),
        );
        for (i, bytes) in [(0, &big), (1, &small)] {
            wa.fill(i, |w| -> Result<String, io::Error> {
                w.write_all(bytes)?;
                Ok(blake3_hex(bytes))
            })
            .unwrap();
            fill_out_of_order(&wb, i, bytes).unwrap();
        }
        let (ra, rb) = (
            wa.finish(Parity::None).unwrap(),
            wb.finish(Parity::None).unwrap(),
        );
        assert!(ra.blobs[0].parts.len() >= 3, "the big blob spans volumes");
        for (x, y) in ra.blobs.iter().zip(&rb.blobs) {
            assert_eq!(x.blake3, y.blake3);
            let (px, py): (Vec<_>, Vec<_>) = (
                x.parts.iter().map(|p| &p.blake3).collect(),
                y.parts.iter().map(|p| &p.blake3).collect(),
            );
            assert_eq!(px, py);
        }
        assert_eq!(ra.volumes.len(), rb.volumes.len());
        for v in &ra.volumes {
            let (fa, fb) = (a.path().join(&v.name), b.path().join(&v.name));
            assert_eq!(
                std::fs::read(fa).unwrap(),
                std::fs::read(fb).unwrap(),
                "{}",
                v.name
            );
        }
    }

    #[test]
    fn a_region_refuses_bytes_past_its_end_and_wrong_part_counts() {
        let (big, small) = (noise(1_500_000), noise(10));
        let d = tempfile::tempdir().unwrap();
        let w = create(d.path(), &big, &small);
        let r = w.fill_at(1, |region| -> Result<Filled, io::Error> {
            assert!(region.write_at(&[1, 2, 3], 8).is_err(), "past the end");
            assert!(region.write_at(&small, 0).is_ok());
            let mut parts = region.part_hasher();
            assert!(parts.update(&noise(11)).is_err(), "more than the blob");
            Ok(Filled {
                blake3: blake3_hex(&small),
                parts: vec![String::new(), String::new()],
            })
        });
        assert!(r.unwrap_err().to_string().contains("2 part hash(es)"));
        assert!(!w.is_stored(1));
        let short = w.fill_at(0, |region| -> Result<Filled, io::Error> {
            let mut parts = region.part_hasher();
            parts.update(&big[..1000])?;
            Ok(Filled {
                blake3: String::new(),
                parts: parts.finish()?,
            })
        });
        assert!(short
            .unwrap_err()
            .to_string()
            .contains("ended after 1000 of 1500000"));
    }
}
