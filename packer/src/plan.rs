//! Planning: resolve every image the config names to its manifests and blobs, fetching only
//! manifests (small), and deduplicate blobs across images and repositories.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use ferry_format::index::{
    retain_attached, Attachment, Catalog as CatalogRecord, Closure, Failure, Image, Release,
    SigstoreKey,
};
use ferry_format::manifest::{Manifest, Platform};
use ferry_format::Digest;
use ferry_registry::{Client, Reference, Repo};
use rayon::prelude::*;

use crate::config::{ImageSetConfig, PlatformSelector};

/// Why an image is carried (recorded in the index).
pub const REASON_ADDITIONAL: &str = "additionalImages";

/// An image to resolve.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub source: String,
    pub reference: Reference,
    pub reason: String,
    /// Platforms to keep of an index (`arch` or `os/arch[/variant]`); empty keeps all.
    pub platforms: Vec<String>,
    /// Where it lands at the target, when the config says (`targetRepo`, `targetTag`).
    pub target: AtTarget,
}

/// An image's place at the target, when not its source repository and tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AtTarget {
    pub repository: Option<String>,
    pub tag: Option<String>,
}

/// A manifest to store.
#[derive(Debug, Clone)]
pub struct PlannedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub children: Vec<Digest>,
    pub blobs: Vec<Digest>,
}

/// A blob to fetch, and a repository to fetch it from (shared by the blobs of an image: at
/// catalog scale, a copy per blob would be tens of MiB).
#[derive(Debug, Clone)]
pub struct PlannedBlob {
    pub size: u64,
    pub from: Arc<Repo>,
}

/// Everything pack will store, deduplicated.
#[derive(Debug, Default)]
pub struct Plan {
    pub images: Vec<Image>,
    pub manifests: BTreeMap<Digest, PlannedManifest>,
    pub blobs: BTreeMap<Digest, PlannedBlob>,
    /// Things left out on purpose (blocked images, foreign layers), for the summary.
    pub notes: Vec<String>,
    /// Images that could not be resolved (with `--continue-on-error`).
    pub failures: Vec<Failure>,
    /// OpenShift releases (their images are in `images`).
    pub releases: Vec<Release>,
    /// Operator catalogs (their rebuilt images are in `images`).
    pub catalogs: Vec<CatalogRecord>,
    /// The graph-data image (in `images`), with `platform.graph: true`.
    pub graph_data: Option<ferry_format::index::GraphData>,
    /// Small objects made or fetched outside a registry (release signatures), stored as blobs
    /// and always carried, even by a delta.
    pub inline: BTreeMap<Digest, Vec<u8>>,
    /// Signatures and other artifacts attached to the images (their manifests are images too).
    pub attachments: Vec<Attachment>,
    /// The sigstore keys given to check signatures.
    pub sigstore_keys: Vec<SigstoreKey>,
    /// Helm charts (their artifacts and the images they name are in `images`).
    pub charts: Vec<ferry_format::index::HelmChart>,
    /// The samples operator's image streams (`--samples`), as planned: a stream whose images
    /// are not all packed in the end is recorded as not mirrored.
    pub samples: Option<ferry_format::index::Samples>,
}

impl Plan {
    /// Adds images ferry-pack made (a graph-data image, rebuilt catalogs): their manifests,
    /// their new objects, and the source blobs they reuse.
    pub fn add_made(
        &mut self,
        images: impl IntoIterator<Item = Image>,
        manifests: impl IntoIterator<Item = (Digest, PlannedManifest)>,
        blobs: impl IntoIterator<Item = (Digest, PlannedBlob)>,
        inline: impl IntoIterator<Item = (Digest, Vec<u8>)>,
    ) {
        self.images.extend(images);
        self.images.sort_by(|a, b| a.source.cmp(&b.source));
        self.manifests.extend(manifests);
        for (d, b) in blobs {
            self.blobs.entry(d).or_insert(b);
        }
        self.inline.extend(inline);
    }

    /// Whether ferry-pack made this image (a rebuilt catalog, the graph-data image, a Helm
    /// chart artifact): it has no source registry to find signatures in.
    pub fn is_made(&self, id: ferry_format::index::ImageId) -> bool {
        self.catalogs.iter().any(|c| c.image_id() == id)
            || self.graph_data.as_ref().is_some_and(|g| g.image_id() == id)
            || self.charts.iter().any(|c| c.image_id() == id)
    }

