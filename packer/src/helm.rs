//! `mirror.helm`: Helm charts from chart repositories (an `index.yaml` over HTTP(S), or
//! `oci://`) and from disk. Each chart is rendered with its default values (and the config's
//! `values`) by [`ferry_helm`] to find the images its templates name, the way oc-mirror does;
//! those images are planned like additional images, and the chart itself is carried as an OCI
//! chart artifact that lands at `<target>/<namespace>/charts/<name>:<version>`, so that
//! `helm pull oci://...` works at the site.

use std::io::Read as _;

use anyhow::{anyhow, bail, Context, Result};
use ferry_format::index::{HelmChart, Image, HELM_CHART_TYPE, HELM_CONFIG_TYPE};
use ferry_format::manifest::OCI_MANIFEST;
use ferry_format::Digest;
use ferry_registry::{Client, Reference, Repo};
use serde_json::json;

use crate::config::{Chart as ChartConfig, Helm, HelmRepository};
use crate::plan::{PlannedManifest, Wanted};

/// A small object made here, stored as a blob: its digest and bytes.
type Inline = (Digest, Vec<u8>);

/// Largest chart repository index accepted (big public repositories are a few MB).
const MAX_INDEX: u64 = 64 * 1024 * 1024;

/// The charts and what they need.
#[derive(Debug, Default)]
pub struct Planned {
    pub charts: Vec<HelmChart>,
    /// The chart artifacts, ready for [`crate::plan::Plan::add_made`].
    pub images: Vec<Image>,
    pub manifests: Vec<(Digest, PlannedManifest)>,
    pub inline: Vec<Inline>,
    /// The images the charts name, to resolve like additional images.
    pub wanted: Vec<Wanted>,
}

/// A chart's bytes and where they came from.
struct Fetched {
    /// URL, `oci://` reference or path, for the record.
    source: String,
    /// Host recorded as the artifact's source registry (`localhost` for charts from disk).
    host: String,
    tgz: Vec<u8>,
    /// sha256 of `tgz`, taken once: checked against the source and used as the layer digest.
    digest: Digest,
}

impl Fetched {
    fn new(source: String, host: String, tgz: Vec<u8>) -> Fetched {
        let digest = Digest::of(&tgz);
        Fetched {
            source,
            host,
            tgz,
            digest,
        }
    }
}

/// Fetches, renders and plans every chart `helm` names. `arch` applies to images of charts
/// without their own `platforms`.
pub fn plan_charts(client: &Client, helm: &Helm, arch: &[String]) -> Result<Planned> {
    let mut out = Planned::default();
    for c in &helm.local {
        let path = c.path.as_deref().ok_or_else(|| {
            anyhow!(
                "mirror.helm.local {}: a local chart needs a path (a chart directory or .tgz)",
                c.name
            )
        })?;
        let fetched = local(path).with_context(|| format!("mirror.helm.local {}", c.name))?;
        add_chart(&mut out, fetched, c, arch)
            .with_context(|| format!("mirror.helm.local {}", c.name))?;
    }
    for repo in &helm.repositories {
        for (fetched, c) in from_repository(client, repo)? {
            let what = format!("chart {} of mirror.helm.repositories {}", c.name, repo.name);
            add_chart(&mut out, fetched, &c, arch).with_context(|| what)?;
        }
    }
    Ok(out)
}

fn local(path: &str) -> Result<Fetched> {
    let p = std::path::Path::new(path);
    if !p.exists() {
        bail!("{path} does not exist (give a chart directory or a .tgz from `helm package`)");
    }
    let tgz = if p.is_dir() {
        ferry_helm::chart::package_dir(p)?
    } else {
        std::fs::read(p).with_context(|| format!("cannot read {path}"))?
    };
    Ok(Fetched::new(path.to_string(), "localhost".into(), tgz))
}

/// The charts a repository entry asks for: those listed (a version, or the newest), or
/// every version of every application chart when none is listed (as oc-mirror does).
fn from_repository(client: &Client, repo: &HelmRepository) -> Result<Vec<(Fetched, ChartConfig)>> {
    if let Some(base) = repo.url.strip_prefix("oci://") {
        return repo
            .charts
            .iter()
            .map(|c| Ok((from_oci(client, base, c)?, c.clone())))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("mirror.helm.repositories {} ({})", repo.name, repo.url));
    }
    let index = RepoIndex::fetch(client, &repo.url).with_context(|| {
        format!(
            "mirror.helm.repositories {}: the chart repository {}",
            repo.name, repo.url
        )
    })?;
    let wanted: Vec<ChartConfig> = if repo.charts.is_empty() {
        index.all_application_charts()
    } else {
        repo.charts.clone()
    };
    let mut out = Vec::new();
    for c in wanted {
        let entry = index
            .find(&c.name, c.version.as_deref())
            .with_context(|| format!("mirror.helm.repositories {} ({})", repo.name, repo.url))?;
        let url = index.chart_url(entry)?;
        let tgz = client
            .get_url(
                &url,
                "application/gzip, application/x-gzip, */*",
                ferry_helm::chart::MAX_CHART_BYTES,
            )?
            .ok_or_else(|| anyhow!("{url} answered 404"))?;
        let fetched = Fetched::new(url, host_of(&repo.url), tgz);
        if let Some(want) = entry.get("digest").and_then(|d| d.as_str()) {
            let got = fetched.digest.hex();
            if got != want.trim_start_matches("sha256:") {
                bail!(
                    "{}: the chart's sha256 is {got} but the repository index says {want}",
                    fetched.source
                );
            }
        }
        out.push((fetched, c));
    }
    Ok(out)
}

