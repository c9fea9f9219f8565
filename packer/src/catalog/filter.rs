//! Filtering a catalog by a `mirror.operators[]` entry, keeping it a valid catalog.
//!
//! Selection (docs/catalogs.md has the table with an example per row):
//! - catalog alone: every package, the head of its default channel;
//! - `full: true` alone: every bundle of every channel of every package;
//! - a package alone: the head of its default channel (with `full: true`: all its bundles);
//! - a package with `minVersion`/`maxVersion`: in every channel, the bundles whose version is in
//!   the range (a missing bound is open);
//! - `channels[]`: the head of each listed channel, or with the channel's own
//!   `minVersion`/`maxVersion` (else the package's) the bundles in the range, or with
//!   `full: true` the whole channel;
//! - `bundles[]`: exactly those bundles, in every channel that lists them (not combinable
//!   with `channels` or versions).
//!
//! Versions come from each bundle's `olm.package` property and compare as semantic versions,
//! as oc-mirror v2 does (it does not follow replaces/skips to choose).
//!
//! What is kept stays a valid catalog: each kept channel's entries are rewritten so that an
//! entry that replaced or skipped a removed bundle now replaces (or skips) the kept bundles
//! that were reachable through the removed ones, so every kept channel has exactly one head;
//! `olm.deprecations` entries about removed bundles or channels go; unknown schemas of kept
//! packages stay. The package's default channel must survive, or `defaultChannel` must name a
//! kept one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use anyhow::{bail, Context, Result};
use semver::Version;
use serde_json::Value;

use super::fbc::{
    self, Catalog, Doc, Entry, SCHEMA_BUNDLE, SCHEMA_CHANNEL, SCHEMA_DEPRECATIONS, SCHEMA_PACKAGE,
};
use crate::config::{Operator, Package, PackageChannel};
use crate::release::graph::nearest;

/// What was kept of one package.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptPackage {
    pub name: String,
    pub default_channel: String,
    /// Channel name → kept bundle names (in entry order).
    pub channels: BTreeMap<String, Vec<String>>,
}

/// The filtered catalog and what it keeps.
#[derive(Debug, Clone)]
pub struct Filtered {
    pub catalog: Catalog,
    pub packages: Vec<KeptPackage>,
}

impl Filtered {
    /// Every kept bundle name.
    pub fn bundles(&self) -> BTreeSet<String> {
        self.packages
            .iter()
            .flat_map(|p| p.channels.values().flatten().cloned())
            .collect()
    }
}

type Selection = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn parse_version(what: &str, v: &Option<String>) -> Result<Option<Version>> {
    v.as_deref()
        .map(|s| {
            Version::parse(s.trim())
                .with_context(|| format!("{what} {s:?} is not a semantic version (like 1.2.3)"))
        })
        .transpose()
}

struct Pkg<'a> {
    default_channel: String,
    channels: BTreeMap<String, Vec<Entry>>,
    versions: HashMap<&'a str, Option<Version>>,
}

fn package_view<'a>(groups: &HashMap<&str, fbc::Group<'a>>, name: &str, doc: &Doc) -> Pkg<'a> {
    let empty = fbc::Group::default();
    let g = groups.get(name).unwrap_or(&empty);
    Pkg {
        default_channel: doc.value["defaultChannel"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        channels: g
            .channels
            .iter()
            .map(|c| (c.name().to_string(), fbc::entries(c)))
            .collect(),
        versions: g
            .bundles
            .iter()
            .map(|b| (b.name(), fbc::bundle_version(b)))
            .collect(),
    }
}

fn in_range(v: &Option<Version>, min: &Option<Version>, max: &Option<Version>) -> bool {
    let Some(v) = v else { return false };
    min.as_ref().is_none_or(|m| v >= m) && max.as_ref().is_none_or(|m| v <= m)
}

/// Channel name → kept bundle names, for one package.
type Chosen = BTreeMap<String, BTreeSet<String>>;

