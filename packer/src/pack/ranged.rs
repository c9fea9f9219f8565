//! One large blob over several connections: the blob is cut into segments, each fetched with a
//! ranged GET (`Range: bytes=A-B`) and written at its offset in the volumes, while the calling
//! thread reads the finished segments back in order — mapped where they lie in the page cache,
//! just written — to compute the exact sha256 and blake3 of the whole blob and the blake3 of its
//! parts, and then starts the segment's write-back. Workers never run more than a window of
//! segments ahead of the hashing, so the read-back stays in memory. A registry that does not
//! honour `Range` is told apart on the first segment: the caller then falls back to one stream
//! ([`Error::RangeRefused`]).

use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};

use ferry_format::archive::write::Filled;
use ferry_format::hash::OffloadHasher;
use ferry_format::volume::{PartHasher, Region};
use ferry_format::Digest;
use ferry_registry::{read_full, BlobBody, Client, RegistryError, Repo, Tries};
use ferry_term::Counters;

/// The hashing reads back this many bytes at a time (each a map while the hashers use it: the
/// maps of a blob in flight stay within a few times this).
const READ_BACK: u64 = 4 << 20;

/// How far the downloads of one blob may run ahead of its hashing, in bytes.
const AHEAD: u64 = 1 << 30;

/// When a blob is fetched over several connections.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    /// Connections for one blob; 1 turns splitting off.
    pub connections: usize,
    /// Blobs from this size on are split.
    pub from: u64,
}

impl Default for Split {
    fn default() -> Self {
        Split {
            connections: 4,
            from: 64 << 20,
        }
    }
}

impl Split {
    /// Whether a blob of `size` from `repo` is worth splitting (a local OCI layout is not).
    pub fn applies(&self, size: u64, repo: &Repo) -> bool {
        self.connections > 1 && self.is_long(size) && repo.layout_dir().is_none()
    }

    /// Whether a blob of `size` is big enough to split: one whose single stream the pack
    /// would wait for.
    pub fn is_long(&self, size: u64) -> bool {
        size >= self.from.max(1)
    }

    /// Segment size: about four segments per connection, between 256 KiB and 128 MiB. Every
    /// request costs the registry: distribution spent 5.5-6 s of CPU serving the huge
    /// benchmark's 5 GiB layer in 128 MiB segments, 6-7.5 s in 32 MiB ones and 9-9.5 s in
    /// 8 MiB ones, on a machine where ferry and the registry share two cores.
    fn segment(&self, size: u64) -> u64 {
        (size / (self.connections as u64 * 4)).clamp(256 << 10, 128 << 20)
    }

    /// How many segments may be fetched ahead of the hashing: 1 GiB (so that what is read
    /// back is still in the page cache), or two per connection where that is more.
    fn window(&self, segment: u64) -> usize {
        (AHEAD / segment).max(self.connections as u64 * 2) as usize
    }
}

/// Why a split download did not store the blob.
#[derive(Debug)]
pub enum Error {
    /// The registry answered the first ranged GET with the whole blob: fetch it in one stream.
    RangeRefused,
    Failed(anyhow::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Failed(e.into())
    }
}

impl From<RegistryError> for Error {
    fn from(e: RegistryError) -> Self {
        Error::Failed(e.into())
    }
}

/// The shared work of one split download.
struct Job<'a> {
    client: &'a Client,
    region: Region<'a>,
    digest: &'a Digest,
    from: &'a Repo,
    counters: &'a Counters,
    size: u64,
    segment: u64,
    count: usize,
    /// How many segments may be fetched ahead of the hashing.
    window: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    next: usize,
    hashed: usize,
    done: Vec<bool>,
    /// Set when a segment failed for good or the hashing stopped: workers take no more.
    stop: bool,
    failed: Option<RegistryError>,
}

