//! Checks before anything is changed at the target: a delta's parent archives must have
//! arrived ([`missing_parents`]), and everything it lists but does not carry must be at the
//! target or in `--base-media` ([`preflight`]). The decisions are pure functions of the index
//! and what the target answered, so that they are tested without a registry.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferry_format::archive::ArchiveSet;
use ferry_format::index::{Index, ParentKind, Stream};
use ferry_format::Digest;
use ferry_registry::{Client, RegistryError, Repo};
use rayon::prelude::*;

use super::plan::RepoWork;
use crate::state::{Record, StreamState};
use crate::target::Target;

/// A parent archive of a delta (same stream) that the target has no record of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub stream: Stream,
    pub parent_id: String,
    pub parent_sequence: u64,
    pub host: String,
    /// The last archive of the stream the target did record.
    pub last: Option<Record>,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last = match &self.last {
            Some(r) => format!(
                "the last archive it recorded is sequence {} ({})",
                r.sequence, r.archive_id
            ),
            None => "it has no record of this stream".to_string(),
        };
        write!(
            f,
            "this archive is sequence {} of stream {:?} and builds on sequence {} (archive {}), which {} has not received: {last}. Push archive {} (stream {:?}, sequence {}) first",
            self.stream.sequence,
            self.stream.name,
            self.parent_sequence,
            self.parent_id,
            self.host,
            self.parent_id,
            self.stream.name,
            self.parent_sequence
        )
    }
}

/// The parents of `index` in its own stream that neither the target recorded nor `given`
/// (the archive ids of `--base-media`) brings.
pub fn missing_parents(
    index: &Index,
    state: &StreamState,
    given: &[&str],
    target: &Target,
) -> Vec<Gap> {
    let Some(stream) = &index.stream else {
        return Vec::new();
    };
    index
        .parents
        .iter()
        .filter_map(|p| {
            let ps = p.stream.as_ref()?;
            let known = state.has(&p.id) || given.contains(&p.id.as_str());
            (ps.name == stream.name && !known).then(|| Gap {
                stream: stream.clone(),
                parent_id: p.id.clone(),
                parent_sequence: ps.sequence,
                host: target.host.clone(),
                last: state.last().cloned(),
            })
        })
        .collect()
}

/// Something the archive lists but no archive of the set carries: it must be at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup<'a> {
    pub repo: &'a Repo,
    pub digest: &'a Digest,
    pub manifest: bool,
}

/// What to look for at the target: each blob and manifest of `work` that the index does not
/// carry and `carried` (the other archives of the set) does not either.
pub fn lookups<'a>(
    index: &Index,
    carried: impl Fn(&Digest) -> bool,
    work: &'a [RepoWork],
) -> Vec<Lookup<'a>> {
    let absent = |d: &Digest| index.blob(d).is_some_and(|b| !b.carried()) && !carried(d);
    let mut out = Vec::new();
    for w in work {
        let blobs = w.blobs.iter().map(|d| (d, false));
        let manifests = w.manifests.iter().map(|d| (d, true));
        for (digest, manifest) in blobs.chain(manifests) {
            if absent(digest) {
                out.push(Lookup {
                    repo: &w.repo,
                    digest,
                    manifest,
                });
            }
        }
    }
    out
}

/// Repositories a missing blob may be mounted from: those of this push, then those the base
/// archives' images went to.
pub fn candidate_repos(work: &[RepoWork], bases: &[&Index], target: &Target) -> Vec<Repo> {
    let mut out: Vec<Repo> = work.iter().map(|w| w.repo.clone()).collect();
    for img in bases.iter().flat_map(|b| &b.images) {
        let r = target.repo(img.target_repository());
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Where the archive expected a missing item to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedFrom {
    Archive { id: String, stream: Option<Stream> },
    Inventory { target: Option<String> },
    Unknown,
}

impl std::fmt::Display for ExpectedFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedFrom::Archive {
                id,
                stream: Some(s),
            } => write!(
                f,
                "archive {id} (stream {:?}, sequence {})",
                s.name, s.sequence
            ),
            ExpectedFrom::Archive { id, stream: None } => write!(f, "archive {id}"),
            ExpectedFrom::Inventory { target } => write!(
                f,
                "the inventory of {} this delta was packed against (it is no longer there)",
                target.as_deref().unwrap_or("the target")
            ),
            ExpectedFrom::Unknown => f.write_str("an unknown base"),
        }
    }
}

