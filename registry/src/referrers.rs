//! OCI 1.1 referrers: the manifests whose `subject` is a given manifest. Asked of the
//! referrers API (`GET /v2/<name>/referrers/<digest>`); a registry without it (404, as CNCF
//! distribution 2.8 answers, or another refusal of the unknown route) keeps them, by client
//! convention, in an index tagged `sha256-<hex>` (the tag schema), which is read instead. A
//! repository whose API answered 404 is not asked again (a release's 183 components share
//! one repository: one request each, not two).

use ferry_format::manifest::{Descriptor, OCI_INDEX};
use ferry_format::Digest;

use crate::error::Result;
use crate::token::pull_scope;
use crate::transport::{header, read_limited, Payload};
use crate::{Client, RegistryError, Repo, MAX_MANIFEST_BYTES};

/// Where a list of referrers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSource {
    /// The registry's referrers API.
    Api,
    /// The `sha256-<hex>` tag of the tag schema (the registry has no referrers API).
    TagSchema,
}

/// The referrers of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrers {
    pub source: ReferrersSource,
    /// One descriptor per referrer, with its `artifactType` and annotations.
    pub descriptors: Vec<Descriptor>,
    /// The registry applied the `artifactType` filter asked for (`OCI-Filters-Applied`); when
    /// it did not, the caller filters.
    pub filtered: bool,
}

impl Referrers {
    /// The descriptors whose artifact type is `artifact_type` (whatever the registry filtered).
    pub fn of_type<'a>(&'a self, artifact_type: &'a str) -> impl Iterator<Item = &'a Descriptor> {
        self.descriptors
            .iter()
            .filter(move |d| d.artifact_type.as_deref() == Some(artifact_type))
    }
}

/// The tag of the tag schema's referrers index for `subject`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// Parses a referrers index (from the API or the fallback tag).
pub fn parse_referrers_index(bytes: &[u8]) -> std::result::Result<Vec<Descriptor>, String> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Descriptor>,
    }
    serde_json::from_slice::<Index>(bytes)
        .map(|i| i.manifests)
        .map_err(|e| format!("not an image index: {e}"))
}

impl Client {
    /// The referrers of `subject` in `repo`: from the referrers API, or, where the registry has
    /// none, from the tag schema's index (empty when that tag does not exist). `artifact_type`
    /// asks the registry to filter.
    pub fn referrers(
        &self,
        repo: &Repo,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers> {
        match self.referrers_api(repo, subject, artifact_type)? {
            Some(r) => Ok(r),
            None => self.referrers_by_tag(repo, subject),
        }
    }

    /// The referrers of `subject` from the referrers API; `None` when the registry has no such
    /// API (the tag schema, [`Client::referrers_by_tag`], then holds them).
    pub fn referrers_api(
        &self,
        repo: &Repo,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Referrers>> {
        let mut path = format!("/v2/{}/referrers/{subject}", repo.name);
        if let Some(t) = artifact_type {
            path.push_str(&format!("?artifactType={}", crate::transport::encode(t)));
        }
        let host = self.host_state(&repo.host)?;
        if host
            .no_referrers_api
            .lock()
            .expect("lock")
            .contains(&repo.name)
        {
            return Ok(None);
        }
        let scope = pull_scope(repo);
        let api = self.retry(&format!("referrers of {subject} in {repo}"), || {
            let resp = self.exchange(
                repo,
                &scope,
                "GET",
                &path,
                &[("Accept", OCI_INDEX)],
                Payload::Empty,
            )?;
            // 404 is the distribution spec's "no referrers API" (a registry that has one
            // answers 404 only for a repository it does not know: NAME_UNKNOWN); registries
            // that predate it answer an unknown route in other ways. The tag schema then tells
            // the truth. A route refused outright is remembered for the repository.
            match resp.status().as_u16() {
                404 | 405 | 501 => {
                    let body = read_limited(resp, 64 << 10, "GET", &path).unwrap_or_default();
                    if !String::from_utf8_lossy(&body).contains("NAME_UNKNOWN") {
                        let mut absent = host.no_referrers_api.lock().expect("lock");
                        absent.insert(repo.name.clone());
                    }
                    Ok(None)
                }
                400 | 401 | 403 | 406 => Ok(None),
                _ => {
                    let resp = self.expect(resp, repo, "GET", &path, &[200], "referrers")?;
                    let filtered = header(&resp, "oci-filters-applied")
                        .is_some_and(|h| h.split(',').any(|f| f.trim() == "artifactType"));
                    let bytes = read_limited(resp, MAX_MANIFEST_BYTES, "GET", &path)?;
                    Ok(Some((bytes, filtered)))
                }
            }
        })?;
        match api {
            Some((bytes, filtered)) => Ok(Some(Referrers {
                source: ReferrersSource::Api,
                descriptors: parse(repo, &bytes)?,
                filtered,
            })),
            None => Ok(None),
        }
    }

    /// The tag schema's referrers index for `subject` (empty when the tag does not exist).
    pub fn referrers_by_tag(&self, repo: &Repo, subject: &Digest) -> Result<Referrers> {
        let descriptors = match self.get_manifest(repo, &fallback_tag(subject)) {
            Ok(m) => parse(repo, &m.bytes)?,
            Err(RegistryError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(Referrers {
            source: ReferrersSource::TagSchema,
            descriptors,
            filtered: false,
        })
    }
}

fn parse(repo: &Repo, bytes: &[u8]) -> Result<Vec<Descriptor>> {
    parse_referrers_index(bytes)
        .map_err(|e| RegistryError::Protocol(format!("{repo}: bad referrers index: {e}")))
}
