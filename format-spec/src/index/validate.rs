//! [`Index::validate`]: every cross-reference of an index checked, one part of the document at
//! a time, so that code working from a validated index can index into it without panics.

use std::collections::{HashMap, HashSet};

use super::{Blob, Index, IndexError, ManifestRecord, SignatureCheck};
use crate::Digest;

type Check = Result<(), IndexError>;

fn bad(message: String) -> Check {
    Err(IndexError::Inconsistent(message))
}

impl Index {
    /// Checks every cross-reference: volumes exist, parts lie inside their volume and add up to
    /// the blob size, digests are sorted and unique, manifests and images reference stored
    /// content, and releases, catalogs and the graph data name images of the archive.
    pub fn validate(&self) -> Check {
        self.check_volumes()?;
        let stored = self.check_blobs()?;
        self.check_files()?;
        let manifests = self.check_manifests(&stored)?;
        self.check_parents()?;
        if let Some(s) = &self.stream {
            if s.name.is_empty() || s.sequence == 0 {
                return bad("stream needs a name and a sequence from 1".into());
            }
        }
        for i in &self.images {
            if !manifests.contains_key(&i.digest) {
                return bad(format!(
                    "image {} has manifest {}, which is not carried",
                    i.source, i.digest
                ));
            }
            if let Some(t) = &i.target_repository {
                if !is_repository_path(t) {
                    return bad(format!(
                        "image {} has target repository {t:?}, not a repository path",
                        i.source
                    ));
                }
            }
        }
        self.check_releases()?;
        self.check_made_images()?;
        self.check_samples()?;
        self.check_attachments(&manifests)?;
        self.check_parity()
    }

    fn check_parity(&self) -> Check {
        let Some(p) = &self.parity else {
            return Ok(());
        };
        let largest = self.volumes.iter().map(|v| v.size).max().unwrap_or(0);
        if p.shard_size != largest || p.stripe == 0 || p.stripe % 512 != 0 {
            return bad(format!(
                "parity shard size {} or stripe {} does not fit the volumes (largest {largest})",
                p.shard_size, p.stripe
            ));
        }
        let mut names = HashSet::new();
        for v in &p.volumes {
            if !crate::parity::is_parity_name(&v.name) || !names.insert(&v.name) {
                return bad(format!("parity volume name {:?} is not allowed", v.name));
            }
            if v.size != p.shard_size || !is_hex64(&v.blake3) {
                return bad(format!(
                    "parity volume {} has a wrong size or blake3",
                    v.name
                ));
            }
        }
        Ok(())
    }

    fn check_volumes(&self) -> Check {
        let mut names = HashSet::new();
        for v in &self.volumes {
            if !crate::layout::is_volume_name(&v.name) {
                return bad(format!("volume name {:?} is not allowed", v.name));
            }
            if !names.insert(&v.name) {
                return bad(format!("volume {} listed twice", v.name));
            }
            if !is_hex64(&v.blake3) {
                return bad(format!("volume {} has a malformed blake3", v.name));
            }
        }
        Ok(())
    }

    /// Whether `offset..offset+size` lies inside volume `vol`.
    fn in_volume(&self, vol: u32, offset: u64, size: u64, what: &dyn std::fmt::Display) -> Check {
        let Some(v) = self.volumes.get(vol as usize) else {
            return bad(format!(
                "{what} is in volume #{vol}, but the index lists {} volumes",
                self.volumes.len()
            ));
        };
        match offset.checked_add(size) {
            Some(end) if end <= v.size => Ok(()),
            _ => bad(format!(
                "{what} (offset {offset}, size {size}) lies outside volume {} ({} bytes)",
                v.name, v.size
            )),
        }
    }

    /// Blobs are sorted and unique, and each is either expected from a parent or carried in
    /// parts that lie in their volumes and add up to its size. Returns the stored digests.
    fn check_blobs(&self) -> Result<HashSet<&Digest>, IndexError> {
        let mut digests = HashSet::new();
        let mut prev: Option<&Digest> = None;
        for b in &self.blobs {
            if prev.is_some_and(|p| p >= &b.digest) {
                bad(format!(
                    "blobs are not sorted by digest, or {} is listed twice",
                    b.digest
                ))?;
            }
            prev = Some(&b.digest);
            digests.insert(&b.digest);
            match &b.base {
                Some(base) => self.check_based_blob(b, base)?,
                None => self.check_carried_blob(b)?,
            }
        }
        Ok(digests)
    }

    fn check_based_blob(&self, b: &Blob, base: &str) -> Check {
        if !self.parents.iter().any(|p| p.id == base) {
            return bad(format!(
                "blob {} is expected from {base}, which is not a parent",
                b.digest
            ));
        }
        if !b.parts.is_empty() {
            return bad(format!(
                "blob {} is both carried and expected from a base",
                b.digest
            ));
        }
        if !b.blake3.is_empty() && !is_hex64(&b.blake3) {
            return bad(format!("blob {} has a malformed blake3", b.digest));
        }
        Ok(())
    }