/// Items expected from one base, found neither at the target nor in `--base-media`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingGroup {
    pub from: ExpectedFrom,
    /// `blob <digest> for <repo>` / `manifest <digest> for <repo>`, sorted.
    pub items: BTreeSet<String>,
}

/// The refusal of a delta whose base content is nowhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MissingContent {
    pub groups: Vec<MissingGroup>,
}

impl std::fmt::Display for MissingContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("nothing was pushed: this delta needs content that is neither at the target nor in --base-media:")?;
        for g in &self.groups {
            write!(
                f,
                "\n  {} item(s) expected from {}; push that archive first or give its media with --base-media DIR (e.g. {})",
                g.items.len(),
                g.from,
                g.items.iter().next().map(String::as_str).unwrap_or("")
            )?;
        }
        Ok(())
    }
}

/// Groups the lookups that found nothing by the parent that should have brought them.
pub fn missing_content(index: &Index, not_found: &[Lookup]) -> Option<MissingContent> {
    let mut by_base: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in not_found {
        let base = index
            .blob(l.digest)
            .and_then(|b| b.base.clone())
            .unwrap_or_default();
        let what = if l.manifest { "manifest" } else { "blob" };
        by_base
            .entry(base)
            .or_default()
            .insert(format!("{what} {} for {}", l.digest, l.repo));
    }
    if by_base.is_empty() {
        return None;
    }
    let groups = by_base
        .into_iter()
        .map(|(base, items)| MissingGroup {
            from: match index.parent(&base) {
                Some(p) if p.kind == ParentKind::Archive => ExpectedFrom::Archive {
                    id: p.id.clone(),
                    stream: p.stream.clone(),
                },
                Some(p) => ExpectedFrom::Inventory {
                    target: p.target.clone(),
                },
                None => ExpectedFrom::Unknown,
            },
            items,
        })
        .collect();
    Some(MissingContent { groups })
}

/// Finds, at the target, everything the archive set does not carry. Returns, per blob, a
/// repository to mount it from. Fails with [`MissingContent`] if anything is nowhere.
pub fn preflight(
    client: &Client,
    archives: &ArchiveSet,
    work: &[RepoWork],
    target: &Target,
) -> anyhow::Result<HashMap<Digest, Repo>> {
    let index = archives.index();
    let checks = lookups(index, |d| archives.locate(d).is_some(), work);
    let bases: Vec<&Index> = archives.bases().iter().map(|b| b.index()).collect();
    let candidates = candidate_repos(work, &bases, target);
    let found: Vec<Option<Repo>> = checks
        .par_iter()
        .map(|l| find(client, l, &candidates))
        .collect::<Result<_, RegistryError>>()?;
    let mut origins = HashMap::new();
    let mut not_found = Vec::new();
    for (l, f) in checks.iter().zip(found) {
        match f {
            Some(repo) if !l.manifest => {
                origins.entry(l.digest.clone()).or_insert(repo);
            }
            Some(_) => {}
            None => not_found.push(*l),
        }
    }
    match missing_content(index, &not_found) {
        None => Ok(origins),
        Some(m) => Err(m.into()),
    }
}

