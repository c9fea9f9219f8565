//! Catalog index images: reading the configs directory out of the layers, and rebuilding the
//! image around a filtered catalog.
//!
//! **Reading.** The configs directory is named by the image config label
//! `operators.operatorframework.io.index.configs.v1` (default `/configs`). Layers are streamed
//! in order (gzip or plain tar), and only entries under that directory are written, into a
//! private temporary directory, honouring whiteouts (`.wh.NAME` removes NAME, `.wh..wh..opq`
//! empties its directory): memory stays bounded whatever the catalog size. Links, devices and
//! names that would leave the directory are ignored. Each layer's sha256 is checked.
//!
//! **Rebuilding.** One layer is added on top of each selected platform's image: an opaque
//! whiteout for the configs directory, the filtered catalog (one `catalog.json` per package),
//! and a whiteout of the pre-built opm cache (`--cache-dir` of the image's command, else
//! `/tmp/cache`), which would no longer match. The command gets `--cache-enforce-integrity=false`
//! so that `opm serve` builds a fresh cache at start instead of refusing the stale one. Tar
//! headers are fixed (mtime 0, uid/gid 0, mode 0644/0755) and gzip is deterministic, so the
//! same filter on the same catalog gives the same digests. The platforms' manifests go under a
//! new manifest list of the source's kind.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ferry_format::hash::HashingReader;
use ferry_format::manifest::{Manifest, DOCKER_LIST, OCI_INDEX};
use ferry_format::Digest;
use ferry_registry::{Client, Reference, Repo};
use serde_json::{json, Value};

use crate::derive::{
    append_layer, gzip_layer, layer_tar, platform_image, tar_header, PlatformImage,
};
use crate::plan::{platform_selected, PlannedBlob, PlannedManifest};

pub const CONFIGS_LABEL: &str = "operators.operatorframework.io.index.configs.v1";

/// Where a config's `catalog:` is: a registry reference, or an OCI image layout on disk
/// (`oci:///path`, as oc-mirror v2 accepts), read through the same client calls.
#[derive(Debug, Clone)]
pub struct CatalogRef {
    /// As the config names it.
    pub name: String,
    pub repo: Repo,
    /// The tag or digest to read (`latest` for a layout: its only manifest).
    pub manifest: String,
    /// Registry and repository to record and push to: the reference's, or for a layout
    /// `localhost` and the directory's name.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// From a layout: nothing at a source registry to mirror from.
    pub is_layout: bool,
}

/// The prefix of a catalog in an OCI layout.
pub const LAYOUT_PREFIX: &str = ferry_format::index::LAYOUT_SOURCE_PREFIX;

impl CatalogRef {
    pub fn parse(catalog: &str) -> Result<CatalogRef> {
        let Some(path) = catalog.strip_prefix(LAYOUT_PREFIX) else {
            let r: Reference = catalog.parse()?;
            return Ok(CatalogRef {
                name: catalog.to_string(),
                repo: Repo::new(r.registry.clone(), r.repository.clone()),
                manifest: r.manifest_reference(),
                registry: r.registry,
                repository: r.repository,
                tag: r.tag,
                is_layout: false,
            });
        };
        let dir = Path::new(path);
        if !dir.join("oci-layout").is_file() {
            bail!(
                "{catalog}: {} is not an OCI image layout (no oci-layout file); write                  oci:///absolute/path/to/the/layout, as `skopeo copy ... oci:DIR` writes it",
                dir.display()
            );
        }
        let base = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_lowercase()))
            .unwrap_or_default();
        let repository: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if repository.is_empty() {
            bail!("{catalog}: name the layout directory, or set targetCatalog");
        }
        Ok(CatalogRef {
            name: catalog.to_string(),
            repo: Repo::layout(dir),
            manifest: "latest".into(),
            registry: "localhost".into(),
            repository,
            tag: Some("latest".into()),
            is_layout: true,
        })
    }
}

/// A catalog image at the source.
#[derive(Debug, Clone)]
pub struct SourceCatalog {
    pub reference: CatalogRef,
    pub repo: Repo,
    pub digest: Digest,
    /// The list (or index) as fetched, when the catalog is multi-platform.
    pub list: Option<(Value, String)>,
    pub platforms: Vec<PlatformImage>,
    pub configs_dir: String,
}

