//! Uploads and mounts. An upload starts with a POST that opens a [`Session`]; the same POST can
//! ask for a cross-repository mount instead ([`Client::mount_or_start`]), so that one request
//! either finds the blob in place or opens the session its bytes then go to. A blob goes in the
//! one PUT that commits it: a small one from memory, a large one streamed, with its last bytes
//! held back until the caller's check of what it read says they are right.

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

    /// Streams a blob of `size` bytes from `reader` into `session` (or a new one) in one PUT
    /// that commits it under `digest`, but holds the blob's last bytes back until `check` says
    /// that what was read is right (the reader hashes as it is read). Bytes that are not are
    /// never all sent: the upload falls short of its length, the registry commits nothing (it
    /// would refuse the digest anyway), the session is cancelled, and the error is
    /// [`RegistryError::CheckRefused`] with the check's reason. One try: the caller, which can
    /// rewind its source, retries.
    pub fn upload_blob_stream<R: Read + Send + Sync>(
        &self,
        repo: &Repo,
        digest: &Digest,
        size: u64,
        reader: &mut R,
        session: Option<Session>,
        check: impl FnOnce(&R) -> std::result::Result<(), String> + Send + Sync,
    ) -> Result<()> {
        let session = match session {
            Some(s) => s,
            None => self.start_upload(repo)?,
        };
        let url = with_query(&session.location, &format!("digest={digest}"));
        let mut body = Vetted::new(reader, size, check);
        let sent = self.exchange(
            repo,
            &push_scope(repo),
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            Payload::Stream(&mut body, size),
        );
        if let Some(why) = body.refused.take() {
            self.cancel_upload(repo, session);
            return Err(RegistryError::CheckRefused {
                digest: Box::new(digest.clone()),
                repo: repo.to_string(),
                why,
            });
        }
        self.expect(
            sent?,
            repo,
            "PUT",
            "blob upload",
            &[201, 204],
            &format!("blob {digest}"),
        )?;
        Ok(())
    }
}

/// A blob's body on its way out. Bytes pass through as they are read, except that the read
/// which completes the blob (or finds it short) is answered only once `check` approves what was
/// read; when it does not, that read fails, so the last bytes never leave.
struct Vetted<'r, R, C> {
    inner: &'r mut R,
    left: u64,
    check: Option<C>,
    /// Why `check` refused the bytes, once it has.
    refused: Option<String>,
}

impl<'r, R, C> Vetted<'r, R, C> {
    fn new(inner: &'r mut R, size: u64, check: C) -> Self {
        Vetted {
            inner,
            left: size,
            check: Some(check),
            refused: None,
        }
    }
}

impl<R: Read, C: FnOnce(&R) -> std::result::Result<(), String>> Read for Vetted<'_, R, C> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // An empty buffer asks for nothing (it is not the end of the blob).
        if buf.is_empty() || (self.left == 0 && self.check.is_none()) {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        if self.left > 0 && n > 0 {
            return Ok(n);
        }
        // The blob's end, or the media's: nothing more goes out unless the bytes were right.
        if let Some(check) = self.check.take() {
            if let Err(why) = check(self.inner) {
                self.refused = Some(why.clone());
                return Err(std::io::Error::other(why));
            }
        }
        if self.left > 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the blob ended {} bytes short", self.left),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `body` to its end in small reads, as a transport would: the bytes that got out,
    /// and how it ended.
    fn send(body: &mut impl Read) -> (usize, std::io::Result<()>) {
        let (mut out, mut buf) = (0, [0u8; 7]);
        loop {
            match body.read(&mut buf) {
                Ok(0) => return (out, Ok(())),
                Ok(n) => out += n,
                Err(e) => return (out, Err(e)),
            }
        }
    }

    #[test]
    fn bytes_the_check_refuses_never_all_leave() {
        let bytes = [1u8; 100];
        let mut reader = &bytes[..];
        let mut body = Vetted::new(&mut reader, 100, |r: &&[u8]| {
            assert!(r.is_empty(), "asked before the blob was read whole");
            Err("corrupt".to_string())
        });
        let (out, end) = send(&mut body);
        assert!(out < 100, "{out} bytes went out");
        assert_eq!(end.unwrap_err().to_string(), "corrupt");
        assert_eq!(body.refused.as_deref(), Some("corrupt"));
    }

    #[test]
    fn approved_bytes_all_leave_and_a_short_blob_fails() {
        let bytes = [2u8; 100];
        let mut reader = &bytes[..];
        let mut body = Vetted::new(&mut reader, 100, |_: &&[u8]| Ok(()));
        assert_eq!(body.read(&mut []).unwrap(), 0);
        assert!(body.check.is_some(), "an empty read was taken for the end");
        let (out, end) = send(&mut body);
        assert_eq!(out, 100);
        assert!(end.is_ok() && body.refused.is_none());

        let mut reader = &bytes[..60];
        let mut body = Vetted::new(&mut reader, 100, |_: &&[u8]| Ok(()));
        let (out, end) = send(&mut body);
        assert_eq!(out, 60);
        assert!(end.unwrap_err().to_string().contains("40 bytes short"));
    }
}
