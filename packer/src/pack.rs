//! Writing the archive: lay the planned content out in volumes, fetch blobs in parallel
//! straight to their offsets (verifying each digest while it streams), then write and sign
//! the index. Nothing is staged twice and no blob is held in memory.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ferry_format::hash::{blake3_hex, DualHasher};
use std::collections::HashMap;

use ferry_format::index::{Blob, Failure, File, Image, Index, ManifestRecord, Part, Volume};
use ferry_format::layout::{self, Content, Placement};
use ferry_format::oci::{self, LayoutRef};
use ferry_format::volume::{human, VolumeSet};
use ferry_format::{sign, Digest};
use ferry_registry::progress::{Counters, Progress};
use ferry_registry::{Client, RegistryError};
use rayon::prelude::*;
use ssh_key::PrivateKey;

use crate::base::Bases;
use crate::plan::Plan;

/// How to write an archive.
pub struct PackOptions {
    pub to: PathBuf,
    pub volume_size: u64,
    pub jobs: usize,
    pub sign_key: PrivateKey,
    pub quiet: bool,
    /// What the site already has (a delta carries none of it).
    pub bases: Bases,
    /// Stream name of the archive.
    pub stream: String,
    /// Leave out what fails instead of stopping (the archive is then marked incomplete).
    pub continue_on_error: bool,
}

/// The machine-readable list of what an incomplete archive lacks.
pub const FAILURES_FILE: &str = "failures.json";

/// What was written.
#[derive(Debug)]
pub struct PackSummary {
    pub images: usize,
    pub manifests: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    /// Blobs and manifests left to the bases (delta archives).
    pub from_bases: usize,
    pub volumes: usize,
    pub volume_bytes: u64,
    pub index_bytes: u64,
    pub seconds: f64,
    /// What could not be packed (`--continue-on-error`).
    pub failures: Vec<Failure>,
    pub dir: PathBuf,
}

impl std::fmt::Display for PackSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let based = if self.from_bases > 0 {
            format!(" (+{} expected from the bases)", self.from_bases)
        } else {
            String::new()
        };
        write!(
            f,
            "packed {} images: {} manifests, {} blobs ({}){based} into {} volume(s) of {} total, index {} bytes, in {:.1}s ({:.4}x the carried blob bytes)",
            self.images,
            self.manifests,
            self.blobs,
            human(self.blob_bytes),
            self.volumes,
            human(self.volume_bytes),
            self.index_bytes,
            self.seconds,
            (self.volume_bytes + self.index_bytes) as f64 / self.blob_bytes.max(1) as f64
        )
    }
}

/// What writing a blob yields: its blake3 and the blake3 of each of its parts.
type Stored = (String, Vec<String>);

/// Refuses to write over a finished archive. What an interrupted run left behind is kept for
/// reuse: volumes it had finished go back to `.partial`, so their blobs need no new download.
/// An archive marked incomplete (`--continue-on-error`) is reopened the same way; its content
/// order is returned so that the new layout keeps every blob where it already is.
pub fn prepare_dir(dir: &Path) -> Result<Vec<Digest>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut previous_order = Vec::new();
    let index_path = dir.join(ferry_format::INDEX_FILE);
    if index_path.exists() {
        let old = std::fs::read(&index_path)
            .ok()
            .and_then(|b| Index::from_slice(&b).ok())
            .filter(|i| i.incomplete);
        let Some(old) = old else {
            bail!(
                "{} already holds an archive ({}); pack into an empty directory",
                dir.display(),
                ferry_format::INDEX_FILE
            );
        };
        eprintln!(
            "completing the incomplete archive in {} ({} failure(s) last time)",
            dir.display(),
            old.failures.len()
        );
        let mut placed: Vec<(u32, u64, Digest)> = old
            .blobs
            .iter()
            .filter_map(|b| {
                b.parts
                    .first()
                    .map(|p| (p.volume, p.offset, b.digest.clone()))
            })
            .collect();
        placed.sort();
        previous_order = placed.into_iter().map(|(_, _, d)| d).collect();
        let _ = std::fs::remove_file(dir.join(FAILURES_FILE));
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if layout::is_volume_name(name) {
            let partial = dir.join(format!("{name}{}", ferry_format::volume::PARTIAL_SUFFIX));
            std::fs::rename(&path, &partial)
                .with_context(|| format!("cannot reuse leftover {}", path.display()))?;
        } else if name.starts_with("ferry-index.json") {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove leftover {}", path.display()))?;
        }
    }
    Ok(previous_order)
}

