//! What a push will do, worked out from the signed index alone: per target repository, the
//! manifests its images need (children before the indexes that list them), their blobs and the
//! tag each image manifest goes up under; and one upload task per blob, however many
//! repositories need it.

use std::collections::{BTreeMap, BTreeSet};

use ferry_format::index::{Closure, Image, Index};
use ferry_format::Digest;
use ferry_registry::Repo;

use crate::target::Target;

/// One target repository's share of the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoWork {
    pub repo: Repo,
    /// Manifests, children first.
    pub manifests: Vec<Digest>,
    pub blobs: BTreeSet<Digest>,
    /// The tag a manifest is PUT under instead of its digest (one request sets both, as a
    /// client pushing `repo:tag` does): the first tag of an image that is not an attachment,
    /// when no other manifest of the repository claims that tag. Its other tags, and every
    /// attachment's, wait for the tag phase.
    pub tag_with: BTreeMap<Digest, String>,
}

/// Two source repositories that the target's naming would merge into one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{first} and {second} would both be pushed to {target}; push them with different namespaces (or a larger --max-nested-paths)"
)]
pub struct Collision {
    pub first: String,
    pub second: String,
    pub target: String,
}

/// Groups the images by target repository and walks each group's closure. Two source
/// repositories that the target's naming (namespace, `--max-nested-paths`) would merge are
/// refused; images the config itself sent to one repository (`targetRepo`) are not.
pub fn plan_repos(index: &Index, target: &Target) -> Result<Vec<RepoWork>, Collision> {
    /// The first image a target repository got, and everything its images need.
    struct Group<'a> {
        source: (&'a str, &'a str),
        chosen: bool,
        closure: Closure,
        /// Its images, and apart its attachments' (for the tags its manifests go up under).
        images: Vec<&'a Image>,
        attachments: Vec<&'a Image>,
    }
    let mut by_repo: BTreeMap<String, Group> = BTreeMap::new();
    // Attachments (signatures, referrers) after the images they are about, so that a
    // signature never reaches the target before its image.
    let (attachments, images): (Vec<_>, Vec<_>) =
        index.images.iter().partition(|i| index.is_attachment(i));
    let in_order = images
        .into_iter()
        .map(|i| (i, false))
        .chain(attachments.into_iter().map(|i| (i, true)));
    for (img, is_attachment) in in_order {
        let name = target.repository(img.target_repository());
        let chosen = img.target_repository.is_some();
        let group = by_repo.entry(name.clone()).or_insert_with(|| Group {
            source: (&img.registry, &img.repository),
            chosen,
            closure: Closure::default(),
            images: Vec::new(),
            attachments: Vec::new(),
        });
        let (registry, repository) = group.source;
        let merged = registry != img.registry || repository != img.repository;
        if merged && !(group.chosen && chosen) {
            return Err(Collision {
                first: format!("{registry}/{repository}"),
                second: format!("{}/{}", img.registry, img.repository),
                target: format!("{}/{name}", target.host),
            });
        }
        group.closure.add(&index.manifests, &img.digest);
        if is_attachment {
            group.attachments.push(img);
        } else {
            group.images.push(img);
        }
    }
    Ok(by_repo
        .into_iter()
        .map(|(name, g)| RepoWork {
            repo: Repo::new(target.host.clone(), name),
            manifests: g.closure.manifests,
            blobs: g.closure.blobs,
            tag_with: tags_with_manifests(&g.images, &g.attachments),
        })
        .collect())
}

/// For one repository's images and attachments: the tag each image manifest is PUT under. A
/// tag two manifests claim is left to the tag phase, as are attachments' tags (a signature's
/// tag never comes before its image's).
fn tags_with_manifests(images: &[&Image], attachments: &[&Image]) -> BTreeMap<Digest, String> {
    let mut claims: BTreeMap<&str, BTreeSet<&Digest>> = BTreeMap::new();
    for img in images.iter().chain(attachments) {
        for t in &img.tags {
            claims.entry(t).or_default().insert(&img.digest);
        }
    }
    let mut tag_with = BTreeMap::new();
    for img in images {
        let only_this = |t: &&String| claims.get(t.as_str()).is_some_and(|c| c.len() == 1);
        if let Some(t) = img.tags.iter().find(only_this) {
            tag_with
                .entry(img.digest.clone())
                .or_insert_with(|| t.clone());
        }
    }
    tag_with
}

