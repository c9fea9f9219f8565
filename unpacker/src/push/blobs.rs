//! Putting blobs in place at the target: one task per digest, in parallel. The first repository
//! that lacks a blob gets the upload, straight from the media; the others get a cross-repository
//! mount. Where the target allows it ([`SelfMount`]), the request that checks a repository for
//! a blob also opens its upload, so that a new blob costs what a bare upload does. Every
//! uploaded byte is checked against the signed index while it streams, and the upload is
//! committed only if it matched.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use anyhow::{bail, Result};
use ferry_format::archive::{ArchiveSet, Located};
use ferry_format::Digest;
use ferry_registry::{Client, Mount, Repo, Session};
use ferry_term::{Counters, Progress};
use rayon::prelude::*;
use serde::Serialize;

use super::plan::BlobTask;
use super::selfmount::SelfMount;

/// Blobs up to this size are read and verified in memory, then sent in one PUT.
const SMALL_BLOB: u64 = 4 * 1024 * 1024;

/// What the blob phase did, counted over (repository, blob) pairs.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobCounts {
    pub uploaded: u64,
    pub mounted: u64,
    /// Already at the target.
    pub skipped: u64,
    pub bytes_uploaded: u64,
    /// Blobs uploaded from volumes rebuilt with the parity volumes (lost or damaged ones).
    pub rebuilt: u64,
}

/// The outcome of the blob phase.
#[derive(Debug, Default)]
pub struct BlobsDone {
    pub counts: BlobCounts,
    /// Blobs that could not be put in place, with the reason.
    pub failed: HashMap<Digest, String>,
    /// (repository, blob) pairs this run put there: a manifest that needs one of them cannot be
    /// at the target yet.
    pub fresh: BTreeSet<(String, Digest)>,
}

/// Runs every task on the current rayon pool, with a progress line unless `quiet`.
pub fn push_all(
    client: &Client,
    archives: &ArchiveSet,
    tasks: &[BlobTask],
    origins: &HashMap<Digest, Repo>,
    quiet: bool,
) -> BlobsDone {
    let total = tasks.iter().map(|t| t.size).sum();
    let progress = Progress::start("pushed", tasks.len() as u64, total, quiet);
    let done = Mutex::new(BlobsDone::default());
    let mounts = SelfMount::default();
    // Each worker takes the next task as it is free (par_bridge): the largest blobs start
    // first, and no worker is left with a run of tasks while the others idle (as with a split
    // of the list, which left the end of a push to one connection).
    tasks.iter().par_bridge().for_each(|t| {
        let origin = origins.get(t.digest);
        let r = push_blob(client, archives, t, (origin, &mounts), &progress.counters);
        let mut d = done.lock().expect("lock");
        match r {
            Ok(o) => {
                d.counts.uploaded += o.uploaded;
                d.counts.mounted += o.mounted;
                d.counts.skipped += o.skipped;
                d.counts.bytes_uploaded += o.bytes;
                d.counts.rebuilt += o.rebuilt;
                d.fresh
                    .extend(o.fresh_in.into_iter().map(|r| (r, t.digest.clone())));
            }
            Err(e) => {
                d.failed.insert(t.digest.clone(), format!("{e:#}"));
            }
        }
        progress.counters.items.fetch_add(1, Ordering::Relaxed);
    });
    let line = progress.finish();
    if !quiet {
        eprintln!("{line}");
    }
    done.into_inner().expect("lock")
}

#[derive(Default)]
struct Outcome {
    uploaded: u64,
    mounted: u64,
    skipped: u64,
    bytes: u64,
    rebuilt: u64,
    /// Repositories the blob was uploaded or mounted into by this run.
    fresh_in: Vec<String>,
}

fn push_blob(
    client: &Client,
    archives: &ArchiveSet,
    task: &BlobTask,
    (origin, mounts): (Option<&Repo>, &SelfMount),
    counters: &Counters,
) -> Result<Outcome> {
    let digest = task.digest;
    let mut out = Outcome::default();
    let mut present_in: Option<&Repo> = None;
    for repo in &task.repos {
        let session = match place(client, repo, digest, present_in.or(origin), mounts)? {
            Placed::There => {
                out.skipped += 1;
                counters.skipped.fetch_add(1, Ordering::Relaxed);
                present_in.get_or_insert(repo);
                continue;
            }
            Placed::Mounted => {
                out.mounted += 1;
                out.fresh_in.push(repo.name.clone());
                present_in.get_or_insert(repo);
                continue;
            }
            Placed::Missing(session) => session,
        };
        let Some(located) = archives.locate(digest) else {
            if let Some(s) = session {
                client.cancel_upload(repo, s);
            }
            bail!("not carried by this archive (nor by --base-media) and not at the target");
        };
        if upload(client, located, repo, session)? {
            out.rebuilt += 1;
        }
        mounts.learn(client, repo, digest);
        out.uploaded += 1;
        out.fresh_in.push(repo.name.clone());
        out.bytes += located.blob.size;
        counters
            .bytes
            .fetch_add(located.blob.size, Ordering::Relaxed);
        present_in = Some(repo);
    }
    Ok(out)
}

