//! The update graph (Cincinnati JSON) and the rules that turn a `mirror.platform.channels[]`
//! entry into a list of release versions.
//!
//! A graph is what an update service answers to `GET <url>?channel=NAME&arch=ARCH` with
//! `Accept: application/json`: `nodes` (version, payload pullspec, metadata), `edges` (pairs of
//! node indexes, from → to) and `conditionalEdges` (edges an update service only offers to
//! clusters that do not match a known risk).
//!
//! Selection rules (docs/releases.md has an example of each):
//! - no `minVersion`/`maxVersion`, no `full`: the channel's latest version;
//! - a range (`minVersion` and/or `maxVersion`; a missing bound is the channel's lowest or
//!   latest version): every version of the channel inside it;
//! - a range with `shortestPath: true`: only the versions on the shortest upgrade path from
//!   the lower bound to the upper;
//! - `full: true`: every version of the channel (inside the range, if one is given).
//!
//! Conditional edges are real upgrade paths that carry a declared risk. For `shortestPath`
//! they count only when no path of unconditional edges exists: the path uses as few
//! conditional edges as possible, then as few hops as possible, and the plan names the risks
//! it had to accept.

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use anyhow::{bail, Context, Result};
use semver::Version;
use serde::Deserialize;

/// Metadata key that lists the channels a release belongs to.
pub const CHANNELS_KEY: &str = "io.openshift.upgrades.graph.release.channels";

/// A parsed update graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Unconditional edges, by node index.
    pub edges: Vec<(usize, usize)>,
    /// Conditional edges with the names of their risks.
    pub conditional: Vec<(usize, usize, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub version: Version,
    /// Pullspec of the release image, by digest.
    pub payload: String,
    /// Channels from the node metadata; `None` when the graph does not say.
    pub channels: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawGraph {
    #[serde(default)]
    nodes: Vec<RawNode>,
    #[serde(default)]
    edges: Vec<(usize, usize)>,
    #[serde(default, rename = "conditionalEdges")]
    conditional_edges: Vec<RawConditional>,
}

#[derive(Deserialize)]
struct RawNode {
    version: String,
    payload: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawConditional {
    #[serde(default)]
    edges: Vec<RawEdge>,
    #[serde(default)]
    risks: Vec<RawRisk>,
}

#[derive(Deserialize)]
struct RawEdge {
    from: String,
    to: String,
}

#[derive(Deserialize)]
struct RawRisk {
    #[serde(default)]
    name: String,
}

impl Graph {
    /// Parses Cincinnati JSON. Edges that point outside the node list are an error; conditional
    /// edges naming unknown versions are ignored (the service lists them across channels).
    pub fn parse(bytes: &[u8]) -> Result<Graph> {
        let raw: RawGraph = serde_json::from_slice(bytes)
            .context("not an update graph (Cincinnati JSON with nodes and edges)")?;
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for n in raw.nodes {
            let version = Version::parse(&n.version).with_context(|| {
                format!("node version {:?} is not a semantic version", n.version)
            })?;
            let channels = n
                .metadata
                .get(CHANNELS_KEY)
                .map(|c| c.split(',').map(|s| s.trim().to_string()).collect());
            nodes.push(Node {
                version,
                payload: n.payload,
                channels,
            });
        }
        for &(a, b) in &raw.edges {
            if a >= nodes.len() || b >= nodes.len() {
                bail!(
                    "edge [{a}, {b}] points outside the {} nodes of the graph",
                    nodes.len()
                );
            }
        }
        let by_version: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.version.to_string(), i))
            .collect();
        let mut conditional = Vec::new();
        for c in raw.conditional_edges {
            let risks: Vec<String> = c.risks.into_iter().map(|r| r.name).collect();
            for e in c.edges {
                if let (Some(&a), Some(&b)) = (by_version.get(&e.from), by_version.get(&e.to)) {
                    conditional.push((a, b, risks.clone()));
                }
            }
        }
        Ok(Graph {
            nodes,
            edges: raw.edges,
            conditional,
        })
    }

    /// Adds another graph's nodes and edges (several saved graphs of one architecture).
    pub fn merge(&mut self, other: Graph) {
        let mut map = HashMap::new();
        for (i, n) in other.nodes.into_iter().enumerate() {
            let existing = self
                .nodes
                .iter()
                .position(|m| m.version == n.version && m.payload == n.payload);
            let at = match existing {
                Some(j) => j,
                None => {
                    self.nodes.push(n);
                    self.nodes.len() - 1
                }
            };
            map.insert(i, at);
        }
        for (a, b) in other.edges {
            let e = (map[&a], map[&b]);
            if !self.edges.contains(&e) {
                self.edges.push(e);
            }
        }
        for (a, b, r) in other.conditional {
            self.conditional.push((map[&a], map[&b], r));
        }
    }

    /// Indexes of the nodes in `channel`, sorted by version.
    pub fn channel_nodes(&self, channel: &str) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| match &self.nodes[i].channels {
                Some(c) => c.iter().any(|c| c == channel),
                None => true,
            })
            .collect();
        v.sort_by(|&a, &b| self.nodes[a].version.cmp(&self.nodes[b].version));
        v
    }

    /// Every channel named by any node, sorted (for "did you mean" messages).
    pub fn known_channels(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| n.channels.clone())
            .flatten()
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What one channel entry asks for.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub channel: String,
    pub min: Option<Version>,
    pub max: Option<Version>,
    pub shortest_path: bool,
    pub full: bool,
}

