//! ferry-bench: helpers for `bench/run.sh` (never used by the shipped binaries).
//!
//!   ferry-bench seed HOST PROFILE OUTDIR     push a profile's images; write isc.yaml, sync.yaml, profile.json
//!   ferry-bench put-raw DIR HOST/REPO JOBS   the push ceiling: every blob of a skopeo dir folder
//!                                            PUT once into one repository, in parallel, no checks
//!   ferry-bench put-raw-images DIR HOST/NS JOBS  the same images as the registry must hold them:
//!                                            blobs uploaded once and mounted, instances, tags
//!   ferry-bench get-raw HOST PROFILE OUTDIR JOBS  the pack ceiling: every blob of the profile
//!                                            fetched with one plain GET each, in parallel, to disk
//!   ferry-bench throttle UPSTREAM MIB_S MS    a WAN-like hop: MIB_S MiB/s per connection, MS
//!                                            before each request; prints its 127.0.0.1:PORT
//!   ferry-bench scale IMAGES BLOBS OUTDIR KEY  ferry's write_archive on a synthetic catalog-scale
//!                                            plan (every blob in memory: nothing to download)
//!   ferry-bench hash THREADS FILE...         blake3 throughput of all bytes spread over THREADS
//!   ferry-bench hash-cost FILE...            seconds one core spends on sha256 and on blake3 of
//!                                            all bytes (hashing only: reads are not counted)
//!   ferry-bench index BLOBS                  layout, index save and index load+validate for BLOBS blobs
//!   ferry-bench catalog-gen DIR PKGS BUNDLES  a synthetic file-based catalog: PKGS packages, BUNDLES
//!                                            bundles in all, each with a ~12 KiB base64 bundle object
//!   ferry-bench catalog-filter DIR [full]    ferry's catalog parse + filter (catalog alone, or full)

mod raw_get;
mod raw_put;
mod scale;
mod throttle;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ferry_format::Digest;
use ferry_registry::{Client, ClientOptions, Repo};
use rayon::prelude::*;
use serde_json::json;
use sha2::Digest as _;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") if args.len() == 4 => seed(&args[1], &args[2], Path::new(&args[3])),
        Some("put-raw") if args.len() == 4 => {
            raw_put::put_blobs(Path::new(&args[1]), &args[2], args[3].parse()?)
        }
        Some("put-raw-images") if args.len() == 4 => {
            raw_put::put_images(Path::new(&args[1]), &args[2], args[3].parse()?)
        }
        Some("get-raw") if args.len() == 5 => {
            let refs: Vec<(String, String)> = profile(&args[2])?
                .into_iter()
                .map(|s| (s.repo, s.tag))
                .collect();
            raw_get::get_raw(&args[1], &refs, Path::new(&args[3]), args[4].parse()?)
        }
        Some("throttle") if args.len() == 4 => throttle::run(
            &args[1],
            args[2].parse::<u64>()? << 20,
            std::time::Duration::from_millis(args[3].parse()?),
        ),
        Some("scale") if args.len() == 5 => scale::run(
            args[1].parse()?,
            args[2].parse()?,
            Path::new(&args[3]),
            Path::new(&args[4]),
        ),
        Some("hash") if args.len() >= 3 => hash(args[1].parse()?, &args[2..]),
        Some("hash-cost") if args.len() >= 2 => hash_cost(&args[1..]),
        Some("index") if args.len() == 2 => index_scaling(args[1].parse()?),
        Some("catalog-gen") if args.len() == 4 => {
            catalog_gen(Path::new(&args[1]), args[2].parse()?, args[3].parse()?)
        }
        Some("catalog-filter") if args.len() >= 2 => catalog_filter(
            Path::new(&args[1]),
            args.get(2).map(String::as_str) == Some("full"),
        ),
        _ => bail!("usage: see the top of bench/src/main.rs"),
    }
}

/// Deterministic incompressible bytes: word k of stream `seed` is splitmix64(seed, k), so any
/// range can be produced without the bytes before it.
fn fill(seed: u64, pos: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let p = pos + i as u64;
        let mut z = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add((p / 8).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        *b = z.to_le_bytes()[(p % 8) as usize];
    }
}

