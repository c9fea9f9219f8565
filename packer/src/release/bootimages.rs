//! The release's boot images (`release-manifests/0000_50_installer_coreos-bootimages.yaml`):
//! the ConfigMap `coreos-bootimages` whose `data.stream` is CoreOS stream metadata (JSON). Its
//! `architectures.<arch>.images.kubevirt.digest-ref` names the KubeVirt container disk that
//! `mirror.platform.kubeVirtContainer: true` carries, as oc-mirror does.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use ferry_registry::Reference;
use serde::Deserialize;

/// Path of the ConfigMap inside the payload.
pub const BOOT_IMAGES: &str = "release-manifests/0000_50_installer_coreos-bootimages.yaml";

#[derive(Deserialize)]
struct ConfigMap {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Stream {
    #[serde(default)]
    architectures: BTreeMap<String, StreamArch>,
}

#[derive(Deserialize)]
struct StreamArch {
    #[serde(default)]
    images: BTreeMap<String, StreamImage>,
}

#[derive(Deserialize)]
struct StreamImage {
    #[serde(rename = "digest-ref", default)]
    digest_ref: Option<String>,
}

/// The KubeVirt container disks a payload names, by CoreOS architecture (`x86_64`, `aarch64`,
/// `ppc64le`, `s390x`); each value is the raw `digest-ref`, checked when asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootImages {
    kubevirt: BTreeMap<String, String>,
}

impl BootImages {
    /// Reads the ConfigMap.
    pub fn parse(bytes: &[u8]) -> Result<BootImages> {
        let text = std::str::from_utf8(bytes).context("the boot images ConfigMap is not UTF-8")?;
        let cm: ConfigMap =
            serde_saphyr::from_str(text).context("the boot images file is not a ConfigMap")?;
        if cm.kind != "ConfigMap" {
            bail!(
                "the boot images file has kind {:?}, expected ConfigMap",
                cm.kind
            );
        }
        let stream = cm
            .data
            .get("stream")
            .context("the boot images ConfigMap has no data.stream")?;
        let stream: Stream = serde_json::from_str(stream)
            .context("data.stream of the boot images ConfigMap is not stream metadata JSON")?;
        let kubevirt = stream
            .architectures
            .into_iter()
            .filter_map(|(arch, a)| {
                let r = a.images.get("kubevirt")?.digest_ref.clone()?;
                Some((arch, r))
            })
            .collect();
        Ok(BootImages { kubevirt })
    }

    /// The KubeVirt container disk for one CoreOS architecture, pinned by digest; `None` when
    /// the payload names none for it (older releases, or an architecture without one).
    pub fn kubevirt(&self, coreos_arch: &str) -> Result<Option<Reference>> {
        let Some(raw) = self.kubevirt.get(coreos_arch) else {
            return Ok(None);
        };
        let r: Reference = raw.parse().with_context(|| {
            format!("the boot images name a bad KubeVirt image for {coreos_arch}: {raw:?}")
        })?;
        if r.digest.is_none() {
            bail!("the KubeVirt image for {coreos_arch} ({raw}) is not pinned by digest");
        }
        Ok(Some(r))
    }

    /// The CoreOS architectures that have a KubeVirt container disk.
    pub fn kubevirt_arches(&self) -> impl Iterator<Item = &str> {
        self.kubevirt.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real() -> BootImages {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/realdata/release/release-manifests")
            .join("0000_50_installer_coreos-bootimages.yaml");
        BootImages::parse(&std::fs::read(p).unwrap()).unwrap()
    }

    #[test]
    fn real_boot_images_name_the_x86_64_disk() {
        let b = real();
        let r = b.kubevirt("x86_64").unwrap().unwrap();
        assert_eq!(r.repository, "openshift-release-dev/ocp-v4.0-art-dev");
        assert_eq!(
            r.digest.unwrap().to_string(),
            "sha256:729265d5ef6ed6a45bcd55c46877e3acb9eae3f49c78cd795d5b53aa85e3775b"
        );
        // aarch64 has no kubevirt entry in this stream.
        assert!(b.kubevirt("aarch64").unwrap().is_none());
        assert_eq!(b.kubevirt_arches().collect::<Vec<_>>(), ["s390x", "x86_64"]);
    }

    #[test]
    fn a_malformed_digest_is_an_error_naming_the_architecture() {
        // The real (test) file's s390x digest is not hex.
        let e = real().kubevirt("s390x").unwrap_err();
        assert!(format!("{e:#}").contains("s390x"), "{e:#}");
    }

    #[test]
    fn a_tag_reference_is_refused() {
        let cm = b"kind: ConfigMap\ndata:\n  stream: '{\"architectures\":{\"x86_64\":{\"images\":{\"kubevirt\":{\"digest-ref\":\"quay.io/a/b:tag\"}}}}}'\n";
        let e = BootImages::parse(cm)
            .unwrap()
            .kubevirt("x86_64")
            .unwrap_err();
        assert!(format!("{e:#}").contains("not pinned by digest"), "{e:#}");
        assert!(BootImages::parse(b"kind: Secret\n").is_err());
    }
}