impl Job<'_> {
    fn bounds(&self, k: usize) -> (u64, u64) {
        let start = k as u64 * self.segment;
        (start, (start + self.segment).min(self.size))
    }

    /// The next segment to fetch, waiting while the window is full; None when all are taken
    /// or the download failed.
    fn take(&self) -> Option<usize> {
        let mut s = self.state.lock().expect("lock");
        loop {
            if s.stop || s.next >= self.count {
                return None;
            }
            if s.next < s.hashed + self.window {
                s.next += 1;
                return Some(s.next - 1);
            }
            s = self.changed.wait(s).expect("lock");
        }
    }

    fn finish(&self, k: usize, r: Result<(), RegistryError>) {
        let mut s = self.state.lock().expect("lock");
        match r {
            Ok(()) => s.done[k] = true,
            Err(e) => {
                s.stop = true;
                s.failed.get_or_insert(e);
            }
        }
        self.changed.notify_all();
    }

    /// Waits until segment `k` is written; the failure that stopped the download otherwise.
    fn wait_for(&self, k: usize) -> Result<(), RegistryError> {
        let mut s = self.state.lock().expect("lock");
        loop {
            if s.stop {
                return Err(s
                    .failed
                    .take()
                    .unwrap_or_else(|| RegistryError::Protocol("the download stopped".into())));
            }
            if s.done[k] {
                return Ok(());
            }
            s = self.changed.wait(s).expect("lock");
        }
    }

    fn hashed(&self, k: usize) {
        self.state.lock().expect("lock").hashed = k + 1;
        self.changed.notify_all();
    }

    /// Stops the workers (the hashing failed).
    fn abort(&self) {
        self.state.lock().expect("lock").stop = true;
        self.changed.notify_all();
    }
}

/// Fetches the blob `digest` (`region.len()` bytes) from `from` over `split.connections`
/// connections into `region`; returns its hashes once its sha256 is `digest`.
pub fn fetch(
    client: &Client,
    region: Region,
    digest: &Digest,
    from: &Repo,
    counters: &Counters,
    split: Split,
) -> Result<Filled, Error> {
    let size = region.len();
    let segment = split.segment(size);
    let count = size.div_ceil(segment) as usize;
    let job = Job {
        client,
        region,
        digest,
        from,
        counters,
        size,
        segment,
        count,
        window: split.window(segment),
        state: Mutex::new(State {
            next: 1,
            done: vec![false; count],
            ..State::default()
        }),
        changed: Condvar::new(),
    };
    let (_, end) = job.bounds(0);
    let what = format!("blob {digest} from {from}");
    let first = client.retry(&what, || client.get_blob_range(from, digest, 0, end))?;
    if !first.partial {
        return Err(Error::RangeRefused);
    }
    let hashes = std::thread::scope(|scope| {
        let job = &job;
        scope.spawn(move || worker(job, Some(first)));
        for _ in 1..split.connections.min(count) {
            scope.spawn(move || worker(job, None));
        }
        let r = hash_in_order(job);
        if r.is_err() {
            job.abort();
        }
        r
    })?;
    if hashes.0 != *digest {
        return Err(Error::Failed(
            RegistryError::DigestMismatch {
                host: from.host.clone(),
                repo: from.name.clone(),
                what: "blob".into(),
                expected: digest.clone().into(),
                found: hashes.0.into(),
            }
            .into(),
        ));
    }
    counters.items.fetch_add(1, Ordering::Relaxed);
    Ok(hashes.1)
}

/// Reads the segments back in order as they complete: (sha256, blake3 and part hashes).
fn hash_in_order(job: &Job) -> Result<(Digest, Filled), Error> {
    let mut whole = OffloadHasher::new();
    let mut parts = job.region.part_hasher();
    for k in 0..job.count {
        job.wait_for(k)?;
        let (start, end) = job.bounds(k);
        let mut at = start;
        while at < end {
            let n = (end - at).min(READ_BACK) as usize;
            read_back(job.region, at, n, &mut whole, &mut parts)?;
            at += n as u64;
        }
        // Final now: the medium can have it while the rest downloads.
        job.region.write_back(start, (end - start) as usize);
        job.hashed(k);
    }
    let h = whole.finish();
    let filled = Filled {
        blake3: h.blake3,
        parts: parts.finish()?,
    };
    Ok((h.sha256, filled))
}

