//! The Cluster Samples Operator's images (`--samples FILE`). The operator names the image each
//! sample image stream tag is populated from in its `imagestreamtag-to-image` ConfigMap
//! (namespace `openshift-cluster-samples-operator`; keys `<imagestream>_<tag>`, values the
//! image). Those images are packed like additional images; the index records, per image
//! stream, whether it is mirrored, so that the site's samples `Config` can skip the rest.
//!
//! The operator points a stream at the mirror by rewriting each reference's registry to its
//! `samplesRegistry` (`REGISTRY/NS/NAME` → `<samplesRegistry>/NS/NAME`; `NS/NAME` gets it in
//! front). A reference of another shape would land somewhere ferry does not push it, so its
//! stream is recorded as not mirrored, with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ferry_format::index::{SampleStream, Samples};
use ferry_registry::Reference;

use crate::plan::{self, AtTarget, Wanted};

pub const REASON_SAMPLES: &str = "samples";

/// What `--samples`, `--samples-include` and `--samples-exclude` ask for.
#[derive(Debug, Clone, Default)]
pub struct SamplesInput {
    pub file: std::path::PathBuf,
    /// Only these image streams (empty: all).
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// The image streams of the ConfigMap: name → the images its tags name.
pub fn read(path: &Path) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --samples {}", path.display()))?;
    let doc: serde_json::Value = serde_saphyr::from_str(&text)
        .with_context(|| format!("--samples {}: not YAML or JSON", path.display()))?;
    if doc["kind"] != "ConfigMap" {
        bail!(
            "--samples {}: expected the samples operator's ConfigMap imagestreamtag-to-image \
             (oc get configmap imagestreamtag-to-image -n openshift-cluster-samples-operator -o yaml), found kind {}",
            path.display(),
            doc["kind"]
        );
    }
    let Some(data) = doc["data"].as_object().filter(|d| !d.is_empty()) else {
        bail!("--samples {}: the ConfigMap has no data", path.display());
    };
    let mut streams: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, value) in data {
        // Image stream names have no `_`; tags may.
        let Some((stream, tag)) = key
            .split_once('_')
            .filter(|(s, t)| !s.is_empty() && !t.is_empty())
        else {
            bail!(
                "--samples {}: key {key:?} is not <imagestream>_<tag>",
                path.display()
            );
        };
        let Some(image) = value.as_str().filter(|v| !v.trim().is_empty()) else {
            bail!(
                "--samples {}: {stream}:{tag} names no image",
                path.display()
            );
        };
        streams
            .entry(stream.to_string())
            .or_default()
            .insert(image.trim().to_string());
    }
    Ok(streams)
}

