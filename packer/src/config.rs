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

/// A parsed `ImageSetConfiguration`. Every key oc-mirror reads is known here; any other key is
/// an error that names it (a typo must not silently drop what it meant to ask for).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSetConfig {
    pub kind: String,
    pub api_version: String,
    #[serde(default)]
    pub mirror: Mirror,
    /// Archive size in GiB (ferry's `--volume-size` default when set).
    #[serde(default)]
    pub archive_size: Option<u64>,
    /// v1alpha2: where oc-mirror keeps its own metadata. ferry keeps its state in the target
    /// registry, so this has no effect (said as a note).
    #[serde(default)]
    pub storage_config: Option<serde_json::Value>,
}

/// The `mirror` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    /// oc-mirror reads it but does not implement it either.
    #[serde(default)]
    pub samples: Vec<serde_json::Value>,
}

/// `mirror.platform`: OpenShift releases.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformSection {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub graph: Option<bool>,
    #[serde(default)]
    pub release: Option<String>,
    /// The KubeVirt container disk image the release names.
    #[serde(default)]
    pub kube_virt_container: Option<bool>,
    /// Platforms to keep of a multi-architecture release (a sparse manifest list).
    #[serde(default)]
    pub platforms: Vec<PlatformSelector>,
}

/// A release channel.
#[derive(Debug, Clone, Deserialize)]
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
    pub shortest_path: Option<bool>,
    #[serde(default)]
    pub full: Option<bool>,
}

/// An operator catalog.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    /// ferry does not follow operator dependencies (docs/catalogs.md), which is what `true`
    /// asks for; `false` (oc-mirror's default) is refused rather than ignored.
    #[serde(default)]
    pub skip_dependencies: Option<bool>,
    #[serde(default)]
    pub target_catalog_source_template: Option<String>,
    /// v1alpha2's name for what `targetCatalog` now does.
    #[serde(default)]
    pub target_name: Option<String>,
    /// Platforms to keep of the catalog's multi-platform images.
    #[serde(default)]
    pub platforms: Vec<PlatformSelector>,
}

/// A package filter of an operator catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageChannel {
    pub name: String,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    pub name: String,
}

/// An image to carry as is.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdditionalImage {
    pub name: String,
    /// Platforms to keep of a multi-platform image (all when absent).
    #[serde(default)]
    pub platforms: Vec<PlatformSelector>,
    /// The repository the image lands in at the target, instead of its source repository.
    #[serde(default)]
    pub target_repo: Option<String>,
    /// The tag it gets there, instead of its source tag.
    #[serde(default)]
    pub target_tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformSelector {
    #[serde(default)]
    pub os: Option<String>,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image never to carry: a regular expression matched against `registry/repo[:tag]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockedImage {
    pub name: String,
}

/// `mirror.helm`: Helm charts from chart repositories and from disk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Helm {
    #[serde(default)]
    pub local: Vec<Chart>,
    #[serde(default)]
    pub repositories: Vec<HelmRepository>,
}

/// A Helm chart repository (`https://...` with an `index.yaml`, or `oci://...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmRepository {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub charts: Vec<Chart>,
}

/// A chart: by name and version from a repository, or by path on disk (`local`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Chart {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// Extra places to find image references in the rendered manifests.
    #[serde(default)]
    pub image_paths: Vec<String>,
    /// Values to render the chart with, over its defaults.
    #[serde(default)]
    pub values: Option<serde_json::Value>,
    #[serde(default)]
    pub platforms: Vec<PlatformSelector>,
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
                "kind DeleteImageSetConfiguration describes what to retire from the site \
                 registry: give it to `ferry-unpack delete --config FILE --from TARGET --generate \
                 PLAN` at the site; ferry-pack reads kind ImageSetConfiguration"
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
        serde_saphyr::from_str(text).map_err(|e| {
            let message = e.to_string();
            match nearest_key_hint(&message) {
                Some(hint) => anyhow::anyhow!("{message}\n{hint}"),
                None => anyhow::anyhow!("{message}"),
            }
            .context("invalid ImageSetConfiguration")
        })
    }

    /// What this ferry cannot pack yet, by key and why. Packing refuses a config that has any,
    /// rather than leave out what the user asked for.
    pub fn unsupported(&self) -> Vec<Unsupported> {
        let mut out = Vec::new();
        let mut no = |key: &'static str, at: String, why: &'static str| {
            out.push(Unsupported { key, at, why })
        };
        let m = &self.mirror;
        if !m.samples.is_empty() {
            no(
                "mirror.samples",
                "mirror.samples".into(),
                "oc-mirror does not implement it either",
            );
        }
        if let Some(p) = &m.platform {
            if !p.platforms.is_empty() {
                no(
                    "mirror.platform.platforms",
                    "mirror.platform.platforms".into(),
                    "a sparse release payload; use mirror.platform.architectures",
                );
            }
        }
        for (i, o) in m.operators.iter().enumerate() {
            let at = |k: &str| format!("mirror.operators[{i}].{k}");
            if o.skip_dependencies == Some(false) {
                no("mirror.operators[].skipDependencies", at("skipDependencies: false"),
                   "ferry does not follow operator dependencies: name each package, see docs/catalogs.md");
            }
            if o.target_catalog_source_template.is_some() {
                no(
                    "mirror.operators[].targetCatalogSourceTemplate",
                    at("targetCatalogSourceTemplate"),
                    "ferry writes its own CatalogSource",
                );
            }
            if o.target_name.is_some() {
                no(
                    "mirror.operators[].targetName",
                    at("targetName"),
                    "v1alpha2; write targetCatalog instead",
                );
            }
        }
        out
    }

    /// Keys that are read and have no effect in ferry, with why (printed as notes).
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.storage_config.is_some() {
            out.push("storageConfig has no effect: ferry keeps what a site received in the target registry itself (<namespace>/ferry-state)".to_string());
        }
        out
    }
}