/// The outcome of a selection: node indexes sorted by version, and notes for the user.
#[derive(Debug, Default)]
pub struct Selection {
    pub nodes: Vec<usize>,
    pub notes: Vec<String>,
}

/// Parses a version from the config, saying what is wrong with it.
pub fn parse_version(field: &str, v: &str) -> Result<Version> {
    Version::parse(v.trim()).with_context(|| {
        format!("{field} {v:?} is not a full release version (write it like 4.15.3)")
    })
}

/// Applies the channel rules to a graph (see the module docs).
pub fn select(graph: &Graph, sel: &Selector, arch: &str) -> Result<Selection> {
    let nodes = graph.channel_nodes(&sel.channel);
    if nodes.is_empty() {
        let known = graph.known_channels();
        let hint = if known.is_empty() {
            "the update service returned no release at all: check the channel name \
             (channels look like stable-4.16, fast-4.16, candidate-4.16, eus-4.16)"
                .to_string()
        } else {
            format!(
                "channels named by this graph: {}",
                nearest(&sel.channel, &known).join(", ")
            )
        };
        bail!("channel {} has no release for {arch}; {hint}", sel.channel);
    }
    let find = |v: &Version, what: &str| -> Result<usize> {
        nodes
            .iter()
            .copied()
            .find(|&i| &graph.nodes[i].version == v)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{what} {v} is not in channel {} for {arch}; nearest versions there: {}",
                    sel.channel,
                    nearest_versions(graph, &nodes, v).join(", ")
                )
            })
    };
    let lowest = nodes[0];
    let latest = *nodes.last().expect("not empty");
    let lo = match &sel.min {
        Some(v) => find(v, "minVersion")?,
        None => lowest,
    };
    let hi = match &sel.max {
        Some(v) => find(v, "maxVersion")?,
        None => latest,
    };
    if graph.nodes[lo].version > graph.nodes[hi].version {
        bail!(
            "minVersion {} is above maxVersion {} in channel {}",
            graph.nodes[lo].version,
            graph.nodes[hi].version,
            sel.channel
        );
    }
    let ranged = sel.min.is_some() || sel.max.is_some();
    let in_range = |i: &usize| {
        let v = &graph.nodes[*i].version;
        v >= &graph.nodes[lo].version && v <= &graph.nodes[hi].version
    };
    let mut out = Selection::default();
    if sel.full {
        out.nodes = nodes.iter().copied().filter(in_range).collect();
    } else if sel.shortest_path && ranged {
        let (path, risks) = shortest_path(graph, &nodes, lo, hi).with_context(|| {
            format!(
                "no upgrade path from {} to {} in channel {} for {arch}",
                graph.nodes[lo].version, graph.nodes[hi].version, sel.channel
            )
        })?;
        if !risks.is_empty() {
            out.notes.push(format!(
                "channel {} ({arch}): the only path from {} to {} takes conditional updates with risks {}",
                sel.channel,
                graph.nodes[lo].version,
                graph.nodes[hi].version,
                risks.join(", ")
            ));
        }
        out.nodes = path;
        out.nodes
            .sort_by(|&a, &b| graph.nodes[a].version.cmp(&graph.nodes[b].version));
    } else if ranged {
        out.nodes = nodes.iter().copied().filter(in_range).collect();
    } else {
        out.nodes = vec![latest];
    }
    Ok(out)
}

