//! Whether the target can tell, in one request, that a repository holds a blob or else open
//! the blob's upload: a cross-repository mount asked from the repository into itself
//! (`POST /v2/R/blobs/uploads/?mount=D&from=R`). distribution answers 201 when R holds D and
//! 202 with an upload session when it does not, so a new blob costs two requests (that POST,
//! then the PUT of its bytes) instead of three (a HEAD first). A registry that ignores mounts
//! answers 202 every time; it would then be sent blobs it already holds, so the push learns
//! which kind the target is before it relies on it. ([`super::blobs`] decides which request
//! each (repository, blob) gets; a mount from another repository keeps its HEAD.)
//!
//! Learned once per push, on the first blob it uploads: a mount of that blob (now in R) must
//! answer 201, and a mount of a digest nobody holds must answer 202. Until then, and for a
//! target that fails either check, every blob is checked with a HEAD first.
//!
//! The answer "it is there" is not free: distribution links the blob again (on filesystem
//! storage, the link file is truncated and rewritten), and a client that pulls the blob in
//! that instant may be told it is unknown. A new blob has no such client, but a push re-run
//! over content a cluster already pulls would rewrite every link. So the first blob found
//! present this way switches the push back to HEAD checks: a re-run or a partly present
//! target rewrites a handful of links at most, never all of them.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_format::Digest;
use ferry_registry::{Client, Repo};

/// What a push knows of the target's self-mounts; shared by the blob tasks.
#[derive(Debug, Default)]
pub struct SelfMount(AtomicU8);

const UNKNOWN: u8 = 0;
const PROBING: u8 = 1;
const WORKS: u8 = 2;
/// The target ignores or fakes self-mounts, or reported a blob present: HEAD first.
const HEAD_FIRST: u8 = 3;

impl SelfMount {
    /// Whether a self-mount may stand for the HEAD (and the upload's POST) of a blob.
    pub fn works(&self) -> bool {
        self.0.load(Ordering::Relaxed) == WORKS
    }

    /// A self-mount found a blob present: the rest of the push checks with HEADs, which
    /// rewrite nothing.
    pub fn found_present(&self) {
        self.0.store(HEAD_FIRST, Ordering::Relaxed);
    }

    /// After `digest` was uploaded into `repo`: the first time, checks that the target
    /// answers a self-mount of it with 201 and one of an unknown digest with 202.
    pub fn learn(&self, client: &Client, repo: &Repo, digest: &Digest) {
        if self
            .0
            .compare_exchange(UNKNOWN, PROBING, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let answers = |d: &Digest| client.mount_blob(repo, d, &repo.name).ok();
        let works = answers(digest) == Some(true) && answers(&unheld_digest()) == Some(false);
        let state = if works { WORKS } else { HEAD_FIRST };
        // A blob found present while probing has already asked for HEAD_FIRST: keep it.
        let _ = self
            .0
            .compare_exchange(PROBING, state, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The digest of bytes made for this push alone: no registry holds it.
fn unheld_digest() -> Digest {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let text = format!("ferry self-mount probe {} {nanos}", std::process::id());
    Digest::of(text.as_bytes())
}
