//! Uploads and mounts. An upload starts with a POST that opens a [`Session`]; the same POST can
//! ask for a cross-repository mount instead ([`Client::mount_or_start`]), so that one request
//! either finds the blob in place or opens the session its bytes then go to. A small blob goes
//! in one PUT; a large one is streamed in one PATCH and committed only when the caller's check
//! of the bytes it read says they are right.

use std::io::Read;

use ferry_format::Digest;

use crate::error::Result;
use crate::token::push_scope;
use crate::transport::{encode, header, with_query, Payload};
use crate::{Client, RegistryError, Repo};

/// An upload session the registry opened in one repository: where a blob's bytes go.
#[derive(Debug)]
pub struct Session {
    location: String,
}

/// What a registry did with "mount this blob from there, or open an upload".
#[derive(Debug)]
pub enum Mount {
    /// The blob is in the repository now: linked from the other one, or (when the other one
    /// is the repository itself) there already.
    Linked,
    /// It is not: the registry opened an upload session instead (the blob is not in the other
    /// repository, or the registry does not mount).
    Start(Session),
    /// Neither (another answer, or 202 without a Location): nothing is known of the blob, and
    /// an upload opens its own session.
    Refused,
}

impl Client {
    fn start_upload(&self, repo: &Repo) -> Result<Session> {
        let path = format!("/v2/{}/blobs/uploads/", repo.name);
        let scope = push_scope(repo);
        self.retry(&format!("upload to {repo}"), || {
            let resp = self.exchange(repo, &scope, "POST", &path, &[], Payload::Bytes(b""))?;
            let resp = self.expect(resp, repo, "POST", &path, &[202], "upload session")?;
            let location = header(&resp, "location").ok_or_else(|| {
                RegistryError::Protocol(format!("{repo}: upload started without a Location"))
            })?;
            Ok(Session { location })
        })
    }

    /// Asks the registry to link blob `digest` into `repo` from repository `from` of the same
    /// host, in the request that would otherwise open an upload: one request whichever way it
    /// goes. `from` may be `repo` itself, which makes the request an existence check that opens
    /// the session a missing blob needs.
    pub fn mount_or_start(&self, repo: &Repo, digest: &Digest, from: &str) -> Result<Mount> {
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={}",
            repo.name,
            encode(from)
        );
        let scope = if from == repo.name {
            push_scope(repo)
        } else {
            format!("{} repository:{from}:pull", push_scope(repo))
        };
        let resp = self.retry(&format!("mount of {digest} into {repo}"), || {
            self.exchange(repo, &scope, "POST", &path, &[], Payload::Bytes(b""))
        })?;
        match (resp.status().as_u16(), header(&resp, "location")) {
            (201, _) => Ok(Mount::Linked),
            (202, Some(location)) => Ok(Mount::Start(Session { location })),
            _ => Ok(Mount::Refused),
        }
    }

    /// Asks the registry to link a blob from another repository of the same host.
    /// Returns false when it did not (the caller then uploads).
    pub fn mount_blob(&self, repo: &Repo, digest: &Digest, from: &str) -> Result<bool> {
        match self.mount_or_start(repo, digest, from)? {
            Mount::Linked => Ok(true),
            Mount::Start(session) => {
                self.cancel_upload(repo, session);
                Ok(false)
            }
            Mount::Refused => Ok(false),
        }
    }

    /// Closes an upload session that will not be used (best effort: the registry expires
    /// abandoned sessions anyway).
    pub fn cancel_upload(&self, repo: &Repo, session: Session) {
        let _ = self.exchange(
            repo,
            &push_scope(repo),
            "DELETE",
            &session.location,
            &[],
            Payload::Empty,
        );
    }

    /// Uploads a small blob held in memory (already verified by the caller) in one PUT, into
    /// `session` when one is open for it (a retry opens a new one).
    pub fn upload_blob_bytes(
        &self,
        repo: &Repo,
        digest: &Digest,
        bytes: &[u8],
        mut session: Option<Session>,
    ) -> Result<()> {
        self.retry(&format!("blob {digest} to {repo}"), || {
            let session = match session.take() {
                Some(s) => s,
                None => self.start_upload(repo)?,
            };
            let url = with_query(&session.location, &format!("digest={digest}"));
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

    /// Streams a blob of `size` bytes from `reader` into `session` (or a new one), then asks
    /// `check` whether what was read is right (the reader hashes as it is read). Only then is
    /// the upload committed under `digest`; otherwise it is cancelled and nothing appears at
    /// the target. One try: the caller, which can rewind its source, retries.
    pub fn upload_blob_stream<R: Read + Send + Sync>(
        &self,
        repo: &Repo,
        digest: &Digest,
        size: u64,
        reader: &mut R,
        session: Option<Session>,
        check: impl FnOnce(&R) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let session = match session {
            Some(s) => s,
            None => self.start_upload(repo)?,
        };
        let scope = push_scope(repo);
        let resp = self.exchange(
            repo,
            &scope,
            "PATCH",
            &session.location,
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
        let location = header(&resp, "location").unwrap_or(session.location);
        if let Err(why) = check(reader) {
            self.cancel_upload(repo, Session { location });
            return Err(RegistryError::Protocol(format!(
                "blob {digest} not committed to {repo}: {why}"
            )));
        }
        let url = with_query(&location, &format!("digest={digest}"));
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
