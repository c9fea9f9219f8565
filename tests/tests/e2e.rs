//! pack -> verify -> push against two real registries, checked with skopeo; and tampered media.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ferry_e2e::{copy_dir, digest_of, ferry, skopeo_raw, World};
use ferry_format::Index;

fn load_index(dir: &Path) -> Index {
    Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap()
}

/// Source images whose manifests or blobs live (partly) in volume `vol` of the index.
fn images_touching_volume(index: &Index, vol: u32) -> BTreeSet<String> {
    let in_vol: BTreeSet<_> = index
        .blobs
        .iter()
        .filter(|b| b.parts.iter().any(|p| p.volume == vol))
        .map(|b| b.digest.clone())
        .collect();
    index
        .images
        .iter()
        .filter(|img| {
            let c = index.closure(&img.digest);
            c.manifests
                .iter()
                .chain(&c.blobs)
                .any(|d| in_vol.contains(d))
        })
        .map(|img| img.source.clone())
        .collect()
}

#[test]
fn pack_verify_push_gives_identical_digests_at_the_target() {
    let w = World::new();
    let archive = w.path("archive");
    let pack = w.pack(&archive);
    assert!(pack.ok, "pack failed: {}", pack.text());
    let index = load_index(&archive);
    assert_eq!(index.images.len(), w.seeded.len());

    // Shared layers stored once: archive bytes within 1% of the unique blob bytes (+ index).
    let unique: u64 = index.blobs.iter().map(|b| b.size).sum();
    let volumes: u64 = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tar"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(volumes, index.total_volume_bytes());
    assert!(
        volumes as f64 <= 1.01 * unique as f64,
        "volumes {volumes} bytes vs unique blobs {unique} bytes"
    );
    let digests: BTreeSet<_> = index.blobs.iter().map(|b| &b.digest).collect();
    assert_eq!(digests.len(), index.blobs.len(), "a blob is stored twice");
    // The big layer is larger than a volume: it is split, and no volume exceeds the limit.
    assert!(
        index.blobs.iter().any(|b| b.parts.len() > 1),
        "no blob was split"
    );
    assert!(index.volumes.iter().all(|v| v.size <= 1024 * 1024));
    assert!(index.volumes.len() >= 3);

    let verify = w.verify(&archive);
    assert!(verify.ok, "verify failed: {}", verify.text());
    assert!(verify.stdout.contains("OK:"), "{}", verify.stdout);

    let push = w.push(&archive, "mirror");
    assert!(push.ok, "push failed: {}", push.text());

    // skopeo (the independent client) sees the same manifest bytes at the target for every
    // image, by tag and by digest, and for every platform of the indexes.
    for s in &w.seeded {
        let src_ref = match &s.tag {
            Some(t) => format!("{}/{}:{t}", w.source.host, s.repository),
            None => format!("{}/{}@{}", w.source.host, s.repository, s.digest),
        };
        let src = skopeo_raw(&src_ref).expect("source manifest");
        let dst = skopeo_raw(&w.target_ref(s, "mirror"))
            .unwrap_or_else(|| panic!("{} missing at target", s.reference));
        assert_eq!(digest_of(&src), digest_of(&dst), "{}", s.reference);
        assert_eq!(digest_of(&dst), s.digest.to_string());
        if let Some(t) = &s.tag {
            let tagged = skopeo_raw(&format!("{}/mirror/{}:{t}", w.target.host, s.repository))
                .unwrap_or_else(|| panic!("tag {t} of {} missing", s.repository));
            assert_eq!(digest_of(&tagged), s.digest.to_string());
        }
        let doc: serde_json::Value = serde_json::from_slice(&src).unwrap();
        if let Some(children) = doc["manifests"].as_array() {
            assert!(children.len() >= 2);
            for c in children {
                let d = c["digest"].as_str().unwrap();
                let child = skopeo_raw(&format!("{}/mirror/{}@{d}", w.target.host, s.repository))
                    .unwrap_or_else(|| {
                        panic!("platform {} of {} missing", c["platform"], s.repository)
                    });
                assert_eq!(digest_of(&child), d);
            }
        }
    }

    // skopeo can copy the image with the split layer out of the target: its blobs are whole.
    let big = w
        .seeded
        .iter()
        .find(|s| s.repository == "data/big")
        .unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--retry-times=0"])
        .arg(format!("docker://{}", w.target_ref(big, "mirror")))
        .arg(format!("dir:{}", w.path("big-copy").display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second push finds everything there and uploads nothing.
    let again = w.push(&archive, "mirror");
    assert!(again.ok, "{}", again.text());
    assert!(
        again.stdout.contains("blobs: 0 uploaded"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("manifests: 0 pushed"),
        "{}",
        again.stdout
    );
}

#[test]
fn index_signature_verifies_with_ssh_keygen() {
    let w = World::new();
    let archive = w.path("archive");
    assert!(w.pack(&archive).ok);
    let allowed = w.path("allowed_signers");
    let pubkey = std::fs::read_to_string(w.pubkey()).unwrap();
    std::fs::write(&allowed, format!("ferry {pubkey}")).unwrap();
    let check = |index: &Path| {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ssh-keygen -Y verify -f '{}' -I ferry -n ferry-index -s '{}' < '{}'",
                allowed.display(),
                archive.join("ferry-index.json.sig").display(),
                index.display()
            ))
            .output()
            .unwrap()
    };
    let good = check(&archive.join("ferry-index.json"));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("Good \"ferry-index\" signature"));
    let mut edited = std::fs::read(archive.join("ferry-index.json")).unwrap();
    edited[100] ^= 1;
    std::fs::write(w.path("edited.json"), edited).unwrap();
    assert!(!check(&w.path("edited.json")).status.success());
}

