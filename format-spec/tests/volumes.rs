//! Writing volumes with the library and checking them: a clean set verifies, and each kind of
//! damage a hostile or broken medium can bring is reported by name.

use std::io::Write;

use ferry_format::check::{check_volume, Depth};
use ferry_format::hash::{blake3_hex, DualHasher};
use ferry_format::index::{
    Attachment, AttachmentKind, Blob, File, Image, Index, ManifestRecord, Part, Volume,
};
use ferry_format::layout::{self, Content};
use ferry_format::volume::VolumeSet;
use ferry_format::{oci, Digest};

fn noise(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// Writes a small archive: a manifest, a config, a small layer and a layer larger than a volume.
fn write_archive(dir: &std::path::Path) -> Index {
    let layer_small = noise(1, 70_000);
    let layer_big = noise(2, 2_600_000);
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}".to_vec();
    let d = |b: &[u8]| Digest::of(b);
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"digest\":\"{}\",\"size\":{}}},\"layers\":[{{\"digest\":\"{}\",\"size\":{}}},{{\"digest\":\"{}\",\"size\":{}}}]}}",
        d(&config), config.len(), d(&layer_small), layer_small.len(), d(&layer_big), layer_big.len()
    )
    .into_bytes();
    let mut objects = [manifest.clone(), config, layer_small, layer_big];
    objects.sort_by_key(|o| Digest::of(o));
    let oci_layout = oci::oci_layout_bytes();
    let mut items = vec![Content::File {
        path: oci::OCI_LAYOUT_PATH.into(),
        size: oci_layout.len() as u64,
    }];
    items.extend(objects.iter().map(|o| Content::Blob {
        digest: Digest::of(o),
        size: o.len() as u64,
    }));
    let layout = layout::plan(&items, 1024 * 1024).unwrap();
    let set = VolumeSet::create(dir, &layout, &items).unwrap();
    set.write_item(layout.item(0), &oci_layout).unwrap();
    let mut blobs = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let ps = layout.item(i + 1);
        let mut w = set.writer(ps);
        w.write_all(o).unwrap();
        let part_hashes = w.finish().unwrap();
        let mut h = DualHasher::new();
        h.update(o);
        let h = h.finish();
        blobs.push(Blob {
            digest: h.sha256,
            size: o.len() as u64,
            blake3: h.blake3,
            parts: ps
                .iter()
                .zip(part_hashes)
                .map(|(p, b3)| Part {
                    volume: p.volume,
                    offset: p.offset,
                    size: p.size,
                    blake3: (ps.len() > 1).then_some(b3),
                })
                .collect(),
            base: None,
            missing: false,
        });
    }
    let volumes = set
        .finish()
        .unwrap()
        .into_iter()
        .map(|(name, size, blake3)| Volume { name, size, blake3 })
        .collect();
    let p0 = &layout.item(0)[0];
    let md = Digest::of(&manifest);
    let index = Index {
        format: "ferry-archive".into(),
        format_version: "1.0".into(),
        archive_id: "0".repeat(32),
        created: "2026-01-01T00:00:00Z".into(),
        tool: "test".into(),
        volume_size: 1024 * 1024,
        volumes,
        images: vec![Image {
            source: "example.com/a:1".into(),
            registry: "example.com".into(),
            repository: "a".into(),
            tags: vec!["1".into()],
            digest: md.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            reason: "test".into(),
            platforms: vec![],
            target_repository: None,
        }],
        manifests: vec![ManifestRecord {
            digest: md.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            children: vec![],
            blobs: blobs
                .iter()
                .filter(|b| b.digest != md)
                .map(|b| b.digest.clone())
                .collect(),
        }],
        blobs,
        files: vec![File {
            path: oci::OCI_LAYOUT_PATH.into(),
            size: oci_layout.len() as u64,
            blake3: blake3_hex(&oci_layout),
            volume: p0.volume,
            offset: p0.offset,
        }],
        stream: None,
        parents: vec![],
        incomplete: false,
        failures: vec![],
        releases: vec![],
        catalogs: vec![],
        graph_data: None,
        charts: vec![],
        attachments: vec![],
        sigstore_keys: vec![],
        parity: None,
        samples: None,
    };
    index.validate().unwrap();
    let reparsed = Index::from_slice(&index.to_vec()).unwrap();
    assert_eq!(reparsed, index);
    index
}

