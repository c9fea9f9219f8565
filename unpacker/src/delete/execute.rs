//! Carrying out a delete plan: the registry is checked against the plan first (a tag moved,
//! added or removed by anything but this plan, or an archive recorded since, refuses the
//! plan), then manifests are deleted in the plan's order. A manifest already gone counts as
//! done, so an interrupted run is finished by running it again. The deletion is then recorded
//! in the target's `ferry-state`.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use ferry_format::Digest;
use ferry_registry::{Client, RegistryError, Repo};
use serde_json::json;

use super::plan::Plan;
use crate::state;
use crate::target::Target;

/// The state tag deletions are recorded under.
pub const DELETIONS_TAG: &str = "_ferry-deletions";
pub const DELETION_LAYER_TYPE: &str = "application/vnd.ferry.delete-plan.v1+json";

/// What an execution did.
#[derive(Debug, Default)]
pub struct Executed {
    pub deleted: usize,
    /// Already gone (an earlier, interrupted run).
    pub already_gone: usize,
}

/// Why a plan no longer fits the registry.
fn drift(client: &Client, target: &Target, plan: &Plan) -> Result<Vec<String>> {
    let planned: BTreeSet<(&str, &Digest)> = plan
        .delete
        .iter()
        .map(|p| (p.repository.as_str(), &p.digest))
        .collect();
    let mut out = Vec::new();
    for (name, tags) in &plan.tags {
        let repo = Repo::new(target.host.clone(), name.clone());
        let now: Vec<String> = match client.list_tags(&repo) {
            Ok(t) => t,
            Err(RegistryError::NotFound { .. }) => vec![],
            Err(e) => return Err(e.into()),
        };
        for (tag, was) in tags {
            let is = if now.contains(tag) {
                client.manifest_digest(&repo, tag)?
            } else {
                None
            };
            match is {
                Some(d) if &d == was => {}
                None if planned.contains(&(name.as_str(), was)) => {} // deleted by this plan
                Some(d) => out.push(format!("{name}:{tag} now names {d}, not {was}")),
                None => out.push(format!("{name}:{tag} is gone")),
            }
        }
        for tag in now.iter().filter(|t| !tags.contains_key(*t)) {
            out.push(format!("{name}:{tag} is new"));
        }
    }
    let recorded: Vec<String> = super::select::recorded(client, target)?
        .into_iter()
        .map(|r| r.archive_id)
        .collect();
    for id in recorded.iter().filter(|id| !plan.archives.contains(id)) {
        out.push(format!("archive {id} was pushed since"));
    }
    Ok(out)
}

/// Checks the plan against the registry, deletes, and records the deletion.
pub fn execute(
    client: &Client,
    target: &Target,
    plan: &Plan,
    plan_bytes: &[u8],
    progress: impl Fn(usize, usize, &str),
) -> Result<Executed> {
    let changed = drift(client, target, plan)?;
    if !changed.is_empty() {
        bail!(
            "the registry changed since the plan was made, so it is not carried out (nothing \
             deleted); generate the plan again:\n  {}",
            changed.join("\n  ")
        );
    }
    let mut done = Executed::default();
    let total = plan.delete.len();
    for (i, p) in plan.delete.iter().enumerate() {
        let repo = Repo::new(target.host.clone(), p.repository.clone());
        let gone = client.delete_manifest(&repo, &p.digest).map_err(|e| {
            let hint = match e {
                RegistryError::DeleteRefused { .. } => String::new(),
                _ => format!(
                    "; {} of {total} deleted so far: run the same command again to finish",
                    done.deleted + done.already_gone
                ),
            };
            anyhow::Error::new(e).context(format!("deleting {}@{}{hint}", p.repository, p.digest))
        })?;
        if gone {
            done.deleted += 1;
        } else {
            done.already_gone += 1;
        }
        progress(i + 1, total, &format!("{}@{}", p.repository, p.digest));
    }
    record(client, target, plan, plan_bytes).context("recording the deletion in ferry-state")?;
    Ok(done)
}

/// Appends the executed plan to the deletions record of the target's `ferry-state`.
fn record(client: &Client, target: &Target, plan: &Plan, plan_bytes: &[u8]) -> Result<()> {
    let repo = state::state_repo(target);
    let layers: Vec<serde_json::Value> = match client.get_manifest(&repo, DELETIONS_TAG) {
        Ok(m) => serde_json::from_slice::<serde_json::Value>(&m.bytes)?["layers"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Err(RegistryError::NotFound { .. }) => vec![],
        Err(e) => return Err(e.into()),
    };
    let digest = Digest::of(plan_bytes);
    if layers.iter().any(|l| l["digest"] == digest.to_string()) {
        return Ok(());
    }
    let empty = b"{}";
    let empty_digest = Digest::of(empty);
    for (d, bytes) in [(&empty_digest, &empty[..]), (&digest, plan_bytes)] {
        if !client.blob_exists(&repo, d)? {
            client.upload_blob_bytes(&repo, d, bytes, None)?;
        }
    }
    let mut layers = layers;
    layers.push(json!({
        "mediaType": DELETION_LAYER_TYPE,
        "digest": digest.to_string(),
        "size": plan_bytes.len(),
        "annotations": {
            "org.opencontainers.image.created": ferry_format::time::now_rfc3339(),
            "io.ferry.deleted-manifests": plan.delete.len().to_string(),
        }
    }));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": ferry_format::manifest::OCI_MANIFEST,
        "artifactType": state::ARTIFACT_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest.to_string(), "size": 2},
        "layers": layers,
    });
    client.put_manifest(
        &repo,
        DELETIONS_TAG,
        ferry_format::manifest::OCI_MANIFEST,
        &serde_json::to_vec(&manifest)?,
    )?;
    Ok(())
}

/// What to run so that the registry frees the space.
pub fn gc_hint() -> &'static str {
    "Deleted manifests free no space until the registry collects garbage:\n  \
     CNCF distribution: stop it (or make it read-only), run `registry garbage-collect \
     /etc/docker/registry/config.yml` (Debian: `docker-registry garbage-collect ...`), start it\n  \
     Quay: garbage collection runs by itself in the background\n  \
     Harbor: Administration → Clean Up → Garbage Collection, or its scheduled run"
}