/// Fetches a catalog image's manifests and configs (not its layers). `arch` keeps only those
/// platforms of a multi-platform catalog (all when empty).
pub fn open(client: &Client, reference: &CatalogRef, arch: &[String]) -> Result<SourceCatalog> {
    let repo = reference.repo.clone();
    let top = client.get_manifest(&repo, &reference.manifest)?;
    let (m, media_type) = Manifest::parse(&top.bytes, &top.media_type)?;
    let mut platforms = Vec::new();
    let list = match m {
        Manifest::Index { manifests } => {
            for d in manifests {
                let Some(p) = &d.platform else { continue };
                if p.architecture == "unknown" || !platform_selected(arch, p) {
                    continue;
                }
                let f = client.get_manifest(&repo, &d.digest.to_string())?;
                platforms.push(platform_image(
                    client,
                    &repo,
                    f.digest,
                    &f.bytes,
                    &d.media_type,
                    Some(p.clone()),
                )?);
            }
            if platforms.is_empty() {
                bail!(
                    "no platform of catalog {} matches {}",
                    reference.name,
                    arch.join(", ")
                );
            }
            Some((serde_json::from_slice(&top.bytes)?, media_type))
        }
        Manifest::Image { .. } => {
            platforms.push(platform_image(
                client,
                &repo,
                top.digest.clone(),
                &top.bytes,
                &media_type,
                None,
            )?);
            None
        }
    };
    let configs_dir = platforms[0].config["config"]["Labels"][CONFIGS_LABEL]
        .as_str()
        .unwrap_or("/configs")
        .to_string();
    let configs_dir = clean_dir(&configs_dir).ok_or_else(|| {
        anyhow!(
            "catalog {}: label {CONFIGS_LABEL} = {configs_dir:?} is not a usable path",
            reference.name
        )
    })?;
    Ok(SourceCatalog {
        reference: reference.clone(),
        repo,
        digest: top.digest,
        list,
        platforms,
        configs_dir,
    })
}

/// `/configs/` → `configs`; refuses `..` and empty paths.
fn clean_dir(p: &str) -> Option<String> {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Reconstructs the configs directory of the first selected platform into `dest`.
pub fn extract_configs(client: &Client, cat: &SourceCatalog, dest: &Path) -> Result<()> {
    let img = cat
        .platforms
        .iter()
        .find(|p| {
            p.platform
                .as_ref()
                .is_some_and(|p| p.architecture == "amd64")
        })
        .unwrap_or(&cat.platforms[0]);
    for (digest, _, _) in &img.layers {
        let body = client.get_blob(&cat.repo, digest)?;
        let mut hashing = HashingReader::new(body.reader);
        {
            let reader = layer_tar(&mut hashing, &format!("catalog layer {digest}"))?;
            apply_layer(reader, &cat.configs_dir, dest)
                .with_context(|| format!("catalog layer {digest}"))?;
        }
        std::io::copy(&mut hashing, &mut std::io::sink())?;
        let got = hashing.finish().sha256;
        if &got != digest {
            bail!("catalog layer {digest} arrived with digest {got}");
        }
    }
    Ok(())
}

/// Applies one layer's changes under `configs` to `dest`.
pub fn apply_layer(reader: impl Read, configs: &str, dest: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.to_string_lossy().into_owned();
        let Some(path) = clean_dir(&raw) else {
            continue;
        };
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (p.to_string(), n.to_string()),
            None => (String::new(), path.clone()),
        };
        let within = |p: &str| -> Option<PathBuf> {
            if p == configs {
                Some(PathBuf::new())
            } else {
                p.strip_prefix(&format!("{configs}/")).map(PathBuf::from)
            }
        };
        if name == ".wh..wh..opq" {
            if let Some(rel) = within(&parent) {
                clear(&dest.join(rel))?;
            }
            continue;
        }
        if let Some(target) = name.strip_prefix(".wh.") {
            let full = if parent.is_empty() {
                target.to_string()
            } else {
                format!("{parent}/{target}")
            };
            if let Some(rel) = within(&full) {
                let p = dest.join(&rel);
                if rel.as_os_str().is_empty() {
                    clear(&p)?;
                } else if p.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else if p.exists() {
                    std::fs::remove_file(&p)?;
                }
            } else if configs.starts_with(&format!("{full}/")) {
                // A parent of the configs directory was deleted.
                clear(dest)?;
            }
            continue;
        }
        let Some(rel) = within(&path) else { continue };
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            continue;
        }
        let out = dest.join(&rel);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&out)?;
        } else if kind.is_file() {
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p)?;
            }
            if out.is_dir() {
                std::fs::remove_dir_all(&out)?;
            }
            let mut f = std::fs::File::create(&out)?;
            std::io::copy(&mut entry, &mut f)?;
        }
        // Links and special files are not part of a catalog: ignored.
    }
    Ok(())
}