/// `host[:port]` of a URL.
fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split(['/', '?']).next())
        .unwrap_or("localhost")
        .to_ascii_lowercase()
}

/// A chart repository's `index.yaml`.
struct RepoIndex {
    url: String,
    entries: serde_json::Map<String, serde_json::Value>,
}

impl RepoIndex {
    fn fetch(client: &Client, url: &str) -> Result<RepoIndex> {
        let base = url.trim_end_matches('/').to_string();
        let index_url = format!("{base}/index.yaml");
        let bytes = client
            .get_url(&index_url, "application/x-yaml, text/yaml, */*", MAX_INDEX)?
            .ok_or_else(|| anyhow!("{index_url} answered 404: is this a Helm chart repository?"))?;
        let text = String::from_utf8(bytes).map_err(|_| anyhow!("{index_url} is not text"))?;
        let doc: serde_json::Value = serde_saphyr::from_str(&text)
            .with_context(|| format!("{index_url} is not valid YAML"))?;
        let entries = doc
            .get("entries")
            .and_then(|e| e.as_object())
            .cloned()
            .ok_or_else(|| anyhow!("{index_url} has no entries: not a Helm repository index"))?;
        Ok(RepoIndex { url: base, entries })
    }

    fn versions(&self, name: &str) -> &[serde_json::Value] {
        self.entries
            .get(name)
            .and_then(|v| v.as_array())
            .map_or(&[], Vec::as_slice)
    }

