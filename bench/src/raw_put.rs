//! The push ceilings, from a `skopeo sync --dest dir` folder (one `REPO:TAG` folder per image:
//! `manifest.json`, `HEX.manifest.json` for an index's instances, blob files named by their hex
//! digest). Plain requests, in parallel, with no HEAD, no hashing and no retries:
//!
//! - [`put_blobs`]: every unique blob uploaded once into one repository (POST + PUT): the
//!   bytes' cost alone.
//! - [`put_images`]: the same images as a registry must end up holding them, with the fewest
//!   requests any client can use: each blob uploaded into the first repository that needs it
//!   and mounted into the others, each index's instances PUT by digest, then each image's
//!   manifest PUT by its tag. What the registry writes for this (link files, manifests, tags)
//!   is work a push of those images cannot skip.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde_json::{json, Value};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections_per_host(64)
        .build()
        .into()
}

fn is_hex_digest(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// POST + monolithic PUT of one blob file into `repo`. Returns its size.
fn upload(agent: &ureq::Agent, host: &str, repo: &str, hex: &str, path: &Path) -> Result<u64> {
    let resp = agent
        .post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .send_empty()?;
    let loc = resp
        .headers()
        .get("location")
        .context("no Location")?
        .to_str()?
        .to_string();
    let url = if loc.starts_with("http") {
        loc
    } else {
        format!("http://{host}{loc}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let resp = agent
        .put(format!("{url}{sep}digest=sha256:{hex}"))
        .header("Content-Length", len.to_string())
        .header("Content-Type", "application/octet-stream")
        .send(ureq::SendBody::from_owned_reader(f))?;
    if resp.status().as_u16() != 201 {
        bail!("PUT {hex}: {}", resp.status());
    }
    Ok(len)
}

/// Anything with a file (a blob's), ordered by the file's size, largest first: what the
/// workers take one at a time as they are free (par_bridge), so that the big ones start first
/// and no worker is left with a run of them while the others idle.
fn largest_first<T>(items: Vec<T>, file: impl Fn(&T) -> &Path) -> Result<Vec<T>> {
    let mut sized = Vec::with_capacity(items.len());
    for item in items {
        sized.push((std::fs::metadata(file(&item))?.len(), item));
    }
    sized.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    Ok(sized.into_iter().map(|(_, item)| item).collect())
}

/// Every unique blob file under `dir`, uploaded once into `HOST/REPO`.
pub fn put_blobs(dir: &Path, to: &str, jobs: usize) -> Result<()> {
    let (host, repo) = to.split_once('/').context("HOST/REPO")?;
    let mut blobs: BTreeMap<String, (PathBuf, Vec<String>)> = BTreeMap::new();
    for image in image_dirs(dir)? {
        for (hex, path) in image.blobs {
            blobs.entry(hex).or_insert((path, vec![repo.to_string()]));
        }
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let started = Instant::now();
    let placed = pool.install(|| place_blobs(&agent(), host, blobs))?;
    println!(
        "{}",
        json!({"blobs": placed.blobs, "bytes": placed.bytes, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}

/// What [`place_blobs`] did.
struct Placed {
    blobs: usize,
    bytes: u64,
    mounts: usize,
}

/// Each blob (hex digest → its file and the repositories that need it) uploaded into its first
/// repository and mounted from there into the others, largest first, on the current pool.
fn place_blobs<P: AsRef<Path> + Send + Sync>(
    agent: &ureq::Agent,
    host: &str,
    blobs: BTreeMap<String, (P, Vec<String>)>,
) -> Result<Placed> {
    let blobs = largest_first(blobs.into_iter().collect(), |(_, (p, _))| p.as_ref())?;
    let (bytes, mounts) = blobs
        .iter()
        .par_bridge()
        .map(|(hex, (path, repos))| -> Result<(u64, usize)> {
            let bytes = upload(agent, host, &repos[0], hex, path.as_ref())?;
            for repo in &repos[1..] {
                let url = format!(
                    "http://{host}/v2/{repo}/blobs/uploads/?mount=sha256:{hex}&from={}",
                    repos[0]
                );
                let status = agent.post(url).send_empty()?.status().as_u16();
                if status != 201 {
                    bail!("mount of {hex} into {repo}: {status}");
                }
            }
            Ok((bytes, repos.len() - 1))
        })
        .try_reduce(|| (0, 0), |a, b| Ok((a.0 + b.0, a.1 + b.1)))?;
    Ok(Placed {
        blobs: blobs.len(),
        bytes,
        mounts,
    })
}

/// One image of a skopeo dir folder.
struct ImageDir {
    repo: String,
    tag: String,
    /// `manifest.json`: the image's manifest (or index).
    top: PathBuf,
    /// An index's instances: (hex digest, file).
    instances: Vec<(String, PathBuf)>,
    blobs: Vec<(String, PathBuf)>,
}

/// Every `REPO:TAG` folder under `dir` that holds a `manifest.json`, sorted.
fn image_dirs(dir: &Path) -> Result<Vec<ImageDir>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("manifest.json").is_file() {
            let rel = d.strip_prefix(dir)?.to_str().context("path")?;
            let (repo, tag) = rel.rsplit_once(':').context("REPO:TAG folder")?;
            let mut image = ImageDir {
                repo: repo.to_string(),
                tag: tag.to_string(),
                top: d.join("manifest.json"),
                instances: Vec::new(),
                blobs: Vec::new(),
            };
            for e in std::fs::read_dir(&d)? {
                let p = e?.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if is_hex_digest(name) {
                    image.blobs.push((name.to_string(), p.clone()));
                } else if let Some(hex) = name.strip_suffix(".manifest.json") {
                    if is_hex_digest(hex) {
                        image.instances.push((hex.to_string(), p.clone()));
                    }
                }
            }
            out.push(image);
            continue;
        }
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort_by(|a, b| (&a.repo, &a.tag).cmp(&(&b.repo, &b.tag)));
    Ok(out)
}

/// PUT of a manifest file under `reference` (a tag, or `sha256:HEX`).
fn put_manifest(
    agent: &ureq::Agent,
    host: &str,
    repo: &str,
    reference: &str,
    path: &Path,
) -> Result<()> {
    let bytes = std::fs::read(path)?;
    let m: Value = serde_json::from_slice(&bytes)?;
    let media_type = match m["mediaType"].as_str() {
        Some(t) => t.to_string(),
        None if m.get("manifests").is_some() => "application/vnd.oci.image.index.v1+json".into(),
        None => "application/vnd.oci.image.manifest.v1+json".into(),
    };
    let resp = agent
        .put(format!("http://{host}/v2/{repo}/manifests/{reference}"))
        .header("Content-Type", &media_type)
        .send(&bytes[..])?;
    if resp.status().as_u16() != 201 {
        bail!("PUT manifest {repo}:{reference}: {}", resp.status());
    }
    Ok(())
}

/// The images of `dir` into namespace `HOST/NS`: blobs (uploaded once, mounted elsewhere),
/// then instances by digest, then tags.
pub fn put_images(dir: &Path, to: &str, jobs: usize) -> Result<()> {
    let (host, ns) = to.split_once('/').context("HOST/NS")?;
    let images = image_dirs(dir)?;
    let repo_of = |i: &ImageDir| format!("{ns}/{}", i.repo);
    // Per blob: its file and the repositories that need it, in order.
    let mut blobs: BTreeMap<String, (&Path, Vec<String>)> = BTreeMap::new();
    let mut instances: BTreeMap<(String, &str), &Path> = BTreeMap::new();
    for i in &images {
        for (hex, path) in &i.blobs {
            let (_, repos) = blobs.entry(hex.clone()).or_insert((path, Vec::new()));
            if !repos.contains(&repo_of(i)) {
                repos.push(repo_of(i));
            }
        }
        for (hex, path) in &i.instances {
            instances.insert((repo_of(i), hex), path);
        }
    }
    let agent = agent();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let started = Instant::now();
    let placed = pool.install(|| place_blobs(&agent, host, blobs))?;
    pool.install(|| {
        instances.par_iter().try_for_each(|((repo, hex), path)| {
            put_manifest(&agent, host, repo, &format!("sha256:{hex}"), path)
        })
    })?;
    // One tag per image folder.
    pool.install(|| {
        images
            .par_iter()
            .try_for_each(|i| put_manifest(&agent, host, &repo_of(i), &i.tag, &i.top))
    })?;
    println!(
        "{}",
        json!({"images": images.len(), "blobs": placed.blobs, "mounts": placed.mounts,
               "instances": instances.len(), "tags": images.len(),
               "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}
