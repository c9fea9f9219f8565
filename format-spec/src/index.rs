//! The index (`ferry-index.json`): what an archive holds and where each byte of it lives.
//!
//! The index is the only document a reader trusts, and only after its signature verified
//! ([`crate::sign`]). [`Index::from_slice`] parses strictly and [`Index::validate`] checks every
//! cross-reference, so that code working from a loaded index can index into it without panics.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::{Digest, FORMAT, FORMAT_MAJOR};

/// Largest index file a reader accepts (an index of a million blobs is ~400 MB less than this).
pub const MAX_INDEX_BYTES: u64 = 512 * 1024 * 1024;

/// The archive index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always [`FORMAT`] (`ferry-archive`).
    pub format: String,
    /// `MAJOR.MINOR`; readers refuse a major they do not know.
    pub format_version: String,
    /// Random id of this archive (32 hex characters).
    pub archive_id: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// The program that wrote the archive, e.g. `ferry-pack 0.1.0`.
    pub tool: String,
    /// The maximum volume size the archive was cut to, in bytes.
    pub volume_size: u64,
    /// Volumes in order; [`Part::volume`] indexes this list.
    pub volumes: Vec<Volume>,
    /// The images carried, as the user asked for them.
    pub images: Vec<Image>,
    /// Every manifest and index carried, with what each references, sorted by digest.
    pub manifests: Vec<ManifestRecord>,
    /// Every stored object (manifests, configs, layers), each stored once, sorted by digest.
    pub blobs: Vec<Blob>,
    /// Named files of the OCI layout (`v2/oci-layout`, `v2/index.json`).
    pub files: Vec<File>,
    /// The delivery stream this archive belongs to, and its place in it (format 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    /// What a delta archive builds on: base archives or a site inventory (format 1.1). Empty
    /// for a full archive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<Parent>,
    /// (1.1) Some of what the image set config asked for could not be packed; `failures` says
    /// what and why. The images listed are complete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    /// (1.2) OpenShift releases carried: each names its release image (one of `images`) and
    /// its signatures (stored blobs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<Release>,
    /// (1.2) Operator catalogs carried, rebuilt around their filtered file-based catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalogs: Vec<Catalog>,
    /// (1.2) The graph-data image for an OpenShift Update Service (`platform.graph: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_data: Option<GraphData>,
}

/// The graph-data image ferry-pack built (format 1.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GraphData {
    /// Where the graph data came from.
    pub url: String,
    /// Registry and repository of the image (one of the images).
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    /// Number of files of graph data in it.
    pub files: u32,
}

/// An operator catalog carried by the archive (format 1.2): the rebuilt index image and what
/// its filtered catalog keeps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// The catalog reference as written in the config.
    pub source: String,
    /// Digest of the source index image (list) the catalog was read from.
    pub source_digest: Digest,
    /// Where the rebuilt image goes: source registry and the (target) repository path.
    pub registry: String,
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Digest of the rebuilt image (a list for multi-platform catalogs); one of the images.
    pub digest: Digest,
    /// The configs directory inside the image (`/configs`).
    pub configs_dir: String,
    pub packages: Vec<CatalogPackage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPackage {
    pub name: String,
    pub default_channel: String,
    pub channels: Vec<CatalogChannel>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogChannel {
    pub name: String,
    /// Kept bundle names, in channel entry order.
    pub bundles: Vec<String>,
}

/// An OpenShift release payload carried by the archive (format 1.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// Release version (`4.15.3`), as the payload's `release-metadata` states it.
    pub version: String,
    /// Update channels it was selected from; empty for a release named by pullspec.
    #[serde(default)]
    pub channels: Vec<String>,
    /// `amd64`, `arm64`, `ppc64le`, `s390x` or `multi` (a manifest list of several).
    pub architecture: String,
    /// Source registry host and repository of the release image.
    pub registry: String,
    pub repository: String,
    /// Digest of the release image (a manifest list for `multi`); an image of the index.
    pub digest: Digest,
    /// Number of component images in the payload's `image-references`.
    pub components: u32,
    /// Source repositories of the components (usually one).
    #[serde(default)]
    pub component_repositories: Vec<String>,
    /// Release signatures in store order (`signature-1`, `-2`, ...): stored blobs holding the
    /// exact bytes served by the signature store.
    #[serde(default)]
    pub signatures: Vec<Digest>,
    /// `verified` (every listed signature checked against the packer's release keyring) or
    /// `skipped` (`--skip-release-signatures`: none fetched).
    pub signature_check: String,
    /// Fingerprints of the keys that verified the signatures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_by: Vec<String>,
}