impl Pkg<'_> {
    /// The head of a channel (the one entry nothing replaces).
    fn head(&self, pkg: &str, ch: &str, entries: &[Entry]) -> Result<BTreeSet<String>> {
        let head = fbc::head(entries)
            .with_context(|| format!("package {pkg} channel {ch} in the source catalog"))?;
        Ok(BTreeSet::from([head.name.clone()]))
    }

    /// The bundles of `entries` whose version is in the range.
    fn in_range(
        &self,
        entries: &[Entry],
        min: &Option<Version>,
        max: &Option<Version>,
    ) -> BTreeSet<String> {
        entries
            .iter()
            .filter(|e| {
                in_range(
                    &self.versions.get(e.name.as_str()).cloned().flatten(),
                    min,
                    max,
                )
            })
            .map(|e| e.name.clone())
            .collect()
    }

    /// Every channel whole.
    fn everything(&self) -> Chosen {
        self.channels
            .iter()
            .map(|(ch, entries)| (ch.clone(), entries.iter().map(|e| e.name.clone()).collect()))
            .collect()
    }

    /// The head of the default channel.
    fn default_head(&self, pkg: &str) -> Result<Chosen> {
        let Some(entries) = self.channels.get(&self.default_channel) else {
            bail!(
                "package {pkg}: its default channel {:?} does not exist in the catalog",
                self.default_channel
            );
        };
        let head = self.head(pkg, &self.default_channel, entries)?;
        Ok(Chosen::from([(self.default_channel.clone(), head)]))
    }
}

/// Applies an operator entry to a catalog.
pub fn filter(cat: &Catalog, op: &Operator) -> Result<Filtered> {
    let docs = cat.packages();
    let groups = cat.groups();
    let full = op.full == Some(true);
    let mut sel: Selection = BTreeMap::new();
    let mut defaults: BTreeMap<String, String> = BTreeMap::new();
    if op.packages.is_empty() {
        for (name, doc) in &docs {
            let p = package_view(&groups, name, doc);
            let chosen = if full {
                p.everything()
            } else {
                p.default_head(name)?
            };
            sel.insert(name.to_string(), chosen);
        }
    }
    let known: Vec<String> = docs.keys().map(|s| s.to_string()).collect();
    for spec in &op.packages {
        let Some(doc) = docs.get(spec.name.as_str()) else {
            bail!(
                "package {:?} is not in catalog {}; closest: {}",
                spec.name,
                op.catalog,
                nearest(&spec.name, &known).join(", ")
            );
        };
        let p = package_view(&groups, &spec.name, doc);
        let chosen = sel.entry(spec.name.clone()).or_default();
        for (ch, names) in select_package(&p, spec, full)? {
            chosen.entry(ch).or_default().extend(names);
        }
        if let Some(d) = &spec.default_channel {
            if !p.channels.contains_key(d) {
                let names: Vec<&str> = p.channels.keys().map(String::as_str).collect();
                bail!(
                    "package {}: defaultChannel {d:?} is not a channel of it; it has: {}",
                    spec.name,
                    names.join(", ")
                );
            }
            defaults.insert(spec.name.clone(), d.clone());
        }
    }
    let defaults = keep_defaults(&docs, &sel, defaults)?;
    build(cat, &sel, &defaults)
}

/// What one `packages[]` entry keeps of its package.
fn select_package(p: &Pkg, spec: &Package, full: bool) -> Result<Chosen> {
    let pmin = parse_version(
        &format!("package {} minVersion", spec.name),
        &spec.min_version,
    )?;
    let pmax = parse_version(
        &format!("package {} maxVersion", spec.name),
        &spec.max_version,
    )?;
    let ranged = pmin.is_some() || pmax.is_some();
    if !spec.bundles.is_empty() {
        if !spec.channels.is_empty() || ranged {
            bail!(
                "package {}: `bundles` cannot be combined with `channels`, `minVersion` or `maxVersion`",
                spec.name
            );
        }
        return select_bundles(p, spec);
    }
    if !spec.channels.is_empty() {
        let mut chosen = Chosen::new();
        for c in &spec.channels {
            chosen.insert(
                c.name.clone(),
                select_channel(p, spec, c, (&pmin, &pmax), full)?,
            );
        }
        return Ok(chosen);
    }
    if ranged {
        let chosen: Chosen = p
            .channels
            .iter()
            .map(|(ch, entries)| (ch.clone(), p.in_range(entries, &pmin, &pmax)))
            .filter(|(_, kept)| !kept.is_empty())
            .collect();
        if chosen.is_empty() {
            bail!(
                "package {}: no bundle between {} and {}",
                spec.name,
                pmin.map_or("-".into(), |v| v.to_string()),
                pmax.map_or("-".into(), |v| v.to_string())
            );
        }
        return Ok(chosen);
    }
    if full {
        return Ok(p.everything());
    }
    p.default_head(&spec.name)
}