fn clear(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
    }
    Ok(())
}

/// The rebuilt image: new manifests and blobs, and the original layers to carry.
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub digest: Option<Digest>,
    pub media_type: String,
    pub manifests: Vec<(Digest, PlannedManifest)>,
    pub inline: Vec<(Digest, Vec<u8>)>,
    pub blobs: Vec<(Digest, PlannedBlob)>,
    pub platforms: Vec<String>,
}

/// Deterministic tar + gzip of the filtered catalog, with the whiteouts. Returns
/// (gzip bytes, sha256 of the uncompressed tar).
pub fn catalog_layer(
    configs: &str,
    files: &BTreeMap<String, Vec<u8>>,
    cache_dir: &str,
) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    let header = tar_header;
    let mut add_dir = |tar: &mut tar::Builder<Vec<u8>>, d: &str| {
        let mut acc = String::new();
        for part in d.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            if dirs.insert(acc.clone()) {
                let mut h = header(0, 0o755, tar::EntryType::Directory);
                tar.append_data(&mut h, format!("{acc}/"), std::io::empty())
                    .expect("tar");
            }
        }
    };
    add_dir(&mut tar, configs);
    let mut h = header(0, 0o644, tar::EntryType::Regular);
    tar.append_data(&mut h, format!("{configs}/.wh..wh..opq"), std::io::empty())
        .expect("tar");
    for (name, bytes) in files {
        if let Some((d, _)) = name.rsplit_once('/') {
            add_dir(&mut tar, &format!("{configs}/{d}"));
        }
        let mut h = header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
        tar.append_data(&mut h, format!("{configs}/{name}"), &bytes[..])
            .expect("tar");
    }
    if let Some(cache) = clean_dir(cache_dir) {
        let (parent, name) = cache
            .rsplit_once('/')
            .map_or((None, cache.as_str()), |(p, n)| (Some(p), n));
        if let Some(p) = parent {
            add_dir(&mut tar, p);
        }
        let wh = match parent {
            Some(p) => format!("{p}/.wh.{name}"),
            None => format!(".wh.{name}"),
        };
        let mut h = header(0, 0o644, tar::EntryType::Regular);
        tar.append_data(&mut h, wh, std::io::empty()).expect("tar");
    }
    let tar = tar.into_inner().expect("tar");
    gzip_layer(&tar)
}

/// The `--cache-dir` of an opm command line, if any.
fn cache_dir_of(cmd: &[String]) -> Option<String> {
    cmd.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--cache-dir=")
            .map(String::from)
            .or_else(|| {
                (a == "--cache-dir")
                    .then(|| cmd.get(i + 1).cloned())
                    .flatten()
            })
    })
}

