//! `helm-charts.yaml`: where each Helm chart went, for `helm pull` / `helm install` at the
//! site, and where the images it names are now.

use anyhow::Result;
use ferry_format::index::Index;
use ferry_registry::Reference;
use serde_json::{json, Value};

use super::{yaml, OutFile};
use crate::target::Target;

/// The chart list, or nothing when the archive carries no chart.
pub fn charts(index: &Index, target: &Target) -> Result<Option<OutFile>> {
    if index.charts.is_empty() {
        return Ok(None);
    }
    let list: Vec<Value> = index
        .charts
        .iter()
        .map(|c| {
            let at = target.mirror(&c.repository);
            let tag = c.version.replace('+', "_");
            json!({
                "name": c.name,
                "version": c.version,
                "source": c.source,
                "oci": format!("oci://{at}"),
                "reference": format!("{at}:{tag}@{}", c.digest),
                "pull": format!("helm pull oci://{at} --version {}", c.version),
                "images": c.images.iter().map(|i| json!({
                    "source": i,
                    "mirror": image_mirror(index, target, i),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Some(yaml(
        "helm-charts.yaml",
        &json!({"apiVersion": "ferry.dev/v1", "kind": "HelmCharts", "charts": list}),
    )?))
}

/// Where an image a chart names was pushed (`None` when it is not carried, e.g. blocked).
fn image_mirror(index: &Index, target: &Target, reference: &str) -> Value {
    let Ok(r) = reference.parse::<Reference>() else {
        return Value::Null;
    };
    index
        .images
        .iter()
        .find(|i| i.registry == r.registry && i.repository == r.repository)
        .map_or(Value::Null, |i| {
            Value::String(target.mirror(i.target_repository()))
        })
}
