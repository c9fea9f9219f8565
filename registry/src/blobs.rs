//! Blobs: streamed downloads (resumable with `Range`, or in ranged segments) and existence
//! checks. Mounts and uploads are in [`crate::uploads`].

use std::io::Read;

use ferry_format::Digest;

use crate::error::Result;
use crate::token::{pull_scope, push_scope};
use crate::transport::{header, Payload};
use crate::{Client, RegistryError, Repo};

/// A blob body being received.
pub struct BlobBody {
    pub reader: Box<dyn Read + Send>,
    /// `Content-Length` of this body, when the registry sent one.
    pub size: Option<u64>,
    /// The blob offset this body starts at (non-zero only for an honoured `Range`).
    pub offset: u64,
    /// Whether the registry honoured a `Range` (206 Partial Content).
    pub partial: bool,
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
                partial: offset > 0,
            });
        }
        let range = (offset > 0).then(|| format!("bytes={offset}-"));
        self.get_blob_http(repo, digest, offset, range)
    }

    /// Starts streaming bytes `start..end` of a blob (HTTP `Range`), once, without retries:
    /// one segment of a download spread over several connections. A registry that does not
    /// honour ranges answers with the whole blob ([`BlobBody::partial`] is then false). Not for
    /// OCI layouts (a local file gains nothing from being read in segments).
    pub fn get_blob_range(
        &self,
        repo: &Repo,
        digest: &Digest,
        start: u64,
        end: u64,
    ) -> Result<BlobBody> {
        if repo.layout_dir().is_some() || end <= start {
            return Err(RegistryError::Protocol(format!(
                "{repo}: no ranged request for blob {digest} bytes {start}..{end}"
            )));
        }
        let range = format!("bytes={start}-{}", end - 1);
        let body = self.get_blob_http(repo, digest, start, Some(range))?;
        if body.partial && body.size.is_some_and(|n| n != end - start) {
            // A lying or confused hop: worth another try, as a cut-off body is.
            return Err(RegistryError::Transport {
                method: "GET",
                url: format!("{repo}/blobs/{digest}"),
                detail: format!(
                    "asked bytes {start}..{end}, the registry announces {} bytes",
                    body.size.unwrap_or(0)
                ),
            });
        }
        Ok(body)
    }

    fn get_blob_http(
        &self,
        repo: &Repo,
        digest: &Digest,
        offset: u64,
        range: Option<String>,
    ) -> Result<BlobBody> {
        let path = format!("/v2/{}/blobs/{digest}", repo.name);
        let scope = pull_scope(repo);
        let headers: Vec<(&str, &str)> = range.iter().map(|r| ("Range", r.as_str())).collect();
        let resp = self.exchange(repo, &scope, "GET", &path, &headers, Payload::Empty)?;
        let resp = self.expect(
            resp,
            repo,
            "GET",
            &path,
            &[200, 206],
            &format!("blob {digest}"),
        )?;
        let partial = resp.status().as_u16() == 206;
        let start = if partial {
            header(&resp, "content-range")
                .and_then(|r| r.strip_prefix("bytes ")?.split('-').next()?.parse().ok())
                .unwrap_or(u64::MAX)
        } else {
            0
        };
        if partial && start != offset {
            return Err(RegistryError::Protocol(format!(
                "{repo}: asked blob {digest} from byte {offset}, got a range from {start}"
            )));
        }
        let size = header(&resp, "content-length").and_then(|l| l.parse().ok());
        Ok(BlobBody {
            reader: Box::new(resp.into_body().into_reader()),
            size,
            offset: start,
            partial,
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
}

/// Reads a body into `buf` until it is full or the body ends. A socket read brings ~100 KiB
/// at a time: whole buffers make ten times fewer writes to the file the bytes go to. Returns
/// the bytes read and the error that cut the body short, if one did: the bytes before it are
/// kept (a resumed download starts after them).
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> (usize, Option<std::io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

#[cfg(test)]
mod tests {
    use super::read_full;
    use std::io::{self, Read};

    /// Three bytes per read, then a reset after `fail_at` bytes.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        fail_at: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at >= self.fail_at {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
            let n = buf.len().min(3).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn fills_the_buffer_across_short_reads_and_keeps_what_came_before_an_error() {
        let data: Vec<u8> = (0..20).collect();
        let mut r = Trickle {
            data: data.clone(),
            at: 0,
            fail_at: usize::MAX,
        };
        let mut buf = [0u8; 8];
        assert!(matches!(read_full(&mut r, &mut buf), (8, None)));
        assert_eq!(buf, data[..8]);
        let mut rest = [0u8; 16];
        let (n, lost) = read_full(&mut r, &mut rest);
        assert_eq!(
            (n, lost.is_none()),
            (12, true),
            "the body ended short of the buffer"
        );
        assert_eq!(rest[..12], data[8..]);

        let mut r = Trickle {
            data: data.clone(),
            at: 0,
            fail_at: 7,
        };
        let mut buf = [0u8; 16];
        let (n, lost) = read_full(&mut r, &mut buf);
        assert_eq!(n, 9, "three reads of three bytes came before the reset");
        assert_eq!(buf[..9], data[..9]);
        assert_eq!(lost.map(|e| e.kind()), Some(io::ErrorKind::ConnectionReset));
    }
}