struct Noise {
    seed: u64,
    pos: u64,
    len: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min((self.len - self.pos) as usize);
        fill(self.seed, self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

#[derive(Clone)]
struct Layer {
    seed: u64,
    size: u64,
}

struct Spec {
    repo: String,
    tag: String,
    /// One entry per platform (architecture, layers); more than one makes an OCI index.
    platforms: Vec<(String, Vec<Layer>)>,
}

const MIB: u64 = 1024 * 1024;

fn profile(name: &str) -> Result<Vec<Spec>> {
    let l = |seed, size| Layer { seed, size };
    let mut specs = Vec::new();
    match name {
        "small" => {
            let bases = [l(1, 48 * MIB), l(2, 32 * MIB), l(3, 24 * MIB)];
            for i in 0..40u64 {
                let mut amd = vec![bases[(i % 3) as usize].clone()];
                if i % 2 == 0 {
                    amd.push(bases[((i + 1) % 3) as usize].clone());
                }
                amd.push(l(100 + i, 5 * MIB / 2));
                amd.push(l(200 + i, MIB));
                let mut platforms = vec![("amd64".to_string(), amd)];
                if i % 5 == 0 {
                    platforms.push((
                        "arm64".to_string(),
                        vec![bases[0].clone(), l(300 + i, 6 * MIB)],
                    ));
                }
                specs.push(Spec {
                    repo: format!("small/r{:02}", i / 4),
                    tag: format!("t{}", i % 4),
                    platforms,
                });
            }
        }
        "large" => {
            specs.push(Spec {
                repo: "large/huge".into(),
                tag: "v1".into(),
                platforms: vec![("amd64".into(), vec![l(1, 1100 * MIB)])],
            });
            for i in 0..10u64 {
                specs.push(Spec {
                    repo: format!("large/app{i}"),
                    tag: "v1".into(),
                    platforms: vec![(
                        "amd64".into(),
                        vec![l(2, 64 * MIB), l(10 + i, 40 * MIB), l(30 + i, 40 * MIB)],
                    )],
                });
            }
        }
        "huge" | "wan" => {
            // One layer larger than FAT32's 4 GiB file limit beside the small profile's
            // release-like set: the case where one blob dominates and one stream limits.
            let big = if name == "huge" {
                5 * 1024 * MIB
            } else {
                1024 * MIB
            };
            specs.push(Spec {
                repo: "huge/big".into(),
                tag: "v1".into(),
                platforms: vec![("amd64".into(), vec![l(9, big)])],
            });
            specs.extend(profile("small")?);
        }
        "many" => {
            for i in 0..500u64 {
                specs.push(Spec {
                    repo: format!("many/m{:03}", i / 10),
                    tag: format!("t{}", i % 10),
                    platforms: vec![(
                        "amd64".into(),
                        (0..20).map(|j| l(1000 + i * 20 + j, 2048)).collect(),
                    )],
                });
            }
        }
        other => bail!("unknown profile {other:?} (small, large, many, huge, wan)"),
    }
    Ok(specs)
}

fn layer_digest(l: &Layer) -> Digest {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0;
    while pos < l.size {
        let n = buf.len().min((l.size - pos) as usize);
        fill(l.seed, pos, &mut buf[..n]);
        h.update(&buf[..n]);
        pos += n as u64;
    }
    let d: [u8; 32] = h.finalize().into();
    Digest::from_sha256_bytes(&d)
}

fn put_layer(c: &Client, repo: &Repo, l: &Layer, d: &Digest) -> Result<()> {
    if c.blob_exists(repo, d)? {
        return Ok(());
    }
    if l.size <= 8 * MIB {
        let mut b = vec![0u8; l.size as usize];
        fill(l.seed, 0, &mut b);
        c.upload_blob_bytes(repo, d, &b, None)?;
    } else {
        let mut r = Noise {
            seed: l.seed,
            pos: 0,
            len: l.size,
        };
        c.upload_blob_stream(repo, d, l.size, &mut r, None, |_| Ok(()))?;
    }
    Ok(())
}

/// Pushes one platform's image; returns (manifest digest, size).
fn push_platform(
    c: &Client,
    repo: &Repo,
    arch: &str,
    layers: &[Layer],
    digests: &BTreeMap<u64, Digest>,
) -> Result<(Digest, usize)> {
    for l in layers {
        put_layer(c, repo, l, &digests[&l.seed])?;
    }
    let diff: Vec<String> = layers
        .iter()
        .map(|l| digests[&l.seed].to_string())
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff},
        "config": {"Labels": {"repo": repo.name}},
    }))?;
    let cd = Digest::of(&config);
    if !c.blob_exists(repo, &cd)? {
        c.upload_blob_bytes(repo, &cd, &config, None)?;
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": ferry_format::manifest::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digests[&l.seed].to_string(), "size": l.size,
        })).collect::<Vec<_>>(),
    }))?;
    let md = Digest::of(&manifest);
    c.put_manifest(
        repo,
        &md.to_string(),
        ferry_format::manifest::OCI_MANIFEST,
        &manifest,
    )?;
    Ok((md, manifest.len()))
}