/// One archive, five kinds of damage; each must fail verify by name and keep the affected
/// images (or, for index damage, everything) out of the target.
#[test]
fn tampered_media_fails_verify_and_pushes_nothing_affected() {
    let w = World::new();
    let good = w.path("good");
    assert!(w.pack(&good).ok);
    let index = load_index(&good);
    let all: Vec<_> = w.seeded.clone();
    let absent = |ns: &str, sources: &BTreeSet<String>| {
        for s in &all {
            let there = skopeo_raw(&w.target_ref(s, ns)).is_some();
            let affected = sources.contains(&s.reference);
            assert_eq!(
                there, !affected,
                "{ns}: {} there={there} affected={affected}",
                s.reference
            );
        }
    };

    // 1. A flipped byte in a layer used by one image only.
    {
        let dir = w.path("flip");
        copy_dir(&good, &dir);
        let app_c = w
            .seeded
            .iter()
            .find(|s| s.repository == "tools/app-c")
            .unwrap();
        let m = index.manifest(&app_c.digest).unwrap();
        let layer = index.blob(m.blobs.last().unwrap()).unwrap();
        let part = &layer.parts[0];
        let vol = dir.join(&index.volumes[part.volume as usize].name);
        let mut bytes = std::fs::read(&vol).unwrap();
        bytes[(part.offset + 7) as usize] ^= 0x40;
        std::fs::write(&vol, bytes).unwrap();
        let v = w.verify(&dir);
        assert!(!v.ok);
        assert!(
            v.stdout.contains(&format!(
                "{}: blob content does not match its digest",
                layer.digest
            )),
            "{}",
            v.stdout
        );
        assert!(
            v.stdout
                .contains(&format!("AFFECTED IMAGE: {}", app_c.reference)),
            "{}",
            v.stdout
        );
        let p = w.push(&dir, "flip");
        assert!(!p.ok);
        assert!(
            p.stdout.contains("NOT PUSHED") && p.stdout.contains("corrupt"),
            "{}",
            p.text()
        );
        absent("flip", &[app_c.reference.clone()].into_iter().collect());
    }

    // 1b. A flipped byte in the streamed (large, split) layer: the upload is cancelled before
    //     commit, so the target holds neither the image nor the blob.
    {
        let dir = w.path("flip-big");
        copy_dir(&good, &dir);
        let big = w
            .seeded
            .iter()
            .find(|s| s.repository == "data/big")
            .unwrap();
        let layer = index.blobs.iter().max_by_key(|b| b.size).unwrap();
        assert!(layer.size > 4 * 1024 * 1024 && layer.parts.len() > 2);
        let part = &layer.parts[2];
        let vol = dir.join(&index.volumes[part.volume as usize].name);
        let mut bytes = std::fs::read(&vol).unwrap();
        bytes[(part.offset + 1000) as usize] ^= 1;
        std::fs::write(&vol, bytes).unwrap();
        let v = w.verify(&dir);
        assert!(!v.ok);
        assert!(
            v.stdout.contains(&format!("{}: part 3 of", layer.digest)),
            "{}",
            v.stdout
        );
        let p = w.push(&dir, "flipbig");
        assert!(!p.ok);
        assert!(p.stdout.contains("corrupt bytes"), "{}", p.text());
        absent("flipbig", &[big.reference.clone()].into_iter().collect());
        let client = ferry_fixtures::seed::client().unwrap();
        let repo = ferry_registry::Repo::new(w.target.host.clone(), "flipbig/data/big");
        assert!(
            !client.blob_exists(&repo, &layer.digest).unwrap(),
            "corrupt blob was committed"
        );
    }

    // 2. A truncated last volume.
    {
        let dir = w.path("trunc");
        copy_dir(&good, &dir);
        let last = (index.volumes.len() - 1) as u32;
        let vol = dir.join(&index.volumes[last as usize].name);
        let len = std::fs::metadata(&vol).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&vol)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let v = w.verify(&dir);
        assert!(!v.ok);
        assert!(
            v.stdout.contains(&format!(
                "{}: volume is {} bytes",
                index.volumes[last as usize].name,
                len / 2
            )),
            "{}",
            v.stdout
        );
        let affected = images_touching_volume(&index, last);
        assert!(!affected.is_empty());
        assert!(w.push(&dir, "trunc").stdout.contains("NOT PUSHED"));
        absent("trunc", &affected);
    }

    // 3. A missing volume.
    {
        let dir = w.path("missing");
        copy_dir(&good, &dir);
        std::fs::remove_file(dir.join(&index.volumes[1].name)).unwrap();
        let v = w.verify(&dir);
        assert!(!v.ok);
        assert!(
            v.stdout
                .contains(&format!("{}: volume is missing", index.volumes[1].name)),
            "{}",
            v.stdout
        );
        let affected = images_touching_volume(&index, 1);
        assert!(!affected.is_empty() && affected.len() < all.len());
        assert!(!w.push(&dir, "missing").ok);
        absent("missing", &affected);
    }

    let everything: BTreeSet<String> = all.iter().map(|s| s.reference.clone()).collect();
    // 4. An edited index (a tag renamed): the signature no longer matches.
    {
        let dir = w.path("edited");
        copy_dir(&good, &dir);
        let text = std::fs::read_to_string(dir.join("ferry-index.json")).unwrap();
        assert!(text.contains("\"1.0\""));
        std::fs::write(
            dir.join("ferry-index.json"),
            text.replacen("\"1.0\"", "\"6.6\"", 1),
        )
        .unwrap();
        let v = w.verify(&dir);
        assert!(!v.ok);
        assert!(
            v.stderr
                .contains("signature does not match the index bytes"),
            "{}",
            v.stderr
        );
        let p = w.push(&dir, "edited");
        assert!(!p.ok && p.stderr.contains("signature"), "{}", p.text());
        absent("edited", &everything);
    }

    // 5. Signed with another key.
    {
        let dir = w.path("otherkey");
        copy_dir(&good, &dir);
        let other = ferry_e2e::keygen(w.work.path(), "other.key");
        std::fs::remove_file(dir.join("ferry-index.json.sig")).unwrap();
        let out = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", "ferry-index", "-f"])
            .arg(&other)
            .arg(dir.join("ferry-index.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = w.verify(&dir);
        assert!(!v.ok);
        assert!(v.stderr.contains("not by the trusted key"), "{}", v.stderr);
        assert!(!w.push(&dir, "otherkey").ok);
        absent("otherkey", &everything);
    }
}

#[test]
fn platform_filter_keeps_only_the_chosen_architecture() {
    let w = World::new();
    let multi = w
        .seeded
        .iter()
        .find(|s| s.repository == "multi/app")
        .unwrap();
    std::fs::write(
        &w.config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: {}\n      platforms:\n        - os: linux\n          architecture: arm64\n",
            multi.reference
        ),
    )
    .unwrap();
    let archive = w.path("arm");
    let pack = w.pack(&archive);
    assert!(pack.ok, "{}", pack.text());
    let index = load_index(&archive);
    assert_eq!(index.images[0].platforms, vec!["linux/arm64".to_string()]);
    let top = index.manifest(&multi.digest).unwrap();
    assert_eq!(top.children.len(), 1, "only the arm64 child is carried");
    assert!(w.verify(&archive).ok);

    // CNCF distribution refuses an index whose other platforms are missing: push says so and
    // what to do, and still delivers the carried platform by digest.
    let push = w.push(&archive, "sparse");
    assert!(!push.ok);
    assert!(push.stdout.contains("platform filter"), "{}", push.stdout);
    let src: serde_json::Value =
        serde_json::from_slice(&skopeo_raw(&multi.reference).unwrap()).unwrap();
    for child in src["manifests"].as_array().unwrap() {
        let arch = child["platform"]["architecture"].as_str().unwrap();
        let d = child["digest"].as_str().unwrap();
        let there = skopeo_raw(&format!(
            "{}/sparse/{}@{d}",
            w.target.host, multi.repository
        ));
        assert_eq!(there.is_some(), arch == "arm64", "{arch}");
    }
}

