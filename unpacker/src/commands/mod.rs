//! The subcommands: each parses its flags, calls the library, and prints the result. No work
//! is done here.

pub mod delete;
pub mod extract;
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

/// `--max-nested-paths N`: for target registries that limit how deep a repository path goes.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct PathLimit {
    /// Most path components a target repository may have, namespace included (Quay, GitLab and
    /// Harbor limit them): a deeper path keeps its first N-1 components and joins the rest with
    /// '-' (a/b/c/d with 2: a/b-c-d), as oc-mirror does. Give push, manifests, serve and
    /// inventory the same N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_nested_paths: Option<u64>,
}

impl PathLimit {
    /// `target` with this limit.
    fn apply(self, target: &Target) -> Target {
        target
            .clone()
            .with_max_nested_paths(self.max_nested_paths.map(|n| n as usize))
    }
}

/// Loads the trusted key and opens the archive with its `--base-media` archives.
fn open(dir: &Path, trust: &Path, base_media: &[PathBuf]) -> Result<(ArchiveSet, PublicKey)> {
    let key = sign::load_public_key(trust)?;
    let archives = ArchiveSet::open(dir, base_media, &key)?;
    Ok((archives, key))
}

/// The cluster manifest options from the flags: `ca_file` (the mirror's CA) becomes
/// install-config's trust bundle.
fn manifest_options(icsp: bool, ca_file: Option<&Path>) -> Result<cluster::Options> {
    let trust_bundle = match ca_file {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --ca-file {}", p.display()))?;
            Some(cluster::trust_bundle(&text, &p.display().to_string())?)
        }
    };
    Ok(cluster::Options { icsp, trust_bundle })
}

/// Builds and writes the cluster manifests; returns the files written (paths under `dir`).
fn write_manifests(
    archives: &ArchiveSet,
    target: &Target,
    dir: &Path,
    opts: &cluster::Options,
) -> Result<Vec<cluster::OutFile>> {
    let signatures = cluster::read_signatures(archives).context("reading release signatures")?;
    let files = cluster::build(archives.index(), &signatures, target, opts)?;
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
