//! `ferry-pack list`: what an image set config could name, read by the code that plans.
//!
//! - [`releases`]: the versions of a release channel (from the update service or a saved
//!   graph), with the one a channel entry without `minVersion`/`maxVersion` packs;
//! - [`operators`]: the packages of an operator catalog (the catalog image's file-based
//!   catalog, read as planning reads it), and for one package its channels and bundles.
//!
//! Results are typed (serialised for `--json`); the binary prints them.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use ferry_registry::Client;
use serde::Serialize;

use crate::catalog::{fbc, image};
use crate::release::graph::{self, Graph, Selector};
use crate::release::{self, ReleaseOptions};

/// The versions of one channel for one architecture.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseListing {
    pub channel: String,
    pub architecture: String,
    /// Sorted by version, oldest first.
    pub releases: Vec<ListedRelease>,
    /// The version a channel entry without minVersion/maxVersion packs (the newest).
    pub default_selection: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedRelease {
    pub version: String,
    /// The release image, by digest.
    pub payload: String,
    /// Risks of conditional update edges that lead to this version.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditional_risks: Vec<String>,
}

/// The channels a saved graph names (the update service answers one channel at a time).
pub fn channels(client: &Client, opts: &ReleaseOptions, arch: &str) -> Result<Vec<String>> {
    if opts.graph_files.is_empty() {
        bail!(
            "name a channel with --channel (the update service answers one channel at a time; \
             channels look like stable-4.16, fast-4.16, eus-4.16); with --graph-file the \
             channels of a saved graph are listed"
        );
    }
    let g = release::load_graph(client, opts, "", arch, "ocp")?;
    Ok(g.known_channels())
}

/// Lists a channel's versions as the planner reads them.
pub fn releases(
    client: &Client,
    opts: &ReleaseOptions,
    channel: &str,
    arch: &str,
    kind: &str,
) -> Result<ReleaseListing> {
    if !release::ARCHITECTURES.contains(&arch) {
        bail!(
            "--arch {arch} is not a release architecture ({})",
            release::ARCHITECTURES.join(", ")
        );
    }
    let g = release::load_graph(client, opts, channel, arch, kind)?;
    let selector = Selector {
        channel: channel.to_string(),
        ..Selector::default()
    };
    // The same selection a config entry `- name: CHANNEL` makes (and its errors, with the
    // nearest channel names when this one is unknown).
    let default = graph::select(&g, &selector, arch)?;
    let releases = g
        .channel_nodes(channel)
        .into_iter()
        .map(|i| ListedRelease {
            version: g.nodes[i].version.to_string(),
            payload: g.nodes[i].payload.clone(),
            conditional_risks: risks_into(&g, i),
        })
        .collect();
    Ok(ReleaseListing {
        channel: channel.to_string(),
        architecture: arch.to_string(),
        releases,
        default_selection: default
            .nodes
            .iter()
            .map(|&i| g.nodes[i].version.to_string())
            .collect(),
    })
}

fn risks_into(g: &Graph, node: usize) -> Vec<String> {
    let risks: BTreeSet<String> = g
        .conditional
        .iter()
        .filter(|(_, to, _)| *to == node)
        .flat_map(|(_, _, r)| r.iter().cloned())
        .collect();
    risks.into_iter().collect()
}

/// The packages of a catalog, or one package's channels.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorListing {
    pub catalog: String,
    /// The catalog image's digest (what a config naming it by tag packs today).
    pub digest: String,
    pub packages: Vec<ListedPackage>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedPackage {
    pub name: String,
    pub default_channel: String,
    pub channels: Vec<ListedChannel>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedChannel {
    pub name: String,
    /// The bundle a package entry without versions packs from this channel.
    pub head: Option<String>,
    /// Why the channel has no single head (then a config cannot name it without versions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_problem: Option<String>,
    /// Its bundles, by version where they have one (only with `--package`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<ListedBundle>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedBundle {
    pub name: String,
    pub version: Option<String>,
}

/// Reads a catalog image's file-based catalog (the platform `arch` selects of a multi-arch
/// catalog, the first when empty) and lists its packages; with `package`, that package only,
/// with every channel's bundles.
pub fn operators(
    client: &Client,
    catalog: &str,
    package: Option<&str>,
    arch: &[String],
) -> Result<OperatorListing> {
    let reference = image::CatalogRef::parse(catalog).context("in --catalog")?;
    let source = image::open(client, &reference, arch)?;
    let work = tempfile::Builder::new().prefix("ferry-list-").tempdir()?;
    image::extract_configs(client, &source, work.path())?;
    let cat = fbc::Catalog::read_dir(work.path())
        .with_context(|| format!("reading the file-based catalog in /{}", source.configs_dir))?;
    let all = cat.packages();
    let names: Vec<&str> = match package {
        Some(p) if all.contains_key(p) => vec![p],
        Some(p) => {
            let known: Vec<String> = all.keys().map(|k| k.to_string()).collect();
            bail!(
                "catalog {catalog} has no package {p:?}; nearest: {}",
                graph::nearest(p, &known).join(", ")
            );
        }
        None => all.keys().copied().collect(),
    };
    let groups = cat.groups();
    let packages = names
        .into_iter()
        .map(|name| {
            let group = groups.get(name);
            let mut channels: Vec<ListedChannel> = group
                .map(|g| g.channels.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|ch| listed_channel(ch, group, package.is_some()))
                .collect();
            channels.sort_by(|a, b| a.name.cmp(&b.name));
            ListedPackage {
                name: name.to_string(),
                default_channel: all[name].value["defaultChannel"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                channels,
            }
        })
        .collect();
    Ok(OperatorListing {
        catalog: catalog.to_string(),
        digest: source.digest.to_string(),
        packages,
    })
}

fn listed_channel(ch: &fbc::Doc, group: Option<&fbc::Group>, bundles: bool) -> ListedChannel {
    let entries = fbc::entries(ch);
    let (head, head_problem) = match fbc::head(&entries) {
        Ok(e) => (Some(e.name.clone()), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let bundles = if bundles {
        let version = |name: &str| {
            group
                .and_then(|g| g.bundles.iter().find(|b| b.name() == name))
                .and_then(|b| fbc::bundle_version(b))
        };
        let mut v: Vec<(Option<semver::Version>, String)> = entries
            .iter()
            .map(|e| (version(&e.name), e.name.clone()))
            .collect();
        v.sort();
        v.into_iter()
            .map(|(version, name)| ListedBundle {
                name,
                version: version.map(|v| v.to_string()),
            })
            .collect()
    } else {
        Vec::new()
    };
    ListedChannel {
        name: ch.name().to_string(),
        head,
        head_problem,
        bundles,
    }
}
