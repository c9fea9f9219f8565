//! OpenShift releases end to end: update graph → payload discovery → release signatures →
//! pack → verify → push → cluster manifests, against real `docker-registry` instances, a
//! loopback update service and signature store, signatures made by Debian's gpg, and checked
//! with skopeo and the real CRD schemas.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use ferry_e2e::release_world::{ReleaseWorld, VERSIONS};
use ferry_e2e::{bin, crd_problems, digest_of, ferry, skopeo_raw, Run};
use ferry_fixtures::gpg::GpgKey;
use ferry_fixtures::release::{self, CHANNEL, COMPONENT_REPO, RELEASE_REPO};
use ferry_format::index::{FailureKind, SignatureCheck};
use ferry_format::Index;

fn index_of(dir: &Path) -> Index {
    Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap()
}

fn released(index: &Index) -> Vec<(String, String)> {
    index
        .releases
        .iter()
        .map(|r| (r.version.clone(), r.architecture.clone()))
        .collect()
}

fn pairs(versions: &[&str], arches: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = arches
        .iter()
        .flat_map(|a| versions.iter().map(move |v| (v.to_string(), a.to_string())))
        .collect();
    v.sort_by(|x, y| (&x.1, &x.0).cmp(&(&y.1, &y.0)));
    v
}

