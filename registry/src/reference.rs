//! Image references: `[registry[:port]/]repository[:tag][@sha256:digest]`.
//!
//! Defaults follow the Docker/Podman rules: no registry means `docker.io`, and a one-part
//! repository on docker.io lives under `library/`.

use std::fmt;
use std::str::FromStr;

use ferry_format::Digest;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, as written (`quay.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`openshift/release`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    input: String,
    reason: String,
}

impl Reference {
    /// The tag, or the digest, that names the manifest to fetch.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

/// Whether a host (with optional port) is a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    h == "localhost" || h == "::1" || h.starts_with("127.")
}

fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        })
}

/// Whether a string is a valid tag.
pub fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.as_bytes()[0] == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        let s = s.strip_prefix("docker://").unwrap_or(s);
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(d.parse::<Digest>().map_err(|e| err(&e.to_string()))?),
            ),
            None => (s, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(err(
                    "a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if (registry == "docker.io") && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_repository(&repository) {
            return Err(err(
                "a repository is lowercase path components of [a-z0-9._-] separated by /",
            ));
        }
        if registry.is_empty() || registry.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(err("bad registry host"));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let r: Reference = "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64"
            .parse()
            .unwrap();
        assert_eq!(r.registry, "quay.io");
        assert_eq!(r.repository, "openshift-release-dev/ocp-release");
        assert_eq!(r.tag.as_deref(), Some("4.15.0-x86_64"));
        let r: Reference = "127.0.0.1:5000/a/b@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.tag, None);
        assert!(r.manifest_reference().starts_with("sha256:"));
        let r: Reference = "busybox".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        let r: Reference = "localhost:5000/x:1".parse().unwrap();
        assert_eq!(r.registry, "localhost:5000");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Quay.io/UPPER/x",
            "a//b",
            "x:-bad",
            "a/b@sha256:zz",
            "a/../b",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:443"));
        assert!(!is_loopback("quay.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
