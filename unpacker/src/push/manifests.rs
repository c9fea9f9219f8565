//! Manifests, then tags. A manifest is pushed only when everything it references is confirmed
//! at the target, children before the indexes that list them: by the tag the plan gave it
//! ([`RepoWork::tag_with`]), which sets both in one request, else by digest. Every other tag
//! follows once its manifest is there. Manifests go in waves (children, then their indexes),
//! each in parallel; images go in parallel; what is already there is skipped.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use ferry_format::archive::{ArchiveSet, ReadError};
use ferry_format::index::{Image, Index, ManifestRecord};
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
    /// (repository, tag) pairs set by the PUT of their manifest: the tag phase has nothing
    /// left to do for them.
    pub tagged: BTreeSet<(String, String)>,
}

/// Pushes every repository's manifests on the current rayon pool, in waves: image manifests
/// first, then the indexes that list them, and so on. Each wave goes in parallel, within a
/// repository as well as across them (a release's ~190 manifests share one repository).
pub fn push_all(
    client: &Client,
    archives: &ArchiveSet,
    work: &[RepoWork],
    blobs: &BlobsDone,
) -> ManifestsDone {
    let index = archives.index();
    let mut repos: Vec<RepoDone> = work.iter().map(|_| RepoDone::default()).collect();
    for wave in waves(index, work) {
        let outcomes: Vec<Outcome> = wave
            .par_iter()
            .map(|&(r, m)| push_one(client, archives, &work[r], m, blobs, &repos[r]))
            .collect();
        for (&(r, m), outcome) in wave.iter().zip(outcomes) {
            let done = &mut repos[r];
            match outcome {
                Outcome::Pushed => {
                    done.pushed.insert(m.digest.clone());
                    done.tagged.extend(work[r].tag_with.get(&m.digest).cloned());
                    done.counts.pushed += 1;
                }
                Outcome::There => done.counts.skipped += 1,
                Outcome::Failed(why) => {
                    done.failed.insert(m.digest.clone(), why);
                }
            }
        }
    }
    let mut out = ManifestsDone::default();
    for (w, done) in work.iter().zip(repos) {
        out.counts.pushed += done.counts.pushed;
        out.counts.skipped += done.counts.skipped;
        out.failed.extend(done.failed);
        out.pushed
            .extend(done.pushed.into_iter().map(|m| (w.repo.name.clone(), m)));
        out.tagged
            .extend(done.tagged.into_iter().map(|t| (w.repo.name.clone(), t)));
    }
    out
}

/// Every repository's manifests the index records, as (repository, manifest), in waves: a
/// manifest comes one wave after the last of its children (`RepoWork::manifests` lists
/// children first).
fn waves<'i>(index: &'i Index, work: &[RepoWork]) -> Vec<Vec<(usize, &'i ManifestRecord)>> {
    let mut waves: Vec<Vec<(usize, &ManifestRecord)>> = Vec::new();
    for (r, w) in work.iter().enumerate() {
        let mut wave_of: HashMap<&Digest, usize> = HashMap::new();
        for m in w.manifests.iter().filter_map(|d| index.manifest(d)) {
            let k = m
                .children
                .iter()
                .filter_map(|c| wave_of.get(c).map(|k| k + 1))
                .max()
                .unwrap_or(0);
            wave_of.insert(&m.digest, k);
            if waves.len() <= k {
                waves.resize_with(k + 1, Vec::new);
            }
            waves[k].push((r, m));
        }
    }
    waves
}

/// One repository's manifest phase so far.
#[derive(Default)]
struct RepoDone {
    counts: ManifestCounts,
    failed: HashMap<Digest, NotPushed>,
    pushed: BTreeSet<Digest>,
    tagged: BTreeSet<String>,
}

/// What became of one manifest.
enum Outcome {
    /// Pushed (by the tag the plan gave it, else by digest).
    Pushed,
    /// Already at the target.
    There,
    Failed(NotPushed),
}