/// Dijkstra over the channel's nodes: a conditional edge costs more than any path of
/// unconditional ones, so it is taken only when unavoidable. Ties go to the lower versions,
/// which keeps the result deterministic.
fn shortest_path(
    graph: &Graph,
    nodes: &[usize],
    from: usize,
    to: usize,
) -> Result<(Vec<usize>, Vec<String>)> {
    const CONDITIONAL: u64 = 1 << 20;
    let member: std::collections::HashSet<usize> = nodes.iter().copied().collect();
    // node -> (next node, cost, risks of a conditional edge)
    type Edge<'a> = (usize, u64, Option<&'a Vec<String>>);
    let mut adj: HashMap<usize, Vec<Edge>> = HashMap::new();
    for &(a, b) in &graph.edges {
        if member.contains(&a) && member.contains(&b) {
            adj.entry(a).or_default().push((b, 1, None));
        }
    }
    for (a, b, risks) in &graph.conditional {
        if member.contains(a) && member.contains(b) {
            adj.entry(*a)
                .or_default()
                .push((*b, CONDITIONAL, Some(risks)));
        }
    }
    for v in adj.values_mut() {
        v.sort_by(|x, y| graph.nodes[x.0].version.cmp(&graph.nodes[y.0].version));
    }
    let mut dist: HashMap<usize, u64> = HashMap::from([(from, 0)]);
    let mut prev: HashMap<usize, (usize, Option<&Vec<String>>)> = HashMap::new();
    let mut heap = BinaryHeap::from([std::cmp::Reverse((0u64, from))]);
    while let Some(std::cmp::Reverse((d, n))) = heap.pop() {
        if n == to {
            break;
        }
        if dist.get(&n).is_some_and(|&best| d > best) {
            continue;
        }
        for &(m, w, risks) in adj.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
            let nd = d + w;
            if dist.get(&m).is_none_or(|&old| nd < old) {
                dist.insert(m, nd);
                prev.insert(m, (n, risks));
                heap.push(std::cmp::Reverse((nd, m)));
            }
        }
    }
    if !dist.contains_key(&to) {
        bail!("the graph has no edges leading there");
    }
    let mut path = vec![to];
    let mut risks = Vec::new();
    let mut at = to;
    while at != from {
        let (p, r) = prev[&at];
        if let Some(r) = r {
            risks.extend(r.iter().cloned());
        }
        path.push(p);
        at = p;
    }
    path.reverse();
    risks.sort();
    risks.dedup();
    Ok((path, risks))
}

