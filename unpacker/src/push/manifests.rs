//! Manifests, then tags. A manifest is pushed (by digest) only when everything it references is
//! confirmed at the target, children before the indexes that list them; a tag only when its
//! manifest is. Repositories and images go in parallel; what is already there is skipped.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use anyhow::Result;
use ferry_format::archive::{ArchiveSet, ReadError};
use ferry_format::index::{Image, Index};
use ferry_format::manifest::Manifest;
use ferry_format::Digest;
use ferry_registry::{Client, Repo};
use rayon::prelude::*;

use super::blobs::BlobsDone;
use super::plan::RepoWork;
use super::report::{FailedImage, ManifestCounts, NotPushed, PushedImage, SparseIndex};
use crate::target::Target;

/// The outcome of the manifest phase.
#[derive(Debug, Default)]
pub struct ManifestsDone {
    pub counts: ManifestCounts,
    pub failed: HashMap<Digest, NotPushed>,
    /// (repository, manifest) pairs this run pushed: a tag on one needs no check.
    pub pushed: BTreeSet<(String, Digest)>,
}

/// Pushes every repository's manifests, children first, on the current rayon pool.
pub fn push_all(
    client: &Client,
    archives: &ArchiveSet,
    work: &[RepoWork],
    blobs: &BlobsDone,
) -> ManifestsDone {
    let done = Mutex::new(ManifestsDone::default());
    work.par_iter().for_each(|w| {
        let (counts, failed, pushed) = push_repo(client, archives, w, blobs);
        let mut d = done.lock().expect("lock");
        d.counts.pushed += counts.pushed;
        d.counts.skipped += counts.skipped;
        d.failed.extend(failed);
        d.pushed
            .extend(pushed.into_iter().map(|m| (w.repo.name.clone(), m)));
    });
    done.into_inner().expect("lock")
}

type RepoDone = (ManifestCounts, HashMap<Digest, NotPushed>, BTreeSet<Digest>);

fn push_repo(client: &Client, archives: &ArchiveSet, w: &RepoWork, blobs: &BlobsDone) -> RepoDone {
    let index = archives.index();
    let mut counts = ManifestCounts::default();
    let mut failed: HashMap<Digest, NotPushed> = HashMap::new();
    let mut pushed: BTreeSet<Digest> = BTreeSet::new();
    for d in &w.manifests {
        let Some(m) = index.manifest(d) else { continue };
        if let Some(why) = blocked(&m.blobs, &m.children, blobs, &failed) {
            failed.insert(d.clone(), why);
            continue;
        }
        // Known absent when something it references was only now put there.
        let absent = m
            .blobs
            .iter()
            .any(|b| blobs.fresh.contains(&(w.repo.name.clone(), b.clone())))
            || m.children.iter().any(|c| pushed.contains(c));
        match push_manifest(client, archives, &w.repo, d, &m.media_type, absent) {
            Ok(true) => {
                pushed.insert(d.clone());
                counts.pushed += 1;
            }
            Ok(false) => counts.skipped += 1,
            Err(e) => {
                let sparse = sparse_index(index, archives, d, &w.repo);
                failed.insert(
                    d.clone(),
                    NotPushed::Manifest {
                        digest: d.clone(),
                        error: format!("{e:#}"),
                        sparse,
                    },
                );
            }
        }
    }
    (counts, failed, pushed)
}

/// Why a manifest cannot be pushed: a blob or child that did not make it.
fn blocked(
    blobs: &[Digest],
    children: &[Digest],
    done: &BlobsDone,
    failed: &HashMap<Digest, NotPushed>,
) -> Option<NotPushed> {
    let blob = blobs.iter().find_map(|b| {
        done.failed.get(b).map(|why| NotPushed::Blob {
            digest: b.clone(),
            error: why.clone(),
        })
    });
    blob.or_else(|| {
        children.iter().find_map(|c| {
            failed.get(c).map(|why| NotPushed::Child {
                digest: c.clone(),
                cause: Box::new(why.clone()),
            })
        })
    })
}

/// When an index was packed with a platform filter, some of its children are not carried, and
/// registries that check references (CNCF distribution does) refuse it.
fn sparse_index(
    index: &Index,
    archives: &ArchiveSet,
    d: &Digest,
    repo: &Repo,
) -> Option<SparseIndex> {
    let record = index.manifest(d)?;
    let bytes = archives.read_small(d, "manifest").ok()?;
    let (parsed, _) = Manifest::parse(&bytes, &record.media_type).ok()?;
    let Manifest::Index { manifests } = parsed else {
        return None;
    };
    (manifests.len() > record.children.len()).then(|| SparseIndex {
        listed: manifests.len(),
        carried: record.children.len(),
        repository: repo.to_string(),
        host: repo.host.clone(),
    })
}

