//! OCI referrers at the target. A registry with the referrers API indexes a pushed manifest by
//! its `subject` itself. For one without (CNCF distribution 2.8 among them), ferry keeps the
//! tag schema's index `sha256-<hex>` of each subject up to date, as OCI clients do, so that
//! clients that look there find the referrers: existing entries are kept as they are, missing
//! ones are added.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use ferry_format::archive::ArchiveSet;
use ferry_format::index::{Attachment, AttachmentKind};
use ferry_format::manifest::OCI_INDEX;
use ferry_format::Digest;
use ferry_registry::referrers::{fallback_tag, ReferrersSource};
use ferry_registry::{Client, RegistryError, Repo};
use serde_json::{json, Value};

use super::report::{FailedImage, NotPushed, PushedImage};
use crate::target::Target;

/// Links every pushed referrer to its subject at the target. Referrers whose link failed move
/// from `pushed` to the returned failures. Returns how many fallback indexes were written.
pub fn link_all(
    client: &Client,
    archives: &ArchiveSet,
    target: &Target,
    pushed: &mut Vec<PushedImage>,
) -> (Vec<FailedImage>, u64) {
    let index = archives.index();
    let mut by_subject: BTreeMap<(String, &Digest), Vec<&Attachment>> = BTreeMap::new();
    for a in index
        .attachments
        .iter()
        .filter(|a| a.kind == AttachmentKind::Referrer)
    {
        by_subject
            .entry((
                index.attachment_target_repository(a).to_string(),
                &a.subject,
            ))
            .or_default()
            .push(a);
    }
    let (mut failed, mut written) = (Vec::new(), 0);
    for ((repository, subject), referrers) in by_subject {
        let sources: Vec<String> = referrers.iter().map(|a| source_of(a)).collect();
        // Only referrers that reached the target are linked.
        if !sources
            .iter()
            .all(|s| pushed.iter().any(|p| &p.source == s))
        {
            continue;
        }
        match link(
            client,
            archives,
            &target.repo(&repository),
            subject,
            &referrers,
        ) {
            Ok(wrote) => written += u64::from(wrote),
            Err(e) => {
                pushed.retain(|p| !sources.contains(&p.source));
                failed.extend(sources.into_iter().map(|source| FailedImage {
                    source,
                    reason: NotPushed::Referrer {
                        subject: subject.clone(),
                        error: format!("{e:#}"),
                    },
                }));
            }
        }
    }
    (failed, written)
}

/// How the index names a referrer image (its `source`).
fn source_of(a: &Attachment) -> String {
    format!("{}/{}@{}", a.registry, a.repository, a.digest)
}

/// Adds the referrers the target does not list for `subject` to the tag schema's index, when
/// the target has no referrers API. Returns whether the index was written.
fn link(
    client: &Client,
    archives: &ArchiveSet,
    repo: &Repo,
    subject: &Digest,
    referrers: &[&Attachment],
) -> Result<bool> {
    let listed = client.referrers(repo, subject, None)?;
    let missing: Vec<&&Attachment> = referrers
        .iter()
        .filter(|a| !listed.descriptors.iter().any(|d| d.digest == a.digest))
        .collect();
    if listed.source == ReferrersSource::Api || missing.is_empty() {
        return Ok(false);
    }
    let tag = fallback_tag(subject);
    let mut fallback = match client.get_manifest(repo, &tag) {
        Ok(m) => serde_json::from_slice::<Value>(&m.bytes)
            .with_context(|| format!("the referrers index {repo}:{tag} is not JSON"))?,
        Err(RegistryError::NotFound { .. }) => {
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        }
        Err(e) => return Err(e.into()),
    };
    let entries = fallback["manifests"]
        .as_array_mut()
        .with_context(|| format!("the referrers index {repo}:{tag} lists no manifests"))?;
    for a in missing {
        entries.push(descriptor(archives, a)?);
    }
    let bytes = serde_json::to_vec(&fallback)?;
    client.put_manifest(repo, &tag, OCI_INDEX, &bytes)?;
    Ok(true)
}

/// A referrers-index entry for a referrer, from its manifest on the media: media type, digest,
/// size, artifact type (its `artifactType`, else its config's media type) and annotations.
fn descriptor(archives: &ArchiveSet, a: &Attachment) -> Result<Value> {
    let bytes = archives.read_small(&a.digest, "manifest")?;
    let m: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("referrer {} is not JSON", a.digest))?;
    let media_type = archives
        .index()
        .manifest(&a.digest)
        .map_or(ferry_format::manifest::OCI_MANIFEST, |r| {
            r.media_type.as_str()
        });
    let artifact_type = m["artifactType"]
        .as_str()
        .or(m["config"]["mediaType"].as_str())
        .or(a.artifact_type.as_deref());
    let mut d = json!({
        "mediaType": media_type,
        "digest": a.digest.to_string(),
        "size": bytes.len(),
    });
    if let Some(t) = artifact_type {
        d["artifactType"] = Value::String(t.to_string());
    }
    if m["annotations"].is_object() {
        d["annotations"] = m["annotations"].clone();
    }
    Ok(d)
}
