//! Opening and reading signed archives.
//!
//! [`Archive::open`] checks the signature over the exact index bytes before the index is parsed
//! at all: nothing from the media is interpreted until it is known to be signed by the trusted
//! key. Reads go by offset through the volumes (no extraction) and are checked: the canonical
//! tar header in front of each part first, then the bytes against the signed hashes.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::rebuild::{Assessment, Unrecoverable};
use crate::hash::Blake3Reader;
use crate::index::{Blob, Index, IndexError, MAX_INDEX_BYTES};
use crate::sign::{self, PublicKey, SignError};
use crate::volume::{check_headers, PartsReader, Source};
use crate::{Digest, INDEX_FILE, SIGNATURE_FILE};

/// Largest object [`ArchiveSet::read_small`] reads into memory.
pub const MAX_SMALL_OBJECT: u64 = 64 * 1024 * 1024;

/// Why an archive cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot read the index {path}; is {dir} a ferry archive?: {cause}")]
    NoIndex {
        path: PathBuf,
        dir: PathBuf,
        cause: io::Error,
    },
    #[error("cannot read the signature {path}: {cause}")]
    NoSignature { path: PathBuf, cause: io::Error },
    #[error("the {what} {} is {len} bytes, more than the {limit} allowed", path.display())]
    TooLarge {
        what: &'static str,
        path: PathBuf,
        len: u64,
        limit: u64,
    },
    #[error("the index signature does not verify ({path}): {cause}")]
    Signature { path: PathBuf, cause: SignError },
    #[error("signed index {path} is unusable: {cause}")]
    Index { path: PathBuf, cause: IndexError },
    #[error("--base-media {dir}: {cause}")]
    Base { dir: PathBuf, cause: Box<OpenError> },
}

/// Why an object cannot be read from the media.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{what} {digest} is not carried (nor by --base-media)")]
    NotCarried { what: &'static str, digest: Digest },
    #[error("{what} {digest} is {size} bytes: too large to read in memory")]
    TooLarge {
        what: &'static str,
        digest: Digest,
        size: u64,
    },
    #[error("{what} {digest}: {detail}")]
    Header {
        what: &'static str,
        digest: Digest,
        detail: String,
    },
    #[error("cannot read {what} {digest} from the media: {cause}")]
    Io {
        what: &'static str,
        digest: Digest,
        cause: io::Error,
    },
    #[error("the media holds corrupt bytes for {what} {digest} ({detail})")]
    Corrupt {
        what: &'static str,
        digest: Digest,
        detail: String,
    },
    #[error("{what} {digest} cannot be read: {cause}")]
    Unrecoverable {
        what: &'static str,
        digest: Digest,
        cause: Unrecoverable,
    },
}

impl ReadError {
    /// Whether the media's bytes are at fault (damaged, altered, unreadable), so that reading
    /// them rebuilt from parity may succeed.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            ReadError::Header { .. } | ReadError::Io { .. } | ReadError::Corrupt { .. }
        )
    }
}

/// One opened, signature-checked archive, with its volumes open for reading.
pub struct Archive {
    dir: PathBuf,
    index: Index,
    index_bytes: Vec<u8>,
    /// Each volume that is present with the size the index gives; `None` for the others.
    volumes: Vec<Option<Source>>,
    /// The volumes with every one that is not intact rebuilt from the parity volumes, made
    /// the first time a read needs it (it hashes every volume first).
    rebuilt: OnceLock<Result<Vec<Option<Source>>, Unrecoverable>>,
}

