//! ferry-unpack: the disconnected side. Everything here works from the media alone (read
//! through `ferry_format::archive`); the only network peer is the target registry. There is no
//! pulling or discovery code: what to push is what the signed index lists.
//!
//! - [`verify`]: checking every volume and blob offline, and what the archive brings;
//! - [`push`]: copying blobs, then manifests, then tags into the target registry;
//! - [`cluster`]: the cluster manifests (IDMS, ITMS, ICSP, signature ConfigMaps, catalog
//!   sources, UpdateService, mapping.txt);
//! - [`repair`]: lost or damaged volumes rebuilt from the parity volumes;
//! - [`serve`]: the media served in place as a read-only registry, for sites that have none;
//! - [`state`]: what the target has received, kept in the target itself;
//! - [`delete`]: retiring content: a reviewable plan from a delete config and the state
//!   record, then carried out safely;
//! - [`extract`]: a release's command binaries (openshift-install, oc) taken from the media,
//!   pinned to the mirrored release;
//! - [`inventory`]: what the target holds, for packing deltas against it;
//! - [`target`]: the target registry and where a source repository lands in it.

pub mod cluster;
pub mod delete;
pub mod extract;
pub mod inventory;
pub mod push;
pub mod repair;
pub mod serve;
pub mod state;
pub mod target;
pub mod verify;

#[cfg(test)]
mod testing;