    /// A copy of what the index records of this plan: everything but the bytes in memory and
    /// where the blobs come from. Builds an index without spending the plan (`--dry-run`).
    pub fn records(&self) -> Plan {
        Plan {
            images: self.images.clone(),
            manifests: self
                .manifests
                .iter()
                .map(|(d, m)| {
                    let record = PlannedManifest {
                        bytes: Vec::new(),
                        media_type: m.media_type.clone(),
                        children: m.children.clone(),
                        blobs: m.blobs.clone(),
                    };
                    (d.clone(), record)
                })
                .collect(),
            blobs: BTreeMap::new(),
            notes: self.notes.clone(),
            failures: self.failures.clone(),
            releases: self.releases.clone(),
            catalogs: self.catalogs.clone(),
            graph_data: self.graph_data.clone(),
            inline: BTreeMap::new(),
            attachments: self.attachments.clone(),
            sigstore_keys: self.sigstore_keys.clone(),
            charts: self.charts.clone(),
            samples: self.samples.clone(),
        }
    }

    pub fn blob_bytes(&self) -> u64 {
        self.blobs.values().map(|b| b.size).sum()
    }

    /// Keeps the images `keep` says yes to, and the attachments whose subject one of them still
    /// brings; drops the manifests and blobs that only the others needed.
    pub fn retain_images(&mut self, keep: impl Fn(&Image) -> bool) {
        self.images.retain(|i| keep(i));
        let attachments = &self.attachments;
        let subjects = self.closure(|i| !attachments.iter().any(|a| a.image_id() == i.id()));
        retain_attached(&mut self.images, &mut self.attachments, |d| {
            subjects.contains(d)
        });
        let closure = self.closure(|_| true);
        self.manifests.retain(|d, _| closure.contains(d));
        self.blobs
            .retain(|d, _| closure.contains(d) || self.inline.contains_key(d));
    }

    /// Everything the images `which` picks need.
    fn closure(&self, which: impl Fn(&Image) -> bool) -> Closure {
        let mut closure = Closure::default();
        for img in self.images.iter().filter(|i| which(i)) {
            closure.add_with(&img.digest, |d| {
                let m = self.manifests.get(d)?;
                Some((m.children.as_slice(), m.blobs.as_slice()))
            });
        }
        closure
    }
}

/// Lists the images a config asks for, minus blocked ones. `arch` (from `--arch`) applies to
/// every image without its own `platforms`.
pub fn wanted_images(
    config: &ImageSetConfig,
    arch: &[String],
) -> Result<(Vec<Wanted>, Vec<String>)> {
    let blocked = blocked_patterns(config)?;
    let mut out: Vec<Wanted> = Vec::new();
    let mut unique: std::collections::HashSet<(String, Vec<String>)> = Default::default();
    let mut notes = Vec::new();
    for img in &config.mirror.additional_images {
        let reference: Reference = img.name.parse().context("in mirror.additionalImages")?;
        let full = reference.to_string();
        if let Some(b) = blocked.iter().find(|b| b.is_match(&full)) {
            notes.push(format!("{full}: blocked by blockedImages {:?}", b.as_str()));
            continue;
        }
        let platforms = platforms_or(&img.platforms, arch);
        if !unique.insert((full, platforms.clone())) {
            continue;
        }
        out.push(Wanted {
            source: img.name.clone(),
            reference,
            reason: REASON_ADDITIONAL.into(),
            platforms,
            target: at_target(img)?,
        });
    }
    Ok((out, notes))
}

/// `mirror.blockedImages`, compiled.
pub fn blocked_patterns(config: &ImageSetConfig) -> Result<Vec<regex::Regex>> {
    config
        .mirror
        .blocked_images
        .iter()
        .map(|b| {
            regex::Regex::new(&b.name).with_context(|| {
                format!(
                    "blockedImages entry {:?} is not a valid regular expression",
                    b.name
                )
            })
        })
        .collect()
}

/// Whether a blockedImages pattern matches `registry/repository[:tag]`.
pub fn is_blocked(blocked: &[regex::Regex], reference: &Reference) -> bool {
    let full = reference.to_string();
    blocked.iter().any(|b| b.is_match(&full))
}

