//! Listings: the repositories of a registry (`/v2/_catalog`) and the tags of a repository,
//! following `Link` pagination.

use crate::error::Result;
use crate::token::pull_scope;
use crate::transport::{header, read_limited, Payload};
use crate::{Client, RegistryError, Repo};

impl Client {
    /// Lists the repositories of a registry (`/v2/_catalog`, following pagination).
    pub fn list_repositories(&self, host: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let repo = Repo::new(host, "");
        self.paginate(
            &repo,
            "registry:catalog:*",
            "/v2/_catalog?n=1000",
            "repository catalog",
            |p: Catalog| p.repositories,
        )
    }

    /// Lists the tags of a repository (following pagination); empty when it has none.
    pub fn list_tags(&self, repo: &Repo) -> Result<Vec<String>> {
        let first = format!("/v2/{}/tags/list?n=1000", repo.name);
        match self.paginate(repo, &pull_scope(repo), &first, "tag list", |p: Tags| {
            p.tags.unwrap_or_default()
        }) {
            // A repository whose manifests are all untagged answers 404 (NAME_UNKNOWN).
            Err(RegistryError::NotFound { .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// The tags of `repo` when one page of fewer than `limit` holds them all, with no `Link` to
    /// a next page (the distribution spec's promise for a list cut short). A caller about to
    /// look up many tags that mostly do not exist asks this once instead. `None` when the list
    /// is longer, the registry refuses to list it (404, 401/403, another status), or `repo` is
    /// an OCI layout: the caller then looks tags up one by one.
    pub fn tags_if_fewer_than(&self, repo: &Repo, limit: usize) -> Result<Option<Vec<String>>> {
        if repo.layout_dir().is_some() {
            return Ok(None);
        }
        let path = format!("/v2/{}/tags/list?n={limit}", repo.name);
        match self.page::<Tags>(repo, &pull_scope(repo), &path, "tag list") {
            Ok((page, None)) => {
                let tags = page.tags.unwrap_or_default();
                Ok((tags.len() < limit).then_some(tags))
            }
            Ok((_, Some(_))) => Ok(None),
            Err(
                RegistryError::NotFound { .. }
                | RegistryError::Denied { .. }
                | RegistryError::Status { .. },
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Follows `Link: <...>; rel="next"` pages of a list endpoint, collecting the names.
    fn paginate<P: serde::de::DeserializeOwned>(
        &self,
        repo: &Repo,
        scope: &str,
        first: &str,
        what: &str,
        names: impl Fn(P) -> Vec<String>,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut path = first.to_string();
        loop {
            let (page, next) = self.page::<P>(repo, scope, &path, what)?;
            let page = names(page);
            let empty = page.is_empty();
            out.extend(page);
            match next {
                Some(n) if !empty => path = n,
                _ => return Ok(out),
            }
        }
    }

    /// One page of a list endpoint (200 only, with retries), and the path of the next page
    /// when a `Link: <...>; rel="next"` names one.
    fn page<P: serde::de::DeserializeOwned>(
        &self,
        repo: &Repo,
        scope: &str,
        path: &str,
        what: &str,
    ) -> Result<(P, Option<String>)> {
        let resp = self.retry(&format!("{what} of {repo}"), || {
            let resp = self.exchange(repo, scope, "GET", path, &[], Payload::Empty)?;
            self.expect(resp, repo, "GET", path, &[200], what)
        })?;
        let next = header(&resp, "link").and_then(|l| next_link(&l));
        let page: P = serde_json::from_slice(&read_limited(resp, 64 << 20, "GET", path)?)
            .map_err(|e| RegistryError::Protocol(format!("{repo}: bad {what}: {e}")))?;
        Ok((page, next))
    }
}

/// One page of a tag list (`tags` is null in a repository that has none).
#[derive(serde::Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The target of a `Link: </v2/...>; rel="next"` header.
fn next_link(link: &str) -> Option<String> {
    let (target, rel) = link.split_once(';')?;
    rel.contains("next").then(|| {
        target
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
