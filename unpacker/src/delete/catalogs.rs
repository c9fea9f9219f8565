//! Which recorded catalogs, bundles and bundle images a delete config's `operators:` section
//! retires. A catalog named without `packages` is retired whole (its rebuilt image and every
//! bundle); with `packages`, the bundles of those packages (all, those of some channels, or a
//! version range) are retired and the catalog image stays. Each bundle claims the images it
//! names (from the index's 1.5 bundle records), so an image another kept bundle, catalog or
//! release needs is kept.

use std::collections::HashSet;

use anyhow::{bail, Result};
use ferry_format::index::{Catalog, CatalogBundle, CatalogPackage, Index};

use super::config::Operator;
use super::version::version;

/// The sources of the images the archive's catalogs claim: their rebuilt images and every
/// image their bundle records name.
pub fn claimed_images(index: &Index) -> HashSet<&str> {
    let mut out = HashSet::new();
    for c in &index.catalogs {
        out.insert(c.source.as_str());
        for b in c.packages.iter().flat_map(|p| &p.bundles) {
            out.extend(b.images.iter().map(String::as_str));
        }
    }
    out
}

/// A claim: the image (by source), whether the config retires it, and why.
pub type Claim = (String, bool, String);

/// What the catalogs of the recorded archives claim, and what to tell the user.
#[derive(Debug, Default)]
pub struct CatalogClaims {
    pub claims: Vec<Claim>,
    /// Packages named that the recorded catalog lacks.
    pub not_found: Vec<String>,
    /// Catalogs retired in part (they stay and list the retired bundles).
    pub notes: Vec<String>,
}

/// The claims of the archive's catalogs. `matched[i]` is set when `ops[i]` names one.
pub fn claims(
    ops: &[Operator],
    index: &Index,
    archive_id: &str,
    matched: &mut [bool],
) -> Result<CatalogClaims> {
    let mut out = CatalogClaims::default();
    for c in &index.catalogs {
        let hit = ops.iter().position(|op| names(op, c));
        let op = hit.map(|i| &ops[i]);
        if let Some(i) = hit {
            matched[i] = true;
            check_recorded(c, archive_id)?;
            partial_notes(&ops[i], c, &mut out.not_found, &mut out.notes);
        }
        let whole = op.is_some_and(|op| op.packages.is_empty());
        out.claims
            .push((c.source.clone(), whole, format!("catalog {}", c.source)));
        for p in &c.packages {
            for b in &p.bundles {
                let retire = op.is_some_and(|op| bundle_retired(op, p, b));
                let why = format!("catalog {} bundle {}", c.source, b.name);
                out.claims
                    .extend(b.images.iter().map(|i| (i.clone(), retire, why.clone())));
            }
        }
    }
    Ok(out)
}

/// Whether the entry names the recorded catalog: the same reference, and where the mirror
/// config renamed it, the same target repository and tag.
fn names(op: &Operator, c: &Catalog) -> bool {
    op.catalog == c.source
        && op
            .target_catalog
            .as_deref()
            .is_none_or(|t| t.trim_matches('/') == c.repository)
        && op
            .target_tag
            .as_deref()
            .is_none_or(|t| c.tag.as_deref() == Some(t))
}

/// A catalog recorded before format 1.5 has no bundle records: ferry cannot tell which images
/// are its bundles', so it retires none of them rather than guess.
fn check_recorded(c: &Catalog, archive_id: &str) -> Result<()> {
    let has_bundles = c.packages.iter().any(|p| !p.bundles.is_empty());
    if !c.packages.is_empty() && !has_bundles {
        bail!(
            "catalog {} came in archive {archive_id}, whose index predates format 1.5: it does \
             not record which images each bundle names, so ferry cannot tell what retiring them \
             frees. Push that catalog again with this ferry, then delete",
            c.source
        );
    }
    Ok(())
}

/// Packages named that the recorded catalog lacks, and what stays of a catalog retired in part.
fn partial_notes(op: &Operator, c: &Catalog, not_found: &mut Vec<String>, notes: &mut Vec<String>) {
    if op.packages.is_empty() {
        return;
    }
    for p in &op.packages {
        if !c.packages.iter().any(|r| r.name == p.name) {
            not_found.push(format!(
                "operators {} package {}: the catalog the site received does not have it",
                op.catalog, p.name
            ));
        }
    }
    notes.push(format!(
        "catalog {} stays at the site and still lists the retired bundles: installing them \
         fails until an archive brings a catalog without them (pack one without those \
         packages and push it)",
        c.source
    ));
}