/// The acceptance run: a channel over four versions, two architectures, with and without
/// shortestPath; everything reaches the target; the cluster manifests validate against the
/// real CRDs; signature ConfigMaps hold the served bytes; neighbouring releases share blobs.
#[test]
fn channel_releases_reach_the_target_with_their_manifests() {
    let t0 = std::time::Instant::now();
    let w = ReleaseWorld::new(&VERSIONS, &["amd64", "arm64"], false, None);
    eprintln!("seeded in {:?}", t0.elapsed());

    // 1. The whole range.
    let config = w.config(
        "range.yaml",
        &format!("    architectures: [amd64, arm64]\n    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.0\n        maxVersion: 4.15.3\n"),
    );
    let dir = w.work.path("range");
    let t = std::time::Instant::now();
    let p = w.pack(&config, &dir, &["--jobs", "8"]);
    assert!(p.ok, "{}", p.text());
    eprintln!("packed in {:?}: {}", t.elapsed(), p.stdout.trim());
    let index = index_of(&dir);
    assert_eq!(released(&index), pairs(&VERSIONS, &["amd64", "arm64"]));
    for r in &index.releases {
        assert_eq!(r.components, 183);
        assert_eq!(r.channels, [CHANNEL]);
        assert_eq!(r.signature_check, SignatureCheck::Verified);
        assert_eq!(r.verified_by, std::slice::from_ref(&w.gpg.fingerprint));
        assert_eq!(r.signatures.len(), 1);
        assert_eq!(r.digest, w.set.get(&r.version, &r.architecture).digest);
    }
    let v = w.verify(&dir);
    assert!(v.ok, "{}", v.text());
    assert!(v.stdout.contains("release 4.15.3 (arm64)"), "{}", v.stdout);
    let manifests = w.work.path("manifests");
    let t = std::time::Instant::now();
    let p = w.push(&dir, "ocp", &manifests);
    assert!(p.ok, "{}", p.text());
    eprintln!("pushed in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    w.assert_at_target("ocp", &pairs(&VERSIONS, &["amd64", "arm64"]));
    eprintln!("checked with skopeo in {:?}", t.elapsed());

    // Cluster manifests: schema-valid, pointing at the target.
    let idms = std::fs::read(manifests.join("idms-ferry-range.yaml")).expect("idms written");
    let problems = crd_problems("imagedigestmirrorsets.config.openshift.io.crd.yaml", &idms);
    assert!(problems.is_empty(), "{problems:?}");
    let idms_text = String::from_utf8(idms).unwrap();
    for repo in [RELEASE_REPO, COMPONENT_REPO] {
        assert!(
            idms_text.contains(&format!("{}/{repo}", w.source.host)),
            "{idms_text}"
        );
        assert!(
            idms_text.contains(&format!("{}/ocp/{repo}", w.target.host)),
            "{idms_text}"
        );
    }
    assert!(!manifests.join("icsp-ferry-range.yaml").exists());
    // Signature ConfigMaps: the exact bytes the store served.
    for r in &index.releases {
        let hex = r.digest.hex();
        let cm = std::fs::read_to_string(manifests.join(format!(
            "release-signatures/signature-sha256-{}.yaml",
            &hex[..16]
        )))
        .expect("signature configmap");
        let doc: serde_json::Value = serde_saphyr::from_str(&cm).unwrap();
        assert_eq!(doc["kind"], "ConfigMap");
        assert_eq!(doc["metadata"]["namespace"], "openshift-config-managed");
        assert_eq!(doc["metadata"]["name"], format!("sha256-{hex}"));
        assert_eq!(
            doc["metadata"]["labels"]["release.openshift.io/verification-signatures"],
            ""
        );
        let b64 = doc["binaryData"][format!("sha256-{hex}-1")]
            .as_str()
            .expect("key sha256-<hex>-1");
        let got = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let want = fetch(&format!("{}/sigs/sha256={hex}/signature-1", w.server.url()));
        assert_eq!(
            got, want,
            "ConfigMap bytes differ from the served signature"
        );
    }
    let mapping = std::fs::read_to_string(manifests.join("mapping.txt")).unwrap();
    assert_eq!(mapping.lines().count(), index.images.len());
    for l in mapping.lines() {
        let (src, dst) = l.split_once('=').expect("source=target");
        assert!(
            src.starts_with(&w.source.host) && src.contains("@sha256:"),
            "{l}"
        );
        assert!(dst.starts_with(&format!("{}/ocp/", w.target.host)), "{l}");
    }
    let releases = std::fs::read_to_string(manifests.join("releases.txt")).unwrap();
    let r = w.set.get("4.15.3", "amd64");
    assert!(
        releases.contains(&format!(
            "oc adm upgrade --allow-explicit-upgrade --to-image={}/ocp/{RELEASE_REPO}@{}",
            w.target.host, r.digest
        )),
        "{releases}"
    );

    // The offline command writes the same files, and the legacy ICSP on request.
    let offline = w.work.path("offline");
    let m = ferry(
        "ferry-unpack",
        &[
            "manifests",
            dir.to_str().unwrap(),
            "--trust",
            &w.work.pubkey(),
            "--to",
            &format!("{}/ocp", w.target.host),
            "--manifests-dir",
            offline.to_str().unwrap(),
            "--icsp",
        ],
    );
    assert!(m.ok, "{}", m.text());
    assert_eq!(
        std::fs::read(offline.join("idms-ferry-range.yaml")).unwrap(),
        idms_text.as_bytes()
    );
    let icsp = std::fs::read(offline.join("icsp-ferry-range.yaml")).unwrap();
    let problems = crd_problems(
        "imagecontentsourcepolicies.operator.openshift.io.crd.yaml",
        &icsp,
    );
    assert!(problems.is_empty(), "{problems:?}");

    // 2. shortestPath over the same range: 4.15.0 -> 4.15.2 -> 4.15.3 (or via 4.15.1), never
    //    the conditional edge 4.15.0 -> 4.15.3 while an unconditional path exists.
    let config = w.config(
        "shortest.yaml",
        &format!("    architectures: [amd64, arm64]\n    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.0\n        maxVersion: 4.15.3\n        shortestPath: true\n"),
    );
    let dir2 = w.work.path("shortest");
    let p = w.pack(&config, &dir2, &[]);
    assert!(p.ok, "{}", p.text());
    let index2 = index_of(&dir2);
    let got = released(&index2);
    assert_eq!(got.len(), 6, "{got:?}");
    for a in ["amd64", "arm64"] {
        let vs: Vec<&str> = got
            .iter()
            .filter(|p| p.1 == a)
            .map(|p| p.0.as_str())
            .collect();
        assert_eq!(vs.first(), Some(&"4.15.0"));
        assert_eq!(vs.last(), Some(&"4.15.3"));
    }
    let v = w.verify(&dir2);
    assert!(v.ok, "{}", v.text());
    let p = w.push(&dir2, "short", &w.work.path("manifests2"));
    assert!(p.ok, "{}", p.text());
    w.assert_at_target("short", &got);
    // The versions left out are not there.
    let skipped: Vec<(String, String)> = pairs(&VERSIONS, &["amd64"])
        .into_iter()
        .filter(|p| !got.contains(p))
        .collect();
    assert_eq!(skipped.len(), 1);
    let s = w.set.get(&skipped[0].0, "amd64");
    assert!(skopeo_raw(&format!(
        "{}/short/{RELEASE_REPO}@{}",
        w.target.host, s.digest
    ))
    .is_none());

    // 3. Two neighbouring releases: stored once what they share.
    let config = w.config(
        "pair.yaml",
        &format!("    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.1\n        maxVersion: 4.15.2\n"),
    );
    let dir3 = w.work.path("pair");
    let p = w.pack(&config, &dir3, &[]);
    assert!(p.ok, "{}", p.text());
    let index3 = index_of(&dir3);
    assert_eq!(released(&index3), pairs(&["4.15.1", "4.15.2"], &["amd64"]));
    let size_of =
        |d: &ferry_format::Digest| index3.blobs.iter().find(|b| &b.digest == d).unwrap().size;
    // Union of unique blobs (manifests, configs, layers) of the two releases' images, and what
    // storing each release on its own would take.
    let mut per_release_total = 0u64;
    let mut union = BTreeSet::new();
    for r in &index3.releases {
        let mut mine = BTreeSet::new();
        let img_digests: Vec<_> = std::iter::once(r.digest.clone())
            .chain(w.set.get(&r.version, "amd64").components.iter().cloned())
            .collect();
        for d in img_digests {
            let m = index3.manifest(&d).expect("manifest carried");
            mine.insert(d.clone());
            mine.extend(m.blobs.iter().cloned());
        }
        per_release_total += mine.iter().map(size_of).sum::<u64>();
        union.extend(mine);
    }
    let union_bytes: u64 = union.iter().map(size_of).sum();
    let archive_bytes: u64 = index3.volumes.iter().map(|v| v.size).sum::<u64>()
        + std::fs::metadata(dir3.join("ferry-index.json"))
            .unwrap()
            .len();
    let ratio = archive_bytes as f64 / union_bytes as f64;
    eprintln!(
        "neighbouring releases: union {union_bytes} B, separately {per_release_total} B, archive {archive_bytes} B, ratio {ratio:.4}"
    );
    assert!(
        ratio < 1.1,
        "archive is {ratio:.3}x the union of unique blobs"
    );
    assert!(
        per_release_total as f64 > 1.5 * union_bytes as f64,
        "releases share too little"
    );
}

/// Removes a flag and its value from an argument list.
fn drop_flag(args: &mut Vec<String>, flag: &str) {
    let at = args.iter().position(|a| a == flag).expect("flag present");
    args.drain(at..at + 2);
}

fn run_pack(args: &[String]) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ferry("ferry-pack", &refs)
}