fn problems(index: &Index, dir: &std::path::Path) -> Vec<String> {
    let entries = ferry_format::tiling::entries(index);
    (0..index.volumes.len())
        .flat_map(|vi| {
            check_volume(
                index,
                &entries[vi],
                vi,
                &dir.join(&index.volumes[vi].name),
                Depth::Full,
            )
            .problems
        })
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn clean_volumes_verify_and_damage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let index = write_archive(dir.path());
    assert!(index.volumes.len() >= 3, "the big layer spans volumes");
    assert!(problems(&index, dir.path()).is_empty());
    let vol0 = dir.path().join(&index.volumes[0].name);
    let original = std::fs::read(&vol0).unwrap();

    // A header renamed to escape the extraction directory, with a valid checksum.
    let entries = ferry_format::tiling::entries(&index);
    let e = entries[0]
        .iter()
        .find(|e| e.path.starts_with("v2/blobs/"))
        .unwrap();
    let mut bytes = original.clone();
    let mut h = tar::Header::from_byte_slice(&bytes[e.header_offset as usize..][..512]).clone();
    h.as_mut_bytes()[..100].fill(0);
    h.as_mut_bytes()[..16].copy_from_slice(b"../../etc/passwd");
    h.set_cksum();
    bytes[e.header_offset as usize..][..512].copy_from_slice(h.as_bytes());
    std::fs::write(&vol0, &bytes).unwrap();
    let p = problems(&index, dir.path());
    assert!(
        p.iter()
            .any(|m| m.contains("not the canonical header of") && m.contains(&e.path)),
        "{p:?}"
    );

    // A symlink entry type in place of a regular file.
    let mut bytes = original.clone();
    let mut h = tar::Header::from_byte_slice(&bytes[e.header_offset as usize..][..512]).clone();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_cksum();
    bytes[e.header_offset as usize..][..512].copy_from_slice(h.as_bytes());
    std::fs::write(&vol0, &bytes).unwrap();
    let p = problems(&index, dir.path());
    assert!(
        p.iter().any(|m| m.contains("not the canonical header")),
        "{p:?}"
    );

    // Non-zero padding after an entry.
    let mut bytes = original.clone();
    let pad_at = (e.offset + e.size) as usize;
    assert!(e.size % 512 != 0, "the test needs an entry with padding");
    bytes[pad_at] = 0x41;
    std::fs::write(&vol0, &bytes).unwrap();
    let p = problems(&index, dir.path());
    assert!(p.iter().any(|m| m.contains("padding after")), "{p:?}");

    // Bytes appended after the end-of-archive marker.
    let mut bytes = original.clone();
    bytes.extend_from_slice(b"trailing");
    std::fs::write(&vol0, &bytes).unwrap();
    let p = problems(&index, dir.path());
    assert!(p.iter().any(|m| m.contains("extra bytes")), "{p:?}");

    // A damaged part of the split blob is named with its part number.
    std::fs::write(&vol0, &original).unwrap();
    let big = index.blobs.iter().find(|b| b.parts.len() > 1).unwrap();
    let part = &big.parts[1];
    let path = dir.path().join(&index.volumes[part.volume as usize].name);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[part.offset as usize + 100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let p = problems(&index, dir.path());
    assert!(
        p.iter()
            .any(|m| m.contains(&big.digest.to_string()) && m.contains("part 2 of")),
        "{p:?}"
    );
}

#[test]
fn inconsistent_indexes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_archive(dir.path());
    let check = |f: &dyn Fn(&mut Index), want: &str| {
        let mut i = good.clone();
        f(&mut i);
        let e = Index::from_slice(&i.to_vec()).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    };
    check(
        &|i| i.blobs[0].parts[0].offset = u64::MAX - 3,
        "lies outside volume",
    );
    check(&|i| i.blobs[0].parts[0].volume = 99, "volume #99");
    check(&|i| i.blobs.swap(0, 1), "not sorted");
    check(&|i| i.blobs[0].size += 1, "add up to");
    check(&|i| i.volumes[0].name = "../x.tar".into(), "not allowed");
    check(
        &|i| i.files[0].path = "v2/../../evil".into(),
        "not one the format allows",
    );
    check(
        &|i| i.images[0].digest = Digest::of(b"nothing"),
        "not carried",
    );
    check(
        &|i| i.manifests[0].children.push(Digest::of(b"x")),
        "not carried",
    );
    check(&|i| i.format_version = "2.0".into(), "not supported");
    // (1.3) An attachment is an image of its subject's repository, about a carried manifest,
    // verified only by listed keys.
    let md = good.images[0].digest.clone();
    let attach = |i: &mut Index| {
        i.attachments.push(Attachment {
            kind: AttachmentKind::Signature,
            registry: "example.com".into(),
            repository: "a".into(),
            subject: md.clone(),
            digest: md.clone(),
            tag: None,
            artifact_type: None,
            verified_by: vec![],
        })
    };
    let mut ok = good.clone();
    attach(&mut ok);
    assert!(Index::from_slice(&ok.to_vec()).is_ok());
    check(
        &|i| {
            attach(i);
            i.attachments[0].repository = "b".into();
        },
        "is not among the images",
    );
    check(
        &|i| {
            attach(i);
            i.attachments[0].tag = Some("sha256-x.sig".into());
        },
        "is not tagged sha256-x.sig",
    );
    check(
        &|i| {
            attach(i);
            i.attachments[0].subject = Digest::of(b"elsewhere");
        },
        "its subject is not carried",
    );
    check(
        &|i| {
            attach(i);
            i.attachments[0].verified_by = vec!["sha256:unknown".into()];
        },
        "not a listed key",
    );
    let dup = String::from_utf8(good.to_vec()).unwrap().replacen(
        "\"tool\"",
        "\"tool\": \"x\", \"tool\"",
        1,
    );
    assert!(Index::from_slice(dup.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("duplicate"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The index parser never panics, whatever the bytes.
        #[test]
        fn index_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = Index::from_slice(&bytes);
        }

        /// Nor on a real index with bytes flipped.
        #[test]
        fn mutated_indexes_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let dir = tempfile::tempdir().unwrap();
            let mut bytes = write_archive(dir.path()).to_vec();
            for (at, x) in flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            let _ = Index::from_slice(&bytes);
        }

        /// Any layout tiles its volumes exactly and keeps them within the size limit.
        #[test]
        fn layouts_tile_their_volumes(
            sizes in proptest::collection::vec(0u64..3_000_000, 1..30),
            volume_mib in 1u64..4,
        ) {
            let volume_size = volume_mib * 1024 * 1024;
            let items: Vec<Content> = sizes
                .iter()
                .enumerate()
                .map(|(i, s)| Content::Blob { digest: Digest::of(&(i as u64).to_le_bytes()), size: *s })
                .collect();
            let l = layout::plan(&items, volume_size).unwrap();
            let mut per_volume: Vec<Vec<(u64, u64)>> = vec![Vec::new(); l.volume_sizes.len()];
            for (item, ps) in items.iter().zip(l.items()) {
                let Content::Blob { size, .. } = item else { unreachable!() };
                prop_assert_eq!(ps.iter().map(|p| p.size).sum::<u64>(), *size);
                for p in ps {
                    per_volume[p.volume as usize].push((p.offset, p.size));
                }
            }
            for (v, entries) in per_volume.iter_mut().enumerate() {
                entries.sort();
                let mut at = 0;
                for (offset, size) in entries.iter() {
                    prop_assert_eq!(offset - layout::header_len(*size), at);
                    at = offset + layout::padded(*size);
                }
                prop_assert_eq!(at + layout::END_OF_ARCHIVE, l.volume_sizes[v]);
                prop_assert!(l.volume_sizes[v] <= volume_size);
            }
        }

        /// The volume reader reports every changed byte and never panics.
        #[test]
        fn any_changed_volume_byte_is_reported(at in any::<u64>(), x in 1u8..=255) {
            let dir = tempfile::tempdir().unwrap();
            let index = write_archive(dir.path());
            let vol = dir.path().join(&index.volumes[0].name);
            let mut bytes = std::fs::read(&vol).unwrap();
            let i = (at % bytes.len() as u64) as usize;
            bytes[i] ^= x;
            std::fs::write(&vol, &bytes).unwrap();
            prop_assert!(!problems(&index, dir.path()).is_empty(), "byte {} changed unnoticed", i);
        }
    }
}