impl Archive {
    /// Reads the index and its signature from `dir`, verifies the signature against `trusted`,
    /// then parses and validates the index, and opens the volumes.
    pub fn open(dir: &Path, trusted: &PublicKey) -> Result<Archive, OpenError> {
        let index_path = dir.join(INDEX_FILE);
        let sig_path = dir.join(SIGNATURE_FILE);
        let index_bytes = read_limited(&index_path, MAX_INDEX_BYTES).map_err(|e| match e {
            Limited::Io(cause) => OpenError::NoIndex {
                path: index_path.clone(),
                dir: dir.to_path_buf(),
                cause,
            },
            Limited::TooLarge(len) => OpenError::TooLarge {
                what: "index",
                path: index_path.clone(),
                len,
                limit: MAX_INDEX_BYTES,
            },
        })?;
        let sig = read_limited(&sig_path, 64 * 1024).map_err(|e| match e {
            Limited::Io(cause) => OpenError::NoSignature {
                path: sig_path.clone(),
                cause,
            },
            Limited::TooLarge(len) => OpenError::TooLarge {
                what: "signature",
                path: sig_path.clone(),
                len,
                limit: 64 * 1024,
            },
        })?;
        sign::verify(&index_bytes, &sig, trusted).map_err(|cause| OpenError::Signature {
            path: index_path.clone(),
            cause,
        })?;
        let index = Index::from_slice(&index_bytes).map_err(|cause| OpenError::Index {
            path: index_path,
            cause,
        })?;
        let volumes = index
            .volumes
            .iter()
            .map(|v| {
                let f = File::open(dir.join(&v.name)).ok()?;
                let len = f.metadata().ok()?.len();
                (len == v.size).then_some(Source::File(f))
            })
            .collect();
        Ok(Archive {
            dir: dir.to_path_buf(),
            index,
            index_bytes,
            volumes,
            rebuilt: OnceLock::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The signed index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The index file's exact bytes, as signed.
    pub fn index_bytes(&self) -> &[u8] {
        &self.index_bytes
    }

    /// Path of volume `i`.
    pub fn volume_path(&self, i: usize) -> PathBuf {
        self.dir.join(&self.index.volumes[i].name)
    }

    /// Names of the volumes that are missing or have another size than the index gives.
    pub fn unavailable_volumes(&self) -> Vec<&str> {
        self.index
            .volumes
            .iter()
            .zip(&self.volumes)
            .filter(|(_, f)| f.is_none())
            .map(|(v, _)| v.name.as_str())
            .collect()
    }

    /// Whether the archive has parity volumes.
    pub fn has_parity(&self) -> bool {
        self.index.parity.is_some()
    }

    /// The volumes with the ones that are not intact rebuilt from the parity volumes. The first
    /// call hashes every volume whole (to rebuild only from intact ones); later calls reuse it.
    pub fn rebuilt_volumes(&self) -> Result<&[Option<Source>], &Unrecoverable> {
        self.rebuilt
            .get_or_init(|| Assessment::of(&self.index, &self.dir).sources(&self.index, &self.dir))
            .as_ref()
            .map(Vec::as_slice)
    }

    /// `blob` (one of this archive's) as carried here, if its bytes are in this archive. A blob
    /// with a part in a volume that is not available is read rebuilt, when there is parity.
    fn locate<'a>(&'a self, blob: &'a Blob) -> Option<Located<'a>> {
        let lost = blob.parts.iter().any(|p| {
            self.volumes
                .get(p.volume as usize)
                .is_none_or(Option::is_none)
        });
        blob.carried().then_some(Located {
            blob,
            archive: self,
            rebuilt: lost && self.has_parity(),
        })
    }
}

/// Archives read as one: the archive being worked on first, then the base archives of a delta.
/// An object is read from the first archive that carries it.
pub struct ArchiveSet {
    archives: Vec<Archive>,
}

impl ArchiveSet {
    /// Opens the archive in `dir` and the base archives in `bases`, all checked against
    /// `trusted`.
    pub fn open(dir: &Path, bases: &[PathBuf], trusted: &PublicKey) -> Result<Self, OpenError> {
        let mut archives = vec![Archive::open(dir, trusted)?];
        for b in bases {
            archives.push(Archive::open(b, trusted).map_err(|e| OpenError::Base {
                dir: b.clone(),
                cause: Box::new(e),
            })?);
        }
        Ok(ArchiveSet { archives })
    }

    /// One archive alone.
    pub fn single(archive: Archive) -> Self {
        ArchiveSet {
            archives: vec![archive],
        }
    }

    /// The archive being worked on.
    pub fn primary(&self) -> &Archive {
        &self.archives[0]
    }

    /// Its index.
    pub fn index(&self) -> &Index {
        &self.archives[0].index
    }

    /// The base archives (`--base-media`).
    pub fn bases(&self) -> &[Archive] {
        &self.archives[1..]
    }

    /// Every archive of the set, the primary first.
    pub fn all(&self) -> impl Iterator<Item = &Archive> {
        self.archives.iter()
    }

    /// The first archive that carries `digest`, and its record there.
    pub fn locate(&self, digest: &Digest) -> Option<Located<'_>> {
        self.archives
            .iter()
            .find_map(|a| a.locate(a.index.blob(digest)?))
    }

    /// Reads a small object (a manifest, a signature) whole, checking its header and that its
    /// sha256 is `digest`. `what` names it in errors.
    pub fn read_small(&self, digest: &Digest, what: &'static str) -> Result<Vec<u8>, ReadError> {
        let located = self.locate(digest).ok_or_else(|| ReadError::NotCarried {
            what,
            digest: digest.clone(),
        })?;
        located.read_small(what)
    }
}

/// A blob as carried by one archive of a set.
#[derive(Clone, Copy)]
pub struct Located<'a> {
    pub blob: &'a Blob,
    pub archive: &'a Archive,
    /// Read through the rebuilt volumes.
    rebuilt: bool,
}

impl<'a> Located<'a> {
    /// The same blob read through volumes rebuilt from the parity volumes (after its bytes
    /// did not match), when the archive has them.
    pub fn rebuilt(self) -> Option<Located<'a>> {
        (self.archive.has_parity() && !self.rebuilt).then_some(Located {
            rebuilt: true,
            ..self
        })
    }

