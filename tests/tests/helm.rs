//! Helm charts end to end: a chart repository on loopback (index.yaml + .tgz, packaged by
//! the system `tar`), a subchart switched on by its condition, a container switched off, a
//! local chart directory; pack → verify → push, then skopeo reads the chart artifact and the
//! images at the target. The images each chart must render were worked out by hand from the
//! templates below (there is no `helm` binary here).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use ferry_e2e::{digest_of, pack, push, skopeo_raw, World};
use ferry_fixtures::http::StaticServer;
use ferry_fixtures::sets::Seeded;

fn seeded<'a>(w: &'a World, repository: &str) -> &'a Seeded {
    w.seeded
        .iter()
        .find(|s| s.repository == repository && s.tag.is_some())
        .unwrap_or_else(|| panic!("no tagged {repository} in the standard set"))
}

fn write(dir: &Path, files: &[(&str, String)]) {
    for (p, text) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// The `web` chart: its own Deployment (image from values, tag defaulting to appVersion),
/// an initContainer by digest, a sidecar that is off by default, and the `cache` subchart.
fn web_chart(dir: &Path, w: &World) {
    let host = &w.source.host;
    let app_a = seeded(w, "ubi/app-a");
    let app_b = seeded(w, "ubi/app-b");
    let multi = w
        .seeded
        .iter()
        .find(|s| s.repository == "multi/app")
        .unwrap();
    write(
        dir,
        &[
            ("web/Chart.yaml", format!(
                "apiVersion: v2\nname: web\nversion: 1.2.0\nappVersion: \"{}\"\ndependencies:\n- name: cache\n  version: 0.1.0\n  condition: cache.enabled\n",
                app_a.tag.as_ref().unwrap()
            )),
            ("web/values.yaml", format!(
                "image:\n  registry: {host}\n  repository: ubi/app-a\n  tag: \"\"\ninit:\n  image: {host}/multi/app@{}\nsidecar:\n  enabled: false\n  image: {host}/legacy/docker-app:latest\ncache:\n  enabled: true\n  image:\n    repository: {host}/ubi/app-b\n    tag: \"{}\"\n",
                multi.digest, app_b.tag.as_ref().unwrap()
            )),
            ("web/templates/_helpers.tpl", r#"{{- define "web.image" -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- define "web.labels" -}}
app: {{ .Chart.Name }}
version: {{ .Chart.Version | quote }}
{{- end }}
"#.into()),
            ("web/templates/deployment.yaml", r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Chart.Name }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: {{ .Values.init.image }}
      containers:
      - name: web
        image: {{ include "web.image" . | quote }}
      {{- if .Values.sidecar.enabled }}
      - name: sidecar
        image: {{ .Values.sidecar.image }}
      {{- end }}
"#.into()),
            ("web/templates/NOTES.txt", "image: {{ .Values.sidecar.image }}\n".into()),
            ("web/charts/cache/Chart.yaml", "apiVersion: v2\nname: cache\nversion: 0.1.0\n".into()),
            ("web/charts/cache/values.yaml", "enabled: false\nimage:\n  repository: example.invalid/not-this\n  tag: x\n".into()),
            ("web/charts/cache/templates/pod.yaml", r#"{{- with .Values.image }}
apiVersion: v1
kind: Pod
metadata:
  name: cache
spec:
  containers:
  - name: cache
    image: {{ .repository }}:{{ .tag }}
{{- end }}
"#.into()),
        ],
    );
}

/// A chart repository serving `web-1.2.0.tgz` (and an older version not asked for).
fn repository(tgz: &[u8], digest: &str) -> StaticServer {
    let index = format!(
        "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 1.2.0\n    digest: {digest}\n    urls: [web-1.2.0.tgz]\n  - name: web\n    version: 1.1.0\n    urls: [web-1.1.0.tgz]\n"
    );
    StaticServer::start(HashMap::from([
        ("/index.yaml".to_string(), index.into_bytes()),
        ("/web-1.2.0.tgz".to_string(), tgz.to_vec()),
    ]))
    .unwrap()
}

fn package(dir: &Path) -> Vec<u8> {
    let out = dir.join("web-1.2.0.tgz");
    let st = Command::new("tar")
        .args([
            "czf",
            out.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
            "web",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

fn config(w: &World, url: &str, local: &Path) -> std::path::PathBuf {
    let path = w.path("helm.yaml");
    std::fs::write(
        &path,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  helm:\n    repositories:\n    - name: demo\n      url: {url}\n      charts:\n      - name: web\n        version: 1.2.0\n    local:\n    - name: tool\n      path: {}\n",
            local.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn charts_and_their_images_pack_verify_push_and_pull() {
    let w = World::new();
    let charts = w.path("charts");
    web_chart(&charts, &w);
    let tgz = package(&charts);
    let server = repository(&tgz, digest_of(&tgz).trim_start_matches("sha256:"));
    let tool = charts.join("tool");
    let app_c = seeded(&w, "tools/app-c");
    write(
        &tool,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: tool\nversion: 0.3.0\n".into()),
            ("templates/job.yaml", format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: tool\nspec:\n  template:\n    spec:\n      containers:\n      - name: t\n        image: {}\n",
                app_c.reference
            )),
        ],
    );
    let config = config(&w, &server.url(), &tool);
    let archive = w.path("archive");
    let run = pack(&config, &archive, &w.key, &[]);
    assert!(run.ok, "{}", run.text());
    assert!(
        !server.requests().iter().any(|r| r.contains("1.1.0")),
        "only 1.2.0 fetched"
    );
    let run = w.verify(&archive);
    assert!(run.ok, "{}", run.text());

    let out = w.path("manifests");
    let to = format!("{}/mirror", w.target.host);
    let run = push(
        &archive,
        &w.key,
        &to,
        &["--manifests-dir", out.to_str().unwrap()],
    );
    assert!(run.ok, "{}", run.text());
    let t = &w.target.host;

    // The chart is an OCI Helm artifact whose layer is the .tgz the repository served.
    let raw =
        skopeo_raw(&format!("{t}/mirror/charts/web:1.2.0")).expect("chart at charts/web:1.2.0");
    let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.cncf.helm.config.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );
    assert_eq!(m["layers"][0]["digest"], digest_of(&tgz));
    assert!(
        skopeo_raw(&format!("{t}/mirror/charts/tool:0.3.0")).is_some(),
        "local chart"
    );

    // What the templates render: app-a (tag from appVersion), multi/app (init, by digest),
    // app-b (subchart, switched on by the parent), app-c (local chart). Not the sidecar.
    for repo in ["ubi/app-a", "ubi/app-b", "tools/app-c"] {
        let s = seeded(&w, repo);
        let at = skopeo_raw(&format!("{t}/mirror/{repo}:{}", s.tag.as_ref().unwrap()))
            .unwrap_or_else(|| panic!("{repo} not pushed"));
        assert_eq!(digest_of(&at), s.digest.to_string(), "{repo}");
    }
    let multi = w
        .seeded
        .iter()
        .find(|s| s.repository == "multi/app")
        .unwrap();
    assert!(skopeo_raw(&format!("{t}/mirror/multi/app@{}", multi.digest)).is_some());
    assert!(
        skopeo_raw(&format!("{t}/mirror/legacy/docker-app:latest")).is_none(),
        "the disabled sidecar's image must not be carried"
    );

    // helm-charts.yaml says where each chart went; the mirror sets do not name chart sources.
    let listing = std::fs::read_to_string(out.join("helm-charts.yaml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&listing).unwrap();
    let web = doc["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "web")
        .unwrap();
    assert_eq!(web["oci"], format!("oci://{t}/mirror/charts/web"));
    assert_eq!(web["version"], "1.2.0");
    assert!(
        web["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["mirror"] == format!("{t}/mirror/ubi/app-a")),
        "{listing}"
    );
    for f in std::fs::read_dir(&out).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap();
        if f.file_name().unwrap().to_str().unwrap().starts_with("i") {
            assert!(!text.contains("charts/"), "{}: {text}", f.display());
        }
    }
}

#[test]
fn a_chart_that_does_not_match_its_index_or_config_is_refused_by_name() {
    let w = World::new();
    let charts = w.path("charts");
    web_chart(&charts, &w);
    let tgz = package(&charts);
    let server = repository(&tgz, &"f".repeat(64));
    let missing = charts.join("nonexistent");
    let config = config(&w, &server.url(), &missing);
    let run = pack(&config, &w.path("a"), &w.key, &[]);
    assert!(!run.ok);
    assert!(run.text().contains("does not exist"), "{}", run.text());

    let config = config_with_repo_only(&w, &server.url());
    let run = pack(&config, &w.path("b"), &w.key, &[]);
    assert!(!run.ok);
    assert!(
        run.text().contains("the repository index says"),
        "{}",
        run.text()
    );
    assert!(
        !w.path("b").join(ferry_format::INDEX_FILE).exists(),
        "no index after a refusal"
    );
}

fn config_with_repo_only(w: &World, url: &str) -> std::path::PathBuf {
    let path = w.path("repo-only.yaml");
    std::fs::write(
        &path,
        format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  helm:\n    repositories:\n    - name: demo\n      url: {url}\n      charts:\n      - name: web\n        version: 1.2.0\n"),
    )
    .unwrap();
    path
}

/// `url: oci://host/path`: the chart is an OCI artifact in a registry (as `helm push` makes
/// it); ferry reads its chart layer, checks it against its digest, renders it and carries the
/// artifact and the images; an ordinary image where a chart should be is refused by name.
#[test]
fn charts_from_an_oci_repository() {
    use ferry_fixtures::image::{Blob, Image};
    let w = World::new();
    let charts = w.path("charts");
    web_chart(&charts, &w);
    let tgz = package(&charts);
    let config = Blob::new(
        br#"{"apiVersion":"v2","name":"web","version":"1.2.0"}"#.to_vec(),
        "application/vnd.cncf.helm.config.v1+json",
    );
    let layer = Blob::new(
        tgz.clone(),
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config.media_type, "digest": config.digest.to_string(), "size": config.bytes.len()},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest.to_string(), "size": layer.bytes.len()}],
    });
    let manifest = Blob::new(
        serde_json::to_vec(&manifest).unwrap(),
        "application/vnd.oci.image.manifest.v1+json",
    );
    let client = ferry_fixtures::seed::client().unwrap();
    let repo = ferry_registry::Repo::new(w.source.host.clone(), "helm-src/web");
    ferry_fixtures::seed::push_image(
        &client,
        &repo,
        Some("1.2.0"),
        &Image {
            config,
            layers: vec![layer],
            manifest,
        },
    )
    .unwrap();

    let path = w.path("oci.yaml");
    std::fs::write(
        &path,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  helm:\n    repositories:\n    - name: oci\n      url: oci://{}/helm-src\n      charts:\n      - name: web\n        version: 1.2.0\n",
            w.source.host
        ),
    )
    .unwrap();
    let archive = w.path("oci-archive");
    let run = pack(&path, &archive, &w.key, &[]);
    assert!(run.ok, "{}", run.text());
    let to = format!("{}/mirror", w.target.host);
    let run = push(&archive, &w.key, &to, &[]);
    assert!(run.ok, "{}", run.text());
    let t = &w.target.host;
    let raw = skopeo_raw(&format!("{t}/mirror/charts/web:1.2.0")).expect("chart pushed");
    let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["layers"][0]["digest"], digest_of(&tgz));
    let a = seeded(&w, "ubi/app-a");
    let at = skopeo_raw(&format!("{t}/mirror/ubi/app-a:{}", a.tag.as_ref().unwrap()))
        .expect("the chart's image pushed");
    assert_eq!(digest_of(&at), a.digest.to_string());

    // An ordinary image where the chart should be.
    std::fs::write(
        &path,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  helm:\n    repositories:\n    - name: oci\n      url: oci://{}/ubi\n      charts:\n      - name: app-a\n        version: \"{}\"\n",
            w.source.host,
            a.tag.as_ref().unwrap()
        ),
    )
    .unwrap();
    let run = pack(&path, &w.path("bad"), &w.key, &[]);
    assert!(!run.ok);
    assert!(run.stderr.contains("is not a Helm chart"), "{}", run.stderr);
}
