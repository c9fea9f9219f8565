//! Blobs: streamed downloads (resumable with `Range`), existence checks, and cross-repository
//! mounts.

use std::io::Read;

use ferry_format::Digest;

use crate::error::Result;
use crate::token::{pull_scope, push_scope};
use crate::transport::{encode, header, Payload};
use crate::{Client, RegistryError, Repo};

/// A blob body being received.
pub struct BlobBody {
    pub reader: Box<dyn Read + Send>,
    /// `Content-Length` of this body, when the registry sent one.
    pub size: Option<u64>,
    /// The blob offset this body starts at (non-zero only for an honoured `Range`).
    pub offset: u64,
}

impl Client {
    /// Starts streaming a blob. The caller hashes what it reads and checks the digest.
    pub fn get_blob(&self, repo: &Repo, digest: &Digest) -> Result<BlobBody> {
        self.retry(&format!("blob {digest} of {repo}"), || {
            self.get_blob_from(repo, digest, 0)
        })
    }

    /// Starts streaming a blob from byte `offset` (HTTP `Range`), once, without retries. The
    /// body says whether the registry honoured the range ([`BlobBody::offset`]); one that did
    /// not sends the whole blob from 0.
    pub fn get_blob_from(&self, repo: &Repo, digest: &Digest, offset: u64) -> Result<BlobBody> {
        if let Some(dir) = repo.layout_dir() {
            let (file, left) = crate::layout::get_blob_from(dir, digest, offset)?;
            return Ok(BlobBody {
                reader: Box::new(file),
                size: Some(left),
                offset,
            });
        }
        let path = format!("/v2/{}/blobs/{digest}", repo.name);
        let scope = pull_scope(repo);
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 {
            &[("Range", range.as_str())]
        } else {
            &[]
        };
        let resp = self.exchange(repo, &scope, "GET", &path, headers, Payload::Empty)?;
        let resp = self.expect(
            resp,
            repo,
            "GET",
            &path,
            &[200, 206],
            &format!("blob {digest}"),
        )?;
        let start = if resp.status().as_u16() == 206 {
            header(&resp, "content-range")
                .and_then(|r| r.strip_prefix("bytes ")?.split('-').next()?.parse().ok())
                .unwrap_or(u64::MAX)
        } else {
            0
        };
        if start != 0 && start != offset {
            return Err(RegistryError::Protocol(format!(
                "{repo}: asked blob {digest} from byte {offset}, got a range from {start}"
            )));
        }
        let size = header(&resp, "content-length").and_then(|l| l.parse().ok());
        Ok(BlobBody {
            reader: Box::new(resp.into_body().into_reader()),
            size,
            offset: start,
        })
    }

    /// Whether a blob exists in a repository.
    pub fn blob_exists(&self, repo: &Repo, digest: &Digest) -> Result<bool> {
        if let Some(dir) = repo.layout_dir() {
            return Ok(crate::layout::blob_exists(dir, digest));
        }
        let path = format!("/v2/{}/blobs/{digest}", repo.name);
        let scope = push_scope(repo);
        self.retry(&format!("blob {digest} of {repo}"), || {
            let resp = self.exchange(repo, &scope, "HEAD", &path, &[], Payload::Empty)?;
            match resp.status().as_u16() {
                200 => Ok(true),
                404 => Ok(false),
                _ => self
                    .expect(resp, repo, "HEAD", &path, &[200], "blob")
                    .map(|_| false),
            }
        })
    }

    /// Asks the registry to link a blob from another repository of the same host.
    /// Returns false when it did not (the caller then uploads).
    pub fn mount_blob(&self, repo: &Repo, digest: &Digest, from: &str) -> Result<bool> {
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={}",
            repo.name,
            encode(from)
        );
        let scope = format!("{} repository:{from}:pull", push_scope(repo));
        let resp = self.exchange(repo, &scope, "POST", &path, &[], Payload::Bytes(b""))?;
        match resp.status().as_u16() {
            201 => Ok(true),
            202 => {
                // The registry opened an upload instead; close it, the caller will start its own.
                if let Some(loc) = header(&resp, "location") {
                    let _ =
                        self.exchange(repo, &push_scope(repo), "DELETE", &loc, &[], Payload::Empty);
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }
}
