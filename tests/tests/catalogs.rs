//! Operator catalogs end to end: a real file-based catalog (oc-mirror's test-catalog-multi,
//! three packages, YAML) built into a real-shaped multi-arch index image in `docker-registry`;
//! each filtering rule packed, verified and pushed; skopeo finds every kept bundle and related
//! image at the target and none of the dropped ones; the rebuilt catalog, copied out of the
//! target with skopeo and unpacked with tar layer by layer, holds exactly the filtered catalog,
//! valid, and no stale cache; CatalogSource/ClusterCatalog/IDMS validate against the real CRDs.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_e2e::{crd_problems, digest_of, ferry, realdata, skopeo_raw, Workdir};
use ferry_fixtures::catalog::{seed_catalog, SeededCatalog};
use ferry_fixtures::registry::TestRegistry;
use ferry_format::Index;
use serde_json::Value;

struct Cat {
    /// Kept alive for the test's duration (the catalog's registry).
    _source: TestRegistry,
    target: TestRegistry,
    cat: SeededCatalog,
    work: Workdir,
}

impl Cat {
    fn new() -> Cat {
        let source = TestRegistry::start().unwrap();
        let target = TestRegistry::start().unwrap();
        let client = ferry_fixtures::seed::client().unwrap();
        let cat = seed_catalog(
            &client,
            &source.host,
            &realdata().join("catalogs/oc-mirror-test-catalog-multi"),
            "redhat/redhat-operator-index",
            "v4.18",
            &["amd64", "arm64"],
        )
        .expect("seed catalog");
        let work = Workdir::new("ferry-cat-");
        Cat {
            _source: source,
            target,
            cat,
            work,
        }
    }

    /// Packs, verifies and pushes one operator entry into namespace `ns`; returns the index
    /// and the manifests directory.
    fn run(&self, ns: &str, entry: &str) -> (Index, PathBuf) {
        self.run_operators(
            ns,
            &format!("    - catalog: {}\n{entry}", self.cat.reference),
        )
    }

    /// Like `run`, with the whole `operators:` list given.
    fn run_operators(&self, ns: &str, operators: &str) -> (Index, PathBuf) {
        let config = self.work.path(&format!("{ns}.yaml"));
        std::fs::write(
            &config,
            format!(
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n{operators}"
            ),
        )
        .unwrap();
        let dir = self.work.path(ns);
        let p = ferry(
            "ferry-pack",
            &[
                "--config",
                config.to_str().unwrap(),
                "--to",
                dir.to_str().unwrap(),
                "--sign-key",
                self.work.key.to_str().unwrap(),
                "-q",
            ],
        );
        assert!(p.ok, "{ns}: {}", p.text());
        let v = ferry(
            "ferry-unpack",
            &[
                "verify",
                dir.to_str().unwrap(),
                "--trust",
                &self.work.pubkey(),
            ],
        );
        assert!(v.ok, "{ns}: {}", v.text());
        assert!(v.stdout.contains("catalog "), "{}", v.stdout);
        let manifests = self.work.path(&format!("{ns}-manifests"));
        let to = format!("{}/{ns}", self.target.host);
        let p = ferry(
            "ferry-unpack",
            &[
                "push",
                dir.to_str().unwrap(),
                "--trust",
                &self.work.pubkey(),
                "--to",
                &to,
                "--manifests-dir",
                manifests.to_str().unwrap(),
                "-q",
            ],
        );
        assert!(p.ok, "{ns}: {}", p.text());
        let index =
            Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap();
        (index, manifests)
    }

    fn fails(&self, ns: &str, entry: &str) -> String {
        let config = self.work.path(&format!("{ns}.yaml"));
        std::fs::write(
            &config,
            format!(
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n    - catalog: {}\n{entry}",
                self.cat.reference
            ),
        )
        .unwrap();
        let p = ferry(
            "ferry-pack",
            &["--config", config.to_str().unwrap(), "--dry-run", "-q"],
        );
        assert!(!p.ok, "{ns} should fail: {}", p.text());
        p.stderr
    }

