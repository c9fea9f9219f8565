//! The index (`ferry-index.json`): what an archive holds and where each byte of it lives.
//!
//! The index is the only document a reader trusts, and only after its signature verified
//! ([`crate::sign`]). [`Index::from_slice`] parses strictly and [`Index::validate`] checks every
//! cross-reference, so that code working from a loaded index can index into it without panics.

mod validate;
pub use validate::is_repository_path;
mod walk;

use serde::{Deserialize, Serialize};

pub use walk::{closure_of, retain_attached, Closure, ImageId};

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
    /// (1.3) Signatures and other artifacts attached to manifests of the images: each is one
    /// of `images` too (so that it is pushed like one), in the repository of its subject.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// (1.3) The sigstore public keys that verified attachments at pack time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sigstore_keys: Vec<SigstoreKey>,
    /// (1.3) Parity volumes, to rebuild lost or damaged volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<ParityRecord>,
    /// (1.3) Helm charts carried: each is an OCI chart artifact among `images`; the images
    /// its templates name are images too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<HelmChart>,
    /// (1.5) The Cluster Samples Operator's image streams, when `ferry-pack --samples` named
    /// them: which are mirrored (their images are among `images`) and which are not, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<Samples>,
}

/// The samples operator's image streams (format 1.5, SPEC §4), from its
/// `imagestreamtag-to-image` ConfigMap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Samples {
    /// Every image stream the ConfigMap names, sorted by name.
    pub image_streams: Vec<SampleStream>,
}

/// One image stream of the samples operator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SampleStream {
    pub name: String,
    /// The images its tags are populated from (the ConfigMap's values), sorted, unique.
    pub images: Vec<String>,
    /// Every one of `images` is carried (an image of the archive with that `source`).
    pub mirrored: bool,
    /// Why it is not mirrored (excluded, blocked, failed, a reference the operator cannot
    /// point at a mirror); absent when mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Samples {
    /// The names of the image streams not mirrored (the Config's `skippedImagestreams`).
    pub fn skipped(&self) -> Vec<&str> {
        self.image_streams
            .iter()
            .filter(|s| !s.mirrored)
            .map(|s| s.name.as_str())
            .collect()
    }
}

/// A Helm chart carried as an OCI artifact (format 1.3, SPEC §4): config
/// [`HELM_CONFIG_TYPE`], one layer [`HELM_CHART_TYPE`] (the chart `.tgz` as fetched).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HelmChart {
    /// `Chart.yaml` name and version.
    pub name: String,
    pub version: String,
    /// Where it was fetched: the `.tgz` URL, `oci://` reference or local path.
    pub source: String,
    /// Its image: registry and repository (`charts/<name>`), tagged with the version.
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    /// The images its rendered templates name, as written there.
    pub images: Vec<String>,
}

/// Media type of a Helm chart artifact's config (`Chart.yaml` as JSON).
pub const HELM_CONFIG_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Media type of a Helm chart artifact's layer (the chart `.tgz`).
pub const HELM_CHART_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Parity volumes beside the data volumes (format 1.3, SPEC §3.5).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParityRecord {
    /// The code ([`crate::parity::SCHEME`]).
    pub scheme: String,
    /// Bytes of each shard coded together.
    pub stripe: u64,
    /// Every data volume is a shard padded with zeros to this size (the largest volume's).
    pub shard_size: u64,
    /// The parity volumes, each `shard_size` bytes: recovery shard 0, 1, ...
    pub volumes: Vec<Volume>,
}

/// A signature, attestation, SBOM or other OCI referrer attached to a carried manifest
/// (format 1.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub kind: AttachmentKind,
    /// Where it and its subject live at the source.
    pub registry: String,
    pub repository: String,
    /// The manifest it is about: an image's top manifest or one of its platform manifests.
    pub subject: Digest,
    /// Its own manifest: one of `images`, in the same registry and repository.
    pub digest: Digest,
    /// The tag it is found under (`sha256-<hex>.sig`, `.att`, `.sbom`); none for a referrer,
    /// which is found through its `subject` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The artifact type of a referrer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Ids of the `sigstoreKeys` under which it verified at pack time (signatures only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_by: Vec<String>,
}

/// Indexes of up to this many blobs are pretty-printed.
pub const PRETTY_BLOBS: usize = 20_000;

impl Index {
    /// The repository an attachment's own image lands in at the target (beside its subject).
    pub fn attachment_target_repository<'a>(&'a self, a: &'a Attachment) -> &'a str {
        let id = a.image_id();
        self.images
            .iter()
            .find(|i| i.id() == id)
            .map_or(a.repository.as_str(), Image::target_repository)
    }
}

