//! ferry-unpack: the disconnected side. Everything here works from the media alone; the only
//! network peer is the target registry given to `push`.
//!
//! - [`media`]: opening an archive: signature first, then the index, then the volumes;
//! - [`verify`]: checking every volume and blob offline;
//! - [`push`]: copying blobs, then manifests, then tags into the target registry;
//! - [`cluster`]: the cluster manifests (IDMS, ITMS, ICSP, signature ConfigMaps, mapping.txt).

pub mod cluster;
pub mod inventory;
pub mod media;
pub mod push;
pub mod state;
pub mod verify;