/// A key the config uses that this ferry cannot honour yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The key in general (`mirror.operators[].platforms`), as docs/config.md lists it.
    pub key: &'static str,
    /// Where it is in this config (`mirror.operators[1].platforms`).
    pub at: String,
    pub why: &'static str,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.at, self.why)
    }
}

/// For serde's "unknown field `x`, expected one of a, b" (or "expected `a` or `b`"): the known
/// key nearest to `x`, as a hint line.
fn nearest_key_hint(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split("expected ").nth(1)?.lines().next()?;
    let known: Vec<&str> = expected
        .trim_start_matches("one of ")
        .split([',', ' '])
        .map(|k| k.trim_matches(|c: char| c == '`' || c.is_whitespace()))
        .filter(|k| !k.is_empty() && *k != "or")
        .collect();
    let (best, distance) = known
        .iter()
        .map(|k| {
            (
                *k,
                edit_distance(&unknown.to_lowercase(), &k.to_lowercase()),
            )
        })
        .min_by_key(|(_, d)| *d)?;
    (distance <= unknown.len().max(3) / 2).then(|| {
        format!("did you mean `{best}`? (`{unknown}` is not an ImageSetConfiguration key)")
    })
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
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
    fn a_misspelt_key_is_named_with_its_line_and_the_nearest_key() {
        let e = ImageSetConfig::parse(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImage:\n    - name: quay.io/a/b:1\n",
        )
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("additionalImage`"), "{msg}");
        assert!(msg.contains("line 4"), "{msg}");
        assert!(msg.contains("did you mean `additionalImages`?"), "{msg}");
        let e = ImageSetConfig::parse(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n    - catalog: x\n      pakages: []\n",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("did you mean `packages`?"),
            "{e:#}"
        );
        // Far from every key: no guess.
        let e = ImageSetConfig::parse(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nzzzzzzzzzzzz: 1\n",
        )
        .unwrap_err();
        assert!(!format!("{e:#}").contains("did you mean"), "{e:#}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn known_keys_ferry_does_not_honour_are_named() {
        let c = ImageSetConfig::parse(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v1alpha2\nstorageConfig:\n  local:\n    path: /tmp/x\nmirror:\n  platform:\n    platforms:\n      - architecture: amd64\n  operators:\n    - catalog: x\n      skipDependencies: false\n",
        )
        .unwrap();
        let u: Vec<String> = c.unsupported().iter().map(|u| u.to_string()).collect();
        let u = u.join("; ");
        assert!(
            u.contains("mirror.platform.platforms") && u.contains("skipDependencies"),
            "{u}"
        );
        assert!(c.notes()[0].contains("storageConfig"));
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
        let documented = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"),
        )
        .unwrap();
        let mut refused = std::collections::BTreeMap::<&str, usize>::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let path = f.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                match ImageSetConfig::parse(&text) {
                    Ok(c) => {
                        parsed += 1;
                        for u in c.unsupported() {
                            assert!(
                                documented.contains(&format!("`{}`", u.key)),
                                "{}: refused for {u}, which docs/config.md does not list",
                                path.display()
                            );
                            *refused.entry(u.key).or_insert(0) += 1;
                        }
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
        eprintln!("refused for: {refused:?}");
        assert!(parsed >= 100, "only {parsed} configs parsed");
        assert_eq!(deletes, 11);
        assert_eq!(multi, 1);
        assert!(with_releases > 10);
    }
}