/// Pushes a manifest by digest unless it is there (`known_absent` skips asking). Returns
/// whether it was pushed.
fn push_manifest(
    client: &Client,
    archives: &ArchiveSet,
    repo: &Repo,
    d: &Digest,
    media_type: &str,
    known_absent: bool,
) -> Result<bool> {
    if !known_absent && client.manifest_digest(repo, &d.to_string())?.is_some() {
        return Ok(false);
    }
    let bytes = archives.read_small(d, "manifest")?;
    client.put_manifest(repo, &d.to_string(), media_type, &bytes)?;
    Ok(true)
}

/// Tags every image whose manifest is at the target (images in parallel, on the current
/// rayon pool; attachments after the others, so that a signature's tag never comes before its
/// image's). Returns the images pushed and those not, and the number of tags pushed.
pub fn tag_all(
    client: &Client,
    archives: &ArchiveSet,
    target: &Target,
    manifests: &ManifestsDone,
) -> (Vec<PushedImage>, Vec<FailedImage>, u64) {
    let index = archives.index();
    let (attachments, images): (Vec<&Image>, Vec<&Image>) =
        index.images.iter().partition(|i| index.is_attachment(i));
    let mut outcomes: Vec<(&Image, Result<u64, NotPushed>)> = Vec::new();
    for wave in [images, attachments] {
        outcomes.par_extend(
            wave.into_par_iter()
                .map(|img| (img, tag_image(client, archives, target, manifests, img))),
        );
    }
    let (mut pushed, mut failed, mut tags) = (Vec::new(), Vec::new(), 0);
    for (img, r) in outcomes {
        match r {
            Ok(n) => {
                tags += n;
                pushed.push(PushedImage {
                    source: img.source.clone(),
                    target: format!("{}@{}", target.mirror(img.target_repository()), img.digest),
                });
            }
            Err(reason) => failed.push(FailedImage {
                source: img.source.clone(),
                reason,
            }),
        }
    }
    (pushed, failed, tags)
}

// NotPushed names a digest (64 bytes inline): large, but returned once per image.
#[allow(clippy::result_large_err)]
fn tag_image(
    client: &Client,
    archives: &ArchiveSet,
    target: &Target,
    manifests: &ManifestsDone,
    img: &Image,
) -> Result<u64, NotPushed> {
    if let Some(why) = manifests.failed.get(&img.digest) {
        return Err(why.clone());
    }
    let repo = target.repo(img.target_repository());
    let fresh = manifests
        .pushed
        .contains(&(repo.name.clone(), img.digest.clone()));
    let mut pushed = 0;
    for tag in &img.tags {
        match push_tag(client, archives, &repo, tag, img, fresh) {
            Ok(true) => pushed += 1,
            Ok(false) => {}
            Err(e) => {
                return Err(NotPushed::Tag {
                    tag: tag.clone(),
                    error: format!("{e:#}"),
                })
            }
        }
    }
    Ok(pushed)
}

/// Points a tag at an image's manifest unless it already does (a manifest pushed by this run
/// cannot be tagged yet: `fresh_manifest` skips asking). Returns whether it was pushed. The
/// bytes come from the media, or, for a delta that does not carry the manifest, from the
/// target; corrupt bytes on the media are an error, never a reason to look elsewhere.
fn push_tag(
    client: &Client,
    archives: &ArchiveSet,
    repo: &Repo,
    tag: &str,
    img: &Image,
    fresh_manifest: bool,
) -> Result<bool> {
    let d = &img.digest;
    if !fresh_manifest && client.manifest_digest(repo, tag)?.as_ref() == Some(d) {
        return Ok(false);
    }
    let bytes = match archives.read_small(d, "manifest") {
        Ok(b) => b,
        Err(ReadError::NotCarried { .. }) => client.get_manifest(repo, &d.to_string())?.bytes,
        Err(e) => return Err(e.into()),
    };
    client.put_manifest(repo, tag, &img.media_type, &bytes)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_blocked_by_its_failed_blob_before_its_failed_child() {
        let (b, c) = (Digest::of(b"b"), Digest::of(b"c"));
        let mut done = BlobsDone::default();
        let mut failed = HashMap::new();
        assert_eq!(
            blocked(
                std::slice::from_ref(&b),
                std::slice::from_ref(&c),
                &done,
                &failed
            ),
            None
        );
        failed.insert(
            c.clone(),
            NotPushed::Tag {
                tag: "x".into(),
                error: "e".into(),
            },
        );
        let why = blocked(
            std::slice::from_ref(&b),
            std::slice::from_ref(&c),
            &done,
            &failed,
        )
        .unwrap();
        assert_eq!(why.to_string(), format!("child {c}: tag x: e"));
        done.failed.insert(b.clone(), "gone".into());
        let why = blocked(std::slice::from_ref(&b), &[c], &done, &failed).unwrap();
        assert_eq!(
            why,
            NotPushed::Blob {
                digest: b,
                error: "gone".into()
            }
        );
    }
}
