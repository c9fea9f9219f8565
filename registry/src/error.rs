//! Registry errors that say which call failed and what to do about it.

use ferry_format::Digest;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{what} not found at {host}/{repo}")]
    NotFound {
        host: String,
        repo: String,
        what: String,
    },
    #[error("{host} refused access to {repo} ({status}): {hint}")]
    Denied {
        host: String,
        repo: String,
        status: u16,
        hint: String,
    },
    #[error("{method} {url} answered {status}: {detail}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        detail: String,
        /// Seconds the registry asked to wait (`Retry-After`).
        retry_after: Option<u64>,
    },
    #[error("{method} {url} failed: {detail}")]
    Transport {
        method: &'static str,
        url: String,
        detail: String,
    },
    #[error("{what} from {host}/{repo} has digest {found}, expected {expected}: the registry sent other bytes than asked for")]
    DigestMismatch {
        host: String,
        repo: String,
        what: String,
        // Boxed: every registry result carries this error's size.
        expected: Box<Digest>,
        found: Box<Digest>,
    },
    #[error("{host} refuses to delete manifests (405 Unsupported): deletes are switched off in its configuration. For CNCF distribution set storage.delete.enabled: true (or REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it; Quay and Harbor allow deletes to users with write or admin rights on the repository")]
    DeleteRefused { host: String },
    /// A streamed upload whose bytes the caller's check refused (`Client::upload_blob_stream`):
    /// they were never all sent, and nothing was committed.
    #[error("blob {digest} not committed to {repo}: {why}")]
    CheckRefused {
        digest: Box<Digest>,
        repo: String,
        why: String,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Config(String),
}

/// What the client's calls return.
pub(crate) type Result<T> = std::result::Result<T, RegistryError>;

impl RegistryError {
    /// Seconds the registry asked to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            RegistryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether retrying the same call may succeed (server errors, throttling, lost connections).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => {
                *status == 408 || *status == 429 || (500..=599).contains(status)
            }
            RegistryError::Transport { .. } => true,
            _ => false,
        }
    }
}
