//! Rebuilding lost or damaged volumes from the parity volumes, into files checked against the
//! signed index (`ferry-unpack repair`).
//!
//! Nothing is replaced until its replacement is whole and its blake3 is the one the signed index
//! gives: a rebuilt volume is written as `NAME.partial`, checked, then renamed. A damaged
//! original is kept as `NAME.damaged` (in place), so nothing on the media is lost. Parity
//! volumes are computed again from the data volumes once those are whole; the code is
//! deterministic, so they too must match the index exactly.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ferry_format::archive::{Archive, ArchiveSet, Assessment};
use ferry_format::index::Volume;
use ferry_format::parity;
use ferry_format::volume::PARTIAL_SUFFIX;
use serde::Serialize;

/// What a repair did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairReport {
    /// Data volumes rebuilt, with what was wrong with them.
    pub rebuilt: Vec<Repaired>,
    /// Parity volumes computed again.
    pub parity_rebuilt: Vec<Repaired>,
    /// Damaged originals kept beside the rebuilt volumes.
    pub kept: Vec<PathBuf>,
    /// Where the rebuilt volumes were written.
    pub dir: PathBuf,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Repaired {
    pub name: String,
    pub was: String,
    pub bytes: u64,
}

impl RepairReport {
    /// The human report.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for r in self.rebuilt.iter().chain(&self.parity_rebuilt) {
            let _ = writeln!(
                s,
                "rebuilt {} ({} bytes; it was {}) into {}",
                r.name,
                r.bytes,
                r.was,
                self.dir.display()
            );
        }
        for k in &self.kept {
            let _ = writeln!(s, "kept the damaged original as {}", k.display());
        }
        if self.rebuilt.is_empty() && self.parity_rebuilt.is_empty() {
            let _ = writeln!(s, "nothing to repair: every volume is intact");
        } else {
            let _ = writeln!(
                s,
                "repaired {} volume(s) and {} parity volume(s) in {:.1}s; each matches the signed index",
                self.rebuilt.len(),
                self.parity_rebuilt.len(),
                self.seconds
            );
        }
        s
    }
}

/// Checks every volume of `archive` and rebuilds those that are not intact into `out` (the
/// archive's own directory when `None`).
pub fn repair(archive: &Archive, out: Option<&Path>) -> Result<RepairReport> {
    let started = Instant::now();
    let index = archive.index();
    let dir = archive.dir();
    let assessment = Assessment::of(index, dir);
    let out = out.unwrap_or(dir);
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    // `--out` naming the archive directory itself is a repair in place (originals kept aside).
    let in_place = fs::canonicalize(out).ok() == fs::canonicalize(dir).ok();
    let mut report = RepairReport {
        dir: out.to_path_buf(),
        ..RepairReport::default()
    };
    let bad = assessment.bad_data();
    if !bad.is_empty() {
        let rebuilder = assessment.rebuilder(index, dir)?;
        let volumes: Vec<&Volume> = bad.iter().map(|i| &index.volumes[*i]).collect();
        let partials = create_partials(out, &volumes)?;
        let targets: Vec<(usize, &File)> = bad
            .iter()
            .copied()
            .zip(partials.iter().map(|(_, f)| f))
            .collect();
        let hashes = rebuilder
            .write_volumes(&targets)
            .context("rebuilding the volumes")?;
        let kept = install(out, &volumes, &partials, &hashes, in_place)?;
        report.kept.extend(kept);
        report.rebuilt = bad
            .iter()
            .map(|i| repaired(&index.volumes[*i], &assessment.data[*i]))
            .collect();
    }
    let bad_parity = assessment.bad_parity();
    if !bad_parity.is_empty() {
        let record = index.parity.as_ref().expect("bad parity volumes exist");
        let dirs = DataDirs {
            dir,
            out,
            rebuilt: &bad,
        };
        report
            .kept
            .extend(recompute_parity(index, &dirs, &bad_parity, in_place)?);
        report.parity_rebuilt = bad_parity
            .iter()
            .map(|i| repaired(&record.volumes[*i], &assessment.parity[*i]))
            .collect();
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn repaired(v: &Volume, was: &ferry_format::archive::VolumeState) -> Repaired {
    Repaired {
        name: v.name.clone(),
        was: was.to_string(),
        bytes: v.size,
    }
}

/// Creates `NAME.partial` for each volume at its final size.
fn create_partials(out: &Path, volumes: &[&Volume]) -> Result<Vec<(PathBuf, File)>> {
    volumes
        .iter()
        .map(|v| {
            let path = out.join(format!("{}{PARTIAL_SUFFIX}", v.name));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            f.set_len(v.size)
                .with_context(|| format!("cannot size {}", path.display()))?;
            Ok((path, f))
        })
        .collect()
}

/// Checks each partial against its record and renames it into place; a damaged original in
/// place is kept as `NAME.damaged`. Returns the kept originals.
fn install(
    out: &Path,
    volumes: &[&Volume],
    partials: &[(PathBuf, File)],
    hashes: &[String],
    in_place: bool,
) -> Result<Vec<PathBuf>> {
    for ((v, (path, _)), h) in volumes.iter().zip(partials).zip(hashes) {
        if *h != v.blake3 {
            let _ = fs::remove_file(path);
            bail!(
                "{} rebuilt has blake3 {h}, not the {} the signed index gives; nothing was replaced",
                v.name,
                v.blake3
            );
        }
    }
    let mut kept = Vec::new();
    for (v, (path, f)) in volumes.iter().zip(partials) {
        f.sync_all()
            .with_context(|| format!("cannot sync {}", path.display()))?;
        let dest = out.join(&v.name);
        if in_place && dest.exists() {
            let damaged = out.join(format!("{}.damaged", v.name));
            fs::rename(&dest, &damaged)
                .with_context(|| format!("cannot move {} aside", dest.display()))?;
            kept.push(damaged);
        }
        fs::rename(path, &dest).with_context(|| format!("cannot rename {}", path.display()))?;
    }
    if let Ok(d) = File::open(out) {
        let _ = d.sync_all();
    }
    Ok(kept)
}

/// Where the data volumes are once repaired: the rebuilt ones in `out`, the others in `dir`.
struct DataDirs<'a> {
    dir: &'a Path,
    out: &'a Path,
    rebuilt: &'a [usize],
}

impl DataDirs<'_> {
    fn of(&self, volume: usize) -> &Path {
        if self.rebuilt.contains(&volume) {
            self.out
        } else {
            self.dir
        }
    }
}

