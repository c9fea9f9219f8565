//! The media plan, before anything is downloaded: the exact volumes and bytes an archive will
//! have (its layout is a function of the plan, and its index has the same length whatever the
//! hashes turn out to be), and, for a medium size, which volumes go on each medium.

use std::collections::HashMap;

use anyhow::Result;
use ferry_format::archive::write;
use serde::Serialize;

use super::{assemble, contents};
use crate::base::Bases;
use crate::plan::Plan;

/// What an archive will take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaPlan {
    pub volume_size: u64,
    pub volumes: Vec<PlannedVolume>,
    /// Parity volumes (`--parity`), each as large as the largest data volume.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parity_volumes: Vec<PlannedVolume>,
    /// `ferry-index.json` and `ferry-index.json.sig`.
    pub index_bytes: u64,
    pub signature_bytes: u64,
    /// Volumes, index and signature.
    pub total_bytes: u64,
    /// With a medium size: the media in order, each with the index and signature and the
    /// volumes that fit after the previous medium's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<Vec<Medium>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedVolume {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Medium {
    pub volumes: Vec<String>,
    pub bytes: u64,
}

/// How the archive is to be laid out on media.
#[derive(Debug, Clone, Copy)]
pub struct MediaSettings {
    pub volume_size: u64,
    pub parity: write::Parity,
    /// The size of one medium, to plan which volumes go on each.
    pub media_size: Option<u64>,
}

/// The plan of the archive `plan` makes with these settings, and its media.
pub fn media_plan(
    plan: &Plan,
    bases: &Bases,
    stream: &str,
    media: MediaSettings,
) -> Result<MediaPlan> {
    let MediaSettings {
        volume_size,
        parity,
        media_size,
    } = media;
    let refs = contents::layout_refs(plan);
    let written = write::plan(&contents::objects(plan, bases), &refs, volume_size, parity)?;
    let planned = |v: &ferry_format::index::Volume| PlannedVolume {
        name: v.name.clone(),
        size: v.size,
    };
    let volumes: Vec<PlannedVolume> = written.volumes.iter().map(planned).collect();
    let parity_volumes: Vec<PlannedVolume> = written
        .parity
        .iter()
        .flat_map(|p| p.volumes.iter().map(planned))
        .collect();
    let settings = assemble::Settings {
        volume_size,
        stream,
        bases,
    };
    let expected = contents::expected(plan, bases);
    let index = assemble::index(
        plan.records(),
        written,
        expected,
        &HashMap::new(),
        &settings,
    )?;
    let index_bytes = index.to_vec().len() as u64;
    let signature_bytes = ferry_format::sign::signature_len() as u64;
    let all: Vec<PlannedVolume> = volumes.iter().chain(&parity_volumes).cloned().collect();
    let total_bytes = all.iter().map(|v| v.size).sum::<u64>() + index_bytes + signature_bytes;
    let media = media_size
        .map(|m| fill_media(&all, index_bytes + signature_bytes, m))
        .transpose()?;
    Ok(MediaPlan {
        volume_size,
        volumes,
        parity_volumes,
        index_bytes,
        signature_bytes,
        total_bytes,
        media,
    })
}

/// Volumes in order onto media of `size` bytes, each medium also holding the index and its
/// signature (`extra`), so that each can be checked on its own.
fn fill_media(volumes: &[PlannedVolume], extra: u64, size: u64) -> Result<Vec<Medium>> {
    let mut media: Vec<Medium> = Vec::new();
    for v in volumes {
        if v.size + extra > size {
            anyhow::bail!(
                "volume {} ({} bytes) and the index do not fit a medium of {size} bytes; use a smaller --volume-size",
                v.name,
                v.size
            );
        }
        match media.last_mut() {
            Some(m) if m.bytes + v.size <= size => {
                m.volumes.push(v.name.clone());
                m.bytes += v.size;
            }
            _ => media.push(Medium {
                volumes: vec![v.name.clone()],
                bytes: extra + v.size,
            }),
        }
    }
    Ok(media)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_fill_media_in_order_with_the_index_on_each() {
        let v = |n: usize, size: u64| PlannedVolume {
            name: format!("v{n}"),
            size,
        };
        let vols = [v(1, 40), v(2, 40), v(3, 30), v(4, 90)];
        let media = fill_media(&vols, 10, 100).unwrap();
        let names: Vec<Vec<&str>> = media
            .iter()
            .map(|m| m.volumes.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(names, vec![vec!["v1", "v2"], vec!["v3"], vec!["v4"]]);
        assert_eq!(media[0].bytes, 90);
        assert!(fill_media(&[v(1, 95)], 10, 100).is_err());
        assert!(ferry_format::sign::signature_len() > 200);
    }
}
