//! Uploads: a small blob in one PUT, a large one streamed in one PATCH and committed only when
//! the caller's check of the bytes it read says they are right.

use std::io::Read;

use ferry_format::Digest;

use crate::error::Result;
use crate::token::push_scope;
use crate::transport::{header, with_query, Payload};
use crate::{Client, RegistryError, Repo};

impl Client {
    fn start_upload(&self, repo: &Repo) -> Result<String> {
        let path = format!("/v2/{}/blobs/uploads/", repo.name);
        let scope = push_scope(repo);
        self.retry(&format!("upload to {repo}"), || {
            let resp = self.exchange(repo, &scope, "POST", &path, &[], Payload::Bytes(b""))?;
            let resp = self.expect(resp, repo, "POST", &path, &[202], "upload session")?;
            header(&resp, "location").ok_or_else(|| {
                RegistryError::Protocol(format!("{repo}: upload started without a Location"))
            })
        })
    }

    /// Uploads a small blob held in memory (already verified by the caller) in one PUT.
    pub fn upload_blob_bytes(&self, repo: &Repo, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.retry(&format!("blob {digest} to {repo}"), || {
            let loc = self.start_upload(repo)?;
            let url = with_query(&loc, &format!("digest={digest}"));
            let resp = self.exchange(
                repo,
                &push_scope(repo),
                "PUT",
                &url,
                &[("Content-Type", "application/octet-stream")],
                Payload::Bytes(bytes),
            )?;
            self.expect(
                resp,
                repo,
                "PUT",
                "blob upload",
                &[201, 204],
                &format!("blob {digest}"),
            )?;
            Ok(())
        })
    }

    /// Streams a blob of `size` bytes from `reader`, then asks `check` whether what was read is
    /// right (the reader hashes as it is read). Only then is the upload committed under
    /// `digest`; otherwise it is cancelled and nothing appears at the target.
    pub fn upload_blob_stream<R: Read + Send + Sync>(
        &self,
        repo: &Repo,
        digest: &Digest,
        size: u64,
        reader: &mut R,
        check: impl FnOnce(&R) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let loc = self.start_upload(repo)?;
        let scope = push_scope(repo);
        let resp = self.exchange(
            repo,
            &scope,
            "PATCH",
            &loc,
            &[("Content-Type", "application/octet-stream")],
            Payload::Stream(reader, size),
        )?;
        let resp = self.expect(
            resp,
            repo,
            "PATCH",
            "blob upload",
            &[202, 204],
            &format!("blob {digest}"),
        )?;
        let loc = header(&resp, "location").unwrap_or(loc);
        if let Err(why) = check(reader) {
            let _ = self.exchange(repo, &scope, "DELETE", &loc, &[], Payload::Empty);
            return Err(RegistryError::Protocol(format!(
                "blob {digest} not committed to {repo}: {why}"
            )));
        }
        let url = with_query(&loc, &format!("digest={digest}"));
        let resp = self.exchange(repo, &scope, "PUT", &url, &[], Payload::Bytes(b""))?;
        self.expect(
            resp,
            repo,
            "PUT",
            "blob upload",
            &[201, 204],
            &format!("blob {digest}"),
        )?;
        Ok(())
    }
}
