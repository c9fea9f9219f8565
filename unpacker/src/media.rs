//! Opening an archive. The signature is checked over the exact index bytes before the index is
//! parsed at all: nothing from the media is interpreted until it is known to be signed by the
//! trusted key.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ferry_format::index::{Index, MAX_INDEX_BYTES};
use ferry_format::{sign, INDEX_FILE, SIGNATURE_FILE};
use ssh_key::PublicKey;

/// An opened, signature-checked archive.
pub struct Media {
    pub dir: PathBuf,
    pub index: Index,
    /// The index file's exact bytes (as signed).
    pub index_raw: Vec<u8>,
}

impl Media {
    /// Reads the index and its signature from `dir`, verifies the signature against `trusted`,
    /// then parses and validates the index.
    pub fn open(dir: &Path, trusted: &PublicKey) -> Result<Media> {
        let index_path = dir.join(INDEX_FILE);
        let sig_path = dir.join(SIGNATURE_FILE);
        let bytes = read_limited(&index_path, MAX_INDEX_BYTES).with_context(|| {
            format!(
                "cannot read the index {}; is {} a ferry archive?",
                index_path.display(),
                dir.display()
            )
        })?;
        let sig = read_limited(&sig_path, 64 * 1024)
            .with_context(|| format!("cannot read the signature {}", sig_path.display()))?;
        sign::verify(&bytes, &sig, trusted).with_context(|| {
            format!(
                "the index signature does not verify ({})",
                index_path.display()
            )
        })?;
        let index = Index::from_slice(&bytes)
            .with_context(|| format!("signed index {} is unusable", index_path.display()))?;
        Ok(Media {
            dir: dir.to_path_buf(),
            index,
            index_raw: bytes,
        })
    }

    /// Path of volume `i`.
    pub fn volume_path(&self, i: usize) -> PathBuf {
        self.dir.join(&self.index.volumes[i].name)
    }

    /// Opens every volume that is present with the right size; `None` for the others.
    pub fn open_volumes(&self) -> Vec<Option<File>> {
        (0..self.index.volumes.len())
            .map(|i| {
                let f = File::open(self.volume_path(i)).ok()?;
                let len = f.metadata().ok()?.len();
                (len == self.index.volumes[i].size).then_some(f)
            })
            .collect()
    }
}

/// Loads the trusted public key.
pub fn load_trust(path: &Path) -> Result<PublicKey> {
    Ok(sign::load_public_key(path)?)
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    if len > limit {
        bail!(
            "{} is {len} bytes, more than the {limit} allowed",
            path.display()
        );
    }
    let mut out = Vec::with_capacity(len as usize);
    f.take(limit + 1).read_to_end(&mut out)?;
    Ok(out)
}
