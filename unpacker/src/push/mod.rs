//! Pushing an archive into the target registry, straight from the media (no extraction).
//!
//! Phases, each in its module: [`plan`] (per repository: manifests children first, and blobs,
//! from the index alone), [`preflight`] (a delta's parents arrived; what it does not carry is at
//! the target or in `--base-media`), [`blobs`] (upload or mount, verified while streaming;
//! [`selfmount`]: whether one request can both check for a blob and open its upload),
//! [`manifests`] (manifests once all they reference is there, an image's under its first tag,
//! then the other tags; signatures and other attachments after their images), [`referrers`]
//! (the tag schema's referrers indexes, for a target without the referrers API), and the record
//! of the archive in the target's `ferry-state` ([`crate::state`]). What is already at the
//! target is skipped, so an interrupted push re-run finishes the job without re-uploading.

pub mod blobs;
pub mod manifests;
pub mod plan;
pub mod preflight;
pub mod referrers;
pub mod report;
pub mod selfmount;

use std::time::Instant;

use anyhow::{bail, Result};
use ferry_format::archive::ArchiveSet;
use ferry_registry::Client;

pub use report::{FailedImage, NotPushed, Phase, PushReport, PushedImage};

use crate::state;
use crate::target::Target;

/// Push settings.
pub struct PushOptions {
    pub target: Target,
    pub jobs: usize,
    pub quiet: bool,
    /// Push a delta even if the target has no record of its parent archive.
    pub allow_gap: bool,
}

/// Times the phases of a push.
struct Clock {
    mark: Instant,
    phases: Vec<Phase>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            mark: Instant::now(),
            phases: Vec::new(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        self.phases.push(Phase {
            name,
            seconds: self.mark.elapsed().as_secs_f64(),
        });
        self.mark = Instant::now();
    }
}

/// Pushes everything the archive holds. Images whose content is damaged or missing are left
/// out (reported in `not_pushed`); everything else is pushed.
pub fn push(archives: &ArchiveSet, client: &Client, opts: &PushOptions) -> Result<PushReport> {
    let started = Instant::now();
    let mut clock = Clock::start();
    let index = archives.index();
    let work = plan::plan_repos(index, &opts.target)?;
    client.ping(&opts.target.host)?;
    for line in crate::repair::prepare_lost(archives) {
        eprintln!("{line}");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()?;
    let stream_state = check_parents(archives, client, opts)?;
    let origins = pool.install(|| preflight::preflight(client, archives, &work, &opts.target))?;
    clock.lap("checks");

    let tasks = plan::blob_tasks(index, &work);
    // The record's blobs go up beside the archive's; the record itself waits for the end.
    let to_record = stream_state
        .as_ref()
        .filter(|st| !st.has(&index.archive_id));
    let index_bytes = archives.primary().index_bytes();
    let (blobs, staged) = std::thread::scope(|s| {
        let staging =
            to_record.map(|_| s.spawn(|| state::stage(client, &opts.target, index_bytes)));
        let blobs =
            pool.install(|| blobs::push_all(client, archives, &tasks, &origins, opts.quiet));
        (blobs, staging.and_then(|h| h.join().ok()))
    });
    clock.lap("blobs");
    let manifests = pool.install(|| manifests::push_all(client, archives, &work, &blobs));
    clock.lap("manifests");
    let (mut pushed, mut not_pushed, tags_pushed) =
        pool.install(|| manifests::tag_all(client, archives, &opts.target, &manifests));
    let (unlinked, referrer_indexes) =
        referrers::link_all(client, archives, &opts.target, &mut pushed);
    not_pushed.extend(unlinked);

    let mut report = PushReport {
        archive_id: index.archive_id.clone(),
        pushed,
        not_pushed,
        blobs: blobs.counts,
        manifests: manifests.counts,
        tags_pushed,
        referrer_indexes,
        ..PushReport::default()
    };
    // Record the archive at the target once all of it arrived.
    if stream_state.is_some() && report.complete() {
        if let Some(st) = to_record {
            // Staged above; staged again if that failed (it may have been a passing fault).
            let staged = match staged {
                Some(Ok(staged)) => staged,
                _ => state::stage(client, &opts.target, index_bytes)?,
            };
            state::record(client, &opts.target, st, index, &staged)?;
        }
        report.recorded = index.stream.clone();
    }
    clock.lap("tags and record");
    report.phases = clock.phases;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A delta's parent archives (same stream) must have arrived, or be given with `--base-media`,
/// before anything is changed. Returns the stream's state at the target.
fn check_parents(
    archives: &ArchiveSet,
    client: &Client,
    opts: &PushOptions,
) -> Result<Option<state::StreamState>> {
    let index = archives.index();
    let Some(stream) = &index.stream else {
        return Ok(None);
    };
    let st = state::read(client, &opts.target, &stream.name)?;
    let given: Vec<&str> = archives
        .bases()
        .iter()
        .map(|b| b.index().archive_id.as_str())
        .collect();
    for gap in preflight::missing_parents(index, &st, &given, &opts.target) {
        if !opts.allow_gap {
            bail!("{gap}, or pass --allow-gap if its content reached the target another way");
        }
        eprintln!("warning: {gap}; going on because of --allow-gap");
    }
    Ok(Some(st))
}
