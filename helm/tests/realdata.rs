//! The two real charts in ../shared/realdata/helm, rendered with their default values. The
//! expected images were worked out by hand from each chart's values.yaml and _helpers.tpl (no
//! `helm` binary can be installed here): what `helm template` renders for them.

use std::path::{Path, PathBuf};

use ferry_helm::{chart, chart_images, render};

fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/realdata/helm")
        .join(name)
}

fn images(name: &str, extra: &[&str]) -> Vec<String> {
    let c = chart::from_path(&real(name)).unwrap();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    chart_images(&c, None, &extra)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .into_iter()
        .map(|f| f.image)
        .collect()
}

#[test]
fn kube_state_metrics_8_4_0() {
    // image.registry / image.repository : "v" + appVersion (image.tag and sha empty);
    // kubeRBACProxy.enabled is false, so no brancz/kube-rbac-proxy.
    assert_eq!(
        images("kube-state-metrics", &[]),
        ["registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0"]
    );
}

#[test]
fn prometheus_node_exporter_4_56_1() {
    // quay.io/prometheus/node-exporter : "v" + appVersion, no -distroless, no digest;
    // kubeRBACProxy disabled, no sidecars or extraInitContainers.
    assert_eq!(
        images("prometheus-node-exporter", &[]),
        ["quay.io/prometheus/node-exporter:v1.12.1"]
    );
}

#[test]
fn every_manifest_of_the_real_charts_renders_to_objects() {
    for name in ["kube-state-metrics", "prometheus-node-exporter"] {
        let c = chart::from_path(&real(name)).unwrap();
        let out = render::render(&c, None).unwrap_or_else(|e| panic!("{e:#}"));
        let kinds: Vec<String> = out
            .iter()
            .flat_map(|r| r.text.split("\n---"))
            .filter_map(|d| serde_saphyr::from_str::<serde_json::Value>(d).ok())
            .filter_map(|v| v.get("kind")?.as_str().map(str::to_string))
            .collect();
        // What the default values switch on, read from the templates' if-conditions.
        for want in ["ServiceAccount", "Service"] {
            assert!(
                kinds.iter().any(|k| k == want),
                "{name}: no {want} in {kinds:?}"
            );
        }
        let workload = if name == "kube-state-metrics" {
            "Deployment"
        } else {
            "DaemonSet"
        };
        assert!(kinds.iter().any(|k| k == workload), "{name}: {kinds:?}");
        assert!(
            !kinds.iter().any(|k| k == "VerticalPodAutoscaler"),
            "{name}: {kinds:?}"
        );
    }
}

#[test]
fn image_paths_from_the_config_add_images() {
    // A path the user gives is read as oc-mirror reads it: every value found there is taken,
    // split at spaces (here a label value, to show the path is followed).
    let found = images(
        "prometheus-node-exporter",
        &["{.metadata.labels['app.kubernetes.io/name']}"],
    );
    assert!(
        found.contains(&"prometheus-node-exporter".to_string()),
        "{found:?}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The real chart's `.helmignore` applies when a chart directory is read or packaged: editor
/// backups, a VCS directory and a hidden template (Helm's default rule; this one would not even
/// render) are left out, and the chart still renders the same image.
#[test]
fn helmignore_of_a_real_chart_is_applied() {
    let dir = std::env::temp_dir().join(format!("ferry-helmignore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&real("kube-state-metrics"), &dir);
    std::fs::write(dir.join("values.yaml.bak"), "not: [yaml").unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join(".git/config"), "[core]").unwrap();
    std::fs::write(dir.join("templates/.scratch.yaml"), "{{ nope").unwrap();
    std::fs::write(dir.join("templates/notes.txt~"), "{{ nope").unwrap();

    let tgz = chart::package_dir(&dir).unwrap();
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
    for e in archive.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert!(
        names.contains(&"kube-state-metrics/values.yaml".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"kube-state-metrics/templates/deployment.yaml".to_string()));
    for gone in [
        "values.yaml.bak",
        ".git/config",
        "templates/.scratch.yaml",
        "templates/notes.txt~",
    ] {
        assert!(
            !names.contains(&format!("kube-state-metrics/{gone}")),
            "{gone} packaged: {names:?}"
        );
    }
    let c = chart::from_path(&dir).unwrap();
    let found: Vec<String> = chart_images(&c, None, &[])
        .unwrap()
        .into_iter()
        .map(|f| f.image)
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        found,
        ["registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0"]
    );
}
