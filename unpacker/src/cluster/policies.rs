//! ClusterImagePolicy (config.openshift.io/v1): one per sigstore key that verified signatures
//! at pack time, requiring signatures under that key for the images it verified.
//!
//! Scopes are the images' source repositories: pods name images by their source, the mirror
//! sets send the pulls to the mirror, and the node checks the signature it finds next to the
//! image in the mirror (the `sha256-<hex>.sig` tag ferry pushed) against the policy of the name
//! the pod used. Release content is left out: the cluster's own `openshift` policy covers the
//! release repositories.

use std::collections::BTreeSet;

use anyhow::Result;
use base64::Engine;
use ferry_format::index::{AttachmentKind, Image, Index, SigstoreKey};
use serde_json::json;

use super::{labels, object_name, yaml, OutFile};

/// One `cip-<name>-<key>.yaml` per key that verified a non-release image.
pub fn image_policies(index: &Index, name: &str) -> Result<Vec<OutFile>> {
    let mut out = Vec::new();
    for key in &index.sigstore_keys {
        let scopes = scopes(index, key);
        if scopes.is_empty() {
            continue;
        }
        let id = key.id.strip_prefix("sha256:").unwrap_or(&key.id);
        let policy = object_name(&format!("{name}-{}", &id[..12.min(id.len())]));
        let key_data = base64::engine::general_purpose::STANDARD.encode(key.pem.as_bytes());
        out.push(yaml(
            format!("cip-{policy}.yaml"),
            &json!({
                "apiVersion": "config.openshift.io/v1",
                "kind": "ClusterImagePolicy",
                "metadata": {"name": policy, "labels": labels()},
                "spec": {
                    "scopes": scopes,
                    "policy": {
                        "rootOfTrust": {
                            "policyType": "PublicKey",
                            "publicKey": {"keyData": key_data}
                        },
                        "signedIdentity": {"matchPolicy": "MatchRepoDigestOrExact"}
                    }
                }
            }),
        )?);
    }
    Ok(out)
}

/// The source repositories of the non-release images with a signature verified under `key`.
fn scopes(index: &Index, key: &SigstoreKey) -> Vec<String> {
    let release_repos: BTreeSet<String> = index
        .releases
        .iter()
        .flat_map(|r| {
            std::iter::once(format!("{}/{}", r.registry, r.repository))
                .chain(r.component_repositories.iter().cloned())
        })
        .collect();
    let verified = |img: &Image| {
        index
            .attachments_of(img)
            .any(|a| a.kind == AttachmentKind::Signature && a.verified_by.contains(&key.id))
    };
    let scopes: BTreeSet<String> = index
        .images
        .iter()
        .filter(|i| !index.is_attachment(i) && verified(i))
        .map(|i| format!("{}/{}", i.registry, i.repository))
        .filter(|r| !release_repos.contains(r))
        .collect();
    scopes.into_iter().collect()
}
