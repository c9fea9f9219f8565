//! Archives as a whole: opening signed archives and reading what they carry ([`read`]), and
//! writing them ([`write`], feature `write`).
//!
//! Every program works through here: the unpacker opens an [`ArchiveSet`] (the archive being
//! pushed, with the base archives of a delta given with `--base-media`) and reads each blob or
//! manifest by digest, checked against the signed index; the packer fills an
//! [`write::ArchiveWriter`] and seals it. The layers below ([`crate::layout`],
//! [`crate::volume`]) know offsets and tar headers; this module knows archives.

pub mod read;
pub mod rebuild;
#[cfg(feature = "write")]
pub mod write;

pub use read::{Archive, ArchiveSet, BlobReader, Located, OpenError, ReadError, Run};
pub use rebuild::{Assessment, Unrecoverable, VolumeState};
