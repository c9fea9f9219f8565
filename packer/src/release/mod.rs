//! OpenShift releases: from `mirror.platform` to the images, signatures and index records an
//! archive needs.
//!
//! - [`graph`]: the update graph and the channel selection rules;
//! - [`payload`]: reading a release image's component list out of its layers;
//! - [`bootimages`]: the KubeVirt container disk the payload names (`kubeVirtContainer`);
//! - [`signature`]: fetching and verifying release signatures.
//!
//! [`plan_releases`] runs them in order: select versions per channel and architecture, read
//! every selected payload, fetch and verify its signatures, and return the images to carry
//! (release images by digest, tagged `<version>-<arch>` at the target, and every component by
//! digest) for the ordinary image planner.

pub mod bootimages;
pub mod graph;
pub mod graphdata;
pub mod payload;
pub mod signature;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use ferry_format::index::{Failure, FailureKind, Release, SignatureCheck};
use ferry_format::manifest::Manifest;
use ferry_format::Digest;
use ferry_registry::{Client, Reference, Repo};
use rayon::prelude::*;

use crate::config::{Channel, PlatformSection};
use crate::plan::Wanted;
use graph::{Graph, Selector};
use signature::Keyring;

/// The public OpenShift update service.
pub const DEFAULT_GRAPH_URL: &str = "https://api.openshift.com/api/upgrades_info/v1/graph";
/// OKD's update service.
pub const DEFAULT_OKD_GRAPH_URL: &str = "https://amd64.origin.releases.ci.openshift.org/graph";
/// Architectures a channel can be mirrored for.
pub const ARCHITECTURES: &[&str] = &["amd64", "arm64", "ppc64le", "s390x", "multi"];
/// Largest update graph accepted (the real ones are a few hundred KB).
const MAX_GRAPH_BYTES: u64 = 64 * 1024 * 1024;

/// How releases are found and checked.
#[derive(Debug, Default)]
pub struct ReleaseOptions {
    /// Update service URL (`--graph-url`, else `UPDATE_URL_OVERRIDE`, else the default).
    pub graph_url: Option<String>,
    /// Saved graphs (`--graph-file [ARCH=]FILE`): when any is given, no update service is asked.
    pub graph_files: Vec<(Option<String>, PathBuf)>,
    /// Signature store URL (`--signature-url`, else `OCP_SIGNATURE_URL`, else the default).
    pub signature_url: Option<String>,
    /// Trusted release keys; required unless `skip_signatures`.
    pub keyring: Option<Keyring>,
    pub skip_signatures: bool,
    /// Graph-data tarball URL and base image (`platform.graph: true`).
    pub graph_data_url: Option<String>,
    pub graph_base_image: Option<String>,
    /// Record a failing release and go on (`--continue-on-error`).
    pub keep_going: bool,
    pub quiet: bool,
}

/// What the releases add to a plan.
#[derive(Debug, Default)]
pub struct Planned {
    /// Release images and their components, for [`crate::plan::resolve_all`].
    pub wanted: Vec<Wanted>,
    pub releases: Vec<Release>,
    /// Signature bytes by digest.
    pub inline: BTreeMap<Digest, Vec<u8>>,
    pub notes: Vec<String>,
    pub failures: Vec<Failure>,
    /// The graph-data image (`platform.graph: true`).
    pub graph: Option<graphdata::Built>,
}

/// A release chosen from a graph or named by pullspec, before its payload is read.
#[derive(Debug, Clone)]
struct Chosen {
    version: Option<String>,
    arch: Option<String>,
    reference: Reference,
    channels: BTreeSet<String>,
}

/// The name of an architecture in release tags (`4.15.3-x86_64`).
pub fn tag_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    }
}

/// Whether the config asks for any release (or the graph-data image).
pub fn wants_releases(p: &PlatformSection) -> bool {
    !p.channels.is_empty() || p.release.is_some() || p.graph == Some(true)
}

