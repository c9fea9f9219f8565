//! The ferry archive format, version 1 (normative text: `format-spec/SPEC.md`).
//!
//! An archive is a directory on removable media holding:
//! - `ferry-index.json`: the [`Index`] of images, manifests, blobs and volumes;
//! - `ferry-index.json.sig`: an OpenSSH SSHSIG (ed25519) over the exact index bytes;
//! - `ferry-vol-NNNN.tar`: one or more tar volumes whose entries form a content-addressed
//!   OCI image layout under `v2/`.
//!
//! This crate is shared by the packer and the unpacker. It knows nothing about HTTP. Its default
//! build is what the disconnected side needs: parse, verify and read signed archives. The
//! feature `sign` adds signing, `write` the archive writer, `encrypted-keys` decryption of
//! passphrase-protected signing keys (the packer has all three).
//!
//! Modules:
//! - [`archive`]: archives as a whole: open signed ones and read what they carry by digest,
//!   several as one (a delta and its bases); write and seal new ones (`write`);
//! - [`digest`]: the `sha256:<hex>` content digest type;
//! - [`hash`]: sha256 + blake3 in one pass over streamed bytes;
//! - [`manifest`]: the minimal, read-only view of image manifests and indexes used to walk them;
//! - [`index`]: the index document (what the archive holds), its strict loader, and walks over
//!   it (an image's closure);
//! - [`inventory`]: what a site registry holds, for packing deltas against it;
//! - [`layout`]: how entries are laid out in volumes (tar headers, offsets, split blobs);
//! - [`volume`]: reading volumes by offset (and, with `write`, filling them in place);
//! - [`tiling`]: each volume's entries as the index describes them, and that they tile it;
//! - [`parity`]: parity volumes (Reed-Solomon across volumes) and rebuilding lost ones;
//! - [`check`]: verifying volumes against the index, entry by entry, in parallel;
//! - [`sign`]: SSHSIG verification of the index (and signing, with `sign`);
//! - [`oci`]: the OCI image layout files (`oci-layout`, `index.json`) carried in the volumes.

pub mod archive;
pub mod check;
pub mod digest;
pub mod hash;
pub mod index;
pub mod inventory;
pub mod layout;
pub mod manifest;
pub mod oci;
pub mod parity;
pub mod sign;
pub mod tiling;
pub mod time;
pub mod volume;

pub use digest::Digest;
pub use hash::{Hashes, HashingReader};
pub use index::Index;

/// File name of the index inside an archive directory.
pub const INDEX_FILE: &str = "ferry-index.json";
/// File name of the detached index signature inside an archive directory.
pub const SIGNATURE_FILE: &str = "ferry-index.json.sig";
/// SSHSIG namespace of index signatures (`ssh-keygen -Y ... -n ferry-index`).
pub const SIGNATURE_NAMESPACE: &str = "ferry-index";
/// The format identifier written in every index.
pub const FORMAT: &str = "ferry-archive";
/// Major version of the format this crate reads and writes.
pub const FORMAT_MAJOR: u32 = 1;
/// Minor version of the format this crate writes.
pub const FORMAT_MINOR: u32 = 5;
