//! What `verify` reports, as data (`--json`) and as text.

use ferry_format::archive::Archive;
use ferry_format::index::{
    Attachment, AttachmentKind, Catalog, Failure, GraphData, Image, Index, ParentKind, Release,
    Samples, SigstoreKey, Stream,
};
use ferry_term::human;
use std::fmt::Write;

use super::{affected_images, ParityStatus, Report};

/// What `verify` reports: the archive, what it brings and expects, and what is wrong.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub archive_id: String,
    pub created: String,
    pub tool: String,
    pub stream: Option<Stream>,
    pub images: Vec<ImageLine>,
    /// OpenShift releases carried (format 1.2).
    pub releases: Vec<Release>,
    /// Operator catalogs carried (format 1.2).
    pub catalogs: Vec<Catalog>,
    /// The graph-data image (format 1.2).
    pub graph_data: Option<GraphData>,
    /// The samples operator's image streams (format 1.5).
    pub samples: Option<Samples>,
    /// Signatures and other attachments carried (format 1.3).
    pub attachments: Vec<Attachment>,
    /// The sigstore keys that checked signatures at pack time (format 1.3).
    pub sigstore_keys: Vec<SigstoreKey>,
    /// Blobs and manifests the archive carries.
    pub carried: Count,
    /// Blobs and manifests expected at the site, per parent.
    pub expected: Vec<Expected>,
    pub volumes: usize,
    /// ferry-pack could not pack everything the config asked for (see `failures`).
    pub incomplete: bool,
    pub failures: Vec<Failure>,
    pub ok: bool,
    pub problems: Vec<ProblemLine>,
    pub affected_images: Vec<String>,
    /// Parity volumes (format 1.3): their state, and whether the damage can be rebuilt.
    pub parity: Option<ParityStatus>,
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
    /// A signature, attestation, SBOM or referrer of another image (format 1.3).
    pub attachment: bool,
    /// Signatures of its top manifest carried, and how many verified at pack time.
    pub signatures: usize,
    pub verified_signatures: usize,
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
    pub kind: ParentKind,
    pub stream: Option<Stream>,
    pub target: Option<String>,
    pub count: usize,
    pub bytes: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct ProblemLine {
    pub subject: String,
    pub message: String,
}

fn image_line(index: &Index, i: &Image) -> ImageLine {
    let signatures: Vec<&Attachment> = index
        .attachments_of(i)
        .filter(|a| a.kind == AttachmentKind::Signature)
        .collect();
    ImageLine {
        source: i.source.clone(),
        digest: i.digest.to_string(),
        tags: i.tags.clone(),
        platforms: i.platforms.clone(),
        attachment: index.is_attachment(i),
        signatures: signatures.len(),
        verified_signatures: signatures.iter().filter(|a| a.verified()).count(),
    }
}

impl Summary {
    pub fn of(archive: &Archive, report: &Report) -> Summary {
        let index = archive.index();
        let mut carried = Count::default();
        let mut expected: Vec<Expected> = index
            .parents
            .iter()
            .map(|p| Expected {
                parent: p.id.clone(),
                kind: p.kind,
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
            images: index.images.iter().map(|i| image_line(index, i)).collect(),
            releases: index.releases.clone(),
            catalogs: index.catalogs.clone(),
            graph_data: index.graph_data.clone(),
            samples: index.samples.clone(),
            attachments: index.attachments.clone(),
            sigstore_keys: index.sigstore_keys.clone(),
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
            affected_images: affected_images(archive, &report.bad_blobs),
            parity: report.parity.clone(),
            bytes_verified: report.bytes,
            seconds: report.seconds,
        }
    }

    /// The human report.
    pub fn text(&self, key_fingerprint: &str) -> String {
        let mut s = String::new();
        self.write_head(&mut s, key_fingerprint);
        self.write_releases(&mut s);
        self.write_catalogs(&mut s);
        self.write_samples(&mut s);
        self.write_signatures(&mut s);
        self.write_gaps(&mut s);
        self.write_verdict(&mut s);
        s
    }

    fn write_head(&self, s: &mut String, key_fingerprint: &str) {
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
    }

    fn write_releases(&self, s: &mut String) {
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
            let channels = if r.channels.is_empty() {
                String::new()
            } else {
                format!(", channels {}", r.channels.join(", "))
            };
            let _ = writeln!(
                s,
                "release {} ({}) {}/{}@{}: {} components, {sigs}{channels}",
                r.version, r.architecture, r.registry, r.repository, r.digest, r.components,
            );
        }
        if let Some(g) = &self.graph_data {
            let _ = writeln!(
                s,
                "graph data: {} files from {} in {}/{}@{}",
                g.files, g.url, g.registry, g.repository, g.digest
            );
        }
    }

