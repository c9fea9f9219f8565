//! `mirror.platform.graph: true`: a graph-data container image for an in-cluster OpenShift
//! Update Service (OSUS), as oc-mirror builds it.
//!
//! The update service's graph-data tarball (`--graph-data-url`, default
//! `https://api.openshift.com/api/upgrades_info/graph-data`) is unpacked under
//! `/var/lib/cincinnati-graph-data/` in one new layer on top of a base image with a shell
//! (`--graph-base-image`, default `registry.access.redhat.com/ubi9/ubi:latest`, amd64), whose
//! command copies the data where the update service's init container expects it. The image goes
//! to `<target>/<namespace>/openshift/graph-image:latest`; `ferry-unpack` writes an
//! `UpdateService` naming it by digest.

use std::io::Read;

use anyhow::{bail, Context, Result};
use ferry_format::index::{GraphData, Image};
use ferry_format::manifest::Manifest;
use ferry_format::Digest;
use ferry_registry::{Client, Reference, Repo};

use crate::derive::{append_layer, gzip_layer, platform_image, tar_header};
use crate::plan::{PlannedBlob, PlannedManifest};

pub const DEFAULT_GRAPH_DATA_URL: &str = "https://api.openshift.com/api/upgrades_info/graph-data";
pub const DEFAULT_BASE_IMAGE: &str = "registry.access.redhat.com/ubi9/ubi:latest";
/// Repository of the graph-data image (under the target namespace).
pub const GRAPH_REPOSITORY: &str = "openshift/graph-image";
pub const GRAPH_DATA_DIR: &str = "var/lib/cincinnati-graph-data";
/// The command the update service's init container runs.
pub const GRAPH_COMMAND: [&str; 3] = [
    "/bin/bash",
    "-c",
    "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data",
];
/// Largest graph-data tarball accepted (the real one is a few MB).
const MAX_TARBALL: u64 = 256 * 1024 * 1024;

/// The graph-data image, ready for the plan.
#[derive(Debug)]
pub struct Built {
    pub image: Image,
    pub record: GraphData,
    pub manifests: Vec<(Digest, PlannedManifest)>,
    pub inline: Vec<(Digest, Vec<u8>)>,
    pub blobs: Vec<(Digest, PlannedBlob)>,
}

/// Fetches the tarball, rebuilds it under [`GRAPH_DATA_DIR`] and derives the image.
pub fn build(client: &Client, url: &str, base: &str) -> Result<Built> {
    let tarball = client
        .get_url(
            url,
            "application/gzip, application/x-gzip, */*",
            MAX_TARBALL,
        )
        .with_context(|| format!("fetching the graph data from {url}"))?
        .with_context(|| format!("the graph data at {url} answered 404"))?;
    let (layer, diff_id, files) = graph_layer(&tarball)
        .with_context(|| format!("the graph data from {url} is not a gzip tar"))?;
    let reference: Reference = base.parse().context("--graph-base-image")?;
    let repo = Repo::new(reference.registry.clone(), reference.repository.clone());
    let top = client
        .get_manifest(&repo, &reference.manifest_reference())
        .with_context(|| format!("the graph base image {base}"))?;
    let (m, media_type) = Manifest::parse(&top.bytes, &top.media_type)?;
    let img = match m {
        Manifest::Index { manifests } => {
            let child = crate::derive::child_for(&manifests, "amd64")
                .with_context(|| format!("the graph base image {base} has no linux/amd64 image"))?;
            let f = client.get_manifest(&repo, &child.digest.to_string())?;
            platform_image(
                client,
                &repo,
                f.digest,
                &f.bytes,
                &child.media_type,
                child.platform.clone(),
            )?
        }
        Manifest::Image { .. } => platform_image(
            client,
            &repo,
            top.digest.clone(),
            &top.bytes,
            &media_type,
            None,
        )?,
    };
    let source = url.to_string();
    let derived = append_layer(
        &img,
        &repo,
        layer,
        &diff_id,
        "ferry: OpenShift Update Service graph data",
        |config| {
            config["config"]["Cmd"] = serde_json::json!(GRAPH_COMMAND);
            config["config"]["Entrypoint"] = serde_json::Value::Null;
            if !config["config"]["Labels"].is_object() {
                config["config"]["Labels"] = serde_json::json!({});
            }
            config["config"]["Labels"]["org.ferry.graph-data.source"] = source.into();
        },
    )?;
    let image = Image {
        source: format!("graph data from {url}"),
        registry: reference.registry.clone(),
        repository: GRAPH_REPOSITORY.to_string(),
        tags: vec!["latest".into()],
        digest: derived.digest.clone(),
        media_type: derived.manifest.media_type.clone(),
        reason: "graph-data image for the OpenShift Update Service".into(),
        platforms: vec![],
        target_repository: None,
    };
    Ok(Built {
        record: GraphData {
            url: url.to_string(),
            registry: reference.registry.clone(),
            repository: GRAPH_REPOSITORY.to_string(),
            digest: derived.digest.clone(),
            files,
        },
        image,
        manifests: vec![(derived.digest, derived.manifest)],
        inline: derived.inline,
        blobs: derived.carried,
    })
}

/// Re-tars the tarball's directories and regular files under [`GRAPH_DATA_DIR`] with fixed
/// headers (links, devices and names with `..` are left out). Returns (gzip layer, diff id,
/// number of files).
pub fn graph_layer(tarball: &[u8]) -> Result<(Vec<u8>, Digest, u32)> {
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let mut out = tar::Builder::new(Vec::new());
    let mut h = tar_header(0, 0o755, tar::EntryType::Directory);
    out.append_data(&mut h, format!("{GRAPH_DATA_DIR}/"), std::io::empty())?;
    let mut files = 0u32;
    for entry in input.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.to_string_lossy().into_owned();
        let parts: Vec<&str> = raw
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if parts.is_empty() || parts.contains(&"..") {
            continue;
        }
        let name = format!("{GRAPH_DATA_DIR}/{}", parts.join("/"));
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            let mut h = tar_header(0, 0o755, tar::EntryType::Directory);
            out.append_data(&mut h, format!("{name}/"), std::io::empty())?;
        } else if kind.is_file() {
            let mut data = Vec::with_capacity(entry.size() as usize);
            (&mut entry).take(MAX_TARBALL).read_to_end(&mut data)?;
            let mut h = tar_header(data.len() as u64, 0o644, tar::EntryType::Regular);
            out.append_data(&mut h, &name, &data[..])?;
            files += 1;
        }
    }
    if files == 0 {
        bail!("it holds no file");
    }
    let tar = out.into_inner()?;
    let (gz, diff_id) = gzip_layer(&tar);
    Ok((gz, diff_id, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn graph_layer_is_rooted_and_deterministic() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("channels/stable-4.15.yaml", &b"name: stable-4.15\n"[..]),
            ("version", b"1.2.3"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(12345);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&b.into_inner().unwrap()).unwrap();
        let tarball = gz.finish().unwrap();
        let (a, da, n) = graph_layer(&tarball).unwrap();
        let (b2, db, _) = graph_layer(&tarball).unwrap();
        assert_eq!((a.clone(), da.clone()), (b2, db));
        assert_eq!(n, 2);
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&a[..]));
        for e in ar.entries().unwrap() {
            names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        assert!(
            names.contains(&"var/lib/cincinnati-graph-data/channels/stable-4.15.yaml".to_string()),
            "{names:?}"
        );
        assert!(graph_layer(b"not gzip").is_err());
    }
}