    /// Checks the target: kept bundles' images there, dropped bundles' own images not; the
    /// rebuilt catalog holds exactly `kept` and is valid; the manifests validate.
    fn check(&self, ns: &str, index: &Index, manifests: &Path, kept: &[&str]) {
        let kept: BTreeSet<String> = kept.iter().map(|s| s.to_string()).collect();
        let all: BTreeSet<String> = self.cat.bundles.keys().cloned().collect();
        let dropped: BTreeSet<String> = all.difference(&kept).cloned().collect();
        let at = |r: &str| -> String {
            let (_, rest) = r.split_once('/').unwrap();
            format!("{}/{ns}/{rest}", self.target.host)
        };
        for b in &kept {
            for (r, d) in &self.cat.bundles[b].1 {
                let got = skopeo_raw(&at(r))
                    .unwrap_or_else(|| panic!("{ns}: {r} of kept {b} not at the target"));
                assert_eq!(&digest_of(&got), &d.to_string(), "{r}");
            }
        }
        for (r, _) in self.cat.images_only_of(&dropped) {
            assert!(
                skopeo_raw(&at(&r)).is_none(),
                "{ns}: {r} of a dropped bundle is at the target"
            );
        }
        // The index says what the catalog keeps.
        let c = &index.catalogs[0];
        let listed: BTreeSet<String> = c
            .packages
            .iter()
            .flat_map(|p| p.channels.iter().flat_map(|ch| ch.bundles.iter().cloned()))
            .collect();
        assert_eq!(listed, kept, "{ns}: index");
        // The rebuilt catalog, from the target.
        let image = format!("{}/{ns}/{}@{}", self.target.host, c.repository, c.digest);
        let fbc = unpack_configs(&image, &self.work.path(&format!("{ns}-rootfs")));
        let in_image: BTreeSet<String> = fbc
            .iter()
            .filter(|d| d["schema"] == "olm.bundle")
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(in_image, kept, "{ns}: rebuilt catalog");
        let problems = fbc_problems(&fbc);
        assert!(problems.is_empty(), "{ns}: {problems:?}");
        // Cluster manifests.
        let mut cs = 0;
        for e in std::fs::read_dir(manifests).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            let crd = if name.starts_with("cs-") {
                cs += 1;
                let text = String::from_utf8_lossy(&bytes);
                assert!(text.contains(&image), "{text}");
                "operators.coreos.com_catalogsources.yaml"
            } else if name.starts_with("cc-") {
                "olm.operatorframework.io_clustercatalogs.yaml"
            } else if name.starts_with("idms-") {
                "imagedigestmirrorsets.config.openshift.io.crd.yaml"
            } else if name.starts_with("itms-") {
                "imagetagmirrorsets.config.openshift.io.crd.yaml"
            } else {
                continue;
            };
            let problems = crd_problems(crd, &bytes);
            assert!(problems.is_empty(), "{name}: {problems:?}");
        }
        assert_eq!(cs, 1, "{ns}: one CatalogSource");
        // The rebuilt catalog exists only at the target: not in mapping.txt (oc image mirror
        // could not fetch it), but pulls of the source catalog are mirrored to it.
        let mapping = std::fs::read_to_string(manifests.join("mapping.txt")).unwrap();
        assert!(!mapping.contains(&c.digest.to_string()), "{mapping}");
        let itms =
            std::fs::read_to_string(manifests.join(format!("itms-ferry-{ns}.yaml"))).unwrap();
        let source_repo = self.cat.reference.rsplit_once(':').unwrap().0;
        assert!(itms.contains(&format!("source: {source_repo}\n")), "{itms}");
        assert!(
            itms.contains(&format!("{}/{ns}/{}", self.target.host, c.repository)),
            "{itms}"
        );
    }
}

