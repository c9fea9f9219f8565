//! Fuzzes the volume reader: a fixed, valid one-volume index checked against arbitrary volume
//! bytes must report problems, never panic, and never accept bytes that differ.
#![no_main]

use std::sync::OnceLock;

use ferry_format::index::{Blob, Index, Part, Volume};
use ferry_format::layout::{self, Content};
use libfuzzer_sys::fuzz_target;

/// A valid index for one volume holding three small blobs, and its volume bytes.
fn fixture() -> &'static (Index, Vec<u8>) {
    static F: OnceLock<(Index, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let blobs: Vec<Vec<u8>> = vec![b"alpha".to_vec(), vec![7u8; 1500], b"{}".to_vec()];
        let mut sorted = blobs.clone();
        sorted.sort_by_key(|b| ferry_format::Digest::of(b));
        let items: Vec<Content> = sorted
            .iter()
            .map(|b| Content::Blob { digest: ferry_format::Digest::of(b), size: b.len() as u64 })
            .collect();
        let l = layout::plan(&items, 1024 * 1024).unwrap();
        let set = ferry_format::volume::VolumeSet::create(dir.path(), &l, &items).unwrap();
        let mut index_blobs = Vec::new();
        for (b, ps) in sorted.iter().zip(l.items()) {
            set.write_item(ps, b).unwrap();
            index_blobs.push(Blob {
                digest: ferry_format::Digest::of(b),
                size: b.len() as u64,
                blake3: ferry_format::hash::blake3_hex(b),
                parts: vec![Part { volume: 0, offset: ps[0].offset, size: b.len() as u64, blake3: None }],
                base: None,
                missing: false,
            });
        }
        let vols = set.finish().unwrap();
        let bytes = std::fs::read(dir.path().join(&vols[0].0)).unwrap();
        let index = Index {
            format: "ferry-archive".into(),
            format_version: "1.1".into(),
            archive_id: "0".repeat(32),
            created: "2026-01-01T00:00:00Z".into(),
            tool: "fuzz".into(),
            volume_size: 1024 * 1024,
            volumes: vols.into_iter().map(|(name, size, blake3)| Volume { name, size, blake3 }).collect(),
            images: vec![],
            manifests: vec![],
            blobs: index_blobs,
            files: vec![],
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
        (index, bytes)
    })
}

fuzz_target!(|data: &[u8]| {
    let (index, good) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(&index.volumes[0].name);
    std::fs::write(&path, data).unwrap();
    let entries = ferry_format::tiling::entries(index);
    let report = ferry_format::check::check_volume(index, &entries[0], 0, &path, ferry_format::check::Depth::Blake3);
    if data != good.as_slice() {
        assert!(!report.problems.is_empty(), "different volume bytes were accepted");
    }
});
