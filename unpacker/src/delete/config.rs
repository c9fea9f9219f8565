//! oc-mirror's `DeleteImageSetConfiguration` (v2alpha1 and v1alpha2 `delete:` sections), read
//! strictly: an unknown key is an error; a section ferry cannot retire yet is refused by name.

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteConfig {
    pub kind: String,
    pub api_version: String,
    #[serde(default)]
    pub delete: DeleteSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteSection {
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub operators: Vec<Operator>,
    #[serde(default)]
    pub additional_images: Vec<ImageName>,
    #[serde(default)]
    pub helm: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Platform {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// The release by pull spec (matched by digest).
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub graph: Option<bool>,
    #[serde(default)]
    pub kube_virt_container: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
    #[serde(default)]
    pub full: Option<bool>,
    #[serde(default)]
    pub shortest_path: Option<bool>,
}

/// A catalog to retire whole (no `packages`) or in part.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operator {
    /// The catalog reference as written in the image set config that mirrored it.
    pub catalog: String,
    /// When the mirror config renamed the catalog: only the recorded catalog pushed there.
    #[serde(default)]
    pub target_catalog: Option<String>,
    #[serde(default)]
    pub target_tag: Option<String>,
    #[serde(default)]
    pub packages: Vec<Package>,
}

/// A package's bundles to retire: all of them, those of some channels, or a version range.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Package {
    pub name: String,
    #[serde(default)]
    pub channels: Vec<PackageChannel>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageChannel {
    pub name: String,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageName {
    pub name: String,
}

impl DeleteConfig {
    /// Reads a file; the first document whose kind is `DeleteImageSetConfiguration`.
    pub fn load(path: &std::path::Path) -> Result<DeleteConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in delete config {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<DeleteConfig> {
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).context("not YAML")?;
        let Some(doc) = docs
            .into_iter()
            .find(|d| d["kind"] == "DeleteImageSetConfiguration")
        else {
            bail!(
                "no document has kind DeleteImageSetConfiguration (an ImageSetConfiguration says \
                 what to mirror; to retire content, write its delete: section)"
            );
        };
        let c: DeleteConfig = serde_json::from_value(doc).context("invalid delete config")?;
        if !c.api_version.starts_with("mirror.openshift.io/") {
            bail!(
                "apiVersion {} is not mirror.openshift.io/v2alpha1",
                c.api_version
            );
        }
        Ok(c)
    }

    /// Sections ferry cannot retire yet, by name, with what to do instead.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.delete.helm.is_some() {
            out.push("delete.helm (Helm charts cannot be retired yet: remove the section)".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every real delete config reads; the sections ferry cannot retire are named.
    #[test]
    fn real_delete_configs_read() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata/imageset");
        let (mut n, mut ops) = (0, 0);
        for dir in ["v2alpha1", "v2alpha1-qe-e2e", "v1alpha2"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let p = e.unwrap().path();
                let text = std::fs::read_to_string(&p).unwrap();
                if !text.contains("DeleteImageSetConfiguration") {
                    continue;
                }
                let c = DeleteConfig::parse(&text).unwrap_or_else(|e| panic!("{p:?}: {e:#}"));
                n += 1;
                if c.delete.helm.is_some() {
                    assert!(c.unsupported()[0].starts_with("delete.helm"));
                }
                ops += c.delete.operators.len();
            }
        }
        assert!(n >= 11, "{n} delete configs");
        assert!(ops >= 14, "{ops} operators entries read");
    }

    #[test]
    fn typos_and_wrong_kinds_are_errors() {
        let e = DeleteConfig::parse(
            "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  additionalImage:\n  - name: a\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("additionalImage"), "{e:#}");
        let e = DeleteConfig::parse(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("delete: section"), "{e:#}");
    }
}
