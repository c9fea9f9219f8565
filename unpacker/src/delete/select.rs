//! Which recorded images a delete config retires, and which it keeps, from the signed indexes
//! the target's `ferry-state` holds: every image of every archive received gets claims — by
//! the releases that need it (a release's image and its `componentDigests`), by
//! `additionalImages`, or kept for what it is — and an image is retired only when nothing
//! kept claims it.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use ferry_format::index::{Image, Index, Release};
use ferry_format::Digest;
use ferry_registry::{Client, Reference};

use super::config::{DeleteConfig, Platform};
use super::version::version;
use crate::state;
use crate::target::Target;

/// An archive recorded at the target.
pub struct Recorded {
    pub archive_id: String,
    pub index: Index,
}

/// Reads every archive the target recorded.
pub fn recorded(client: &Client, target: &Target) -> Result<Vec<Recorded>> {
    let mut out = Vec::new();
    for st in state::read_all(client, target)? {
        for rec in &st.records {
            let bytes = state::index_bytes(client, target, rec)?;
            let index = Index::from_slice(&bytes)
                .with_context(|| format!("the recorded index of archive {}", rec.archive_id))?;
            out.push(Recorded {
                archive_id: rec.archive_id.clone(),
                index,
            });
        }
    }
    Ok(out)
}

/// A manifest named by a recorded image, in its repository at the target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Root {
    /// Repository at the target (namespace included).
    pub repository: String,
    pub digest: Digest,
    /// Tags the archive gave it there.
    pub tags: Vec<String>,
}

/// What the config retires and what stays, each with why.
#[derive(Debug, Default)]
pub struct Selection {
    pub retire: BTreeMap<Root, String>,
    pub keep: BTreeMap<Root, String>,
    /// Images the config retires that something kept also needs (in `keep` too), and why.
    pub shared: BTreeMap<Root, String>,
    /// What the config names that the site never received (a note, not an error).
    pub not_found: Vec<String>,
    /// What the user should know about the result (a catalog that still lists retired
    /// bundles).
    pub notes: Vec<String>,
}

/// Each recorded image's claims: (retired by the config, why).
type Claims = BTreeMap<Root, Vec<(bool, String)>>;

/// Records one claim on a recorded image.
fn claim(claims: &mut Claims, target: &Target, img: &Image, retire: bool, why: String) {
    claims
        .entry(root_of(target, img))
        .or_default()
        .push((retire, why));
}

/// Applies the config to the recorded archives.
pub fn select(config: &DeleteConfig, archives: &[Recorded], target: &Target) -> Result<Selection> {
    let mut claims = Claims::new();
    let mut out = Selection::default();
    claim_releases(config, archives, target, &mut claims, &mut out)?;
    claim_catalogs(config, archives, target, &mut claims, &mut out)?;
    claim_images(config, archives, target, &mut claims, &mut out)?;
    for (root, cs) in claims {
        match cs.iter().find(|(retire, _)| !retire) {
            Some((_, why)) => {
                if cs.iter().any(|(retire, _)| *retire) {
                    out.shared
                        .insert(root.clone(), format!("also needed by {why}"));
                }
                out.keep.insert(root, why.clone());
            }
            None => {
                out.retire.insert(root, cs[0].1.clone());
            }
        }
    }
    Ok(out)
}

/// Release images and their components, claimed by each release that needs them.
fn claim_releases(
    config: &DeleteConfig,
    archives: &[Recorded],
    target: &Target,
    claims: &mut Claims,
    out: &mut Selection,
) -> Result<()> {
    let platform = config.delete.platform.as_ref();
    let mut matched_release = false;
    for a in archives {
        for r in &a.index.releases {
            let retire = platform.is_some_and(|p| release_matches(p, r));
            matched_release |= retire;
            if retire && r.component_digests.is_empty() && r.components > 0 {
                bail!(
                    "release {} ({}) came in archive {}, whose index predates format 1.4: it does \
                     not list the release's components, so ferry cannot tell which of them other \
                     releases share. Push that release again with this ferry, then delete",
                    r.version,
                    r.architecture,
                    a.archive_id
                );
            }
            let why = format!("release {} ({})", r.version, r.architecture);
            for d in std::iter::once(&r.digest).chain(&r.component_digests) {
                for img in a.index.images.iter().filter(|i| &i.digest == d) {
                    claim(claims, target, img, retire, why.clone());
                }
            }
        }
    }
    if platform.is_some_and(|p| !p.channels.is_empty() || p.release.is_some()) && !matched_release {
        out.not_found
            .push("platform: no recorded release matches".into());
    }
    Ok(())
}

