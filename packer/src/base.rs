//! Bases of a delta archive: earlier archives' indexes (`--base`) or a site inventory
//! (`--base-inventory`). Each is checked against its signature before it is used; what any
//! base lists is not carried again.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ferry_format::index::{Index, Parent, ParentKind, Stream};
use ferry_format::inventory::{Inventory, INVENTORY_NAMESPACE};
use ferry_format::sign::PublicKey;
use ferry_format::{sign, Digest, SIGNATURE_NAMESPACE};

/// What the site will hold once the bases are pushed.
#[derive(Debug, Default)]
pub struct Bases {
    pub parents: Vec<Parent>,
    /// Digest (blob or manifest) → (parent id, blake3 when the parent knows it).
    pub content: HashMap<Digest, (String, String)>,
    /// Highest sequence per stream name among the parents.
    pub sequences: HashMap<String, u64>,
}

impl Bases {
    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }

    /// The sequence a new archive of `stream` gets: one past the highest parent's, else 1.
    pub fn next_sequence(&self, stream: &str) -> u64 {
        self.sequences.get(stream).map_or(1, |s| s + 1)
    }

    /// Adds a base archive from its index file; the signature beside it (`<file>.sig`) must
    /// verify against `trusted`.
    pub fn add_index(&mut self, path: &Path, trusted: &PublicKey) -> Result<()> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read base index {}", path.display()))?;
        let sig_path = sig_path(path);
        let sig = std::fs::read(&sig_path).with_context(|| {
            format!(
                "cannot read the signature of base index {}",
                sig_path.display()
            )
        })?;
        sign::verify_in(&bytes, &sig, trusted, SIGNATURE_NAMESPACE)
            .with_context(|| format!("base index {} does not verify", path.display()))?;
        let index = Index::from_slice(&bytes)
            .with_context(|| format!("base index {} is unusable", path.display()))?;
        let id = index.archive_id.clone();
        if self.parents.iter().any(|p| p.id == id) {
            bail!("base archive {id} is given twice");
        }
        for b in &index.blobs {
            self.content
                .entry(b.digest.clone())
                .or_insert_with(|| (id.clone(), b.blake3.clone()));
        }
        if let Some(s) = &index.stream {
            let e = self.sequences.entry(s.name.clone()).or_insert(0);
            *e = (*e).max(s.sequence);
        }
        self.parents.push(Parent {
            id,
            kind: ParentKind::Archive,
            sha256: Digest::of(&bytes),
            stream: index.stream.clone(),
            target: None,
        });
        Ok(())
    }

    /// Adds a site inventory. Its signature (`<file>.sig`, namespace `ferry-inventory`) must
    /// verify when `trusted` is given; an unsigned inventory is accepted only without it.
    pub fn add_inventory(&mut self, path: &Path, trusted: Option<&PublicKey>) -> Result<()> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read inventory {}", path.display()))?;
        let sig_path = sig_path(path);
        match (trusted, sig_path.exists()) {
            (Some(key), true) => {
                let sig = std::fs::read(&sig_path)?;
                sign::verify_in(&bytes, &sig, key, INVENTORY_NAMESPACE)
                    .with_context(|| format!("inventory {} does not verify", path.display()))?;
            }
            (Some(_), false) => bail!(
                "inventory {} has no signature {} but --trust-inventory was given",
                path.display(),
                sig_path.display()
            ),
            (None, _) => eprintln!(
                "note: using inventory {} without checking a signature (give --trust-inventory KEY.pub to check it)",
                path.display()
            ),
        }
        let inv = Inventory::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("inventory {} is unusable: {e}", path.display()))?;
        let sha = Digest::of(&bytes);
        let id = format!("inventory-{}", &sha.hex()[..32]);
        for b in &inv.blobs {
            self.content
                .entry(b.digest.clone())
                .or_insert_with(|| (id.clone(), String::new()));
        }
        for r in &inv.repositories {
            for m in &r.manifests {
                self.content
                    .entry(m.clone())
                    .or_insert_with(|| (id.clone(), String::new()));
            }
        }
        for s in &inv.streams {
            let e = self.sequences.entry(s.stream.name.clone()).or_insert(0);
            *e = (*e).max(s.stream.sequence);
        }
        self.parents.push(Parent {
            id,
            kind: ParentKind::Inventory,
            sha256: sha,
            stream: None,
            target: Some(inv.target.clone()),
        });
        Ok(())
    }
}

/// The stream a config packs into by default: its file name without the extension.
pub fn default_stream(config: &Path) -> String {
    let stem = config
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("default");
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        "default".into()
    } else {
        clean
    }
}

/// Builds the stream record of a new archive.
pub fn stream_of(name: &str, bases: &Bases) -> Stream {
    Stream {
        name: name.to_string(),
        sequence: bases.next_sequence(name),
    }
}

fn sig_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".sig");
    s.into()
}
