//! Operator catalogs: reading a file-based catalog out of an index image, filtering it by a
//! `mirror.operators[]` entry, and rebuilding the index image around the filtered catalog.
//!
//! - [`fbc`]: file-based catalog documents (JSON streams, YAML multi-documents);
//! - [`filter`]: the selection rules and the rewrite that keeps the catalog valid;
//! - [`image`]: reading the configs directory from the layers, and the rebuilt image.
//!
//! [`plan_catalogs`] runs them for every `mirror.operators[]` entry and returns what the
//! archive must carry: the rebuilt catalog image (new manifests and blobs, plus the source's
//! layers) and, for the ordinary image planner, every kept bundle image and related image.

pub mod fbc;
pub mod filter;
pub mod image;

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use ferry_format::index::{
    Catalog as CatalogRecord, CatalogBundle, CatalogChannel, CatalogPackage, Failure, Image,
};
use ferry_format::Digest;
use ferry_registry::{Client, Reference};

use crate::config::Operator;
use crate::plan::{PlannedBlob, PlannedManifest, Wanted};

/// What the catalogs add to a plan.
#[derive(Debug, Default)]
pub struct Planned {
    /// Bundle and related images.
    pub wanted: Vec<Wanted>,
    /// The rebuilt catalog images.
    pub images: Vec<Image>,
    pub catalogs: Vec<CatalogRecord>,
    pub manifests: Vec<(Digest, PlannedManifest)>,
    pub blobs: Vec<(Digest, PlannedBlob)>,
    pub inline: Vec<(Digest, Vec<u8>)>,
    pub notes: Vec<String>,
    pub failures: Vec<Failure>,
}

