//! A release payload read from the media: which release the user means, the image manifest of
//! the architecture wanted, and its component images by name (from
//! `release-manifests/image-references` in the release image's layers).

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{bail, Context, Result};
use ferry_format::archive::ArchiveSet;
use ferry_format::index::{Index, Release};
use ferry_format::manifest::{Descriptor, Manifest};
use ferry_format::Digest;

use super::layers;

const IMAGE_REFERENCES: &str = "release-manifests/image-references";
/// A real image-references is about 120 KB.
const MAX_REFERENCES_BYTES: u64 = 16 << 20;

/// The release payload of one architecture.
#[derive(Debug)]
pub struct Payload<'a> {
    pub release: &'a Release,
    /// `amd64`, `arm64`, ...: the release's own, or the one taken from a `multi` release.
    pub architecture: String,
    /// Component tag name → image digest (a manifest list for `multi`).
    pub components: BTreeMap<String, Digest>,
}

/// The release `want` names: `VERSION` when only one architecture of it is carried, else
/// `VERSION-ARCH` (`4.15.3-arm64`, `4.15.3-multi`).
pub fn select<'a>(index: &'a Index, want: &str) -> Result<&'a Release> {
    let named = |r: &Release| format!("{}-{}", r.version, r.architecture);
    let by_name: Vec<&Release> = index.releases.iter().filter(|r| named(r) == want).collect();
    let matches = if by_name.is_empty() {
        index
            .releases
            .iter()
            .filter(|r| r.version == want)
            .collect()
    } else {
        by_name
    };
    let all: Vec<String> = index.releases.iter().map(named).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] if all.is_empty() => bail!("this archive carries no release"),
        [] => bail!(
            "this archive carries no release {want}; it carries {}",
            all.join(", ")
        ),
        several => bail!(
            "{want} is carried for several architectures; name one: {}",
            several
                .iter()
                .map(|r| named(r))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Reads the payload of `release` for `arch` (used only when the release is `multi`).
pub fn open<'a>(archives: &ArchiveSet, release: &'a Release, arch: &str) -> Result<Payload<'a>> {
    let architecture = if release.architecture == "multi" {
        arch.to_string()
    } else {
        release.architecture.clone()
    };
    let what = format!("release {} ({})", release.version, release.architecture);
    let layers = image_layers(archives, &release.digest, &architecture)
        .with_context(|| format!("reading the image of {what}"))?;
    let mut bytes = Vec::new();
    let found = layers::find_file(
        archives,
        &layers,
        IMAGE_REFERENCES,
        &mut |r: &mut dyn Read| {
            r.take(MAX_REFERENCES_BYTES + 1).read_to_end(&mut bytes)?;
            Ok(())
        },
    )?;
    if found.is_none() {
        bail!("{what}: the release image holds no {IMAGE_REFERENCES}; is it a release payload?");
    }
    if bytes.len() as u64 > MAX_REFERENCES_BYTES {
        bail!("{what}: {IMAGE_REFERENCES} is larger than {MAX_REFERENCES_BYTES} bytes");
    }
    Ok(Payload {
        release,
        architecture,
        components: component_digests(&bytes)
            .with_context(|| format!("{what}: {IMAGE_REFERENCES}"))?,
    })
}

/// The layers of the image `digest` names; an index resolves to its `linux/arch` child.
pub fn image_layers(archives: &ArchiveSet, digest: &Digest, arch: &str) -> Result<Vec<Descriptor>> {
    match read_manifest(archives, digest)? {
        Manifest::Image { layers, .. } => Ok(layers),
        Manifest::Index { manifests } => {
            let child = manifests.iter().find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            });
            let Some(child) = child else {
                let have: Vec<String> = manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.label()))
                    .collect();
                bail!(
                    "{digest} has no linux/{arch} image (it has {}); choose one with --arch",
                    have.join(", ")
                );
            };
            match read_manifest(archives, &child.digest)? {
                Manifest::Image { layers, .. } => Ok(layers),
                Manifest::Index { .. } => bail!("{} is an index inside an index", child.digest),
            }
        }
    }
}

fn read_manifest(archives: &ArchiveSet, digest: &Digest) -> Result<Manifest> {
    let bytes = archives.read_small(digest, "manifest")?;
    let media_type = archives
        .index()
        .manifest(digest)
        .map_or("", |m| m.media_type.as_str());
    Ok(Manifest::parse(&bytes, media_type)
        .with_context(|| format!("manifest {digest}"))?
        .0)
}

/// `spec.tags[].name` → the digest of `from.name` (a pullspec by digest).
fn component_digests(bytes: &[u8]) -> Result<BTreeMap<String, Digest>> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).context("not JSON")?;
    let tags = doc
        .pointer("/spec/tags")
        .and_then(|t| t.as_array())
        .context("no spec.tags")?;
    let mut out = BTreeMap::new();
    for t in tags {
        let name = t["name"].as_str().context("a tag without a name")?;
        let from = t.pointer("/from/name").and_then(|f| f.as_str());
        let Some((_, digest)) = from.and_then(|f| f.split_once('@')) else {
            bail!("tag {name} does not name its image by digest");
        };
        let digest: Digest = digest
            .parse()
            .with_context(|| format!("tag {name}: bad digest"))?;
        out.insert(name.to_string(), digest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_come_from_the_real_image_references() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/realdata/release/release-manifests/image-references"
        );
        let bytes = std::fs::read(p).unwrap();
        let c = component_digests(&bytes).unwrap();
        assert_eq!(c.len(), 183);
        assert!(c.contains_key("installer"));
        assert!(c.contains_key("cli"));
        assert!(c.contains_key("installer-artifacts"));
        let e = component_digests(
            br#"{"spec":{"tags":[{"name":"cli","from":{"name":"quay.io/x:latest"}}]}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("by digest"), "{e}");
    }
}
