//! Derived images: a source image plus one layer that ferry makes (a filtered catalog, the
//! graph data of an update service), and reading source layers as tar streams. Everything here
//! is deterministic: the same source and the same layer bytes give the same digests.

use std::io::{BufRead, BufReader, Read, Write};

use anyhow::{anyhow, bail, Context, Result};
use ferry_format::manifest::{Manifest, Platform, DOCKER_MANIFEST};
use ferry_format::Digest;
use ferry_registry::{Client, Repo};
use serde_json::{json, Value};

use crate::plan::{PlannedBlob, PlannedManifest};

/// One platform image at the source: its manifest and config as JSON, and its layers.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub platform: Option<Platform>,
    pub digest: Digest,
    pub media_type: String,
    pub manifest: Value,
    pub config: Value,
    /// (digest, size, media type)
    pub layers: Vec<(Digest, u64, String)>,
}

/// Reads a single-platform manifest and its config blob.
pub fn platform_image(
    client: &Client,
    repo: &Repo,
    digest: Digest,
    bytes: &[u8],
    media_type: &str,
    platform: Option<Platform>,
) -> Result<PlatformImage> {
    let manifest: Value = serde_json::from_slice(bytes)?;
    let (m, media_type) = Manifest::parse(bytes, media_type)?;
    let Manifest::Image { config, layers } = m else {
        bail!("manifest {digest} is a nested index");
    };
    let mut body = client.get_blob(repo, &config.digest)?.reader;
    let mut cfg = Vec::new();
    (&mut body).take(16 << 20).read_to_end(&mut cfg)?;
    if Digest::of(&cfg) != config.digest {
        bail!("image config {} does not match its digest", config.digest);
    }
    Ok(PlatformImage {
        platform,
        digest,
        media_type,
        manifest,
        config: serde_json::from_slice(&cfg).context("image config is not JSON")?,
        layers: layers
            .into_iter()
            .map(|l| (l.digest, l.size, l.media_type))
            .collect(),
    })
}

/// The entry of an index for `arch` (any OS), or `None`.
pub fn child_for<'a>(
    manifests: &'a [ferry_format::manifest::Descriptor],
    arch: &str,
) -> Option<&'a ferry_format::manifest::Descriptor> {
    manifests.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.architecture == arch && (p.os == "linux" || p.os.is_empty()))
    })
}

/// A layer's tar stream: gzip is decompressed on the fly, plain tar passed through, zstd
/// refused with a message naming `what`.
pub fn layer_tar<'a>(reader: impl Read + 'a, what: &str) -> Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::GzDecoder::new(buffered)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        bail!("{what} is zstd-compressed, which ferry cannot read yet")
    } else {
        Ok(Box::new(buffered))
    }
}

/// A derived image manifest and what it needs.
#[derive(Debug)]
pub struct Derived {
    pub digest: Digest,
    pub manifest: PlannedManifest,
    /// The new config and layer.
    pub inline: Vec<(Digest, Vec<u8>)>,
    /// The source layers, to fetch from the source repository.
    pub carried: Vec<(Digest, PlannedBlob)>,
}

/// A fixed tar header: mtime 0, uid/gid 0.
pub fn tar_header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(kind);
    h.set_cksum();
    h
}

/// Deterministic gzip (no name, mtime 0, level 6). Returns (gzip bytes, diff id).
pub fn gzip_layer(tar: &[u8]) -> (Vec<u8>, Digest) {
    let diff_id = Digest::of(tar);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    gz.write_all(tar).expect("gzip in memory");
    (gz.finish().expect("gzip in memory"), diff_id)
}

/// `img` plus `layer` (gzip, with its `diff_id`): the config gets the diff id, a history
/// entry `created_by`, then whatever `edit` changes; the manifest gets the new config and layer.
pub fn append_layer(
    img: &PlatformImage,
    from: &Repo,
    layer: Vec<u8>,
    diff_id: &Digest,
    created_by: &str,
    edit: impl FnOnce(&mut Value),
) -> Result<Derived> {
    let mut config = img.config.clone();
    match config["rootfs"]["diff_ids"].as_array_mut() {
        Some(ids) => ids.push(diff_id.to_string().into()),
        None => bail!("the config of {} has no rootfs.diff_ids", img.digest),
    }
    if let Some(h) = config["history"].as_array_mut() {
        h.push(json!({"created_by": created_by}));
    }
    edit(&mut config);
    let config_bytes = serde_json::to_vec(&config)?;
    let config_digest = Digest::of(&config_bytes);
    let layer_digest = Digest::of(&layer);
    let layer_type = if img.media_type == DOCKER_MANIFEST {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    };
    let mut manifest = img.manifest.clone();
    manifest["config"]["digest"] = config_digest.to_string().into();
    manifest["config"]["size"] = config_bytes.len().into();
    manifest["layers"]
        .as_array_mut()
        .ok_or_else(|| anyhow!("manifest {} has no layers", img.digest))?
        .push(json!({"mediaType": layer_type, "digest": layer_digest.to_string(), "size": layer.len()}));
    let bytes = serde_json::to_vec(&manifest)?;
    let digest = Digest::of(&bytes);
    let mut blobs = vec![config_digest.clone()];
    let mut carried = Vec::new();
    let from = std::sync::Arc::new(from.clone());
    for (d, size, _) in &img.layers {
        blobs.push(d.clone());
        carried.push((
            d.clone(),
            PlannedBlob {
                size: *size,
                from: from.clone(),
            },
        ));
    }
    blobs.push(layer_digest.clone());
    Ok(Derived {
        digest,
        manifest: PlannedManifest {
            bytes,
            media_type: img.media_type.clone(),
            children: vec![],
            blobs,
        },
        inline: vec![(config_digest, config_bytes), (layer_digest, layer)],
        carried,
    })
}
