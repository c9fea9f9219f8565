//! Where each source repository is mirrored: the ImageDigestMirrorSet and ImageTagMirrorSet
//! (and the legacy ImageContentSourcePolicy), and mapping.txt for `oc image mirror -f`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use ferry_format::index::{Catalog, Image, Index};
use serde_json::{json, Value};

use super::{labels, yaml, Options, OutFile};
use crate::target::Target;

/// Source repositories (`registry/repo`) and their mirror, split into digest- and
/// tag-referenced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mirrors {
    pub by_digest: BTreeMap<String, String>,
    pub by_tag: BTreeMap<String, String>,
}

/// What an image of the index is, for the cluster.
enum Role<'a> {
    /// The graph-data image ferry-pack built: it exists only at the target.
    GraphData,
    /// A rebuilt catalog: it exists only at the target; pulls of its source go there.
    RebuiltCatalog(&'a Catalog),
    /// A release image: always pulled by digest.
    Release,
    /// A signature or other attachment: found next to its image, never pulled by name.
    Attachment,
    /// A Helm chart artifact: fetched by `helm pull oci://...` at the target, never by the
    /// cluster from its source (which is a chart repository, not a registry).
    HelmChart,
    /// Anything else.
    Plain,
}

fn role<'a>(index: &'a Index, img: &Image) -> Role<'a> {
    let id = img.id();
    if index
        .graph_data
        .as_ref()
        .is_some_and(|g| g.image_id() == id)
    {
        Role::GraphData
    } else if let Some(c) = index.catalogs.iter().find(|c| c.image_id() == id) {
        Role::RebuiltCatalog(c)
    } else if index.releases.iter().any(|r| r.image_id() == id) {
        Role::Release
    } else if index.is_attachment(img) {
        Role::Attachment
    } else if index.charts.iter().any(|c| c.image_id() == id) {
        Role::HelmChart
    } else {
        Role::Plain
    }
}

/// `registry/repo` of a reference `registry/repo[:tag][@digest]`.
pub fn repository_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => name.to_string(),
    }
}

/// Every source repository and its mirror at `target`.
pub fn mirrors(index: &Index, target: &Target) -> Mirrors {
    let mut m = Mirrors::default();
    for img in &index.images {
        let mirror = target.mirror(img.target_repository());
        let source = format!("{}/{}", img.registry, img.repository);
        match role(index, img) {
            Role::GraphData | Role::Attachment | Role::HelmChart => {}
            // A catalog read from a layout on disk: no cluster pulls it by its source name.
            Role::RebuiltCatalog(c) if c.from_layout() => {}
            Role::RebuiltCatalog(c) => {
                m.by_tag.insert(repository_of(&c.source), mirror);
            }
            Role::Release => {
                m.by_digest.insert(source, mirror);
            }
            Role::Plain if img.tags.is_empty() => {
                m.by_digest.insert(source, mirror);
            }
            Role::Plain => {
                m.by_tag.insert(source, mirror);
            }
        }
    }
    m
}

/// The IDMS (and ICSP when asked for) for digest-referenced repositories, the ITMS for
/// tag-referenced ones; a set with no entry is not written.
pub fn mirror_sets(
    index: &Index,
    target: &Target,
    name: &str,
    opts: &Options,
) -> Result<Vec<OutFile>> {
    let m = mirrors(index, target);
    let entries = |m: &BTreeMap<String, String>| -> Vec<Value> {
        m.iter()
            .map(|(s, d)| json!({"source": s, "mirrors": [d]}))
            .collect()
    };
    let mut out = Vec::new();
    if !m.by_digest.is_empty() {
        out.push(yaml(
            format!("idms-{name}.yaml"),
            &json!({
                "apiVersion": "config.openshift.io/v1",
                "kind": "ImageDigestMirrorSet",
                "metadata": {"name": name, "labels": labels()},
                "spec": {"imageDigestMirrors": entries(&m.by_digest)}
            }),
        )?);
        if opts.icsp {
            out.push(yaml(
                format!("icsp-{name}.yaml"),
                &json!({
                    "apiVersion": "operator.openshift.io/v1alpha1",
                    "kind": "ImageContentSourcePolicy",
                    "metadata": {"name": name, "labels": labels()},
                    "spec": {"repositoryDigestMirrors": entries(&m.by_digest)}
                }),
            )?);
        }
    }
    if !m.by_tag.is_empty() {
        out.push(yaml(
            format!("itms-{name}.yaml"),
            &json!({
                "apiVersion": "config.openshift.io/v1",
                "kind": "ImageTagMirrorSet",
                "metadata": {"name": name, "labels": labels()},
                "spec": {"imageTagMirrors": entries(&m.by_tag)}
            }),
        )?);
    }
    Ok(out)
}

/// mapping.txt: one `source@digest=target[:tag]` line per tag, or one by digest for an untagged
/// image. Rebuilt catalogs, the graph-data image and Helm chart artifacts are left out: they
/// are not at a source registry, so `oc image mirror` could not copy them.
pub fn mapping(index: &Index, target: &Target) -> OutFile {
    let mut lines = BTreeSet::new();
    for img in &index.images {
        if matches!(
            role(index, img),
            Role::GraphData | Role::RebuiltCatalog(_) | Role::HelmChart
        ) {
            continue;
        }
        let src = format!("{}/{}@{}", img.registry, img.repository, img.digest);
        let dst = target.mirror(img.target_repository());
        if img.tags.is_empty() {
            lines.insert(format!("{src}={dst}"));
        }
        for t in &img.tags {
            lines.insert(format!("{src}={dst}:{t}"));
        }
    }
    let mut text = String::new();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    OutFile {
        path: "mapping.txt".into(),
        bytes: text.into_bytes(),
    }
}