/// `skopeo copy` the image into a dir: layout, then untar its layers in order, applying
/// whiteouts; returns the FBC documents under /configs, and asserts no cache is left.
fn unpack_configs(image: &str, work: &Path) -> Vec<Value> {
    let dir = work.join("image");
    let root = work.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--override-arch", "amd64"])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", dir.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let file = dir.join(hex);
        let list = Command::new("tar").arg("-tzf").arg(&file).output().unwrap();
        assert!(list.status.success());
        for name in String::from_utf8_lossy(&list.stdout).lines() {
            let name = name.trim_start_matches("./").trim_end_matches('/');
            let (parent, base) = name.rsplit_once('/').unwrap_or(("", name));
            if base == ".wh..wh..opq" {
                let d = root.join(parent);
                if d.is_dir() {
                    for e in std::fs::read_dir(&d).unwrap() {
                        let p = e.unwrap().path();
                        let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
                    }
                }
            } else if let Some(t) = base.strip_prefix(".wh.") {
                let p = root.join(parent).join(t);
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        }
        let x = Command::new("tar")
            .arg("-xzf")
            .arg(&file)
            .arg("-C")
            .arg(&root)
            .arg("--exclude=.wh.*")
            .output()
            .unwrap();
        assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    }
    let cache = root.join("tmp/cache");
    assert!(
        !cache.exists() || std::fs::read_dir(&cache).unwrap().next().is_none(),
        "a stale opm cache is left in the rebuilt catalog"
    );
    let mut docs = Vec::new();
    let mut stack = vec![root.join("configs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(
                    p.extension().is_some_and(|e| e == "json"),
                    "{}",
                    p.display()
                );
                for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
                    docs.push(v.unwrap());
                }
            }
        }
    }
    docs
}

/// What `opm validate` checks that matters here, written independently of ferry: each package
/// has its default channel; every channel entry is a bundle of the catalog; each channel has
/// exactly one head (an entry no other entry replaces or skips).
fn fbc_problems(docs: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let bundles: HashSet<(&str, &str)> = docs
        .iter()
        .filter(|d| d["schema"] == "olm.bundle")
        .map(|d| (d["package"].as_str().unwrap(), d["name"].as_str().unwrap()))
        .collect();
    let mut channels: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in docs.iter().filter(|d| d["schema"] == "olm.channel") {
        let pkg = c["package"].as_str().unwrap();
        channels
            .entry(pkg)
            .or_default()
            .push(c["name"].as_str().unwrap());
        let entries = c["entries"].as_array().unwrap();
        let mut covered = HashSet::new();
        for e in entries {
            let name = e["name"].as_str().unwrap();
            if !bundles.contains(&(pkg, name)) {
                out.push(format!("{pkg}/{}: entry {name} has no bundle", c["name"]));
            }
            if let Some(r) = e["replaces"].as_str() {
                covered.insert(r);
            }
            for s in e["skips"].as_array().into_iter().flatten() {
                covered.insert(s.as_str().unwrap());
            }
        }
        let heads = entries
            .iter()
            .filter(|e| !covered.contains(e["name"].as_str().unwrap()))
            .count();
        if heads != 1 {
            out.push(format!("{pkg}/{}: {heads} heads", c["name"]));
        }
    }
    for p in docs.iter().filter(|d| d["schema"] == "olm.package") {
        let name = p["name"].as_str().unwrap();
        let default = p["defaultChannel"].as_str().unwrap();
        if !channels.get(name).is_some_and(|c| c.contains(&default)) {
            out.push(format!("{name}: default channel {default} missing"));
        }
    }
    if docs.iter().any(|d| d["name"] == "obsolete-operator") {
        out.push("the package the source deleted by whiteout came back".into());
    }
    out
}

#[test]
fn catalog_alone_full_and_package_rules() {
    let w = Cat::new();
    // Catalog alone: the head of each package's default channel.
    let (i, m) = w.run("alone", "");
    w.check("alone", &i, &m, &["bar.v1.0.0", "baz.v1.1.0", "foo.v0.3.1"]);
    // full: everything.
    let (i, m) = w.run("full", "      full: true\n");
    let all: Vec<String> = w.cat.bundles.keys().cloned().collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    w.check("full", &i, &m, &all);
    // A package alone: the head of its default channel.
    let (i, m) = w.run("pkg", "      packages:\n        - name: bar\n");
    w.check("pkg", &i, &m, &["bar.v1.0.0"]);
    // full + a package: all of that package.
    let (i, m) = w.run(
        "fullpkg",
        "      full: true\n      packages:\n        - name: foo\n",
    );
    w.check(
        "fullpkg",
        &i,
        &m,
        &["foo.v0.1.0", "foo.v0.2.0", "foo.v0.3.0", "foo.v0.3.1"],
    );
    // The same filter gives the same rebuilt digest.
    let (again, _) = w.run("pkg2", "      packages:\n        - name: bar\n");
    let (first, _) = w.run("pkg3", "      packages:\n        - name: bar\n");
    assert_eq!(again.catalogs[0].digest, first.catalogs[0].digest);
}