/// `bundles[]`: exactly those, in every channel that lists them.
fn select_bundles(p: &Pkg, spec: &Package) -> Result<Chosen> {
    let all: Vec<String> = p.versions.keys().map(|s| s.to_string()).collect();
    let mut chosen = Chosen::new();
    for b in &spec.bundles {
        if !p.versions.contains_key(b.name.as_str()) {
            bail!(
                "bundle {:?} is not in package {}; closest: {}",
                b.name,
                spec.name,
                nearest(&b.name, &all).join(", ")
            );
        }
        let channels: Vec<&String> = p
            .channels
            .iter()
            .filter(|(_, entries)| entries.iter().any(|e| e.name == b.name))
            .map(|(ch, _)| ch)
            .collect();
        if channels.is_empty() {
            bail!(
                "bundle {} of package {} is in no channel",
                b.name,
                spec.name
            );
        }
        for ch in channels {
            chosen.entry(ch.clone()).or_default().insert(b.name.clone());
        }
    }
    Ok(chosen)
}

/// One `channels[]` entry: the bundles in its range (its own, else the package's; a range that
/// keeps nothing is an error), or the whole channel with `full`, or its head.
fn select_channel(
    p: &Pkg,
    spec: &Package,
    c: &PackageChannel,
    package_range: (&Option<Version>, &Option<Version>),
    full: bool,
) -> Result<BTreeSet<String>> {
    let Some(entries) = p.channels.get(&c.name) else {
        let names: Vec<String> = p.channels.keys().cloned().collect();
        bail!(
            "package {} has no channel {:?}; it has: {}",
            spec.name,
            c.name,
            nearest(&c.name, &names).join(", ")
        );
    };
    let cmin = parse_version(&format!("channel {} minVersion", c.name), &c.min_version)?;
    let cmax = parse_version(&format!("channel {} maxVersion", c.name), &c.max_version)?;
    let (min, max) = if cmin.is_some() || cmax.is_some() {
        (cmin, cmax)
    } else {
        (package_range.0.clone(), package_range.1.clone())
    };
    if min.is_none() && max.is_none() {
        return if full {
            Ok(entries.iter().map(|e| e.name.clone()).collect())
        } else {
            p.head(&spec.name, &c.name, entries)
        };
    }
    let kept = p.in_range(entries, &min, &max);
    if kept.is_empty() {
        bail!(
            "package {} channel {}: no bundle between {} and {}; its versions: {}",
            spec.name,
            c.name,
            min.map_or("-".into(), |v| v.to_string()),
            max.map_or("-".into(), |v| v.to_string()),
            versions_of(p, entries)
        );
    }
    Ok(kept)
}

