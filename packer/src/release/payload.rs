//! Payload discovery: reading `release-manifests/image-references`,
//! `release-manifests/release-metadata` and the boot images ConfigMap out of a release image's
//! layers, streaming.
//!
//! Layers are read last to first (the release manifests are in the top layer of every
//! OpenShift payload), decompressed and walked as tar on the fly; only the small files are
//! kept in memory. A layer that holds any of them is read to its end so that its sha256 is
//! checked before anything in it is trusted. Lower layers are not read once image-references
//! and release-metadata are found (the boot images file, when a payload has one, is in the same
//! layer).

use std::io::Read;

use anyhow::{bail, Context, Result};
use ferry_format::hash::HashingReader;
use ferry_format::manifest::Manifest;
use ferry_format::Digest;
use ferry_registry::{Client, Reference, Repo};
use serde::Deserialize;

use super::bootimages::BOOT_IMAGES;

pub const IMAGE_REFERENCES: &str = "release-manifests/image-references";
pub const RELEASE_METADATA: &str = "release-manifests/release-metadata";
/// Largest of the files accepted (a real image-references is ~120 KB).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What a payload says about itself.
#[derive(Debug, Clone)]
pub struct Payload {
    /// `metadata.name` of image-references (the release version).
    pub version: String,
    /// Component tag name and its pullspec (by digest), in file order.
    pub components: Vec<(String, Reference)>,
    /// `version` from release-metadata.
    pub metadata_version: Option<String>,
    /// The boot images ConfigMap, unparsed: read only when the KubeVirt disk is wanted.
    pub boot_images: Option<Vec<u8>>,
}

#[derive(Deserialize)]
struct ImageStream {
    kind: String,
    metadata: IsMetadata,
    #[serde(default)]
    spec: IsSpec,
}

#[derive(Deserialize)]
struct IsMetadata {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
struct IsSpec {
    #[serde(default)]
    tags: Vec<IsTag>,
}

#[derive(Deserialize)]
struct IsTag {
    name: String,
    from: Option<IsFrom>,
}

#[derive(Deserialize)]
struct IsFrom {
    #[serde(default)]
    kind: String,
    name: String,
}

#[derive(Deserialize)]
struct ReleaseMetadata {
    #[serde(default)]
    kind: String,
    version: String,
}

/// Parses `image-references`. Every component must be pinned by digest.
pub fn parse_image_references(bytes: &[u8]) -> Result<(String, Vec<(String, Reference)>)> {
    let is: ImageStream =
        serde_json::from_slice(bytes).context("image-references is not ImageStream JSON")?;
    if is.kind != "ImageStream" {
        bail!(
            "image-references has kind {:?}, expected ImageStream",
            is.kind
        );
    }
    let mut out = Vec::with_capacity(is.spec.tags.len());
    for t in is.spec.tags {
        let Some(from) = t.from else {
            bail!("image-references tag {} has no `from` image", t.name);
        };
        if from.kind != "DockerImage" {
            bail!(
                "image-references tag {} points at a {:?}, expected DockerImage",
                t.name,
                from.kind
            );
        }
        let r: Reference = from
            .name
            .parse()
            .with_context(|| format!("image-references tag {}: bad pullspec", t.name))?;
        if r.digest.is_none() {
            bail!(
                "image-references tag {} names {} by tag; a release pins every component by digest",
                t.name,
                from.name
            );
        }
        out.push((t.name, r));
    }
    if out.is_empty() {
        bail!("image-references lists no component image");
    }
    Ok((is.metadata.name, out))
}

/// Reads the payload of a single-architecture release image manifest.
pub fn discover(
    client: &Client,
    repo: &Repo,
    manifest: &[u8],
    media_type: &str,
) -> Result<Payload> {
    let (m, _) = Manifest::parse(manifest, media_type)?;
    let Manifest::Image { layers, .. } = m else {
        bail!("expected an image manifest, found an index");
    };
    let mut files = Files::default();
    for layer in layers.iter().rev() {
        let found = scan_layer(client, repo, &layer.digest)
            .with_context(|| format!("reading layer {} of the release image", layer.digest))?;
        files.fill_from(found);
        if files.refs.is_some() && files.meta.is_some() {
            break;
        }
    }
    let Files { refs, meta, boot } = files;
    let Some(refs) = refs else {
        bail!("no layer holds {IMAGE_REFERENCES}: this is not an OpenShift release image");
    };
    let (version, components) = parse_image_references(&refs)?;
    let metadata_version = match meta {
        Some(b) => {
            let m: ReleaseMetadata =
                serde_json::from_slice(&b).context("release-metadata is not valid JSON")?;
            if !m.kind.is_empty() && m.kind != "cincinnati-metadata-v0" {
                bail!("release-metadata has kind {:?}", m.kind);
            }
            Some(m.version)
        }
        None => None,
    };
    if let Some(mv) = &metadata_version {
        if mv != &version {
            bail!("release-metadata says version {mv}, but image-references says {version}");
        }
    }
    Ok(Payload {
        version,
        components,
        metadata_version,
        boot_images: boot,
    })
}

/// The release files found in a layer (or, filled layer by layer, in the image).
#[derive(Debug, Default)]
struct Files {
    refs: Option<Vec<u8>>,
    meta: Option<Vec<u8>>,
    boot: Option<Vec<u8>>,
}

impl Files {
    fn is_empty(&self) -> bool {
        self.refs.is_none() && self.meta.is_none() && self.boot.is_none()
    }

