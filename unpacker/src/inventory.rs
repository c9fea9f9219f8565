//! Taking an inventory of a target registry: the repositories under a namespace, their tags,
//! every manifest reachable from them (and from the archives recorded in the ferry state, so
//! that images pushed by digest only are seen too), and every blob those manifests reference.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use ferry_format::index::Index;
use ferry_format::inventory::{
    BlobRecord, Inventory, RepositoryRecord, StreamRecord, INVENTORY_FORMAT,
};
use ferry_format::manifest::Manifest;
use ferry_format::Digest;
use ferry_registry::{Client, Repo};
use rayon::prelude::*;

use crate::state;
use crate::target::Target;

/// What one repository holds.
#[derive(Default)]
struct Held {
    tags: Vec<String>,
    manifests: BTreeSet<Digest>,
    blobs: BTreeMap<Digest, u64>,
}

/// Takes the inventory of `target` (its namespace only, when it has one).
pub fn take(client: &Client, target: &Target) -> Result<Inventory> {
    let mut held = by_tags(client, target)?;
    let streams = add_recorded(client, target, &mut held)?;
    Ok(assemble(target, held, streams))
}

/// Every repository under the target's namespace, walked from its tags.
fn by_tags(client: &Client, target: &Target) -> Result<BTreeMap<String, Held>> {
    let state_repo = state::state_repo(target).name;
    let prefix = target.namespace.as_ref().map(|n| format!("{n}/"));
    let repos: Vec<String> = client
        .list_repositories(&target.host)?
        .into_iter()
        .filter(|r| *r != state_repo)
        .filter(|r| prefix.as_ref().is_none_or(|p| r.starts_with(p.as_str())))
        .collect();
    repos
        .par_iter()
        .map(|name| -> Result<(String, Held)> {
            let repo = Repo::new(target.host.clone(), name.clone());
            let mut h = Held {
                tags: client.list_tags(&repo)?,
                ..Held::default()
            };
            for tag in h.tags.clone() {
                walk(client, &repo, &tag, &mut h)?;
            }
            Ok((name.clone(), h))
        })
        .collect()
}

/// Adds what the archives recorded at the target pushed by digest and is still there. Returns
/// the last record of each stream.
fn add_recorded(
    client: &Client,
    target: &Target,
    held: &mut BTreeMap<String, Held>,
) -> Result<Vec<StreamRecord>> {
    let mut last = Vec::new();
    for st in &state::read_all(client, target)? {
        for rec in &st.records {
            let bytes = state::index_bytes(client, target, rec)?;
            let Ok(index) = Index::from_slice(&bytes) else {
                continue;
            };
            for img in &index.images {
                let repo = target.repo(img.target_repository());
                let h = held.entry(repo.name.clone()).or_default();
                let reference = img.digest.to_string();
                if !h.manifests.contains(&img.digest)
                    && client.manifest_digest(&repo, &reference)?.is_some()
                {
                    walk(client, &repo, &reference, h)?;
                }
            }
        }
        if let Some(r) = st.last() {
            last.push(StreamRecord {
                stream: ferry_format::index::Stream {
                    name: st.stream.clone(),
                    sequence: r.sequence,
                },
                archive_id: r.archive_id.clone(),
            });
        }
    }
    Ok(last)
}

fn assemble(
    target: &Target,
    held: BTreeMap<String, Held>,
    streams: Vec<StreamRecord>,
) -> Inventory {
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut repositories = Vec::new();
    for (name, h) in held {
        if h.manifests.is_empty() {
            continue;
        }
        blobs.extend(h.blobs);
        let mut tags = h.tags;
        tags.sort();
        repositories.push(RepositoryRecord {
            name,
            tags,
            manifests: h.manifests.into_iter().collect(),
        });
    }
    Inventory {
        format: INVENTORY_FORMAT.into(),
        format_version: "1.0".into(),
        created: ferry_format::time::now_rfc3339(),
        tool: format!("ferry-unpack {}", env!("CARGO_PKG_VERSION")),
        target: target.to_string(),
        streams,
        repositories,
        blobs: blobs
            .into_iter()
            .map(|(digest, size)| BlobRecord { digest, size })
            .collect(),
    }
}

/// Records a manifest (by tag or digest) and everything below it.
fn walk(client: &Client, repo: &Repo, reference: &str, h: &mut Held) -> Result<()> {
    let m = client.get_manifest(repo, reference)?;
    if !h.manifests.insert(m.digest.clone()) && reference.starts_with("sha256:") {
        return Ok(());
    }
    match Manifest::parse(&m.bytes, &m.media_type)?.0 {
        Manifest::Index { manifests } => {
            for c in manifests {
                if !h.manifests.contains(&c.digest) {
                    walk(client, repo, &c.digest.to_string(), h)?;
                }
            }
        }
        Manifest::Image { config, layers } => {
            for d in std::iter::once(config).chain(layers) {
                h.blobs.insert(d.digest, d.size);
            }
        }
    }
    Ok(())
}
