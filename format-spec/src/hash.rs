//! One pass, two hashes: every byte ferry moves is hashed with sha256 (the registry's content
//! address) and blake3 (fast integrity checks of the media) at the same time.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use sha2::Digest as _;

use crate::Digest;

/// The result of hashing a byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashes {
    pub sha256: Digest,
    /// 64 lowercase hex characters.
    pub blake3: String,
    pub size: u64,
}

/// Incremental sha256 + blake3.
#[derive(Clone, Default)]
pub struct DualHasher {
    sha256: sha2::Sha256,
    blake3: blake3::Hasher,
    size: u64,
}

impl DualHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.blake3.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> Hashes {
        let sha: [u8; 32] = self.sha256.finalize().into();
        Hashes {
            sha256: Digest::from_sha256_bytes(&sha),
            blake3: self.blake3.finalize().to_hex().to_string(),
            size: self.size,
        }
    }
}

impl Write for DualHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: DualHasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: DualHasher::new(),
        }
    }

    /// Bytes read so far.
    pub fn size(&self) -> u64 {
        self.hasher.size()
    }

    pub fn finish(self) -> Hashes {
        self.hasher.finish()
    }

    /// The hashes of what was read so far, without consuming the reader.
    pub fn snapshot(&self) -> Hashes {
        self.hasher.clone().finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Bytes handed to the [`OffloadHasher`]'s threads: a buffer, given back for reuse once both
/// are done with it, or (feature `write`) a read-only map of part of a file this process wrote
/// and holds open, hashed where it lies in the page cache instead of copied out of it.
pub enum Chunk {
    Buf(Vec<u8>),
    #[cfg(feature = "write")]
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Buf(b) => b,
            #[cfg(feature = "write")]
            Chunk::Mapped(m) => m,
        }
    }
}

/// sha256 and blake3 computed on two helper threads, for large streams: the caller hands over
/// chunks and goes on receiving and writing, so that hashing a multi-GiB blob does not hold up
/// its download. Memory is bounded by the channels (4 chunks each), and chunks the hashers are
/// done with come back through [`OffloadHasher::buffer`]: a 5 GiB blob reuses a dozen buffers
/// instead of faulting in 5 GiB of fresh pages.
pub struct OffloadHasher {
    sha: Option<SyncSender<Arc<Chunk>>>,
    b3: Option<SyncSender<Arc<Chunk>>>,
    sha_done: Option<std::thread::JoinHandle<[u8; 32]>>,
    b3_done: Option<std::thread::JoinHandle<String>>,
    spare: Receiver<Vec<u8>>,
    size: u64,
}

impl Default for OffloadHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl OffloadHasher {
    pub fn new() -> Self {
        let (sha_tx, sha_rx) = sync_channel::<Arc<Chunk>>(4);
        let (b3_tx, b3_rx) = sync_channel::<Arc<Chunk>>(4);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(8);
        let back = spare_tx.clone();
        let sha_done = std::thread::spawn(move || {
            let mut h = sha2::Sha256::new();
            for chunk in sha_rx {
                h.update(&chunk[..]);
                give_back(chunk, &back);
            }
            h.finalize().into()
        });
        let b3_done = std::thread::spawn(move || {
            let mut h = blake3::Hasher::new();
            for chunk in b3_rx {
                h.update(&chunk[..]);
                give_back(chunk, &spare_tx);
            }
            h.finalize().to_hex().to_string()
        });
        OffloadHasher {
            sha: Some(sha_tx),
            b3: Some(b3_tx),
            sha_done: Some(sha_done),
            b3_done: Some(b3_done),
            spare,
            size: 0,
        }
    }

    /// A buffer of `len` bytes to fill and pass to [`OffloadHasher::update`]: one the hashers
    /// are done with where there is one (its bytes are left over from that use), else a new one.
    pub fn buffer(&self, len: usize) -> Vec<u8> {
        let mut b = self.spare.try_recv().unwrap_or_default();
        b.resize(len, 0);
        b
    }

    pub fn update(&mut self, chunk: Vec<u8>) {
        self.send(Chunk::Buf(chunk));
    }

    /// Hashes a mapped range of a file (see [`Chunk::Mapped`]).
    #[cfg(feature = "write")]
    pub fn update_mapped(&mut self, map: memmap2::Mmap) {
        self.send(Chunk::Mapped(map));
    }

    fn send(&mut self, chunk: Chunk) {
        self.size += chunk.len() as u64;
        let chunk = Arc::new(chunk);
        if let Some(tx) = &self.sha {
            let _ = tx.send(chunk.clone());
        }
        if let Some(tx) = &self.b3 {
            let _ = tx.send(chunk);
        }
    }