/// Where a blob stands in one repository before its bytes are sent.
enum Placed {
    /// It was there already.
    There,
    /// It was linked from another repository of the target.
    Mounted,
    /// It has to be uploaded, into this session when one was opened.
    Missing(Option<Session>),
}

/// Finds whether `repo` has the blob, or links it from `from` (a repository of the target
/// that holds it). Where no repository is known to hold it, on a target whose self-mounts work
/// ([`SelfMount`]), one POST both checks and opens the upload session. Otherwise a HEAD checks
/// first, so that content already in place is read, never linked again: a blob this push
/// uploaded to one repository may still be in another from an earlier archive.
fn place(
    client: &Client,
    repo: &Repo,
    digest: &Digest,
    from: Option<&Repo>,
    mounts: &SelfMount,
) -> Result<Placed> {
    if from.is_none() && mounts.works() {
        match client.mount_or_start(repo, digest, &repo.name)? {
            Mount::Linked => {
                mounts.found_present();
                return Ok(Placed::There);
            }
            Mount::Start(session) => return Ok(Placed::Missing(Some(session))),
            // Nothing learned of the blob: the HEAD below asks.
            Mount::Refused => {}
        }
    }
    if client.blob_exists(repo, digest)? {
        return Ok(Placed::There);
    }
    if let Some(from) = from {
        if client.mount_blob(repo, digest, &from.name)? {
            return Ok(Placed::Mounted);
        }
    }
    Ok(Placed::Missing(None))
}

/// Uploads one blob from the media, checking on the way that its bytes are the ones the signed
/// index describes (blake3; the packer checked their sha256 when it fetched them, and the
/// registry checks it again before it commits the upload). A blob that does not match is never
/// committed; with parity volumes it is read again rebuilt from them. Returns whether it was.
fn upload(
    client: &Client,
    located: Located,
    repo: &Repo,
    session: Option<Session>,
) -> Result<bool> {
    match upload_from(client, located, repo, session) {
        Ok(()) => Ok(located.is_rebuilt()),
        Err(Failed::Media(e)) => match located.rebuilt() {
            Some(rebuilt) => match upload_from(client, rebuilt, repo, None) {
                Ok(()) => Ok(true),
                Err(Failed::Media(again)) => Err(anyhow::anyhow!(
                    "{e}; read rebuilt from the parity volumes: {again}"
                )),
                Err(Failed::Target(t)) => Err(t),
            },
            None => Err(e),
        },
        Err(Failed::Target(e)) => Err(e),
    }
}

/// Why an upload failed: the media's bytes, or the target.
enum Failed {
    Media(anyhow::Error),
    Target(anyhow::Error),
}

fn upload_from(
    client: &Client,
    located: Located,
    repo: &Repo,
    mut session: Option<Session>,
) -> Result<(), Failed> {
    let blob = located.blob;
    let media = |e: ferry_format::archive::ReadError| {
        Failed::Media(anyhow::anyhow!("{e}; it was not pushed"))
    };
    if blob.size <= SMALL_BLOB {
        let mut reader = located.reader("blob").map_err(media)?;
        let mut bytes = Vec::with_capacity(blob.size as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| Failed::Media(anyhow::anyhow!("cannot read it from the media: {e}")))?;
        reader.verdict().map_err(media)?;
        return client
            .upload_blob_bytes(repo, &blob.digest, &bytes, session)
            .map_err(|e| Failed::Target(e.into()));
    }
    // Large: stream it; commit only if the hash matches at the end. A failed attempt is
    // started over (with the client's backoff and retry budget); bytes that do not match are
    // the media's fault, and not retried from the same volumes.
    let what = format!("upload of {} to {repo}", blob.digest);
    let mut tries = ferry_registry::Tries::default();
    loop {
        let reader = located.reader("blob").map_err(media)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
        let check = |r: &std::io::BufReader<_>| {
            let r: &ferry_format::archive::BlobReader = r.get_ref();
            r.verdict().map_err(|e| format!("{e}; it was not pushed"))
        };
        let size = blob.size;
        let into = session.take();
        let e = match client.upload_blob_stream(repo, &blob.digest, size, &mut reader, into, check)
        {
            Ok(()) => return Ok(()),
            Err(ferry_registry::RegistryError::CheckRefused { why, .. }) => {
                return Err(Failed::Media(anyhow::anyhow!(why)))
            }
            Err(e) => e,
        };
        if !tries.again(client, &what, &e, false) {
            return Err(Failed::Target(e.into()));
        }
    }
}
