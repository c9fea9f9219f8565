//! The Cluster Samples Operator from the media: the images its `imagestreamtag-to-image`
//! ConfigMap names (built from the real image streams in `realdata/samples`, their registry
//! moved to a loopback source) are packed with `--samples`, pushed, and the samples `Config`
//! written. The test applies the operator's own rewrite (the registry of `REGISTRY/NS/NAME`
//! replaced by `samplesRegistry`) and asks skopeo whether each image is there.

use std::collections::BTreeMap;

use ferry_e2e::{crd_problems, digest_of, pack, push, realdata, skopeo_raw, Workdir};
use ferry_fixtures::registry::TestRegistry;
use ferry_registry::Repo;
use serde_json::Value;

/// `<stream>_<tag>` → image, from the real image streams' DockerImage tags, with
/// `registry.redhat.io` replaced by `host`.
fn configmap_data(host: &str) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    let dir = realdata().join("samples/imagestreams");
    for e in std::fs::read_dir(&dir).unwrap() {
        let is: Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        let name = is["metadata"]["name"].as_str().unwrap();
        for t in is["spec"]["tags"].as_array().unwrap() {
            if t["from"]["kind"] == "DockerImage" {
                let image = t["from"]["name"].as_str().unwrap();
                let image = image.replacen("registry.redhat.io", host, 1);
                data.insert(format!("{name}_{}", t["name"].as_str().unwrap()), image);
            }
        }
    }
    data
}

/// The operator's rewrite of a sample reference for `samples_registry`.
fn rewritten(image: &str, samples_registry: &str) -> String {
    assert_eq!(image.matches('/').count(), 2, "{image}");
    let (_, rest) = image.split_once('/').unwrap();
    format!("{samples_registry}/{rest}")
}

#[test]
fn samples_images_travel_and_the_config_points_the_operator_at_them() {
    let source = TestRegistry::start().unwrap();
    let target = TestRegistry::start().unwrap();
    let work = Workdir::new("ferry-samples-");
    let data = configmap_data(&source.host);
    assert!(data.len() >= 15, "{} tags", data.len());
    let client = ferry_fixtures::seed::client().unwrap();
    let mut digests = BTreeMap::new();
    for (i, image) in data.values().enumerate() {
        if digests.contains_key(image) {
            continue;
        }
        let (repo, tag) = image.split_once('/').unwrap().1.rsplit_once(':').unwrap();
        let img = ferry_fixtures::image::image(
            repo,
            "amd64",
            vec![ferry_fixtures::image::layer(500 + i as u64, 20_000, true)],
            true,
        );
        let d = ferry_fixtures::seed::push_image(
            &client,
            &Repo::new(source.host.clone(), repo),
            Some(tag),
            &img,
        )
        .unwrap();
        digests.insert(image.clone(), d.to_string());
    }
    let mut cm = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: imagestreamtag-to-image\n  namespace: openshift-cluster-samples-operator\ndata:\n");
    for (k, v) in &data {
        cm.push_str(&format!("  {k}: {v}\n"));
    }
    let cm_file = work.path("imagestreamtag-to-image.yaml");
    std::fs::write(&cm_file, cm).unwrap();
    let config = work.path("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror: {}\n",
    )
    .unwrap();
    let cm_arg = cm_file.to_str().unwrap();

    // A name the ConfigMap does not hold is refused, listing those it does.
    let dir = work.path("archive");
    let typo = pack(
        &config,
        &dir,
        &work.key,
        &["--samples", cm_arg, "--samples-include", "javaa"],
    );
    assert!(!typo.ok);
    assert!(
        typo.stderr
            .contains("it lists java, jenkins, mariadb, mongodb"),
        "{}",
        typo.stderr
    );

    let p = pack(
        &config,
        &dir,
        &work.key,
        &["--samples", cm_arg, "--samples-exclude", "mongodb"],
    );
    assert!(p.ok, "{}", p.text());
    let v = ferry_e2e::ferry(
        "ferry-unpack",
        &["verify", dir.to_str().unwrap(), "--trust", &work.pubkey()],
    );
    assert!(v.ok, "{}", v.text());
    assert!(
        v.stdout
            .contains("samples: 3 image stream(s) mirrored (java, jenkins, mariadb), 1 skipped"),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains("skipped mongodb: excluded by --samples-exclude"),
        "{}",
        v.stdout
    );
    let manifests = work.path("manifests");
    let to = format!("{}/site", target.host);
    let r = push(
        &dir,
        &work.key,
        &to,
        &["--manifests-dir", manifests.to_str().unwrap()],
    );
    assert!(r.ok, "{}", r.text());

    let bytes =
        std::fs::read(manifests.join("samples-operator-config.yaml")).expect("samples config");
    let problems = crd_problems("configs.samples.operator.openshift.io.crd.yaml", &bytes);
    assert!(problems.is_empty(), "{problems:?}");
    let cfg: Value = serde_saphyr::from_str(std::str::from_utf8(&bytes).unwrap()).unwrap();
    assert_eq!(cfg["metadata"]["name"], "cluster");
    assert_eq!(cfg["spec"]["managementState"], "Managed");
    assert_eq!(
        cfg["spec"]["skippedImagestreams"],
        serde_json::json!(["mongodb"])
    );
    let registry = cfg["spec"]["samplesRegistry"].as_str().unwrap();
    assert_eq!(registry, to);

    for (key, image) in &data {
        let at = rewritten(image, registry);
        let found = skopeo_raw(&at).map(|b| digest_of(&b));
        if key.starts_with("mongodb_") {
            assert_eq!(
                found, None,
                "{at}: an excluded stream's image is not pushed"
            );
        } else {
            assert_eq!(found.as_ref(), Some(&digests[image]), "{key}: {at}");
        }
    }
}