/// Each kept package's default channel (its own, or the entry's `defaultChannel`) must be
/// kept. Returns the default channel of every kept package.
fn keep_defaults(
    docs: &BTreeMap<&str, &Doc>,
    sel: &Selection,
    mut defaults: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    for (name, chans) in sel {
        let original = docs[name.as_str()].value["defaultChannel"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let wanted = defaults.get(name).cloned().unwrap_or(original);
        if !chans.contains_key(&wanted) {
            let kept: Vec<&str> = chans.keys().map(String::as_str).collect();
            bail!(
                "package {name}: the filter keeps channel(s) {} but not the default channel {wanted:?}; \
                 add {wanted:?} to its channels, or set `defaultChannel:` to one of the kept channels",
                kept.join(", ")
            );
        }
        defaults.insert(name.clone(), wanted);
    }
    Ok(defaults)
}

fn versions_of(p: &Pkg, entries: &[Entry]) -> String {
    let mut v: Vec<String> = entries
        .iter()
        .filter_map(|e| p.versions.get(e.name.as_str()).cloned().flatten())
        .map(|v| v.to_string())
        .collect();
    v.sort();
    v.join(", ")
}

/// Rewrites the documents to the selection.
fn build(cat: &Catalog, sel: &Selection, defaults: &BTreeMap<String, String>) -> Result<Filtered> {
    let kept_bundles: HashSet<(String, String)> = sel
        .iter()
        .flat_map(|(p, chans)| {
            chans
                .values()
                .flatten()
                .map(move |b| (p.clone(), b.clone()))
        })
        .collect();
    let mut docs = Vec::new();
    let mut packages: BTreeMap<String, KeptPackage> = BTreeMap::new();
    for d in &cat.docs {
        let pkg = d.package().to_string();
        let chans = sel.get(&pkg);
        match d.schema() {
            SCHEMA_PACKAGE => {
                let Some(_) = chans else { continue };
                let mut v = d.value.clone();
                v["defaultChannel"] = Value::String(defaults[&pkg].clone());
                packages.insert(
                    pkg.clone(),
                    KeptPackage {
                        name: pkg.clone(),
                        default_channel: defaults[&pkg].clone(),
                        channels: BTreeMap::new(),
                    },
                );
                docs.push(Doc::new(&d.file, v));
            }
            SCHEMA_CHANNEL => {
                let Some(kept) = chans.and_then(|c| c.get(d.name())) else {
                    continue;
                };
                let entries = fbc::entries(d);
                let rewritten = rewrite(&entries, kept);
                fbc::head(&rewritten).with_context(|| {
                    format!(
                        "internal error: filtered channel {} of {pkg} is not a valid graph",
                        d.name()
                    )
                })?;
                let mut v = d.value.clone();
                v["entries"] = Value::Array(rewritten.iter().map(entry_value).collect());
                docs.push(Doc::new(&d.file, v));
            }
            SCHEMA_BUNDLE => {
                if kept_bundles.contains(&(pkg.clone(), d.name().to_string())) {
                    docs.push(d.clone());
                }
            }
            SCHEMA_DEPRECATIONS => {
                let Some(chans) = chans else { continue };
                let mut v = d.value.clone();
                if let Some(list) = v["entries"].as_array_mut() {
                    list.retain(|e| deprecation_kept(e, &pkg, chans, &kept_bundles));
                }
                docs.push(Doc::new(&d.file, v));
            }
            _ => {
                if pkg.is_empty() || chans.is_some() {
                    docs.push(d.clone());
                }
            }
        }
    }
    let groups = cat.groups();
    for (p, chans) in sel {
        let entry = packages.get_mut(p).expect("package doc kept");
        for (ch, kept) in chans {
            let doc = groups[p.as_str()]
                .channels
                .iter()
                .find(|c| c.name() == ch)
                .expect("channel exists");
            entry.channels.insert(
                ch.clone(),
                fbc::entries(doc)
                    .into_iter()
                    .filter(|e| kept.contains(&e.name))
                    .map(|e| e.name)
                    .collect(),
            );
        }
    }
    Ok(Filtered {
        catalog: Catalog { docs },
        packages: packages.into_values().collect(),
    })
}

/// A channel entry as a document value (`name`, and `replaces`, `skips`, `skipRange` when set).
fn entry_value(e: &Entry) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("name".into(), e.name.clone().into());
    if let Some(r) = &e.replaces {
        o.insert("replaces".into(), r.clone().into());
    }
    if !e.skips.is_empty() {
        o.insert("skips".into(), e.skips.clone().into());
    }
    if let Some(s) = &e.skip_range {
        o.insert("skipRange".into(), s.clone().into());
    }
    Value::Object(o)
}