/// Builds the new images: each selected platform plus one layer, under a new list.
pub fn rebuild(cat: &SourceCatalog, files: &BTreeMap<String, Vec<u8>>) -> Result<Rebuilt> {
    let mut out = Rebuilt::default();
    let mut children = Vec::new();
    for img in &cat.platforms {
        let cmd: Vec<String> = img.config["config"]["Cmd"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let cache = cache_dir_of(&cmd).unwrap_or_else(|| "/tmp/cache".into());
        let (layer, diff_id) = catalog_layer(&cat.configs_dir, files, &cache);
        let source = cat.digest.to_string();
        let derived = append_layer(
            img,
            &cat.repo,
            layer,
            &diff_id,
            "ferry: filtered file-based catalog",
            |config| {
                if cache_dir_of(&cmd).is_some() {
                    let mut new_cmd: Vec<Value> = cmd
                        .iter()
                        .filter(|a| !a.starts_with("--cache-enforce-integrity"))
                        .map(|a| Value::String(a.clone()))
                        .collect();
                    new_cmd.push("--cache-enforce-integrity=false".into());
                    config["config"]["Cmd"] = Value::Array(new_cmd);
                }
                if config["config"]["Labels"].is_object() {
                    config["config"]["Labels"]["org.ferry.catalog.filtered-from"] = source.into();
                }
            },
        )?;
        let digest = derived.digest.clone();
        let bytes_len = derived.manifest.bytes.len();
        out.blobs.extend(derived.carried);
        out.inline.extend(derived.inline);
        children.push((
            img.platform.clone(),
            digest.clone(),
            bytes_len,
            img.media_type.clone(),
        ));
        if let Some(p) = &img.platform {
            out.platforms.push(p.label());
        }
        out.manifests.push((digest.clone(), derived.manifest));
        if cat.list.is_none() {
            out.digest = Some(digest);
            out.media_type = img.media_type.clone();
        }
    }
    if let Some((list, media_type)) = &cat.list {
        let mut list = list.clone();
        let entries: Vec<Value> = children
            .iter()
            .map(|(p, d, size, mt)| {
                let mut e = json!({"mediaType": mt, "digest": d.to_string(), "size": size});
                if let Some(p) = p {
                    e["platform"] = json!({"architecture": p.architecture, "os": p.os});
                    if let Some(v) = &p.variant {
                        e["platform"]["variant"] = v.clone().into();
                    }
                }
                e
            })
            .collect();
        list["manifests"] = Value::Array(entries);
        let bytes = serde_json::to_vec(&list)?;
        let digest = Digest::of(&bytes);
        let mt = if media_type == DOCKER_LIST {
            DOCKER_LIST
        } else {
            OCI_INDEX
        };
        out.manifests.push((
            digest.clone(),
            PlannedManifest {
                bytes,
                media_type: mt.to_string(),
                children: children.iter().map(|c| c.1.clone()).collect(),
                blobs: vec![],
            },
        ));
        out.digest = Some(digest);
        out.media_type = mt.to_string();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_are_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let l1 = tar_of(&[
            ("configs/a/catalog.json", b"{}"),
            ("configs/b/catalog.json", b"{}"),
            ("configs/c/x.yaml", b"x: 1"),
            ("etc/passwd", b"root"),
        ]);
        let l2 = tar_of(&[
            ("configs/.wh.a", b""),
            ("configs/c/.wh..wh..opq", b""),
            ("configs/c/y.yaml", b"y: 1"),
        ]);
        apply_layer(&l1[..], "configs", dir.path()).unwrap();
        apply_layer(&l2[..], "configs", dir.path()).unwrap();
        assert!(!dir.path().join("a").exists());
        assert!(dir.path().join("b/catalog.json").exists());
        assert!(!dir.path().join("c/x.yaml").exists());
        assert!(dir.path().join("c/y.yaml").exists());
        assert!(!dir.path().join("etc").exists() && !dir.path().join("passwd").exists());
        // Hostile names and links never leave the directory nor get followed.
        let mut b = tar::Builder::new(Vec::new());
        for name in ["configs/../../evil", "configs/b/../../evil2"] {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_cksum();
        b.append_link(&mut h, "configs/link", "/etc/passwd")
            .unwrap();
        let hostile = b.into_inner().unwrap();
        apply_layer(&hostile[..], "configs", dir.path()).unwrap();
        assert!(!dir.path().join("link").exists());
        assert!(!dir.path().parent().unwrap().join("evil").exists());
        assert!(!dir.path().join("evil2").exists() && !dir.path().join("b/evil2").exists());
        // An opaque configs directory empties everything.
        let l3 = tar_of(&[("configs/.wh..wh..opq", b"")]);
        apply_layer(&l3[..], "configs", dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn catalog_layer_is_deterministic() {
        let files: BTreeMap<String, Vec<u8>> =
            [("foo/catalog.json".to_string(), b"{}\n".to_vec())].into();
        let (a, da) = catalog_layer("configs", &files, "/tmp/cache");
        let (b, db) = catalog_layer("configs", &files, "/tmp/cache");
        assert_eq!(a, b);
        assert_eq!(da, db);
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&a[..]));
        for e in ar.entries().unwrap() {
            names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        assert!(
            names.contains(&"configs/.wh..wh..opq".to_string()),
            "{names:?}"
        );
        assert!(names.contains(&"configs/foo/catalog.json".to_string()));
        assert!(names.contains(&"tmp/.wh.cache".to_string()));
    }
}
