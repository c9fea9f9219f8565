//! Hostile media: altered tar entries, hostile indexes and signatures, and a volume from
//! another archive. Each is refused with a specific message, and push delivers nothing it
//! affects (ferry-unpack writes nothing to disk: it reads volumes by offset).

use std::collections::BTreeSet;
use std::path::Path;

use ferry_e2e::{copy_dir, ferry, skopeo_raw, World};
use ferry_format::{layout, Index};

fn load(dir: &Path) -> Index {
    Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap()
}

/// Rewrites the header of the entry holding `digest` (its first part) with `edit`.
fn edit_header(
    dir: &Path,
    index: &Index,
    digest: &ferry_format::Digest,
    edit: &dyn Fn(&mut tar::Header),
) {
    let blob = index.blob(digest).unwrap();
    let p = &blob.parts[0];
    let vol = dir.join(&index.volumes[p.volume as usize].name);
    let mut bytes = std::fs::read(&vol).unwrap();
    let at = (p.offset - layout::header_len(p.size)) as usize;
    let mut h = tar::Header::from_byte_slice(&bytes[at..at + 512]).clone();
    edit(&mut h);
    h.set_cksum();
    bytes[at..at + 512].copy_from_slice(h.as_bytes());
    std::fs::write(&vol, bytes).unwrap();
}

fn set_name(h: &mut tar::Header, name: &[u8]) {
    let b = h.as_mut_bytes();
    b[..100].fill(0);
    b[..name.len()].copy_from_slice(name);
}

#[test]
fn hostile_tar_entries_are_refused_and_nothing_affected_is_pushed() {
    let w = World::new();
    let good = w.path("good");
    assert!(w.pack(&good).ok);
    let index = load(&good);
    let victim = w
        .seeded
        .iter()
        .find(|s| s.repository == "tools/app-c")
        .unwrap();
    let layer = index
        .manifest(&victim.digest)
        .unwrap()
        .blobs
        .last()
        .unwrap()
        .clone();
    let other = index
        .blobs
        .iter()
        .find(|b| b.digest != layer && b.parts.len() == 1)
        .unwrap()
        .digest
        .clone();
    let other_name = format!("v2/blobs/sha256/{}", other.hex());

    type Edit = Box<dyn Fn(&mut tar::Header)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "dotdot",
            Box::new(|h| set_name(h, b"v2/../../../../tmp/ferry-evil")),
        ),
        ("absolute", Box::new(|h| set_name(h, b"/etc/ferry-evil"))),
        (
            "symlink",
            Box::new(|h| {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name("/etc/passwd").unwrap();
            }),
        ),
        (
            "hardlink",
            Box::new(|h| {
                h.set_entry_type(tar::EntryType::Link);
                h.set_link_name("v2/oci-layout").unwrap();
            }),
        ),
        (
            "device",
            Box::new(|h| {
                h.set_entry_type(tar::EntryType::Char);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
            }),
        ),
        ("fifo", Box::new(|h| h.set_entry_type(tar::EntryType::Fifo))),
        (
            "duplicate",
            Box::new(move |h| set_name(h, other_name.as_bytes())),
        ),
        ("size-overflow", Box::new(|h| h.set_size(u64::MAX / 2))),
        (
            "unknown-name",
            Box::new(|h| set_name(h, b"v2/blobs/sha256/not-a-digest")),
        ),
        (
            "pax-global",
            Box::new(|h| h.set_entry_type(tar::EntryType::XGlobalHeader)),
        ),
        (
            "pax-size-overflow",
            Box::new(|h| {
                h.set_entry_type(tar::EntryType::XHeader);
                h.set_size(u64::MAX);
            }),
        ),
    ];
    let expected_absent: BTreeSet<String> = [victim.reference.clone()].into_iter().collect();
    for (name, edit) in &cases {
        let dir = w.path(name);
        copy_dir(&good, &dir);
        edit_header(&dir, &index, &layer, edit.as_ref());
        let v = w.verify(&dir);
        assert!(!v.ok, "{name}: verify passed");
        assert!(
            v.stdout.contains(&format!(
                "is not the canonical header of v2/blobs/sha256/{}",
                layer.hex()
            )),
            "{name}: {}",
            v.stdout
        );
        assert!(
            v.stdout
                .contains(&format!("AFFECTED IMAGE: {}", victim.reference)),
            "{name}: {}",
            v.stdout
        );
        let p = w.push(&dir, name);
        assert!(!p.ok, "{name}: push succeeded");
        assert!(
            p.stdout.contains("not the canonical one"),
            "{name}: {}",
            p.stdout
        );
        for s in &w.seeded {
            let there = skopeo_raw(&w.target_ref(s, name)).is_some();
            assert_eq!(
                there,
                !expected_absent.contains(&s.reference),
                "{name}: {}",
                s.reference
            );
        }
        // Nothing was written outside the archive by verify or push.
        assert!(!Path::new("/tmp/ferry-evil").exists() && !Path::new("/etc/ferry-evil").exists());
    }
}

