//! The image set config: oc-mirror's `ImageSetConfiguration` (apiVersion
//! `mirror.openshift.io/v2alpha1`, and `v1alpha2`), so that users keep their files.
//!
//! All sections are parsed; what this version of ferry packs is checked by
//! [`ImageSetConfig::supported`], which names any section it cannot honour yet instead of
//! silently leaving it out.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

pub const API_V2ALPHA1: &str = "mirror.openshift.io/v2alpha1";
pub const API_V1ALPHA2: &str = "mirror.openshift.io/v1alpha2";

/// A parsed `ImageSetConfiguration`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSetConfig {
    pub kind: String,
    pub api_version: String,
    #[serde(default)]
    pub mirror: Mirror,
    /// v1alpha2 only: archive size in GiB (ferry's `--volume-size` default when set).
    #[serde(default)]
    pub archive_size: Option<u64>,
}

/// The `mirror` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirror {
    #[serde(default)]
    pub platform: Option<PlatformSection>,
    #[serde(default)]
    pub operators: Vec<Operator>,
    #[serde(default)]
    pub additional_images: Vec<AdditionalImage>,
    #[serde(default)]
    pub blocked_images: Vec<BlockedImage>,
    #[serde(default)]
    pub helm: Option<Helm>,
}

/// `mirror.platform`: OpenShift releases.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformSection {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub graph: Option<bool>,
    #[serde(default)]
    pub release: Option<String>,
}

/// A release channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
    #[serde(default)]
    pub shortest_path: Option<bool>,
    #[serde(default)]
    pub full: Option<bool>,
}

/// An operator catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operator {
    pub catalog: String,
    #[serde(default)]
    pub full: Option<bool>,
    #[serde(default)]
    pub target_catalog: Option<String>,
    #[serde(default)]
    pub target_tag: Option<String>,
    #[serde(default)]
    pub packages: Vec<Package>,
}

/// A package filter of an operator catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub name: String,
    #[serde(default)]
    pub channels: Vec<PackageChannel>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
    #[serde(default)]
    pub default_channel: Option<String>,
    #[serde(default)]
    pub bundles: Vec<Named>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageChannel {
    pub name: String,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub name: String,
}

/// An image to carry as is.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalImage {
    pub name: String,
    /// Platforms to keep of a multi-platform image (all when absent).
    #[serde(default)]
    pub platforms: Vec<PlatformSelector>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformSelector {
    #[serde(default)]
    pub os: Option<String>,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image never to carry: a regular expression matched against `registry/repo[:tag]`.
#[derive(Debug, Clone, Deserialize)]
pub struct BlockedImage {
    pub name: String,
}

/// Helm charts (parsed so configs that have them load; not packed).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Helm {
    #[serde(default)]
    pub local: Vec<serde_json::Value>,
    #[serde(default)]
    pub repositories: Vec<serde_json::Value>,
}

impl ImageSetConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<ImageSetConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read image set config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in image set config {}", path.display()))
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<ImageSetConfig> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Head {
            #[serde(default)]
            kind: String,
            #[serde(default)]
            api_version: String,
        }
        let docs: Vec<Head> = serde_saphyr::from_multiple(text).context("not a YAML mapping")?;
        if docs.len() > 1 {
            bail!(
                "the file holds {} YAML documents; ferry-pack reads one ImageSetConfiguration \
                 per file: split it at the `---` lines and pack each",
                docs.len()
            );
        }
        let Some(head) = docs.into_iter().next() else {
            bail!("the file is empty: expected `kind: ImageSetConfiguration`");
        };
        match head.kind.as_str() {
            "ImageSetConfiguration" => {}
            "DeleteImageSetConfiguration" => bail!(
                "kind DeleteImageSetConfiguration describes what to delete from a registry; \
                 ferry-pack reads kind ImageSetConfiguration"
            ),
            "" => bail!("no kind: expected `kind: ImageSetConfiguration`"),
            other => {
                bail!("kind {other:?} is not an image set config; expected ImageSetConfiguration")
            }
        }
        if head.api_version != API_V2ALPHA1 && head.api_version != API_V1ALPHA2 {
            bail!(
                "apiVersion {:?} is not supported; use {API_V2ALPHA1} (or {API_V1ALPHA2})",
                head.api_version
            );
        }
        let config: ImageSetConfig =
            serde_saphyr::from_str(text).context("invalid ImageSetConfiguration")?;
        Ok(config)
    }

    /// The sections this ferry cannot pack yet, by name. Packing refuses a config that has any,
    /// rather than leave out what the user asked for.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        let m = &self.mirror;
        if let Some(h) = &m.helm {
            if !h.local.is_empty() || !h.repositories.is_empty() {
                out.push("mirror.helm (Helm charts)".to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additional_images_with_platforms() {
        let c = ImageSetConfig::parse(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: quay.io/a/b:1\n      platforms:\n        - os: linux\n          architecture: amd64\n  blockedImages:\n    - name: ^docker.io/\n",
        )
        .unwrap();
        assert_eq!(c.mirror.additional_images.len(), 1);
        assert_eq!(
            c.mirror.additional_images[0].platforms[0].architecture,
            "amd64"
        );
        assert!(c.unsupported().is_empty());
    }

    #[test]
    fn wrong_kind_and_version_are_named() {
        let e = ImageSetConfig::parse(
            "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("DeleteImageSetConfiguration"));
        let e = ImageSetConfig::parse(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v9\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("v9"));
    }

    /// Every real config from oc-mirror's docs and test suites parses, or is rejected with a
    /// message naming the kind.
    #[test]
    fn every_real_config_parses_or_is_rejected_clearly() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata/imageset");
        let mut parsed = 0;
        let mut deletes = 0;
        let mut multi = 0;
        let mut with_releases = 0;
        for dir in std::fs::read_dir(&root).unwrap() {
            for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let path = f.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                match ImageSetConfig::parse(&text) {
                    Ok(c) => {
                        parsed += 1;
                        if c.mirror
                            .platform
                            .as_ref()
                            .is_some_and(crate::release::wants_releases)
                        {
                            with_releases += 1;
                        }
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        if text.contains("DeleteImageSetConfiguration") {
                            assert!(msg.contains("DeleteImageSetConfiguration"), "{msg}");
                            deletes += 1;
                        } else {
                            assert!(msg.contains("YAML documents"), "{}: {msg}", path.display());
                            multi += 1;
                        }
                    }
                }
            }
        }
        assert!(parsed >= 100, "only {parsed} configs parsed");
        assert_eq!(deletes, 11);
        assert_eq!(multi, 1);
        assert!(with_releases > 10);
    }
}
