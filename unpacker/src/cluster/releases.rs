//! What a cluster needs for mirrored OpenShift releases: the release signature ConfigMaps, the
//! UpdateService for the graph-data image, and releases.txt (each release's pullspec at the
//! target and its upgrade command).

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use base64::Engine;
use ferry_format::index::{AttachmentKind, Index, Release};
use serde_json::{json, Value};

use super::{labels, yaml, OutFile, Signatures};
use crate::target::Target;

/// One ConfigMap per signed release image digest, in `openshift-config-managed`, with the
/// signatures as `binaryData` `sha256-<hex>-<n>` (the shape `oc adm release mirror` writes).
pub fn signature_maps(index: &Index, signatures: &Signatures) -> Result<Vec<OutFile>> {
    let mut out = Vec::new();
    let mut signed = BTreeSet::new();
    for r in &index.releases {
        if r.signatures.is_empty() || !signed.insert(r.digest.clone()) {
            continue;
        }
        let hex = r.digest.hex();
        let mut data = serde_json::Map::new();
        for (n, d) in r.signatures.iter().enumerate() {
            let bytes = signatures
                .get(d)
                .with_context(|| format!("signature {d} of release {} was not read", r.version))?;
            data.insert(
                format!("sha256-{hex}-{}", n + 1),
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
        }
        out.push(yaml(
            format!("release-signatures/signature-sha256-{}.yaml", &hex[..16]),
            &json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": format!("sha256-{hex}"),
                    "namespace": "openshift-config-managed",
                    "labels": {"release.openshift.io/verification-signatures": ""},
                    "annotations": {"release.openshift.io/version": r.version}
                },
                "binaryData": data
            }),
        )?);
    }
    Ok(out)
}

/// The UpdateService, when the graph-data image was built: it names that image by digest and
/// the mirrored release repository.
pub fn update_service(index: &Index, target: &Target) -> Result<Option<OutFile>> {
    let Some(g) = &index.graph_data else {
        return Ok(None);
    };
    let releases = index
        .releases
        .first()
        .map_or("openshift-release-dev/ocp-release", |r| {
            r.repository.as_str()
        });
    let file = yaml(
        "updateService.yaml",
        &json!({
            "apiVersion": "updateservice.operator.openshift.io/v1",
            "kind": "UpdateService",
            "metadata": {"name": "update-service-ferry", "namespace": "openshift-update-service", "labels": labels()},
            "spec": {
                "replicas": 2,
                "releases": target.mirror(releases),
                "graphDataImage": format!("{}@{}", target.mirror(&g.repository), g.digest)
            }
        }),
    )?;
    Ok(Some(file))
}

/// releases.txt: per release, where it is at the target and how to upgrade to it.
pub fn releases_txt(index: &Index, target: &Target) -> Option<OutFile> {
    if index.releases.is_empty() {
        return None;
    }
    let text: String = index
        .releases
        .iter()
        .map(|r| release_entry(index, target, r))
        .collect();
    Some(OutFile {
        path: "releases.txt".into(),
        bytes: text.into_bytes(),
    })
}

fn release_entry(index: &Index, target: &Target, r: &Release) -> String {
    let repo = target.mirror(&r.repository);
    let tag = index
        .images
        .iter()
        .find(|i| i.digest == r.digest && i.repository == r.repository)
        .and_then(|i| i.tags.first());
    let channels = if r.channels.is_empty() {
        String::new()
    } else {
        format!(", channels {}", r.channels.join(", "))
    };
    let mut s = format!(
        "release {} ({}){channels}\n  image:      {repo}@{}\n",
        r.version, r.architecture, r.digest
    );
    if let Some(t) = tag {
        s.push_str(&format!("  tag:        {repo}:{t}\n"));
    }
    let components: Vec<String> = r
        .component_repositories
        .iter()
        .map(|c| target.mirror(c.split_once('/').map_or(c.as_str(), |x| x.1)))
        .collect();
    let signatures = if r.signatures.is_empty() {
        format!("none ({})", r.signature_check)
    } else {
        format!(
            "{} verified at pack time, in release-signatures/signature-sha256-{}.yaml",
            r.signatures.len(),
            &r.digest.hex()[..16]
        )
    };
    s.push_str(&format!(
        "  components: {} (mirrored under {})\n  signatures: {signatures}\n  sigstore:   {}\n  upgrade:    oc adm upgrade --allow-explicit-upgrade --to-image={repo}@{}\n\n",
        r.components,
        components.join(", "),
        sigstore_line(index, r, &repo),
        r.digest
    ));
    s
}

/// Where the release's sigstore signature is at the target, and whether it was checked; or
/// that there is none (OpenShift 4.21+ then refuses to update to it from the mirror).
fn sigstore_line(index: &Index, r: &Release, repo: &str) -> String {
    let sig = index.attachments.iter().find(|a| {
        a.kind == AttachmentKind::Signature
            && a.subject == r.digest
            && a.registry == r.registry
            && a.repository == r.repository
    });
    match sig {
        None => "none carried: OpenShift 4.21+ refuses this release from the mirror (its openshift ClusterImagePolicy needs the signature there)".into(),
        Some(a) => {
            let tag = a.tag.as_deref().unwrap_or("");
            if a.verified_by.is_empty() {
                format!("{repo}:{tag} (carried, not checked at pack time)")
            } else {
                format!("{repo}:{tag} (verified at pack time by {})", a.verified_by.join(", "))
            }
        }
    }
}
