//! Pushing an archive into the target registry, straight from the media (no extraction).
//!
//! Order: blobs, then manifests (children before the indexes that list them, by digest), then
//! tags. Every blob is hashed while it streams and committed only if its sha256 matches; a
//! manifest is pushed only when everything it references is confirmed at the target; a tag only
//! when its manifest is. What is already at the target (HEAD) is skipped, and a blob already
//! pushed to one repository is mounted into the others, so an interrupted push re-run finishes
//! the job without re-uploading.
//!
//! Repository names: `<source-registry>/<repo>` becomes `<target>/<namespace>/<repo>` (or
//! `<target>/<repo>` without a namespace); the source registry host is dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};
use ferry_format::hash::Blake3Reader;
use ferry_format::index::Index;
use ferry_format::volume::PartsReader;
use ferry_format::Digest;
use ferry_registry::progress::{Counters, Progress};
use ferry_registry::{Client, Repo};
use rayon::prelude::*;

use crate::media::Media;
use crate::state;

/// Blobs up to this size are read and verified in memory, then sent in one PUT.
const SMALL_BLOB: u64 = 4 * 1024 * 1024;

/// Where to push.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host[:port]`.
    pub host: String,
    /// Optional path prefix for every repository.
    pub namespace: Option<String>,
}

impl Target {
    /// Parses `HOST[:PORT][/NAMESPACE]`.
    pub fn parse(s: &str) -> Result<Target> {
        let s = s.trim().trim_end_matches('/');
        let s = s.strip_prefix("docker://").unwrap_or(s);
        let (host, ns) = match s.split_once('/') {
            Some((h, n)) => (h, Some(n.to_string())),
            None => (s, None),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            bail!("--to {s:?}: expected HOST[:PORT][/NAMESPACE]");
        }
        if let Some(n) = &ns {
            if n.split('/')
                .any(|c| c.is_empty() || c.starts_with('.') || c != c.to_lowercase())
            {
                bail!("--to {s:?}: the namespace must be lowercase path components");
            }
        }
        Ok(Target {
            host: host.to_string(),
            namespace: ns,
        })
    }

    /// The target repository of a source repository.
    pub fn repository(&self, source_repo: &str) -> String {
        match &self.namespace {
            Some(n) => format!("{n}/{source_repo}"),
            None => source_repo.to_string(),
        }
    }
}

/// Push settings.
pub struct PushOptions {
    pub target: Target,
    pub jobs: usize,
    pub quiet: bool,
    /// Push a delta even if the target has no record of its parent archive.
    pub allow_gap: bool,
}

/// Where blob and manifest bytes can be read: the archive being pushed, then the base
/// archives given with `--base-media`.
pub struct Sources<'a> {
    list: Vec<(&'a Index, Vec<Option<File>>)>,
}

impl<'a> Sources<'a> {
    pub fn new(media: &'a Media, bases: &'a [Media]) -> Sources<'a> {
        let list = std::iter::once(media)
            .chain(bases)
            .map(|m| (&m.index, m.open_volumes()))
            .collect();
        Sources { list }
    }

    /// The first source that carries `d`, with its volumes.
    fn carried(&self, d: &Digest) -> Option<(&ferry_format::index::Blob, &[Option<File>])> {
        self.list.iter().find_map(|(index, vols)| {
            let b = index.blob(d)?;
            b.carried().then_some((b, vols.as_slice()))
        })
    }
}

