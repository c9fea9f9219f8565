//! The OCI image layout transport: a directory (`oci-layout`, `index.json`, `blobs/sha256/`)
//! read as if it were a registry repository, for sources a config names as `oci:///path`.
//!
//! A layout repository is a [`Repo`] whose host is `oci:` followed by the directory
//! ([`Repo::layout`]); [`Client`](crate::Client) sends its manifest and blob reads here, so
//! every caller (planning, fetching into the volumes) reads a layout as it reads a registry.
//! Nothing is written. Manifests are checked against their digest like a registry's; blob
//! bodies are hashed by the caller, as for a registry.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ferry_format::Digest;
use serde::Deserialize;

use crate::client::Repo;
use crate::error::{RegistryError, Result};

/// A manifest read from a layout: its exact bytes, media type and (checked) digest.
#[derive(Debug)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// How a layout repository's host starts.
pub const SCHEME: &str = "oci:";
/// The annotation that names a manifest in `index.json` (its "tag").
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Deserialize)]
struct IndexJson {
    #[serde(default)]
    manifests: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

impl Repo {
    /// The repository an OCI layout directory stands for.
    pub fn layout(dir: &Path) -> Repo {
        Repo::new(format!("{SCHEME}{}", dir.display()), "")
    }

    /// The layout directory, when this repository is one.
    pub fn layout_dir(&self) -> Option<&Path> {
        self.host.strip_prefix(SCHEME).map(Path::new)
    }
}

fn not_found(dir: &Path, what: String) -> RegistryError {
    RegistryError::NotFound {
        host: format!("{SCHEME}{}", dir.display()),
        repo: String::new(),
        what,
    }
}

fn io(dir: &Path, what: &str, e: std::io::Error) -> RegistryError {
    RegistryError::Transport {
        method: "READ",
        url: format!("{SCHEME}{}", dir.display()),
        detail: format!("{what}: {e}"),
    }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

/// Reads `index.json`, after checking that the directory is a layout.
fn index_json(dir: &Path) -> Result<IndexJson> {
    if !dir.join("oci-layout").is_file() {
        return Err(not_found(
            dir,
            "oci-layout (this directory is not an OCI image layout)".into(),
        ));
    }
    let bytes = std::fs::read(dir.join("index.json")).map_err(|e| io(dir, "index.json", e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        RegistryError::Protocol(format!(
            "{SCHEME}{}: index.json is not an OCI index: {e}",
            dir.display()
        ))
    })
}

/// The digest `reference` names in the layout: a digest as is; a tag by its `ref.name`
/// annotation; `latest` (a reference without tag) the only manifest of a layout that has one.
fn resolve(dir: &Path, reference: &str) -> Result<(Digest, Option<String>)> {
    if let Ok(d) = reference.parse::<Digest>() {
        return Ok((d, None));
    }
    let index = index_json(dir)?;
    let named = index
        .manifests
        .iter()
        .find(|e| e.annotations.get(REF_NAME).map(String::as_str) == Some(reference));
    let entry = match (named, index.manifests.as_slice()) {
        (Some(e), _) => e,
        (None, [only]) if reference == "latest" => only,
        (None, entries) => {
            let names: Vec<&str> = entries
                .iter()
                .filter_map(|e| e.annotations.get(REF_NAME).map(String::as_str))
                .collect();
            return Err(not_found(
                dir,
                format!(
                    "manifest {reference:?} ({} entries in index.json, named: {})",
                    entries.len(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    };
    let digest = entry.digest.parse::<Digest>().map_err(|e| {
        RegistryError::Protocol(format!("{SCHEME}{}: index.json: {e}", dir.display()))
    })?;
    let media_type = (!entry.media_type.is_empty()).then(|| entry.media_type.clone());
    Ok((digest, media_type))
}

/// A manifest of the layout by tag or digest (at most `max_bytes`), checked against its digest.
pub fn get_manifest(dir: &Path, reference: &str, max_bytes: u64) -> Result<Manifest> {
    let (digest, announced) = resolve(dir, reference)?;
    let path = blob_path(dir, &digest);
    let file = std::fs::File::open(&path)
        .map_err(|_| not_found(dir, format!("manifest {reference} (blob {digest})")))?;
    let mut bytes = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(dir, &format!("blob {digest}"), e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(RegistryError::Protocol(format!(
            "{SCHEME}{}: manifest {digest} is larger than {max_bytes} bytes",
            dir.display()
        )));
    }
    let found = Digest::of(&bytes);
    if found != digest {
        return Err(RegistryError::DigestMismatch {
            host: format!("{SCHEME}{}", dir.display()),
            repo: String::new(),
            what: format!("manifest {reference}"),
            expected: digest.into(),
            found: found.into(),
        });
    }
    let media_type = announced.unwrap_or_else(|| media_type_of(&bytes));
    Ok(Manifest {
        bytes,
        media_type,
        digest,
    })
}

/// A manifest's own `mediaType`, else what its shape says (OCI allows leaving it out).
fn media_type_of(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Head>(bytes) {
        Ok(h) if !h.media_type.is_empty() => h.media_type,
        Ok(h) if h.manifests.is_some() => "application/vnd.oci.image.index.v1+json".into(),
        _ => "application/vnd.oci.image.manifest.v1+json".into(),
    }
}

/// A blob of the layout from byte `offset`: the open file and the bytes left in it.
pub fn get_blob_from(dir: &Path, digest: &Digest, offset: u64) -> Result<(std::fs::File, u64)> {
    let path = blob_path(dir, digest);
    let mut file =
        std::fs::File::open(&path).map_err(|_| not_found(dir, format!("blob {digest}")))?;
    let size = file
        .metadata()
        .map_err(|e| io(dir, &format!("blob {digest}"), e))?
        .len();
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| io(dir, &format!("blob {digest}"), e))?;
    Ok((file, size.saturating_sub(offset)))
}

/// Whether the layout holds a blob.
pub fn blob_exists(dir: &Path, digest: &Digest) -> bool {
    blob_path(dir, digest).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 4 << 20;

    fn real(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/realdata/oci")
            .join(name)
    }

    #[test]
    fn a_real_layout_reads_like_a_repository() {
        let dir = real("oc-mirror-multi-platform-container-latest");
        let top = get_manifest(&dir, "latest", MAX).unwrap();
        assert_eq!(top.media_type, "application/vnd.oci.image.index.v1+json");
        assert_eq!(
            top.digest.to_string(),
            "sha256:0de0e983a4980f32b1aad2d7f7f387cea2d4e9517b47f336cef27f63735911fa"
        );
        let index: serde_json::Value = serde_json::from_slice(&top.bytes).unwrap();
        // The real layout is sparse (some platforms only): read the first child it holds.
        let m = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|c| get_manifest(&dir, c["digest"].as_str().unwrap(), MAX).ok())
            .expect("a child manifest in the layout");
        // Its config blob (the stored copy keeps configs, not layers).
        let layer: Digest = serde_json::from_slice::<serde_json::Value>(&m.bytes).unwrap()
            ["config"]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let (mut body, size) = get_blob_from(&dir, &layer, 0).unwrap();
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes).unwrap();
        assert_eq!(Digest::of(&bytes), layer);
        assert_eq!(size, bytes.len() as u64);
        let (mut tail, _) = get_blob_from(&dir, &layer, 10).unwrap();
        let mut rest = Vec::new();
        tail.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, bytes[10..]);
    }

    #[test]
    fn missing_tags_blobs_and_non_layouts_are_named() {
        let dir = real("oc-mirror-manifestlist-hello");
        let e = get_manifest(&dir, "v2", MAX).unwrap_err().to_string();
        assert!(e.contains("\"v2\"") && e.contains("1 entries"), "{e}");
        let d = Digest::of(b"nothing");
        assert!(get_blob_from(&dir, &d, 0).is_err());
        assert!(!blob_exists(&dir, &d));
        let e = get_manifest(Path::new("/nonexistent"), "latest", MAX)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an OCI image layout"), "{e}");
        assert_eq!(
            Repo::layout(Path::new("/tmp/x")).layout_dir(),
            Some(Path::new("/tmp/x"))
        );
    }

    #[test]
    fn a_tampered_manifest_is_refused() {
        let src = real("oc-mirror-manifestlist-hello");
        let dir = std::env::temp_dir().join(format!("ferry-layout-{}", std::process::id()));
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for f in ["oci-layout", "index.json"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let top = get_manifest(&src, "latest", MAX).unwrap();
        let mut bytes = top.bytes.clone();
        bytes[10] ^= 1;
        std::fs::write(blobs.join(top.digest.hex()), &bytes).unwrap();
        let e = get_manifest(&dir, "latest", MAX).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    }
}
