//! Writing the archive: the planned content laid out in volumes ([`contents`]), blobs fetched
//! in parallel straight to their offsets, verifying each digest while it streams ([`fetch`]),
//! then the index built ([`assemble`]) and sealed. Nothing is staged twice and no blob is held
//! in memory. The volume writing itself is `ferry_format::archive::write`. [`media`] works out,
//! before anything is fetched, exactly what the archive will be and which media it fills.

mod assemble;
mod contents;
mod fetch;
pub mod media;
mod ranged;

pub use ranged::Split;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use ferry_format::archive::write::{self, ArchiveWriter};
use ferry_format::index::{Failure, Image};
use ferry_format::sign::PrivateKey;
use ferry_registry::Client;
use ferry_term::human;
use serde::Serialize;

use crate::base::Bases;
use crate::plan::Plan;

pub use ferry_format::archive::write::FAILURES_FILE;

/// How to write an archive.
pub struct PackOptions {
    pub to: PathBuf,
    pub volume_size: u64,
    /// Parity volumes to write beside the data volumes.
    pub parity: write::Parity,
    pub jobs: usize,
    /// When one large blob is fetched over several connections.
    pub split: Split,
    pub sign_key: PrivateKey,
    pub quiet: bool,
    /// What the site already has (a delta carries none of it).
    pub bases: Bases,
    /// Stream name of the archive.
    pub stream: String,
    /// Leave out what fails instead of stopping (the archive is then marked incomplete).
    pub continue_on_error: bool,
}

/// What was written (`ferry-pack --json` prints it).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackSummary {
    pub archive_id: String,
    pub images: usize,
    pub manifests: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    /// Blobs and manifests left to the bases (delta archives).
    pub from_bases: usize,
    /// Blobs an interrupted run had already written, and their bytes.
    pub reused: usize,
    pub reused_bytes: u64,
    pub volumes: usize,
    pub volume_bytes: u64,
    /// Parity volumes (`--parity`) and their bytes.
    pub parity_volumes: usize,
    pub parity_bytes: u64,
    pub index_bytes: u64,
    pub seconds: f64,
    /// Where the time went.
    pub phases: Phases,
    /// What could not be packed (`--continue-on-error`).
    pub failures: Vec<Failure>,
    pub dir: PathBuf,
}

/// Seconds spent in each phase of writing (`--json`), to tell a slow source from slow media.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phases {
    /// Laying out the volumes and writing what is in memory (manifests, layout files).
    pub layout: f64,
    /// Hashing what an interrupted run left in the partial volumes.
    pub reuse: f64,
    /// Downloading, hashing and writing the blobs.
    pub fetch: f64,
    /// Syncing the volumes to the media, hashing them, and parity.
    pub volumes: f64,
    /// Building, writing and signing the index.
    pub index: f64,
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
        )?;
        if self.parity_volumes > 0 {
            write!(
                f,
                "; {} parity volume(s) of {} total: any {} lost or damaged volume(s) can be rebuilt",
                self.parity_volumes,
                human(self.parity_bytes),
                self.parity_volumes
            )?;
        }
        Ok(())
    }
}

/// Writes the archive for `plan` into `opts.to`. The plan is spent on the way: what is in the
/// volumes is let go of as soon as it is there, so that a catalog-scale plan does not hold
/// every manifest's bytes while the blobs download and the index is built.
pub fn write_archive(client: &Client, mut plan: Plan, opts: &PackOptions) -> Result<PackSummary> {
    let started = Instant::now();
    let refs = contents::layout_refs(&plan);
    let expected = contents::expected(&plan, &opts.bases);
    let writer = ArchiveWriter::create(
        &opts.to,
        contents::objects(&plan, &opts.bases),
        &refs,
        opts.volume_size,
    )?;
    drop(refs);
    if let Some(old) = writer.completing() {
        eprintln!(
            "completing the incomplete archive in {} ({} failure(s) last time)",
            opts.to.display(),
            old.failures.len()
        );
    }
    write_in_memory(&writer, &mut plan)?;
    let mut phases = Phases::default();
    let mut lap = Lap(started);
    phases.layout = lap.next();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()?;
    // Blobs an interrupted run already wrote (same layout) need no new download.
    let (reused, reused_bytes) = pool.install(|| writer.reuse());
    if reused > 0 && !opts.quiet {
        eprintln!(
            "resuming: {reused} blob(s) ({}) are already in the partial volumes",
            human(reused_bytes)
        );
    }
    phases.reuse = lap.next();
    let (failed, line) =
        pool.install(|| fetch::fetch_all(client, &writer, &plan, opts.split, opts.quiet));
    phases.fetch = lap.next();
    // Where each blob comes from is no longer needed.
    plan.blobs = Default::default();
    if !failed.is_empty() && !opts.continue_on_error {
        let list: Vec<String> = failed.iter().map(|(d, e)| format!("{d}: {e}")).collect();
        bail!(
            "{} blob(s) could not be fetched (the partial volumes are left in {}; run again to retry):\n  {}",
            failed.len(),
            opts.to.display(),
            list.join("\n  ")
        );
    }
    if !opts.quiet {
        eprintln!("{line}");
    }
    let written = writer.finish(opts.parity)?;
    phases.volumes = lap.next();
    let from_bases = expected.len();
    let settings = assemble::Settings {
        volume_size: opts.volume_size,
        stream: &opts.stream,
        bases: &opts.bases,
    };
    let index = assemble::index(plan, written, expected, &failed, &settings)?;
    let index_bytes = write::seal(&opts.to, &index, &opts.sign_key)?;
    phases.index = lap.next();
    Ok(PackSummary {
        archive_id: index.archive_id.clone(),
        images: index.images.len(),
        manifests: index.manifests.len(),
        blobs: index.blobs.len() - from_bases,
        blob_bytes: index.total_blob_bytes(),
        from_bases,
        reused,
        reused_bytes,
        volumes: index.volumes.len(),
        volume_bytes: index.total_volume_bytes(),
        parity_volumes: index.parity.as_ref().map_or(0, |p| p.volumes.len()),
        parity_bytes: index
            .parity
            .as_ref()
            .map_or(0, |p| p.volumes.iter().map(|v| v.size).sum()),
        index_bytes,
        seconds: started.elapsed().as_secs_f64(),
        phases,
        failures: index.failures,
        dir: opts.to.clone(),
    })
}

/// Seconds since the last call.
struct Lap(Instant);

impl Lap {
    fn next(&mut self) -> f64 {
        let now = Instant::now();
        let s = now.duration_since(self.0).as_secs_f64();
        self.0 = now;
        s
    }
}

/// Manifests and objects the packer made are in memory already: written directly, then let
/// go of (the manifests keep their records for the index).
fn write_in_memory(writer: &ArchiveWriter, plan: &mut Plan) -> Result<()> {
    for (i, o) in writer.objects().iter().enumerate() {
        let bytes = match (plan.manifests.get(&o.digest), plan.inline.get(&o.digest)) {
            (Some(m), _) => &m.bytes,
            (None, Some(b)) => b,
            (None, None) => continue,
        };
        writer.write_small(i, bytes)?;
    }
    plan.inline = Default::default();
    for m in plan.manifests.values_mut() {
        m.bytes = Vec::new();
    }
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
