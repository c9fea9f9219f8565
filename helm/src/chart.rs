//! A chart in memory: `Chart.yaml`, default values, templates, CRDs, the other files, and the
//! subcharts under `charts/` (directories or `.tgz`). Read from a `.tgz` or a directory;
//! hostile archives are refused (paths with `..`, links, too many or too large files), never
//! unpacked to disk.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// Largest chart accepted, uncompressed (real charts are well under a megabyte).
pub const MAX_CHART_BYTES: u64 = 64 * 1024 * 1024;
const MAX_FILES: usize = 20_000;

/// A dependency as `Chart.yaml` lists it: which subchart, under what key, when enabled.
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub alias: Option<String>,
    pub condition: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// `Chart.yaml` as read.
    pub metadata: serde_json::Value,
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    /// `library` charts have no manifests of their own.
    pub kind: String,
    pub values: serde_json::Value,
    /// `templates/...` files: path in the chart and text.
    pub templates: Vec<(String, String)>,
    /// `crds/...` files, which Helm installs as they are.
    pub crds: Vec<(String, String)>,
    /// Every other file (for `.Files`).
    pub files: BTreeMap<String, Vec<u8>>,
    pub dependencies: Vec<Dependency>,
    pub subcharts: Vec<Chart>,
}

/// Reads a chart `.tgz` (its files under one top directory, as `helm package` writes them).
pub fn from_tgz(bytes: &[u8]) -> Result<Chart> {
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().context("not a gzip tar")? {
        let mut entry = entry.context("a damaged tar entry")?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        if !kind.is_file() {
            bail!("{path}: a chart holds regular files only, not links or devices");
        }
        let rel = relative(&path)?;
        total += entry.size();
        if total > MAX_CHART_BYTES || files.len() >= MAX_FILES {
            bail!("the chart is larger than {MAX_CHART_BYTES} bytes or {MAX_FILES} files");
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data)?;
        if let Some(rel) = rel {
            files.insert(rel, data);
        }
    }
    from_files(files)
}

/// `top/rest/of/path` → `rest/of/path` (`None` for the top directory's own files).
fn relative(path: &str) -> Result<Option<String>> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if path.starts_with('/') || parts.contains(&"..") {
        bail!("{path}: a chart path must stay inside the chart");
    }
    Ok((parts.len() > 1).then(|| parts[1..].join("/")))
}

/// Reads a chart directory (or a `.tgz` file).
pub fn from_path(path: &Path) -> Result<Chart> {
    if path.is_file() {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        return from_tgz(&bytes)
            .with_context(|| format!("{} is not a chart archive", path.display()));
    }
    let mut files = BTreeMap::new();
    read_chart_dir(path, &mut files)
        .with_context(|| format!("cannot read the chart directory {}", path.display()))?;
    from_files(files)
}

/// Reads a chart directory's files, leaving out what its `.helmignore` says (as `helm
/// package` and `helm template DIR` do).
fn read_chart_dir(dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let ignore = match std::fs::read_to_string(dir.join(crate::ignore::FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).context("reading .helmignore"),
    };
    let rules = crate::ignore::Rules::parse(&ignore)?;
    let mut total = 0;
    read_dir(dir, "", &rules, files, &mut total)
}

fn read_dir(
    dir: &Path,
    prefix: &str,
    rules: &crate::ignore::Rules,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = format!("{prefix}{name}");
        let kind = e.file_type()?;
        if rules.ignored(&rel, kind.is_dir()) {
            continue;
        }
        if kind.is_dir() {
            read_dir(&e.path(), &format!("{rel}/"), rules, files, total)?;
        } else if kind.is_file() {
            *total += e.metadata()?.len();
            if *total > MAX_CHART_BYTES || files.len() >= MAX_FILES {
                bail!("the chart is larger than {MAX_CHART_BYTES} bytes or {MAX_FILES} files");
            }
            files.insert(rel, std::fs::read(e.path())?);
        }
    }
    Ok(())
}

/// Builds a chart from its files (paths relative to the chart's directory).
pub fn from_files(mut files: BTreeMap<String, Vec<u8>>) -> Result<Chart> {
    let meta_bytes = files
        .remove("Chart.yaml")
        .ok_or_else(|| anyhow!("no Chart.yaml: not a Helm chart"))?;
    let metadata: serde_json::Value = serde_saphyr::from_str(&text(&meta_bytes, "Chart.yaml")?)
        .context("Chart.yaml is not valid YAML")?;
    let field = |k: &str| metadata.get(k).and_then(scalar_string);
    let name = field("name").ok_or_else(|| anyhow!("Chart.yaml has no name"))?;
    let version = field("version").ok_or_else(|| anyhow!("Chart.yaml of {name} has no version"))?;
    let values = match files.remove("values.yaml") {
        Some(b) if !text(&b, "values.yaml")?.trim().is_empty() => {
            serde_saphyr::from_str(&text(&b, "values.yaml")?)
                .with_context(|| format!("values.yaml of {name} is not valid YAML"))?
        }
        _ => serde_json::json!({}),
    };
    let mut templates = Vec::new();
    let mut crds = Vec::new();
    let mut sub_files: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut subcharts = Vec::new();
    for (path, data) in std::mem::take(&mut files) {
        if let Some(rest) = path.strip_prefix("charts/") {
            match rest.split_once('/') {
                Some((dir, inner)) => {
                    sub_files
                        .entry(dir.to_string())
                        .or_default()
                        .insert(inner.to_string(), data);
                }
                None if rest.ends_with(".tgz") => subcharts.push(
                    from_tgz(&data).with_context(|| format!("the subchart {path} of {name}"))?,
                ),
                None => {}
            }
        } else if path.starts_with("templates/") {
            templates.push((path.clone(), text(&data, &path)?));
        } else if path.starts_with("crds/") {
            crds.push((path.clone(), text(&data, &path)?));
        } else {
            files.insert(path, data);
        }
    }
    for (dir, f) in sub_files {
        subcharts
            .push(from_files(f).with_context(|| format!("the subchart charts/{dir} of {name}"))?);
    }
    Ok(Chart {
        dependencies: dependencies(&metadata),
        app_version: field("appVersion"),
        kind: field("type").unwrap_or_else(|| "application".into()),
        name,
        version,
        metadata,
        values,
        templates,
        crds,
        files,
        subcharts,
    })
}

fn text(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("{what} is not UTF-8 text"))
}

fn scalar_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn dependencies(meta: &serde_json::Value) -> Vec<Dependency> {
    let Some(list) = meta.get("dependencies").and_then(|d| d.as_array()) else {
        return vec![];
    };
    list.iter()
        .filter_map(|d| {
            Some(Dependency {
                name: d.get("name")?.as_str()?.to_string(),
                alias: d.get("alias").and_then(|a| a.as_str()).map(str::to_string),
                condition: d
                    .get("condition")
                    .and_then(|a| a.as_str())
                    .map(str::to_string),
                tags: d
                    .get("tags")
                    .and_then(|t| t.as_array())
                    .map(|t| {
                        t.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A chart directory as a `.tgz` the way `helm package` lays it out (files under
/// `<name>/`), with fixed headers so the same directory always makes the same bytes.
pub fn package_dir(dir: &Path) -> Result<Vec<u8>> {
    let mut files = BTreeMap::new();
    read_chart_dir(dir, &mut files)
        .with_context(|| format!("cannot read the chart directory {}", dir.display()))?;
    let chart = from_files(files.clone())?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in &files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, format!("{}/{path}", chart.name), data.as_slice())
            .with_context(|| format!("packaging {path}"))?;
    }
    Ok(tar.into_inner()?.finish()?)
}
