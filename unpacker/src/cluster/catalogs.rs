//! Operator catalogs: a CatalogSource (OLM v0) and a ClusterCatalog (OLM v1) for each, naming
//! the rebuilt catalog at the target by digest.

use std::collections::BTreeSet;

use anyhow::Result;
use ferry_format::index::{Catalog, Index};
use serde_json::json;

use super::{labels, object_name, yaml, OutFile};
use crate::target::Target;

/// `cs-<name>.yaml` and `cc-<name>.yaml` per catalog; names are unique within the archive.
pub fn catalog_sources(index: &Index, target: &Target) -> Result<Vec<OutFile>> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for c in &index.catalogs {
        let name = unique_name(c, &mut names);
        let image = format!("{}@{}", target.mirror(&c.repository), c.digest);
        out.push(yaml(
            format!("cs-{name}.yaml"),
            &json!({
                "apiVersion": "operators.coreos.com/v1alpha1",
                "kind": "CatalogSource",
                "metadata": {"name": format!("cs-{name}"), "namespace": "openshift-marketplace", "labels": labels()},
                "spec": {
                    "sourceType": "grpc",
                    "image": image,
                    "displayName": format!("{} (mirrored by ferry)", c.source),
                    "publisher": "ferry"
                }
            }),
        )?);
        out.push(yaml(
            format!("cc-{name}.yaml"),
            &json!({
                "apiVersion": "olm.operatorframework.io/v1",
                "kind": "ClusterCatalog",
                "metadata": {"name": format!("cc-{name}"), "labels": labels()},
                "spec": {"source": {"type": "Image", "image": {"ref": image}}}
            }),
        )?);
    }
    Ok(out)
}

/// `<last path component>-<tag>` (or a digest prefix), made unique with more of the digest.
fn unique_name(c: &Catalog, taken: &mut BTreeSet<String>) -> String {
    let last = c.repository.rsplit('/').next().unwrap_or(&c.repository);
    let base = object_name(&match &c.tag {
        Some(t) => format!("{last}-{t}"),
        None => format!("{last}-{}", &c.digest.hex()[..12]),
    });
    let mut name: String = base.chars().take(60).collect();
    while !taken.insert(name.clone()) {
        name = format!("{name}-{}", &c.digest.hex()[..6]);
    }
    name
}