/// What a push did.
#[derive(Debug, Default)]
pub struct PushReport {
    pub blobs_uploaded: u64,
    pub blobs_mounted: u64,
    pub blobs_skipped: u64,
    pub bytes_uploaded: u64,
    pub manifests_pushed: u64,
    pub manifests_skipped: u64,
    pub tags_pushed: u64,
    /// Images fully at the target: (source, target reference by digest).
    pub images_done: Vec<(String, String)>,
    /// Images not pushed, with the reason.
    pub images_failed: Vec<(String, String)>,
    /// Seconds spent in each phase: checks, blobs, manifests, tags and record.
    pub phases: Vec<(&'static str, f64)>,
    /// The stream position recorded at the target (when the archive names a stream).
    pub recorded: Option<ferry_format::index::Stream>,
    pub seconds: f64,
}

/// Per target repository: the manifests (children first) and blobs its images need.
struct RepoWork {
    repo: Repo,
    manifests: Vec<Digest>,
    blobs: BTreeSet<Digest>,
}

fn plan_repos(index: &Index, target: &Target) -> Result<Vec<RepoWork>> {
    let mut by_repo: BTreeMap<String, (String, Vec<&Digest>)> = BTreeMap::new();
    for img in &index.images {
        let name = target.repository(&img.repository);
        let entry = by_repo
            .entry(name.clone())
            .or_insert_with(|| (img.registry.clone(), Vec::new()));
        if entry.0 != img.registry {
            bail!(
                "{}/{} and {}/{} would both be pushed to {}/{name}; push them with different namespaces",
                entry.0,
                img.repository,
                img.registry,
                img.repository,
                target.host
            );
        }
        entry.1.push(&img.digest);
    }
    let mut out = Vec::new();
    for (name, (_, roots)) in by_repo {
        let mut manifests = Vec::new();
        let mut seen = BTreeSet::new();
        let mut blobs = BTreeSet::new();
        for root in roots {
            post_order(index, root, &mut seen, &mut manifests, &mut blobs);
        }
        out.push(RepoWork {
            repo: Repo::new(target.host.clone(), name),
            manifests,
            blobs,
        });
    }
    Ok(out)
}

fn post_order(
    index: &Index,
    d: &Digest,
    seen: &mut BTreeSet<Digest>,
    out: &mut Vec<Digest>,
    blobs: &mut BTreeSet<Digest>,
) {
    if !seen.insert(d.clone()) {
        return;
    }
    if let Some(m) = index.manifest(d) {
        for c in &m.children {
            post_order(index, c, seen, out, blobs);
        }
        blobs.extend(m.blobs.iter().cloned());
    }
    out.push(d.clone());
}

/// Pushes everything the archive holds. Images whose content is damaged or missing are left
/// out (reported in `images_failed`); everything else is pushed.
pub fn push(
    media: &Media,
    bases: &[Media],
    client: &Client,
    opts: &PushOptions,
) -> Result<PushReport> {
    let started = Instant::now();
    let index = &media.index;
    let work = plan_repos(index, &opts.target)?;
    client.ping(&opts.target.host)?;
    let sources = Sources::new(media, bases);
    for (i, v) in sources.list[0].1.iter().enumerate() {
        if v.is_none() {
            eprintln!(
                "warning: volume {} is missing or has the wrong size; images that need it will not be pushed",
                index.volumes[i].name
            );
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()?;

    // A delta: its parent archives must have arrived, and what it does not carry must be at
    // the target (or in --base-media), before anything is changed.
    let state = match &index.stream {
        Some(s) => Some(state::read(client, &opts.target, &s.name)?),
        None => None,
    };
    if let (Some(stream), Some(state)) = (&index.stream, &state) {
        let given: Vec<&str> = bases.iter().map(|b| b.index.archive_id.as_str()).collect();
        check_parents(index, stream, state, &given, &opts.target, opts.allow_gap)?;
    }
    let origins =
        pool.install(|| preflight(client, index, &sources, &work, bases, &opts.target))?;
    let mut phases = vec![("checks", started.elapsed().as_secs_f64())];
    let mut mark = Instant::now();

    // Blobs: one task per digest; the first repository that needs it gets the upload, the
    // others a mount from there.
    let mut repos_of: BTreeMap<&Digest, Vec<&Repo>> = BTreeMap::new();
    for w in &work {
        for b in &w.blobs {
            repos_of.entry(b).or_default().push(&w.repo);
        }
    }
    let mut tasks: Vec<(&Digest, Vec<&Repo>)> = repos_of.into_iter().collect();
    tasks.sort_by_key(|(d, _)| std::cmp::Reverse(index.blob(d).map_or(0, |b| b.size)));
    let total: u64 = tasks
        .iter()
        .map(|(d, _)| index.blob(d).map_or(0, |b| b.size))
        .sum();
    let progress = Progress::start("pushed", tasks.len() as u64, total, opts.quiet);
    let report = Mutex::new(PushReport::default());
    let failed_blobs: Mutex<HashMap<Digest, String>> = Mutex::new(HashMap::new());
    // (repository, blob) pairs this run moved: a manifest that needs one cannot be there yet.
    let fresh: Mutex<BTreeSet<(String, Digest)>> = Mutex::new(BTreeSet::new());
    pool.install(|| {
        tasks.par_iter().for_each(|(digest, repos)| {
            let origin = origins.get(*digest);
            let r = push_blob(client, &sources, digest, repos, origin, &progress.counters);
            let mut rep = report.lock().expect("lock");
            match r {
                Ok(o) => {
                    fresh
                        .lock()
                        .expect("lock")
                        .extend(o.fresh_in.iter().map(|r| (r.clone(), (*digest).clone())));
                    rep.blobs_uploaded += o.uploaded;
                    rep.blobs_mounted += o.mounted;
                    rep.blobs_skipped += o.skipped;
                    rep.bytes_uploaded += o.bytes;
                }
                Err(e) => {
                    failed_blobs
                        .lock()
                        .expect("lock")
                        .insert((*digest).clone(), format!("{e:#}"));
                }
            }
            progress.counters.items.fetch_add(1, Ordering::Relaxed);
        })
    });
    let line = progress.finish();
    if !opts.quiet {
        eprintln!("{line}");
    }
    let failed_blobs = failed_blobs.into_inner().expect("lock");
    let fresh = fresh.into_inner().expect("lock");
    let mut report = report.into_inner().expect("lock");
    phases.push(("blobs", mark.elapsed().as_secs_f64()));
    mark = Instant::now();

    // Manifests, per repository, children first; repositories in parallel.
    let failed_manifests: Mutex<HashMap<Digest, String>> = Mutex::new(HashMap::new());
    let counts: Mutex<(u64, u64)> = Mutex::new((0, 0));
    let pushed_now: Mutex<BTreeSet<(String, Digest)>> = Mutex::new(BTreeSet::new());
    pool.install(|| {
        work.par_iter().for_each(|w| {
            let mut local_failed: HashMap<Digest, String> = HashMap::new();
            let mut local_pushed: BTreeSet<Digest> = BTreeSet::new();
            for d in &w.manifests {
                let Some(m) = index.manifest(d) else { continue };
                let missing = m
                    .blobs
                    .iter()
                    .find_map(|b| failed_blobs.get(b).map(|why| format!("blob {b}: {why}")))
                    .or_else(|| {
                        m.children.iter().find_map(|c| {
                            local_failed.get(c).map(|why| format!("child {c}: {why}"))
                        })
                    });
                if let Some(why) = missing {
                    local_failed.insert(d.clone(), why);
                    continue;
                }
                // Known absent when something it references was only now put there.
                let absent = m
                    .blobs
                    .iter()
                    .any(|b| fresh.contains(&(w.repo.name.clone(), b.clone())))
                    || m.children.iter().any(|c| local_pushed.contains(c));
                match push_manifest(client, &sources, &w.repo, d, &m.media_type, absent) {
                    Ok(true) => {
                        local_pushed.insert(d.clone());
                        counts.lock().expect("lock").0 += 1
                    }
                    Ok(false) => counts.lock().expect("lock").1 += 1,
                    Err(e) => {
                        let hint = sparse_hint(index, &sources, d, &w.repo).unwrap_or_default();
                        local_failed.insert(d.clone(), format!("{e:#}{hint}"));
                    }
                }
            }
            failed_manifests.lock().expect("lock").extend(local_failed);
            pushed_now
                .lock()
                .expect("lock")
                .extend(local_pushed.into_iter().map(|d| (w.repo.name.clone(), d)));
        })
    });
    let (pushed, skipped) = counts.into_inner().expect("lock");
    report.manifests_pushed = pushed;
    report.manifests_skipped = skipped;
    let failed_manifests = failed_manifests.into_inner().expect("lock");
    let pushed_now = pushed_now.into_inner().expect("lock");
    phases.push(("manifests", mark.elapsed().as_secs_f64()));
    mark = Instant::now();

    // Tags, once their manifest is confirmed (images in parallel).
    let tagged: Vec<(String, TagOutcome)> = pool.install(|| {
        index
            .images
            .par_iter()
            .map(|img| {
                let repo = Repo::new(
                    opts.target.host.clone(),
                    opts.target.repository(&img.repository),
                );
                if let Some(why) = failed_manifests.get(&img.digest) {
                    return (img.source.clone(), Err(why.clone()));
                }
                let mut pushed = 0;
                let fresh_manifest = pushed_now.contains(&(repo.name.clone(), img.digest.clone()));
                for tag in &img.tags {
                    match push_tag(
                        client,
                        &sources,
                        &repo,
                        tag,
                        &img.digest,
                        &img.media_type,
                        fresh_manifest,
                    ) {
                        Ok(true) => pushed += 1,
                        Ok(false) => {}
                        Err(e) => return (img.source.clone(), Err(format!("tag {tag}: {e:#}"))),
                    }
                }
                (
                    img.source.clone(),
                    Ok((format!("{}@{}", repo, img.digest), pushed)),
                )
            })
            .collect()
    });
    for (source, r) in tagged {
        match r {
            Ok((by_digest, pushed)) => {
                report.tags_pushed += pushed;
                report.images_done.push((source, by_digest));
            }
            Err(why) => report.images_failed.push((source, why)),
        }
    }
    // Record the archive at the target once all of it arrived.
    if let (Some(state), true) = (&state, report.images_failed.is_empty()) {
        state::record(client, &opts.target, state, index, &media.index_raw)?;
        report.recorded = index.stream.clone();
    }
    phases.push(("tags and record", mark.elapsed().as_secs_f64()));
    report.phases = phases;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Refuses a delta whose parent archive (same stream) the target has no record of, unless the
/// parent's media is given with --base-media.
fn check_parents(
    index: &Index,
    stream: &ferry_format::index::Stream,
    state: &state::StreamState,
    given: &[&str],
    target: &Target,
    allow_gap: bool,
) -> Result<()> {
    for p in &index.parents {
        let Some(ps) = &p.stream else { continue };
        if ps.name != stream.name || state.has(&p.id) || given.contains(&p.id.as_str()) {
            continue;
        }
        let last = match state.last() {
            Some(r) => format!(
                "the last archive it recorded is sequence {} ({})",
                r.sequence, r.archive_id
            ),
            None => "it has no record of this stream".to_string(),
        };
        let msg = format!(
            "this archive is sequence {} of stream {:?} and builds on sequence {} (archive {}), which {} has not received: {last}. Push archive {} (stream {:?}, sequence {}) first",
            stream.sequence, stream.name, ps.sequence, p.id, target.host, p.id, ps.name, ps.sequence
        );
        if allow_gap {
            eprintln!("warning: {msg}; going on because of --allow-gap");
        } else {
            bail!("{msg}, or pass --allow-gap if its content reached the target another way");
        }
    }
    Ok(())
}

/// For every blob and manifest the archive lists but does not carry: finds it at the target
/// (returning, for blobs, a repository to mount from) or in a base medium. Fails, naming the
/// archives that must be pushed first, if anything is nowhere.
fn preflight(
    client: &Client,
    index: &Index,
    sources: &Sources,
    work: &[RepoWork],
    bases: &[Media],
    target: &Target,
) -> Result<HashMap<Digest, Repo>> {
    let mut candidates: Vec<Repo> = work.iter().map(|w| w.repo.clone()).collect();
    for b in bases {
        for img in &b.index.images {
            let r = Repo::new(target.host.clone(), target.repository(&img.repository));
            if !candidates.contains(&r) {
                candidates.push(r);
            }
        }
    }
    let mut checks: Vec<(&Repo, &Digest, bool)> = Vec::new();
    for w in work {
        for d in &w.blobs {
            if index.blob(d).is_some_and(|b| !b.carried()) && sources.carried(d).is_none() {
                checks.push((&w.repo, d, false));
            }
        }
        for d in &w.manifests {
            if index.blob(d).is_some_and(|b| !b.carried()) && sources.carried(d).is_none() {
                checks.push((&w.repo, d, true));
            }
        }
    }
    let results: Vec<Result<Option<Repo>>> = checks
        .par_iter()
        .map(|(repo, d, is_manifest)| {
            if *is_manifest {
                return Ok(client
                    .manifest_digest(repo, &d.to_string())?
                    .map(|_| (*repo).clone()));
            }
            if client.blob_exists(repo, d)? {
                return Ok(Some((*repo).clone()));
            }
            for c in &candidates {
                if c != *repo && client.blob_exists(c, d)? {
                    return Ok(Some(c.clone()));
                }
            }
            Ok(None)
        })
        .collect();
    let mut origins = HashMap::new();
    let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((repo, d, is_manifest), r) in checks.iter().zip(results) {
        match r? {
            Some(found) => {
                if !is_manifest {
                    origins.entry((*d).clone()).or_insert(found);
                }
            }
            None => {
                let base = index
                    .blob(d)
                    .and_then(|b| b.base.clone())
                    .unwrap_or_default();
                let what = if *is_manifest { "manifest" } else { "blob" };
                missing
                    .entry(base)
                    .or_default()
                    .insert(format!("{what} {d} for {repo}"));
            }
        }
    }
    if missing.is_empty() {
        return Ok(origins);
    }
    let mut msg = String::from("nothing was pushed: this delta needs content that is neither at the target nor in --base-media:");
    for (base, items) in &missing {
        let from = match index.parent(base) {
            Some(p) if p.kind == ferry_format::index::PARENT_ARCHIVE => match &p.stream {
                Some(s) => format!(
                    "archive {} (stream {:?}, sequence {})",
                    p.id, s.name, s.sequence
                ),
                None => format!("archive {}", p.id),
            },
            Some(p) => format!(
                "the inventory of {} this delta was packed against (it is no longer there)",
                p.target.as_deref().unwrap_or("the target")
            ),
            None => "an unknown base".to_string(),
        };
        msg.push_str(&format!(
            "\n  {} item(s) expected from {from}; push that archive first or give its media with --base-media DIR (e.g. {})",
            items.len(),
            items.iter().next().map(String::as_str).unwrap_or("")
        ));
    }
    bail!(msg)
}

/// An image's tags: (target reference by digest, tags pushed), or why it failed.
type TagOutcome = std::result::Result<(String, u64), String>;

#[derive(Default)]
struct BlobOutcome {
    uploaded: u64,
    mounted: u64,
    skipped: u64,
    bytes: u64,
    /// Repositories the blob was uploaded or mounted into by this run (it was missing there).
    fresh_in: Vec<String>,
}

fn push_blob(
    client: &Client,
    sources: &Sources,
    digest: &Digest,
    repos: &[&Repo],
    origin: Option<&Repo>,
    counters: &Counters,
) -> Result<BlobOutcome> {
    let mut out = BlobOutcome::default();
    let mut present_in: Option<&Repo> = None;
    for repo in repos {
        if client.blob_exists(repo, digest)? {
            out.skipped += 1;
            counters.skipped.fetch_add(1, Ordering::Relaxed);
            present_in.get_or_insert(repo);
            continue;
        }
        if let Some(from) = present_in.or(origin) {
            if client.mount_blob(repo, digest, &from.name)? {
                out.mounted += 1;
                out.fresh_in.push(repo.name.clone());
                present_in.get_or_insert(repo);
                continue;
            }
        }
        let (blob, volumes) = sources.carried(digest).ok_or_else(|| {
            anyhow::anyhow!(
                "not carried by this archive (nor by --base-media) and not at the target"
            )
        })?;
        upload(client, volumes, blob, repo)?;
        out.uploaded += 1;
        out.fresh_in.push(repo.name.clone());
        out.bytes += blob.size;
        counters.bytes.fetch_add(blob.size, Ordering::Relaxed);
        present_in = Some(repo);
    }
    Ok(out)
}

/// Uploads one blob from the media, checking on the way that its bytes are the ones the signed
/// index describes (blake3; the packer checked their sha256 when it fetched them, and the
/// registry checks it again before it commits the upload). A blob that does not match is never
/// committed.
fn upload(
    client: &Client,
    volumes: &[Option<File>],
    blob: &ferry_format::index::Blob,
    repo: &Repo,
) -> Result<()> {
    let digest = &blob.digest;
    ferry_format::volume::check_headers(volumes, blob)
        .map_err(|e| anyhow::anyhow!("{e}; it was not pushed"))?;
    let mismatch = |b3: &str, size: u64| {
        format!(
            "the media holds corrupt bytes for it (blake3 {b3} over {size} bytes, the index says {}); it was not pushed",
            blob.blake3
        )
    };
    if blob.size <= SMALL_BLOB {
        let mut reader = Blake3Reader::new(PartsReader::new(volumes, &blob.parts));
        let mut bytes = Vec::with_capacity(blob.size as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow::anyhow!("cannot read it from the media: {e}"))?;
        let (b3, size) = reader.snapshot();
        if b3 != blob.blake3 || size != blob.size {
            bail!(mismatch(&b3, size));
        }
        client.upload_blob_bytes(repo, digest, &bytes)?;
        return Ok(());
    }
    // Large: stream it; commit only if the hash matches at the end. A failed attempt is
    // started over (with the client's backoff and retry budget).
    let what = format!("upload of {digest} to {repo}");
    let mut attempt = 0;
    loop {
        let parts =
            std::io::BufReader::with_capacity(1 << 20, PartsReader::new(volumes, &blob.parts));
        let shared = SharedReader(Mutex::new(Blake3Reader::new(parts)));
        let mut r = &shared;
        let mut check = || {
            let (b3, size) = shared.snapshot();
            if b3 == blob.blake3 && size == blob.size {
                Ok(())
            } else {
                Err(mismatch(&b3, size))
            }
        };
        match client.upload_blob_stream(repo, digest, blob.size, &mut r, &mut check) {
            Ok(()) => return Ok(()),
            Err(e) if client.backoff(&what, attempt, &e) => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A reader that can be hash-checked after the HTTP layer is done with it.
struct SharedReader<R>(Mutex<Blake3Reader<R>>);

impl<R: Read> SharedReader<R> {
    fn snapshot(&self) -> (String, u64) {
        self.0.lock().expect("lock").snapshot()
    }
}

impl<R: Read> Read for &SharedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").read(buf)
    }
}

/// Reads a manifest's bytes from the first source that carries it, checking its digest.
fn read_manifest(sources: &Sources, d: &Digest) -> Result<Vec<u8>> {
    read_carried(sources, d, "manifest")
}

/// Reads a small carried object (a manifest, a release signature) from the first source that
/// carries it, checking its canonical header and its digest.
pub fn read_carried(sources: &Sources, d: &Digest, what: &str) -> Result<Vec<u8>> {
    let (blob, volumes) = sources
        .carried(d)
        .ok_or_else(|| anyhow::anyhow!("{what} {d} is not carried (nor by --base-media)"))?;
    if blob.size > 64 * 1024 * 1024 {
        bail!(
            "{what} {d} is {} bytes: too large to read in memory",
            blob.size
        );
    }
    ferry_format::volume::check_headers(volumes, blob)
        .map_err(|e| anyhow::anyhow!("{what} {d}: {e}"))?;
    let mut bytes = Vec::with_capacity(blob.size as usize);
    PartsReader::new(volumes, &blob.parts)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {d} from the media: {e}"))?;
    if Digest::of(&bytes) != *d {
        bail!("the media holds corrupt bytes for {what} {d}");
    }
    Ok(bytes)
}

impl crate::cluster::BlobSource for Sources<'_> {
    fn read_small(&self, d: &Digest) -> Result<Vec<u8>> {
        read_carried(self, d, "object")
    }
}

/// When an index was packed with a platform filter, some of its children are not carried, and
/// registries that check references (CNCF distribution does) refuse it. Says so, and what to do.
fn sparse_hint(index: &Index, sources: &Sources, d: &Digest, repo: &Repo) -> Option<String> {
    let record = index.manifest(d)?;
    let bytes = read_manifest(sources, d).ok()?;
    let (parsed, _) = ferry_format::manifest::Manifest::parse(&bytes, &record.media_type).ok()?;
    let ferry_format::manifest::Manifest::Index { manifests } = parsed else {
        return None;
    };
    (manifests.len() > record.children.len()).then(|| {
        format!(
            ". This index lists {} platforms but was packed with {} (a platform filter), and {} refuses an index whose other platforms are missing. The carried platforms are at {repo}@<child digest>; to carry the tag, pack without the platform filter or push to a registry that accepts sparse indexes",
            manifests.len(),
            record.children.len(),
            repo.host
        )
    })
}

/// Pushes a manifest by digest unless it is there (`known_absent` skips asking). Returns
/// whether it was pushed.
fn push_manifest(
    client: &Client,
    sources: &Sources,
    repo: &Repo,
    d: &Digest,
    media_type: &str,
    known_absent: bool,
) -> Result<bool> {
    if !known_absent && client.manifest_digest(repo, &d.to_string())?.is_some() {
        return Ok(false);
    }
    let bytes = read_manifest(sources, d)?;
    client.put_manifest(repo, &d.to_string(), media_type, &bytes)?;
    Ok(true)
}

/// Points a tag at a manifest unless it already does (a manifest pushed by this run cannot
/// be tagged yet: `fresh_manifest` skips asking). Returns whether it was pushed. The bytes
/// come from the media, or (for a delta that does not carry the manifest) from the target.
fn push_tag(
    client: &Client,
    sources: &Sources,
    repo: &Repo,
    tag: &str,
    d: &Digest,
    media_type: &str,
    fresh_manifest: bool,
) -> Result<bool> {
    if !fresh_manifest && client.manifest_digest(repo, tag)?.as_ref() == Some(d) {
        return Ok(false);
    }
    let bytes = match read_manifest(sources, d) {
        Ok(b) => b,
        Err(_) => client.get_manifest(repo, &d.to_string())?.bytes,
    };
    client.put_manifest(repo, tag, media_type, &bytes)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parsing_and_mapping() {
        let t = Target::parse("127.0.0.1:5000/mirror/ocp").unwrap();
        assert_eq!(t.host, "127.0.0.1:5000");
        assert_eq!(
            t.repository("openshift/release"),
            "mirror/ocp/openshift/release"
        );
        let t = Target::parse("registry.example:8443").unwrap();
        assert_eq!(t.repository("a/b"), "a/b");
        assert!(Target::parse("host/UPPER").is_err());
        assert!(Target::parse("host//x").is_err());
    }
}
