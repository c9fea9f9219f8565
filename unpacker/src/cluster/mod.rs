//! Cluster manifests: what a cluster needs to use what was pushed. Pure and offline: built
//! from the signed index, the target mapping and the release signatures read from the media.
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
//! - `cip-<name>-<key12>.yaml`: a `ClusterImagePolicy` (config.openshift.io/v1, `PublicKey`)
//!   per sigstore key that verified signatures at pack time, scoped to the source repositories
//!   of the (non-release) images it verified;
//! - `updateService.yaml`: an `UpdateService` (updateservice.operator.openshift.io/v1) naming
//!   the graph-data image by digest and the mirrored release repository (`platform.graph`);
//! - `helm-charts.yaml`: where each Helm chart went (`oci://` reference, version, digest, the
//!   images it names and where they are now), only when the archive carries charts;
//! - `install-config-mirrors.yaml`: `imageDigestSources` (the IDMS's mirrors in
//!   install-config's shape) and, with a CA bundle, `additionalTrustBundle`, to merge into
//!   `install-config.yaml`; only when there are digest mirrors;
//! - `samples-operator-config.yaml`: the samples operator's `Config` `cluster`
//!   (samplesRegistry the target, skippedImagestreams the streams not mirrored), only when
//!   the archive records samples (`ferry-pack --samples`);
//! - `mapping.txt`: `source@digest=target[:tag]` lines for `oc image mirror -f`;
//! - `releases.txt`: per release, the target pullspec by digest and the upgrade command.
//!
//! [`mirrors`] writes the mirror sets and mapping.txt, [`releases`] the signature ConfigMaps,
//! releases.txt and the UpdateService, [`install_config`] the install-config stanza, [`catalogs`] the catalog sources, [`policies`] the
//! ClusterImagePolicies, [`helm`] the chart list, [`samples`] the samples operator's Config.

mod catalogs;
mod helm;
mod install_config;
mod mirrors;
mod policies;
mod releases;
mod samples;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ferry_format::archive::{ArchiveSet, ReadError};
use ferry_format::index::Index;
use ferry_format::Digest;
use serde_json::{json, Value};

use crate::target::Target;

/// A file to write, relative to the manifests directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// What to emit.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Also write the legacy ImageContentSourcePolicy.
    pub icsp: bool,
    /// The mirror's CA certificates (PEM, from [`trust_bundle`]), for install-config's
    /// `additionalTrustBundle`.
    pub trust_bundle: Option<String>,
}

pub use install_config::trust_bundle;

/// Release signature bytes by digest, as carried.
pub type Signatures = BTreeMap<Digest, Vec<u8>>;

/// Reads every release signature the index lists from the archives (checked against its
/// digest).
pub fn read_signatures(archives: &ArchiveSet) -> Result<Signatures, ReadError> {
    let mut out = Signatures::new();
    for d in archives.index().releases.iter().flat_map(|r| &r.signatures) {
        if !out.contains_key(d) {
            out.insert(d.clone(), archives.read_small(d, "signature")?);
        }
    }
    Ok(out)
}

/// Builds every file (see the module docs).
pub fn build(
    index: &Index,
    signatures: &Signatures,
    target: &Target,
    opts: &Options,
) -> Result<Vec<OutFile>> {
    let name = object_name(&format!(
        "ferry-{}",
        index.stream.as_ref().map_or("archive", |s| s.name.as_str())
    ));
    let mut out = mirrors::mirror_sets(index, target, &name, opts)?;
    out.extend(releases::signature_maps(index, signatures)?);
    out.extend(catalogs::catalog_sources(index, target)?);
    out.extend(policies::image_policies(index, &name)?);
    out.extend(releases::update_service(index, target)?);
    out.extend(helm::charts(index, target)?);
    out.extend(samples::samples_config(index, target)?);
    let digest_mirrors = mirrors::mirrors(index, target).by_digest;
    if !digest_mirrors.is_empty() {
        out.push(install_config::install_config(
            &digest_mirrors,
            opts.trust_bundle.as_deref(),
        )?);
    }
    out.push(mirrors::mapping(index, target));
    out.extend(releases::releases_txt(index, target));
    Ok(out)
}

/// The labels of every object ferry writes.
fn labels() -> Value {
    json!({"app.kubernetes.io/managed-by": "ferry"})
}

fn yaml(path: impl Into<PathBuf>, v: &Value) -> Result<OutFile> {
    let text = serde_saphyr::to_string(v).context("serializing YAML")?;
    Ok(OutFile {
        path: path.into(),
        bytes: text.into_bytes(),
    })
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
mod tests;
