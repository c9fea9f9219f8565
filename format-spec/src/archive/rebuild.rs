//! Which volumes of an archive can be trusted, and rebuilding the others from the parity
//! volumes (SPEC §3.5).
//!
//! A rebuild only ever uses volumes whose whole-file blake3 matches the signed index: a
//! damaged shard would rebuild wrong bytes. [`Assessment::of`] hashes every volume (data and
//! parity) to find them; a volume that is missing, has another size (an interrupted copy) or
//! another hash is an erasure. With `K` parity volumes, any `K` erasures rebuild.

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::index::{Index, Volume};
use crate::parity::Rebuilder;
use crate::volume::Source;

/// The state of one volume file against its index record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeState {
    Intact,
    Missing,
    /// Another size than the index gives: typically a copy that was interrupted.
    WrongSize {
        found: u64,
    },
    /// The right size, another blake3.
    Damaged,
    Unreadable(String),
}

impl VolumeState {
    /// Checks the file `dir/volume.name` whole against the record.
    pub fn of(dir: &Path, volume: &Volume) -> VolumeState {
        let Ok(f) = File::open(dir.join(&volume.name)) else {
            return VolumeState::Missing;
        };
        match f.metadata() {
            Ok(m) if m.len() != volume.size => return VolumeState::WrongSize { found: m.len() },
            Ok(_) => {}
            Err(e) => return VolumeState::Unreadable(e.to_string()),
        }
        match crate::hash::blake3_of_file(&f) {
            Ok((_, b3)) if b3 == volume.blake3 => VolumeState::Intact,
            Ok(_) => VolumeState::Damaged,
            Err(e) => VolumeState::Unreadable(e.to_string()),
        }
    }

    pub fn intact(&self) -> bool {
        *self == VolumeState::Intact
    }
}

impl fmt::Display for VolumeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeState::Intact => write!(f, "intact"),
            VolumeState::Missing => write!(f, "missing"),
            VolumeState::WrongSize { found } => write!(f, "{found} bytes (a partial copy?)"),
            VolumeState::Damaged => write!(f, "damaged (its blake3 differs)"),
            VolumeState::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

/// Every volume of an archive checked whole.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// One per data volume, in index order.
    pub data: Vec<VolumeState>,
    /// One per parity volume (none when the archive has no parity).
    pub parity: Vec<VolumeState>,
}

impl Assessment {
    /// Hashes every volume of the archive in `dir` (in parallel).
    pub fn of(index: &Index, dir: &Path) -> Assessment {
        let parity = index.parity.as_ref().map_or(&[][..], |p| &p.volumes[..]);
        let all: Vec<&Volume> = index.volumes.iter().chain(parity).collect();
        let mut states: Vec<VolumeState> =
            all.par_iter().map(|v| VolumeState::of(dir, v)).collect();
        let parity = states.split_off(index.volumes.len());
        Assessment {
            data: states,
            parity,
        }
    }

    /// Indexes of the data volumes that are not intact.
    pub fn bad_data(&self) -> Vec<usize> {
        bad(&self.data)
    }

    /// Indexes of the parity volumes that are not intact.
    pub fn bad_parity(&self) -> Vec<usize> {
        bad(&self.parity)
    }

    /// Whether the intact volumes are enough to rebuild every data volume.
    pub fn recoverable(&self) -> bool {
        self.bad_data().len() <= self.parity.len() - self.bad_parity().len()
    }

    /// A rebuilder over the intact volumes, or why there can be none.
    pub fn rebuilder(&self, index: &Index, dir: &Path) -> Result<Rebuilder, Unrecoverable> {
        if !self.recoverable() || index.parity.is_none() {
            return Err(self.unrecoverable(index));
        }
        let open = |v: &Volume, state: &VolumeState| {
            state
                .intact()
                .then(|| File::open(dir.join(&v.name)).ok())
                .flatten()
        };
        let data = index
            .volumes
            .iter()
            .zip(&self.data)
            .map(|(v, s)| (open(v, s), v.size))
            .collect();
        let parity_volumes = &index.parity.as_ref().expect("checked").volumes;
        let parity = parity_volumes
            .iter()
            .zip(&self.parity)
            .map(|(v, s)| open(v, s))
            .collect();
        let r = Rebuilder::new(data, parity);
        if r.recoverable() {
            Ok(r)
        } else {
            Err(self.unrecoverable(index))
        }
    }

    /// The volumes to read from: the intact ones as files, the others rebuilt.
    pub fn sources(&self, index: &Index, dir: &Path) -> Result<Vec<Option<Source>>, Unrecoverable> {
        let from = Arc::new(self.rebuilder(index, dir)?);
        Ok(index
            .volumes
            .iter()
            .zip(&self.data)
            .enumerate()
            .map(
                |(i, (v, s))| match s.intact().then(|| File::open(dir.join(&v.name))) {
                    Some(Ok(f)) => Some(Source::File(f)),
                    _ => Some(Source::Rebuilt {
                        volume: i,
                        from: from.clone(),
                    }),
                },
            )
            .collect())
    }

    fn unrecoverable(&self, index: &Index) -> Unrecoverable {
        let name = |i: &usize| index.volumes[*i].name.clone();
        Unrecoverable {
            bad: self
                .bad_data()
                .iter()
                .map(|i| (name(i), self.data[*i].clone()))
                .collect(),
            parity_intact: self.parity.len() - self.bad_parity().len(),
            parity_total: self.parity.len(),
        }
    }
}

fn bad(states: &[VolumeState]) -> Vec<usize> {
    (0..states.len()).filter(|i| !states[*i].intact()).collect()
}

/// Why lost volumes cannot be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecoverable {
    /// The data volumes that are not intact, by name.
    pub bad: Vec<(String, VolumeState)>,
    pub parity_intact: usize,
    pub parity_total: usize,
}

impl fmt::Display for Unrecoverable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.bad.iter().map(|(n, s)| format!("{n} ({s})")).collect();
        if self.parity_total == 0 {
            return write!(
                f,
                "{} is not usable and the archive has no parity volumes (pack with --parity)",
                names.join(", ")
            );
        }
        write!(
            f,
            "{} data volume(s) are not usable ({}) and only {} of {} parity volume(s) are intact: \
             at most {} can be rebuilt; copy the volumes again from the original media",
            self.bad.len(),
            names.join(", "),
            self.parity_intact,
            self.parity_total,
            self.parity_intact
        )
    }
}

impl std::error::Error for Unrecoverable {}