/// Pushes one manifest of `w`, whose children (earlier waves) are recorded in `done`.
fn push_one(
    client: &Client,
    archives: &ArchiveSet,
    w: &RepoWork,
    m: &ManifestRecord,
    blobs: &BlobsDone,
    done: &RepoDone,
) -> Outcome {
    let d = &m.digest;
    if let Some(why) = blocked(&m.blobs, &m.children, blobs, &done.failed) {
        return Outcome::Failed(why);
    }
    // Known absent when something it references was only now put there.
    let absent = m
        .blobs
        .iter()
        .any(|b| blobs.fresh.contains(&(w.repo.name.clone(), b.clone())))
        || m.children.iter().any(|c| done.pushed.contains(c));
    let tag = w.tag_with.get(d);
    match push_manifest(client, archives, &w.repo, d, tag, &m.media_type, absent) {
        Ok(true) => Outcome::Pushed,
        Ok(false) => Outcome::There,
        Err(e) => Outcome::Failed(NotPushed::Manifest {
            digest: d.clone(),
            error: format!("{e:#}"),
            sparse: sparse_index(archives, m, &w.repo),
        }),
    }
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
    archives: &ArchiveSet,
    record: &ManifestRecord,
    repo: &Repo,
) -> Option<SparseIndex> {
    let bytes = archives.read_small(&record.digest, "manifest").ok()?;
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

/// Pushes manifest `d` unless it is there (`known_absent` skips asking), by `tag` where
/// given, else by digest. Returns whether it was pushed.
fn push_manifest(
    client: &Client,
    archives: &ArchiveSet,
    repo: &Repo,
    d: &Digest,
    tag: Option<&String>,
    media_type: &str,
    known_absent: bool,
) -> Result<bool> {
    let by_digest = d.to_string();
    if !known_absent && client.manifest_digest(repo, &by_digest)?.is_some() {
        return Ok(false);
    }
    let bytes = archives.read_small(d, "manifest")?;
    let reference = tag.map_or(by_digest.as_str(), String::as_str);
    client.put_manifest(repo, reference, media_type, &bytes)?;
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
        if manifests.tagged.contains(&(repo.name.clone(), tag.clone())) {
            pushed += 1;
            continue;
        }
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
    use crate::testing::{index_of, manifest};

    /// Image manifests of every repository go first, then the indexes that list them, then an
    /// index of indexes; a manifest whose child is in another repository does not wait for it.
    #[test]
    fn manifests_go_in_waves_of_children_then_indexes() {
        let layer = Digest::of(b"layer");
        let (a, b) = (
            manifest(b"a", &[], &[&layer]),
            manifest(b"b", &[], &[&layer]),
        );
        let idx = manifest(b"idx", &[&a.digest, &b.digest], &[]);
        let top = manifest(b"top", &[&idx.digest], &[]);
        let other = manifest(b"other", &[&a.digest], &[]);
        let ds = |ms: &[&ManifestRecord]| -> Vec<Digest> {
            ms.iter().map(|m| m.digest.clone()).collect()
        };
        let work = vec![
            RepoWork {
                repo: Repo::new("t", "one"),
                manifests: ds(&[&a, &b, &idx, &top]),
                blobs: [layer.clone()].into(),
                tag_with: Default::default(),
            },
            RepoWork {
                repo: Repo::new("t", "two"),
                manifests: ds(&[&other]),
                blobs: BTreeSet::new(),
                tag_with: Default::default(),
            },
        ];
        let index = index_of(
            vec![],
            vec![
                a.clone(),
                b.clone(),
                idx.clone(),
                top.clone(),
                other.clone(),
            ],
            &[(&layer, 10)],
        );
        let waves: Vec<Vec<(usize, Digest)>> = waves(&index, &work)
            .into_iter()
            .map(|w| w.into_iter().map(|(r, m)| (r, m.digest.clone())).collect())
            .collect();
        assert_eq!(
            waves,
            vec![
                vec![(0, a.digest), (0, b.digest), (1, other.digest)],
                vec![(0, idx.digest)],
                vec![(0, top.digest)],
            ]
        );
    }

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