fn seed(host: &str, name: &str, out: &Path) -> Result<()> {
    let specs = profile(name)?;
    let c = Client::new(ClientOptions {
        retries: 2,
        ..ClientOptions::default()
    })?;
    let layers: BTreeMap<u64, Layer> = specs
        .iter()
        .flat_map(|s| s.platforms.iter().flat_map(|(_, ls)| ls.iter().cloned()))
        .map(|l| (l.seed, l))
        .collect();
    let digests: BTreeMap<u64, Digest> = layers
        .par_iter()
        .map(|(s, l)| (*s, layer_digest(l)))
        .collect();
    let unique_bytes: u64 = layers.values().map(|l| l.size).sum();
    // Shared layers first, into the first repository that uses them, so that parallel pushes
    // below find them (and mount-free uploads do not race on the same blob).
    specs.par_iter().try_for_each(|s| -> Result<()> {
        let repo = Repo::new(host, s.repo.clone());
        let mut children = Vec::new();
        for (arch, ls) in &s.platforms {
            children.push((arch.clone(), push_platform(&c, &repo, arch, ls, &digests)?));
        }
        let (top_type, top) = if children.len() == 1 {
            (ferry_format::manifest::OCI_MANIFEST, None)
        } else {
            let index = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": ferry_format::manifest::OCI_INDEX,
                "manifests": children.iter().map(|(arch, (d, size))| json!({
                    "mediaType": ferry_format::manifest::OCI_MANIFEST, "digest": d.to_string(), "size": size,
                    "platform": {"architecture": arch, "os": "linux"},
                })).collect::<Vec<_>>(),
            }))?;
            (ferry_format::manifest::OCI_INDEX, Some(index))
        };
        match top {
            Some(index) => c.put_manifest(&repo, &s.tag, top_type, &index)?,
            None => {
                let (d, _) = &children[0].1;
                let bytes = c.get_manifest(&repo, &d.to_string())?.bytes;
                c.put_manifest(&repo, &s.tag, top_type, &bytes)?;
            }
        }
        Ok(())
    })?;
    std::fs::create_dir_all(out)?;
    let mut isc = String::from("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n");
    let mut by_repo: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &specs {
        isc.push_str(&format!("    - name: {host}/{}:{}\n", s.repo, s.tag));
        by_repo.entry(&s.repo).or_default().push(&s.tag);
    }
    std::fs::write(out.join("isc.yaml"), isc)?;
    let mut sync = format!("{host}:\n  tls-verify: false\n  images:\n");
    for (repo, tags) in by_repo {
        sync.push_str(&format!("    {repo}: [{}]\n", tags.join(", ")));
    }
    std::fs::write(out.join("sync.yaml"), sync)?;
    let images: usize = specs.iter().map(|s| s.platforms.len()).sum();
    std::fs::write(
        out.join("profile.json"),
        serde_json::to_vec_pretty(&json!({
            "profile": name, "references": specs.len(), "platformImages": images,
            "uniqueLayers": layers.len(), "uniqueLayerBytes": unique_bytes,
        }))?,
    )?;
    println!(
        "seeded {name}: {} references, {} platform images, {} unique layers, {} MiB",
        specs.len(),
        images,
        layers.len(),
        unique_bytes / MIB
    );
    Ok(())
}

