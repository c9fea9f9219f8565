//! File-based catalogs (FBC), read as `opm` reads them: every `.json`, `.yaml` and `.yml` file
//! under the configs directory, JSON files being streams of concatenated documents and YAML
//! files multi-document. Documents are kept as JSON values so that whatever ferry does not
//! interpret (unknown schemas, unknown fields) is written back untouched.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use semver::Version;
use serde_json::Value;

pub const SCHEMA_PACKAGE: &str = "olm.package";
pub const SCHEMA_CHANNEL: &str = "olm.channel";
pub const SCHEMA_BUNDLE: &str = "olm.bundle";
pub const SCHEMA_DEPRECATIONS: &str = "olm.deprecations";

/// One FBC document, with the file it came from (relative to the configs directory).
///
/// Bundles read from JSON files are kept light: `value` holds only what filtering needs
/// (schema, name, package, image, relatedImages, the `olm.package` property) and `raw` the
/// byte range of the whole document in its file, which is copied verbatim when the catalog is
/// written back. Real catalogs are hundreds of MB, mostly base64 bundle objects: they are
/// read once, never held.
#[derive(Debug, Clone)]
pub struct Doc {
    pub file: String,
    /// The document (`Null` for a light bundle).
    pub value: Value,
    /// A light bundle: what filtering needs, and the document's byte range in `file`.
    pub light: Option<Box<LightBundle>>,
}

/// What filtering needs of a bundle (a JSON value costs ~6 KiB of small maps per bundle;
/// this ~300 bytes).
#[derive(Debug, Clone)]
pub struct LightBundle {
    pub name: String,
    pub package: String,
    pub version: Option<Version>,
    /// Its image and related images.
    pub images: Vec<String>,
    /// Byte range of the whole document in its file, copied verbatim on write.
    pub range: (u64, u64),
}

impl Doc {
    /// A document held as a JSON value.
    pub fn new(file: &str, value: Value) -> Doc {
        Doc {
            file: file.to_string(),
            value,
            light: None,
        }
    }

    pub fn schema(&self) -> &str {
        if self.light.is_some() {
            return SCHEMA_BUNDLE;
        }
        self.value["schema"].as_str().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        if let Some(l) = &self.light {
            return &l.name;
        }
        self.value["name"].as_str().unwrap_or("")
    }
    /// The package a document belongs to (`package`, or `name` for an `olm.package`).
    pub fn package(&self) -> &str {
        if let Some(l) = &self.light {
            return &l.package;
        }
        if self.schema() == SCHEMA_PACKAGE {
            self.name()
        } else {
            self.value["package"].as_str().unwrap_or("")
        }
    }
}

/// The channel and bundle documents of one package.
#[derive(Debug, Default)]
pub struct Group<'a> {
    pub channels: Vec<&'a Doc>,
    pub bundles: Vec<&'a Doc>,
}

/// A channel entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub replaces: Option<String>,
    pub skips: Vec<String>,
    pub skip_range: Option<String>,
}

/// A whole catalog.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    pub docs: Vec<Doc>,
}

impl Catalog {
    /// Reads every FBC file under `dir` (sorted by path, as opm walks).
    pub fn read_dir(dir: &Path) -> Result<Catalog> {
        use rayon::prelude::*;
        let mut files = Vec::new();
        collect(dir, dir, &mut files)?;
        files.sort();
        // Files are parsed in parallel; documents keep file order.
        let per_file: Vec<Vec<Doc>> = files
            .par_iter()
            .map(|rel| read_file(dir, rel))
            .collect::<Result<_>>()?;
        Ok(Catalog {
            docs: per_file.into_iter().flatten().collect(),
        })
    }

    /// Package names and their documents.
    pub fn packages(&self) -> BTreeMap<&str, &Doc> {
        self.docs
            .iter()
            .filter(|d| d.schema() == SCHEMA_PACKAGE)
            .map(|d| (d.name(), d))
            .collect()
    }