    fn write_samples(&self, s: &mut String) {
        let Some(samples) = &self.samples else {
            return;
        };
        let mirrored: Vec<&str> = samples
            .image_streams
            .iter()
            .filter(|i| i.mirrored)
            .map(|i| i.name.as_str())
            .collect();
        let _ = writeln!(
            s,
            "samples: {} image stream(s) mirrored ({}), {} skipped",
            mirrored.len(),
            mirrored.join(", "),
            samples.skipped().len()
        );
        for i in samples.image_streams.iter().filter(|i| !i.mirrored) {
            let _ = writeln!(
                s,
                "  skipped {}: {}",
                i.name,
                i.reason.as_deref().unwrap_or("not mirrored")
            );
        }
    }

    fn write_catalogs(&self, s: &mut String) {
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
    }

    /// Which images carry signatures, and which were checked at pack time.
    fn write_signatures(&self, s: &mut String) {
        let images: Vec<&ImageLine> = self.images.iter().filter(|i| !i.attachment).collect();
        let signed = images.iter().filter(|i| i.signatures > 0).count();
        let verified = images.iter().filter(|i| i.verified_signatures > 0).count();
        let keys: Vec<&str> = self.sigstore_keys.iter().map(|k| k.id.as_str()).collect();
        let checked = if keys.is_empty() {
            "none checked at pack time (no --sigstore-key)".to_string()
        } else {
            format!("{verified} verified at pack time by {}", keys.join(", "))
        };
        let _ = writeln!(
            s,
            "signatures: {signed} of {} images signed, {checked}",
            images.len()
        );
        let others = self.attachments.len()
            - self
                .attachments
                .iter()
                .filter(|a| a.kind == AttachmentKind::Signature)
                .count();
        if others > 0 {
            let _ = writeln!(
                s,
                "attachments: {others} attestation(s), SBOM(s) and referrer(s)"
            );
        }
        let unsigned: Vec<&&ImageLine> = images.iter().filter(|i| i.signatures == 0).collect();
        for i in unsigned.iter().take(10) {
            let _ = writeln!(s, "  not signed: {}", i.source);
        }
        if unsigned.len() > 10 {
            let _ = writeln!(
                s,
                "  ... and {} more not signed (--json lists all)",
                unsigned.len() - 10
            );
        }
    }

    /// What the archive lacks: packing failures, and what it expects the site to hold.
    fn write_gaps(&self, s: &mut String) {
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
    }

    /// The parity volumes, and what they can do for the damage found.
    fn write_parity(&self, s: &mut String) {
        let Some(p) = &self.parity else {
            return;
        };
        let _ = writeln!(
            s,
            "parity: {} of {} parity volume(s) intact",
            p.intact, p.volumes
        );
        for v in &p.bad_parity {
            let _ = writeln!(s, "WARNING: parity volume {}: {}", v.name, v.state);
        }
        for v in &p.bad_data {
            let _ = writeln!(s, "volume {}: {}", v.name, v.state);
        }
        if !p.bad_data.is_empty() && p.recoverable {
            let _ = writeln!(
                s,
                "RECOVERABLE: the {} volume(s) above can be rebuilt from the intact ones: run `ferry-unpack repair` (or push or serve as is: they are rebuilt as they are read)",
                p.bad_data.len()
            );
        } else if !p.bad_data.is_empty() {
            let _ = writeln!(
                s,
                "NOT RECOVERABLE: {} volume(s) are not intact and only {} parity volume(s) are; copy the volumes again from the original media",
                p.bad_data.len(),
                p.intact
            );
        } else if !p.bad_parity.is_empty() {
            let _ = writeln!(
                s,
                "the data is intact; `ferry-unpack repair` computes the parity volumes above again"
            );
        }
    }

    fn write_verdict(&self, s: &mut String) {
        if self.ok {
            self.write_parity(s);
            let _ = writeln!(
                s,
                "OK: {} volumes, {} blobs, {} verified in {:.1}s",
                self.volumes,
                self.carried.count,
                human(self.bytes_verified),
                self.seconds
            );
            return;
        }
        for p in &self.problems {
            let _ = writeln!(s, "PROBLEM: {}: {}", p.subject, p.message);
        }
        for a in &self.affected_images {
            let _ = writeln!(s, "AFFECTED IMAGE: {a}");
        }
        self.write_parity(s);
        let rebuilt = if self.parity.as_ref().is_some_and(|p| p.recoverable) {
            " (all can be rebuilt from the parity volumes)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "FAILED: {} problem(s); {} of {} images affected{rebuilt}",
            self.problems.len(),
            self.affected_images.len(),
            self.images.len()
        );
    }
}