/// Raw blake3 throughput: all bytes of the files, in 16 MiB chunks spread over `threads`.
fn hash(threads: usize, paths: &[String]) -> Result<()> {
    let mut chunks = Vec::new();
    let mut files = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let f = File::open(p)?;
        let len = f.metadata()?.len();
        let mut at = 0;
        while at < len {
            chunks.push((i, at, (len - at).min(16 * MIB)));
            at += 16 * MIB;
        }
        files.push(f);
    }
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let bytes: u64 = pool.install(|| {
        chunks
            .par_iter()
            .map(|(i, at, len)| {
                let mut buf = vec![0u8; *len as usize];
                files[*i].read_exact_at(&mut buf, *at).expect("read");
                std::hint::black_box(blake3::hash(&buf));
                *len
            })
            .sum()
    });
    println!(
        "{}",
        json!({"bytes": bytes, "threads": threads, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}

/// What the hashes ferry-pack must compute cost one core: sha256 and blake3 over every byte of
/// `paths`, each timed apart from the reads (so that the figure is the hashing alone, as it
/// would run on bytes just received).
fn hash_cost(paths: &[String]) -> Result<()> {
    let (mut sha_s, mut b3_s, mut bytes) = (0f64, 0f64, 0u64);
    let mut sha = sha2::Sha256::new();
    let mut b3 = blake3::Hasher::new();
    let mut buf = vec![0u8; MIB as usize];
    for p in paths {
        let mut f = File::open(p).with_context(|| format!("open {p}"))?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let t = Instant::now();
            sha.update(&buf[..n]);
            sha_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            b3.update(&buf[..n]);
            b3_s += t.elapsed().as_secs_f64();
            bytes += n as u64;
        }
    }
    std::hint::black_box((sha.finalize(), b3.finalize()));
    println!(
        "{}",
        json!({"bytes": bytes, "sha256Seconds": sha_s, "blake3Seconds": b3_s})
    );
    Ok(())
}

/// Scaling of the index for `n` blobs: layout, save, load + validate.
fn index_scaling(n: usize) -> Result<()> {
    use ferry_format::index::{Blob, File as IFile, Image, Index, ManifestRecord, Part, Volume};
    use ferry_format::layout::{self, Content};
    let digests: Vec<Digest> = (0..n as u64)
        .map(|i| Digest::of(&i.to_le_bytes()))
        .collect();
    let mut sorted = digests.clone();
    sorted.sort();
    let t = Instant::now();
    let items: Vec<Content> = sorted
        .iter()
        .enumerate()
        .map(|(i, d)| Content::Blob {
            digest: d.clone(),
            size: 1000 + (i as u64 % 5000),
        })
        .collect();
    let l = layout::plan(&items, 4 << 30)?;
    let plan_s = t.elapsed().as_secs_f64();
    let manifest = Digest::of(b"manifest");
    let mut blobs: Vec<Blob> = sorted
        .iter()
        .zip(l.items())
        .map(|(d, ps)| Blob {
            digest: d.clone(),
            size: ps[0].size,
            blake3: "0".repeat(64),
            parts: vec![Part {
                volume: ps[0].volume,
                offset: ps[0].offset,
                size: ps[0].size,
                blake3: None,
            }],
            base: None,
            missing: false,
        })
        .collect();
    let mpos = blobs
        .binary_search_by(|b| b.digest.cmp(&manifest))
        .unwrap_err();
    blobs.insert(
        mpos,
        Blob {
            digest: manifest.clone(),
            size: 0,
            blake3: "0".repeat(64),
            parts: vec![],
            base: None,
            missing: false,
        },
    );
    let index = Index {
        format: "ferry-archive".into(),
        format_version: "1.1".into(),
        archive_id: "0".repeat(32),
        created: "2026-01-01T00:00:00Z".into(),
        tool: "bench".into(),
        volume_size: 4 << 30,
        volumes: l
            .volume_sizes
            .iter()
            .enumerate()
            .map(|(i, s)| Volume {
                name: layout::volume_name(i),
                size: *s,
                blake3: "0".repeat(64),
            })
            .collect(),
        images: vec![Image {
            source: "bench/x:1".into(),
            registry: "bench".into(),
            repository: "x".into(),
            tags: vec!["1".into()],
            digest: manifest.clone(),
            media_type: ferry_format::manifest::OCI_MANIFEST.into(),
            reason: "bench".into(),
            platforms: vec![],
            target_repository: None,
        }],
        manifests: vec![ManifestRecord {
            digest: manifest,
            media_type: ferry_format::manifest::OCI_MANIFEST.into(),
            children: vec![],
            blobs: sorted,
        }],
        blobs,
        files: Vec::<IFile>::new(),
        stream: None,
        parents: vec![],
        incomplete: false,
        failures: vec![],
        releases: vec![],
        catalogs: vec![],
        graph_data: None,
        charts: vec![],
        attachments: vec![],
        sigstore_keys: vec![],
        parity: None,
        samples: None,
    };
    let t = Instant::now();
    let bytes = index.to_vec();
    let save_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = Index::from_slice(&bytes)?;
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let entries = ferry_format::tiling::entries(&back);
    for (v, e) in entries.iter().enumerate() {
        ferry_format::tiling::check_tiling(e, back.volumes[v].size).map_err(anyhow::Error::msg)?;
    }
    let tiling_s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"blobs": n, "indexBytes": bytes.len(), "planSeconds": plan_s, "saveSeconds": save_s, "loadValidateSeconds": load_s, "tilingSeconds": tiling_s})
    );
    Ok(())
}

