//! A read-only view of image manifests and indexes, used only to walk their descriptors.
//!
//! Manifests are always stored and pushed as the exact bytes received; this view is parsed
//! from a copy and never serialized back. It accepts the OCI and Docker schema 2 media types
//! and rejects Docker schema 1 (which has no content-addressable form) with a clear message.

use serde::Deserialize;

use crate::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header value that asks a registry for any manifest type ferry can carry.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Whether a media type names an index (OCI image index or Docker manifest list).
pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Whether a media type names a manifest or an index that ferry can carry.
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST
    )
}

/// A content descriptor inside a manifest or index.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The artifact type of a referrer (in a referrers index).
    #[serde(default)]
    pub artifact_type: Option<String>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`.
    pub fn label(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// A parsed manifest or index.
// A parsed manifest lives only while it is walked: boxing its config would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Manifest {
    /// An image manifest: one config and its layers.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// An index / manifest list: child manifests, usually one per platform.
    Index { manifests: Vec<Descriptor> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

/// Why manifest bytes cannot be walked.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("Docker schema 1 manifests are not supported (they cannot be copied by digest); ask the image owner for a schema 2 or OCI image")]
    Schema1,
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedType(String),
    #[error("manifest is not valid JSON of a known shape: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Parses manifest bytes, given the media type the registry (or the index) announced.
    /// An empty announced type falls back to the `mediaType` field inside the document.
    pub fn parse(bytes: &[u8], announced_type: &str) -> Result<(Manifest, String), ManifestError> {
        if announced_type == DOCKER_SCHEMA1 || announced_type == DOCKER_SCHEMA1_SIGNED {
            return Err(ManifestError::Schema1);
        }
        let raw: Raw =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if raw.schema_version == Some(1) || raw.fs_layers.is_some() {
            return Err(ManifestError::Schema1);
        }
        let media_type = match (announced_type, raw.media_type.as_deref()) {
            (a, _) if is_manifest_type(a) => a.to_string(),
            (_, Some(inner)) if is_manifest_type(inner) => inner.to_string(),
            // OCI allows an absent mediaType; infer it from the shape.
            (_, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
            (_, None) if raw.config.is_some() => OCI_MANIFEST.to_string(),
            (a, inner) => {
                return Err(ManifestError::UnsupportedType(
                    inner.unwrap_or(a).to_string(),
                ))
            }
        };
        let manifest = if is_index_type(&media_type) {
            Manifest::Index {
                manifests: raw
                    .manifests
                    .ok_or_else(|| ManifestError::Invalid("index without manifests".into()))?,
            }
        } else {
            Manifest::Image {
                config: raw.config.ok_or_else(|| {
                    ManifestError::Invalid("image manifest without config".into())
                })?,
                layers: raw.layers.unwrap_or_default(),
            }
        };
        Ok((manifest, media_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_list_and_oci_manifest() {
        let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":7,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
        let (m, t) = Manifest::parse(list, "").unwrap();
        assert_eq!(t, DOCKER_LIST);
        match m {
            Manifest::Index { manifests } => {
                assert_eq!(
                    manifests[0].platform.as_ref().unwrap().label(),
                    "linux/arm64/v8"
                )
            }
            _ => panic!("not an index"),
        }
        let schema1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        assert!(matches!(
            Manifest::parse(schema1, ""),
            Err(ManifestError::Schema1)
        ));
    }
}