/// Hashes the `n` bytes from `at`, which are final: mapped where they lie in the page cache
/// (no copy), or read into a buffer where the volume cannot be mapped.
fn read_back(
    region: Region,
    at: u64,
    n: usize,
    whole: &mut OffloadHasher,
    parts: &mut PartHasher,
) -> std::io::Result<()> {
    if let Ok(maps) = region.map(at, n) {
        for map in maps {
            parts.update(&map)?;
            whole.update_mapped(map);
        }
        return Ok(());
    }
    let mut chunk = whole.buffer(n);
    region.read_at(&mut chunk, at)?;
    parts.update(&chunk)?;
    whole.update(chunk);
    Ok(())
}

/// One connection: fetches segments until none are left.
fn worker(job: &Job, mut first: Option<BlobBody>) {
    let mut buf = vec![0u8; 1 << 20];
    let mut k = first.is_some().then_some(0);
    loop {
        let Some(seg) = k.or_else(|| job.take()) else {
            return;
        };
        let r = segment(job, seg, first.take(), &mut buf);
        let failed = r.is_err();
        job.finish(seg, r);
        if failed {
            return;
        }
        k = None;
    }
}

/// Fetches segment `k`, resuming from the last byte received after a transient failure.
fn segment(
    job: &Job,
    k: usize,
    mut body: Option<BlobBody>,
    buf: &mut [u8],
) -> Result<(), RegistryError> {
    let (start, end) = job.bounds(k);
    let what = format!(
        "bytes {start}..{end} of blob {} from {}",
        job.digest, job.from
    );
    let mut at = start;
    let mut tries = Tries::default();
    loop {
        let before = at;
        let b = match body.take() {
            Some(b) => Ok(b),
            None => job.client.get_blob_range(job.from, job.digest, at, end),
        };
        match b.and_then(|b| receive(job, b, &mut at, end, buf)) {
            Ok(()) => return Ok(()),
            Err(e) if tries.again(job.client, &what, &e, at > before) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Streams one ranged body into the region from `*at` up to `end`.
fn receive(
    job: &Job,
    body: BlobBody,
    at: &mut u64,
    end: u64,
    buf: &mut [u8],
) -> Result<(), RegistryError> {
    let url = format!("{}/blobs/{}", job.from, job.digest);
    let transport = |detail: String| RegistryError::Transport {
        method: "GET",
        url: url.clone(),
        detail,
    };
    if !body.partial || body.offset != *at {
        return Err(RegistryError::Protocol(format!(
            "{url}: asked bytes {}..{end}, the registry sent {} from {}",
            *at,
            if body.partial {
                "a range"
            } else {
                "the whole blob"
            },
            body.offset
        )));
    }
    let mut reader = std::io::Read::take(body.reader, end - *at + 1);
    while *at < end {
        let (n, lost) = read_full(&mut reader, buf);
        if *at + n as u64 > end {
            return Err(RegistryError::Protocol(format!(
                "{url}: the registry sends more than the bytes {}..{end} asked for",
                *at
            )));
        }
        job.region
            .write_at(&buf[..n], *at)
            .map_err(|e| RegistryError::Config(format!("writing to the archive failed: {e}")))?;
        *at += n as u64;
        job.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(e) = lost {
            return Err(transport(format!("connection lost at byte {}: {e}", *at)));
        }
        if n < buf.len() {
            break;
        }
    }
    if *at < end {
        return Err(transport(format!(
            "body ended at byte {} of the range ending at {end}",
            *at
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Split, AHEAD};

    /// Segments stay few (each costs the registry a request) and the bytes fetched ahead of
    /// the hashing stay bounded, whatever the blob size and connection count.
    #[test]
    fn segments_are_few_and_the_window_is_bounded() {
        for connections in [2, 4, 8, 16] {
            let split = Split {
                connections,
                from: 64 << 20,
            };
            for size in [64u64 << 20, 300 << 20, 5 << 30, 50 << 30] {
                let segment = split.segment(size);
                let window = split.window(segment) as u64;
                let count = size.div_ceil(segment);
                assert!(segment <= 128 << 20, "{size}: segment {segment}");
                assert!(count >= connections as u64 * 4 || segment == 128 << 20);
                assert!(
                    window >= connections as u64 * 2,
                    "every connection has work"
                );
                let ahead = window * segment;
                assert!(
                    ahead <= AHEAD.max(connections as u64 * 2 * segment),
                    "{connections} connections, {size} bytes: {ahead} ahead"
                );
            }
        }
    }
}