/// Values of [`Release::signature_check`].
pub const SIGNATURES_VERIFIED: &str = "verified";
pub const SIGNATURES_SKIPPED: &str = "skipped";

/// Something `ferry-pack --continue-on-error` could not pack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// `image` (a reference from the config) or `blob` (a digest).
    pub kind: String,
    pub subject: String,
    pub reason: String,
    /// For a blob: the images left out because they need it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// A named sequence of archives delivered to one site.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stream {
    pub name: String,
    /// 1 for the first archive of the stream; a delta's is its highest parent's plus one.
    pub sequence: u64,
}

/// A base a delta archive builds on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Parent {
    /// How blobs name this parent in [`Blob::base`]: the archive id of a base archive, or
    /// `inventory-<hex>` for a site inventory.
    pub id: String,
    /// `archive` or `inventory`.
    pub kind: String,
    /// sha256 of the parent's index (or inventory) file, exactly as signed.
    pub sha256: Digest,
    /// The parent archive's stream and sequence (archives only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    /// The registry the inventory was taken from (inventories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Kinds of [`Parent`].
pub const PARENT_ARCHIVE: &str = "archive";
pub const PARENT_INVENTORY: &str = "inventory";

/// One tar volume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// File name in the archive directory, e.g. `ferry-vol-0001.tar`.
    pub name: String,
    /// Exact size in bytes.
    pub size: u64,
    /// blake3 of the whole volume file.
    pub blake3: String,
}

/// An image the user asked for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// The reference as written in the image set config.
    pub source: String,
    /// Source registry host (`quay.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path at the source (`openshift/release`).
    pub repository: String,
    /// Tags to recreate at the target (empty for by-digest references).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Digest of the top manifest (an index for multi-platform images).
    pub digest: Digest,
    pub media_type: String,
    /// Why it is carried (`additionalImages`, ...).
    pub reason: String,
    /// Platforms carried for an index (`linux/amd64`, ...); empty for a single manifest.
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// A manifest or index, and what it needs at the target before it can be pushed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    /// Child manifests carried (indexes only).
    #[serde(default)]
    pub children: Vec<Digest>,
    /// Config and layers (image manifests only).
    #[serde(default)]
    pub blobs: Vec<Digest>,
}

/// A stored object, addressed by its sha256 digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    /// blake3 of the whole blob; may be empty for a blob expected from an inventory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub blake3: String,
    /// Where the bytes are: one part, or several numbered chunks for a blob larger than a volume.
    /// Empty for a blob this (delta) archive does not carry.
    pub parts: Vec<Part>,
    /// For a blob not carried: the [`Parent::id`] expected to have brought it to the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// (1.1) The blob could not be fetched: its parts are reserved but hold zeros, and no
    /// listed image needs it (incomplete archives only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

impl Blob {
    /// Whether this archive carries the blob's bytes.
    pub fn carried(&self) -> bool {
        self.base.is_none()
    }
}

/// A contiguous run of a blob's bytes inside one volume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Index into [`Index::volumes`].
    pub volume: u32,
    /// Byte offset of the data (not the tar header) in the volume.
    pub offset: u64,
    pub size: u64,
    /// blake3 of this part; present when the blob has more than one part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
}

/// A named file of the OCI layout stored in a volume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct File {
    pub path: String,
    pub size: u64,
    pub blake3: String,
    pub volume: u32,
    pub offset: u64,
}