#[test]
fn channel_range_and_bundle_rules() {
    let w = Cat::new();
    // Channels: the head of each.
    let (i, m) = w.run("chans", "      packages:\n        - name: bar\n          channels:\n            - name: alpha\n            - name: stable\n");
    w.check("chans", &i, &m, &["bar.v1.0.0"]);
    // A package version range, across its channels.
    let (i, m) = w.run("range", "      packages:\n        - name: foo\n          minVersion: 0.2.0\n          maxVersion: 0.3.0\n");
    w.check("range", &i, &m, &["foo.v0.2.0", "foo.v0.3.0"]);
    // A channel range plus the default channel.
    let (i, m) = w.run(
        "chrange",
        "      packages:\n        - name: bar\n          channels:\n            - name: alpha\n              minVersion: 0.1.0\n              maxVersion: 0.2.0\n            - name: stable\n",
    );
    w.check(
        "chrange",
        &i,
        &m,
        &["bar.v0.1.0", "bar.v0.2.0", "bar.v1.0.0"],
    );
    // Explicit bundles: the channel is rewired around the one left out.
    let (i, m) = w.run("bundles", "      packages:\n        - name: baz\n          bundles:\n            - name: baz.v1.0.0\n            - name: baz.v1.1.0\n");
    w.check("bundles", &i, &m, &["baz.v1.0.0", "baz.v1.1.0"]);
    // Channels with full: true: all of those channels.
    let (i, m) = w.run(
        "chfull",
        "      full: true\n      packages:\n        - name: bar\n          channels:\n            - name: alpha\n            - name: stable\n",
    );
    w.check(
        "chfull",
        &i,
        &m,
        &["bar.v0.1.0", "bar.v0.2.0", "bar.v1.0.0"],
    );
    // defaultChannel makes a kept channel the default.
    let (i, m) = w.run(
        "newdefault",
        "      packages:\n        - name: bar\n          defaultChannel: alpha\n          channels:\n            - name: alpha\n",
    );
    w.check("newdefault", &i, &m, &["bar.v1.0.0"]);
    assert_eq!(i.catalogs[0].packages[0].default_channel, "alpha");
    // targetCatalog / targetTag.
    let (i, m) = w.run("target", "      targetCatalog: mirror/my-index\n      targetTag: filtered\n      packages:\n        - name: baz\n");
    let c = &i.catalogs[0];
    assert_eq!(c.repository, "mirror/my-index");
    w.check("target", &i, &m, &["baz.v1.1.0"]);
    let tagged = skopeo_raw(&format!(
        "{}/target/mirror/my-index:filtered",
        w.target.host
    ))
    .unwrap();
    assert_eq!(digest_of(&tagged), c.digest.to_string());

    // Errors that name what exists.
    let e = w.fails("e1", "      packages:\n        - name: fooo\n");
    assert!(e.contains("closest: foo"), "{e}");
    let e = w.fails(
        "e2",
        "      packages:\n        - name: bar\n          channels:\n            - name: alpah\n",
    );
    assert!(e.contains("alpha"), "{e}");
    let e = w.fails(
        "e3",
        "      packages:\n        - name: bar\n          channels:\n            - name: alpha\n",
    );
    assert!(e.contains("default channel \"stable\""), "{e}");
    let e = w.fails(
        "e4",
        "      packages:\n        - name: baz\n          bundles:\n            - name: baz.v9\n",
    );
    assert!(e.contains("baz.v1."), "{e}");
}

