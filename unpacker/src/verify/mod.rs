//! Offline verification (see `ferry_format::check`): every entry of every volume read by
//! offset on all cores, every header against its canonical bytes, every blob's blake3 (and
//! sha256 with `--sha256`), padding and end markers, exact sizes. [`Summary`] says what the
//! archive brings and expects, and what is wrong.

mod summary;

use std::collections::BTreeSet;
use std::time::Instant;

use ferry_format::archive::{Archive, Assessment, VolumeState};
use ferry_format::check::{check_archive, Depth};
use ferry_format::volume::Problem;

pub use summary::{Count, Expected, ImageLine, ProblemLine, Summary};

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Indexes into `index.blobs` of blobs that are damaged, unreadable or missing.
    pub bad_blobs: BTreeSet<usize>,
    pub volumes: usize,
    pub blobs: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// With parity volumes: their state, and whether the damage found can be rebuilt.
    pub parity: Option<ParityStatus>,
}

/// The parity volumes' state and what they can rebuild.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParityStatus {
    pub volumes: usize,
    pub intact: usize,
    /// Parity volumes that are not intact.
    pub bad_parity: Vec<VolumeLine>,
    /// Data volumes that are not intact (checked whole, when the check found problems).
    pub bad_data: Vec<VolumeLine>,
    /// Whether every bad data volume can be rebuilt from the intact volumes.
    pub recoverable: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VolumeLine {
    pub name: String,
    pub state: String,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies all of an opened archive with `jobs` threads (progress on a terminal unless quiet).
pub fn verify(archive: &Archive, jobs: usize, depth: Depth, quiet: bool) -> Report {
    let started = Instant::now();
    let index = archive.index();
    let entries: u64 = index
        .blobs
        .iter()
        .map(|b| b.parts.len() as u64)
        .sum::<u64>()
        + index.files.len() as u64;
    let progress =
        ferry_term::Progress::start("checked", entries, index.total_volume_bytes(), quiet);
    let counters = progress.counters.clone();
    let out = check_archive(
        index,
        archive.dir(),
        jobs,
        depth,
        Some((&counters.bytes, &counters.items)),
    );
    drop(progress);
    let parity = parity_status(archive, !out.problems.is_empty());
    Report {
        parity,
        problems: out.problems,
        bad_blobs: out.bad_blobs.into_iter().collect(),
        volumes: index.volumes.len(),
        blobs: index.blobs.len(),
        bytes: out.bytes,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// With parity volumes: hashes them whole, and when the check found problems, the data volumes
/// too (to name the ones a rebuild must replace).
fn parity_status(archive: &Archive, damaged: bool) -> Option<ParityStatus> {
    let index = archive.index();
    let record = index.parity.as_ref()?;
    let assessment = if damaged {
        Assessment::of(index, archive.dir())
    } else {
        Assessment {
            data: vec![VolumeState::Intact; index.volumes.len()],
            parity: record
                .volumes
                .iter()
                .map(|v| VolumeState::of(archive.dir(), v))
                .collect(),
        }
    };
    let lines = |bad: Vec<usize>, states: &[VolumeState], names: &[ferry_format::index::Volume]| {
        bad.into_iter()
            .map(|i| VolumeLine {
                name: names[i].name.clone(),
                state: states[i].to_string(),
            })
            .collect()
    };
    Some(ParityStatus {
        volumes: record.volumes.len(),
        intact: record.volumes.len() - assessment.bad_parity().len(),
        bad_parity: lines(assessment.bad_parity(), &assessment.parity, &record.volumes),
        bad_data: lines(assessment.bad_data(), &assessment.data, &index.volumes),
        recoverable: assessment.recoverable(),
    })
}

/// The images that cannot be pushed because a blob they need is bad, by source reference.
pub fn affected_images(archive: &Archive, bad_blobs: &BTreeSet<usize>) -> Vec<String> {
    let index = archive.index();
    let bad: BTreeSet<&ferry_format::Digest> =
        bad_blobs.iter().map(|i| &index.blobs[*i].digest).collect();
    index
        .images
        .iter()
        .filter(|img| index.needs_any(&img.digest, &bad))
        .map(|img| img.source.clone())
        .collect()
}
