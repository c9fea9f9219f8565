//! The subcommands: each parses its flags, calls the library, and prints the result. No work
//! is done here.

pub mod inventory;
pub mod manifests;
pub mod push;
pub mod repair;
pub mod serve;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ferry_format::archive::ArchiveSet;
use ferry_format::sign::{self, PublicKey};
use ferry_unpack::cluster;
use ferry_unpack::target::Target;

/// Loads the trusted key and opens the archive with its `--base-media` archives.
fn open(dir: &Path, trust: &Path, base_media: &[PathBuf]) -> Result<(ArchiveSet, PublicKey)> {
    let key = sign::load_public_key(trust)?;
    let archives = ArchiveSet::open(dir, base_media, &key)?;
    Ok((archives, key))
}

/// Builds and writes the cluster manifests; returns the files written (paths under `dir`).
fn write_manifests(
    archives: &ArchiveSet,
    target: &Target,
    dir: &Path,
    icsp: bool,
) -> Result<Vec<cluster::OutFile>> {
    let signatures = cluster::read_signatures(archives).context("reading release signatures")?;
    let files = cluster::build(
        archives.index(),
        &signatures,
        target,
        &cluster::Options { icsp },
    )?;
    cluster::write(dir, &files)?;
    Ok(files)
}

/// Says what [`write_manifests`] wrote, and shows releases.txt.
fn print_manifests(dir: &Path, files: &[cluster::OutFile]) {
    for f in files {
        println!("wrote {}", dir.join(&f.path).display());
    }
    if let Some(r) = files.iter().find(|f| f.path == Path::new("releases.txt")) {
        print!("{}", String::from_utf8_lossy(&r.bytes));
    }
}