/// A problem found in an index's structure.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index is not valid JSON of format {FORMAT} v{FORMAT_MAJOR}: {0}")]
    Parse(String),
    #[error("index format is {found:?}, expected {FORMAT:?}")]
    Format { found: String },
    #[error("index format version {found} is not supported (this ferry reads {FORMAT_MAJOR}.x); use a newer ferry-unpack")]
    Version { found: String },
    #[error("index is inconsistent: {0}")]
    Inconsistent(String),
    #[error("index is {0} bytes, larger than the {MAX_INDEX_BYTES} bytes a reader accepts")]
    TooLarge(u64),
}

impl Index {
    /// Parses and validates index bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Index, IndexError> {
        if bytes.len() as u64 > MAX_INDEX_BYTES {
            return Err(IndexError::TooLarge(bytes.len() as u64));
        }
        if let Some(depth) = nesting_beyond(bytes, MAX_NESTING) {
            return Err(IndexError::Parse(format!(
                "nested deeper than {MAX_NESTING} levels (at byte {depth}); an index is never that deep"
            )));
        }
        // Check the format and version before the full shape, so that a future format gets
        // a version message rather than a field error.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Head {
            format: String,
            format_version: String,
        }
        let head: Head =
            serde_json::from_slice(bytes).map_err(|e| IndexError::Parse(e.to_string()))?;
        if head.format != FORMAT {
            return Err(IndexError::Format { found: head.format });
        }
        let major = head
            .format_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major != Some(FORMAT_MAJOR) {
            return Err(IndexError::Version {
                found: head.format_version,
            });
        }
        let index: Index =
            serde_json::from_slice(bytes).map_err(|e| IndexError::Parse(e.to_string()))?;
        index.validate()?;
        Ok(index)
    }

    /// Serializes the index (pretty JSON with a final newline, stable field order).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("index serializes");
        v.push(b'\n');
        v
    }

    /// Whether `registry/repository@digest` is one of the images.
    pub fn has_image(&self, registry: &str, repository: &str, digest: &Digest) -> bool {
        self.images
            .iter()
            .any(|i| &i.digest == digest && i.registry == registry && i.repository == repository)
    }

    /// Checks every cross-reference: volumes exist, parts lie inside their volume and add up to
    /// the blob size, digests are unique, manifests and images reference carried content.
    pub fn validate(&self) -> Result<(), IndexError> {
        let bad = |m: String| Err(IndexError::Inconsistent(m));
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
        let in_volume = |vol: u32, offset: u64, size: u64, what: &dyn std::fmt::Display| {
            let Some(v) = self.volumes.get(vol as usize) else {
                return Err(IndexError::Inconsistent(format!(
                    "{what} is in volume #{vol}, but the index lists {} volumes",
                    self.volumes.len()
                )));
            };
            match offset.checked_add(size) {
                Some(end) if end <= v.size => Ok(()),
                _ => Err(IndexError::Inconsistent(format!(
                    "{what} (offset {offset}, size {size}) lies outside volume {} ({} bytes)",
                    v.name, v.size
                ))),
            }
        };
        let mut digests = HashSet::new();
        let mut prev: Option<&Digest> = None;
        for b in &self.blobs {
            if prev.is_some_and(|p| p >= &b.digest) {
                return bad(format!(
                    "blobs are not sorted by digest, or {} is listed twice",
                    b.digest
                ));
            }
            prev = Some(&b.digest);
            digests.insert(&b.digest);
            if let Some(base) = &b.base {
                if !self.parents.iter().any(|p| &p.id == base) {
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
                continue;
            }
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
                in_volume(p.volume, p.offset, p.size, &b.digest)?;
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
        }
        for f in &self.files {
            if !crate::oci::LAYOUT_FILES.contains(&f.path.as_str()) {
                return bad(format!("file {:?} is not one the format allows", f.path));
            }
            if !is_hex64(&f.blake3) {
                return bad(format!("file {} has a malformed blake3", f.path));
            }
            in_volume(f.volume, f.offset, f.size, &f.path)?;
        }
        let mut manifests = HashMap::new();
        let mut prev: Option<&Digest> = None;
        for m in &self.manifests {
            if prev.is_some_and(|p| p >= &m.digest) {
                return bad(format!(
                    "manifests are not sorted by digest, or {} is listed twice",
                    m.digest
                ));
            }
            prev = Some(&m.digest);
            if !digests.contains(&m.digest) {
                return bad(format!("manifest {} is not stored", m.digest));
            }
            if manifests.insert(&m.digest, m).is_some() {
                return bad(format!("manifest {} listed twice", m.digest));
            }
        }
        for m in &self.manifests {
            for c in &m.children {
                if !manifests.contains_key(c) {
                    return bad(format!(
                        "index {} names child {c}, which is not carried",
                        m.digest
                    ));
                }
            }
            for b in &m.blobs {
                if !digests.contains(b) {
                    return bad(format!(
                        "manifest {} needs blob {b}, which is not stored",
                        m.digest
                    ));
                }
            }
        }
        let mut ids = HashSet::new();
        for p in &self.parents {
            if !ids.insert(&p.id) {
                return bad(format!("parent {} listed twice", p.id));
            }
            if p.kind != PARENT_ARCHIVE && p.kind != PARENT_INVENTORY {
                return bad(format!("parent {} has unknown kind {:?}", p.id, p.kind));
            }
        }
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
        }
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
            if !self.has_image(&r.registry, &r.repository, &r.digest) {
                return bad(format!(
                    "release {} ({}) names image {}/{}@{}, which is not among the images",
                    r.version, r.architecture, r.registry, r.repository, r.digest
                ));
            }
            match r.signature_check.as_str() {
                SIGNATURES_VERIFIED if r.signatures.is_empty() => {
                    return bad(format!(
                        "release {} is marked verified but lists no signature",
                        r.version
                    ))
                }
                SIGNATURES_VERIFIED | SIGNATURES_SKIPPED => {}
                other => {
                    return bad(format!(
                        "release {} has unknown signatureCheck {other:?}",
                        r.version
                    ))
                }
            }
            for s in &r.signatures {
                if !carried.contains(s) {
                    return bad(format!(
                        "signature {s} of release {} is not carried",
                        r.version
                    ));
                }
            }
        }
        if let Some(g) = &self.graph_data {
            if !self.has_image(&g.registry, &g.repository, &g.digest) {
                return bad(format!(
                    "graph data image {}/{}@{} is not among the images",
                    g.registry, g.repository, g.digest
                ));
            }
        }
        for c in &self.catalogs {
            if !self.has_image(&c.registry, &c.repository, &c.digest) {
                return bad(format!(
                    "catalog {} names image {}/{}@{}, which is not among the images",
                    c.source, c.registry, c.repository, c.digest
                ));
            }
        }
        Ok(())
    }

    /// Looks a blob up by digest (binary search: blobs are sorted).
    pub fn blob(&self, digest: &Digest) -> Option<&Blob> {
        self.blobs
            .binary_search_by(|b| b.digest.cmp(digest))
            .ok()
            .map(|i| &self.blobs[i])
    }

    /// Looks a manifest record up by digest (binary search: manifests are sorted).
    pub fn manifest(&self, digest: &Digest) -> Option<&ManifestRecord> {
        self.manifests
            .binary_search_by(|m| m.digest.cmp(digest))
            .ok()
            .map(|i| &self.manifests[i])
    }

    /// Total bytes of all volumes.
    pub fn total_volume_bytes(&self) -> u64 {
        self.volumes.iter().map(|v| v.size).sum()
    }

    /// Total bytes of all blobs the archive carries.
    pub fn total_blob_bytes(&self) -> u64 {
        self.blobs
            .iter()
            .filter(|b| b.carried())
            .map(|b| b.size)
            .sum()
    }

    /// Whether this is a delta (it builds on parents).
    pub fn is_delta(&self) -> bool {
        !self.parents.is_empty()
    }

    /// The parent a blob not carried is expected from.
    pub fn parent(&self, id: &str) -> Option<&Parent> {
        self.parents.iter().find(|p| p.id == id)
    }
}

/// How deep JSON may nest in an index (it needs 5 levels).
const MAX_NESTING: usize = 16;

/// The byte offset where JSON nesting first exceeds `max`, if it does.
fn nesting_beyond(bytes: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
