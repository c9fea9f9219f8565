//! Offline verification: every volume in one sequential pass each (volumes in parallel), every
//! header against its canonical bytes, every blob's sha256 and blake3, and split blobs whole.

use std::collections::BTreeSet;
use std::io;
use std::time::Instant;

use ferry_format::hash::DualHasher;
use ferry_format::layout;
use ferry_format::volume::{verify_volume, PartsReader, Problem};
use rayon::prelude::*;

use crate::media::Media;

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Indexes into `index.blobs` of blobs that are damaged or unreadable.
    pub bad_blobs: BTreeSet<usize>,
    pub volumes: usize,
    pub blobs: usize,
    pub bytes: u64,
    pub seconds: f64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies all of an opened archive.
pub fn verify(media: &Media, jobs: usize) -> Report {
    let started = Instant::now();
    let index = &media.index;
    let entries = layout::entries(index);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .expect("thread pool");
    let reports: Vec<_> = pool.install(|| {
        (0..index.volumes.len())
            .into_par_iter()
            .map(|vi| verify_volume(index, &entries[vi], vi, &media.volume_path(vi)))
            .collect()
    });
    let mut report = Report {
        volumes: index.volumes.len(),
        blobs: index.blobs.len(),
        ..Report::default()
    };
    for r in reports {
        report.bytes += r.bytes_read;
        report.problems.extend(r.problems);
        report.bad_blobs.extend(r.bad_blobs);
    }
    // Split blobs: each part was checked with its blake3; now check the whole blob's digests.
    let files = media.open_volumes();
    let split: Vec<usize> = (0..index.blobs.len())
        .filter(|i| index.blobs[*i].parts.len() > 1 && !report.bad_blobs.contains(i))
        .collect();
    let split_results: Vec<(usize, Option<Problem>)> = pool.install(|| {
        split
            .par_iter()
            .map(|&bi| {
                let b = &index.blobs[bi];
                let mut h = DualHasher::new();
                let r = io::copy(&mut PartsReader::new(&files, &b.parts), &mut h);
                let problem = match r {
                    Err(e) => Some(format!("cannot read its parts: {e}")),
                    Ok(_) => {
                        let got = h.finish();
                        if got.sha256 != b.digest {
                            Some(format!("joined parts have digest {}", got.sha256))
                        } else if got.blake3 != b.blake3 {
                            Some(format!("joined parts have blake3 {}", got.blake3))
                        } else {
                            None
                        }
                    }
                };
                (
                    bi,
                    problem.map(|message| Problem {
                        subject: b.digest.to_string(),
                        message,
                    }),
                )
            })
            .collect()
    });
    for (bi, p) in split_results {
        if let Some(p) = p {
            report.bad_blobs.insert(bi);
            report.problems.push(p);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// The images that cannot be pushed because a blob they need is bad, by source reference.
pub fn affected_images(media: &Media, bad_blobs: &BTreeSet<usize>) -> Vec<String> {
    let index = &media.index;
    let bad: BTreeSet<&ferry_format::Digest> =
        bad_blobs.iter().map(|i| &index.blobs[*i].digest).collect();
    index
        .images
        .iter()
        .filter(|img| {
            let mut stack = vec![&img.digest];
            while let Some(d) = stack.pop() {
                if bad.contains(d) {
                    return true;
                }
                if let Some(m) = index.manifest(d) {
                    stack.extend(m.children.iter());
                    if m.blobs.iter().any(|b| bad.contains(b)) {
                        return true;
                    }
                }
            }
            false
        })
        .map(|img| img.source.clone())
        .collect()
}