/// Plans every operator catalog. `arch` selects platforms (of catalogs and of the images they
/// name); empty keeps all.
pub fn plan_catalogs(
    client: &Client,
    operators: &[Operator],
    arch: &[String],
    keep_going: bool,
    quiet: bool,
) -> Result<Planned> {
    let mut out = Planned::default();
    let mut seen = BTreeSet::new();
    let mut errors = Vec::new();
    for op in operators {
        match plan_one(client, op, arch, quiet) {
            Ok(one) => {
                for w in one.wanted {
                    if seen.insert(w.source.clone()) {
                        out.wanted.push(w);
                    }
                }
                out.images.extend(one.images);
                out.catalogs.extend(one.catalogs);
                out.manifests.extend(one.manifests);
                out.blobs.extend(one.blobs);
                out.inline.extend(one.inline);
                out.notes.extend(one.notes);
            }
            Err(e) => {
                errors.push(format!("catalog {}: {e:#}", op.catalog));
                out.failures.push(Failure {
                    kind: ferry_format::index::FailureKind::Catalog,
                    subject: op.catalog.clone(),
                    reason: format!("{e:#}"),
                    images: vec![],
                });
            }
        }
    }
    if !errors.is_empty() && !keep_going {
        bail!(
            "{} catalog(s) cannot be packed:\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    Ok(out)
}

/// Where the rebuilt catalog goes: `targetCatalog` (checked), else the source repository.
fn target_repository(op: &Operator, reference: &image::CatalogRef) -> Result<String> {
    let Some(t) = &op.target_catalog else {
        return Ok(reference.repository.clone());
    };
    let t = t.trim_matches('/');
    let bad = t.is_empty()
        || t.split('/')
            .any(|c| c.is_empty() || c != c.to_lowercase() || c == "..");
    if bad {
        bail!("targetCatalog {t:?} must be a lowercase repository path like my-ns/my-catalog");
    }
    Ok(t.to_string())
}

/// The images the kept bundles name (their own and related images), each once.
fn bundle_images(
    op: &Operator,
    filtered: &filter::Filtered,
    arch: &[String],
    quiet: bool,
) -> Result<Vec<Wanted>> {
    let mut wanted = Vec::new();
    let mut bundles = 0usize;
    let mut images = BTreeSet::new();
    for d in filtered
        .catalog
        .docs
        .iter()
        .filter(|d| d.schema() == fbc::SCHEMA_BUNDLE)
    {
        bundles += 1;
        for img in fbc::bundle_images(d) {
            if images.insert(img.clone()) {
                let r: Reference = img
                    .parse()
                    .with_context(|| format!("bundle {} names image {img:?}", d.name()))?;
                wanted.push(Wanted {
                    source: img,
                    reference: r,
                    reason: format!("catalog {} bundle {}", op.catalog, d.name()),
                    platforms: arch.to_vec(),
                    target: Default::default(),
                });
            }
        }
    }
    if !quiet {
        eprintln!(
            "catalog {}: {} package(s), {} bundle(s), {} image(s) kept",
            op.catalog,
            filtered.packages.len(),
            bundles,
            images.len()
        );
    }
    Ok(wanted)
}

fn plan_one(client: &Client, op: &Operator, arch: &[String], quiet: bool) -> Result<Planned> {
    // The catalog's own `platforms` win over --arch, for the catalog and its bundles' images.
    let arch = &crate::plan::platforms_or(&op.platforms, arch);
    let reference =
        image::CatalogRef::parse(&op.catalog).context("in mirror.operators[].catalog")?;
    let source = image::open(client, &reference, arch)?;
    let work = tempfile::Builder::new()
        .prefix("ferry-catalog-")
        .tempdir()?;
    image::extract_configs(client, &source, work.path())?;
    let catalog = fbc::Catalog::read_dir(work.path())
        .with_context(|| format!("reading the file-based catalog in /{}", source.configs_dir))?;
    let filtered = filter::filter(&catalog, op)?;
    drop(catalog);
    let problems = filter::problems(&filtered.catalog);
    if !problems.is_empty() {
        bail!(
            "the filtered catalog would not be valid: {}",
            problems.join("; ")
        );
    }
    let files = filtered.catalog.to_files(work.path())?;
    drop(work);
    let rebuilt = image::rebuild(&source, &files)?;
    let digest = rebuilt.digest.clone().expect("rebuilt image has a digest");

    let repository = target_repository(op, &reference)?;
    let tag = op.target_tag.clone().or_else(|| reference.tag.clone());
    let mut out = Planned {
        wanted: bundle_images(op, &filtered, arch, quiet)?,
        ..Planned::default()
    };
    out.images.push(Image {
        source: op.catalog.clone(),
        registry: reference.registry.clone(),
        repository: repository.clone(),
        tags: tag.iter().cloned().collect(),
        digest: digest.clone(),
        media_type: rebuilt.media_type.clone(),
        reason: "catalog (rebuilt with the filtered file-based catalog)".into(),
        platforms: rebuilt.platforms.clone(),
        target_repository: None,
    });
    out.catalogs.push(CatalogRecord {
        source: op.catalog.clone(),
        source_digest: source.digest.clone(),
        registry: reference.registry.clone(),
        repository,
        tag,
        digest,
        configs_dir: format!("/{}", source.configs_dir),
        packages: packages_of(&filtered),
    });
    out.manifests = rebuilt.manifests;
    out.blobs = rebuilt.blobs;
    out.inline = rebuilt.inline;
    Ok(out)
}

/// The index's record of the kept packages: channels with their bundles in entry order, and
/// each bundle with its version and the images it names.
fn packages_of(filtered: &filter::Filtered) -> Vec<CatalogPackage> {
    let bundle_docs: Vec<&fbc::Doc> = filtered
        .catalog
        .docs
        .iter()
        .filter(|d| d.schema() == fbc::SCHEMA_BUNDLE)
        .collect();
    filtered
        .packages
        .iter()
        .map(|p| {
            let mut bundles: Vec<CatalogBundle> = bundle_docs
                .iter()
                .filter(|d| d.package() == p.name)
                .map(|d| CatalogBundle {
                    name: d.name().to_string(),
                    version: fbc::bundle_version(d).map(|v| v.to_string()),
                    images: fbc::bundle_images(d),
                })
                .collect();
            bundles.sort_by(|a, b| a.name.cmp(&b.name));
            CatalogPackage {
                name: p.name.clone(),
                default_channel: p.default_channel.clone(),
                channels: p
                    .channels
                    .iter()
                    .map(|(n, b)| CatalogChannel {
                        name: n.clone(),
                        bundles: b.clone(),
                    })
                    .collect(),
                bundles,
            }
        })
        .collect()
}