/// Asks the target for one item: a manifest in its repository, a blob there or in any
/// candidate repository.
fn find(client: &Client, l: &Lookup, candidates: &[Repo]) -> Result<Option<Repo>, RegistryError> {
    if l.manifest {
        let there = client.manifest_digest(l.repo, &l.digest.to_string())?;
        return Ok(there.map(|_| l.repo.clone()));
    }
    if client.blob_exists(l.repo, l.digest)? {
        return Ok(Some(l.repo.clone()));
    }
    for c in candidates.iter().filter(|c| *c != l.repo) {
        if client.blob_exists(c, l.digest)? {
            return Ok(Some(c.clone()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::plan::plan_repos;
    use crate::testing::{image, index_of, manifest};
    use ferry_format::index::Parent;

    fn delta() -> (Index, Digest, Digest) {
        let (old, new) = (Digest::of(b"old layer"), Digest::of(b"new layer"));
        let m = manifest(b"m", &[], &[&old, &new]);
        let mut index = index_of(
            vec![image("quay.io", "x/app", &m.digest, &["2"])],
            vec![m],
            &[(&old, 10), (&new, 20)],
        );
        index.stream = Some(Stream {
            name: "site".into(),
            sequence: 2,
        });
        index.parents = vec![Parent {
            id: "a1".into(),
            kind: ParentKind::Archive,
            sha256: Digest::of(b"index 1"),
            stream: Some(Stream {
                name: "site".into(),
                sequence: 1,
            }),
            target: None,
        }];
        for b in index.blobs.iter_mut().filter(|b| b.digest == old) {
            b.base = Some("a1".into());
        }
        (index, old, new)
    }

    #[test]
    fn a_delta_whose_parent_did_not_arrive_has_a_gap() {
        let (index, _, _) = delta();
        let target: Target = "reg:5000/m".parse().unwrap();
        let empty = StreamState::default();
        let gaps = missing_parents(&index, &empty, &[], &target);
        assert_eq!(gaps.len(), 1);
        assert_eq!((gaps[0].parent_sequence, gaps[0].stream.sequence), (1, 2));
        let text = gaps[0].to_string();
        assert!(
            text.contains("Push archive a1") && text.contains("no record"),
            "{text}"
        );
        // Given with --base-media, or recorded at the target: no gap.
        assert!(missing_parents(&index, &empty, &["a1"], &target).is_empty());
        let recorded = StreamState::with_records(
            "site",
            vec![Record {
                archive_id: "a1".into(),
                sequence: 1,
                index: Digest::of(b"index 1"),
            }],
        );
        assert!(missing_parents(&index, &recorded, &[], &target).is_empty());
    }

    #[test]
    fn only_what_nothing_carries_is_looked_up_and_reported_by_parent() {
        let (index, old, new) = delta();
        let target: Target = "reg:5000/m".parse().unwrap();
        let work = plan_repos(&index, &target).unwrap();
        let checks = lookups(&index, |_| false, &work);
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert_eq!((checks[0].digest, checks[0].manifest), (&old, false));
        assert!(
            lookups(&index, |d| *d == old, &work).is_empty(),
            "a base medium carries it"
        );
        let m = missing_content(&index, &checks).unwrap();
        assert_eq!(m.groups.len(), 1);
        assert!(matches!(&m.groups[0].from, ExpectedFrom::Archive { id, .. } if id == "a1"));
        let text = m.to_string();
        assert!(text.starts_with("nothing was pushed"), "{text}");
        assert!(
            text.contains(&format!("blob {old} for reg:5000/m/x/app")),
            "{text}"
        );
        assert!(!text.contains(&new.to_string()), "{text}");
        assert!(missing_content(&index, &[]).is_none());
    }

    #[test]
    fn mount_candidates_include_the_bases_repositories_once() {
        let (index, _, _) = delta();
        let target: Target = "reg:5000/m".parse().unwrap();
        let work = plan_repos(&index, &target).unwrap();
        let m = manifest(b"base", &[], &[]);
        let base = index_of(
            vec![
                image("quay.io", "x/app", &m.digest, &[]),
                image("quay.io", "x/db", &m.digest, &[]),
            ],
            vec![m],
            &[],
        );
        let c = candidate_repos(&work, &[&base], &target);
        assert_eq!(
            c,
            vec![
                Repo::new("reg:5000", "m/x/app"),
                Repo::new("reg:5000", "m/x/db")
            ]
        );
    }
}
