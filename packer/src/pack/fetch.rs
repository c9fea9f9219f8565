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
    // Each worker takes the next blob as it is free (par_bridge): the largest start first, and
    // no worker is left with a run of blobs while the others idle, as with a split of the list.
    let failed: Vec<(Digest, String)> = todo
        .iter()
        .par_bridge()
        .filter_map(|&i| {
            let o = &objects[i];
            let from = &plan.blobs[&o.digest].from;
            let counters = &progress.counters;
            let whole = || {
                let hashing = Hashing::for_blob(o.size, split);
                writer.fill(i, |w| {
                    fetch_blob(client, w, &o.digest, o.size, hashing, from, counters)
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

/// Where a streamed blob is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hashing {
    /// On the thread that downloads it. With several downloads in flight every core is busy
    /// already, and handing the chunks to other threads only adds wake-ups and cache misses:
    /// on the `large` bench set (two cores, twenty 40 MiB layers beside split ones), hashing
    /// those inline instead of on helper threads took pack from 3.2-3.7 s to 3.1-3.2 s, with
    /// 0.5 CPU-s less and peak RSS from 94 to 56 MiB.
    Inline,
    /// On two helper threads, read in 1 MiB chunks: a blob big enough to be split
    /// ([`Split::is_long`]) that streams all the same (the registry refused Range, one
    /// connection per blob, a local layout) is the one the pack waits for, and its stream
    /// should not wait for its own hashing.
    Offload,
}

impl Hashing {
    fn for_blob(size: u64, split: Split) -> Hashing {
        if split.is_long(size) {
            Hashing::Offload
        } else {
            Hashing::Inline
        }
    }
}

/// The whole-blob hashes of a download, where [`Hashing`] says.
enum WholeHasher {
    Inline(Box<DualHasher>),
    Offload(OffloadHasher),
}

impl WholeHasher {
    fn new(hashing: Hashing) -> WholeHasher {
        match hashing {
            Hashing::Offload => WholeHasher::Offload(OffloadHasher::new()),
            Hashing::Inline => WholeHasher::Inline(Box::default()),
        }
    }

    /// A new hasher of the same kind, for a download that starts over.
    fn fresh(&self) -> WholeHasher {
        WholeHasher::new(match self {
            WholeHasher::Inline(_) => Hashing::Inline,
            WholeHasher::Offload(_) => Hashing::Offload,
        })
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
        self.hasher = self.hasher.fresh();
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

/// Downloads one blob (`digest`, `size` bytes) into `writer`, hashed where `hashing` says;
/// returns its blake3 once its sha256 is `digest`.
fn fetch_blob(
    client: &Client,
    writer: &mut PartsWriter,
    digest: &Digest,
    size: u64,
    hashing: Hashing,
    from: &Repo,
    counters: &Counters,
) -> Result<String> {
    let what = format!("blob {digest} from {from}");
    let mut d = Download {
        writer,
        hasher: WholeHasher::new(hashing),
        got: 0,
        size,
        url: format!("{from}/blobs/{digest}"),
    };
    let chunk = match hashing {
        Hashing::Offload => 1 << 20,
        Hashing::Inline => 256 << 10,
    };
    let mut buf = vec![0u8; chunk];
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

#[cfg(test)]
mod tests {
    use super::{Hashing, Split};

    /// Only a blob big enough to split is hashed on helper threads, whether or not it is split
    /// (one connection per blob, or a registry that refuses Range, streams it whole).
    #[test]
    fn only_a_blob_big_enough_to_split_is_hashed_on_helper_threads() {
        for connections in [1, 4] {
            let split = Split {
                connections,
                from: 64 << 20,
            };
            assert_eq!(Hashing::for_blob(40 << 20, split), Hashing::Inline);
            assert_eq!(Hashing::for_blob((64 << 20) - 1, split), Hashing::Inline);
            assert_eq!(Hashing::for_blob(64 << 20, split), Hashing::Offload);
            assert_eq!(Hashing::for_blob(5 << 30, split), Hashing::Offload);
        }
        let low = Split {
            connections: 3,
            from: 1 << 20,
        };
        assert_eq!(Hashing::for_blob(4 << 20, low), Hashing::Offload);
    }
}
