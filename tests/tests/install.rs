//! From media to a running cluster: install-config-mirrors.yaml beside the IDMS (TLS target,
//! its CA as the trust bundle) and `ferry-unpack extract` writing the payload's installer and
//! oc with the mirrored release pinned in. What the binaries should hold is read
//! independently: the source images copied with skopeo, their layers read with the tar crate.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_e2e::release_world::ReleaseWorld;
use ferry_e2e::{copy_dir, ferry, Run};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::release::{CHANNEL, COMPONENT_REPO, RELEASE_REPO};
use ferry_format::Index;
use serde_json::Value;

const IMAGE_MARKER: &[u8] = b"\0_RELEASE_IMAGE_LOCATION_\0XXXX";
const VERSION_MARKER: &[u8] = b"\0_RELEASE_VERSION_LOCATION_\0XXXX";

/// Two versions, amd64 + arm64 and multi, with the components that carry commands (and
/// `installer-artifacts`, which in the fixture holds no build for this machine), pushed
/// to a TLS target.
fn world() -> ReleaseWorld {
    let names = [
        "cli",
        "installer",
        "baremetal-installer",
        "installer-artifacts",
        "etcd",
    ];
    ReleaseWorld::seed(
        &["4.15.0", "4.15.1"],
        &["amd64", "arm64"],
        true,
        names.iter().map(|s| s.to_string()).collect(),
        TestRegistry::start_tls().expect("TLS target registry"),
    )
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// source → mirrors, from an IDMS or from install-config's imageDigestSources.
fn mirror_map(entries: &Value) -> BTreeMap<String, Vec<String>> {
    entries
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            let mirrors = e["mirrors"].as_array().unwrap();
            (
                e["source"].as_str().unwrap().to_string(),
                mirrors
                    .iter()
                    .map(|m| m.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn idms_mirrors(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut all = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("idms-") {
            all.extend(mirror_map(&yaml(&p)["spec"]["imageDigestMirrors"]));
        }
    }
    assert!(!all.is_empty(), "no IDMS in {}", dir.display());
    all
}

#[test]
fn install_config_and_pinned_commands_from_the_media() {
    let w = world();
    let config = w.config(
        "latest.yaml",
        &format!("    architectures: [amd64, multi]\n    channels:\n      - name: {CHANNEL}\n"),
    );
    let dir = w.work.path("archive");
    let p = w.pack(&config, &dir, &[]);
    assert!(p.ok, "{}", p.text());
    let ca = w.target.ca_file.clone().expect("the TLS registry's CA");
    let manifests = w.work.path("manifests");
    let p = w.push_with(
        &dir,
        "ocp",
        &manifests,
        &["--ca-file", ca.to_str().unwrap()],
    );
    assert!(p.ok, "{}", p.text());

    // install-config-mirrors.yaml: the IDMS's mirrors, in install-config's shape, and the CA.
    let ic = yaml(&manifests.join("install-config-mirrors.yaml"));
    assert_eq!(
        mirror_map(&ic["imageDigestSources"]),
        idms_mirrors(&manifests)
    );
    let release_source = format!("{}/{RELEASE_REPO}", w.source.host);
    assert_eq!(
        mirror_map(&ic["imageDigestSources"])[&release_source],
        [format!("{}/ocp/{RELEASE_REPO}", w.target.host)]
    );
    assert_eq!(ic["additionalTrustBundlePolicy"], "Always");
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert_eq!(
        ic["additionalTrustBundle"].as_str().unwrap().trim(),
        pem.trim()
    );
    // Without --ca-file, no trust bundle; a file with no certificate is refused.
    let plain = w.work.path("plain");
    let m = manifests_run(&w, &dir, &plain, &[]);
    assert!(m.ok, "{}", m.text());
    let ic = yaml(&plain.join("install-config-mirrors.yaml"));
    assert!(ic.get("additionalTrustBundle").is_none(), "{ic}");
    let m = manifests_run(&w, &dir, &plain, &["--ca-file", w.work.pubkey().as_str()]);
    assert!(!m.ok);
    assert!(
        m.stderr.contains("holds no PEM certificate"),
        "{}",
        m.stderr
    );

    let layer = check_installer(&w, &dir);
    check_oc_and_multi(&w, &dir);
    check_refusals(&w, &dir, &layer);
}

fn manifests_run(w: &ReleaseWorld, dir: &Path, to: &Path, extra: &[&str]) -> Run {
    let target = format!("{}/ocp", w.target.host);
    let pubkey = w.work.pubkey();
    let mut args = vec![
        "manifests",
        dir.to_str().unwrap(),
        "--trust",
        &pubkey,
        "--to",
        &target,
        "--manifests-dir",
        to.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ferry("ferry-unpack", &args)
}

fn extract(
    w: &ReleaseWorld,
    dir: &Path,
    release: &str,
    command: &str,
    to: &Path,
    extra: &[&str],
) -> Run {
    let mirror = format!("{}/ocp", w.target.host);
    let pubkey = w.work.pubkey();
    let mut args = vec![
        "extract",
        dir.to_str().unwrap(),
        "--trust",
        &pubkey,
        "--release",
        release,
        "--command",
        command,
        "--to",
        to.to_str().unwrap(),
        "--mirror",
        &mirror,
    ];
    args.extend_from_slice(extra);
    ferry("ferry-unpack", &args)
}

/// The pinned installer: the source binary, byte for byte, but for the mirrored release
/// pullspec and the version written over the placeholders (each a C string). Returns the
/// layer it came from.
fn check_installer(w: &ReleaseWorld, dir: &Path) -> String {
    let bin = w.work.path("bin");
    let ambiguous = extract(w, dir, "4.15.1", "openshift-install", &bin, &[]);
    assert!(!ambiguous.ok);
    assert!(
        ambiguous.stderr.contains("4.15.1-amd64, 4.15.1-multi"),
        "{}",
        ambiguous.stderr
    );
    let r = extract(
        w,
        dir,
        "4.15.1-amd64",
        "openshift-install",
        &bin,
        &["--arch", "amd64", "--json"],
    );
    assert!(r.ok, "{}", r.text());
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        out["component"], "installer",
        "installer-artifacts has no build: {out}"
    );
    let rel = w.set.get("4.15.1", "amd64");
    let pullspec = format!("{}/ocp/{RELEASE_REPO}@{}", w.target.host, rel.digest);
    let original = component_file(
        w,
        &rel.pullspec,
        "amd64",
        "installer",
        "usr/bin/openshift-install",
    );
    let written = std::fs::read(bin.join("openshift-install")).unwrap();
    assert_pinned(
        &original,
        &written,
        &[(IMAGE_MARKER, &pullspec), (VERSION_MARKER, "4.15.1")],
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(bin.join("openshift-install"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(out["sha256"], ferry_e2e::digest_of(&written));
    assert_no_leftovers(&bin);
    out["layer"].as_str().unwrap().to_string()
}

/// oc gets the version only; from the multi release the installer is the chosen
/// architecture's, pinned to the manifest list.
fn check_oc_and_multi(w: &ReleaseWorld, dir: &Path) {
    let bin = w.work.path("bin-oc");
    let r = extract(w, dir, "4.15.1-amd64", "oc", &bin, &["--arch", "amd64"]);
    assert!(r.ok, "{}", r.text());
    let rel = w.set.get("4.15.1", "amd64");
    let original = component_file(w, &rel.pullspec, "amd64", "cli", "usr/bin/oc");
    let written = std::fs::read(bin.join("oc")).unwrap();
    assert_pinned(&original, &written, &[(VERSION_MARKER, "4.15.1")]);

    let bin = w.work.path("bin-multi");
    let r = extract(
        w,
        dir,
        "4.15.1-multi",
        "openshift-install",
        &bin,
        &["--arch", "arm64"],
    );
    assert!(r.ok, "{}", r.text());
    let multi = w.set.get("4.15.1", "multi");
    let pullspec = format!("{}/ocp/{RELEASE_REPO}@{}", w.target.host, multi.digest);
    let original = component_file(
        w,
        &multi.pullspec,
        "arm64",
        "installer",
        "usr/bin/openshift-install",
    );
    let amd = component_file(
        w,
        &rel.pullspec,
        "amd64",
        "installer",
        "usr/bin/openshift-install",
    );
    assert_ne!(
        original, amd,
        "the fixture's arm64 build differs from the amd64 one"
    );
    let written = std::fs::read(bin.join("openshift-install")).unwrap();
    assert_pinned(
        &original,
        &written,
        &[(IMAGE_MARKER, &pullspec), (VERSION_MARKER, "4.15.1")],
    );
}

/// A command the payload lacks, a binary without the placeholder, damaged media: refused,
/// and nothing left behind. `layer`: the installer's layer.
fn check_refusals(w: &ReleaseWorld, dir: &Path, layer: &str) {
    let bin = w.work.path("bin-refused");
    let r = extract(w, dir, "4.15.1-amd64", "ccoctl", &bin, &[]);
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("has no ccoctl: the payload has no cloud-credential-operator component"),
        "{}",
        r.stderr
    );
    let r = extract(
        w,
        dir,
        "4.15.1-amd64",
        "openshift-baremetal-install",
        &bin,
        &[],
    );
    assert!(!r.ok);
    assert!(
        r.stderr.contains("no release image placeholder"),
        "{}",
        r.stderr
    );
    let r = extract(w, dir, "4.14.9", "oc", &bin, &[]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("carries no release 4.14.9; it carries"),
        "{}",
        r.stderr
    );
    assert_no_leftovers(&bin);

    // One byte of the installer's layer flipped on a copy of the media.
    let damaged = w.work.path("damaged");
    copy_dir(dir, &damaged);
    let index =
        Index::from_slice(&std::fs::read(damaged.join("ferry-index.json")).unwrap()).unwrap();
    let blob = index
        .blobs
        .iter()
        .find(|b| b.digest.to_string() == layer)
        .unwrap();
    let part = &blob.parts[0];
    let vol = damaged.join(&index.volumes[part.volume as usize].name);
    let mut bytes = std::fs::read(&vol).unwrap();
    bytes[(part.offset + part.size / 2) as usize] ^= 0x40;
    std::fs::write(&vol, bytes).unwrap();
    let r = extract(
        w,
        &damaged,
        "4.15.1-amd64",
        "openshift-install",
        &bin,
        &["--arch", "amd64"],
    );
    assert!(!r.ok);
    assert!(
        r.stderr.contains("does not match the signed index"),
        "{}",
        r.stderr
    );
    assert_no_leftovers(&bin);
}

fn assert_no_leftovers(bin: &Path) {
    let names: Vec<String> = std::fs::read_dir(bin)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.iter().all(|n| !n.contains("ferry-tmp")),
        "left behind in {}: {names:?}",
        bin.display()
    );
}

/// `written` is `original` with each `(marker, value)` written as a C string where the
/// marker starts, and nothing else changed.
fn assert_pinned(original: &[u8], written: &[u8], values: &[(&[u8], &str)]) {
    assert_eq!(written.len(), original.len());
    let mut changed = vec![false; original.len()];
    for (marker, value) in values {
        let at = original
            .windows(marker.len())
            .position(|w| w == *marker)
            .expect("the source binary has the placeholder");
        let end = at + written[at..].iter().position(|&b| b == 0).unwrap();
        assert_eq!(std::str::from_utf8(&written[at..end]).unwrap(), *value);
        changed[at..=end].iter_mut().for_each(|c| *c = true);
    }
    let other = (0..original.len()).find(|&i| !changed[i] && original[i] != written[i]);
    assert_eq!(other, None, "a byte outside the placeholders changed");
}

/// The file at `path` in release `release_ref`'s `component` image, for `arch`: found through
/// the release's image-references, both images copied with skopeo.
fn component_file(
    w: &ReleaseWorld,
    release_ref: &str,
    arch: &str,
    component: &str,
    path: &str,
) -> Vec<u8> {
    let refs = image_file(w, release_ref, arch, "release-manifests/image-references");
    let refs: Value = serde_json::from_slice(&refs).unwrap();
    let from = refs["spec"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == component)
        .unwrap_or_else(|| panic!("no {component} in image-references"))["from"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let digest = from.split_once('@').unwrap().1;
    image_file(
        w,
        &format!("{}/{COMPONENT_REPO}@{digest}", w.source.host),
        arch,
        path,
    )
}

/// A file of an image (top layer first), via `skopeo copy` to a `dir:`.
fn image_file(w: &ReleaseWorld, reference: &str, arch: &str, path: &str) -> Vec<u8> {
    let out: PathBuf = w.work.path(&format!(
        "copy-{}",
        ferry_e2e::digest_of(reference.as_bytes()).replace(':', "-")
    ));
    if !out.join("manifest.json").exists() {
        let s = Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", "--override-arch", arch])
            .arg(format!("docker://{reference}"))
            .arg(format!("dir:{}", out.display()))
            .output()
            .unwrap();
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    for l in manifest["layers"].as_array().unwrap().iter().rev() {
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(out.join(hex)).unwrap());
        let mut tar = tar::Archive::new(gz);
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if name == path {
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                return b;
            }
        }
    }
    panic!("{path} not in {reference}");
}