/// The volumes are plain tar files: GNU tar lists each one alone, and extracting them all (and
/// joining split blobs as SPEC.md says) gives an OCI layout that skopeo reads without ferry.
#[test]
fn extracted_volumes_are_an_oci_layout_skopeo_reads() {
    let w = World::new();
    let archive = w.path("archive");
    assert!(w.pack(&archive).ok);
    let index = load_index(&archive);
    let layout = w.path("layout");
    std::fs::create_dir_all(&layout).unwrap();
    for v in &index.volumes {
        let list = Command::new("tar")
            .arg("-tf")
            .arg(archive.join(&v.name))
            .output()
            .unwrap();
        assert!(list.status.success(), "tar cannot list {}", v.name);
        let names = String::from_utf8_lossy(&list.stdout);
        assert!(names.lines().all(|n| n.starts_with("v2/")), "{names}");
        let x = Command::new("tar")
            .arg("-xf")
            .arg(archive.join(&v.name))
            .arg("-C")
            .arg(&layout)
            .status()
            .unwrap();
        assert!(x.success());
    }
    let join = Command::new("sh")
        .arg("-c")
        .arg("cd v2/blobs/sha256 && for p in *.part000001; do h=${p%.part000001}; cat \"$h\".part* > \"$h\" && rm \"$h\".part*; done")
        .current_dir(&layout)
        .status()
        .unwrap();
    assert!(join.success());
    let oci_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("v2/index.json")).unwrap()).unwrap();
    let mut by_skopeo = 0;
    for s in &w.seeded {
        let name = match &s.tag {
            Some(t) => format!("{}/{}:{t}", w.source.host, s.repository),
            None => format!("{}/{}@{}", w.source.host, s.repository, s.digest),
        };
        let desc = oci_index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not in v2/index.json"));
        assert_eq!(desc["digest"], s.digest.to_string().as_str());
        let blob = std::fs::read(layout.join("v2/blobs/sha256").join(s.digest.hex())).unwrap();
        assert_eq!(digest_of(&blob), s.digest.to_string());
        // skopeo's oci: transport selects only OCI-typed manifests (see SPEC.md §3.4).
        if !desc["mediaType"].as_str().unwrap().contains("oci") {
            continue;
        }
        by_skopeo += 1;
        let out = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{name}", layout.join("v2").display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(digest_of(&out.stdout), s.digest.to_string(), "{name}");
    }
    assert!(
        by_skopeo >= 5,
        "only {by_skopeo} images checked with skopeo"
    );
    // A full copy out of the layout reads (and checks) every blob of the split-layer image.
    let big = w
        .seeded
        .iter()
        .find(|s| s.repository == "data/big")
        .unwrap();
    let out = Command::new("skopeo")
        .arg("copy")
        .arg(format!(
            "oci:{}:{}/data/big:v1",
            layout.join("v2").display(),
            w.source.host
        ))
        .arg(format!("dir:{}", w.path("big-dir").display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(w.path("big-dir").join("manifest.json").exists(), "{big:?}");
}

/// Media that arrives in parts: pushing what is there first, then the whole set, finishes the
/// job and uploads only what was missing.
#[test]
fn push_resumes_where_partial_media_left_off() {
    let w = World::new();
    let full = w.path("full");
    assert!(w.pack(&full).ok);
    let index = load_index(&full);
    let part = w.path("part");
    copy_dir(&full, &part);
    std::fs::remove_file(part.join(&index.volumes[0].name)).unwrap();
    let first = w.push(&part, "resume");
    assert!(
        !first.ok,
        "a push with a missing volume must report failure"
    );
    let missing: BTreeSet<_> = index
        .blobs
        .iter()
        .filter(|b| b.parts.iter().any(|p| p.volume == 0))
        .filter(|b| index.manifest(&b.digest).is_none())
        .map(|b| b.digest.clone())
        .collect();
    assert!(!missing.is_empty());
    let second = w.push(&full, "resume");
    assert!(second.ok, "{}", second.text());
    // Each missing blob is uploaded once and mounted where other repositories need it.
    let uploaded: usize = second
        .stdout
        .split("blobs: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(uploaded, missing.len(), "{}", second.stdout);
    for s in &w.seeded {
        assert!(
            skopeo_raw(&w.target_ref(s, "resume")).is_some(),
            "{}",
            s.reference
        );
    }
}

/// A registry with a certificate from a private CA: refused with a message naming --ca-file,
/// accepted with it.
#[test]
fn tls_target_needs_its_ca() {
    let w = World::new();
    let tls = ferry_fixtures::registry::TestRegistry::start_tls().expect("TLS registry");
    let archive = w.path("archive");
    assert!(w.pack(&archive).ok);
    let to = format!("{}/secure", tls.host);
    let base = [
        "push",
        archive.to_str().unwrap(),
        "--trust",
        &w.pubkey(),
        "--to",
        &to,
        "-q",
    ];
    let refused = ferry("ferry-unpack", &base);
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("--ca-file") && refused.stderr.contains(&tls.host),
        "{}",
        refused.stderr
    );
    let ca = tls.ca_file.as_ref().unwrap().to_str().unwrap().to_string();
    let mut args = base.to_vec();
    args.extend(["--ca-file", &ca]);
    let ok = ferry("ferry-unpack", &args);
    assert!(ok.ok, "{}", ok.text());
    let s = &w.seeded[0];
    let there = skopeo_raw(&format!(
        "{}/secure/{}@{}",
        tls.host, s.repository, s.digest
    ))
    .unwrap();
    assert_eq!(digest_of(&there), s.digest.to_string());
}

#[test]
fn pack_names_the_image_it_cannot_find() {
    let w = World::new();
    std::fs::write(
        &w.config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: {}\n    - name: {}/no/such-image:9.9\n",
            w.seeded[0].reference, w.source.host
        ),
    )
    .unwrap();
    let archive = w.path("missing-image");
    let pack = w.pack(&archive);
    assert!(!pack.ok);
    assert!(pack.stderr.contains("no/such-image:9.9"), "{}", pack.stderr);
    assert!(pack.stderr.contains("not found"), "{}", pack.stderr);
    assert!(!archive.join("ferry-index.json").exists());
}