    /// Takes what a lower layer holds where an upper layer had nothing: an upper layer's file
    /// wins over a lower one's.
    fn fill_from(&mut self, lower: Files) {
        self.refs = self.refs.take().or(lower.refs);
        self.meta = self.meta.take().or(lower.meta);
        self.boot = self.boot.take().or(lower.boot);
    }
}

/// Streams one layer and picks out the release files. When it holds either, the layer is read to
/// its end and its digest checked.
fn scan_layer(client: &Client, repo: &Repo, digest: &Digest) -> Result<Files> {
    let body = client.get_blob(repo, digest)?;
    let mut hashing = HashingReader::new(body.reader);
    let found = {
        let decoded = crate::derive::layer_tar(&mut hashing, &format!("release layer {digest}"))?;
        let found = find_files(decoded)?;
        if found.is_empty() {
            return Ok(found);
        }
        found
    };
    // Read what is left so that the digest covers the whole layer.
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    let got = hashing.finish().sha256;
    if &got != digest {
        bail!("layer has digest {got}, expected {digest}: the registry sent other bytes");
    }
    Ok(found)
}

/// Walks a tar stream and returns the contents of the release files, if present. Entries are never
/// written anywhere; names are compared after removing a leading `./` or `/`.
fn find_files(reader: impl Read) -> Result<Files> {
    let mut archive = tar::Archive::new(reader);
    let mut files = Files::default();
    for entry in archive.entries().context("not a tar layer")? {
        let mut entry = entry.context("damaged tar entry")?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let name = path.trim_start_matches("./").trim_start_matches('/');
        let slot = match name {
            IMAGE_REFERENCES => &mut files.refs,
            RELEASE_METADATA => &mut files.meta,
            BOOT_IMAGES => &mut files.boot,
            _ => continue,
        };
        if entry.size() > MAX_FILE_BYTES {
            bail!(
                "{name} is {} bytes, more than a release file can be",
                entry.size()
            );
        }
        let mut v = Vec::with_capacity(entry.size() as usize);
        (&mut entry).take(MAX_FILE_BYTES).read_to_end(&mut v)?;
        *slot = Some(v);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_image_references_parse() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/realdata/release/release-manifests/image-references");
        let (version, comps) = parse_image_references(&std::fs::read(p).unwrap()).unwrap();
        assert_eq!(version, "4.12.0");
        assert_eq!(comps.len(), 183);
        assert!(comps.iter().all(|(_, r)| r.digest.is_some()));
        assert!(comps.iter().any(|(n, _)| n == "cluster-version-operator"));
    }

    #[test]
    fn files_are_found_in_a_tar_stream() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("./etc/hostname", &b"x"[..]),
            ("release-manifests/image-references", b"{\"a\":1}"),
            ("./release-manifests/release-metadata", b"{}"),
            (
                "release-manifests/0000_50_installer_coreos-bootimages.yaml",
                b"kind: x",
            ),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let f = find_files(&bytes[..]).unwrap();
        assert_eq!(f.refs.unwrap(), b"{\"a\":1}");
        assert_eq!(f.meta.unwrap(), b"{}");
        assert_eq!(f.boot.unwrap(), b"kind: x");
    }

    #[test]
    fn tag_references_are_refused() {
        let e = parse_image_references(
            br#"{"kind":"ImageStream","metadata":{"name":"1.0.0"},"spec":{"tags":[{"name":"x","from":{"kind":"DockerImage","name":"quay.io/a/b:latest"}}]}}"#,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("by tag"));
    }
}
