//! The site inventory (`ferry-unpack inventory`): what a target registry holds, so that the
//! connected side can pack a delta against what the site really has (`ferry-pack
//! --base-inventory`). Optionally signed with SSHSIG in the namespace `ferry-inventory`.

use serde::{Deserialize, Serialize};

use crate::index::Stream;
use crate::Digest;

pub const INVENTORY_FORMAT: &str = "ferry-inventory";
/// SSHSIG namespace of inventory signatures.
pub const INVENTORY_NAMESPACE: &str = "ferry-inventory";

/// An inventory of a target registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Always `ferry-inventory`.
    pub format: String,
    pub format_version: String,
    pub created: String,
    pub tool: String,
    /// `host[:port][/namespace]` the inventory was taken from.
    pub target: String,
    /// The last archive recorded at the target for each stream.
    #[serde(default)]
    pub streams: Vec<StreamRecord>,
    pub repositories: Vec<RepositoryRecord>,
    /// Every blob (configs and layers) the listed manifests reference, sorted by digest.
    pub blobs: Vec<BlobRecord>,
}

/// The last archive of a stream pushed to the target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamRecord {
    #[serde(flatten)]
    pub stream: Stream,
    pub archive_id: String,
}

/// One repository of the target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRecord {
    pub name: String,
    pub tags: Vec<String>,
    /// Every manifest and index reachable from the tags (and from recorded archives).
    pub manifests: Vec<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
}

impl Inventory {
    /// Parses inventory bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Inventory, String> {
        let inv: Inventory = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if inv.format != INVENTORY_FORMAT {
            return Err(format!(
                "format is {:?}, expected {INVENTORY_FORMAT:?}",
                inv.format
            ));
        }
        if !inv.format_version.starts_with("1.") {
            return Err(format!(
                "inventory version {} is not supported",
                inv.format_version
            ));
        }
        Ok(inv)
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("inventory serializes");
        v.push(b'\n');
        v
    }
}
