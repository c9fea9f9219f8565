//! Offline verification (see `ferry_format::check`): every entry of every volume read by
//! offset on all cores, every header against its canonical bytes, every blob's blake3 (and
//! sha256 with `--sha256`), padding and end markers, exact sizes.

use std::collections::BTreeSet;
use std::time::Instant;

use ferry_format::check::{check_archive, Depth};
use ferry_format::volume::{human, Problem};

use crate::media::Media;

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
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies all of an opened archive with `jobs` threads (progress on a terminal unless quiet).
pub fn verify(media: &Media, jobs: usize, depth: Depth, quiet: bool) -> Report {
    let started = Instant::now();
    let index = &media.index;
    let entries: u64 = index
        .blobs
        .iter()
        .map(|b| b.parts.len() as u64)
        .sum::<u64>()
        + index.files.len() as u64;
    let progress = ferry_registry::progress::Progress::start(
        "checked",
        entries,
        index.total_volume_bytes(),
        quiet,
    );
    let counters = progress.counters.clone();
    let out = check_archive(
        index,
        &media.dir,
        jobs,
        depth,
        Some((&counters.bytes, &counters.items)),
    );
    drop(progress);
    Report {
        problems: out.problems,
        bad_blobs: out.bad_blobs.into_iter().collect(),
        volumes: index.volumes.len(),
        blobs: index.blobs.len(),
        bytes: out.bytes,
        seconds: started.elapsed().as_secs_f64(),
    }
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

/// What `verify` reports: the archive, what it brings and expects, and what is wrong.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub archive_id: String,
    pub created: String,
    pub tool: String,
    pub stream: Option<ferry_format::index::Stream>,
    pub images: Vec<ImageLine>,
    /// OpenShift releases carried (format 1.2).
    pub releases: Vec<ferry_format::index::Release>,
    /// Operator catalogs carried (format 1.2).
    pub catalogs: Vec<ferry_format::index::Catalog>,
    /// The graph-data image (format 1.2).
    pub graph_data: Option<ferry_format::index::GraphData>,
    /// Blobs and manifests the archive carries.
    pub carried: Count,
    /// Blobs and manifests expected at the site, per parent.
    pub expected: Vec<Expected>,
    pub volumes: usize,
    /// ferry-pack could not pack everything the config asked for (see `failures`).
    pub incomplete: bool,
    pub failures: Vec<ferry_format::index::Failure>,
    pub ok: bool,
    pub problems: Vec<ProblemLine>,
    pub affected_images: Vec<String>,
    pub bytes_verified: u64,
    pub seconds: f64,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageLine {
    pub source: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Count {
    pub count: usize,
    pub bytes: u64,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expected {
    pub parent: String,
    pub kind: String,
    pub stream: Option<ferry_format::index::Stream>,
    pub target: Option<String>,
    pub count: usize,
    pub bytes: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct ProblemLine {
    pub subject: String,
    pub message: String,
}

impl Summary {
    pub fn of(media: &Media, report: &Report) -> Summary {
        let index = &media.index;
        let mut carried = Count::default();
        let mut expected: Vec<Expected> = index
            .parents
            .iter()
            .map(|p| Expected {
                parent: p.id.clone(),
                kind: p.kind.clone(),
                stream: p.stream.clone(),
                target: p.target.clone(),
                count: 0,
                bytes: 0,
            })
            .collect();
        for b in index.blobs.iter().filter(|b| !b.missing) {
            match &b.base {
                None => {
                    carried.count += 1;
                    carried.bytes += b.size;
                }
                Some(id) => {
                    if let Some(e) = expected.iter_mut().find(|e| &e.parent == id) {
                        e.count += 1;
                        e.bytes += b.size;
                    }
                }
            }
        }
        Summary {
            archive_id: index.archive_id.clone(),
            created: index.created.clone(),
            tool: index.tool.clone(),
            stream: index.stream.clone(),
            images: index
                .images
                .iter()
                .map(|i| ImageLine {
                    source: i.source.clone(),
                    digest: i.digest.to_string(),
                    tags: i.tags.clone(),
                    platforms: i.platforms.clone(),
                })
                .collect(),
            releases: index.releases.clone(),
            catalogs: index.catalogs.clone(),
            graph_data: index.graph_data.clone(),
            carried,
            expected,
            volumes: index.volumes.len(),
            incomplete: index.incomplete,
            failures: index.failures.clone(),
            ok: report.ok(),
            problems: report
                .problems
                .iter()
                .map(|p| ProblemLine {
                    subject: p.subject.clone(),
                    message: p.message.clone(),
                })
                .collect(),
            affected_images: affected_images(media, &report.bad_blobs),
            bytes_verified: report.bytes,
            seconds: report.seconds,
        }
    }

    /// The human report.
    pub fn text(&self, key_fingerprint: &str) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "archive {} made {} by {}: {} images, {} volumes",
            self.archive_id,
            self.created,
            self.tool,
            self.images.len(),
            self.volumes
        );
        let _ = writeln!(s, "signature: good (key {key_fingerprint})");
        if let Some(st) = &self.stream {
            let _ = writeln!(s, "stream {:?}, sequence {}", st.name, st.sequence);
        }
        let _ = writeln!(
            s,
            "brings {} blobs and manifests ({})",
            self.carried.count,
            human(self.carried.bytes)
        );
        for r in &self.releases {
            let sigs = if r.signatures.is_empty() {
                format!("signatures {}", r.signature_check)
            } else {
                format!(
                    "{} signature(s) verified at pack time by {}",
                    r.signatures.len(),
                    r.verified_by.join(", ")
                )
            };
            let _ = writeln!(
                s,
                "release {} ({}) {}/{}@{}: {} components, {sigs}{}",
                r.version,
                r.architecture,
                r.registry,
                r.repository,
                r.digest,
                r.components,
                if r.channels.is_empty() {
                    String::new()
                } else {
                    format!(", channels {}", r.channels.join(", "))
                }
            );
        }
        if let Some(g) = &self.graph_data {
            let _ = writeln!(
                s,
                "graph data: {} files from {} in {}/{}@{}",
                g.files, g.url, g.registry, g.repository, g.digest
            );
        }
        for c in &self.catalogs {
            let bundles: usize = c
                .packages
                .iter()
                .flat_map(|p| &p.channels)
                .flat_map(|ch| &ch.bundles)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let _ = writeln!(
                s,
                "catalog {} rebuilt as {}/{}@{}: {} package(s), {bundles} bundle(s)",
                c.source,
                c.registry,
                c.repository,
                c.digest,
                c.packages.len()
            );
            for p in &c.packages {
                let chans: Vec<String> = p
                    .channels
                    .iter()
                    .map(|ch| format!("{} [{}]", ch.name, ch.bundles.join(", ")))
                    .collect();
                let _ = writeln!(
                    s,
                    "  package {} (default channel {}): {}",
                    p.name,
                    p.default_channel,
                    chans.join("; ")
                );
            }
        }
        for f in &self.failures {
            let _ = writeln!(
                s,
                "INCOMPLETE: {} {} was not packed: {}",
                f.kind, f.subject, f.reason
            );
        }
        for e in &self.expected {
            let from = match (&e.stream, &e.target) {
                (Some(st), _) => format!(
                    "archive {} (stream {:?}, sequence {})",
                    e.parent, st.name, st.sequence
                ),
                (None, Some(t)) => format!("the inventory of {t} ({})", e.parent),
                _ => e.parent.clone(),
            };
            let _ = writeln!(
                s,
                "expects {} blobs and manifests ({}) at the site from {from}",
                e.count,
                human(e.bytes)
            );
        }
        if self.ok {
            let _ = writeln!(
                s,
                "OK: {} volumes, {} blobs, {} verified in {:.1}s",
                self.volumes,
                self.carried.count,
                human(self.bytes_verified),
                self.seconds
            );
        } else {
            for p in &self.problems {
                let _ = writeln!(s, "PROBLEM: {}: {}", p.subject, p.message);
            }
            for a in &self.affected_images {
                let _ = writeln!(s, "AFFECTED IMAGE: {a}");
            }
            let _ = writeln!(
                s,
                "FAILED: {} problem(s); {} of {} images affected",
                self.problems.len(),
                self.affected_images.len(),
                self.images.len()
            );
        }
        s
    }
}
