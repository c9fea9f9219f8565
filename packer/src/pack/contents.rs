//! What the archive will hold, worked out from the plan and the bases alone: the objects it
//! carries (in layout order), the blobs it expects the site to have (a delta), and the
//! references of its OCI layout `index.json`.

use ferry_format::archive::write::Object;
use ferry_format::index::Blob;
use ferry_format::oci::LayoutRef;
use ferry_format::Digest;

use crate::base::Bases;
use crate::plan::Plan;

/// Whether `d` is left to a base: a base lists it and the plan does not make it (objects made
/// here, like release signatures, are always carried).
fn in_base(plan: &Plan, bases: &Bases, d: &Digest) -> bool {
    bases.content.contains_key(d) && !plan.inline.contains_key(d)
}

/// The objects the archive carries, in layout order: manifests, then fetched blobs, then
/// objects made by the packer. Everything a base brings is left out.
pub fn objects(plan: &Plan, bases: &Bases) -> Vec<Object> {
    let manifests = plan
        .manifests
        .iter()
        .filter(|(d, _)| !in_base(plan, bases, d))
        .map(|(d, m)| Object {
            digest: d.clone(),
            size: m.bytes.len() as u64,
        });
    let blobs = plan
        .blobs
        .iter()
        .filter(|(d, _)| !plan.manifests.contains_key(*d) && !in_base(plan, bases, d))
        .map(|(d, b)| Object {
            digest: d.clone(),
            size: b.size,
        });
    let inline = plan
        .inline
        .iter()
        .filter(|(d, _)| !plan.manifests.contains_key(*d) && !plan.blobs.contains_key(*d))
        .map(|(d, b)| Object {
            digest: d.clone(),
            size: b.len() as u64,
        });
    let mut all: Vec<Object> = manifests.chain(blobs).chain(inline).collect();
    all.shrink_to_fit();
    all
}

/// The records of what a delta expects the site to hold: every planned manifest and blob a
/// base lists, named by that base.
pub fn expected(plan: &Plan, bases: &Bases) -> Vec<Blob> {
    let manifests = plan
        .manifests
        .iter()
        .map(|(d, m)| (d, m.bytes.len() as u64));
    let blobs = plan.blobs.iter().map(|(d, b)| (d, b.size));
    manifests
        .chain(blobs)
        .filter(|(d, _)| !plan.inline.contains_key(*d))
        .filter_map(|(d, size)| {
            let (id, blake3) = bases.content.get(d)?;
            Some(Blob {
                digest: d.clone(),
                size,
                blake3: blake3.clone(),
                parts: Vec::new(),
                base: Some(id.clone()),
                missing: false,
            })
        })
        .collect()
}

/// The references written to `v2/index.json`: one per tag, or one by digest for untagged images.
pub fn layout_refs(plan: &Plan) -> Vec<LayoutRef> {
    let mut refs = Vec::new();
    for img in &plan.images {
        let size = plan.manifests[&img.digest].bytes.len() as u64;
        let base = format!("{}/{}", img.registry, img.repository);
        let names: Vec<String> = if img.tags.is_empty() {
            vec![format!("{base}@{}", img.digest)]
        } else {
            img.tags.iter().map(|t| format!("{base}:{t}")).collect()
        };
        for name in names {
            refs.push(LayoutRef {
                name,
                digest: img.digest.clone(),
                media_type: img.media_type.clone(),
                size,
            });
        }
    }
    refs
}
