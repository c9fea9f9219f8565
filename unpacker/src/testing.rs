//! Small in-memory indexes for the unit tests of the pure parts (planning, checks, cluster
//! manifests).

use ferry_format::index::{Blob, Image, Index, ManifestRecord, Stream};
use ferry_format::Digest;

/// A manifest record whose digest is that of `seed`.
pub fn manifest(seed: &[u8], children: &[&Digest], blobs: &[&Digest]) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::of(seed),
        media_type: if children.is_empty() {
            ferry_format::manifest::OCI_MANIFEST.into()
        } else {
            ferry_format::manifest::OCI_INDEX.into()
        },
        children: children.iter().map(|d| (*d).clone()).collect(),
        blobs: blobs.iter().map(|d| (*d).clone()).collect(),
    }
}

pub fn image(registry: &str, repository: &str, digest: &Digest, tags: &[&str]) -> Image {
    Image {
        source: format!("{registry}/{repository}@{digest}"),
        registry: registry.into(),
        repository: repository.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        digest: digest.clone(),
        media_type: ferry_format::manifest::OCI_MANIFEST.into(),
        reason: "additionalImages".into(),
        platforms: vec![],
        target_repository: None,
    }
}

/// A carried blob record (no parts: nothing reads its bytes in these tests).
pub fn blob(digest: &Digest, size: u64) -> Blob {
    Blob {
        digest: digest.clone(),
        size,
        blake3: String::new(),
        parts: vec![],
        base: None,
        missing: false,
    }
}

/// An index of these images, manifests (stored as blobs too) and blobs, sorted as a packer
/// writes them.
pub fn index_of(
    images: Vec<Image>,
    manifests: Vec<ManifestRecord>,
    blobs: &[(&Digest, u64)],
) -> Index {
    let mut all: Vec<Blob> = blobs.iter().map(|(d, s)| blob(d, *s)).collect();
    all.extend(manifests.iter().map(|m| blob(&m.digest, 100)));
    all.sort_by(|a, b| a.digest.cmp(&b.digest));
    all.dedup_by(|a, b| a.digest == b.digest);
    let mut manifests = manifests;
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    Index {
        format: ferry_format::FORMAT.into(),
        format_version: "1.2".into(),
        archive_id: "0123456789abcdef0123456789abcdef".into(),
        created: "2026-12-02T00:00:00Z".into(),
        tool: "test".into(),
        volume_size: 1 << 20,
        volumes: vec![],
        images,
        manifests,
        blobs: all,
        files: vec![],
        stream: Some(Stream {
            name: "site".into(),
            sequence: 1,
        }),
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
    }
}