/// Computes every parity volume again from the (now whole) data volumes, and installs the
/// `bad` ones, each checked against the index.
fn recompute_parity(
    index: &ferry_format::Index,
    dirs: &DataDirs,
    bad: &[usize],
    in_place: bool,
) -> Result<Vec<PathBuf>> {
    let out = dirs.out;
    let record = index.parity.as_ref().expect("parity");
    let data: Vec<File> = index
        .volumes
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let path = dirs.of(i).join(&v.name);
            File::open(&path).with_context(|| format!("cannot open {}", path.display()))
        })
        .collect::<Result<_>>()?;
    let sizes: Vec<u64> = index.volumes.iter().map(|v| v.size).collect();
    let volumes: Vec<&Volume> = record.volumes.iter().collect();
    let partials = create_partials(out, &volumes)?;
    let (_, hashes) = parity::encode(
        &data.iter().collect::<Vec<_>>(),
        &sizes,
        &partials.iter().map(|(_, f)| f).collect::<Vec<_>>(),
    )
    .context("computing the parity volumes")?;
    let keep = |i: &usize| bad.contains(i);
    let mut chosen = (Vec::new(), Vec::new(), Vec::new());
    for (i, ((p, h), v)) in partials.into_iter().zip(hashes).zip(volumes).enumerate() {
        if keep(&i) {
            chosen.0.push(v);
            chosen.1.push(p);
            chosen.2.push(h);
        } else {
            let _ = fs::remove_file(&p.0);
        }
    }
    install(out, &chosen.0, &chosen.1, &chosen.2, in_place)
}

/// For push and serve: volumes that are missing or have the wrong size (a copy not finished).
/// With parity volumes they are rebuilt as they are read; the volumes are checked whole now, so
/// that a rebuild uses only intact ones (and a damaged one is rebuilt too). Returns what to
/// tell the user.
pub fn prepare_lost(archives: &ArchiveSet) -> Vec<String> {
    let mut notes = Vec::new();
    for archive in archives.all() {
        let lost = archive.unavailable_volumes();
        if lost.is_empty() {
            continue;
        }
        let lost = lost.join(", ");
        let dir = archive.dir().display();
        if !archive.has_parity() {
            notes.push(format!(
                "warning: {lost} in {dir} is missing or has the wrong size, and the archive has no parity volumes; images that need it are left out"
            ));
            continue;
        }
        notes.push(format!(
            "{lost} in {dir} is missing or has the wrong size: checked every volume, to rebuild it from the parity volumes as it is read"
        ));
        if let Err(e) = archive.rebuilt_volumes() {
            notes.push(format!("warning: {e}; images that need them are left out"));
        }
    }
    notes
}