    /// The documents of each package, grouped in one pass (lookups by package are then
    /// cheap; scanning every document per package is quadratic on real catalogs).
    pub fn groups(&self) -> std::collections::HashMap<&str, Group<'_>> {
        let mut out: std::collections::HashMap<&str, Group<'_>> = Default::default();
        for d in &self.docs {
            let g = out.entry(d.package()).or_default();
            match d.schema() {
                SCHEMA_CHANNEL => g.channels.push(d),
                SCHEMA_BUNDLE => g.bundles.push(d),
                _ => {}
            }
        }
        out
    }

    pub fn channels_of<'a>(&'a self, package: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs
            .iter()
            .filter(move |d| d.schema() == SCHEMA_CHANNEL && d.package() == package)
    }

    pub fn bundles_of<'a>(&'a self, package: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs
            .iter()
            .filter(move |d| d.schema() == SCHEMA_BUNDLE && d.package() == package)
    }

    /// Writes the catalog as one JSON stream per package (`<package>/catalog.json`), plus
    /// `catalog.json` at the top for documents of no package. Light documents are copied from
    /// `root` (the directory the catalog was read from) byte for byte. Bytes are a pure
    /// function of the documents.
    pub fn to_files(&self, root: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for d in &self.docs {
            let file = match d.package() {
                "" => "catalog.json".to_string(),
                p => format!("{p}/catalog.json"),
            };
            let buf = out.entry(file).or_default();
            match d.light.as_ref().map(|l| l.range) {
                Some((start, end)) => {
                    let mut f = std::fs::File::open(root.join(&d.file))?;
                    f.seek(SeekFrom::Start(start))?;
                    let before = buf.len();
                    f.take(end - start).read_to_end(buf)?;
                    if (buf.len() - before) as u64 != end - start {
                        bail!("{} changed while the catalog was being filtered", d.file);
                    }
                }
                None => serde_json::to_writer_pretty(&mut *buf, &d.value)?,
            }
            buf.push(b'\n');
        }
        Ok(out)
    }
}

/// The documents of one file (`rel` under `dir`).
fn read_file(dir: &Path, rel: &str) -> Result<Vec<Doc>> {
    let path = dir.join(rel);
    let lower = rel.to_lowercase();
    let mut docs = Vec::new();
    let check = |value: &Value| -> Result<()> {
        if !value.is_object() || value["schema"].as_str().is_none() {
            bail!("{rel}: a document has no `schema`");
        }
        Ok(())
    };
    if lower.ends_with(".json") {
        let f = std::fs::File::open(&path)?;
        let mut stream = serde_json::Deserializer::from_reader(std::io::BufReader::new(f))
            .into_iter::<Box<serde_json::value::RawValue>>();
        while let Some(raw) = stream.next() {
            let raw = raw.with_context(|| format!("{rel}: not a stream of JSON documents"))?;
            let end = stream.byte_offset() as u64;
            let start = end - raw.get().len() as u64;
            let (value, light) = light_value(raw.get())
                .with_context(|| format!("{rel}: a document at byte {start}"))?;
            if let Some(mut light) = light {
                light.range = (start, end);
                docs.push(Doc {
                    file: rel.to_string(),
                    value: Value::Null,
                    light: Some(Box::new(light)),
                });
            } else if !value.is_null() {
                check(&value)?;
                docs.push(Doc::new(rel, value));
            }
        }
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        let text = std::fs::read_to_string(&path)?;
        for value in serde_saphyr::from_multiple::<Value>(&text)
            .with_context(|| format!("{rel}: not YAML documents"))?
        {
            if value.is_null() {
                continue;
            }
            check(&value)?;
            docs.push(Doc::new(rel, value));
        }
    }
    Ok(docs)
}

