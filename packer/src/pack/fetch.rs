//! Fetching blobs straight into their places in the volumes, in parallel, hashing as they
//! stream. A dropped connection is resumed from the last byte received (HTTP `Range`) when the
//! registry allows it; other transient failures are retried with backoff. Only a body whose
//! sha256 matches is recorded as stored.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use anyhow::Result;
use ferry_format::archive::write::ArchiveWriter;
use ferry_format::hash::{DualHasher, Hashes, OffloadHasher};
use ferry_format::volume::PartsWriter;
use ferry_format::Digest;
use ferry_registry::{read_full, Client, RegistryError, Repo, Tries};
use ferry_term::{Counters, Progress};
use rayon::prelude::*;

use super::ranged::{self, Split};
use crate::plan::Plan;

/// Blobs from this size on are hashed on helper threads and read in larger chunks.
const LARGE: u64 = 32 * 1024 * 1024;

/// Fetches every object of `writer` that is not stored yet (all of them are planned blobs),
/// largest first, on the current rayon pool; a blob `split` applies to goes over several
/// connections. Returns the blobs that failed, with the reason.
pub fn fetch_all(
    client: &Client,
    writer: &ArchiveWriter,
    plan: &Plan,
    split: Split,
    quiet: bool,
) -> (HashMap<Digest, String>, String) {
    let objects = writer.objects();
    let mut todo: Vec<usize> = (0..objects.len())
        .filter(|i| !writer.is_stored(*i))
        .collect();
    todo.sort_by_key(|i| std::cmp::Reverse(objects[*i].size));
    let total: u64 = todo.iter().map(|i| objects[*i].size).sum();
    let progress = Progress::start("pulled", todo.len() as u64, total, quiet);
    // Hosts that answered a ranged GET with the whole blob: not asked again in this run.
    let no_ranges = Mutex::new(HashSet::new());
    let failed: Vec<(Digest, String)> = todo
        .par_iter()
        .filter_map(|&i| {
            let o = &objects[i];
            let from = &plan.blobs[&o.digest].from;
            let counters = &progress.counters;
            let whole = || {
                writer.fill(i, |w| {
                    fetch_blob(client, w, &o.digest, o.size, from, counters)
                })
            };
            let r = if split.applies(o.size, from)
                && !no_ranges.lock().expect("lock").contains(&from.host)
            {
                let r = writer.fill_at(i, |region| {
                    ranged::fetch(client, region, &o.digest, from, counters, split)
                });
                match r {
                    Err(ranged::Error::RangeRefused) => {
                        no_ranges.lock().expect("lock").insert(from.host.clone());
                        whole()
                    }
                    Err(ranged::Error::Failed(e)) => Err(e),
                    Ok(()) => Ok(()),
                }
            } else {
                whole()
            };
            r.err().map(|e| (o.digest.clone(), format!("{e:#}")))
        })
        .collect();
    (failed.into_iter().collect(), progress.finish())
}

/// The whole-blob hashes of a download: inline for small blobs, on helper threads for large
/// ones (so that sha256 + blake3 of a multi-GiB layer run beside its download, not in it).
enum WholeHasher {
    Inline(Box<DualHasher>),
    Offload(OffloadHasher),
}

impl WholeHasher {
    fn for_size(size: u64) -> WholeHasher {
        if size >= LARGE {
            WholeHasher::Offload(OffloadHasher::new())
        } else {
            WholeHasher::Inline(Box::default())
        }
    }

    /// Hashes the first `n` bytes of `buf`. The helper threads take the buffer itself and leave
    /// a recycled one in its place: a large blob's bytes are not copied to be hashed.
    fn update(&mut self, buf: &mut Vec<u8>, n: usize) {
        match self {
            WholeHasher::Inline(h) => h.update(&buf[..n]),
            WholeHasher::Offload(h) => {
                let mut full = std::mem::replace(buf, h.buffer(buf.len()));
                full.truncate(n);
                h.update(full);
            }
        }
    }