/// Plans every release `mirror.platform` asks for: the graph-data image, the releases chosen
/// from channels (or named by pullspec), each payload read and its signatures verified.
pub fn plan_releases(
    client: &Client,
    platform: &PlatformSection,
    opts: &ReleaseOptions,
) -> Result<Planned> {
    require_keyring(opts)?;
    let arches = architectures(platform)?;
    let mut out = Planned::default();
    if platform.graph == Some(true) {
        out.graph = Some(graph_data(client, opts)?);
    }
    let mut chosen = Vec::new();
    for ch in &platform.channels {
        choose_from_channel(client, ch, &arches, opts, &mut chosen, &mut out.notes)?;
    }
    // A release named by pullspec: no graph.
    if let Some(pullspec) = &platform.release {
        let reference: Reference = pullspec.parse().context("in mirror.platform.release")?;
        chosen.push(Chosen {
            version: None,
            arch: None,
            reference,
            channels: BTreeSet::new(),
        });
    }
    let store = signature_store(opts);
    let kubevirt = platform.kube_virt_container == Some(true);
    let results: Vec<(Chosen, Result<ReadRelease>)> = chosen
        .into_par_iter()
        .map(|c| {
            let r = read_release(client, &c, &store, kubevirt, opts);
            (c, r)
        })
        .collect();
    let mut errors = Vec::new();
    let mut components = BTreeSet::new();
    for (c, r) in results {
        match r {
            Ok(rr) => add_release(&mut out, &c, rr, &mut components, opts),
            Err(e) => {
                let label = format!(
                    "release {} ({})",
                    c.version.as_deref().unwrap_or(&c.reference.to_string()),
                    c.arch.as_deref().unwrap_or("from pullspec")
                );
                errors.push(format!("{label}: {e:#}"));
                out.failures.push(Failure {
                    kind: FailureKind::Release,
                    subject: label,
                    reason: format!("{e:#}"),
                    images: vec![],
                });
            }
        }
    }
    if !errors.is_empty() && !opts.keep_going {
        bail!(
            "{} release(s) cannot be packed:\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    out.releases
        .sort_by(|a, b| (&a.architecture, &a.version).cmp(&(&b.architecture, &b.version)));
    Ok(out)
}

/// Signatures are verified unless skipped on purpose, so a keyring is needed.
fn require_keyring(opts: &ReleaseOptions) -> Result<()> {
    if opts.skip_signatures || opts.keyring.is_some() {
        return Ok(());
    }
    bail!(
        "release signatures are verified against OpenPGP public keys, and none were given: \
         pass --release-keyring FILE (or set OCP_SIGNATURE_VERIFICATION_PK). Red Hat's release \
         key (fingerprint 567E347AD0044ADE55BA8A5F199E2F91FD431D51) is published at \
         https://access.redhat.com/security/team/key and is in every payload's \
         release-manifests/0000_90_cluster-update-keys_configmap.yaml, which ferry also reads. \
         --skip-release-signatures packs without them (the cluster will then refuse the \
         release unless its signature policy is relaxed)"
    )
}

/// `mirror.platform.architectures`, checked (default amd64).
fn architectures(platform: &PlatformSection) -> Result<Vec<String>> {
    let mut arches: Vec<String> = if platform.architectures.is_empty() {
        vec!["amd64".to_string()]
    } else {
        platform.architectures.clone()
    };
    arches.dedup();
    if let Some(a) = arches.iter().find(|a| !ARCHITECTURES.contains(&a.as_str())) {
        bail!(
            "mirror.platform.architectures: {a:?} is not one of {}",
            ARCHITECTURES.join(", ")
        );
    }
    Ok(arches)
}

/// Builds the graph-data image (`platform.graph: true`).
fn graph_data(client: &Client, opts: &ReleaseOptions) -> Result<graphdata::Built> {
    let url = opts
        .graph_data_url
        .as_deref()
        .unwrap_or(graphdata::DEFAULT_GRAPH_DATA_URL);
    let base = opts
        .graph_base_image
        .as_deref()
        .unwrap_or(graphdata::DEFAULT_BASE_IMAGE);
    let built = graphdata::build(client, url, base).context("mirror.platform.graph: true")?;
    if !opts.quiet {
        eprintln!(
            "graph data: {} files from {url} on {base} -> {}@{}",
            built.record.files, built.record.repository, built.record.digest
        );
    }
    Ok(built)
}

/// The selection rules of one channel entry.
fn selector(ch: &Channel) -> Result<Selector> {
    let version = |what: &str, v: &Option<String>| {
        v.as_deref()
            .map(|v| graph::parse_version(&format!("channel {} {what}", ch.name), v))
            .transpose()
    };
    Ok(Selector {
        channel: ch.name.clone(),
        min: version("minVersion", &ch.min_version)?,
        max: version("maxVersion", &ch.max_version)?,
        shortest_path: ch.shortest_path == Some(true),
        full: ch.full == Some(true),
    })
}

/// Adds the releases one channel selects, per architecture, to `chosen` (a release chosen by
/// several channels is one entry that names them all).
fn choose_from_channel(
    client: &Client,
    ch: &Channel,
    arches: &[String],
    opts: &ReleaseOptions,
    chosen: &mut Vec<Chosen>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let kind = ch.kind.as_deref().unwrap_or("ocp");
    if kind != "ocp" && kind != "okd" {
        bail!("channel {}: type {kind:?} is neither ocp nor okd", ch.name);
    }
    let selector = selector(ch)?;
    if selector.shortest_path && selector.full {
        notes.push(format!(
            "channel {}: full: true takes every version, so shortestPath is ignored",
            ch.name
        ));
    }
    for arch in arches {
        let g = load_graph(client, opts, &ch.name, arch, kind)?;
        let sel = graph::select(&g, &selector, arch)?;
        notes.extend(sel.notes);
        for i in sel.nodes {
            let node = &g.nodes[i];
            let reference: Reference = node.payload.parse().with_context(|| {
                format!("graph node {} has a bad payload pullspec", node.version)
            })?;
            if reference.digest.is_none() {
                bail!(
                    "graph node {} names its payload by tag ({}); expected a digest",
                    node.version,
                    node.payload
                );
            }
            let version = node.version.to_string();
            let same = |c: &&mut Chosen| {
                c.version.as_deref() == Some(&version) && c.arch.as_deref() == Some(arch)
            };
            match chosen.iter_mut().find(same) {
                Some(c) => {
                    c.channels.insert(ch.name.clone());
                }
                None => chosen.push(Chosen {
                    version: Some(version),
                    arch: Some(arch.clone()),
                    reference,
                    channels: BTreeSet::from([ch.name.clone()]),
                }),
            }
        }
    }
    Ok(())
}

/// The signature store: `--signature-url`, else `OCP_SIGNATURE_URL`, else the default.
fn signature_store(opts: &ReleaseOptions) -> String {
    opts.signature_url
        .clone()
        .or_else(|| {
            std::env::var("OCP_SIGNATURE_URL")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| signature::DEFAULT_SIGNATURE_URL.to_string())
}

/// Adds a read release to the plan: its image (tagged `<version>-<arch>`), its components
/// (each once across releases), its signatures and its record.
fn add_release(
    out: &mut Planned,
    c: &Chosen,
    rr: ReadRelease,
    components: &mut BTreeSet<String>,
    opts: &ReleaseOptions,
) {
    let r = &rr.release;
    if !opts.quiet {
        let sigs = if opts.skip_signatures {
            "signatures SKIPPED".to_string()
        } else {
            format!("{} signature(s) verified", rr.signatures.len())
        };
        eprintln!(
            "release {} ({}): {} components, {sigs}",
            r.version, r.architecture, r.components
        );
    }
    let mut reference = c.reference.clone();
    reference.tag = Some(format!("{}-{}", r.version, tag_arch(&r.architecture)));
    reference.digest = Some(r.digest.clone());
    out.wanted.push(Wanted {
        source: format!("{}/{}@{}", r.registry, r.repository, r.digest),
        reference,
        reason: format!("release {} ({})", r.version, r.architecture),
        platforms: Vec::new(),
        target: Default::default(),
    });
    for (name, reference) in rr.components {
        let source = reference.to_string();
        if components.insert(source.clone()) {
            out.wanted.push(Wanted {
                source,
                reference,
                reason: format!(
                    "release {} ({}) component {name}",
                    r.version, r.architecture
                ),
                platforms: Vec::new(),
                target: Default::default(),
            });
        }
    }
    for (arch, reference) in rr.kubevirt {
        let source = reference.to_string();
        if components.insert(source.clone()) {
            out.wanted.push(Wanted {
                source,
                reference,
                reason: format!(
                    "release {} ({}) KubeVirt container disk ({arch})",
                    r.version, r.architecture
                ),
                platforms: Vec::new(),
                target: Default::default(),
            });
        }
    }
    out.notes.extend(rr.notes);
    out.inline.extend(rr.signatures);
    out.releases.push(rr.release);
}

/// Fetches the release signatures `signature-1`, `-2`, ... from the store until one is
/// missing, each verified against the keyring. Fails if none verifies, or if a trusted key
/// signed another release under this one's name.
fn fetch_signatures(
    client: &Client,
    store: &str,
    digest: &Digest,
    ring: &Keyring,
) -> Result<Verified> {
    let mut signatures = Vec::new();
    let mut verified_by = Vec::new();
    let mut problems = Vec::new();
    for n in 1..=signature::MAX_SIGNATURES {
        let url = signature::signature_url(store, digest, n);
        let accept = "application/pgp-signature, */*";
        let Some(bytes) = client
            .get_url(&url, accept, signature::MAX_SIGNATURE_BYTES)
            .with_context(|| format!("fetching signature-{n}"))?
        else {
            break;
        };
        match ring.verify(&bytes, digest) {
            Ok(v) => {
                verified_by.push(v.fingerprint);
                signatures.push((Digest::of(&bytes), bytes));
            }
            Err(e) => problems.push(format!("signature-{n} ({url}): {e:#}")),
        }
    }
    if signatures.is_empty() {
        if problems.is_empty() {
            bail!(
                "the signature store has no signature for {digest} ({}); without one the cluster \
                 will not accept the release (--skip-release-signatures packs it anyway)",
                signature::signature_url(store, digest, 1)
            );
        }
        bail!("no signature of {digest} verifies: {}", problems.join("; "));
    }
    if let Some(bad) = problems.iter().find(|p| p.contains("not this release")) {
        // A trusted key signed another digest under this one's name: the store is wrong.
        bail!("the signature store is inconsistent: {bad}");
    }
    verified_by.sort();
    verified_by.dedup();
    Ok(Verified {
        signatures,
        verified_by,
    })
}

/// The release signatures that verified (bytes by digest, in store order), and the
/// fingerprints of the keys that made them.
#[derive(Default)]
struct Verified {
    signatures: Vec<(Digest, Vec<u8>)>,
    verified_by: Vec<String>,
}

/// A release whose payload and signatures were read.
struct ReadRelease {
    release: Release,
    components: Vec<(String, Reference)>,
    /// KubeVirt container disks by CoreOS architecture (`kubeVirtContainer: true`).
    kubevirt: Vec<(String, Reference)>,
    notes: Vec<String>,
    signatures: Vec<(Digest, Vec<u8>)>,
}

fn read_release(
    client: &Client,
    c: &Chosen,
    store: &str,
    kubevirt: bool,
    opts: &ReleaseOptions,
) -> Result<ReadRelease> {
    let r = &c.reference;
    let repo = Repo::new(r.registry.clone(), r.repository.clone());
    let top = client.get_manifest(&repo, &r.manifest_reference())?;
    let (m, _) = Manifest::parse(&top.bytes, &top.media_type)?;
    let (arch, payload) = match m {
        Manifest::Index { manifests } => {
            // A multi-architecture payload: every child lists the same components (each a
            // manifest list), so reading one is enough; amd64 first when present.
            let child = crate::derive::child_for(&manifests, "amd64")
                .or_else(|| manifests.first())
                .ok_or_else(|| anyhow!("the release manifest list is empty"))?;
            let fetched = client.get_manifest(&repo, &child.digest.to_string())?;
            let p = payload::discover(client, &repo, &fetched.bytes, &fetched.media_type)?;
            ("multi".to_string(), p)
        }
        Manifest::Image { config, .. } => {
            let p = payload::discover(client, &repo, &top.bytes, &top.media_type)?;
            let arch = match &c.arch {
                Some(a) => a.clone(),
                None => image_architecture(client, &repo, &config.digest)?,
            };
            (arch, p)
        }
    };
    if let Some(a) = &c.arch {
        if a != &arch {
            bail!("the graph lists it for {a}, but its payload is {arch}");
        }
    }
    if let Some(v) = &c.version {
        if v != &payload.version {
            bail!(
                "the graph says version {v}, but the payload's image-references says {}",
                payload.version
            );
        }
    }
    let Disks { disks, notes } = if kubevirt {
        kubevirt_disks(&payload, &arch)?
    } else {
        Disks::default()
    };
    let mut component_digests: Vec<Digest> = payload
        .components
        .iter()
        .chain(&disks)
        .filter_map(|(_, r)| r.digest.clone())
        .collect();
    component_digests.sort();
    component_digests.dedup();
    let mut component_repositories: Vec<String> = payload
        .components
        .iter()
        .chain(&disks)
        .map(|(_, r)| format!("{}/{}", r.registry, r.repository))
        .collect();
    component_repositories.sort();
    component_repositories.dedup();

    let Verified {
        signatures,
        verified_by,
    } = if opts.skip_signatures {
        Verified::default()
    } else {
        let ring = opts.keyring.as_ref().expect("checked by plan_releases");
        fetch_signatures(client, store, &top.digest, ring)?
    };
    Ok(ReadRelease {
        release: Release {
            version: payload.version.clone(),
            channels: c.channels.iter().cloned().collect(),
            architecture: arch,
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            digest: top.digest.clone(),
            components: payload.components.len() as u32,
            component_digests,
            component_repositories,
            signatures: signatures.iter().map(|(d, _)| d.clone()).collect(),
            signature_check: if opts.skip_signatures {
                SignatureCheck::Skipped
            } else {
                SignatureCheck::Verified
            },
            verified_by,
        },
        components: payload.components,
        kubevirt: disks,
        notes,
        signatures,
    })
}

/// The KubeVirt container disks a payload names for its architecture (every architecture of a
/// `multi` payload). A payload that names none is a note, not a failure: older releases have
/// no disk, as oc-mirror warns and goes on.
fn kubevirt_disks(payload: &payload::Payload, arch: &str) -> Result<Disks> {
    let none = |why: &str| {
        format!(
            "release {} ({arch}): {why}; kubeVirtContainer carries nothing for it",
            payload.version
        )
    };
    let Some(bytes) = &payload.boot_images else {
        let note = none(&format!("the payload has no {}", bootimages::BOOT_IMAGES));
        return Ok(Disks {
            disks: vec![],
            notes: vec![note],
        });
    };
    let boot = bootimages::BootImages::parse(bytes)
        .with_context(|| format!("reading {}", bootimages::BOOT_IMAGES))?;
    let wanted: Vec<String> = if arch == "multi" {
        boot.kubevirt_arches().map(String::from).collect()
    } else {
        vec![tag_arch(arch).to_string()]
    };
    let mut disks = Vec::new();
    let mut notes = Vec::new();
    for a in wanted {
        match boot.kubevirt(&a)? {
            Some(r) => disks.push((a, r)),
            None => notes.push(none(&format!(
                "the boot images name no KubeVirt disk for {a}"
            ))),
        }
    }
    Ok(Disks { disks, notes })
}

/// The KubeVirt container disks of one release (by CoreOS architecture), and what was not found.
#[derive(Default)]
struct Disks {
    disks: Vec<(String, Reference)>,
    notes: Vec<String>,
}

/// The `architecture` of an image's config blob.
fn image_architecture(client: &Client, repo: &Repo, config: &Digest) -> Result<String> {
    use std::io::Read;
    let body = client.get_blob(repo, config)?;
    let mut bytes = Vec::new();
    body.reader.take(4 * 1024 * 1024).read_to_end(&mut bytes)?;
    if &Digest::of(&bytes) != config {
        bail!("image config {config} does not match its digest");
    }
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        architecture: String,
    }
    let c: Config = serde_json::from_slice(&bytes).context("image config is not JSON")?;
    if c.architecture.is_empty() {
        bail!("image config {config} names no architecture");
    }
    Ok(c.architecture)
}

/// Reads the graph of one channel and architecture: from the saved files when any were given
/// (no network at all), else from the update service.
pub(crate) fn load_graph(
    client: &Client,
    opts: &ReleaseOptions,
    channel: &str,
    arch: &str,
    kind: &str,
) -> Result<Graph> {
    if !opts.graph_files.is_empty() {
        let files: Vec<&PathBuf> = opts
            .graph_files
            .iter()
            .filter(|(a, _)| a.as_deref().is_none_or(|a| a == arch))
            .map(|(_, p)| p)
            .collect();
        if files.is_empty() {
            bail!("no --graph-file for architecture {arch} (give it as --graph-file {arch}=FILE)");
        }
        let mut g = Graph::default();
        for f in files {
            let bytes = std::fs::read(f)
                .with_context(|| format!("cannot read --graph-file {}", f.display()))?;
            g.merge(
                Graph::parse(&bytes).with_context(|| format!("in --graph-file {}", f.display()))?,
            );
        }
        return Ok(g);
    }
    let base = opts
        .graph_url
        .clone()
        .or_else(|| {
            std::env::var("UPDATE_URL_OVERRIDE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| {
            if kind == "okd" {
                DEFAULT_OKD_GRAPH_URL.to_string()
            } else {
                DEFAULT_GRAPH_URL.to_string()
            }
        });
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}channel={channel}&arch={arch}");
    let bytes = client
        .get_url(&url, "application/json", MAX_GRAPH_BYTES)
        .with_context(|| format!("asking the update service for channel {channel} ({arch})"))?
        .ok_or_else(|| {
            anyhow!("the update service at {base} answered 404 for channel {channel} ({arch})")
        })?;
    Graph::parse(&bytes).with_context(|| format!("graph from {url}"))
}
