//! Volume files: read back by offset; with the feature `write`, created at their final size
//! and filled in place ([`VolumeSet`], in `fill.rs`).
//!
//! Reading: [`PartsReader`] streams a blob from its parts (`pread`, no seeking, shareable files);
//! [`check_headers`] checks the canonical tar header in front of each part; [`crate::check`]
//! verifies whole volumes against the index.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::index::Part;
use crate::layout;
use crate::parity::Rebuilder;

/// Where a volume's bytes are read from: its file, or rebuilt from the other volumes with the
/// parity volumes (a lost or damaged volume).
pub enum Source {
    File(File),
    Rebuilt { volume: usize, from: Arc<Rebuilder> },
}

impl Source {
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            Source::File(f) => f.read_at(buf, offset),
            Source::Rebuilt { volume, from } => from.read_at(*volume, buf, offset),
        }
    }

    pub fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(buf, offset)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the volume ends early",
                ));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }

    /// The file, when the bytes are read from it as they are.
    pub fn file(&self) -> Option<&File> {
        match self {
            Source::File(f) => Some(f),
            Source::Rebuilt { .. } => None,
        }
    }

    pub fn is_rebuilt(&self) -> bool {
        matches!(self, Source::Rebuilt { .. })
    }
}

/// The volumes a reader reads from: the archive's own, or a set made for one blob.
enum Volumes<'a> {
    Borrowed(&'a [Option<Source>]),
    Owned(Vec<Option<Source>>),
}

impl Volumes<'_> {
    fn get(&self, i: usize) -> Option<&Source> {
        match self {
            Volumes::Borrowed(v) => v.get(i)?.as_ref(),
            Volumes::Owned(v) => v.get(i)?.as_ref(),
        }
    }
}

#[cfg(feature = "write")]
mod fill;
#[cfg(feature = "write")]
pub use fill::{PartHasher, PartsWriter, Region, VolumeSet};

/// Suffix of a volume that is still being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Reads a blob from its parts by offset. The files are the archive's volumes, opened once.
pub struct PartsReader<'a> {
    volumes: Volumes<'a>,
    parts: &'a [Part],
    part: usize,
    read: u64,
}

impl<'a> PartsReader<'a> {
    pub fn new(volumes: &'a [Option<Source>], parts: &'a [Part]) -> Self {
        PartsReader {
            volumes: Volumes::Borrowed(volumes),
            parts,
            part: 0,
            read: 0,
        }
    }

    /// A reader over volumes made for this one blob (rebuilt ones, say).
    pub fn owned(volumes: Vec<Option<Source>>, parts: &'a [Part]) -> Self {
        PartsReader {
            volumes: Volumes::Owned(volumes),
            parts,
            part: 0,
            read: 0,
        }
    }

    /// Moves `n` bytes further into the blob without reading them (the start of a range).
    pub fn skip(&mut self, mut n: u64) {
        while let Some(p) = self.parts.get(self.part) {
            let left = p.size - self.read;
            if n < left {
                self.read += n;
                return;
            }
            n -= left;
            self.part += 1;
            self.read = 0;
        }
    }
}

impl Read for PartsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(p) = self.parts.get(self.part) else {
                return Ok(0);
            };
            if self.read == p.size {
                self.part += 1;
                self.read = 0;
                continue;
            }
            let Some(f) = self.volumes.get(p.volume as usize) else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("volume #{} is not available", p.volume + 1),
                ));
            };
            let want = buf.len().min((p.size - self.read) as usize);
            let n = f.read_at(&mut buf[..want], p.offset + self.read)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "volume #{} ends before offset {}",
                        p.volume + 1,
                        p.offset + self.read
                    ),
                ));
            }
            self.read += n as u64;
            return Ok(n);
        }
    }
}

/// Checks that the tar header in front of each part of a blob is the canonical one, so that a
/// reader taking bytes by offset never uses an entry whose header was altered (a renamed,
/// linked or device entry) even when its data is intact.
pub fn check_headers(volumes: &[Option<Source>], blob: &crate::index::Blob) -> Result<(), String> {
    let split = blob.parts.len() > 1;
    for (i, p) in blob.parts.iter().enumerate() {
        let path = layout::blob_entry_path(&blob.digest, split.then_some(i + 1));
        let expected = layout::entry_header(&path, p.size);
        let Some(Some(f)) = volumes.get(p.volume as usize) else {
            return Err(format!("volume #{} is not available", p.volume + 1));
        };
        let at = p
            .offset
            .checked_sub(expected.len() as u64)
            .ok_or_else(|| format!("part {} has no room for its header", i + 1))?;
        let mut found = vec![0u8; expected.len()];
        f.read_exact_at(&mut found, at)
            .map_err(|e| format!("cannot read the header of part {}: {e}", i + 1))?;
        if found != expected {
            return Err(format!(
                "the tar header of {path} (volume #{}, offset {at}) is not the canonical one: the media was altered",
                p.volume + 1
            ));
        }
    }
    Ok(())
}

/// A problem found while checking media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The volume, blob or file concerned.
    pub subject: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}