/// Removes `.partial` volumes beyond the `count` the layout has (left by a larger earlier run).
fn remove_extra_partials(dir: &Path, count: usize) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(vol) = name.strip_suffix(ferry_format::volume::PARTIAL_SUFFIX) {
            let keep = (0..count).any(|i| layout::volume_name(i) == vol);
            if layout::is_volume_name(vol) && !keep {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// Writes the archive for `plan` into `opts.to`.
pub fn write_archive(client: &Client, plan: &Plan, opts: &PackOptions) -> Result<PackSummary> {
    let started = Instant::now();
    let previous_order = prepare_dir(&opts.to)?;

    // What goes into the volumes, in order: the layout marker, manifests, blobs, index.json.
    let layout_refs = layout_refs(plan);
    let oci_index = oci::index_json_bytes(&layout_refs);
    let oci_layout = oci::oci_layout_bytes();
    // What the archive carries: everything planned that no base brings.
    let in_base = |d: &Digest| opts.bases.content.contains_key(d) && !plan.inline.contains_key(d);
    let store: Vec<(Digest, u64)> = {
        let mut v: Vec<(Digest, u64)> = plan
            .manifests
            .iter()
            .filter(|(d, _)| !in_base(d))
            .map(|(d, m)| (d.clone(), m.bytes.len() as u64))
            .collect();
        v.extend(
            plan.blobs
                .iter()
                .filter(|(d, _)| !plan.manifests.contains_key(*d) && !in_base(d))
                .map(|(d, b)| (d.clone(), b.size)),
        );
        v.extend(
            plan.inline
                .iter()
                .filter(|(d, _)| !plan.manifests.contains_key(*d) && !plan.blobs.contains_key(*d))
                .map(|(d, b)| (d.clone(), b.len() as u64)),
        );
        v
    };
    // Completing an incomplete archive: what it had keeps its place (and so its bytes).
    let store = if previous_order.is_empty() {
        store
    } else {
        let rank: HashMap<&Digest, usize> = previous_order
            .iter()
            .enumerate()
            .map(|(i, d)| (d, i))
            .collect();
        let mut v = store;
        v.sort_by_key(|(d, _)| rank.get(d).copied().unwrap_or(usize::MAX));
        v
    };
    let based: Vec<Blob> = plan
        .manifests
        .iter()
        .map(|(d, m)| (d, m.bytes.len() as u64))
        .chain(plan.blobs.iter().map(|(d, b)| (d, b.size)))
        .filter(|(d, _)| !plan.inline.contains_key(*d))
        .filter_map(|(d, size)| {
            let (id, blake3) = opts.bases.content.get(d)?;
            Some(Blob {
                digest: d.clone(),
                size,
                blake3: blake3.clone(),
                parts: Vec::new(),
                base: Some(id.clone()),
                missing: false,
            })
        })
        .collect();
    let mut items = vec![Content::File {
        path: oci::OCI_LAYOUT_PATH.into(),
        size: oci_layout.len() as u64,
    }];
    items.extend(store.iter().map(|(d, s)| Content::Blob {
        digest: d.clone(),
        size: *s,
    }));
    items.push(Content::File {
        path: oci::OCI_INDEX_PATH.into(),
        size: oci_index.len() as u64,
    });
    let layout = layout::plan(&items, opts.volume_size)?;
    remove_extra_partials(&opts.to, layout.volume_sizes.len())?;
    let set = VolumeSet::create(&opts.to, &layout)?;
    let placements = &layout.placements;
    let last = placements.len() - 1;

    let mut files = Vec::new();
    for (i, bytes, path) in [
        (0, &oci_layout, oci::OCI_LAYOUT_PATH),
        (last, &oci_index, oci::OCI_INDEX_PATH),
    ] {
        set.write_item(&placements[i], bytes)?;
        let p = &placements[i][0];
        files.push(File {
            path: path.into(),
            size: bytes.len() as u64,
            blake3: blake3_hex(bytes),
            volume: p.volume,
            offset: p.offset,
        });
    }

    // Manifests and inline objects are in memory already: write them directly.
    let mut stored: Vec<Option<Stored>> = vec![None; store.len()];
    for (si, (d, _)) in store.iter().enumerate() {
        let bytes = match plan.manifests.get(d) {
            Some(m) => &m.bytes,
            None => match plan.inline.get(d) {
                Some(b) => b,
                None => continue,
            },
        };
        let parts = set.write_item(&placements[si + 1], bytes)?;
        stored[si] = Some((blake3_hex(bytes), parts));
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()?;

    // Blobs an interrupted run already wrote (same layout) need no new download.
    let found: Vec<(usize, Option<Stored>)> = pool.install(|| {
        (0..store.len())
            .into_par_iter()
            .filter(|i| stored[*i].is_none())
            .map(|si| (si, set.holds(&placements[si + 1], &store[si].0)))
            .collect()
    });
    let mut reused = (0usize, 0u64);
    for (si, f) in found {
        if let Some(v) = f {
            reused.0 += 1;
            reused.1 += store[si].1;
            stored[si] = Some(v);
        }
    }
    if reused.0 > 0 && !opts.quiet {
        eprintln!(
            "resuming: {} blob(s) ({}) are already in the partial volumes",
            reused.0,
            human(reused.1)
        );
    }

    // Blobs: fetched in parallel, largest first so the tail is short.
    let mut todo: Vec<usize> = (0..store.len()).filter(|i| stored[*i].is_none()).collect();
    todo.sort_by_key(|i| std::cmp::Reverse(store[*i].1));
    let total_bytes: u64 = todo.iter().map(|i| store[*i].1).sum();
    let progress = Progress::start("pulled", todo.len() as u64, total_bytes, opts.quiet);
    let results: Vec<(usize, Result<Stored>)> = pool.install(|| {
        todo.par_iter()
            .map(|&si| {
                let (digest, size) = &store[si];
                let from = &plan.blobs[digest].from;
                let r = fetch_blob(
                    client,
                    &set,
                    &placements[si + 1],
                    digest,
                    *size,
                    from,
                    &progress.counters,
                );
                (si, r)
            })
            .collect()
    });
    let line = progress.finish();
    let mut errors = Vec::new();
    let mut failed_blobs: HashMap<Digest, String> = HashMap::new();
    for (si, r) in results {
        match r {
            Ok(v) => stored[si] = Some(v),
            Err(e) => {
                errors.push(format!("{}: {e:#}", store[si].0));
                failed_blobs.insert(store[si].0.clone(), format!("{e:#}"));
            }
        }
    }
    if !errors.is_empty() && !opts.continue_on_error {
        bail!(
            "{} blob(s) could not be fetched (the partial volumes are left in {}; run again to retry):\n  {}",
            errors.len(),
            opts.to.display(),
            errors.join("\n  ")
        );
    }
    if !opts.quiet {
        eprintln!("{line}");
    }
    let finished = set.finish()?;

    let blobs: Vec<Blob> = store
        .iter()
        .enumerate()
        .map(|(si, (digest, size))| {
            let missing = stored[si].is_none();
            let (b3, part_hashes) = stored[si]
                .clone()
                .unwrap_or_else(|| (String::new(), vec![String::new(); placements[si + 1].len()]));
            let ps = &placements[si + 1];
            Blob {
                digest: digest.clone(),
                size: *size,
                blake3: b3,
                missing,
                parts: ps
                    .iter()
                    .zip(part_hashes)
                    .map(|(p, h)| Part {
                        volume: p.volume,
                        offset: p.offset,
                        size: p.size,
                        blake3: (ps.len() > 1 && !missing).then_some(h),
                    })
                    .collect(),
                base: None,
            }
        })
        .collect();
    let from_bases = based.len();
    let mut blobs = blobs;
    blobs.extend(based);
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    blobs.dedup_by(|a, b| a.digest == b.digest);
    let manifests: Vec<ManifestRecord> = plan
        .manifests
        .iter()
        .map(|(d, m)| ManifestRecord {
            digest: d.clone(),
            media_type: m.media_type.clone(),
            children: m.children.clone(),
            blobs: m.blobs.clone(),
        })
        .collect();
    // Images that need a blob that could not be fetched are left out of the index.
    let mut failures = plan.failures.clone();
    let mut images = plan.images.clone();
    if !failed_blobs.is_empty() {
        let needs = |img: &Image, d: &Digest| -> bool {
            let mut stack = vec![&img.digest];
            while let Some(m) = stack.pop() {
                if m == d {
                    return true;
                }
                if let Some(pm) = plan.manifests.get(m) {
                    stack.extend(pm.children.iter());
                    if pm.blobs.contains(d) {
                        return true;
                    }
                }
            }
            false
        };
        for (d, why) in &failed_blobs {
            let affected: Vec<String> = images
                .iter()
                .filter(|i| needs(i, d))
                .map(|i| i.source.clone())
                .collect();
            failures.push(Failure {
                kind: "blob".into(),
                subject: d.to_string(),
                reason: why.clone(),
                images: affected,
            });
        }
        images.retain(|i| !failed_blobs.keys().any(|d| needs(i, d)));
    }
    // A catalog whose rebuilt image was left out goes with it.
    let mut catalogs = plan.catalogs.clone();
    catalogs.retain(|c| {
        let kept = images.iter().any(|i| i.digest == c.digest);
        if !kept {
            failures.push(Failure {
                kind: "catalog".into(),
                subject: c.source.clone(),
                reason: "its rebuilt image could not be packed".into(),
                images: vec![],
            });
        }
        kept
    });
    let graph_data = plan
        .graph_data
        .clone()
        .filter(|g| images.iter().any(|i| i.digest == g.digest));
    // A release whose image was left out goes with it.
    let mut releases = plan.releases.clone();
    releases.retain(|r| {
        let kept = images.iter().any(|i| i.digest == r.digest);
        if !kept {
            failures.push(Failure {
                kind: "release".into(),
                subject: format!("{} ({})", r.version, r.architecture),
                reason: "its release image could not be packed".into(),
                images: vec![],
            });
        }
        kept
    });
    failures.sort_by(|a, b| (&a.kind, &a.subject).cmp(&(&b.kind, &b.subject)));
    let index = Index {
        format: ferry_format::FORMAT.into(),
        format_version: format!(
            "{}.{}",
            ferry_format::FORMAT_MAJOR,
            ferry_format::FORMAT_MINOR
        ),
        archive_id: archive_id()?,
        created: ferry_format::time::now_rfc3339(),
        tool: format!("ferry-pack {}", env!("CARGO_PKG_VERSION")),
        volume_size: opts.volume_size,
        volumes: finished
            .into_iter()
            .map(|(name, size, blake3)| Volume { name, size, blake3 })
            .collect(),
        images,
        manifests,
        blobs,
        files,
        stream: Some(crate::base::stream_of(&opts.stream, &opts.bases)),
        parents: opts.bases.parents.clone(),
        incomplete: !failures.is_empty(),
        failures: failures.clone(),
        releases,
        catalogs,
        graph_data,
    };
    index
        .validate()
        .context("internal error: the index written does not validate")?;
    let bytes = index.to_vec();
    let signature = sign::sign(&bytes, &opts.sign_key)?;
    if !failures.is_empty() {
        let list = serde_json::to_vec_pretty(&failures)?;
        write_atomic(&opts.to.join(FAILURES_FILE), &list)?;
    }
    write_atomic(
        &opts.to.join(ferry_format::SIGNATURE_FILE),
        signature.as_bytes(),
    )?;
    write_atomic(&opts.to.join(ferry_format::INDEX_FILE), &bytes)?;
    Ok(PackSummary {
        images: index.images.len(),
        manifests: index.manifests.len(),
        blobs: index.blobs.len() - from_bases,
        blob_bytes: index.total_blob_bytes(),
        from_bases,
        volumes: index.volumes.len(),
        volume_bytes: index.total_volume_bytes(),
        index_bytes: bytes.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
        failures,
        dir: opts.to.clone(),
    })
}

/// The references written to `v2/index.json`: one per tag, or one by digest for untagged images.
fn layout_refs(plan: &Plan) -> Vec<LayoutRef> {
    let mut refs = Vec::new();
    for img in &plan.images {
        let size = plan.manifests[&img.digest].bytes.len() as u64;
        let base = format!("{}/{}", img.registry, img.repository);
        let names: Vec<String> = if img.tags.is_empty() {
            vec![format!("{base}@{}", img.digest)]
        } else {
            img.tags.iter().map(|t| format!("{base}:{t}")).collect()
        };
        for name in names {
            refs.push(LayoutRef {
                name,
                digest: img.digest.clone(),
                media_type: img.media_type.clone(),
                size,
            });
        }
    }
    refs
}

/// The whole-blob hashes of a download: inline for small blobs, on helper threads for large
/// ones (so that sha256 + blake3 of a multi-GiB layer run beside its download, not in it).
enum WholeHasher {
    Inline(Box<DualHasher>),
    Offload(ferry_format::hash::OffloadHasher),
}

impl WholeHasher {
    fn for_size(size: u64) -> WholeHasher {
        if size >= 32 * 1024 * 1024 {
            WholeHasher::Offload(ferry_format::hash::OffloadHasher::new())
        } else {
            WholeHasher::Inline(Box::default())
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            WholeHasher::Inline(h) => h.update(bytes),
            WholeHasher::Offload(h) => h.update(bytes.to_vec()),
        }
    }

    fn finish(self) -> ferry_format::Hashes {
        match self {
            WholeHasher::Inline(h) => h.finish(),
            WholeHasher::Offload(h) => h.finish(),
        }
    }
}

/// Downloads one blob into its placements, hashing as it streams. A dropped connection is
/// resumed from the last byte received (HTTP `Range`) when the registry allows it; other
/// transient failures are retried with backoff. Only a body whose sha256 matches is accepted.
fn fetch_blob(
    client: &Client,
    set: &VolumeSet,
    placements: &[Placement],
    digest: &Digest,
    size: u64,
    from: &ferry_registry::Repo,
    counters: &Counters,
) -> Result<Stored> {
    let what = format!("blob {digest} from {from}");
    let url = format!("{from}/blobs/{digest}");
    let mut writer = set.writer(placements);
    let mut hasher = WholeHasher::for_size(size);
    let mut got = 0u64;
    let mut attempt = 0u32;
    let mut buf = vec![0u8; if size >= 32 << 20 { 1 << 20 } else { 256 << 10 }];
    // Each pass of the loop reads one body; `Err` from a pass is a transient failure to retry.
    loop {
        let pass = (|| -> std::result::Result<bool, RegistryError> {
            let body = client.get_blob_from(from, digest, got)?;
            if body.offset != got {
                // The registry sent the whole blob again: start over.
                counters.bytes.fetch_sub(got, Ordering::Relaxed);
                writer = set.writer(placements);
                hasher = WholeHasher::for_size(size);
                got = 0;
            }
            let remaining = size - got;
            if let Some(len) = body.size {
                if len != remaining {
                    return Err(RegistryError::Transport {
                        method: "GET",
                        url: url.clone(),
                        detail: format!(
                            "the registry announces {len} bytes from offset {got}, the manifest says {remaining}"
                        ),
                    });
                }
            }
            let mut reader = body.reader.take(remaining + 1);
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(RegistryError::Transport {
                            method: "GET",
                            url: url.clone(),
                            detail: format!("connection lost after {got} of {size} bytes: {e}"),
                        })
                    }
                };
                if got + n as u64 > size {
                    return Err(RegistryError::Protocol(format!(
                        "{from} sends more than the {size} bytes the manifest gives for blob {digest}"
                    )));
                }
                writer.write_all(&buf[..n]).map_err(|e| {
                    RegistryError::Config(format!("writing to the archive failed: {e}"))
                })?;
                hasher.update(&buf[..n]);
                got += n as u64;
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            if got < size {
                return Err(RegistryError::Transport {
                    method: "GET",
                    url: url.clone(),
                    detail: format!("body ended after {got} of {size} bytes"),
                });
            }
            Ok(true)
        })();
        match pass {
            Ok(_) => break,
            Err(e) if client.backoff(&what, attempt, &e) => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let part_hashes = writer.finish()?;
    let hashes = hasher.finish();
    if hashes.sha256 != *digest {
        return Err(RegistryError::DigestMismatch {
            host: from.host.clone(),
            repo: from.name.clone(),
            what: "blob".into(),
            expected: digest.clone(),
            found: hashes.sha256,
        }
        .into());
    }
    counters.items.fetch_add(1, Ordering::Relaxed);
    Ok((hashes.blake3, part_hashes))
}

fn archive_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| anyhow::anyhow!("no randomness for the archive id: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
}

/// Images of a plan, for listing.
pub fn describe(images: &[Image]) -> Vec<String> {
    images
        .iter()
        .map(|i| {
            let plats = if i.platforms.is_empty() {
                String::new()
            } else {
                format!(" [{}]", i.platforms.join(", "))
            };
            format!("{} -> {}{plats}", i.source, i.digest)
        })
        .collect()
}