    fn check_carried_blob(&self, b: &Blob) -> Check {
        if b.missing && !self.incomplete {
            return bad(format!(
                "blob {} is missing, but the archive is not marked incomplete",
                b.digest
            ));
        }
        if !b.missing && !is_hex64(&b.blake3) {
            return bad(format!("blob {} has a malformed blake3", b.digest));
        }
        if b.parts.is_empty() && b.size > 0 {
            return bad(format!("blob {} has no parts", b.digest));
        }
        let mut total: u64 = 0;
        for p in &b.parts {
            self.in_volume(p.volume, p.offset, p.size, &b.digest)?;
            if b.parts.len() > 1 && !b.missing && !p.blake3.as_deref().is_some_and(is_hex64) {
                return bad(format!("a part of split blob {} has no blake3", b.digest));
            }
            total = total.saturating_add(p.size);
        }
        if total != b.size {
            return bad(format!(
                "parts of blob {} add up to {total} bytes, not {}",
                b.digest, b.size
            ));
        }
        Ok(())
    }

    fn check_files(&self) -> Check {
        for f in &self.files {
            if !crate::oci::LAYOUT_FILES.contains(&f.path.as_str()) {
                return bad(format!("file {:?} is not one the format allows", f.path));
            }
            if !is_hex64(&f.blake3) {
                return bad(format!("file {} has a malformed blake3", f.path));
            }
            self.in_volume(f.volume, f.offset, f.size, &f.path)?;
        }
        Ok(())
    }

    /// Manifests are sorted, unique and stored, and reference only carried manifests and
    /// stored blobs. Returns them by digest.
    fn check_manifests(
        &self,
        stored: &HashSet<&Digest>,
    ) -> Result<HashMap<&Digest, &ManifestRecord>, IndexError> {
        let mut manifests = HashMap::new();
        let mut prev: Option<&Digest> = None;
        for m in &self.manifests {
            if prev.is_some_and(|p| p >= &m.digest) {
                bad(format!(
                    "manifests are not sorted by digest, or {} is listed twice",
                    m.digest
                ))?;
            }
            prev = Some(&m.digest);
            if !stored.contains(&m.digest) {
                bad(format!("manifest {} is not stored", m.digest))?;
            }
            manifests.insert(&m.digest, m);
        }
        for m in &self.manifests {
            if let Some(c) = m.children.iter().find(|c| !manifests.contains_key(c)) {
                bad(format!(
                    "index {} names child {c}, which is not carried",
                    m.digest
                ))?;
            }
            if let Some(b) = m.blobs.iter().find(|b| !stored.contains(b)) {
                bad(format!(
                    "manifest {} needs blob {b}, which is not stored",
                    m.digest
                ))?;
            }
        }
        Ok(manifests)
    }

    fn check_parents(&self) -> Check {
        let mut ids = HashSet::new();
        for p in &self.parents {
            if !ids.insert(&p.id) {
                return bad(format!("parent {} listed twice", p.id));
            }
        }
        Ok(())
    }

    /// Each release is listed once, is one of the images, and carries the signatures it lists
    /// (at least one when they were verified).
    fn check_releases(&self) -> Check {
        let carried: HashSet<&Digest> = self
            .blobs
            .iter()
            .filter(|b| b.carried() && !b.missing)
            .map(|b| &b.digest)
            .collect();
        let mut releases = HashSet::new();
        for r in &self.releases {
            if !releases.insert((&r.digest, &r.architecture)) {
                return bad(format!("release {} listed twice", r.digest));
            }
            if !self.has_image(r.image_id()) {
                return bad(format!(
                    "release {} ({}) names image {}/{}@{}, which is not among the images",
                    r.version, r.architecture, r.registry, r.repository, r.digest
                ));
            }
            if let Some(c) = r
                .component_digests
                .iter()
                .find(|c| !self.images.iter().any(|i| &i.digest == *c))
            {
                return bad(format!(
                    "release {} lists component {c}, which is not among the images",
                    r.version
                ));
            }
            if r.signature_check == SignatureCheck::Verified && r.signatures.is_empty() {
                return bad(format!(
                    "release {} is marked verified but lists no signature",
                    r.version
                ));
            }
            if let Some(s) = r.signatures.iter().find(|s| !carried.contains(s)) {
                return bad(format!(
                    "signature {s} of release {} is not carried",
                    r.version
                ));
            }
        }
        Ok(())
    }