fn fetch(url: &str) -> Vec<u8> {
    let c = ferry_fixtures::seed::client().unwrap();
    c.get_url(url, "*/*", 1 << 20).unwrap().expect("served")
}

/// A small world (12 components, three versions, amd64 + arm64 and the multi payload).
fn small() -> ReleaseWorld {
    ReleaseWorld::new(&VERSIONS[..3], &["amd64", "arm64"], true, Some(12))
}

fn latest_amd64(w: &ReleaseWorld) -> PathBuf {
    w.config(
        "latest.yaml",
        &format!("    channels:\n      - name: {CHANNEL}\n"),
    )
}

#[test]
fn release_signatures_are_checked_at_pack_time() {
    let w = small();
    let config = w.config(
        "range.yaml",
        &format!("    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.0\n        maxVersion: 4.15.2\n"),
    );
    let victim = w.set.get("4.15.1", "amd64").clone();
    let route = format!("/sigs/sha256={}/signature-1", victim.digest.hex());
    let good = fetch(&format!("{}{route}", w.server.url()));

    // Signed by a key the keyring does not hold.
    let stranger = GpgKey::generate("stranger").unwrap();
    let payload = ferry_fixtures::gpg::signature_payload(&victim.digest.to_string(), "x");
    w.server.set(&route, stranger.sign(&payload).unwrap());
    let dir = w.work.path("a");
    let p = w.pack(&config, &dir, &[]);
    assert!(!p.ok);
    assert!(p.stderr.contains("release 4.15.1 (amd64)"), "{}", p.stderr);
    assert!(
        p.stderr.contains("not signed by a trusted key"),
        "{}",
        p.stderr
    );
    assert!(!dir.join("ferry-index.json").exists());

    // Signed by the trusted key, but over another release's digest.
    let other = w.set.get("4.15.0", "amd64");
    let payload = ferry_fixtures::gpg::signature_payload(&other.digest.to_string(), "x");
    w.server.set(&route, w.gpg.sign(&payload).unwrap());
    let p = w.pack(&config, &dir, &[]);
    assert!(!p.ok);
    assert!(
        p.stderr
            .contains(&format!("it signs {}, not this release", other.digest)),
        "{}",
        p.stderr
    );

    // A damaged signature.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 10] ^= 0x40;
    w.server.set(&route, bad);
    let p = w.pack(&config, &dir, &[]);
    assert!(
        !p.ok && p.stderr.contains("release 4.15.1 (amd64)"),
        "{}",
        p.text()
    );

    // With --continue-on-error only that release is left out, and the archive says so.
    let p = w.pack(&config, &dir, &["--continue-on-error"]);
    assert!(!p.ok, "{}", p.text());
    let index = index_of(&dir);
    assert!(index.incomplete);
    assert_eq!(released(&index), pairs(&["4.15.0", "4.15.2"], &["amd64"]));
    assert!(index
        .failures
        .iter()
        .any(|f| f.kind == FailureKind::Release && f.subject.contains("4.15.1")));

    // No signature at all: a store that has none.
    let mut args = w.pack_args(&config, &w.work.path("b"), &[]);
    drop_flag(&mut args, "--signature-url");
    args.extend([
        "--signature-url".to_string(),
        format!("{}/nowhere", w.server.url()),
    ]);
    let p = run_pack(&args);
    assert!(!p.ok);
    assert!(p.stderr.contains("has no signature"), "{}", p.stderr);

    // No keyring: told what to pass.
    let mut args = w.pack_args(&config, &w.work.path("c"), &[]);
    drop_flag(&mut args, "--release-keyring");
    let p = run_pack(&args);
    assert!(
        !p.ok && p.stderr.contains("--release-keyring"),
        "{}",
        p.stderr
    );

    // --skip-release-signatures packs, loudly, and records it.
    let dir = w.work.path("d");
    let p = w.pack(&config, &dir, &["--skip-release-signatures"]);
    assert!(p.ok, "{}", p.text());
    assert!(
        p.stderr.contains("WARNING: --skip-release-signatures"),
        "{}",
        p.stderr
    );
    let index = index_of(&dir);
    assert_eq!(index.releases.len(), 3);
    assert!(index
        .releases
        .iter()
        .all(|r| r.signature_check == SignatureCheck::Skipped && r.signatures.is_empty()));

    // The good signature back: the release packs.
    w.server.set(&route, good);
    let dir = w.work.path("e");
    let p = w.pack(&config, &dir, &[]);
    assert!(p.ok, "{}", p.text());
    assert_eq!(index_of(&dir).releases.len(), 3);
}