/// Whether the entry retires this bundle of this package.
fn bundle_retired(op: &Operator, p: &CatalogPackage, b: &CatalogBundle) -> bool {
    if op.packages.is_empty() {
        return true;
    }
    let Some(spec) = op.packages.iter().find(|s| s.name == p.name) else {
        return false;
    };
    let v = b.version.as_deref().map(version);
    let in_range = |min: &Option<String>, max: &Option<String>| match &v {
        None => min.is_none() && max.is_none(),
        Some(v) => {
            min.as_deref().is_none_or(|m| *v >= version(m))
                && max.as_deref().is_none_or(|m| *v <= version(m))
        }
    };
    if !in_range(&spec.min_version, &spec.max_version) {
        return false;
    }
    spec.channels.is_empty()
        || spec.channels.iter().any(|c| {
            let listed = p
                .channels
                .iter()
                .any(|pc| pc.name == c.name && pc.bundles.contains(&b.name));
            listed && in_range(&c.min_version, &c.max_version)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delete::config::DeleteConfig;
    use ferry_format::index::CatalogChannel;

    fn package() -> CatalogPackage {
        let bundle = |n: &str, v: &str| CatalogBundle {
            name: n.into(),
            version: Some(v.into()),
            images: vec![format!("q.io/foo/{n}:1")],
        };
        CatalogPackage {
            name: "foo".into(),
            default_channel: "stable".into(),
            channels: vec![
                CatalogChannel {
                    name: "beta".into(),
                    bundles: vec!["foo.v0.3.0".into()],
                },
                CatalogChannel {
                    name: "stable".into(),
                    bundles: vec!["foo.v0.1.0".into(), "foo.v0.2.0".into()],
                },
            ],
            bundles: vec![
                bundle("foo.v0.1.0", "0.1.0"),
                bundle("foo.v0.2.0", "0.2.0"),
                bundle("foo.v0.3.0", "0.3.0"),
            ],
        }
    }

    fn retired(section: &str) -> Vec<String> {
        let c = DeleteConfig::parse(&format!(
            "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  operators:\n  - catalog: q.io/cat:v1\n{section}"
        ))
        .unwrap();
        let p = package();
        p.bundles
            .iter()
            .filter(|b| bundle_retired(&c.delete.operators[0], &p, b))
            .map(|b| b.name.clone())
            .collect()
    }

    #[test]
    fn bundles_are_retired_by_package_channel_and_range() {
        assert_eq!(retired("").len(), 3, "a catalog alone retires everything");
        assert_eq!(retired("    packages:\n    - name: foo\n").len(), 3);
        assert!(retired("    packages:\n    - name: bar\n").is_empty());
        assert_eq!(
            retired("    packages:\n    - name: foo\n      channels:\n      - name: beta\n"),
            ["foo.v0.3.0"]
        );
        assert_eq!(
            retired("    packages:\n    - name: foo\n      maxVersion: 0.2.0\n"),
            ["foo.v0.1.0", "foo.v0.2.0"]
        );
        assert_eq!(
            retired("    packages:\n    - name: foo\n      channels:\n      - name: stable\n        minVersion: 0.2.0\n"),
            ["foo.v0.2.0"]
        );
    }

    #[test]
    fn a_catalog_recorded_before_bundle_records_is_refused() {
        let mut p = package();
        p.bundles.clear();
        let c = Catalog {
            source: "q.io/cat:v1".into(),
            source_digest: ferry_format::Digest::of(b"s"),
            registry: "q.io".into(),
            repository: "cat".into(),
            tag: Some("v1".into()),
            digest: ferry_format::Digest::of(b"c"),
            configs_dir: "/configs".into(),
            packages: vec![p],
        };
        let e = check_recorded(&c, "abc").unwrap_err();
        assert!(e.to_string().contains("predates format 1.5"), "{e}");
        let mut c = c;
        c.packages = vec![package()];
        assert!(check_recorded(&c, "abc").is_ok());
    }
}
