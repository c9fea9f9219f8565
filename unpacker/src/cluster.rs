//! Cluster manifests: what a cluster needs to use what was pushed. Pure and offline: built
//! from the signed index, the target mapping and (for release signatures) the media.
//!
//! Files written into `--manifests-dir` (names are stable; `<name>` is `ferry-<stream>`):
//! - `idms-<name>.yaml`: ImageDigestMirrorSet (config.openshift.io/v1) for every source
//!   repository of a digest-referenced image (all release and component repositories);
//! - `itms-<name>.yaml`: ImageTagMirrorSet for repositories of tag-referenced images (only
//!   when there are any);
//! - `icsp-<name>.yaml`: legacy ImageContentSourcePolicy (operator.openshift.io/v1alpha1),
//!   only when asked for (`--icsp`), for clusters older than 4.13;
//! - `release-signatures/signature-sha256-<hex16>.yaml`: one ConfigMap per release image in
//!   `openshift-config-managed`, labelled `release.openshift.io/verification-signatures`, with
//!   `binaryData` keys `sha256-<hex>-<n>` (the shape `oc adm release mirror` writes);
//! - `cs-<catalog>-<tag>.yaml` / `cc-<catalog>-<tag>.yaml`: a `CatalogSource`
//!   (operators.coreos.com/v1alpha1, `openshift-marketplace`, `sourceType: grpc`) and a
//!   `ClusterCatalog` (olm.operatorframework.io/v1) per operator catalog, naming the rebuilt
//!   catalog at the target by digest;
//! - `updateService.yaml`: an `UpdateService` (updateservice.operator.openshift.io/v1) naming
//!   the graph-data image by digest and the mirrored release repository (`platform.graph`);
//! - `mapping.txt`: `source@digest=target[:tag]` lines for `oc image mirror -f`;
//! - `releases.txt`: per release, the target pullspec by digest and the upgrade command.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use ferry_format::index::{Image, Index};
use serde_json::{json, Value};

use crate::push::Target;

/// A file to write, relative to the manifests directory.
#[derive(Debug, Clone)]
pub struct OutFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// What to emit.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Also write the legacy ImageContentSourcePolicy.
    pub icsp: bool,
}

/// Reads a carried blob's bytes (release signatures) from the media.
pub trait BlobSource {
    fn read_small(&self, digest: &ferry_format::Digest) -> Result<Vec<u8>>;
}

/// A Kubernetes object name from free text: lowercase alphanumerics and `-`, at most 63.
pub fn object_name(text: &str) -> String {
    let mut s: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-');
    let mut s: String = s.chars().take(63).collect();
    while s.ends_with('-') {
        s.pop();
    }
    if s.is_empty() {
        "ferry".into()
    } else {
        s
    }
}

/// Whether an image is the graph-data image ferry-pack built.
fn is_graph_image(index: &Index, img: &Image) -> bool {
    index.graph_data.as_ref().is_some_and(|g| {
        g.digest == img.digest && g.registry == img.registry && g.repository == img.repository
    })
}

/// The catalog an image is the rebuilt index of, if any.
fn rebuilt_catalog<'a>(index: &'a Index, img: &Image) -> Option<&'a ferry_format::index::Catalog> {
    index.catalogs.iter().find(|c| {
        c.digest == img.digest && c.registry == img.registry && c.repository == img.repository
    })
}

/// `registry/repo` of a reference `registry/repo[:tag][@digest]`.
fn repository_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => name.to_string(),
    }
}

fn is_release_image(index: &Index, img: &Image) -> bool {
    index.releases.iter().any(|r| {
        r.digest == img.digest && r.registry == img.registry && r.repository == img.repository
    })
}

/// Source repositories (`registry/repo`) and their mirror, split into digest- and
/// tag-referenced.
fn mirrors(index: &Index, target: &Target) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut by_digest = BTreeMap::new();
    let mut by_tag = BTreeMap::new();
    let mirror = |img: &Image| format!("{}/{}", target.host, target.repository(&img.repository));
    for img in &index.images {
        if is_graph_image(index, img) {
            // Built by ferry-pack: it exists only at the target, named by the UpdateService.
            continue;
        }
        if let Some(c) = rebuilt_catalog(index, img) {
            // A rebuilt catalog exists only at the target; pulls of the source catalog go there.
            by_tag.insert(repository_of(&c.source), mirror(img));
            continue;
        }
        let source = format!("{}/{}", img.registry, img.repository);
        if img.tags.is_empty() || is_release_image(index, img) {
            by_digest.insert(source, mirror(img));
        } else {
            by_tag.insert(source, mirror(img));
        }
    }
    (by_digest, by_tag)
}