/// Whether an `olm.deprecations` entry is about something kept (bundles and channels that go
/// take their deprecation notes with them; other references stay).
fn deprecation_kept(
    e: &Value,
    pkg: &str,
    chans: &BTreeMap<String, BTreeSet<String>>,
    kept_bundles: &HashSet<(String, String)>,
) -> bool {
    let r = &e["reference"];
    let name = r["name"].as_str().unwrap_or("");
    match r["schema"].as_str().unwrap_or("") {
        SCHEMA_BUNDLE => kept_bundles.contains(&(pkg.to_string(), name.to_string())),
        SCHEMA_CHANNEL => chans.contains_key(name),
        _ => true,
    }
}

/// Keeps the entries in `kept`; each now replaces the first kept bundle its replaces chain
/// reached through removed ones, and skips every other kept bundle it reached through removed
/// ones (by replaces or skips).
pub fn rewrite(entries: &[Entry], kept: &BTreeSet<String>) -> Vec<Entry> {
    let by_name: HashMap<&str, &Entry> = entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| kept.contains(&e.name)) {
        // replaces: follow the chain through removed bundles.
        let mut r = e.replaces.clone();
        let mut guard = 0;
        while let Some(name) = &r {
            if kept.contains(name) || guard > entries.len() {
                break;
            }
            guard += 1;
            r = by_name.get(name.as_str()).and_then(|x| x.replaces.clone());
        }
        let replaces = r.filter(|n| kept.contains(n));
        // skips: every kept bundle reachable through removed ones.
        let mut reached = BTreeSet::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = e
            .replaces
            .iter()
            .chain(&e.skips)
            .map(String::as_str)
            .collect();
        while let Some(n) = stack.pop() {
            if !seen.insert(n) || n == e.name {
                continue;
            }
            if kept.contains(n) {
                reached.insert(n.to_string());
                continue;
            }
            if let Some(x) = by_name.get(n) {
                stack.extend(x.replaces.iter().chain(&x.skips).map(String::as_str));
            }
        }
        if let Some(r) = &replaces {
            reached.remove(r);
        }
        // Keep the original skips that are kept, in their order, then the reached ones.
        let mut skips: Vec<String> = e
            .skips
            .iter()
            .filter(|s| reached.contains(*s))
            .cloned()
            .collect();
        for s in reached {
            if !skips.contains(&s) {
                skips.push(s);
            }
        }
        out.push(Entry {
            name: e.name.clone(),
            replaces,
            skips,
            skip_range: e.skip_range.clone(),
        });
    }
    out
}