#[test]
fn graph_file_plans_without_an_update_service() {
    let w = small();
    let graph = w.work.path("graph-amd64.json");
    std::fs::write(&graph, w.set.graph("amd64")).unwrap();
    let config = latest_amd64(&w);
    // No --graph-url; the environment points at a port nobody listens on.
    let mut args = w.pack_args(
        &config,
        &w.work.path("a"),
        &["--graph-file", &format!("amd64={}", graph.display())],
    );
    drop_flag(&mut args, "--graph-url");
    let before = w.server.requests().len();
    let out: Run = Command::new(bin("ferry-pack"))
        .args(&args)
        .env("UPDATE_URL_OVERRIDE", "http://127.0.0.1:9/graph")
        .env("REGISTRY_AUTH_FILE", "/nonexistent")
        .output()
        .unwrap()
        .into();
    assert!(out.ok, "{}", out.text());
    let asked: Vec<String> = w.server.requests()[before..].to_vec();
    assert!(asked.iter().all(|r| r.starts_with("/sigs/")), "{asked:?}");
    assert_eq!(
        released(&index_of(&w.work.path("a"))),
        pairs(&["4.15.2"], &["amd64"])
    );

    // UPDATE_URL_OVERRIDE is used when nothing else is given.
    let mut args = w.pack_args(&config, &w.work.path("b"), &["--dry-run"]);
    drop_flag(&mut args, "--graph-url");
    let out: Run = Command::new(bin("ferry-pack"))
        .args(&args)
        .env("UPDATE_URL_OVERRIDE", format!("{}/graph", w.server.url()))
        .env("REGISTRY_AUTH_FILE", "/nonexistent")
        .output()
        .unwrap()
        .into();
    assert!(out.ok, "{}", out.text());
    assert!(
        out.stdout.contains("release 4.15.2 (amd64)"),
        "{}",
        out.stdout
    );

    // Several channels from one saved graph (its nodes name their channels): the union, each
    // release listed with every channel that selected it.
    let config = w.config(
        "two.yaml",
        &format!("    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.0\n        maxVersion: 4.15.0\n      - name: fast-4.15\n"),
    );
    let p = w.pack(
        &config,
        &w.work.path("two"),
        &["--graph-file", graph.to_str().unwrap()],
    );
    assert!(p.ok, "{}", p.text());
    let index = index_of(&w.work.path("two"));
    assert_eq!(released(&index), pairs(&["4.15.0", "4.15.2"], &["amd64"]));
    assert_eq!(index.releases[0].channels, [CHANNEL]);
    assert_eq!(index.releases[1].channels, ["fast-4.15"]);

    // Unknown channel and version: named, with what exists nearby.
    let config = w.config("typo.yaml", "    channels:\n      - name: stable-4.51\n");
    let p = w.pack(
        &config,
        &w.work.path("c"),
        &["--graph-file", graph.to_str().unwrap()],
    );
    assert!(!p.ok);
    assert!(
        p.stderr.contains("channel stable-4.51 has no release") && p.stderr.contains(CHANNEL),
        "{}",
        p.stderr
    );
    let config = w.config(
        "version.yaml",
        &format!("    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.7\n"),
    );
    let p = w.pack(
        &config,
        &w.work.path("d"),
        &["--graph-file", graph.to_str().unwrap()],
    );
    assert!(!p.ok);
    assert!(
        p.stderr.contains("minVersion 4.15.7 is not in channel") && p.stderr.contains("4.15.2"),
        "{}",
        p.stderr
    );
}

