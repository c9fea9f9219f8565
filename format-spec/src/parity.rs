//! Parity volumes: a Reed-Solomon code across the volumes of an archive, so that any `K` lost
//! or damaged volumes (data or parity) can be rebuilt from the others (SPEC §3.5).
//!
//! Every data volume is a shard, padded with zeros to the largest volume's size (the shard
//! size); parity volume `r` is recovery shard `r`. The code is Leopard-RS over GF(2^16), as the
//! `reed-solomon-simd` crate (3.x) implements it: O(n log n), SIMD-fast, 1 to 32,768 data
//! shards with 1 to 32,768 parity shards.
//! Its codewords are the symbols at one position of every shard, laid out in 64-byte blocks,
//! so any 64-byte-aligned window of the shards codes on its own: packing encodes [`STRIPE`]
//! bytes of every volume at a time (large sequential reads), and a rebuild decodes only the
//! [`WINDOW`]s a read touches (memory: one window per volume).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Bytes of each shard coded together at most (a multiple of 512, so every stripe length is
/// even, as the code requires).
pub const STRIPE: u64 = 1 << 20;

/// The stripe for `data` volumes: [`STRIPE`], smaller for many volumes, so that encoding holds
/// about 32 MiB of stripes however large the archive (never under [`WINDOW`]).
pub fn stripe_for(data: usize) -> u64 {
    let per = (32 << 20) / data.max(1) as u64 / WINDOW * WINDOW;
    per.clamp(WINDOW, STRIPE)
}
/// Bytes of each shard decoded together when rebuilding (a multiple of 64 that divides
/// [`STRIPE`]).
pub const WINDOW: u64 = 64 << 10;
/// Windows kept decoded (a few readers at once each find theirs).
const CACHED_WINDOWS: usize = 32;
/// The restored data shards of one window, by data volume index.
type Restored = Vec<(usize, Vec<u8>)>;
/// The scheme name the index records.
pub const SCHEME: &str = "reed-solomon-simd-gf16";

/// File name of parity volume `i` (0-based): `ferry-parity-0001.bin`, ...
pub fn parity_name(i: usize) -> String {
    format!("ferry-parity-{:04}.bin", i + 1)
}