    /// Whether the blob is read through rebuilt volumes.
    pub fn is_rebuilt(&self) -> bool {
        self.rebuilt
    }

    /// The volumes to read from.
    fn volumes(&self, what: &'static str) -> Result<&'a [Option<Source>], ReadError> {
        if !self.rebuilt {
            return Ok(&self.archive.volumes);
        }
        self.archive
            .rebuilt_volumes()
            .map_err(|cause| ReadError::Unrecoverable {
                what,
                digest: self.blob.digest.clone(),
                cause: cause.clone(),
            })
    }

    /// Checks that the tar header in front of each part is the canonical one, so that bytes
    /// taken by offset never come from an entry whose header was altered.
    pub fn check_headers(&self, what: &'static str) -> Result<(), ReadError> {
        check_headers(self.volumes(what)?, self.blob).map_err(|detail| ReadError::Header {
            what,
            digest: self.blob.digest.clone(),
            detail,
        })
    }

    /// Streams the whole blob, headers checked; [`BlobReader::verdict`] then says whether the
    /// bytes read are the ones the signed index describes.
    pub fn reader(&self, what: &'static str) -> Result<BlobReader<'a>, ReadError> {
        self.check_headers(what)?;
        Ok(BlobReader {
            inner: Blake3Reader::new(PartsReader::new(self.volumes(what)?, &self.blob.parts)),
            blob: self.blob,
            what,
        })
    }

    /// The bytes `start..start + len` of the blob, headers checked. Nothing is hashed: a
    /// range cannot be checked against the whole blob's hash (verify the archive first).
    pub fn range(&self, start: u64, len: u64) -> Result<impl Read + 'a, ReadError> {
        self.check_headers("blob")?;
        let end = start.saturating_add(len).min(self.blob.size);
        let mut r = PartsReader::new(self.volumes("blob")?, &self.blob.parts);
        r.skip(start.min(end));
        Ok(r.take(end - start.min(end)))
    }

    /// Where bytes `start..end` of the blob lie in the volumes: one run per part they touch, in
    /// order, headers checked (for a sender that copies file ranges itself, such as `sendfile`).
    /// Nothing is hashed, as for [`Located::range`].
    pub fn runs(&self, start: u64, end: u64) -> Result<Vec<Run<'a>>, ReadError> {
        self.check_headers("blob")?;
        let volumes = self.volumes("blob")?;
        let mut runs = Vec::new();
        let mut at = 0u64;
        for p in &self.blob.parts {
            let (from, to) = (start.max(at), end.min(at + p.size));
            if from < to {
                let source = volumes[p.volume as usize]
                    .as_ref()
                    .ok_or_else(|| ReadError::Io {
                        what: "blob",
                        digest: self.blob.digest.clone(),
                        cause: io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("volume #{} is not available", p.volume + 1),
                        ),
                    })?;
                runs.push(Run {
                    source,
                    offset: p.offset + (from - at),
                    len: to - from,
                });
            }
            at += p.size;
        }
        Ok(runs)
    }

    /// Reads the blob whole (at most [`MAX_SMALL_OBJECT`] bytes) and checks its sha256; bytes
    /// that do not match are read again rebuilt, when the archive has parity volumes.
    pub fn read_small(&self, what: &'static str) -> Result<Vec<u8>, ReadError> {
        match self.read_small_once(what) {
            Err(e) if e.is_damage() => match self.rebuilt() {
                Some(r) => r.read_small_once(what),
                None => Err(e),
            },
            r => r,
        }
    }

    fn read_small_once(&self, what: &'static str) -> Result<Vec<u8>, ReadError> {
        let digest = &self.blob.digest;
        if self.blob.size > MAX_SMALL_OBJECT {
            return Err(ReadError::TooLarge {
                what,
                digest: digest.clone(),
                size: self.blob.size,
            });
        }
        self.check_headers(what)?;
        let mut bytes = Vec::with_capacity(self.blob.size as usize);
        PartsReader::new(self.volumes(what)?, &self.blob.parts)
            .read_to_end(&mut bytes)
            .map_err(|cause| ReadError::Io {
                what,
                digest: digest.clone(),
                cause,
            })?;
        let found = Digest::of(&bytes);
        if found != *digest {
            return Err(ReadError::Corrupt {
                what,
                digest: digest.clone(),
                detail: format!("sha256 is {found}"),
            });
        }
        Ok(bytes)
    }
}