    /// The entry of `name` at `version`, or its newest release (prereleases only if nothing
    /// else).
    fn find(&self, name: &str, version: Option<&str>) -> Result<&serde_json::Value> {
        let all = self.versions(name);
        if all.is_empty() {
            let mut names: Vec<&String> = self.entries.keys().collect();
            names.truncate(20);
            bail!("the repository has no chart {name:?} (it has: {names:?})");
        }
        let ver = |e: &serde_json::Value| {
            e.get("version")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        if let Some(want) = version {
            return all.iter().find(|e| ver(e) == want).ok_or_else(|| {
                let have: Vec<String> = all.iter().take(20).map(ver).collect();
                anyhow!("the repository has no version {want} of {name} (newest: {have:?})")
            });
        }
        let parsed =
            |e: &serde_json::Value| semver::Version::parse(ver(e).trim_start_matches('v')).ok();
        all.iter()
            .filter_map(|e| Some((parsed(e)?, e)))
            .max_by(|(a, _), (b, _)| (a.pre.is_empty(), a).cmp(&(b.pre.is_empty(), b)))
            .map(|(_, e)| e)
            .ok_or_else(|| anyhow!("no version of {name} in the repository is a semantic version"))
    }

    fn all_application_charts(&self) -> Vec<ChartConfig> {
        let mut out = Vec::new();
        for (name, versions) in &self.entries {
            for e in versions.as_array().into_iter().flatten() {
                if e.get("type").and_then(|t| t.as_str()) == Some("library") {
                    continue;
                }
                if let Some(v) = e.get("version").and_then(|v| v.as_str()) {
                    out.push(ChartConfig {
                        name: name.clone(),
                        version: Some(v.to_string()),
                        ..ChartConfig::default()
                    });
                }
            }
        }
        out
    }

    /// The entry's first URL, made absolute against the repository URL.
    fn chart_url(&self, entry: &serde_json::Value) -> Result<String> {
        let url = entry
            .get("urls")
            .and_then(|u| u.as_array())
            .and_then(|u| u.first())
            .and_then(|u| u.as_str())
            .ok_or_else(|| anyhow!("a chart entry of {}/index.yaml has no urls", self.url))?;
        Ok(if url.contains("://") {
            url.to_string()
        } else {
            format!("{}/{}", self.url, url.trim_start_matches("./"))
        })
    }
}

/// `oci://host/path` + chart name and version: the chart layer of that artifact.
fn from_oci(client: &Client, base: &str, c: &ChartConfig) -> Result<Fetched> {
    let version = c
        .version
        .as_deref()
        .ok_or_else(|| anyhow!("chart {}: an oci:// repository needs a version", c.name))?;
    let reference: Reference = format!(
        "{}/{}:{}",
        base.trim_end_matches('/'),
        c.name,
        version.replace('+', "_")
    )
    .parse()
    .with_context(|| format!("oci://{base}/{}", c.name))?;
    let repo = Repo::new(reference.registry.clone(), reference.repository.clone());
    let m = client.get_manifest(&repo, &reference.manifest_reference())?;
    let doc: serde_json::Value =
        serde_json::from_slice(&m.bytes).context("the chart manifest is not JSON")?;
    let layer = doc["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["mediaType"] == HELM_CHART_TYPE)
        .ok_or_else(|| {
            anyhow!(
                "oci://{base}/{}:{version} is not a Helm chart (no {HELM_CHART_TYPE} layer)",
                c.name
            )
        })?;
    let digest: Digest = layer["digest"].as_str().unwrap_or("").parse()?;
    let mut body = client.get_blob(&repo, &digest)?;
    let mut tgz = Vec::new();
    (&mut body.reader)
        .take(ferry_helm::chart::MAX_CHART_BYTES)
        .read_to_end(&mut tgz)?;
    let fetched = Fetched::new(
        format!("oci://{base}/{}:{version}", c.name),
        reference.registry,
        tgz,
    );
    if fetched.digest != digest {
        bail!(
            "the chart layer of {} does not match its digest {digest}",
            fetched.source
        );
    }
    Ok(fetched)
}

/// Renders one chart, records it, makes its artifact and plans its images.
fn add_chart(out: &mut Planned, f: Fetched, c: &ChartConfig, arch: &[String]) -> Result<()> {
    let chart = ferry_helm::chart::from_tgz(&f.tgz)
        .with_context(|| format!("{} is not a chart archive", f.source))?;
    if let Some(v) = c.version.as_deref().filter(|v| *v != chart.version) {
        bail!(
            "{} holds version {} of {}, not {v}",
            f.source,
            chart.version,
            chart.name
        );
    }
    if chart.kind == "library" {
        bail!(
            "{} is a library chart: it has no images of its own",
            chart.name
        );
    }
    let found = ferry_helm::chart_images(&chart, c.values.as_ref(), &c.image_paths)?;
    let repository = format!("charts/{}", chart.name);
    if !ferry_format::index::is_repository_path(&repository) {
        bail!(
            "the chart name {:?} cannot be a repository name (lowercase a-z 0-9 . _ -)",
            chart.name
        );
    }
    if let Some(dup) = out
        .charts
        .iter()
        .find(|h| h.name == chart.name && h.version == chart.version)
    {
        bail!(
            "{} {} is asked for twice ({} and {}): keep one",
            chart.name,
            chart.version,
            dup.source,
            f.source
        );
    }
    let (digest, manifest, inline) = artifact(&chart, f.tgz, f.digest)?;
    let reason = format!("helm chart {} {}", chart.name, chart.version);
    for img in &found {
        let reference: Reference = img.image.parse().with_context(|| {
            format!(
                "{} (rendered in {}) is not an image reference",
                img.image, img.template
            )
        })?;
        out.wanted.push(Wanted {
            source: img.image.clone(),
            reference,
            reason: reason.clone(),
            platforms: crate::plan::platforms_or(&c.platforms, arch),
            target: Default::default(),
        });
    }
    out.images.push(Image {
        source: format!(
            "helm chart {}:{} from {}",
            chart.name, chart.version, f.source
        ),
        registry: f.host.clone(),
        repository: repository.clone(),
        tags: vec![chart.version.replace('+', "_")],
        digest: digest.clone(),
        media_type: OCI_MANIFEST.into(),
        reason,
        platforms: vec![],
        target_repository: None,
    });
    out.charts.push(HelmChart {
        name: chart.name.clone(),
        version: chart.version.clone(),
        source: f.source,
        registry: f.host,
        repository,
        digest: digest.clone(),
        images: found.into_iter().map(|i| i.image).collect(),
    });
    out.manifests.push((digest, manifest));
    out.inline.extend(inline);
    Ok(())
}

/// The OCI artifact `helm push` makes: `Chart.yaml` as JSON for the config, the `.tgz` as the
/// one layer. Returns its digest, manifest and the two blobs.
fn artifact(
    chart: &ferry_helm::Chart,
    tgz: Vec<u8>,
    layer_digest: Digest,
) -> Result<(Digest, PlannedManifest, Vec<Inline>)> {
    let config = serde_json::to_vec(&chart.metadata)?;
    let config_digest = Digest::of(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG_TYPE, "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": HELM_CHART_TYPE, "digest": layer_digest.to_string(), "size": tgz.len()}],
        "annotations": {
            "org.opencontainers.image.title": chart.name,
            "org.opencontainers.image.version": chart.version,
        }
    });
    let bytes = serde_json::to_vec(&manifest)?;
    let digest = Digest::of(&bytes);
    Ok((
        digest.clone(),
        PlannedManifest {
            bytes,
            media_type: OCI_MANIFEST.into(),
            children: vec![],
            blobs: vec![config_digest.clone(), layer_digest.clone()],
        },
        vec![(config_digest, config), (layer_digest, tgz)],
    ))
}