/// Whether `name` is a parity volume name this format produces.
pub fn is_parity_name(name: &str) -> bool {
    name.strip_prefix("ferry-parity-")
        .and_then(|r| r.strip_suffix(".bin"))
        .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Parity volumes for `percent`% of `data` volumes (at least one when asked at all).
pub fn count_for_percent(data: usize, percent: u32) -> usize {
    if percent == 0 {
        return 0;
    }
    (data * percent as usize).div_ceil(100).max(1)
}

fn coding(e: reed_solomon_simd::Error) -> io::Error {
    io::Error::other(format!("Reed-Solomon: {e}"))
}

/// Reads `len` bytes of a shard at `offset`, zeros past its end (the padding).
fn read_shard(file: &File, size: u64, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    buf.fill(0);
    if offset < size {
        let n = buf.len().min((size - offset) as usize);
        file.read_exact_at(&mut buf[..n], offset)?;
    }
    Ok(())
}

/// Computes the parity files of `data` volumes (open for reading, at their final `sizes`) into
/// `parity` (open for writing), stripe by stripe ([`stripe_for`]), and hashes every volume in
/// the same pass. Returns the blake3 of each data volume and of each parity volume. The data
/// volumes are read once; memory is about two stripes per volume (32 MiB each at most).
pub fn encode(
    data: &[&File],
    sizes: &[u64],
    parity: &[&File],
) -> io::Result<(Vec<String>, Vec<String>)> {
    let shard = sizes.iter().copied().max().unwrap_or(0);
    let stripe = stripe_for(data.len());
    let mut data_hash: Vec<blake3::Hasher> = data.iter().map(|_| blake3::Hasher::new()).collect();
    let mut parity_hash: Vec<blake3::Hasher> =
        parity.iter().map(|_| blake3::Hasher::new()).collect();
    let mut bufs: Vec<Vec<u8>> = data.iter().map(|_| vec![0u8; stripe as usize]).collect();
    let mut offset = 0u64;
    while offset < shard {
        let len = stripe.min(shard - offset) as usize;
        let mut enc = ReedSolomonEncoder::new(data.len(), parity.len(), len).map_err(coding)?;
        for (i, (f, buf)) in data.iter().zip(bufs.iter_mut()).enumerate() {
            read_shard(f, sizes[i], offset, &mut buf[..len])?;
            if offset < sizes[i] {
                let own = len.min((sizes[i] - offset) as usize);
                data_hash[i].update(&buf[..own]);
            }
            enc.add_original_shard(&buf[..len]).map_err(coding)?;
        }
        let out = enc.encode().map_err(coding)?;
        for (r, chunk) in out.recovery_iter().enumerate() {
            parity[r].write_all_at(chunk, offset)?;
            parity_hash[r].update(chunk);
        }
        offset += len as u64;
    }
    let hex = |h: blake3::Hasher| h.finalize().to_hex().to_string();
    Ok((
        data_hash.into_iter().map(hex).collect(),
        parity_hash.into_iter().map(hex).collect(),
    ))
}

/// Rebuilds volumes from the others: the data shards present, and the parity shards.
pub struct Rebuilder {
    /// Data volumes (`None`: lost or not to be trusted), with their sizes.
    data: Vec<(Option<File>, u64)>,
    /// Parity volumes (`None`: lost).
    parity: Vec<Option<File>>,
    shard: u64,
    /// The windows decoded last, newest first: (window start, restored data shards).
    cache: Mutex<VecDeque<(u64, Arc<Restored>)>>,
}

impl Rebuilder {
    pub fn new(data: Vec<(Option<File>, u64)>, parity: Vec<Option<File>>) -> Rebuilder {
        let shard = data.iter().map(|(_, s)| *s).max().unwrap_or(0);
        Rebuilder {
            data,
            parity,
            shard,
            cache: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether enough shards are present to rebuild the missing ones.
    pub fn recoverable(&self) -> bool {
        let present = self.data.iter().filter(|(f, _)| f.is_some()).count()
            + self.parity.iter().filter(|f| f.is_some()).count();
        present >= self.data.len()
    }

    /// The size of data volume `v`.
    pub fn size(&self, v: usize) -> u64 {
        self.data[v].1
    }

    /// Reads bytes of data volume `v` at `offset`, rebuilt from the other shards.
    pub fn read_at(&self, v: usize, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let size = self.data[v].1;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let start = offset / WINDOW * WINDOW;
        let within = (offset - start) as usize;
        let restored = self.window(start)?;
        let shard = restored
            .iter()
            .find(|(i, _)| *i == v)
            .map(|(_, b)| b)
            .ok_or_else(|| io::Error::other(format!("volume #{} was not rebuilt", v + 1)))?;
        let n = buf
            .len()
            .min(shard.len() - within)
            .min((size - offset) as usize);
        buf[..n].copy_from_slice(&shard[within..within + n]);
        Ok(n)
    }

    /// Writes rebuilt data volumes `(volume, file)` whole, window by window (each window
    /// decoded once for all of them); returns each one's blake3.
    pub fn write_volumes(&self, out: &[(usize, &File)]) -> io::Result<Vec<String>> {
        let mut hashes: Vec<blake3::Hasher> = out.iter().map(|_| blake3::Hasher::new()).collect();
        let mut buf = vec![0u8; WINDOW as usize];
        let mut start = 0u64;
        while start < self.shard {
            for ((v, file), h) in out.iter().zip(hashes.iter_mut()) {
                let size = self.data[*v].1;
                if start >= size {
                    continue;
                }
                let len = WINDOW.min(size - start) as usize;
                let mut at = 0;
                while at < len {
                    let n = self.read_at(*v, &mut buf[at..len], start + at as u64)?;
                    if n == 0 {
                        return Err(io::Error::other("rebuilt volume ended early"));
                    }
                    at += n;
                }
                file.write_all_at(&buf[..len], start)?;
                h.update(&buf[..len]);
            }
            start += WINDOW;
        }
        Ok(hashes
            .into_iter()
            .map(|h| h.finalize().to_hex().to_string())
            .collect())
    }

    /// The restored shards of the window starting at `start`, decoded or from the cache.
    /// Decoding happens outside the lock, so parallel readers of other windows go on.
    fn window(&self, start: u64) -> io::Result<Arc<Restored>> {
        let cached = |c: &VecDeque<(u64, Arc<Restored>)>| {
            c.iter().find(|(s, _)| *s == start).map(|(_, r)| r.clone())
        };
        if let Some(r) = cached(&self.cache.lock().expect("lock")) {
            return Ok(r);
        }
        let restored = Arc::new(self.decode_window(start)?);
        let mut cache = self.cache.lock().expect("lock");
        cache.push_front((start, restored.clone()));
        cache.truncate(CACHED_WINDOWS);
        Ok(restored)
    }

    /// Decodes the window starting at `start`: returns every missing data shard's bytes.
    fn decode_window(&self, start: u64) -> io::Result<Restored> {
        if !self.recoverable() {
            return Err(io::Error::other(format!(
                "{} volume(s) are missing or damaged and only {} parity volume(s) are present",
                self.data.iter().filter(|(f, _)| f.is_none()).count()
                    + self.parity.iter().filter(|f| f.is_none()).count(),
                self.parity.iter().filter(|f| f.is_some()).count()
            )));
        }
        let len = WINDOW.min(self.shard - start) as usize;
        let mut dec =
            ReedSolomonDecoder::new(self.data.len(), self.parity.len(), len).map_err(coding)?;
        let mut buf = vec![0u8; len];
        for (i, (f, size)) in self.data.iter().enumerate() {
            if let Some(f) = f {
                read_shard(f, *size, start, &mut buf)?;
                dec.add_original_shard(i, &buf).map_err(coding)?;
            }
        }
        for (r, f) in self.parity.iter().enumerate() {
            if let Some(f) = f {
                read_shard(f, self.shard, start, &mut buf)?;
                dec.add_recovery_shard(r, &buf).map_err(coding)?;
            }
        }
        let out = dec.decode().map_err(coding)?;
        Ok(out
            .restored_original_iter()
            .map(|(i, b)| (i, b.to_vec()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> File {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .unwrap()
    }

    #[test]
    fn any_two_of_five_volumes_rebuild_with_two_parity_volumes() {
        let dir = tempfile::tempdir().unwrap();
        // Three data volumes of unequal sizes, one more than a stripe long.
        let sizes = [STRIPE as usize + 4096, 512 * 3, 8192];
        let data: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(v, n)| (0..*n).map(|i| (i * 7 + v * 13) as u8).collect())
            .collect();
        let files: Vec<File> = data
            .iter()
            .enumerate()
            .map(|(i, d)| file(dir.path(), &format!("d{i}"), d))
            .collect();
        let parity: Vec<File> = (0..2)
            .map(|r| file(dir.path(), &format!("p{r}"), &[]))
            .collect();
        let lens: Vec<u64> = sizes.iter().map(|s| *s as u64).collect();
        let (db3, pb3) = encode(
            &files.iter().collect::<Vec<_>>(),
            &lens,
            &parity.iter().collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(db3[1], blake3::hash(&data[1]).to_hex().to_string());
        assert_eq!(pb3.len(), 2);
        assert_eq!(
            parity[0].metadata().unwrap().len(),
            lens[0],
            "parity is one shard long"
        );
        let open = |p: &str| File::open(dir.path().join(p)).unwrap();
        // Lose data 0 and parity 1; rebuild data 0 across the stripe boundary.
        let r = Rebuilder::new(
            vec![
                (None, lens[0]),
                (Some(open("d1")), lens[1]),
                (Some(open("d2")), lens[2]),
            ],
            vec![Some(open("p0")), None],
        );
        assert!(r.recoverable());
        let mut out = vec![0u8; sizes[0]];
        let mut at = 0;
        while at < out.len() {
            at += r.read_at(0, &mut out[at..], at as u64).unwrap();
        }
        assert_eq!(out, data[0]);
        // Lose two data volumes.
        let r = Rebuilder::new(
            vec![
                (Some(open("d0")), lens[0]),
                (None, lens[1]),
                (None, lens[2]),
            ],
            vec![Some(open("p0")), Some(open("p1"))],
        );
        let mut out = vec![0u8; sizes[2]];
        assert_eq!(r.read_at(2, &mut out, 0).unwrap(), sizes[2]);
        assert_eq!(out, data[2]);
        // Three losses, two parity volumes: not recoverable, and said so.
        let r = Rebuilder::new(
            vec![
                (None, lens[0]),
                (None, lens[1]),
                (Some(open("d2")), lens[2]),
            ],
            vec![Some(open("p0")), None],
        );
        assert!(!r.recoverable());
        let e = r.read_at(0, &mut [0u8; 16], 0).unwrap_err();
        assert!(e.to_string().contains("missing or damaged"), "{e}");
        assert_eq!(stripe_for(4), STRIPE);
        assert_eq!(stripe_for(100), 320 << 10);
        assert_eq!(stripe_for(100_000), WINDOW);
        assert_eq!(count_for_percent(10, 10), 1);
        assert_eq!(count_for_percent(11, 10), 2);
        assert_eq!(count_for_percent(3, 0), 0);
        assert!(is_parity_name(&parity_name(0)) && !is_parity_name("ferry-vol-0001.tar"));
    }
}