/// The multi-architecture payload (a manifest list of release images whose components are
/// manifest lists), and a release named by pullspec without any graph.
#[test]
fn multi_payload_and_release_by_pullspec() {
    let w = small();
    let config = w.config(
        "multi.yaml",
        &format!("    architectures: [multi]\n    channels:\n      - name: {CHANNEL}\n"),
    );
    let dir = w.work.path("multi");
    let p = w.pack(&config, &dir, &[]);
    assert!(p.ok, "{}", p.text());
    let index = index_of(&dir);
    assert_eq!(
        released(&index),
        [("4.15.2".to_string(), "multi".to_string())]
    );
    let v = w.verify(&dir);
    assert!(v.ok, "{}", v.text());
    let p = w.push(&dir, "m", &w.work.path("mm"));
    assert!(p.ok, "{}", p.text());
    w.assert_at_target("m", &[("4.15.2".into(), "multi".into())]);
    // Every platform of every component list is there too.
    let r = w.set.get("4.15.2", "multi");
    for c in &r.components {
        let list = skopeo_raw(&format!("{}/m/{COMPONENT_REPO}@{c}", w.target.host)).unwrap();
        let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
        let children = list["manifests"].as_array().unwrap();
        assert_eq!(children.len(), 2);
        for ch in children {
            let d = ch["digest"].as_str().unwrap();
            let got = skopeo_raw(&format!("{}/m/{COMPONENT_REPO}@{d}", w.target.host))
                .unwrap_or_else(|| panic!("{d} missing"));
            assert_eq!(digest_of(&got), d);
        }
    }

    // By pullspec (a tag), no graph: the architecture comes from the image.
    let arm = w.set.get("4.15.1", "arm64");
    let config = w.config(
        "pullspec.yaml",
        &format!(
            "    release: {}/{RELEASE_REPO}:{}\n",
            w.source.host, arm.tag
        ),
    );
    let dir = w.work.path("pullspec");
    let mut args = w.pack_args(&config, &dir, &[]);
    drop_flag(&mut args, "--graph-url");
    args.extend([
        "--graph-url".to_string(),
        "http://127.0.0.1:9/none".to_string(),
    ]);
    let p = run_pack(&args);
    assert!(p.ok, "{}", p.text());
    let index = index_of(&dir);
    assert_eq!(
        released(&index),
        [("4.15.1".to_string(), "arm64".to_string())]
    );
    assert_eq!(index.releases[0].digest, arm.digest);
    assert!(index.releases[0].channels.is_empty());
}

