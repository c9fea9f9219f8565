//! What a push did, as data: `ferry-unpack push --json` prints it, and the text summary is
//! made from it.

use ferry_format::index::Stream;
use ferry_format::Digest;
use serde::Serialize;

use super::blobs::BlobCounts;

/// The outcome of a push.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    pub archive_id: String,
    /// Images fully at the target.
    pub pushed: Vec<PushedImage>,
    /// Images not pushed, and why.
    pub not_pushed: Vec<FailedImage>,
    pub blobs: BlobCounts,
    pub manifests: ManifestCounts,
    pub tags_pushed: u64,
    /// Referrers indexes (tag schema) written for a target without the referrers API.
    pub referrer_indexes: u64,
    /// The stream position recorded at the target (when the archive names a stream and
    /// everything arrived).
    pub recorded: Option<Stream>,
    /// Time spent in each phase.
    pub phases: Vec<Phase>,
    pub seconds: f64,
}

impl PushReport {
    /// Whether every image of the archive is at the target.
    pub fn complete(&self) -> bool {
        self.not_pushed.is_empty()
    }

    /// The human summary: a line per image, the record, and the totals.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for p in &self.pushed {
            let _ = writeln!(s, "pushed {} -> {}", p.source, p.target);
        }
        for f in &self.not_pushed {
            let _ = writeln!(s, "NOT PUSHED {}: {}", f.source, f.reason);
        }
        if let Some(st) = &self.recorded {
            let _ = writeln!(
                s,
                "recorded archive {} as sequence {} of stream {:?} at the target",
                self.archive_id, st.sequence, st.name
            );
        }
        if self.blobs.rebuilt > 0 {
            let _ = writeln!(
                s,
                "{} blob(s) were read rebuilt from the parity volumes (the media has lost or damaged volumes: `ferry-unpack verify` names them)",
                self.blobs.rebuilt
            );
        }
        let _ = writeln!(
            s,
            "{} images pushed, {} not; blobs: {} uploaded ({}), {} mounted, {} already there; manifests: {} pushed, {} already there; {} tags; {:.1}s",
            self.pushed.len(),
            self.not_pushed.len(),
            self.blobs.uploaded,
            ferry_term::human(self.blobs.bytes_uploaded),
            self.blobs.mounted,
            self.blobs.skipped,
            self.manifests.pushed,
            self.manifests.skipped,
            self.tags_pushed,
            self.seconds
        );
        s
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestCounts {
    pub pushed: u64,
    /// Already at the target.
    pub skipped: u64,
}

/// An image at the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedImage {
    /// The reference as the config named it.
    pub source: String,
    /// The target repository and digest (`host/ns/repo@sha256:...`).
    pub target: String,
}

/// An image that did not reach the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedImage {
    pub source: String,
    pub reason: NotPushed,
}

/// Why an image (or one of its manifests) was not pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NotPushed {
    /// A blob it needs could not be put in place.
    Blob { digest: Digest, error: String },
    /// A child manifest was not pushed.
    Child {
        digest: Digest,
        cause: Box<NotPushed>,
    },
    /// Pushing the manifest failed.
    Manifest {
        digest: Digest,
        error: String,
        /// The registry refused an index that lists platforms the archive does not carry.
        #[serde(skip_serializing_if = "Option::is_none")]
        sparse: Option<SparseIndex>,
    },
    /// Pointing a tag at the manifest failed.
    Tag { tag: String, error: String },
    /// A referrer could not be linked to its subject (the tag schema's index).
    Referrer { subject: Digest, error: String },
}

impl std::fmt::Display for NotPushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotPushed::Blob { digest, error } => write!(f, "blob {digest}: {error}"),
            NotPushed::Child { digest, cause } => write!(f, "child {digest}: {cause}"),
            NotPushed::Manifest {
                error,
                sparse: None,
                ..
            } => f.write_str(error),
            NotPushed::Manifest {
                error,
                sparse: Some(s),
                ..
            } => write!(f, "{error}. {s}"),
            NotPushed::Tag { tag, error } => write!(f, "tag {tag}: {error}"),
            NotPushed::Referrer { subject, error } => {
                write!(f, "linking it as a referrer of {subject}: {error}")
            }
        }
    }
}

/// An index packed with a platform filter: it lists more platforms than the archive carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SparseIndex {
    /// Platforms the index lists.
    pub listed: usize,
    /// Platforms carried.
    pub carried: usize,
    /// The target repository (`host/ns/repo`).
    pub repository: String,
    pub host: String,
}

impl std::fmt::Display for SparseIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "This index lists {} platforms but was packed with {} (a platform filter), and {} refuses an index whose other platforms are missing. The carried platforms are at {}@<child digest>; to carry the tag, pack without the platform filter or push to a registry that accepts sparse indexes",
            self.listed, self.carried, self.host, self.repository
        )
    }
}

/// Seconds spent in one phase of a push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub seconds: f64,
}
