//! Retiring content at the site, against real registries: three releases pushed as three
//! archives; a DeleteImageSetConfiguration retires the oldest; the plan deletes its own
//! manifests and keeps back what the kept releases share; an execution that fails half way is
//! finished by running it again; distribution's garbage-collect then frees the oldest
//! release's unique blobs from disk while every image of the kept releases still copies with
//! skopeo at its digest; a plan made before the registry changed is refused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::process::Stdio;
use std::time::{Duration, Instant};

use ferry_e2e::{digest_of, ferry, ferry_command, pack, push, realdata, skopeo_raw, Workdir};
use ferry_fixtures::faults::{Fault, FaultProxy};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::release::{self, ReleaseSpec, CHANNEL, COMPONENT_REPO, RELEASE_REPO};
use ferry_format::Digest;

const VERSIONS: [&str; 3] = ["4.15.0", "4.15.1", "4.15.2"];

fn write_config(work: &Workdir, name: &str, kind: &str, section: &str, body: &str) -> PathBuf {
    let p = work.path(name);
    std::fs::write(
        &p,
        format!("kind: {kind}\napiVersion: mirror.openshift.io/v2alpha1\n{section}:\n  platform:\n{body}"),
    )
    .unwrap();
    p
}

/// Config and layer digests of a manifest at `reference` (a single-platform image).
fn blobs_of(reference: &str) -> Vec<Digest> {
    let raw = skopeo_raw(reference).unwrap_or_else(|| panic!("{reference} missing"));
    let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    std::iter::once(&m["config"])
        .chain(m["layers"].as_array().unwrap())
        .map(|d| d["digest"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn delete(args: &[&str]) -> ferry_e2e::Run {
    let mut a = vec!["delete"];
    a.extend(args);
    ferry("ferry-unpack", &a)
}

/// `delete --generate` (it must succeed): the run and the plan it wrote.
fn generate(config: &Path, from: &str, plan: &Path) -> (ferry_e2e::Run, serde_json::Value) {
    let g = delete(&[
        "--config",
        config.to_str().unwrap(),
        "--from",
        from,
        "--generate",
        plan.to_str().unwrap(),
    ]);
    assert!(g.ok, "{}", g.text());
    let doc = serde_json::from_slice(&std::fs::read(plan).unwrap()).unwrap();
    (g, doc)
}

/// The digests a plan deletes.
fn planned_digests(plan: &serde_json::Value) -> BTreeSet<String> {
    plan["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The blobs a plan says garbage collection frees.
fn freed_blobs(plan: &serde_json::Value) -> Vec<Digest> {
    plan["unreferencedBlobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[0].as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn oldest_release_retired_kept_ones_intact_space_freed() {
    let source = TestRegistry::start().unwrap();
    let target = TestRegistry::start().unwrap();
    let mut names = release::component_names(&realdata()).unwrap();
    names.truncate(12);
    let spec = ReleaseSpec {
        versions: VERSIONS.iter().map(|s| s.to_string()).collect(),
        arches: vec!["amd64".into()],
        multi: false,
        components: names,
    };
    let client = ferry_fixtures::seed::client().unwrap();
    let set = release::seed_releases(&client, &source.host, &spec).unwrap();
    let work = Workdir::new("ferry-delete-");
    let graph = work.path("graph.json");
    std::fs::write(&graph, set.graph("amd64")).unwrap();
    let to = format!("{}/site", target.host);

    // Three archives, one release each, pushed in turn.
    for v in VERSIONS {
        let config = write_config(
            &work,
            &format!("rel-{v}.yaml"),
            "ImageSetConfiguration",
            "mirror",
            &format!("    channels:\n      - name: {CHANNEL}\n        minVersion: {v}\n        maxVersion: {v}\n"),
        );
        let dir = work.path(&format!("a-{v}"));
        let graph_arg = graph.to_str().unwrap();
        let p = pack(
            &config,
            &dir,
            &work.key,
            &["--graph-file", graph_arg, "--skip-release-signatures"],
        );
        assert!(p.ok, "{}", p.text());
        let p = push(&dir, &work.key, &to, &[]);
        assert!(p.ok, "{}", p.text());
    }
    let at = |repo: &str, d: &Digest| format!("{}/site/{repo}@{d}", target.host);
    let old = set.get("4.15.0", "amd64").clone();
    let kept: Vec<_> = ["4.15.1", "4.15.2"]
        .iter()
        .map(|v| set.get(v, "amd64").clone())
        .collect();
    let kept_components: BTreeSet<&Digest> = kept.iter().flat_map(|r| &r.components).collect();
    let shared: Vec<&Digest> = old
        .components
        .iter()
        .filter(|c| kept_components.contains(c))
        .collect();
    let unique: Vec<&Digest> = old
        .components
        .iter()
        .filter(|c| !kept_components.contains(c))
        .collect();
    assert!(
        !shared.is_empty() && !unique.is_empty(),
        "the fixture shares some components"
    );
    // Blobs only the old release uses (worked out from the manifests at the target).
    let mut kept_blobs = BTreeSet::new();
    for r in &kept {
        kept_blobs.extend(blobs_of(&at(RELEASE_REPO, &r.digest)));
        for c in &r.components {
            kept_blobs.extend(blobs_of(&at(COMPONENT_REPO, c)));
        }
    }
    let mut old_blobs: BTreeSet<Digest> = blobs_of(&at(RELEASE_REPO, &old.digest))
        .into_iter()
        .collect();
    for c in &old.components {
        old_blobs.extend(blobs_of(&at(COMPONENT_REPO, c)));
    }
    let old_only: Vec<Digest> = old_blobs.difference(&kept_blobs).cloned().collect();
    assert!(!old_only.is_empty());

    // The plan.
    let del = write_config(
        &work,
        "delete.yaml",
        "DeleteImageSetConfiguration",
        "delete",
        &format!("    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.0\n        maxVersion: 4.15.0\n"),
    );
    let plan_path = work.path("plan.json");
    let plan_file = plan_path.to_str().unwrap();
    let (g, plan) = generate(&del, &to, &plan_path);
    let planned = planned_digests(&plan);
    assert!(
        planned.contains(&old.digest.to_string()),
        "the release image is deleted"
    );
    for c in &unique {
        assert!(planned.contains(&c.to_string()), "its own component {c}");
    }
    for c in &shared {
        assert!(
            !planned.contains(&c.to_string()),
            "shared component {c} must stay"
        );
    }
    let kept_back: Vec<&serde_json::Value> = plan["keptBack"].as_array().unwrap().iter().collect();
    for c in &shared {
        assert!(
            kept_back.iter().any(|k| k["digest"] == c.to_string()
                && k["why"]
                    .as_str()
                    .unwrap()
                    .starts_with("also needed by release 4.15.")),
            "{c} kept back: {kept_back:?}\n{}",
            g.stdout
        );
    }
    let announced: BTreeSet<String> = freed_blobs(&plan).iter().map(|d| d.to_string()).collect();
    let expected: BTreeSet<String> = old_only.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        announced, expected,
        "the plan announces exactly the old release's own blobs"
    );
    // Nothing deleted yet.
    assert!(skopeo_raw(&at(RELEASE_REPO, &old.digest)).is_some());

    crash_mid_delete(plan_file, &target.host, &unique);

    // An execution that fails half way (the registry errors on the third delete), then a
    // re-run that finishes.
    let proxy = FaultProxy::start(
        &target.host,
        vec![Fault::None, Fault::None, Fault::Status(500)],
        1000,
        Some("/manifests/sha256:"),
    )
    .unwrap();
    let via = format!("{}/site", proxy.host);
    let e = delete(&["--execute", plan_file, "--from", &via, "--retries", "0"]);
    assert!(!e.ok, "{}", e.text());
    assert!(
        e.stderr.contains("run the same command again"),
        "{}",
        e.stderr
    );
    drop(proxy);
    let e = delete(&["--execute", plan_file, "--from", &to]);
    assert!(e.ok, "{}", e.text());
    assert!(e.stdout.contains("garbage-collect"), "{}", e.stdout);
    assert!(
        !e.stdout.contains("(0 already gone)"),
        "the earlier runs' deletes count as done: {}",
        e.stdout
    );
    assert!(
        skopeo_raw(&at(RELEASE_REPO, &old.digest)).is_none(),
        "old release gone"
    );
    for c in &unique {
        assert!(skopeo_raw(&at(COMPONENT_REPO, c)).is_none(), "{c} gone");
    }
    check_kept(&target, &kept);

    // Garbage collection frees exactly the announced blobs.
    let size_of = |d: &Digest| {
        std::fs::metadata(target.blob_path(d))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let before: u64 = old_only.iter().map(size_of).sum();
    assert_eq!(before, plan["unreferencedBytes"].as_u64().unwrap());
    target.garbage_collect().unwrap();
    for d in &old_only {
        assert!(!target.blob_path(d).exists(), "{d} still on disk after GC");
    }
    for d in &kept_blobs {
        assert!(target.blob_path(d).exists(), "kept blob {d} was collected");
    }
    eprintln!(
        "announced {} bytes in {} blobs; garbage-collect removed all of them",
        before,
        old_only.len()
    );
    check_kept(&target, &kept);
    inventory_forgets(&work, &to, &old, &kept);

    refuse_changed_registry(&work, &target, &to, &kept[0]);
}

/// A crash: `--execute` killed (SIGKILL) while the registry has carried out a delete whose
/// answer the proxy withholds, so the process never learns it; no journal entry, no state
/// record. The next run must count that manifest as done.
fn crash_mid_delete(plan_file: &str, target_host: &str, components: &[&Digest]) {
    let present = || {
        components
            .iter()
            .filter(|d| skopeo_raw(&format!("{target_host}/site/{COMPONENT_REPO}@{d}")).is_some())
            .count()
    };
    let before = present();
    // Every component manifest request stalls; the first is the first delete.
    let stall = FaultProxy::start(
        target_host,
        vec![Fault::Stall(Duration::from_secs(120))],
        1,
        Some("ocp-v4.0-art-dev/manifests/sha256:"),
    )
    .unwrap();
    let via = format!("{}/site", stall.host);
    let mut child = ferry_command(
        "ferry-unpack",
        &["delete", "--execute", plan_file, "--from", &via],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    while stall.faults() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the delete never reached the stall"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "execute ended before the stall"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The registry has the request; give it a moment to carry it out, then crash.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed");
    assert_eq!(
        present(),
        before - 1,
        "the registry carried out the delete the killed process never heard back about"
    );
}

/// The site's inventory (what deltas are packed against) no longer lists the retired release,
/// and still lists the kept ones.
fn inventory_forgets(
    work: &Workdir,
    to: &str,
    old: &release::SeededRelease,
    kept: &[release::SeededRelease],
) {
    let out = work.path("inventory.json");
    let r = ferry(
        "ferry-unpack",
        &["inventory", "--from", to, "--out", out.to_str().unwrap()],
    );
    assert!(r.ok, "{}", r.text());
    let inv: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let manifests: BTreeSet<String> = inv["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["manifests"].as_array().unwrap().iter())
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert!(!manifests.contains(&old.digest.to_string()));
    for r in kept {
        assert!(manifests.contains(&r.digest.to_string()));
    }
}

/// Every image of the kept releases copies at its digest.
fn check_kept(target: &TestRegistry, kept: &[release::SeededRelease]) {
    for r in kept {
        let tag = format!("{}/site/{RELEASE_REPO}:{}", target.host, r.tag);
        assert_eq!(
            digest_of(&skopeo_raw(&tag).expect("kept release tag")),
            r.digest.to_string()
        );
        for c in &r.components {
            let got = skopeo_raw(&format!("{}/site/{COMPONENT_REPO}@{c}", target.host))
                .unwrap_or_else(|| panic!("kept component {c} missing"));
            assert_eq!(digest_of(&got), c.to_string());
        }
    }
}

/// A plan made, then a tag added to what it deletes: execute refuses and deletes nothing.
fn refuse_changed_registry(
    work: &Workdir,
    target: &TestRegistry,
    to: &str,
    r: &release::SeededRelease,
) {
    let del = write_config(
        work,
        "delete-2.yaml",
        "DeleteImageSetConfiguration",
        "delete",
        &format!("    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.1\n        maxVersion: 4.15.1\n"),
    );
    let plan = work.path("plan-2.json");
    generate(&del, to, &plan);
    let src = format!("docker://{}/site/{RELEASE_REPO}@{}", target.host, r.digest);
    let dst = format!(
        "docker://{}/site/{RELEASE_REPO}:pinned-by-admin",
        target.host
    );
    let st = std::process::Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &src,
            &dst,
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let e = delete(&["--execute", plan.to_str().unwrap(), "--from", to]);
    assert!(!e.ok);
    assert!(
        e.stderr.contains("changed since the plan") && e.stderr.contains("pinned-by-admin"),
        "{}",
        e.stderr
    );
    assert!(skopeo_raw(&format!("{}/site/{RELEASE_REPO}@{}", target.host, r.digest)).is_some());
    // A fresh plan sees the admin's tag and keeps the release back.
    let (_, p) = generate(&del, to, &plan);
    assert!(!planned_digests(&p).contains(&r.digest.to_string()));
    assert!(p["keptBack"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["why"].as_str().unwrap().contains("pinned-by-admin")));
}

/// A registry whose configuration does not allow deletes (distribution's default) is named
/// with what to change.
#[test]
fn a_registry_without_deletes_is_explained() {
    let reg = TestRegistry::start_without_deletes().unwrap();
    let client = ferry_fixtures::seed::client().unwrap();
    let repo = ferry_registry::Repo::new(reg.host.clone(), "a/b");
    let img = ferry_fixtures::image::image(
        "x",
        "amd64",
        vec![ferry_fixtures::image::layer(1, 1024, true)],
        true,
    );
    let d = ferry_fixtures::seed::push_image(&client, &repo, Some("1"), &img).unwrap();
    let e = client.delete_manifest(&repo, &d).unwrap_err();
    assert!(
        matches!(e, ferry_registry::RegistryError::DeleteRefused { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("storage.delete.enabled"), "{e}");
    assert!(skopeo_raw(&format!("{}/a/b:1", reg.host)).is_some());
}

/// `host/repo[:tag|@digest]` → `repo`.
fn repository_of(reference: &str) -> String {
    let path = reference.split_once('/').unwrap().1;
    let path = path.split_once('@').map_or(path, |x| x.0);
    match path.rsplit_once(':') {
        Some((p, _)) => p.to_string(),
        None => path.to_string(),
    }
}

/// One package of a catalog retired: its bundles' own images go, the images other packages'
/// bundles share stay (kept back, with why), every other bundle and related image and the
/// catalog itself still copy with skopeo at their digests.
#[test]
fn an_operator_package_retired_the_rest_of_its_catalog_intact() {
    let source = TestRegistry::start().unwrap();
    let target = TestRegistry::start().unwrap();
    let client = ferry_fixtures::seed::client().unwrap();
    let cat = ferry_fixtures::catalog::seed_catalog(
        &client,
        &source.host,
        &realdata().join("catalogs/oc-mirror-test-catalog-multi"),
        "redhat/redhat-operator-index",
        "v4.18",
        &["amd64", "arm64"],
    )
    .unwrap();
    let work = Workdir::new("ferry-delete-op-");
    let to = format!("{}/site", target.host);
    let config = work.path("cat.yaml");
    std::fs::write(
        &config,
        format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n  - catalog: {}\n    full: true\n", cat.reference),
    )
    .unwrap();
    let dir = work.path("archive");
    let p = pack(&config, &dir, &work.key, &[]);
    assert!(p.ok, "{}", p.text());
    let p = push(&dir, &work.key, &to, &[]);
    assert!(p.ok, "{}", p.text());
    let at = |r: &str, d: &Digest| format!("{to}/{}@{d}", repository_of(r));

    let foo: BTreeSet<String> = cat
        .bundles
        .iter()
        .filter(|(_, (pkg, _))| pkg == "foo")
        .map(|(b, _)| b.clone())
        .collect();
    let only_foo = cat.images_only_of(&foo);
    let all: BTreeSet<(String, Digest)> = cat
        .bundles
        .values()
        .flat_map(|(_, imgs)| imgs.iter().cloned())
        .collect();
    let stay: BTreeSet<&(String, Digest)> = all.difference(&only_foo).collect();
    let shared: Vec<&(String, Digest)> = cat
        .bundles
        .iter()
        .filter(|(b, _)| foo.contains(*b))
        .flat_map(|(_, (_, imgs))| imgs)
        .filter(|i| !only_foo.contains(*i))
        .collect();
    assert!(
        !only_foo.is_empty() && !shared.is_empty(),
        "the fixture shares a related image"
    );

    let del = work.path("delete.yaml");
    std::fs::write(
        &del,
        format!("kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  operators:\n  - catalog: {}\n    packages:\n    - name: foo\n    - name: nosuch\n", cat.reference),
    )
    .unwrap();
    let plan_path = work.path("plan.json");
    let plan_file = plan_path.to_str().unwrap();
    let (g, plan) = generate(&del, &to, &plan_path);
    assert!(
        g.stdout.contains("still lists the retired bundles"),
        "{}",
        g.stdout
    );
    assert!(
        g.stdout
            .contains("package nosuch: the catalog the site received does not have it"),
        "{}",
        g.stdout
    );
    let planned = planned_digests(&plan);
    for (r, d) in &only_foo {
        assert!(
            planned.contains(&d.to_string()),
            "{r} is retired\n{}",
            g.stdout
        );
    }
    for (r, d) in &stay {
        assert!(!planned.contains(&d.to_string()), "{r} must stay");
    }
    let kept_back = plan["keptBack"].as_array().unwrap();
    for (r, d) in &shared {
        assert!(
            kept_back.iter().any(|k| k["digest"] == d.to_string()
                && k["why"].as_str().unwrap().contains("bundle ba")),
            "{r} kept back for bar or baz: {kept_back:?}"
        );
    }

    let e = delete(&["--execute", plan_file, "--from", &to]);
    assert!(e.ok, "{}", e.text());
    let freed = freed_blobs(&plan);
    assert!(!freed.is_empty());
    assert!(freed.iter().all(|d| target.blob_path(d).exists()));
    target.garbage_collect().unwrap();
    for d in &freed {
        assert!(!target.blob_path(d).exists(), "{d} still on disk after GC");
    }
    eprintln!(
        "retired package foo: {} images, {} blobs / {} bytes freed as announced",
        only_foo.len(),
        freed.len(),
        plan["unreferencedBytes"]
    );
    for (r, d) in &only_foo {
        assert_eq!(skopeo_raw(&at(r, d)), None, "{r} gone");
    }
    for (r, d) in &stay {
        let got = skopeo_raw(&at(r, d)).map(|b| digest_of(&b));
        assert_eq!(got, Some(d.to_string()), "{r} intact");
    }
    let index =
        ferry_format::Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap())
            .unwrap();
    let c = &index.catalogs[0];
    assert_eq!(
        skopeo_raw(&format!("{to}/{}@{}", c.repository, c.digest)).map(|b| digest_of(&b)),
        Some(c.digest.to_string()),
        "the catalog stays"
    );
}
