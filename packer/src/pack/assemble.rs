//! The index of a written archive: its volumes and blobs as written, the plan's manifests and
//! images, and — when some blobs could not be fetched (`--continue-on-error`) — the images,
//! catalogs and releases that needed them left out and listed as failures.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use ferry_format::archive::write::Written;
use ferry_format::index::{closure_of, Blob, Failure, FailureKind, Image, Index, ManifestRecord};
use ferry_format::Digest;

use crate::base::Bases;
use crate::plan::Plan;

/// What the index says of the archive beyond its content.
pub struct Settings<'a> {
    pub volume_size: u64,
    pub stream: &'a str,
    pub bases: &'a Bases,
}

/// Builds the index of the archive `written` holds for `plan` (whose records move into it).
pub fn index(
    plan: Plan,
    written: Written,
    expected: Vec<Blob>,
    failed_blobs: &HashMap<Digest, String>,
    opts: &Settings,
) -> Result<Index> {
    let mut blobs = written.blobs;
    blobs.extend(expected);
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    blobs.dedup_by(|a, b| a.digest == b.digest);
    let manifests: Vec<ManifestRecord> = plan
        .manifests
        .into_iter()
        .map(|(digest, m)| ManifestRecord {
            digest,
            media_type: m.media_type,
            children: m.children,
            blobs: m.blobs,
        })
        .collect();
    let mut failures = plan.failures;
    let images = without_failed(plan.images, &manifests, failed_blobs, &mut failures);
    let kept = |d: &Digest| images.iter().any(|i| &i.digest == d);
    let mut catalogs = plan.catalogs;
    catalogs.retain(|c| {
        kept(&c.digest) || {
            failures.push(left_out(FailureKind::Catalog, c.source.clone(), "rebuilt"));
            false
        }
    });
    // A bundle lists only the images that were packed; a sample image stream whose image was
    // left out is no longer mirrored.
    let packed: BTreeSet<&str> = images.iter().map(|i| i.source.as_str()).collect();
    for b in catalogs
        .iter_mut()
        .flat_map(|c| &mut c.packages)
        .flat_map(|p| &mut p.bundles)
    {
        b.images.retain(|i| packed.contains(i.as_str()));
    }
    let mut releases = plan.releases;
    releases.retain(|r| {
        kept(&r.digest) || {
            let subject = format!("{} ({})", r.version, r.architecture);
            failures.push(left_out(FailureKind::Release, subject, "release"));
            false
        }
    });
    // A component that failed (with --continue-on-error) is not listed as carried.
    for r in &mut releases {
        r.component_digests.retain(|d| kept(d));
    }
    let graph_data = plan.graph_data.filter(|g| kept(&g.digest));
    let mut charts = plan.charts;
    charts.retain(|c| kept(&c.digest));
    let attachments = plan.attachments;
    let samples = plan
        .samples
        .as_ref()
        .map(|s| crate::samples::record(s, &packed));
    failures.sort_by(|a, b| (&a.kind, &a.subject).cmp(&(&b.kind, &b.subject)));
    Ok(Index {
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
        volumes: written.volumes,
        parity: written.parity,
        images,
        manifests,
        blobs,
        files: written.files,
        stream: Some(crate::base::stream_of(opts.stream, opts.bases)),
        parents: opts.bases.parents.clone(),
        incomplete: !failures.is_empty(),
        failures,
        releases,
        catalogs,
        graph_data,
        attachments,
        sigstore_keys: plan.sigstore_keys,
        charts,
        samples,
    }
    .without_orphan_attachments())
}

fn left_out(kind: FailureKind, subject: String, image: &str) -> Failure {
    Failure {
        kind,
        subject,
        reason: format!("its {image} image could not be packed"),
        images: vec![],
    }
}

/// The images that need none of the failed blobs; a failure per failed blob, naming the
/// images it cost.
fn without_failed(
    images: Vec<Image>,
    manifests: &[ManifestRecord],
    failed: &HashMap<Digest, String>,
    failures: &mut Vec<Failure>,
) -> Vec<Image> {
    if failed.is_empty() {
        return images;
    }
    let needs: Vec<BTreeSet<&Digest>> = images
        .iter()
        .map(|img| {
            let c = closure_of(manifests, &img.digest);
            failed
                .keys()
                .filter(|d| c.contains(d))
                .collect::<BTreeSet<_>>()
        })
        .collect();
    for (d, why) in failed {
        failures.push(Failure {
            kind: FailureKind::Blob,
            subject: d.to_string(),
            reason: why.clone(),
            images: images
                .iter()
                .zip(&needs)
                .filter(|(_, n)| n.contains(d))
                .map(|(i, _)| i.source.clone())
                .collect(),
        });
    }
    images
        .into_iter()
        .zip(&needs)
        .filter(|(_, n)| n.is_empty())
        .map(|(i, _)| i)
        .collect()
}

fn archive_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| anyhow::anyhow!("no randomness for the archive id: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