/// `graph: true`: the graph-data image is built from the served tarball on the given base
/// image, pushed, and named by an UpdateService.
#[test]
fn graph_data_image_for_the_update_service() {
    let w = ReleaseWorld::new(&VERSIONS[..3], &["amd64"], false, Some(6));
    // A base image (two platforms) and a graph-data tarball.
    let client = ferry_fixtures::seed::client().unwrap();
    let base = ferry_fixtures::image::multi(
        ["amd64", "arm64"]
            .iter()
            .map(|a| {
                let l =
                    ferry_fixtures::image::layer(if *a == "amd64" { 11 } else { 12 }, 4096, true);
                (
                    a.to_string(),
                    ferry_fixtures::image::image("ubi", a, vec![l], true),
                )
            })
            .collect(),
        true,
    );
    ferry_fixtures::seed::push_multi(
        &client,
        &ferry_registry::Repo::new(&w.source.host, "ubi9/ubi"),
        Some("latest"),
        &base,
    )
    .unwrap();
    let channel_yaml = b"name: stable-4.15\nversions:\n  - 4.15.0\n  - 4.15.1\n".to_vec();
    let mut tb = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("channels/stable-4.15.yaml", channel_yaml.clone()),
        ("version", b"1\n".to_vec()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tb.append_data(&mut h, name, &data[..]).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tb.into_inner().unwrap()).unwrap();
    w.server.set("/graph-data", gz.finish().unwrap());

    let config = w.config(
        "graph.yaml",
        &format!("    graph: true\n    channels:\n      - name: {CHANNEL}\n"),
    );
    let dir = w.work.path("graph");
    let p = w.pack(
        &config,
        &dir,
        &[
            "--graph-data-url",
            &format!("{}/graph-data", w.server.url()),
            "--graph-base-image",
            &format!("{}/ubi9/ubi:latest", w.source.host),
        ],
    );
    assert!(p.ok, "{}", p.text());
    let index = index_of(&dir);
    let g = index.graph_data.clone().expect("graph data recorded");
    assert_eq!(g.files, 2);
    let v = w.verify(&dir);
    assert!(
        v.ok && v.stdout.contains("graph data: 2 files"),
        "{}",
        v.text()
    );
    let manifests = w.work.path("graph-manifests");
    let p = w.push(&dir, "osus", &manifests);
    assert!(p.ok, "{}", p.text());
    let us =
        std::fs::read_to_string(manifests.join("updateService.yaml")).expect("updateService.yaml");
    let doc: serde_json::Value = serde_saphyr::from_str(&us).unwrap();
    assert_eq!(doc["kind"], "UpdateService");
    assert_eq!(doc["metadata"]["namespace"], "openshift-update-service");
    let image = format!("{}/osus/openshift/graph-image@{}", w.target.host, g.digest);
    assert_eq!(doc["spec"]["graphDataImage"], image);
    assert_eq!(
        doc["spec"]["releases"],
        format!("{}/osus/{RELEASE_REPO}", w.target.host)
    );
    // The image at the target: latest tag, the data under /var/lib/cincinnati-graph-data,
    // the copy command, the base image's layer under it.
    let tagged = skopeo_raw(&format!(
        "{}/osus/openshift/graph-image:latest",
        w.target.host
    ))
    .unwrap();
    assert_eq!(digest_of(&tagged), g.digest.to_string());
    let out = w.work.path("graph-image");
    let c = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", out.display()))
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    let top = out.join(
        layers[1]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(top).unwrap(),
    ));
    let mut found = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy()
            == "var/lib/cincinnati-graph-data/channels/stable-4.15.yaml"
        {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            found = Some(v);
        }
    }
    assert_eq!(found.as_deref(), Some(&channel_yaml[..]));
    let cfg_digest = m["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(cfg_digest)).unwrap()).unwrap();
    assert_eq!(
        cfg["config"]["Cmd"][2],
        "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data"
    );
    assert_eq!(cfg["architecture"], "amd64");
    // Not in the mirror sets nor mapping.txt: it exists only at the target.
    let mapping = std::fs::read_to_string(manifests.join("mapping.txt")).unwrap();
    assert!(!mapping.contains("graph-image"), "{mapping}");
}