/// Checks what `opm validate` would: every entry of every channel names a bundle of the
/// catalog, replaces/skips name entries of the channel... Returns the problems.
pub fn problems(cat: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    let groups = cat.groups();
    let empty = fbc::Group::default();
    for (name, doc) in cat.packages() {
        let g = groups.get(name).unwrap_or(&empty);
        let chans: Vec<&Doc> = g.channels.clone();
        let default = doc.value["defaultChannel"].as_str().unwrap_or("");
        if !chans.iter().any(|c| c.name() == default) {
            out.push(format!(
                "package {name}: default channel {default:?} missing"
            ));
        }
        let bundles: HashSet<&str> = g.bundles.iter().map(|b| b.name()).collect();
        for c in chans {
            let entries = fbc::entries(c);
            let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            if entries.is_empty() {
                out.push(format!("package {name} channel {}: no entries", c.name()));
            }
            for e in &entries {
                if !bundles.contains(e.name.as_str()) {
                    out.push(format!(
                        "package {name} channel {}: entry {} has no bundle",
                        c.name(),
                        e.name
                    ));
                }
                for r in e.replaces.iter().chain(&e.skips) {
                    if !names.contains(r.as_str()) && bundles.contains(r.as_str()) {
                        out.push(format!(
                            "package {name} channel {}: {} points at {r}, not in the channel",
                            c.name(),
                            e.name
                        ));
                    }
                }
            }
            if let Err(e) = fbc::head(&entries) {
                out.push(format!("package {name} channel {}: {e}", c.name()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageSetConfig;

    fn cat() -> Catalog {
        Catalog::read_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/realdata/catalogs/oc-mirror-test-catalog-multi"),
        )
        .unwrap()
    }

    fn op(yaml: &str) -> Operator {
        let c = ImageSetConfig::parse(&format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n    - catalog: example.com/c:1\n{yaml}"
        ))
        .unwrap();
        c.mirror.operators[0].clone()
    }

    fn run(yaml: &str) -> Filtered {
        let f = filter(&cat(), &op(yaml)).unwrap();
        assert!(
            problems(&f.catalog).is_empty(),
            "{:?}",
            problems(&f.catalog)
        );
        f
    }

    #[test]
    fn catalog_alone_keeps_default_channel_heads() {
        let f = run("");
        assert_eq!(f.packages.len(), 3);
        for p in &f.packages {
            assert_eq!(p.channels.len(), 1);
            assert!(p.channels.contains_key(&p.default_channel));
            assert_eq!(p.channels[&p.default_channel].len(), 1);
        }
    }

    #[test]
    fn full_keeps_everything() {
        let f = run("      full: true\n");
        let all = cat();
        assert_eq!(
            f.catalog
                .docs
                .iter()
                .filter(|d| d.schema() == SCHEMA_BUNDLE)
                .count(),
            all.docs
                .iter()
                .filter(|d| d.schema() == SCHEMA_BUNDLE)
                .count()
        );
    }

    #[test]
    fn ranges_rewrite_the_graph_and_keep_one_head() {
        let f = run("      packages:\n        - name: foo\n          minVersion: 0.1.0\n          maxVersion: 0.3.0\n");
        assert_eq!(f.packages.len(), 1);
        let foo = &f.packages[0];
        assert_eq!(foo.name, "foo");
        // foo has one channel, beta: 0.1.0 -> 0.2.0 -> 0.3.0, and 0.3.1 (out of range).
        let beta: Vec<&str> = foo.channels["beta"].iter().map(String::as_str).collect();
        assert_eq!(beta, ["foo.v0.1.0", "foo.v0.2.0", "foo.v0.3.0"]);
        assert_eq!(foo.channels.len(), 1);
        // The rewritten channel has one head, the highest kept version.
        let channel = f
            .catalog
            .docs
            .iter()
            .find(|d| d.schema() == SCHEMA_CHANNEL && d.name() == "beta")
            .unwrap();
        assert_eq!(
            fbc::head(&fbc::entries(channel)).unwrap().name,
            "foo.v0.3.0"
        );
    }

    #[test]
    fn unknown_names_say_what_exists() {
        let e = filter(&cat(), &op("      packages:\n        - name: fo\n")).unwrap_err();
        assert!(format!("{e:#}").contains("closest: foo"), "{e:#}");
        let e = filter(&cat(), &op("      packages:\n        - name: foo\n          channels:\n            - name: betta\n")).unwrap_err();
        assert!(format!("{e:#}").contains("beta"), "{e:#}");
        let e = filter(&cat(), &op("      packages:\n        - name: foo\n          bundles:\n            - name: foo.v0.9.9\n")).unwrap_err();
        assert!(format!("{e:#}").contains("foo.v0."), "{e:#}");
    }

    #[test]
    fn rewrite_bridges_removed_bundles() {
        let e = |n: &str, r: Option<&str>, s: &[&str]| Entry {
            name: n.into(),
            replaces: r.map(String::from),
            skips: s.iter().map(|x| x.to_string()).collect(),
            skip_range: None,
        };
        let entries = vec![
            e("a", None, &[]),
            e("b", Some("a"), &[]),
            e("c", Some("b"), &[]),
            e("x", None, &[]),
            e("d", Some("c"), &["x"]),
        ];
        let kept: BTreeSet<String> = ["a", "d", "x"].iter().map(|s| s.to_string()).collect();
        let r = rewrite(&entries, &kept);
        let d = r.iter().find(|e| e.name == "d").unwrap();
        assert_eq!(d.replaces.as_deref(), Some("a"));
        assert_eq!(d.skips, ["x"]);
        assert_eq!(fbc::head(&r).unwrap().name, "d");
    }
}
