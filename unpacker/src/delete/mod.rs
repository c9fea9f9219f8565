//! Retiring content at the site (`ferry-unpack delete`), in two steps a person can review:
//!
//! - [`config`]: oc-mirror's `DeleteImageSetConfiguration`;
//! - [`select`]: which recorded images it retires and which stay, from the signed indexes in
//!   the target's `ferry-state` (so the site knows, offline, what came from where);
//! - [`catalogs`]: the part of that for operator catalogs, their bundles and bundle images;
//! - [`plan`]: that selection checked against the live registry: the manifests to delete, what
//!   is kept back and why, the bytes garbage collection frees;
//! - [`execute`]: the plan carried out, after checking that the registry has not changed,
//!   resumable, and recorded in `ferry-state`.

pub mod catalogs;
pub mod config;
pub mod execute;
pub mod plan;
pub mod select;
pub mod version;

use anyhow::{bail, Result};
use ferry_registry::Client;

use crate::target::Target;

/// Reads the config, the recorded archives and the registry, and makes the plan.
pub fn generate(
    client: &Client,
    target: &Target,
    config: &config::DeleteConfig,
) -> Result<plan::Plan> {
    let unsupported = config.unsupported();
    if !unsupported.is_empty() {
        bail!("the delete config asks for {}", unsupported.join(" and "));
    }
    let archives = select::recorded(client, target)?;
    if archives.is_empty() {
        bail!(
            "{target} records no archive in {}: ferry deletes only what it pushed (push with \
             ferry-unpack first, or check --from and its namespace)",
            crate::state::STATE_REPOSITORY
        );
    }
    let selection = select::select(config, &archives, target)?;
    let ids = archives.into_iter().map(|a| a.archive_id).collect();
    plan::generate(client, target, &selection, ids)
}