    /// The graph-data image and rebuilt catalogs are images of the archive.
    fn check_made_images(&self) -> Check {
        if let Some(g) = &self.graph_data {
            if !self.has_image(g.image_id()) {
                return bad(format!(
                    "graph data image {}/{}@{} is not among the images",
                    g.registry, g.repository, g.digest
                ));
            }
        }
        for c in &self.charts {
            if !self.has_image(c.image_id()) {
                return bad(format!(
                    "helm chart {} {} names image {}/{}@{}, which is not among the images",
                    c.name, c.version, c.registry, c.repository, c.digest
                ));
            }
        }
        let sources: HashSet<&str> = self.images.iter().map(|i| i.source.as_str()).collect();
        for c in &self.catalogs {
            if !self.has_image(c.image_id()) {
                return bad(format!(
                    "catalog {} names image {}/{}@{}, which is not among the images",
                    c.source, c.registry, c.repository, c.digest
                ));
            }
            let bundles = c.packages.iter().flat_map(|p| &p.bundles);
            for (b, image) in bundles.flat_map(|b| b.images.iter().map(move |i| (b, i))) {
                if !sources.contains(image.as_str()) {
                    return bad(format!(
                        "catalog {} bundle {} names image {image}, which is not among the images",
                        c.source, b.name
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Index {
    /// Sample image streams are unique and sorted; a mirrored one has all its images
    /// carried, one not mirrored says why.
    fn check_samples(&self) -> Check {
        let Some(samples) = &self.samples else {
            return Ok(());
        };
        let sources: HashSet<&str> = self.images.iter().map(|i| i.source.as_str()).collect();
        let mut previous: Option<&str> = None;
        for s in &samples.image_streams {
            if previous.is_some_and(|p| p >= s.name.as_str()) {
                return bad(format!(
                    "samples image stream {} is out of order or listed twice",
                    s.name
                ));
            }
            previous = Some(&s.name);
            if s.mirrored {
                if let Some(missing) = s.images.iter().find(|i| !sources.contains(i.as_str())) {
                    return bad(format!(
                        "samples image stream {} is mirrored but its image {missing} is not among the images",
                        s.name
                    ));
                }
            } else if s.reason.as_deref().is_none_or(str::is_empty) {
                return bad(format!(
                    "samples image stream {} is not mirrored and says not why",
                    s.name
                ));
            }
        }
        Ok(())
    }

    /// Each attachment is an image in its subject's repository (with its tag, if it has one),
    /// about a carried manifest, verified only by listed keys.
    fn check_attachments(&self, manifests: &HashMap<&Digest, &ManifestRecord>) -> Check {
        let mut ids = HashSet::new();
        for k in &self.sigstore_keys {
            if !ids.insert(k.id.as_str()) {
                return bad(format!("sigstore key {} listed twice", k.id));
            }
        }
        for a in &self.attachments {
            let what = format!("{} {} of {}", a.kind, a.digest, a.subject);
            let image = self.images.iter().find(|i| i.id() == a.image_id());
            let Some(image) = image else {
                return bad(format!("{what} is not among the images"));
            };
            if let Some(tag) = &a.tag {
                if !image.tags.contains(tag) {
                    return bad(format!("{what} is not tagged {tag}"));
                }
            }
            if !manifests.contains_key(&a.subject) {
                return bad(format!("{what}: its subject is not carried"));
            }
            if let Some(k) = a.verified_by.iter().find(|k| !ids.contains(k.as_str())) {
                return bad(format!(
                    "{what} is verified by {k}, which is not a listed key"
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A repository path: lowercase path components of `[a-z0-9]` with `.`, `_`, `__` or `-`
/// between them, separated by `/` (the distribution spec's grammar).
pub fn is_repository_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
                && b[b.len() - 1].is_ascii_lowercase() | b[b.len() - 1].is_ascii_digit()
                && b.iter().all(|x| {
                    x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-')
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{SampleStream, Samples};

    fn empty() -> Index {
        serde_json::from_str(
            r#"{"format":"ferry-archive","formatVersion":"1.5","archiveId":"00000000000000000000000000000000",
                "created":"2026-12-03T00:00:00Z","tool":"test","volumeSize":1024,
                "volumes":[],"images":[],"manifests":[],"blobs":[],"files":[]}"#,
        )
        .unwrap()
    }

    fn stream(name: &str, images: &[&str], mirrored: bool, reason: Option<&str>) -> SampleStream {
        SampleStream {
            name: name.into(),
            images: images.iter().map(|s| s.to_string()).collect(),
            mirrored,
            reason: reason.map(str::to_string),
        }
    }

    fn with(streams: Vec<SampleStream>) -> Check {
        let mut i = empty();
        i.samples = Some(Samples {
            image_streams: streams,
        });
        i.validate()
    }

    #[test]
    fn sample_streams_are_checked() {
        assert!(empty().validate().is_ok());
        let skipped = stream("java", &["q.io/a/java:8"], false, Some("excluded"));
        assert!(with(vec![skipped.clone()]).is_ok());
        let e = with(vec![stream("java", &[], false, None)]).unwrap_err();
        assert!(e.to_string().contains("says not why"), "{e}");
        let e = with(vec![stream("java", &["q.io/a/java:8"], true, None)]).unwrap_err();
        assert!(e.to_string().contains("not among the images"), "{e}");
        let e = with(vec![skipped.clone(), skipped]).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
    }
}
