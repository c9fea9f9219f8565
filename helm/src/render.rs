//! Rendering a chart the way `helm template` does with no values given: each chart's default
//! values with its parent's overrides and `global` coalesced in, subcharts switched by their
//! `condition` and `tags`, every template run with `.Values`, `.Chart`, `.Release`,
//! `.Capabilities`, `.Template` and `.Files`, all named templates shared.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::chart::{Chart, Dependency};
use crate::template::Engine;
use crate::value::Value;

/// The Kubernetes version templates see (`.Capabilities.KubeVersion`).
pub const KUBE_VERSION: (u32, u32) = (1, 31);

/// API versions `.Capabilities.APIVersions.Has` answers yes to: Kubernetes' built-in groups
/// (as Helm's default set); CRD-provided APIs such as `monitoring.coreos.com/v1` are absent,
/// as with `helm template` and no cluster.
const API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "apiregistration.k8s.io/v1",
    "apps/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "events.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1",
    "networking.k8s.io/v1",
    "node.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
];

/// One rendered file: its template name (`chart/templates/x.yaml`) and text.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub name: String,
    pub text: String,
}

/// Renders every manifest of `chart` and its enabled subcharts, CRDs first; `values` (as a
/// `--values` file would give) go over the chart's defaults.
pub fn render(chart: &Chart, values: Option<&serde_json::Value>) -> Result<Vec<Rendered>> {
    let overrides = values.map_or_else(Value::empty_map, |v| Value::from_json(v, true));
    let values = coalesce(chart, overrides);
    let engine = Engine::default();
    let mut jobs = Vec::new();
    load(&engine, chart, &values, &chart.name, &mut jobs)?;
    let mut out = Vec::new();
    crds(chart, &chart.name, &values, &mut out);
    let capabilities = capabilities();
    for job in jobs {
        let dot = Value::map(
            [
                ("Values".to_string(), job.values.clone()),
                ("Chart".to_string(), chart_object(job.chart, job.root)),
                ("Release".to_string(), release()),
                ("Capabilities".to_string(), capabilities.clone()),
                (
                    "Template".to_string(),
                    template_object(&job.name, &job.base),
                ),
                ("Files".to_string(), files_object(job.chart)),
            ]
            .into(),
        );
        let text = engine
            .execute(&job.name, &job.tree, &dot)
            .with_context(|| format!("rendering {}", job.name))?;
        out.push(Rendered {
            name: job.name,
            text,
        });
    }
    Ok(out)
}

/// A template to run, with the chart and values it belongs to.
struct Job<'c> {
    name: String,
    base: String,
    tree: std::rc::Rc<Vec<crate::template::Node>>,
    chart: &'c Chart,
    values: Value,
    root: bool,
}

/// Parses every template of `chart` and its enabled subcharts (subcharts first, so a parent's
/// define of the same name wins) and lists those that make manifests.
fn load<'c>(
    engine: &Engine,
    chart: &'c Chart,
    values: &Value,
    prefix: &str,
    jobs: &mut Vec<Job<'c>>,
) -> Result<()> {
    for (sub, key) in enabled(chart, values) {
        load(
            engine,
            sub,
            &values.field(&key),
            &format!("{prefix}/charts/{}", sub.name),
            jobs,
        )?;
    }
    for (path, src) in &chart.templates {
        let name = format!("{prefix}/{path}");
        let tree = engine.add(&name, src)?;
        let file = path.rsplit('/').next().unwrap_or(path);
        if file.starts_with('_') || path.ends_with(".txt") || chart.kind == "library" {
            continue;
        }
        jobs.push(Job {
            name,
            base: format!("{prefix}/templates"),
            tree,
            chart,
            values: values.clone(),
            root: !prefix.contains('/'),
        });
    }
    Ok(())
}

fn crds(chart: &Chart, prefix: &str, values: &Value, out: &mut Vec<Rendered>) {
    for (path, text) in &chart.crds {
        out.push(Rendered {
            name: format!("{prefix}/{path}"),
            text: text.clone(),
        });
    }
    for (sub, key) in enabled(chart, values) {
        crds(
            sub,
            &format!("{prefix}/charts/{}", sub.name),
            &values.field(&key),
            out,
        );
    }
}

/// The subcharts that are switched on, with the values key each reads (its alias or name).
fn enabled<'c>(chart: &'c Chart, values: &Value) -> Vec<(&'c Chart, String)> {
    let mut out = Vec::new();
    for sub in &chart.subcharts {
        let deps: Vec<&Dependency> = chart
            .dependencies
            .iter()
            .filter(|d| d.name == sub.name)
            .collect();
        if deps.is_empty() {
            out.push((sub, sub.name.clone()));
        }
        for d in deps {
            if switched_on(d, values) {
                out.push((sub, d.alias.clone().unwrap_or_else(|| sub.name.clone())));
            }
        }
    }
    out
}