/// A registry behind TLS and basic auth, as source and target: credentials come from an auth
/// file, a missing login is explained, and the secret never reaches the media or the output.
#[test]
fn basic_auth_from_an_auth_file_and_secrets_stay_out_of_media_and_logs() {
    use std::os::unix::fs::PermissionsExt;
    let (user, password) = ("ferry-user", "s3cret-Pa55-for-ferry");
    let reg = ferry_fixtures::registry::TestRegistry::start_tls_basic_auth(user, password)
        .expect("auth registry");
    let ca = reg.ca_file.clone().unwrap();
    let work = tempfile::tempdir().unwrap();
    let authfile = work.path().join("auth.json");
    let b64 = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s' '{user}:{password}' | base64 -w0"))
        .output()
        .unwrap()
        .stdout;
    let b64 = String::from_utf8(b64).unwrap();
    std::fs::write(
        &authfile,
        format!(r#"{{"auths":{{"{}":{{"auth":"{b64}"}}}}}}"#, reg.host),
    )
    .unwrap();
    std::fs::set_permissions(&authfile, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Seed the source through the same auth file.
    let client = ferry_registry::Client::new(ferry_registry::ClientOptions {
        auth: Some(ferry_registry::auth::AuthFile::load(&authfile).unwrap()),
        ca_file: Some(ca.clone()),
        ..Default::default()
    })
    .unwrap();
    let img = ferry_fixtures::image::image(
        "auth",
        "amd64",
        vec![ferry_fixtures::image::layer(77, 90_000, false)],
        false,
    );
    let repo = ferry_registry::Repo::new(reg.host.clone(), "private/app");
    let digest = ferry_fixtures::seed::push_image(&client, &repo, Some("1"), &img).unwrap();

    let key = ferry_e2e::keygen(work.path(), "k");
    let config = work.path().join("isc.yaml");
    std::fs::write(
        &config,
        format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: {}/private/app:1\n", reg.host),
    )
    .unwrap();
    let archive = work.path().join("archive");
    let (cfg, arc, k, ca_s, auth_s) = (
        config.to_str().unwrap(),
        archive.to_str().unwrap(),
        key.to_str().unwrap(),
        ca.to_str().unwrap(),
        authfile.to_str().unwrap(),
    );
    let pack_args = [
        "--config",
        cfg,
        "--to",
        arc,
        "--sign-key",
        k,
        "--ca-file",
        ca_s,
    ];

    // No credentials: the error says how to log in.
    let denied = ferry("ferry-pack", &pack_args);
    assert!(!denied.ok);
    assert!(
        denied.stderr.contains("podman login") && denied.stderr.contains(&reg.host),
        "{}",
        denied.stderr
    );

    let mut with_auth = pack_args.to_vec();
    with_auth.extend(["--authfile", auth_s]);
    let packed = ferry("ferry-pack", &with_auth);
    assert!(packed.ok, "{}", packed.text());

    let pubkey = format!("{k}.pub");
    let to = format!("{}/mirror", reg.host);
    let pushed = ferry(
        "ferry-unpack",
        &[
            "push",
            arc,
            "--trust",
            &pubkey,
            "--to",
            &to,
            "--ca-file",
            ca_s,
            "--authfile",
            auth_s,
        ],
    );
    assert!(pushed.ok, "{}", pushed.text());
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("{user}:{password}"),
        ])
        .arg(format!("docker://{}/mirror/private/app@{digest}", reg.host))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(digest_of(&out.stdout), digest.to_string());

    // The secret (plain or base64) appears nowhere in the media or the programs' output.
    for secret in [password, b64.as_str()] {
        for run in [&denied, &packed, &pushed] {
            assert!(!run.text().contains(secret), "secret in output");
        }
        for f in std::fs::read_dir(&archive).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "secret in media"
            );
        }
    }

    // An auth file others can read gets a warning.
    std::fs::set_permissions(&authfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut dry = with_auth.clone();
    dry.push("--dry-run");
    let warned = ferry("ferry-pack", &dry);
    assert!(
        warned.stderr.contains("readable by other users"),
        "{}",
        warned.stderr
    );
}
