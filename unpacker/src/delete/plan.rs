//! A reviewable delete plan: what the selection retires, checked against the live registry.
//!
//! Per repository, everything reachable from what is kept — recorded images that stay, and
//! every tag not in the delete set — is kept; a retired image's manifests are deleted only
//! where nothing kept reaches them (another release sharing a component, a tag the site added,
//! an index whose child is kept). Cosign tags (`sha256-<hex>.sig|.att|.sbom`, and the referrers
//! tag schema's `sha256-<hex>`) follow their subject. The plan lists each manifest to delete
//! (indexes before their children), what was kept back and why, the bytes no remaining
//! manifest in the registry references, and every tag of the repositories it touches, so that
//! `--execute` can refuse a registry that changed since.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use ferry_format::manifest::Manifest;
use ferry_format::Digest;
use ferry_registry::{Client, RegistryError, Repo};
use serde::{Deserialize, Serialize};

use super::select::{Root, Selection};
use crate::target::Target;

pub const PLAN_FORMAT: &str = "ferry-delete-plan";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub format: String,
    pub target: String,
    pub created: String,
    /// Archive ids recorded when the plan was made.
    pub archives: Vec<String>,
    /// Manifests to delete, in order (indexes before the manifests they list).
    pub delete: Vec<Planned>,
    /// Manifests of retired images that stay, and why.
    pub kept_back: Vec<KeptBack>,
    /// Blobs that no remaining manifest references: what garbage collection frees.
    pub unreferenced_blobs: Vec<(Digest, u64)>,
    pub unreferenced_bytes: u64,
    /// Every tag (and the digest it named) of each repository the plan touches.
    pub tags: BTreeMap<String, BTreeMap<String, Digest>>,
    /// What the config names that the site never received.
    pub not_found: Vec<String>,
    /// What to know about the result (a catalog that stays and lists retired bundles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub repository: String,
    pub digest: Digest,
    pub media_type: String,
    /// Tags that point at it now (the registry drops them with it).
    pub tags: Vec<String>,
    pub why: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptBack {
    pub repository: String,
    pub digest: Digest,
    pub why: String,
}

/// One manifest as read from the registry.
struct Seen {
    media_type: String,
    children: Vec<Digest>,
    blobs: Vec<(Digest, u64)>,
}

/// A repository as the registry shows it: its tags and the manifests read so far.
#[derive(Default)]
struct RepoView {
    tags: BTreeMap<String, Digest>,
    manifests: BTreeMap<Digest, Seen>,
}

impl RepoView {
    fn read(client: &Client, repo: &Repo) -> Result<RepoView> {
        let mut v = RepoView::default();
        let tags = match client.list_tags(repo) {
            Ok(t) => t,
            Err(RegistryError::NotFound { .. }) => return Ok(v),
            Err(e) => return Err(e.into()),
        };
        for t in tags {
            if let Some(d) = v.fetch(client, repo, &t)? {
                v.tags.insert(t, d);
            }
        }
        Ok(v)
    }