/// Two catalogs in one config: the real JSON catalog (node-observability, by digest) and the
/// YAML one; bundle images named by tag are resolved and get an ImageTagMirrorSet.
#[test]
fn two_catalogs_json_and_yaml_in_one_config() {
    let w = Cat::new();
    let client = ferry_fixtures::seed::client().unwrap();
    let node = seed_catalog(
        &client,
        &w._source.host,
        &realdata().join("catalogs/redhat-node-observability-operator"),
        "redhat/node-index",
        "v1",
        &["amd64"],
    )
    .unwrap();
    let (index, manifests) = w.run_operators(
        "two",
        &format!(
            "    - catalog: {}\n    - catalog: {}\n      packages:\n        - name: foo\n",
            node.reference, w.cat.reference
        ),
    );
    assert_eq!(index.catalogs.len(), 2);
    let at = |r: &str| -> String {
        let (_, rest) = r.split_once('/').unwrap();
        format!("{}/two/{rest}", w.target.host)
    };
    for (b, (_, imgs)) in &node.bundles {
        for (r, d) in imgs {
            let got = skopeo_raw(&at(r)).unwrap_or_else(|| panic!("{r} of {b} missing"));
            assert_eq!(digest_of(&got), d.to_string());
        }
    }
    let names: Vec<String> = std::fs::read_dir(&manifests)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("cs-")).count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("cc-")).count(),
        2,
        "{names:?}"
    );
    // foo's bundle image is named by tag: resolved, pushed with its tag, and in the ITMS.
    let itms = std::fs::read(manifests.join("itms-ferry-two.yaml")).expect("itms written");
    let problems = crd_problems("imagetagmirrorsets.config.openshift.io.crd.yaml", &itms);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(String::from_utf8_lossy(&itms).contains("oc-mirror/oc-mirror-dev"));
    let rebuilt = &index.catalogs[0];
    let fbc = unpack_configs(
        &format!(
            "{}/two/{}@{}",
            w.target.host, rebuilt.repository, rebuilt.digest
        ),
        &w.work.path("two-rootfs"),
    );
    assert!(fbc_problems(&fbc).is_empty(), "{:?}", fbc_problems(&fbc));
}

/// `operators[].platforms`: the catalog keeps only the named platforms, of the rebuilt
/// catalog image and of every image its kept bundles name, and wins over `--arch`.
#[test]
fn catalog_platforms_select_what_is_carried() {
    let w = Cat::new();
    let config = w.work.path("platforms.yaml");
    std::fs::write(
        &config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n    - catalog: {}\n      packages:\n        - name: bar\n      platforms:\n        - os: linux\n          architecture: arm64\n",
            w.cat.reference
        ),
    )
    .unwrap();
    let p = ferry(
        "ferry-pack",
        &[
            "--config",
            config.to_str().unwrap(),
            "--dry-run",
            "--json",
            "--arch",
            "amd64",
            "-q",
        ],
    );
    assert!(p.ok, "{}", p.text());
    let plan: Value = serde_json::from_str(&p.stdout).unwrap();
    let images = plan["images"].as_array().unwrap();
    let lists: Vec<&Value> = images
        .iter()
        .filter(|i| {
            let t = i["mediaType"].as_str().unwrap();
            t.contains("index") || t.contains("manifest.list")
        })
        .collect();
    // The rebuilt catalog and the bundle's multi-arch related images; single-platform images
    // (the bundle itself) have nothing to select.
    assert!(lists.len() > 1, "{images:?}");
    for i in lists {
        assert_eq!(
            i["platforms"],
            serde_json::json!(["linux/arm64"]),
            "{} keeps only linux/arm64",
            i["source"]
        );
    }
    // The rebuilt catalog index lists one platform.
    let digest = plan["catalogs"][0]["digest"].as_str().unwrap();
    assert_ne!(digest, w.cat.digest.to_string());
}