/// `kubeVirtContainer: true`: the KubeVirt container disk each payload's boot images name is
/// carried beside the components and pushed by digest; an older release whose stream names no
/// disk is packed without one and a note says so; a multi payload brings every architecture's
/// disk; without the key no disk travels.
#[test]
fn kubevirt_container_disks_travel_with_their_release() {
    let w = small();
    let amd = w.set.kubevirt["amd64"].clone();
    let arm = w.set.kubevirt["arm64"].clone();
    let carried = |index: &Index| -> BTreeSet<String> {
        index.images.iter().map(|i| i.digest.to_string()).collect()
    };
    let range = format!(
        "    kubeVirtContainer: true\n    channels:\n      - name: {CHANNEL}\n        minVersion: 4.15.0\n        maxVersion: 4.15.2\n"
    );
    let dir = w.work.path("kv");
    let p = w.pack(&w.config("kv.yaml", &range), &dir, &[]);
    assert!(p.ok, "{}", p.text());
    // 4.15.0's stream has no kubevirt entry (as releases before the disk): a note, no failure.
    assert!(
        p.stderr.contains("release 4.15.0 (amd64)")
            && p.stderr.contains("no KubeVirt disk for x86_64"),
        "{}",
        p.stderr
    );
    let index = index_of(&dir);
    assert_eq!(released(&index).len(), 3);
    let got = carried(&index);
    assert!(got.contains(&amd.to_string()), "the amd64 disk is carried");
    assert!(
        !got.contains(&arm.to_string()),
        "not the arm64 disk of an amd64 release"
    );
    let disk = index.images.iter().find(|i| i.digest == amd).unwrap();
    assert!(
        disk.reason.contains("KubeVirt container disk (x86_64)"),
        "{}",
        disk.reason
    );
    assert_eq!(disk.repository, COMPONENT_REPO);

    let v = w.verify(&dir);
    assert!(v.ok, "{}", v.text());
    let manifests = w.work.path("kv-manifests");
    let p = w.push(&dir, "kv", &manifests);
    assert!(p.ok, "{}", p.text());
    let at = format!("{}/kv/{COMPONENT_REPO}@{amd}", w.target.host);
    let pushed = skopeo_raw(&at).unwrap_or_else(|| panic!("{at} not at the target"));
    assert_eq!(digest_of(&pushed), amd.to_string());
    // The same mirror set that covers the components covers the disk's repository.
    let idms = std::fs::read_dir(&manifests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("idms-")
        })
        .expect("an IDMS written");
    let idms = std::fs::read_to_string(idms).unwrap();
    assert!(
        idms.contains(&format!("source: {}/{COMPONENT_REPO}", w.source.host)),
        "{idms}"
    );

    // A multi payload: both architectures' disks.
    let multi = format!(
        "    kubeVirtContainer: true\n    architectures: [multi]\n    channels:\n      - name: {CHANNEL}\n"
    );
    let dir = w.work.path("kv-multi");
    let p = w.pack(&w.config("kv-multi.yaml", &multi), &dir, &[]);
    assert!(p.ok, "{}", p.text());
    let got = carried(&index_of(&dir));
    assert!(got.contains(&amd.to_string()) && got.contains(&arm.to_string()));

    // Without the key, no disk.
    let plain = format!("    channels:\n      - name: {CHANNEL}\n");
    let dir = w.work.path("kv-none");
    let p = w.pack(&w.config("kv-none.yaml", &plain), &dir, &[]);
    assert!(p.ok, "{}", p.text());
    assert!(!carried(&index_of(&dir)).contains(&amd.to_string()));
}