impl Attachment {
    /// Whether this is a signature that verified under some key at pack time.
    pub fn verified(&self) -> bool {
        !self.verified_by.is_empty()
    }
}

/// What an [`Attachment`] is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    /// A cosign signature (`sha256-<hex>.sig`).
    Signature,
    /// A cosign attestation (`sha256-<hex>.att`).
    Attestation,
    /// A cosign SBOM (`sha256-<hex>.sbom`).
    Sbom,
    /// An OCI 1.1 referrer (a manifest whose `subject` is the image).
    Referrer,
}

impl AttachmentKind {
    /// The cosign tag suffix of a tag-based attachment.
    pub fn tag_suffix(self) -> Option<&'static str> {
        match self {
            AttachmentKind::Signature => Some("sig"),
            AttachmentKind::Attestation => Some("att"),
            AttachmentKind::Sbom => Some("sbom"),
            AttachmentKind::Referrer => None,
        }
    }

    /// The tag an attachment of this kind has for `subject` (`sha256-<hex>.sig`), or, for a
    /// referrer, the tag of the referrers fallback index (`sha256-<hex>`).
    pub fn tag_for(self, subject: &Digest) -> String {
        match self.tag_suffix() {
            Some(s) => format!("sha256-{}.{s}", subject.hex()),
            None => format!("sha256-{}", subject.hex()),
        }
    }
}

impl std::fmt::Display for AttachmentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttachmentKind::Signature => "signature",
            AttachmentKind::Attestation => "attestation",
            AttachmentKind::Sbom => "sbom",
            AttachmentKind::Referrer => "referrer",
        })
    }
}

/// A sigstore public key given to the packer (format 1.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SigstoreKey {
    /// `sha256:<hex>` of the key's DER SubjectPublicKeyInfo.
    pub id: String,
    pub algorithm: KeyAlgorithm,
    /// The public key in PEM (`-----BEGIN PUBLIC KEY-----`), as given.
    pub pem: String,
}

/// The algorithm of a [`SigstoreKey`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA over P-256 with SHA-256 (cosign's default).
    EcdsaP256,
    Ed25519,
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
    /// The catalog reference as written in the config (`oci://PATH` for an OCI layout read
    /// from disk: it has no source registry).
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

/// How a catalog read from an OCI layout on disk is named in `source`.
pub const LAYOUT_SOURCE_PREFIX: &str = "oci://";

impl Catalog {
    /// Whether the catalog was read from an OCI layout on disk: nothing at a source registry
    /// pulls of it could be mirrored from.
    pub fn from_layout(&self) -> bool {
        self.source.starts_with(LAYOUT_SOURCE_PREFIX)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPackage {
    pub name: String,
    pub default_channel: String,
    pub channels: Vec<CatalogChannel>,
    /// (1.5) Each kept bundle with its version and the images it names (its own and its
    /// related images, as the catalog writes them; those carried), sorted by name. Empty in
    /// indexes before 1.5.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<CatalogBundle>,
}

/// A kept bundle of a catalog package (format 1.5).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogBundle {
    pub name: String,
    /// The bundle's `olm.package` version, when it states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Each is the `source` of one of the images, sorted.
    pub images: Vec<String>,
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
    /// (1.4) Top manifest digests of the images the release needs besides its own (its
    /// components, the KubeVirt disk when carried), sorted; a component shared with another
    /// release is listed by both. Empty in indexes before 1.4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub component_digests: Vec<Digest>,
    /// Source repositories of the components (usually one).
    #[serde(default)]
    pub component_repositories: Vec<String>,
    /// Release signatures in store order (`signature-1`, `-2`, ...): stored blobs holding the
    /// exact bytes served by the signature store.
    #[serde(default)]
    pub signatures: Vec<Digest>,
    /// Whether the signatures were checked at pack time.
    pub signature_check: SignatureCheck,
    /// Fingerprints of the keys that verified the signatures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_by: Vec<String>,
}

/// What the packer did with a release's signatures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SignatureCheck {
    /// Every listed signature verified against the packer's release keyring (at least one).
    Verified,
    /// `--skip-release-signatures`: none fetched.
    Skipped,
}

impl std::fmt::Display for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureCheck::Verified => "verified",
            SignatureCheck::Skipped => "skipped",
        })
    }
}