/// The images not claimed by a release or a catalog: retired when `additionalImages` names
/// them, kept otherwise.
fn claim_images(
    config: &DeleteConfig,
    archives: &[Recorded],
    target: &Target,
    claims: &mut Claims,
    out: &mut Selection,
) -> Result<()> {
    let images: Vec<Reference> = config
        .delete
        .additional_images
        .iter()
        .map(|i| {
            i.name
                .parse()
                .with_context(|| format!("additionalImages {}", i.name))
        })
        .collect::<Result<_>>()?;
    let mut matched_images = vec![false; images.len()];
    for a in archives {
        let by_catalogs = super::catalogs::claimed_images(&a.index);
        for img in &a.index.images {
            if img.reason.starts_with("release ") || by_catalogs.contains(img.source.as_str()) {
                continue; // claimed by its releases or catalogs
            }
            let hit = images.iter().position(|r| image_matches(r, img));
            if let Some(i) = hit {
                matched_images[i] = true;
            }
            let why = match hit {
                Some(_) => format!("additionalImages {}", img.source),
                None => format!("{} ({}), not in the delete set", img.source, img.reason),
            };
            claim(claims, target, img, hit.is_some(), why);
        }
    }
    for (i, r) in images.iter().enumerate() {
        if !matched_images[i] {
            out.not_found
                .push(format!("additionalImages {r}: the site never received it"));
        }
    }
    Ok(())
}

/// Catalog images and bundle images, claimed by each recorded catalog and bundle.
fn claim_catalogs(
    config: &DeleteConfig,
    archives: &[Recorded],
    target: &Target,
    claims: &mut Claims,
    out: &mut Selection,
) -> Result<()> {
    let ops = &config.delete.operators;
    let mut matched = vec![false; ops.len()];
    for a in archives {
        let c = super::catalogs::claims(ops, &a.index, &a.archive_id, &mut matched)?;
        for (source, retire, why) in c.claims {
            // Validated for bundle images; a catalog image recorded under another source
            // gets no claim, so it is never deleted.
            if let Some(img) = a.index.images.iter().find(|i| i.source == source) {
                claim(claims, target, img, retire, why);
            }
        }
        out.not_found.extend(c.not_found);
        for n in c.notes {
            // The same catalog may come in several archives.
            if !out.notes.contains(&n) {
                out.notes.push(n);
            }
        }
    }
    for (op, _) in ops.iter().zip(&matched).filter(|(_, m)| !**m) {
        out.not_found.push(format!(
            "operators {}: the site never received it",
            op.catalog
        ));
    }
    Ok(())
}

fn root_of(target: &Target, img: &Image) -> Root {
    Root {
        repository: target.repo(img.target_repository()).name,
        digest: img.digest.clone(),
        tags: img.tags.clone(),
    }
}

/// A release the platform section names: by pull spec digest, or by channel, version range
/// and architecture (default amd64). A channel without versions names every recorded release
/// of that channel.
fn release_matches(p: &Platform, r: &Release) -> bool {
    if let Some(spec) = &p.release {
        if let Ok(reference) = spec.parse::<Reference>() {
            if reference.digest.as_ref() == Some(&r.digest) {
                return true;
            }
        }
    }
    let arches: Vec<&str> = if p.architectures.is_empty() {
        vec!["amd64"]
    } else {
        p.architectures.iter().map(String::as_str).collect()
    };
    if !arches.contains(&r.architecture.as_str()) {
        return false;
    }
    p.channels.iter().any(|c| {
        let in_channel = r.channels.iter().any(|n| n == &c.name);
        let v = version(&r.version);
        in_channel
            && c.min_version.as_deref().is_none_or(|m| v >= version(m))
            && c.max_version.as_deref().is_none_or(|m| v <= version(m))
    })
}

/// Whether an `additionalImages` entry names this recorded image: the same reference as
/// written, or the same repository and its digest or one of its tags.
fn image_matches(r: &Reference, img: &Image) -> bool {
    if img.source == r.to_string() {
        return true;
    }
    let same_repo = r.registry == img.registry && r.repository == img.repository;
    same_repo
        && (r.digest.as_ref() == Some(&img.digest)
            || (r.digest.is_none() && r.tag.as_ref().is_some_and(|t| img.tags.contains(t))))
}