/// The config's `targetRepo` and `targetTag`, checked.
fn at_target(img: &crate::config::AdditionalImage) -> Result<AtTarget> {
    let repository = img
        .target_repo
        .as_deref()
        .map(|r| r.trim_matches('/').to_string());
    if let Some(r) = &repository {
        if !ferry_format::index::is_repository_path(r) {
            bail!(
                "mirror.additionalImages {}: targetRepo {r:?} is not a repository path (lowercase components of a-z, 0-9, '.', '_', '-', separated by '/')",
                img.name
            );
        }
    }
    if let Some(t) = &img.target_tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            && !t.starts_with(['.', '-']);
        if !ok {
            bail!(
                "mirror.additionalImages {}: targetTag {t:?} is not a valid tag",
                img.name
            );
        }
    }
    Ok(AtTarget {
        repository,
        tag: img.target_tag.clone(),
    })
}

/// The platforms a config entry keeps: its own `platforms`, else `--arch` (empty keeps all).
pub fn platforms_or(own: &[PlatformSelector], arch: &[String]) -> Vec<String> {
    if own.is_empty() {
        return arch.to_vec();
    }
    own.iter().map(selector_label).collect()
}

pub fn selector_label(p: &PlatformSelector) -> String {
    let mut s = format!("{}/{}", p.os.as_deref().unwrap_or("linux"), p.architecture);
    if let Some(v) = &p.variant {
        s.push('/');
        s.push_str(v);
    }
    s
}

/// Whether a platform is selected: by architecture alone (`arm64`) or `os/arch[/variant]`.
pub fn platform_selected(wanted: &[String], p: &Platform) -> bool {
    wanted.is_empty()
        || wanted.iter().any(|w| {
            let parts: Vec<&str> = w.split('/').collect();
            match parts.as_slice() {
                [arch] => *arch == p.architecture,
                [os, arch] => *os == p.os && *arch == p.architecture,
                [os, arch, variant] => {
                    *os == p.os && *arch == p.architecture && p.variant.as_deref() == Some(*variant)
                }
                _ => false,
            }
        })
}

struct Resolved {
    image: Image,
    manifests: Vec<(Digest, PlannedManifest)>,
    blobs: Vec<(Digest, PlannedBlob)>,
    notes: Vec<String>,
}

/// Resolves every wanted image (in parallel) and merges the results. All failures are reported
/// together, each naming its image; with `keep_going` they are returned in the plan instead.
pub fn resolve_all(client: &Client, wanted: &[Wanted], keep_going: bool) -> Result<Plan> {
    let results: Vec<(usize, Result<Resolved>)> = wanted
        .par_iter()
        .enumerate()
        .map(|(i, w)| (i, resolve(client, w)))
        .collect();
    let mut plan = Plan::default();
    let mut seen = HashMap::new();
    let mut errors = Vec::new();
    for (i, r) in results {
        match r {
            Ok(res) => {
                merge_image(&mut plan.images, &mut seen, res.image);
                plan.manifests.extend(res.manifests);
                for (d, b) in res.blobs {
                    plan.blobs.entry(d).or_insert(b);
                }
                plan.notes.extend(res.notes);
            }
            Err(e) => {
                plan.failures.push(Failure {
                    kind: ferry_format::index::FailureKind::Image,
                    subject: wanted[i].source.clone(),
                    reason: format!("{e:#}"),
                    images: vec![],
                });
                errors.push(format!("{}: {e:#}", wanted[i].source));
            }
        }
    }
    if !errors.is_empty() && !keep_going {
        bail!(
            "{} of {} images could not be resolved:\n  {}",
            errors.len(),
            wanted.len(),
            errors.join("\n  ")
        );
    }
    plan.images.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(plan)
}

/// Two references to the same repository and manifest become one image with both tags.
fn merge_image(
    images: &mut Vec<Image>,
    seen: &mut HashMap<(String, String, Digest, Option<String>), usize>,
    image: Image,
) {
    let key = (
        image.registry.clone(),
        image.repository.clone(),
        image.digest.clone(),
        image.target_repository.clone(),
    );
    if let Some(&i) = seen.get(&key) {
        let existing = &mut images[i];
        for t in image.tags {
            if !existing.tags.contains(&t) {
                existing.tags.push(t);
            }
        }
        return;
    }
    seen.insert(key, images.len());
    images.push(image);
}

fn resolve(client: &Client, w: &Wanted) -> Result<Resolved> {
    let r = &w.reference;
    let repo = Arc::new(Repo::new(r.registry.clone(), r.repository.clone()));
    let top = client.get_manifest(&repo, &r.manifest_reference())?;
    let mut res = Resolved {
        image: Image {
            source: w.source.clone(),
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            tags: w
                .target
                .tag
                .iter()
                .chain(r.tag.iter())
                .take(1)
                .cloned()
                .collect(),
            digest: top.digest.clone(),
            media_type: String::new(),
            reason: w.reason.clone(),
            platforms: Vec::new(),
            target_repository: w.target.repository.clone(),
        },
        manifests: Vec::new(),
        blobs: Vec::new(),
        notes: Vec::new(),
    };
    let media_type = walk(
        client,
        &repo,
        w,
        top.bytes,
        &top.media_type,
        &top.digest,
        0,
        &mut res,
    )?;
    res.image.media_type = media_type;
    Ok(res)
}