/// Something `ferry-pack --continue-on-error` could not pack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub kind: FailureKind,
    pub subject: String,
    pub reason: String,
    /// For a blob: the images left out because they need it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// What a [`Failure`] is about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// A reference from the config that did not resolve.
    Image,
    /// A digest that could not be fetched (`images` lists what needs it).
    Blob,
    /// An operator catalog (`subject` is its reference).
    Catalog,
    /// A release (`subject` is `version (arch)`).
    Release,
    /// A kind written by a newer packer: kept as read.
    #[serde(untagged)]
    Other(String),
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureKind::Image => "image",
            FailureKind::Blob => "blob",
            FailureKind::Catalog => "catalog",
            FailureKind::Release => "release",
            FailureKind::Other(s) => s,
        })
    }
}

/// A named sequence of archives delivered to one site.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
    pub kind: ParentKind,
    /// sha256 of the parent's index (or inventory) file, exactly as signed.
    pub sha256: Digest,
    /// The parent archive's stream and sequence (archives only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    /// The registry the inventory was taken from (inventories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What a [`Parent`] is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ParentKind {
    /// A base archive (`--base`).
    Archive,
    /// A site inventory (`--base-inventory`).
    Inventory,
}

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
    /// (1.3) The repository path the image lands in at the target instead of `repository`
    /// (the config's `targetRepo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_repository: Option<String>,
}

impl Image {
    /// The repository path this image lands in at the target, before the target's namespace:
    /// `targetRepository` when the config set one, else the source repository.
    pub fn target_repository(&self) -> &str {
        self.target_repository
            .as_deref()
            .unwrap_or(&self.repository)
    }
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

    /// Serializes the index (JSON with a final newline, stable field order; pretty-printed up
    /// to [`PRETTY_BLOBS`] blobs).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).expect("index serializes");
        v
    }

    /// Writes the index as [`Index::to_vec`] gives it, streaming (a catalog-scale index is
    /// tens of MB: it is not built in memory first).
    pub fn write_to(&self, mut w: impl std::io::Write) -> std::io::Result<()> {
        // Indentation is a third of a large index's bytes, and nobody reads 20,000 blob
        // records by eye: those are written on one line, for tools.
        if self.blobs.len() <= PRETTY_BLOBS {
            serde_json::to_writer_pretty(&mut w, self)?;
        } else {
            serde_json::to_writer(&mut w, self)?;
        }
        w.write_all(b"\n")
    }

    /// Whether an image with this identity is one of the images.
    pub fn has_image(&self, id: ImageId<'_>) -> bool {
        self.images.iter().any(|i| i.id() == id)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_json_names_and_unknown_failure_kinds_survive() {
        let f: Failure = serde_json::from_str(
            r#"{"kind":"helm","subject":"chart","reason":"not yet","images":[]}"#,
        )
        .unwrap();
        assert_eq!(f.kind, FailureKind::Other("helm".into()));
        assert_eq!(
            serde_json::to_string(&f.kind).unwrap(),
            r#""helm""#,
            "an unknown kind is written back as read"
        );
        let f: Failure =
            serde_json::from_str(r#"{"kind":"blob","subject":"s","reason":"r"}"#).unwrap();
        assert_eq!(f.kind, FailureKind::Blob);
        assert_eq!(
            serde_json::to_string(&SignatureCheck::Skipped).unwrap(),
            r#""skipped""#
        );
        assert_eq!(
            serde_json::to_string(&ParentKind::Inventory).unwrap(),
            r#""inventory""#
        );
        assert!(serde_json::from_str::<ParentKind>(r#""cousin""#).is_err());
    }

    fn with_blobs(n: usize) -> Index {
        let blob = |i: u64| Blob {
            digest: Digest::of(&i.to_le_bytes()),
            size: 1,
            blake3: "0".repeat(64),
            parts: Vec::new(),
            base: None,
            missing: false,
        };
        Index {
            format: "ferry-archive".into(),
            format_version: "1.5".into(),
            archive_id: "0".repeat(32),
            created: "2026-01-01T00:00:00Z".into(),
            tool: "test".into(),
            volume_size: 1 << 30,
            volumes: vec![],
            images: vec![],
            manifests: vec![],
            blobs: (0..n as u64).map(blob).collect(),
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
        }
    }

    #[test]
    fn large_indexes_are_written_on_one_line_and_read_back_the_same() {
        for (n, lines) in [(3, 20), (PRETTY_BLOBS + 1, 1)] {
            let index = with_blobs(n);
            let bytes = index.to_vec();
            let newlines = bytes.iter().filter(|b| **b == b'\n').count();
            assert!(bytes.ends_with(b"\n"));
            if lines == 1 {
                assert_eq!(newlines, 1, "{n} blobs: one line");
            } else {
                assert!(newlines > lines, "{n} blobs: pretty-printed");
            }
            let back: Index = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back, index);
        }
    }
}