/// Parses one JSON document: bundles become a [`LightBundle`], others a value.
fn light_value(raw: &str) -> Result<(Value, Option<LightBundle>)> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        schema: String,
    }
    let head: Head = serde_json::from_str(raw)?;
    if head.schema != SCHEMA_BUNDLE {
        return Ok((serde_json::from_str(raw)?, None));
    }
    #[derive(serde::Deserialize)]
    struct Prop {
        #[serde(rename = "type", default)]
        kind: String,
        value: Box<serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Related {
        #[serde(default)]
        image: String,
    }
    #[derive(serde::Deserialize)]
    struct PackageProp {
        #[serde(default)]
        version: String,
    }
    #[derive(serde::Deserialize)]
    struct Bundle {
        #[serde(default)]
        name: String,
        #[serde(default)]
        package: String,
        #[serde(default)]
        image: Option<String>,
        #[serde(default, rename = "relatedImages")]
        related: Option<Vec<Related>>,
        #[serde(default)]
        properties: Vec<Prop>,
    }
    let b: Bundle = serde_json::from_str(raw)?;
    let version = b
        .properties
        .iter()
        .filter(|p| p.kind == "olm.package")
        .find_map(|p| serde_json::from_str::<PackageProp>(p.value.get()).ok())
        .and_then(|p| Version::parse(&p.version).ok());
    let mut images: Vec<String> = b.image.into_iter().collect();
    images.extend(b.related.unwrap_or_default().into_iter().map(|r| r.image));
    images.retain(|s| !s.is_empty());
    images.sort();
    images.dedup();
    Ok((
        Value::Null,
        Some(LightBundle {
            name: b.name,
            package: b.package,
            version,
            images,
            range: (0, 0),
        }),
    ))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let t = e.file_type()?;
        let p = e.path();
        if t.is_dir() {
            collect(root, &p, out)?;
        } else if t.is_file() {
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            out.push(rel);
        }
    }
    Ok(())
}

/// The entries of a channel document.
pub fn entries(channel: &Doc) -> Vec<Entry> {
    channel.value["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    name: e["name"].as_str().unwrap_or("").to_string(),
                    replaces: e["replaces"].as_str().map(String::from),
                    skips: e["skips"]
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    skip_range: e["skipRange"].as_str().map(String::from),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A bundle's version, from its `olm.package` property.
pub fn bundle_version(bundle: &Doc) -> Option<Version> {
    if let Some(l) = &bundle.light {
        return l.version.clone();
    }
    bundle.value["properties"].as_array()?.iter().find_map(|p| {
        (p["type"] == "olm.package")
            .then(|| p["value"]["version"].as_str())
            .flatten()
            .and_then(|v| Version::parse(v).ok())
    })
}

/// The head of a channel: the entry no other entry replaces or skips. Several (or none) is
/// an error, as for opm.
pub fn head(entries: &[Entry]) -> Result<&Entry> {
    let covered: std::collections::HashSet<&str> = entries
        .iter()
        .flat_map(|e| e.replaces.iter().chain(e.skips.iter()))
        .map(String::as_str)
        .collect();
    let heads: Vec<&Entry> = entries
        .iter()
        .filter(|e| !covered.contains(e.name.as_str()))
        .collect();
    match heads.as_slice() {
        [h] => Ok(h),
        [] => bail!("no head (every entry is replaced or skipped by another)"),
        many => bail!(
            "{} heads: {}",
            many.len(),
            many.iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Every image a bundle needs: its own image and its related images.
pub fn bundle_images(bundle: &Doc) -> Vec<String> {
    if let Some(l) = &bundle.light {
        return l.images.clone();
    }
    let mut v: Vec<String> = bundle.value["image"]
        .as_str()
        .into_iter()
        .map(String::from)
        .collect();
    if let Some(rel) = bundle.value["relatedImages"].as_array() {
        v.extend(
            rel.iter()
                .filter_map(|r| r["image"].as_str().map(String::from)),
        );
    }
    v.retain(|s| !s.is_empty());
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realdata(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/realdata/catalogs")
            .join(p)
    }

    #[test]
    fn real_catalogs_parse_in_both_encodings() {
        let c = Catalog::read_dir(&realdata("oc-mirror-test-catalog-multi")).unwrap();
        let pkgs = c.packages();
        assert_eq!(
            pkgs.keys().copied().collect::<Vec<_>>(),
            ["bar", "baz", "foo"]
        );
        let ch: Vec<&Doc> = c.channels_of("foo").collect();
        assert!(!ch.is_empty());
        for d in ch {
            head(&entries(d)).unwrap();
        }
        assert!(c.bundles_of("foo").all(|b| bundle_version(b).is_some()));
        let c = Catalog::read_dir(&realdata("redhat-node-observability-operator")).unwrap();
        assert_eq!(c.packages().len(), 1);
        assert_eq!(c.bundles_of("node-observability-operator").count(), 1);
        // Unknown schemas are kept.
        let c = Catalog::read_dir(&realdata("oc-mirror-test-catalog-extra-blobs")).unwrap();
        assert!(c
            .docs
            .iter()
            .any(|d| ![SCHEMA_PACKAGE, SCHEMA_CHANNEL, SCHEMA_BUNDLE].contains(&d.schema())));
    }
}