/// `ferry-pack list operators`: the packages, default channels and heads a config would get,
/// read from the catalog image; with --package every bundle; a wrong package name is named
/// with the nearest ones.
#[test]
fn list_operators_shows_what_a_config_can_name() {
    let w = Cat::new();
    let list = |extra: &[&str]| {
        let mut args = vec!["list", "operators", "--catalog", &w.cat.reference];
        args.extend(extra);
        ferry("ferry-pack", &args)
    };
    let p = list(&["--json"]);
    assert!(p.ok, "{}", p.text());
    let l: Value = serde_json::from_str(&p.stdout).unwrap();
    assert_eq!(l["digest"], w.cat.digest.to_string());
    let packages: Vec<&str> = l["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let seeded: BTreeSet<&str> = w.cat.bundles.values().map(|(p, _)| p.as_str()).collect();
    assert_eq!(packages, seeded.into_iter().collect::<Vec<_>>());
    // The head of each default channel is what `catalog_alone_full_and_package_rules` packs
    // for a catalog alone.
    let heads: BTreeSet<String> = l["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let default = p["defaultChannel"].as_str().unwrap();
            let ch = p["channels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == default)
                .expect("default channel listed");
            ch["head"].as_str().unwrap().to_string()
        })
        .collect();
    let want: BTreeSet<String> = ["bar.v1.0.0", "baz.v1.1.0", "foo.v0.3.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(heads, want);

    let p = list(&["--package", "foo", "--json"]);
    assert!(p.ok, "{}", p.text());
    let l: Value = serde_json::from_str(&p.stdout).unwrap();
    assert_eq!(l["packages"].as_array().unwrap().len(), 1);
    let listed: BTreeSet<String> = l["packages"][0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["bundles"].as_array().unwrap().iter())
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    let seeded: BTreeSet<String> = w
        .cat
        .bundles
        .iter()
        .filter(|(_, (p, _))| p == "foo")
        .map(|(b, _)| b.clone())
        .collect();
    assert_eq!(listed, seeded);
    // Text output names the package and a version.
    let p = list(&["--package", "foo"]);
    assert!(
        p.ok && p.stdout.contains("foo.v0.3.1") && p.stdout.contains("0.3.1"),
        "{}",
        p.stdout
    );

    let p = list(&["--package", "fooo"]);
    assert!(!p.ok);
    assert!(
        p.stderr.contains("no package \"fooo\"") && p.stderr.contains("foo"),
        "{}",
        p.stderr
    );
}

/// `catalog: oci:///path`: a catalog in an OCI image layout on disk (written here by skopeo
/// from the seeded catalog, converted to OCI media types) is read, filtered, rebuilt and
/// pushed like a registry catalog; it lands at the layout directory's name; no mirror set
/// names it (nothing pulls it from a source registry).
#[test]
fn catalog_from_an_oci_layout() {
    let w = Cat::new();
    let layout = w.work.path("layouts/my-catalog");
    std::fs::create_dir_all(layout.parent().unwrap()).unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{}", w.cat.reference))
        .arg(format!("oci:{}", layout.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ns = "layout";
    let (index, manifests) = w.run_operators(
        ns,
        &format!(
            "    - catalog: oci://{}\n      packages:\n        - name: bar\n",
            layout.display()
        ),
    );
    let c = &index.catalogs[0];
    assert!(c.from_layout());
    assert_eq!(
        (c.registry.as_str(), c.repository.as_str(), c.tag.as_deref()),
        ("localhost", "my-catalog", Some("latest"))
    );
    // The rebuilt catalog at the target, by tag, holding exactly the kept bundle.
    let image = format!("{}/{ns}/my-catalog:latest", w.target.host);
    assert_eq!(
        digest_of(&skopeo_raw(&image).unwrap()),
        c.digest.to_string()
    );
    let fbc = unpack_configs(&image, &w.work.path("layout-rootfs"));
    let bundles: BTreeSet<&str> = fbc
        .iter()
        .filter(|d| d["schema"] == "olm.bundle")
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(bundles, BTreeSet::from(["bar.v1.0.0"]));
    assert!(fbc_problems(&fbc).is_empty());
    // Its bundle's images came from the registry they name.
    for (r, d) in &w.cat.bundles["bar.v1.0.0"].1 {
        let (_, rest) = r.split_once('/').unwrap();
        let got = skopeo_raw(&format!("{}/{ns}/{rest}", w.target.host))
            .unwrap_or_else(|| panic!("{r} not at the target"));
        assert_eq!(digest_of(&got), d.to_string());
    }
    // The CatalogSource points at it; no mirror set names the layout.
    let mut saw_cs = false;
    for e in std::fs::read_dir(&manifests).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        if name.starts_with("cs-") {
            saw_cs = true;
            assert!(
                text.contains(&format!("{}/{ns}/my-catalog", w.target.host)),
                "{text}"
            );
        }
        if name.starts_with("itms-") || name.starts_with("idms-") {
            assert!(
                !text.contains("oci:") && !text.contains("localhost/"),
                "{name}: {text}"
            );
        }
    }
    assert!(saw_cs);

    // A path that is not a layout is refused before anything is fetched.
    let config = w.work.path("bad.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n    - catalog: oci:///nonexistent/catalog\n",
    )
    .unwrap();
    let p = ferry(
        "ferry-pack",
        &["--config", config.to_str().unwrap(), "--dry-run", "-q"],
    );
    assert!(
        !p.ok && p.stderr.contains("is not an OCI image layout"),
        "{}",
        p.text()
    );
}