/// One blob to put in place: the repositories that need it, in order (the first gets the
/// upload, the others a mount from there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobTask<'a> {
    pub digest: &'a Digest,
    pub size: u64,
    pub repos: Vec<&'a Repo>,
}

/// One task per blob, largest first (so that the tail of a parallel push is short).
pub fn blob_tasks<'a>(index: &Index, work: &'a [RepoWork]) -> Vec<BlobTask<'a>> {
    let mut repos_of: BTreeMap<&Digest, Vec<&Repo>> = BTreeMap::new();
    for w in work {
        for b in &w.blobs {
            repos_of.entry(b).or_default().push(&w.repo);
        }
    }
    let mut tasks: Vec<BlobTask> = repos_of
        .into_iter()
        .map(|(digest, repos)| BlobTask {
            digest,
            size: index.blob(digest).map_or(0, |b| b.size),
            repos,
        })
        .collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.size));
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{image, index_of, manifest};
    use ferry_format::index::{Attachment, AttachmentKind};

    #[test]
    fn repositories_get_their_closures_and_shared_blobs_one_task() {
        let (l1, l2, l3) = (Digest::of(b"l1"), Digest::of(b"l2"), Digest::of(b"l3"));
        let a = manifest(b"a", &[], &[&l1, &l2]);
        let b = manifest(b"b", &[], &[&l2, &l3]);
        let list = manifest(b"list", &[&a.digest, &b.digest], &[]);
        let index = index_of(
            vec![
                image("quay.io", "x/app", &list.digest, &["1"]),
                image("quay.io", "x/tool", &b.digest, &[]),
            ],
            vec![a.clone(), b.clone(), list.clone()],
            &[(&l1, 10), (&l2, 30), (&l3, 20)],
        );
        let target: Target = "reg:5000/mirror".parse().unwrap();
        let work = plan_repos(&index, &target).unwrap();
        assert_eq!(work.len(), 2);
        assert_eq!(work[0].repo, Repo::new("reg:5000", "mirror/x/app"));
        let list_pos = work[0].manifests.iter().position(|d| *d == list.digest);
        assert_eq!(list_pos, Some(2), "the index comes after its children");
        assert_eq!(
            work[0].blobs,
            BTreeSet::from([l1.clone(), l2.clone(), l3.clone()])
        );
        assert_eq!(work[1].manifests, vec![b.digest.clone()]);
        let tasks = blob_tasks(&index, &work);
        let sizes: Vec<u64> = tasks.iter().map(|t| t.size).collect();
        assert_eq!(sizes, vec![30, 20, 10], "largest first");
        assert_eq!(tasks[0].repos.len(), 2, "l2 is needed by both repositories");
        assert_eq!(tasks[2].repos, vec![&work[0].repo]);
    }

    /// A cosign signature (`digest`, tagged `tag`) of `subject` in quay.io/x/app.
    fn signature(subject: &Digest, digest: &Digest, tag: String) -> Attachment {
        Attachment {
            kind: AttachmentKind::Signature,
            registry: "quay.io".into(),
            repository: "x/app".into(),
            subject: subject.clone(),
            digest: digest.clone(),
            tag: Some(tag),
            artifact_type: None,
            verified_by: vec![],
        }
    }

    #[test]
    fn a_signature_comes_after_its_image_even_when_listed_first() {
        let app = manifest(b"app", &[], &[]);
        let sig = manifest(b"sig", &[], &[]);
        let tag = AttachmentKind::Signature.tag_for(&app.digest);
        let mut index = index_of(
            vec![
                image("quay.io", "x/app", &sig.digest, &[&tag]),
                image("quay.io", "x/app", &app.digest, &["1"]),
            ],
            vec![app.clone(), sig.clone()],
            &[],
        );
        index
            .attachments
            .push(signature(&app.digest, &sig.digest, tag));
        let target: Target = "reg:5000".parse().unwrap();
        let work = plan_repos(&index, &target).unwrap();
        assert_eq!(work[0].manifests, vec![app.digest, sig.digest]);
    }

    /// An image manifest goes up under its first tag that no other manifest claims; a
    /// digest-only image, a child, and an attachment go by digest.
    #[test]
    fn a_manifest_goes_up_under_the_first_tag_only_it_claims() {
        let (a, b, c) = (
            manifest(b"a", &[], &[]),
            manifest(b"b", &[], &[]),
            manifest(b"c", &[], &[]),
        );
        let list = manifest(b"list", &[&c.digest], &[]);
        let sig = manifest(b"sig", &[], &[]);
        let sig_tag = AttachmentKind::Signature.tag_for(&a.digest);
        let mut index = index_of(
            vec![
                image("quay.io", "x/app", &a.digest, &["shared", "1.0", "latest"]),
                image("quay.io", "x/app", &b.digest, &["shared", "2.0"]),
                image("quay.io", "x/app", &list.digest, &["multi"]),
                image("quay.io", "x/app", &c.digest, &[]),
                image("quay.io", "x/app", &sig.digest, &[&sig_tag]),
            ],
            vec![a.clone(), b.clone(), c.clone(), list.clone(), sig.clone()],
            &[],
        );
        index
            .attachments
            .push(signature(&a.digest, &sig.digest, sig_tag));
        let target: Target = "reg:5000".parse().unwrap();
        let work = plan_repos(&index, &target).unwrap();
        let got: Vec<(&Digest, &str)> = work[0]
            .tag_with
            .iter()
            .map(|(d, t)| (d, t.as_str()))
            .collect();
        let mut want = vec![
            (&a.digest, "1.0"),
            (&b.digest, "2.0"),
            (&list.digest, "multi"),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn two_registries_with_one_repository_name_collide() {
        let m = manifest(b"m", &[], &[]);
        let index = index_of(
            vec![
                image("quay.io", "x/app", &m.digest, &["1"]),
                image("docker.io", "x/app", &m.digest, &["2"]),
            ],
            vec![m.clone()],
            &[],
        );
        let target: Target = "reg:5000".parse().unwrap();
        let err = plan_repos(&index, &target).unwrap_err();
        assert_eq!(err.target, "reg:5000/x/app");
        assert!(err.to_string().contains("different namespaces"), "{err}");
    }

    #[test]
    fn flattened_paths_that_merge_collide_and_chosen_target_repositories_do_not() {
        let m = manifest(b"m", &[], &[]);
        let index = index_of(
            vec![
                image("quay.io", "a/b/c", &m.digest, &["1"]),
                image("quay.io", "a/b-c", &m.digest, &["2"]),
            ],
            vec![m.clone()],
            &[],
        );
        let target: Target = "reg:5000".parse().unwrap();
        assert_eq!(plan_repos(&index, &target).unwrap().len(), 2);
        let flat = target.clone().with_max_nested_paths(Some(2));
        let err = plan_repos(&index, &flat).unwrap_err();
        assert_eq!(err.target, "reg:5000/a/b-c");
        assert!(err.to_string().contains("--max-nested-paths"), "{err}");
        // The config sent both to one repository on purpose: one repository, both tags.
        let mut chosen = index.clone();
        for i in &mut chosen.images {
            i.target_repository = Some("apps/one".into());
        }
        let work = plan_repos(&chosen, &flat).unwrap();
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].repo, Repo::new("reg:5000", "apps/one"));
        // One chosen, one landing there by its own name: refused.
        let mut half = index.clone();
        half.images[0].target_repository = Some("a/b-c".into());
        assert!(plan_repos(&half, &target).is_err());
    }
}