/// The images to pack and the provisional record (mirrored = planned; the final record is
/// made from the images actually packed, see [`record`]).
pub fn plan(
    input: &SamplesInput,
    blocked: &[regex::Regex],
    arch: &[String],
) -> Result<(Vec<Wanted>, Samples)> {
    let streams = read(&input.file)?;
    for name in input.include.iter().chain(&input.exclude) {
        if !streams.contains_key(name) {
            bail!(
                "--samples-include/--samples-exclude name {name:?}, which {} does not list; it lists {}",
                input.file.display(),
                streams.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    let mut record = Samples::default();
    for (name, images) in streams {
        let parsed: Vec<(&String, Reference)> = images
            .iter()
            .map(|i| {
                Ok((
                    i,
                    i.parse().with_context(|| format!("--samples: image {i}"))?,
                ))
            })
            .collect::<Result<_>>()?;
        let reason = if !input.include.is_empty() && !input.include.contains(&name) {
            Some("not in --samples-include".to_string())
        } else if input.exclude.contains(&name) {
            Some("excluded by --samples-exclude".to_string())
        } else {
            unmirrorable(&parsed, blocked)
        };
        if reason.is_none() {
            for (image, reference) in parsed {
                wanted.entry(image.clone()).or_insert(Wanted {
                    source: image.clone(),
                    reference,
                    reason: REASON_SAMPLES.into(),
                    platforms: plan::platforms_or(&[], arch),
                    target: AtTarget::default(),
                });
            }
        }
        record.image_streams.push(SampleStream {
            name,
            images: images.into_iter().collect(),
            mirrored: reason.is_none(),
            reason,
        });
    }
    Ok((wanted.into_values().collect(), record))
}

/// Why a stream with these images cannot be mirrored, if it cannot.
fn unmirrorable(images: &[(&String, Reference)], blocked: &[regex::Regex]) -> Option<String> {
    for (image, reference) in images {
        if plan::is_blocked(blocked, reference) {
            return Some(format!("{image} is blocked by blockedImages"));
        }
        if operator_repository(image).as_deref() != Some(reference.repository.as_str()) {
            return Some(format!(
                "the samples operator cannot point {image} at a mirror (it rewrites REGISTRY/NAMESPACE/NAME references only)"
            ));
        }
    }
    None
}

/// The repository the operator asks `samplesRegistry` for: what follows the registry in
/// `REGISTRY/NS/NAME`, or `NS/NAME` whole; tag and digest dropped.
fn operator_repository(image: &str) -> Option<String> {
    let name = image.split_once('@').map_or(image, |x| x.0);
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    };
    match name.matches('/').count() {
        2 => name.split_once('/').map(|x| x.1.to_string()),
        1 => Some(name.to_string()),
        _ => None,
    }
}

/// The record for the index: a stream planned as mirrored stays so only if every one of its
/// images is among those packed (`packed`: their sources).
pub fn record(planned: &Samples, packed: &BTreeSet<&str>) -> Samples {
    let mut out = planned.clone();
    for s in out.image_streams.iter_mut().filter(|s| s.mirrored) {
        if let Some(lost) = s.images.iter().find(|i| !packed.contains(i.as_str())) {
            s.mirrored = false;
            s.reason = Some(format!("its image {lost} could not be packed"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_rewrites_registry_namespace_name_only() {
        assert_eq!(
            operator_repository("registry.redhat.io/ubi8/openjdk-8:latest").as_deref(),
            Some("ubi8/openjdk-8")
        );
        assert_eq!(
            operator_repository("127.0.0.1:5000/rhel8/mariadb-103@sha256:00").as_deref(),
            Some("rhel8/mariadb-103")
        );
        assert_eq!(
            operator_repository("centos/ruby-25-centos7").as_deref(),
            Some("centos/ruby-25-centos7")
        );
        assert_eq!(operator_repository("quay.io/a/b/c:1"), None);
        assert_eq!(operator_repository("ruby:2.7"), None);
    }

    fn write(dir: &Path, data: &str) -> SamplesInput {
        let p = dir.join("cm.yaml");
        std::fs::write(
            &p,
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: imagestreamtag-to-image\n  namespace: openshift-cluster-samples-operator\ndata:\n{data}"),
        )
        .unwrap();
        SamplesInput {
            file: p,
            ..Default::default()
        }
    }

    #[test]
    fn streams_are_selected_and_the_rest_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let mut input = write(
            dir.path(),
            "  java_8-ubi8: registry.redhat.io/ubi8/openjdk-8:latest\n  java_8: registry.redhat.io/ubi8/openjdk-8:latest\n  java_11_x: registry.redhat.io/ubi8/openjdk-11:latest\n  mongodb_3.6: registry.redhat.io/rhscl/mongodb-36-rhel7:latest\n  odd_1: quay.io/a/b/c:1\n  ruby_3.0: registry.redhat.io/ubi8/ruby-30:latest\n",
        );
        input.exclude = vec!["mongodb".into()];
        let blocked = vec![regex::Regex::new("ruby").unwrap()];
        let (wanted, rec) = plan(&input, &blocked, &[]).unwrap();
        let sources: Vec<&str> = wanted.iter().map(|w| w.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "registry.redhat.io/ubi8/openjdk-11:latest",
                "registry.redhat.io/ubi8/openjdk-8:latest"
            ],
            "one image once, tags with `_` kept whole"
        );
        let why: Vec<(&str, bool, Option<&str>)> = rec
            .image_streams
            .iter()
            .map(|s| (s.name.as_str(), s.mirrored, s.reason.as_deref()))
            .collect();
        assert_eq!(why[0], ("java", true, None));
        assert_eq!(
            why[1],
            ("mongodb", false, Some("excluded by --samples-exclude"))
        );
        assert!(why[2].2.unwrap().contains("cannot point quay.io/a/b/c:1"));
        assert!(why[3].2.unwrap().contains("blocked"));
        assert_eq!(rec.skipped(), ["mongodb", "odd", "ruby"]);

        // A stream whose image was not packed is not mirrored.
        let after = record(&rec, &BTreeSet::new());
        assert_eq!(after.skipped(), ["java", "mongodb", "odd", "ruby"]);
        assert!(after.image_streams[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("could not be packed"));

        input.include = vec!["nodejs".into()];
        let e = plan(&input, &[], &[]).unwrap_err();
        assert!(
            e.to_string().contains("it lists java, mongodb, odd, ruby"),
            "{e}"
        );
    }

    #[test]
    fn not_a_configmap_is_refused_with_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("is.json");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/realdata/samples/imagestreams/java-rhel7.json"
            ),
            &p,
        )
        .unwrap();
        let e = read(&p).unwrap_err();
        assert!(
            e.to_string()
                .contains("oc get configmap imagestreamtag-to-image"),
            "{e}"
        );
    }
}