/// A run of a blob's bytes in one volume (a file, or rebuilt).
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub source: &'a Source,
    pub offset: u64,
    pub len: u64,
}

/// A whole blob streamed from the media, hashed as it is read.
pub struct BlobReader<'a> {
    inner: Blake3Reader<PartsReader<'a>>,
    blob: &'a Blob,
    what: &'static str,
}

impl BlobReader<'_> {
    /// After the last byte: whether what was read is exactly the blob the signed index
    /// describes (its blake3 and size).
    pub fn verdict(&self) -> Result<(), ReadError> {
        let (b3, size) = self.inner.snapshot();
        if b3 == self.blob.blake3 && size == self.blob.size {
            return Ok(());
        }
        Err(ReadError::Corrupt {
            what: self.what,
            digest: self.blob.digest.clone(),
            detail: format!(
                "blake3 {b3} over {size} bytes, the index says {}",
                self.blob.blake3
            ),
        })
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

enum Limited {
    Io(io::Error),
    TooLarge(u64),
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, Limited> {
    let f = File::open(path).map_err(Limited::Io)?;
    let len = f.metadata().map_err(Limited::Io)?.len();
    if len > limit {
        return Err(Limited::TooLarge(len));
    }
    let mut out = Vec::with_capacity(len as usize);
    f.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(Limited::Io)?;
    Ok(out)
}