/// Up to three existing versions closest to `v` (below and above).
fn nearest_versions(graph: &Graph, nodes: &[usize], v: &Version) -> Vec<String> {
    let pos = nodes.partition_point(|&i| &graph.nodes[i].version < v);
    let lo = pos.saturating_sub(2);
    let hi = (pos + 2).min(nodes.len());
    let mut out: Vec<String> = nodes[lo..hi]
        .iter()
        .map(|&i| graph.nodes[i].version.to_string())
        .collect();
    let latest = graph.nodes[*nodes.last().expect("not empty")]
        .version
        .to_string();
    if !out.contains(&latest) {
        out.push(format!("{latest} (latest)"));
    }
    out
}

/// The names closest to `name` by edit distance (at most five).
pub fn nearest(name: &str, known: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = known.iter().map(|k| (distance(name, k), k)).collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, k)| k.clone()).collect()
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real() -> Graph {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/realdata/release/graph-amd64-stable-4.13.json");
        Graph::parse(&std::fs::read(p).unwrap()).unwrap()
    }

    fn versions(g: &Graph, s: &Selection) -> Vec<String> {
        s.nodes
            .iter()
            .map(|&i| g.nodes[i].version.to_string())
            .collect()
    }

    fn sel(min: Option<&str>, max: Option<&str>, shortest: bool, full: bool) -> Selector {
        Selector {
            channel: "stable-4.13".into(),
            min: min.map(|v| Version::parse(v).unwrap()),
            max: max.map(|v| Version::parse(v).unwrap()),
            shortest_path: shortest,
            full,
        }
    }

    /// A small graph: 1.0.0 → 1.0.1 → 1.0.2 → 1.0.3, a shortcut 1.0.0 → 1.0.2, and a
    /// conditional 1.0.0 → 1.0.3 (risk R).
    fn small() -> Graph {
        Graph::parse(
            br#"{"nodes":[
              {"version":"1.0.0","payload":"r@sha256:0","metadata":{}},
              {"version":"1.0.1","payload":"r@sha256:1","metadata":{}},
              {"version":"1.0.2","payload":"r@sha256:2","metadata":{}},
              {"version":"1.0.3","payload":"r@sha256:3","metadata":{}}],
             "edges":[[0,1],[1,2],[2,3],[0,2]],
             "conditionalEdges":[{"edges":[{"from":"1.0.0","to":"1.0.3"}],"risks":[{"name":"R"}]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn real_graph_parses_with_its_conditional_edges() {
        let g = real();
        assert_eq!(g.nodes.len(), 98);
        assert_eq!(g.edges.len(), 1171);
        assert!(!g.conditional.is_empty());
        assert!(g.known_channels().contains(&"stable-4.13".to_string()));
    }

    #[test]
    fn latest_only_without_bounds() {
        let g = real();
        let s = select(&g, &sel(None, None, false, false), "amd64").unwrap();
        assert_eq!(versions(&g, &s), ["4.13.43"]);
    }

    #[test]
    fn range_gives_every_version_inside() {
        let g = real();
        let s = select(
            &g,
            &sel(Some("4.13.10"), Some("4.13.15"), false, false),
            "amd64",
        )
        .unwrap();
        let v = versions(&g, &s);
        assert_eq!(v.first().unwrap(), "4.13.10");
        assert_eq!(v.last().unwrap(), "4.13.15");
        let expected = g
            .channel_nodes("stable-4.13")
            .iter()
            .filter(|&&i| {
                let v = &g.nodes[i].version;
                *v >= Version::parse("4.13.10").unwrap() && *v <= Version::parse("4.13.15").unwrap()
            })
            .count();
        assert_eq!(v.len(), expected);
        // Only a lower bound: up to the latest.
        let s = select(&g, &sel(Some("4.13.40"), None, false, false), "amd64").unwrap();
        assert_eq!(versions(&g, &s).last().unwrap(), "4.13.43");
    }

    #[test]
    fn shortest_path_is_a_real_path() {
        let g = real();
        let s = select(
            &g,
            &sel(Some("4.12.20"), Some("4.13.43"), true, false),
            "amd64",
        )
        .unwrap();
        let v = versions(&g, &s);
        assert_eq!(v.first().unwrap(), "4.12.20");
        assert_eq!(v.last().unwrap(), "4.13.43");
        // consecutive versions are joined by an edge
        for w in s.nodes.windows(2) {
            assert!(
                g.edges.contains(&(w[0], w[1]))
                    || g.conditional.iter().any(|c| (c.0, c.1) == (w[0], w[1])),
                "{} -> {} is no edge",
                g.nodes[w[0]].version,
                g.nodes[w[1]].version
            );
        }
        let range = select(
            &g,
            &sel(Some("4.12.20"), Some("4.13.43"), false, false),
            "amd64",
        )
        .unwrap();
        assert!(s.nodes.len() < range.nodes.len());
    }

    #[test]
    fn conditional_edges_only_when_unavoidable() {
        let g = small();
        let s = Selector {
            channel: "any".into(),
            min: Some(Version::parse("1.0.0").unwrap()),
            max: Some(Version::parse("1.0.3").unwrap()),
            shortest_path: true,
            full: false,
        };
        let r = select(&g, &s, "amd64").unwrap();
        assert_eq!(versions(&g, &r), ["1.0.0", "1.0.2", "1.0.3"]);
        assert!(r.notes.is_empty());
        // Without the unconditional route the conditional edge is taken, and said so.
        let mut g2 = g.clone();
        g2.edges.retain(|e| *e != (2, 3));
        let r = select(&g2, &s, "amd64").unwrap();
        assert_eq!(versions(&g2, &r), ["1.0.0", "1.0.3"]);
        assert!(r.notes[0].contains("R"), "{:?}", r.notes);
        // No path at all.
        let mut g3 = g2.clone();
        g3.conditional.clear();
        let e = select(&g3, &s, "amd64").unwrap_err();
        assert!(format!("{e:#}").contains("no upgrade path from 1.0.0 to 1.0.3"));
    }

    #[test]
    fn only_max_starts_at_the_lowest_version() {
        let g = small();
        let s = Selector {
            channel: "any".into(),
            max: Some(Version::parse("1.0.1").unwrap()),
            ..Selector::default()
        };
        assert_eq!(
            versions(&g, &select(&g, &s, "amd64").unwrap()),
            ["1.0.0", "1.0.1"]
        );
        // With the doc example's extra edge 1 -> 3, two two-hop paths tie: the lower wins.
        let mut g2 = g.clone();
        g2.edges.push((1, 3));
        let s = Selector {
            channel: "any".into(),
            min: Some(Version::parse("1.0.0").unwrap()),
            max: Some(Version::parse("1.0.3").unwrap()),
            shortest_path: true,
            full: false,
        };
        assert_eq!(
            versions(&g2, &select(&g2, &s, "amd64").unwrap()),
            ["1.0.0", "1.0.1", "1.0.3"]
        );
    }

    #[test]
    fn full_takes_the_whole_channel() {
        let g = real();
        let s = select(&g, &sel(None, None, false, true), "amd64").unwrap();
        assert_eq!(s.nodes.len(), g.channel_nodes("stable-4.13").len());
    }

    #[test]
    fn unknown_version_and_channel_name_what_exists() {
        let g = real();
        let e = select(&g, &sel(Some("4.13.44"), None, false, false), "amd64").unwrap_err();
        let m = format!("{e:#}");
        assert!(m.contains("4.13.44 is not in channel stable-4.13"), "{m}");
        assert!(m.contains("4.13.43"), "{m}");
        let mut s = sel(None, None, false, false);
        s.channel = "stable-4.31".into();
        let e = select(&g, &s, "amd64").unwrap_err();
        let m = format!("{e:#}");
        assert!(m.contains("stable-4.13"), "{m}");
        let e = select(
            &g,
            &sel(Some("4.13.15"), Some("4.13.10"), false, false),
            "amd64",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("above maxVersion"));
    }
}
