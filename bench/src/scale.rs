//! Catalog scale without a registry: a plan of IMAGES images naming BLOBS small blobs in all
//! (each image its own 40-odd blobs and a config), every blob held in memory, so that ferry's
//! real `write_archive` lays out, writes, indexes and signs it with nothing to download.
//! Prints the phases' seconds; peak RSS is measured around the process by bench/run.sh.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ferry_format::index::Image;
use ferry_format::Digest;
use ferry_pack::pack::{self, PackOptions};
use ferry_pack::plan::{Plan, PlannedBlob, PlannedManifest};
use ferry_registry::{Client, ClientOptions, Repo};
use serde_json::json;

fn plan(images: usize, blobs: usize) -> Result<Plan> {
    let mut p = Plan::default();
    let per = blobs / images;
    let mut next = 0usize;
    for k in 0..images {
        let repo = format!("catalog/op{:04}", k / 10);
        let from = std::sync::Arc::new(Repo::new("bench.invalid", repo.clone()));
        let mut layers = Vec::new();
        for _ in 0..per {
            let bytes = format!("blob {next}").into_bytes();
            next += 1;
            let d = Digest::of(&bytes);
            let size = bytes.len() as u64;
            p.blobs.insert(
                d.clone(),
                PlannedBlob {
                    size,
                    from: from.clone(),
                },
            );
            p.inline.insert(d.clone(), bytes);
            layers.push((d, size));
        }
        let (config, layers) = layers.split_first().expect("blobs per image");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": ferry_format::manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0.to_string(), "size": config.1},
            "layers": layers.iter().map(|(d, s)| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": s,
            })).collect::<Vec<_>>(),
        }))?;
        let md = Digest::of(&manifest);
        // As the planner records it: config and layers, no spare capacity.
        let named: Vec<Digest> = std::iter::once(config)
            .chain(layers)
            .map(|(d, _)| d.clone())
            .collect();
        p.manifests.insert(
            md.clone(),
            PlannedManifest {
                bytes: manifest,
                media_type: ferry_format::manifest::OCI_MANIFEST.into(),
                children: Vec::new(),
                blobs: named,
            },
        );
        p.images.push(Image {
            source: format!("bench.invalid/{repo}:v{k}"),
            registry: "bench.invalid".into(),
            repository: repo,
            tags: vec![format!("v{k}")],
            digest: md,
            media_type: ferry_format::manifest::OCI_MANIFEST.into(),
            reason: "bench".into(),
            platforms: Vec::new(),
            target_repository: None,
        });
    }
    p.images.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(p)
}

/// Plans `images` images and `blobs` blobs, then writes their archive into `out` with `key`.
pub fn run(images: usize, blobs: usize, out: &Path, key: &Path) -> Result<()> {
    let t = Instant::now();
    let p = plan(images, blobs)?;
    let plan_s = t.elapsed().as_secs_f64();
    let plan_rss = rss_mib();
    let opts = PackOptions {
        to: out.to_path_buf(),
        volume_size: 4 << 30,
        parity: Default::default(),
        jobs: 2,
        split: Default::default(),
        sign_key: ferry_format::sign::load_private_key(key, None)?,
        quiet: true,
        bases: Default::default(),
        stream: "bench".into(),
        continue_on_error: false,
    };
    let client = Client::new(ClientOptions::default())?;
    let s = pack::write_archive(&client, p, &opts)?;
    let counts: BTreeMap<&str, usize> = [
        ("images", s.images),
        ("manifests", s.manifests),
        ("blobs", s.blobs),
    ]
    .into();
    println!(
        "{}",
        json!({"counts": counts, "syntheticPlanSeconds": plan_s, "rssWithPlanMiB": plan_rss, "phases": s.phases,
               "indexBytes": s.index_bytes, "writeSeconds": s.seconds})
    );
    Ok(())
}

/// This process's resident memory now (VmRSS), in MiB: what the synthetic plan alone holds.
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
