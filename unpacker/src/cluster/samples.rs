//! `samples-operator-config.yaml`: the Cluster Samples Operator's `Config` named `cluster`
//! (samples.operator.openshift.io/v1) for the image streams `ferry-pack --samples` recorded.
//! `samplesRegistry` is the target (`HOST[/NAMESPACE]`): the operator rewrites each sample
//! reference `REGISTRY/NS/NAME` to `<samplesRegistry>/NS/NAME`, which is where push put it.
//! `skippedImagestreams` lists every stream not mirrored — left out at pack time, or whose
//! images a `--max-nested-paths` limit moved away from where the operator looks — so that the
//! operator does not try to import what the site does not have. A comment says why each is
//! skipped.

use anyhow::Result;
use ferry_format::index::{Index, SampleStream};
use serde_json::json;

use super::OutFile;
use crate::target::Target;

/// The Config, or nothing when the archive records no samples.
pub fn samples_config(index: &Index, target: &Target) -> Result<Option<OutFile>> {
    let Some(samples) = &index.samples else {
        return Ok(None);
    };
    let mut skipped: Vec<(&str, String)> = Vec::new();
    for s in &samples.image_streams {
        let why = match (&s.reason, s.mirrored) {
            (Some(r), _) => Some(r.clone()),
            (None, false) => Some("not mirrored".to_string()),
            (None, true) => displaced(index, target, s),
        };
        if let Some(why) = why {
            skipped.push((s.name.as_str(), why));
        }
    }
    let mut text = String::from(
        "# The Cluster Samples Operator's configuration for the mirror (written by ferry-unpack).\n\
         # Apply with `oc apply -f` (it replaces the spec of the existing Config `cluster`).\n",
    );
    for (name, why) in &skipped {
        text.push_str(&format!("# skipped: {name}: {}\n", why.replace('\n', " ")));
    }
    let config = json!({
        "apiVersion": "samples.operator.openshift.io/v1",
        "kind": "Config",
        "metadata": {"name": "cluster", "labels": super::labels()},
        "spec": {
            "managementState": "Managed",
            "samplesRegistry": target.to_string(),
            "skippedImagestreams": skipped.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        },
    });
    text.push_str(&serde_saphyr::to_string(&config)?);
    Ok(Some(OutFile {
        path: "samples-operator-config.yaml".into(),
        bytes: text.into_bytes(),
    }))
}

/// Why a mirrored stream's image is not where the operator will look for it, if it is not
/// (`--max-nested-paths` flattened its repository).
fn displaced(index: &Index, target: &Target, s: &SampleStream) -> Option<String> {
    for image in &s.images {
        // A validated index carries every image of a mirrored stream.
        let Some(carried) = index.images.iter().find(|i| &i.source == image) else {
            continue;
        };
        // The operator asks for the source repository under samplesRegistry.
        let at = target.repository(carried.target_repository());
        let wanted = match &target.namespace {
            Some(n) => format!("{n}/{}", carried.repository),
            None => carried.repository.clone(),
        };
        if at != wanted {
            return Some(format!(
                "its image {image} is at {}/{at}; the operator would look in {}/{wanted}",
                target.host, target.host
            ));
        }
    }
    None
}
