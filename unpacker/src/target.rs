//! The target registry: `HOST[:PORT][/NAMESPACE]`, and where a source repository lands in it.
//!
//! `<source-registry>/<repo>` becomes `<HOST>/<NAMESPACE>/<repo>` (or `<HOST>/<repo>` without a
//! namespace): the source registry host is dropped, so that one archive can hold images of many
//! registries and the cluster's mirror sets map each back. Registries that limit path depth
//! (Quay, GitLab, Harbor) get `--max-nested-paths N`: the path keeps its first `N - 1`
//! components and joins the rest with `-`, as oc-mirror does. Every command that names target
//! repositories (push, manifests, serve, inventory) maps them here, so they agree.

use std::str::FromStr;

use ferry_registry::Repo;

/// Where to push (or what to take an inventory of).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]`.
    pub host: String,
    /// Optional path prefix for every repository.
    pub namespace: Option<String>,
    /// Most path components a repository may have (namespace included); `None`: no limit.
    pub max_nested_paths: Option<usize>,
}

/// Why a target does not parse (clap prefixes the flag it was given to).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0:?}: expected HOST[:PORT][/NAMESPACE]")]
    Shape(String),
    #[error("{0:?}: the namespace must be lowercase path components")]
    Namespace(String),
}

impl FromStr for Target {
    type Err = TargetError;

    /// Parses `HOST[:PORT][/NAMESPACE]` (a `docker://` prefix and a trailing `/` are allowed).
    fn from_str(s: &str) -> Result<Target, TargetError> {
        let s = s.trim().trim_end_matches('/');
        let s = s.strip_prefix("docker://").unwrap_or(s);
        let (host, ns) = match s.split_once('/') {
            Some((h, n)) => (h, Some(n.to_string())),
            None => (s, None),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(TargetError::Shape(s.to_string()));
        }
        if let Some(n) = &ns {
            if n.split('/')
                .any(|c| c.is_empty() || c.starts_with('.') || c != c.to_lowercase())
            {
                return Err(TargetError::Namespace(s.to_string()));
            }
        }
        Ok(Target {
            host: host.to_string(),
            namespace: ns,
            max_nested_paths: None,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(n) => write!(f, "{}/{n}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl Target {
    /// The same target with at most `n` path components per repository.
    pub fn with_max_nested_paths(mut self, n: Option<usize>) -> Target {
        self.max_nested_paths = n;
        self
    }

    /// The target repository path of a source repository path.
    pub fn repository(&self, source_repo: &str) -> String {
        let full = match &self.namespace {
            Some(n) => format!("{n}/{source_repo}"),
            None => source_repo.to_string(),
        };
        match self.max_nested_paths {
            Some(max) => flatten(&full, max),
            None => full,
        }
    }

    /// The target repository of a source repository path, on the target host.
    pub fn repo(&self, source_repo: &str) -> Repo {
        Repo::new(self.host.clone(), self.repository(source_repo))
    }

    /// `HOST/NAMESPACE/repo`: how cluster manifests name the mirror of a source repository.
    pub fn mirror(&self, source_repo: &str) -> String {
        format!("{}/{}", self.host, self.repository(source_repo))
    }
}

/// `a/b/c/d` with at most `max` components: the first `max - 1` kept, the rest joined with `-`
/// (`max` 2: `a/b-c-d`; `max` 1: `a-b-c-d`).
fn flatten(path: &str, max: usize) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() <= max.max(1) {
        return path.to_string();
    }
    let keep = max.max(1) - 1;
    let mut out: Vec<String> = parts[..keep].iter().map(|p| p.to_string()).collect();
    out.push(parts[keep..].join("-"));
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_are_flattened_from_the_limit_on() {
        let t: Target = "quay.site/mirror".parse().unwrap();
        let t = t.with_max_nested_paths(Some(2));
        assert_eq!(
            t.repository("openshift-release-dev/ocp-release"),
            "mirror/openshift-release-dev-ocp-release"
        );
        assert_eq!(
            t.repository("ubi"),
            "mirror/ubi",
            "within the limit: unchanged"
        );
        let t = t.with_max_nested_paths(Some(3));
        assert_eq!(t.repository("a/b/c/d"), "mirror/a/b-c-d");
        assert_eq!(t.mirror("a/b/c/d"), "quay.site/mirror/a/b-c-d");
        assert_eq!(flatten("a/b/c", 1), "a-b-c");
        assert_eq!(flatten("a/b/c", 0), "a-b-c", "0 acts as 1");
    }

    #[test]
    fn target_parsing_and_mapping() {
        let t: Target = "127.0.0.1:5000/mirror/ocp".parse().unwrap();
        assert_eq!(t.host, "127.0.0.1:5000");
        assert_eq!(
            t.repository("openshift/release"),
            "mirror/ocp/openshift/release"
        );
        assert_eq!(
            t.mirror("a/b"),
            "127.0.0.1:5000/mirror/ocp/a/b",
            "mirror names the host too"
        );
        assert_eq!(t.to_string(), "127.0.0.1:5000/mirror/ocp");
        let t: Target = "docker://registry.example:8443/".parse().unwrap();
        assert_eq!(t.repository("a/b"), "a/b");
        assert_eq!(t.repo("a/b"), Repo::new("registry.example:8443", "a/b"));
        assert!(matches!(
            "host/UPPER".parse::<Target>(),
            Err(TargetError::Namespace(_))
        ));
        assert!("host//x".parse::<Target>().is_err());
        assert!(matches!("".parse::<Target>(), Err(TargetError::Shape(_))));
    }
}