/// Helm's rule: the first `condition` path that resolves to a bool decides; else any listed
/// tag that is set decides (true if any is true); else on.
fn switched_on(d: &Dependency, values: &Value) -> bool {
    if let Some(cond) = &d.condition {
        for path in cond.split(',').map(str::trim) {
            let mut v = values.clone();
            for part in path.split('.') {
                v = v.field(part);
            }
            if let Value::Bool(b) = v {
                return b;
            }
        }
    }
    let tags = values.field("tags");
    let set: Vec<bool> = d
        .tags
        .iter()
        .filter_map(|t| match tags.field(t) {
            Value::Bool(b) => Some(b),
            _ => None,
        })
        .collect();
    set.is_empty() || set.contains(&true)
}

/// The chart's values with `overrides` (from its parent) on top, and each subchart's values
/// coalesced under its key, `global` handed down.
pub fn coalesce(chart: &Chart, overrides: Value) -> Value {
    let values = Value::from_json(&chart.values, true);
    overlay(&values, &overrides);
    let global = values.field("global");
    for (sub, key) in enabled(chart, &values) {
        let mine = match values.field(&key) {
            m @ Value::Map(_) => m,
            _ => Value::empty_map(),
        };
        if let Value::Map(_) = global {
            let g = match mine.field("global") {
                g @ Value::Map(_) => g,
                _ => Value::empty_map(),
            };
            overlay(&g, &global);
            set(&mine, "global", g);
        }
        let merged = coalesce(sub, mine);
        set(&values, &key, merged);
    }
    values
}

/// Puts `top` over `base`, maps merged key by key (a null in `top` removes the key).
fn overlay(base: &Value, top: &Value) {
    let (Value::Map(b), Value::Map(t)) = (base, top) else {
        return;
    };
    for (k, tv) in t.borrow().iter() {
        let current = b.borrow().get(k).cloned();
        match (current, tv) {
            (_, Value::Nil) => {
                b.borrow_mut().remove(k);
            }
            (Some(bv @ Value::Map(_)), Value::Map(_)) => overlay(&bv, tv),
            _ => {
                b.borrow_mut().insert(k.clone(), tv.clone());
            }
        }
    }
}

fn set(map: &Value, key: &str, v: Value) {
    if let Value::Map(m) = map {
        m.borrow_mut().insert(key.to_string(), v);
    }
}

/// `.Chart`: Chart.yaml's fields under Go's names (`Name`, `AppVersion`, `APIVersion`...).
fn chart_object(chart: &Chart, root: bool) -> Value {
    let mut m = BTreeMap::new();
    if let serde_json::Value::Object(o) = &chart.metadata {
        for (k, v) in o {
            let name = match k.as_str() {
                "apiVersion" => "APIVersion".to_string(),
                k => {
                    let mut c = k.chars();
                    c.next()
                        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
                }
            };
            m.insert(name, Value::from_json(v, false));
        }
    }
    m.insert("IsRoot".into(), Value::Bool(root));
    Value::map(m)
}

/// `.Release` as oc-mirror renders charts (no release name or namespace).
fn release() -> Value {
    Value::map(
        [
            ("Name".to_string(), Value::str("")),
            ("Namespace".to_string(), Value::str("")),
            ("Service".to_string(), Value::str("Helm")),
            ("IsInstall".to_string(), Value::Bool(false)),
            ("IsUpgrade".to_string(), Value::Bool(false)),
            ("Revision".to_string(), Value::Int(0)),
        ]
        .into(),
    )
}

fn capabilities() -> Value {
    let (major, minor) = KUBE_VERSION;
    let version = format!("v{major}.{minor}.0");
    let kube = Value::map(
        [
            ("Version".to_string(), Value::str(version.as_str())),
            ("GitVersion".to_string(), Value::str(version.as_str())),
            ("Major".to_string(), Value::str(major.to_string())),
            ("Minor".to_string(), Value::str(minor.to_string())),
        ]
        .into(),
    );
    let apis = Value::list(API_VERSIONS.iter().map(|a| Value::str(*a)).collect());
    Value::map(
        [
            ("KubeVersion".to_string(), kube),
            ("APIVersions".to_string(), apis),
            (
                "HelmVersion".to_string(),
                Value::map([("Version".to_string(), Value::str("v3.16.0"))].into()),
            ),
        ]
        .into(),
    )
}

fn template_object(name: &str, base: &str) -> Value {
    Value::map(
        [
            ("Name".to_string(), Value::str(name)),
            ("BasePath".to_string(), Value::str(base)),
        ]
        .into(),
    )
}

/// `.Files`: the chart's other files by path (`.Files.Get "path"`).
fn files_object(chart: &Chart) -> Value {
    Value::map(
        chart
            .files
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(String::from_utf8_lossy(v).as_ref())))
            .collect(),
    )
}