/// `ferry-pack list releases`: a channel's versions with their payloads from the update
/// service, the conditional risk, and the version a plain channel entry packs; a saved graph
/// lists its channels.
#[test]
fn list_releases_shows_the_channel() {
    let w = ReleaseWorld::new(&VERSIONS, &["amd64"], false, Some(4));
    let url = format!("{}/graph", w.server.url());
    let p = ferry(
        "ferry-pack",
        &[
            "list",
            "releases",
            "--channel",
            CHANNEL,
            "--graph-url",
            &url,
            "--json",
        ],
    );
    assert!(p.ok, "{}", p.text());
    let l: serde_json::Value = serde_json::from_str(&p.stdout).unwrap();
    let listed: Vec<(String, String)> = l["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_string(),
                r["payload"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let seeded: Vec<(String, String)> = VERSIONS
        .iter()
        .map(|v| (v.to_string(), w.set.get(v, "amd64").pullspec.clone()))
        .collect();
    assert_eq!(listed, seeded);
    assert_eq!(l["defaultSelection"], serde_json::json!(["4.15.3"]));
    // The fixture graph's one conditional edge leads to the last version.
    assert_eq!(
        l["releases"][3]["conditionalRisks"],
        serde_json::json!([release::RISK])
    );
    assert!(l["releases"][2].get("conditionalRisks").is_none());

    // A saved graph: its channels, then one of them, with no update service.
    let file = w.work.path("graph.json");
    std::fs::write(&file, w.set.graph("amd64")).unwrap();
    let p = ferry(
        "ferry-pack",
        &["list", "releases", "--graph-file", file.to_str().unwrap()],
    );
    assert!(p.ok && p.stdout.contains(CHANNEL), "{}", p.text());
    let p = ferry(
        "ferry-pack",
        &[
            "list",
            "releases",
            "--graph-file",
            file.to_str().unwrap(),
            "--channel",
            "stable-4.51",
        ],
    );
    assert!(!p.ok && p.stderr.contains(CHANNEL), "{}", p.text());
}