    /// Reads a manifest (and, for an index, its children); `None` when it is not there.
    fn fetch(&mut self, client: &Client, repo: &Repo, reference: &str) -> Result<Option<Digest>> {
        if let Ok(d) = reference.parse::<Digest>() {
            if self.manifests.contains_key(&d) {
                return Ok(Some(d));
            }
        }
        let m = match client.get_manifest(repo, reference) {
            Ok(m) => m,
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (children, blobs) = match Manifest::parse(&m.bytes, &m.media_type)?.0 {
            Manifest::Index { manifests } => {
                (manifests.into_iter().map(|c| c.digest).collect(), vec![])
            }
            Manifest::Image { config, layers } => (
                vec![],
                std::iter::once(config)
                    .chain(layers)
                    .map(|d| (d.digest, d.size))
                    .collect(),
            ),
        };
        let d = m.digest.clone();
        for c in &children {
            self.fetch(client, repo, &c.to_string())?;
        }
        self.manifests.insert(
            d.clone(),
            Seen {
                media_type: m.media_type,
                children,
                blobs,
            },
        );
        Ok(Some(d))
    }

    /// Marks `d` and everything below it with `why` (first mark wins).
    fn reach(&self, d: &Digest, why: &str, into: &mut BTreeMap<Digest, String>) {
        if into.contains_key(d) {
            return;
        }
        into.insert(d.clone(), why.to_string());
        if let Some(s) = self.manifests.get(d) {
            for c in &s.children {
                self.reach(c, why, into);
            }
        }
    }
}

/// The subject hex of a cosign or referrers-schema tag.
fn subject_of(tag: &str) -> Option<&str> {
    let hex = tag.strip_prefix("sha256-")?;
    let hex = [".sig", ".att", ".sbom"]
        .iter()
        .find_map(|s| hex.strip_suffix(s))
        .unwrap_or(hex);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// Builds the plan for one repository: (to delete with why, kept back).
fn plan_repo(
    name: &str,
    view: &RepoView,
    retire: &[(&Root, &String)],
    keep: &[(&Root, &String)],
) -> (Vec<Planned>, Vec<KeptBack>) {
    let retired_tags: BTreeSet<(&str, &Digest)> = retire
        .iter()
        .flat_map(|(r, _)| r.tags.iter().map(move |t| (t.as_str(), &r.digest)))
        .collect();
    let mut kept = BTreeMap::new();
    for (r, why) in keep {
        view.reach(&r.digest, why, &mut kept);
    }
    for (t, d) in &view.tags {
        if subject_of(t).is_none() && !retired_tags.contains(&(t.as_str(), d)) {
            view.reach(d, &format!("tag {t} is not in the delete set"), &mut kept);
        }
    }
    let mut doomed = BTreeMap::new();
    for (r, why) in retire {
        if view.manifests.contains_key(&r.digest) {
            view.reach(&r.digest, why, &mut doomed);
        }
    }
    // Cosign and referrers tags follow their subject.
    for (t, d) in &view.tags {
        let Some(hex) = subject_of(t) else { continue };
        let subject = doomed.keys().find(|s| s.hex() == hex).cloned();
        match subject {
            Some(s) if !kept.contains_key(&s) => {
                let why = format!("{t}: attached to {s}, which is deleted");
                view.reach(d, &why, &mut doomed);
            }
            _ => view.reach(
                d,
                &format!("tag {t} is attached to a kept manifest"),
                &mut kept,
            ),
        }
    }
    let mut delete = Vec::new();
    let mut kept_back = Vec::new();
    for (d, why) in &doomed {
        if let Some(k) = kept.get(d) {
            kept_back.push(KeptBack {
                repository: name.to_string(),
                digest: d.clone(),
                why: k.clone(),
            });
            continue;
        }
        let Some(seen) = view.manifests.get(d) else {
            continue;
        };
        delete.push(Planned {
            repository: name.to_string(),
            digest: d.clone(),
            media_type: seen.media_type.clone(),
            tags: view
                .tags
                .iter()
                .filter(|(_, x)| *x == d)
                .map(|(t, _)| t.clone())
                .collect(),
            why: why.clone(),
        });
    }
    (delete, kept_back)
}

/// Reads the registry and builds the plan for a selection.
pub fn generate(
    client: &Client,
    target: &Target,
    selection: &Selection,
    archives: Vec<String>,
) -> Result<Plan> {
    let mut repos: BTreeSet<String> = selection
        .retire
        .keys()
        .map(|r| r.repository.clone())
        .collect();
    // Every repository of the registry counts for which blobs stay referenced.
    let all: Vec<String> = match client.list_repositories(&target.host) {
        Ok(r) => r,
        Err(RegistryError::NotFound { .. }) => vec![],
        Err(e) => return Err(e.into()),
    };
    repos.extend(all.iter().cloned());
    let mut delete = Vec::new();
    let mut kept_back = Vec::new();
    let mut remaining_blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut doomed_blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for name in &repos {
        let repo = Repo::new(target.host.clone(), name.clone());
        let mut view = RepoView::read(client, &repo)?;
        let retire: Vec<(&Root, &String)> = selection
            .retire
            .iter()
            .filter(|(r, _)| &r.repository == name)
            .collect();
        let keep: Vec<(&Root, &String)> = selection
            .keep
            .iter()
            .filter(|(r, _)| &r.repository == name)
            .collect();
        for (r, _) in retire.iter().chain(&keep) {
            view.fetch(client, &repo, &r.digest.to_string())?;
        }
        let (d, k) = plan_repo(name, &view, &retire, &keep);
        let gone: BTreeSet<&Digest> = d.iter().map(|p| &p.digest).collect();
        for (digest, seen) in &view.manifests {
            for (b, size) in &seen.blobs {
                if gone.contains(digest) {
                    doomed_blobs.insert(b.clone(), *size);
                } else {
                    remaining_blobs.insert(b.clone());
                }
            }
        }
        if !d.is_empty() || !retire.is_empty() {
            tags.insert(name.clone(), view.tags.clone());
        }
        delete.extend(d);
        kept_back.extend(k);
    }
    kept_back.extend(selection.shared.iter().map(|(r, why)| KeptBack {
        repository: r.repository.clone(),
        digest: r.digest.clone(),
        why: why.clone(),
    }));
    // Indexes first, so that no index is left naming a deleted child.
    delete.sort_by_key(|p| !is_index(&p.media_type));
    let unreferenced_blobs: Vec<(Digest, u64)> = doomed_blobs
        .into_iter()
        .filter(|(b, _)| !remaining_blobs.contains(b))
        .collect();
    Ok(Plan {
        format: PLAN_FORMAT.into(),
        target: target.to_string(),
        created: ferry_format::time::now_rfc3339(),
        archives,
        unreferenced_bytes: unreferenced_blobs.iter().map(|(_, s)| s).sum(),
        unreferenced_blobs,
        delete,
        kept_back,
        tags,
        not_found: selection.not_found.clone(),
        notes: selection.notes.clone(),
    })
}

pub fn is_index(media_type: &str) -> bool {
    media_type.contains("index") || media_type.contains("manifest.list")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags_name_their_subject() {
        let hex = "a".repeat(64);
        assert_eq!(subject_of(&format!("sha256-{hex}.sig")), Some(hex.as_str()));
        assert_eq!(subject_of(&format!("sha256-{hex}")), Some(hex.as_str()));
        assert_eq!(subject_of("4.15.0-x86_64"), None);
        assert_eq!(subject_of("sha256-short.sig"), None);
    }
}