#[test]
fn hostile_indexes_and_signatures_are_refused_before_anything_is_read() {
    let w = World::new();
    let good = w.path("good");
    assert!(w.pack(&good).ok);
    let text = std::fs::read_to_string(good.join("ferry-index.json")).unwrap();
    let key = w.key.to_str().unwrap().to_string();
    // Each hostile index is signed with the trusted key, so only the parser stands in the way.
    let sign = |dir: &Path| {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", "ferry-index", "-f", &key])
            .arg(dir.join("ferry-index.json"))
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "huge-number",
            text.replacen(
                "\"volumeSize\": ",
                "\"volumeSize\": 1000000000000000000000000",
                1,
            ),
            "not valid JSON",
        ),
        (
            "deep-nesting",
            text.replacen("\"tool\": ", &format!("\"x\": {deep}, \"tool\": "), 1),
            "not valid JSON",
        ),
        (
            "duplicate-key",
            text.replacen("\"tool\": ", "\"tool\": \"evil\", \"tool\": ", 1),
            "duplicate field",
        ),
        (
            "unknown-version",
            text.replacen("\"formatVersion\": \"1.", "\"formatVersion\": \"7.", 1),
            "use a newer ferry-unpack",
        ),
        (
            "outside-volume",
            text.replacen("\"offset\": ", "\"offset\": 99999999999", 1),
            "lies outside volume",
        ),
    ];
    for (name, body, want) in &cases {
        assert_ne!(body, &text, "{name}: the edit did not apply");
        let dir = w.path(name);
        copy_dir(&good, &dir);
        std::fs::write(dir.join("ferry-index.json"), body).unwrap();
        std::fs::remove_file(dir.join("ferry-index.json.sig")).unwrap();
        sign(&dir);
        let v = w.verify(&dir);
        assert!(!v.ok, "{name}");
        assert!(v.stderr.contains(want), "{name}: {}", v.stderr);
        assert!(!w.push(&dir, name).ok, "{name}");
    }
    // A garbage signature, and a signature that is far too large.
    for (name, sig) in [
        (
            "garbage-sig",
            b"-----BEGIN SSH SIGNATURE-----\nnot base64 !!\n-----END SSH SIGNATURE-----\n".to_vec(),
        ),
        ("huge-sig", vec![b'A'; 200_000]),
    ] {
        let dir = w.path(name);
        copy_dir(&good, &dir);
        std::fs::write(dir.join("ferry-index.json.sig"), sig).unwrap();
        let v = w.verify(&dir);
        assert!(
            !v.ok && v.stderr.contains("signature"),
            "{name}: {}",
            v.stderr
        );
    }
    for s in &w.seeded {
        for ns in [
            "huge-number",
            "deep-nesting",
            "duplicate-key",
            "unknown-version",
            "outside-volume",
        ] {
            assert!(skopeo_raw(&w.target_ref(s, ns)).is_none());
        }
    }
}

#[test]
fn a_volume_from_another_archive_with_the_same_name_is_refused() {
    let w = World::new();
    let a = w.path("a");
    assert!(w.pack(&a).ok);
    // Another archive of a different image set, cut the same way.
    let cfg_b = w.path("b.yaml");
    std::fs::write(&cfg_b, ferry_fixtures::sets::imageset_yaml(&w.seeded[..3])).unwrap();
    let b = w.path("b");
    let r = ferry(
        "ferry-pack",
        &[
            "--config",
            cfg_b.to_str().unwrap(),
            "--to",
            b.to_str().unwrap(),
            "--sign-key",
            w.key.to_str().unwrap(),
            "--volume-size",
            "1MiB",
            "-q",
        ],
    );
    assert!(r.ok, "{}", r.text());
    let index = load(&a);
    let name = &index.volumes[0].name;
    std::fs::copy(b.join(name), a.join(name)).unwrap();
    let v = w.verify(&a);
    assert!(!v.ok);
    assert!(
        v.stdout.contains(&format!("{name}: volume is")) || v.stdout.contains("does not match"),
        "{}",
        v.stdout
    );
    let p = w.push(&a, "swapped");
    assert!(!p.ok);
}
