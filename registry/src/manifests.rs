//! Manifests: fetched as the exact bytes received (digest checked), probed with HEAD, pushed
//! by digest or tag.

use ferry_format::manifest::ACCEPT;
use ferry_format::Digest;

use crate::error::Result;
use crate::token::{pull_scope, push_scope};
use crate::transport::{header, read_limited, Payload};
use crate::{Client, RegistryError, Repo};

/// Largest manifest accepted (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A manifest as received: exact bytes, announced media type, digest of the bytes.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

impl Client {
    /// Fetches a manifest by tag or digest, exactly as the registry sends it.
    pub fn get_manifest(&self, repo: &Repo, reference: &str) -> Result<FetchedManifest> {
        if let Some(dir) = repo.layout_dir() {
            let m = crate::layout::get_manifest(dir, reference, MAX_MANIFEST_BYTES)?;
            return Ok(FetchedManifest {
                bytes: m.bytes,
                media_type: m.media_type,
                digest: m.digest,
            });
        }
        let path = format!("/v2/{}/manifests/{reference}", repo.name);
        let scope = pull_scope(repo);
        self.retry(&format!("manifest {repo}:{reference}"), || {
            let resp = self.exchange(
                repo,
                &scope,
                "GET",
                &path,
                &[("Accept", ACCEPT)],
                Payload::Empty,
            )?;
            let resp = self.expect(
                resp,
                repo,
                "GET",
                &path,
                &[200],
                &format!("manifest {reference}"),
            )?;
            let media_type = header(&resp, "content-type")
                .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
                .unwrap_or_default();
            let announced = header(&resp, "docker-content-digest");
            let bytes = read_limited(resp, MAX_MANIFEST_BYTES, "GET", &path)?;
            let digest = Digest::of(&bytes);
            let expected = match reference.parse::<Digest>() {
                Ok(d) => Some(d),
                Err(_) => announced.and_then(|a| a.parse().ok()),
            };
            if let Some(expected) = expected {
                if expected != digest {
                    return Err(RegistryError::DigestMismatch {
                        host: repo.host.clone(),
                        repo: repo.name.clone(),
                        what: format!("manifest {reference}"),
                        expected: expected.into(),
                        found: digest.into(),
                    });
                }
            }
            Ok(FetchedManifest {
                bytes,
                media_type,
                digest,
            })
        })
    }

    /// Whether a manifest exists (HEAD by digest or tag); returns its digest when it does.
    pub fn manifest_digest(&self, repo: &Repo, reference: &str) -> Result<Option<Digest>> {
        if let Some(dir) = repo.layout_dir() {
            return match crate::layout::get_manifest(dir, reference, MAX_MANIFEST_BYTES) {
                Ok(m) => Ok(Some(m.digest)),
                Err(crate::RegistryError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            };
        }
        let path = format!("/v2/{}/manifests/{reference}", repo.name);
        let scope = pull_scope(repo);
        self.retry(&format!("manifest {repo}:{reference}"), || {
            let resp = self.exchange(
                repo,
                &scope,
                "HEAD",
                &path,
                &[("Accept", ACCEPT)],
                Payload::Empty,
            )?;
            match resp.status().as_u16() {
                404 => Ok(None),
                _ => {
                    let resp = self.expect(resp, repo, "HEAD", &path, &[200], "manifest")?;
                    Ok(header(&resp, "docker-content-digest").and_then(|d| d.parse().ok()))
                }
            }
        })
    }

    /// Deletes a manifest by digest (the registry also drops the tags that point at it).
    /// Returns false when it was not there (already deleted: a re-run is not an error). A
    /// registry that does not allow deletes answers 405 ([`RegistryError::DeleteRefused`]).
    pub fn delete_manifest(&self, repo: &Repo, digest: &Digest) -> Result<bool> {
        let path = format!("/v2/{}/manifests/{digest}", repo.name);
        let scope = format!("repository:{}:delete,pull,push", repo.name);
        self.retry(&format!("delete manifest {repo}@{digest}"), || {
            let resp = self.exchange(repo, &scope, "DELETE", &path, &[], Payload::Empty)?;
            match resp.status().as_u16() {
                200 | 202 => Ok(true),
                404 => Ok(false),
                405 => Err(RegistryError::DeleteRefused {
                    host: repo.host.clone(),
                }),
                _ => self
                    .expect(resp, repo, "DELETE", &path, &[202], "manifest")
                    .map(|_| true),
            }
        })
    }

    /// Uploads a manifest under a digest or a tag.
    pub fn put_manifest(
        &self,
        repo: &Repo,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let path = format!("/v2/{}/manifests/{reference}", repo.name);
        let scope = push_scope(repo);
        self.retry(&format!("manifest {repo}:{reference}"), || {
            let resp = self.exchange(
                repo,
                &scope,
                "PUT",
                &path,
                &[("Content-Type", media_type)],
                Payload::Bytes(bytes),
            )?;
            self.expect(
                resp,
                repo,
                "PUT",
                &path,
                &[200, 201, 202],
                &format!("manifest {reference}"),
            )?;
            Ok(())
        })
    }
}