fn yaml(v: &Value) -> Result<Vec<u8>> {
    Ok(serde_saphyr::to_string(v)
        .context("serializing YAML")?
        .into_bytes())
}

/// Builds every file (see the module docs).
pub fn build(
    index: &Index,
    media: &dyn BlobSource,
    target: &Target,
    opts: &Options,
) -> Result<Vec<OutFile>> {
    let name = object_name(&format!(
        "ferry-{}",
        index.stream.as_ref().map_or("archive", |s| s.name.as_str())
    ));
    let (by_digest, by_tag) = mirrors(index, target);
    let mut out = Vec::new();
    let entries = |m: &BTreeMap<String, String>| -> Vec<Value> {
        m.iter()
            .map(|(s, d)| json!({"source": s, "mirrors": [d]}))
            .collect()
    };
    let labels = json!({"app.kubernetes.io/managed-by": "ferry"});
    if !by_digest.is_empty() {
        out.push(OutFile {
            path: format!("idms-{name}.yaml").into(),
            bytes: yaml(&json!({
                "apiVersion": "config.openshift.io/v1",
                "kind": "ImageDigestMirrorSet",
                "metadata": {"name": name, "labels": labels},
                "spec": {"imageDigestMirrors": entries(&by_digest)}
            }))?,
        });
        if opts.icsp {
            out.push(OutFile {
                path: format!("icsp-{name}.yaml").into(),
                bytes: yaml(&json!({
                    "apiVersion": "operator.openshift.io/v1alpha1",
                    "kind": "ImageContentSourcePolicy",
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"repositoryDigestMirrors": entries(&by_digest)}
                }))?,
            });
        }
    }
    if !by_tag.is_empty() {
        out.push(OutFile {
            path: format!("itms-{name}.yaml").into(),
            bytes: yaml(&json!({
                "apiVersion": "config.openshift.io/v1",
                "kind": "ImageTagMirrorSet",
                "metadata": {"name": name, "labels": labels},
                "spec": {"imageTagMirrors": entries(&by_tag)}
            }))?,
        });
    }

    // Release signatures: one ConfigMap per release image digest.
    let mut signed = BTreeSet::new();
    for r in &index.releases {
        if r.signatures.is_empty() || !signed.insert(r.digest.clone()) {
            continue;
        }
        let hex = r.digest.hex();
        let mut data = serde_json::Map::new();
        for (n, d) in r.signatures.iter().enumerate() {
            let bytes = media
                .read_small(d)
                .with_context(|| format!("signature {d} of release {}", r.version))?;
            data.insert(
                format!("sha256-{hex}-{}", n + 1),
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
        }
        out.push(OutFile {
            path: format!("release-signatures/signature-sha256-{}.yaml", &hex[..16]).into(),
            bytes: yaml(&json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": format!("sha256-{hex}"),
                    "namespace": "openshift-config-managed",
                    "labels": {"release.openshift.io/verification-signatures": ""},
                    "annotations": {"release.openshift.io/version": r.version}
                },
                "binaryData": data
            }))?,
        });
    }

    // Operator catalogs: a CatalogSource (OLM v0) and a ClusterCatalog (OLM v1) each, naming the
    // rebuilt catalog at the target by digest.
    let mut names = BTreeSet::new();
    for c in &index.catalogs {
        let last = c.repository.rsplit('/').next().unwrap_or(&c.repository);
        let base = object_name(&match &c.tag {
            Some(t) => format!("{last}-{t}"),
            None => format!("{last}-{}", &c.digest.hex()[..12]),
        });
        let mut base = base.chars().take(60).collect::<String>();
        while !names.insert(base.clone()) {
            base = format!("{base}-{}", &c.digest.hex()[..6]);
        }
        let image = format!(
            "{}/{}@{}",
            target.host,
            target.repository(&c.repository),
            c.digest
        );
        out.push(OutFile {
            path: format!("cs-{base}.yaml").into(),
            bytes: yaml(&json!({
                "apiVersion": "operators.coreos.com/v1alpha1",
                "kind": "CatalogSource",
                "metadata": {"name": format!("cs-{base}"), "namespace": "openshift-marketplace", "labels": labels},
                "spec": {
                    "sourceType": "grpc",
                    "image": image,
                    "displayName": format!("{} (mirrored by ferry)", c.source),
                    "publisher": "ferry"
                }
            }))?,
        });
        out.push(OutFile {
            path: format!("cc-{base}.yaml").into(),
            bytes: yaml(&json!({
                "apiVersion": "olm.operatorframework.io/v1",
                "kind": "ClusterCatalog",
                "metadata": {"name": format!("cc-{base}"), "labels": labels},
                "spec": {"source": {"type": "Image", "image": {"ref": image}}}
            }))?,
        });
    }

    // The update service, when the graph-data image was built.
    if let Some(g) = &index.graph_data {
        let releases = index
            .releases
            .first()
            .map(|r| r.repository.clone())
            .unwrap_or_else(|| "openshift-release-dev/ocp-release".to_string());
        out.push(OutFile {
            path: "updateService.yaml".into(),
            bytes: yaml(&json!({
                "apiVersion": "updateservice.operator.openshift.io/v1",
                "kind": "UpdateService",
                "metadata": {"name": "update-service-ferry", "namespace": "openshift-update-service", "labels": labels},
                "spec": {
                    "replicas": 2,
                    "releases": format!("{}/{}", target.host, target.repository(&releases)),
                    "graphDataImage": format!("{}/{}@{}", target.host, target.repository(&g.repository), g.digest)
                }
            }))?,
        });
    }

    // mapping.txt: one line per tag, or one by digest for untagged images.
    let mut lines = BTreeSet::new();
    // (Rebuilt catalogs and the graph-data image are not at the source: `oc image mirror`
    // could not copy them.)
    for img in index
        .images
        .iter()
        .filter(|i| rebuilt_catalog(index, i).is_none() && !is_graph_image(index, i))
    {
        let src = format!("{}/{}@{}", img.registry, img.repository, img.digest);
        let dst = format!("{}/{}", target.host, target.repository(&img.repository));
        if img.tags.is_empty() {
            lines.insert(format!("{src}={dst}"));
        }
        for t in &img.tags {
            lines.insert(format!("{src}={dst}:{t}"));
        }
    }
    let mut mapping = String::new();
    for l in lines {
        mapping.push_str(&l);
        mapping.push('\n');
    }
    out.push(OutFile {
        path: "mapping.txt".into(),
        bytes: mapping.into_bytes(),
    });

    if !index.releases.is_empty() {
        let mut text = String::new();
        for r in &index.releases {
            let repo = format!("{}/{}", target.host, target.repository(&r.repository));
            let tag = index
                .images
                .iter()
                .find(|i| i.digest == r.digest && i.repository == r.repository)
                .and_then(|i| i.tags.first().cloned());
            text.push_str(&format!(
                "release {} ({}){}\n  image:      {repo}@{}\n",
                r.version,
                r.architecture,
                if r.channels.is_empty() {
                    String::new()
                } else {
                    format!(", channels {}", r.channels.join(", "))
                },
                r.digest
            ));
            if let Some(t) = tag {
                text.push_str(&format!("  tag:        {repo}:{t}\n"));
            }
            text.push_str(&format!(
                "  components: {} (mirrored under {})\n  signatures: {}\n  upgrade:    oc adm upgrade --allow-explicit-upgrade --to-image={repo}@{}\n\n",
                r.components,
                r.component_repositories
                    .iter()
                    .map(|c| format!(
                        "{}/{}",
                        target.host,
                        target.repository(c.split_once('/').map_or(c.as_str(), |x| x.1))
                    ))
                    .collect::<Vec<_>>()
                    .join(", "),
                if r.signatures.is_empty() {
                    format!("none ({})", r.signature_check)
                } else {
                    format!(
                        "{} verified at pack time, in release-signatures/signature-sha256-{}.yaml",
                        r.signatures.len(),
                        &r.digest.hex()[..16]
                    )
                },
                r.digest
            ));
        }
        out.push(OutFile {
            path: "releases.txt".into(),
            bytes: text.into_bytes(),
        });
    }
    Ok(out)
}

/// Writes the files under `dir` (created if missing). Existing files of the same names are
/// replaced atomically; nothing else in the directory is touched.
pub fn write(dir: &Path, files: &[OutFile]) -> Result<()> {
    for f in files {
        if f.path.is_absolute() || f.path.components().any(|c| c.as_os_str() == "..") {
            bail!("internal error: bad manifest path {}", f.path.display());
        }
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let tmp = path.with_extension("tmp-ferry");
        std::fs::write(&tmp, &f.bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_of_references() {
        assert_eq!(repository_of("r.io:5000/a/b:v1"), "r.io:5000/a/b");
        assert_eq!(repository_of("r.io/a/b@sha256:00"), "r.io/a/b");
        assert_eq!(repository_of("r.io:5000/a/b"), "r.io:5000/a/b");
    }

    #[test]
    fn object_names_are_dns_labels() {
        assert_eq!(object_name("ferry-My_Stream.v2"), "ferry-my-stream-v2");
        assert_eq!(object_name("--"), "ferry");
        assert!(object_name(&"x".repeat(100)).len() <= 63);
    }
}