/// Writes a synthetic catalog shaped like the real ones: per package a directory with one JSON
/// stream (package, two channels with replaces chains and skips, bundles with an olm.package
/// property, a base64 olm.bundle.object of ~12 KiB, and related images).
fn catalog_gen(dir: &Path, packages: usize, bundles: usize) -> Result<()> {
    let per = bundles.div_ceil(packages);
    let mut total = 0u64;
    for p in 0..packages {
        let name = format!("operator-{p:04}");
        let pdir = dir.join(&name);
        std::fs::create_dir_all(&pdir)?;
        let mut out = std::io::BufWriter::new(File::create(pdir.join("catalog.json"))?);
        let mut docs =
            vec![json!({"schema": "olm.package", "name": name, "defaultChannel": "stable"})];
        let names: Vec<String> = (0..per).map(|b| format!("{name}.v1.{b}.0")).collect();
        for ch in ["stable", "fast"] {
            let entries: Vec<serde_json::Value> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let mut e = json!({"name": n});
                    if i > 0 {
                        e["replaces"] = names[i - 1].clone().into();
                    }
                    if i > 1 {
                        e["skips"] = json!([names[i - 2]]);
                    }
                    e
                })
                .collect();
            docs.push(
                json!({"schema": "olm.channel", "package": name, "name": ch, "entries": entries}),
            );
        }
        for (i, n) in names.iter().enumerate() {
            let mut blob = vec![0u8; 9 * 1024];
            fill((p * 100_000 + i) as u64, 0, &mut blob);
            let data = base64_encode(&blob);
            docs.push(json!({
                "schema": "olm.bundle", "name": n, "package": name,
                "image": format!("quay.io/example/{name}-bundle@sha256:{}", hex64(p, i, 0)),
                "properties": [
                    {"type": "olm.package", "value": {"packageName": name, "version": format!("1.{i}.0")}},
                    {"type": "olm.gvk", "value": {"group": "example.com", "kind": "Thing", "version": "v1"}},
                    {"type": "olm.bundle.object", "value": {"data": data}}
                ],
                "relatedImages": [
                    {"name": "operator", "image": format!("quay.io/example/{name}@sha256:{}", hex64(p, i, 1))},
                    {"name": "operand", "image": format!("quay.io/example/{name}-operand@sha256:{}", hex64(p, i, 2))}
                ]
            }));
        }
        for d in docs {
            let bytes = serde_json::to_vec_pretty(&d)?;
            total += bytes.len() as u64 + 1;
            std::io::Write::write_all(&mut out, &bytes)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
    }
    println!(
        "{packages} packages, {} bundles, {total} bytes",
        per * packages
    );
    Ok(())
}

fn hex64(p: usize, i: usize, k: usize) -> String {
    let d = Digest::of(format!("{p}/{i}/{k}").as_bytes());
    d.hex().to_string()
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len() * 4 / 3 + 4);
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Parse + filter + write back the kept catalog, as ferry-pack does for one catalog.
fn catalog_filter(dir: &Path, full: bool) -> Result<()> {
    let started = Instant::now();
    let cat = ferry_pack::catalog::fbc::Catalog::read_dir(dir)?;
    let parsed = started.elapsed();
    let op = ferry_pack::config::Operator {
        catalog: "example.com/catalog:1".into(),
        full: Some(full),
        ..Default::default()
    };
    let filtered = ferry_pack::catalog::filter::filter(&cat, &op)?;
    let files = filtered.catalog.to_files(dir)?;
    let bytes: usize = files.values().map(Vec::len).sum();
    println!(
        "{{\"docs\": {}, \"kept_bundles\": {}, \"parse_s\": {:.3}, \"total_s\": {:.3}, \"written_bytes\": {bytes}}}",
        cat.docs.len(),
        filtered.bundles().len(),
        parsed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