    pub fn finish(mut self) -> Hashes {
        self.sha.take();
        self.b3.take();
        let sha = self
            .sha_done
            .take()
            .expect("once")
            .join()
            .expect("hasher thread");
        let blake3 = self
            .b3_done
            .take()
            .expect("once")
            .join()
            .expect("hasher thread");
        Hashes {
            sha256: Digest::from_sha256_bytes(&sha),
            blake3,
            size: self.size,
        }
    }
}

/// Dropped unfinished (a download that failed), the hasher still waits for its threads: a
/// mapped chunk must not be read after its caller moved on and may write those bytes again.
impl Drop for OffloadHasher {
    fn drop(&mut self) {
        self.sha.take();
        self.b3.take();
        if let Some(h) = self.sha_done.take() {
            let _ = h.join();
        }
        if let Some(h) = self.b3_done.take() {
            let _ = h.join();
        }
    }
}

/// Whichever hasher thread is last done with a chunk offers it back for reuse.
fn give_back(chunk: Arc<Chunk>, spare: &SyncSender<Vec<u8>>) {
    if let Some(Chunk::Buf(b)) = Arc::into_inner(chunk) {
        let _ = spare.try_send(b);
    }
}

/// blake3 of everything read through it (when the sha256 is checked elsewhere).
pub struct Blake3Reader<R> {
    inner: R,
    hasher: blake3::Hasher,
    size: u64,
}

impl<R: Read> Blake3Reader<R> {
    pub fn new(inner: R) -> Self {
        Blake3Reader {
            inner,
            hasher: blake3::Hasher::new(),
            size: 0,
        }
    }

    /// (blake3 hex, bytes) of what was read so far.
    pub fn snapshot(&self) -> (String, u64) {
        (self.hasher.finalize().to_hex().to_string(), self.size)
    }
}

impl<R: Read> Read for Blake3Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// blake3 of a byte slice, as hex.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// `len` bytes of a file this process wrote and holds open, from `offset`, mapped read only
/// and populated when mapped (one call sets up the pages instead of a page fault per 16 of
/// them). Only for such files, and bytes no one writes while they are mapped: a mapped file
/// that someone shrinks meanwhile kills the reader (SIGBUS), so media from elsewhere are read
/// with [`blake3_of_file`].
#[cfg(feature = "write")]
pub fn map_own(f: &std::fs::File, offset: u64, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the file is one this process created and keeps open, and nothing truncates or
    // writes the mapped bytes while they are mapped (the callers' contract above); the map is
    // read only.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(f)
    }
}

/// (size, blake3 hex) of a file this process wrote and holds open ([`map_own`]), hashed where
/// it lies in the page cache on all cores: mapped 16 MiB at a time (no copy, and no more than
/// a window counts toward the process's resident memory).
#[cfg(feature = "write")]
pub fn blake3_of_own_file(f: &std::fs::File) -> std::io::Result<(u64, String)> {
    const WINDOW: u64 = 16 << 20;
    let size = f.metadata()?.len();
    let mut h = blake3::Hasher::new();
    let mut at = 0u64;
    while at < size {
        let n = WINDOW.min(size - at) as usize;
        let map = map_own(f, at, n)?;
        h.update_rayon(&map);
        at += n as u64;
    }
    Ok((size, h.finalize().to_hex().to_string()))
}

/// (size, blake3 hex) of a whole file, read by offset in 4 MiB chunks (blake3 hashes big inputs
/// on several lanes at once).
pub fn blake3_of_file(f: &std::fs::File) -> std::io::Result<(u64, String)> {
    use std::os::unix::fs::FileExt;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut at = 0u64;
    loop {
        let n = f.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok((at, h.finalize().to_hex().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_hashes_what_passes() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let h = r.finish();
        assert_eq!(h.size, 100_000);
        assert_eq!(h.sha256, Digest::of(&data));
        assert_eq!(h.blake3, blake3_hex(&data));
    }

    #[test]
    fn offload_hasher_recycles_buffers_without_mixing_bytes() {
        // Chunks of varying sizes through recycled buffers (whose old bytes are left over)
        // must hash exactly like the concatenation.
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut h = OffloadHasher::new();
        let mut at = 0;
        let mut len = 1;
        while at < data.len() {
            let n = len.min(data.len() - at);
            let mut b = h.buffer(n);
            assert_eq!(b.len(), n);
            b.copy_from_slice(&data[at..at + n]);
            h.update(b);
            at += n;
            len = (len * 3 + 17) % 200_000 + 1;
        }
        h.update(b"tail".to_vec());
        let mut all = data.clone();
        all.extend_from_slice(b"tail");
        let got = h.finish();
        assert_eq!(got.size, all.len() as u64);
        assert_eq!(got.sha256, Digest::of(&all));
        assert_eq!(got.blake3, blake3_hex(&all));
    }
}