    fn finish(self) -> Hashes {
        match self {
            WholeHasher::Inline(h) => h.finish(),
            WholeHasher::Offload(h) => h.finish(),
        }
    }
}

/// One download in progress.
struct Download<'w, 'a> {
    writer: &'w mut PartsWriter<'a>,
    hasher: WholeHasher,
    got: u64,
    size: u64,
    url: String,
}

impl Download<'_, '_> {
    /// The registry sent the whole blob again: start over.
    fn restart(&mut self, counters: &Counters) {
        counters.bytes.fetch_sub(self.got, Ordering::Relaxed);
        self.writer.restart();
        self.hasher = WholeHasher::for_size(self.size);
        self.got = 0;
    }

    fn transport(&self, detail: String) -> RegistryError {
        RegistryError::Transport {
            method: "GET",
            url: self.url.clone(),
            detail,
        }
    }
}

/// Downloads one blob into `writer`; returns its blake3 once its sha256 is `digest`.
fn fetch_blob(
    client: &Client,
    writer: &mut PartsWriter,
    digest: &Digest,
    size: u64,
    from: &Repo,
    counters: &Counters,
) -> Result<String> {
    let what = format!("blob {digest} from {from}");
    let mut d = Download {
        writer,
        hasher: WholeHasher::for_size(size),
        got: 0,
        size,
        url: format!("{from}/blobs/{digest}"),
    };
    let mut buf = vec![0u8; if size >= LARGE { 1 << 20 } else { 256 << 10 }];
    let mut tries = Tries::default();
    loop {
        let before = d.got;
        match fetch_pass(client, &mut d, digest, from, counters, &mut buf) {
            Ok(()) => break,
            Err(e) if tries.again(client, &what, &e, d.got > before) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let hashes = d.hasher.finish();
    if hashes.sha256 != *digest {
        return Err(RegistryError::DigestMismatch {
            host: from.host.clone(),
            repo: from.name.clone(),
            what: "blob".into(),
            expected: digest.clone().into(),
            found: hashes.sha256.into(),
        }
        .into());
    }
    counters.items.fetch_add(1, Ordering::Relaxed);
    Ok(hashes.blake3)
}

/// Reads one body (from where the last pass stopped) into the download. An error is a
/// transient failure to retry.
fn fetch_pass(
    client: &Client,
    d: &mut Download,
    digest: &Digest,
    from: &Repo,
    counters: &Counters,
    buf: &mut Vec<u8>,
) -> std::result::Result<(), RegistryError> {
    let body = client.get_blob_from(from, digest, d.got)?;
    if body.offset != d.got {
        d.restart(counters);
    }
    let remaining = d.size - d.got;
    if let Some(len) = body.size.filter(|len| *len != remaining) {
        return Err(d.transport(format!(
            "the registry announces {len} bytes from offset {}, the manifest says {remaining}",
            d.got
        )));
    }
    let mut reader = body.reader.take(remaining + 1);
    loop {
        let (n, lost) = read_full(&mut reader, buf);
        if d.got + n as u64 > d.size {
            return Err(RegistryError::Protocol(format!(
                "{from} sends more than the {} bytes the manifest gives for blob {digest}",
                d.size
            )));
        }
        d.writer
            .write_all(&buf[..n])
            .map_err(|e| RegistryError::Config(format!("writing to the archive failed: {e}")))?;
        let full = n == buf.len();
        d.hasher.update(buf, n);
        d.got += n as u64;
        counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(e) = lost {
            let (got, size) = (d.got, d.size);
            return Err(d.transport(format!("connection lost after {got} of {size} bytes: {e}")));
        }
        if !full {
            break;
        }
    }
    if d.got < d.size {
        let (got, size) = (d.got, d.size);
        return Err(d.transport(format!("body ended after {got} of {size} bytes")));
    }
    Ok(())
}