/// Records a manifest and everything below it. Returns its media type.
#[allow(clippy::too_many_arguments)]
fn walk(
    client: &Client,
    repo: &Arc<Repo>,
    w: &Wanted,
    bytes: Vec<u8>,
    announced: &str,
    digest: &Digest,
    depth: usize,
    res: &mut Resolved,
) -> Result<String> {
    if depth > 3 {
        bail!("indexes nested deeper than 3 levels at {digest}");
    }
    let (manifest, media_type) =
        Manifest::parse(&bytes, announced).with_context(|| format!("manifest {digest}"))?;
    let mut planned = PlannedManifest {
        bytes,
        media_type: media_type.clone(),
        children: Vec::new(),
        blobs: Vec::new(),
    };
    match manifest {
        Manifest::Index { manifests } => {
            let mut kept = 0;
            let available: Vec<String> = manifests
                .iter()
                .filter_map(|c| c.platform.as_ref().map(Platform::label))
                .collect();
            for child in manifests {
                let selected = match &child.platform {
                    Some(p) => platform_selected(&w.platforms, p),
                    // Entries without a platform (attestations, artifacts) follow the filter:
                    // kept when no filter is set.
                    None => w.platforms.is_empty(),
                };
                if !selected {
                    continue;
                }
                let fetched = client
                    .get_manifest(repo, &child.digest.to_string())
                    .with_context(|| {
                        format!("child manifest {} of index {digest}", child.digest)
                    })?;
                if fetched.bytes.len() as u64 != child.size {
                    bail!(
                        "child manifest {} is {} bytes, but index {digest} says {}",
                        child.digest,
                        fetched.bytes.len(),
                        child.size
                    );
                }
                walk(
                    client,
                    repo,
                    w,
                    fetched.bytes,
                    &child.media_type,
                    &child.digest,
                    depth + 1,
                    res,
                )?;
                if let Some(p) = &child.platform {
                    if depth == 0 {
                        res.image.platforms.push(p.label());
                    }
                }
                planned.children.push(child.digest);
                kept += 1;
            }
            if kept == 0 {
                return Err(anyhow!(
                    "no platform of index {digest} matches {}; it has {}",
                    w.platforms.join(", "),
                    available.join(", ")
                ));
            }
        }
        Manifest::Image { config, layers } => {
            for d in std::iter::once(config).chain(layers) {
                let foreign = d.urls.as_ref().is_some_and(|u| !u.is_empty())
                    && (d.media_type.contains("foreign")
                        || d.media_type.contains("nondistributable"));
                if foreign {
                    res.notes.push(format!(
                        "{}: foreign layer {} left out (the registry does not hold it)",
                        w.source, d.digest
                    ));
                    continue;
                }
                planned.blobs.push(d.digest.clone());
                res.blobs.push((
                    d.digest,
                    PlannedBlob {
                        size: d.size,
                        from: repo.clone(),
                    },
                ));
            }
        }
    }
    // Held until the index is written: at catalog scale, a list's spare capacity adds up.
    planned.blobs.shrink_to_fit();
    planned.children.shrink_to_fit();
    res.manifests.push((digest.clone(), planned));
    Ok(media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_selection() {
        let p = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        };
        assert!(platform_selected(&[], &p));
        assert!(platform_selected(&["arm64".into()], &p));
        assert!(platform_selected(&["linux/arm64".into()], &p));
        assert!(platform_selected(&["linux/arm64/v8".into()], &p));
        assert!(!platform_selected(&["amd64".into()], &p));
        assert!(!platform_selected(&["linux/arm64/v7".into()], &p));
    }

    #[test]
    fn blocked_images_are_left_out() {
        let c = ImageSetConfig::parse(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: quay.io/a/keep:1\n    - name: quay.io/a/keep:1\n    - name: docker.io/library/alpine:3\n  blockedImages:\n    - name: alpine\n",
        )
        .unwrap();
        let (w, notes) = wanted_images(&c, &[]).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].reference.repository, "a/keep");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("alpine"));
    }
}
