//! Credentials: Docker/Podman auth files and OpenShift pull secrets, and the registry's
//! `WWW-Authenticate` challenges.
//!
//! An auth file maps keys to credentials: `{"auths": {"quay.io": {"auth": "base64(user:pass)"}}}`.
//! A key is a registry host or a host plus a repository prefix (`quay.io/org`); the longest key
//! that matches a repository component by component wins, as in containers-auth.json(5).
//! Credentials never appear in `Debug` output or error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::RegistryError;

/// A user name and secret.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A loaded auth file.
#[derive(Clone, Default)]
pub struct AuthFile {
    /// Normalized key (`host[/path]`) to credentials.
    entries: BTreeMap<String, Credentials>,
    /// Where it came from, for messages.
    pub path: Option<PathBuf>,
}

impl fmt::Debug for AuthFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFile")
            .field("path", &self.path)
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    auths: BTreeMap<String, RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthFile {
    /// The auth file podman would use: `$REGISTRY_AUTH_FILE`, then
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, then `~/.docker/config.json`; the first that exists.
    pub fn default_path() -> Option<PathBuf> {
        let mut candidates = Vec::new();
        if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
            candidates.push(PathBuf::from(p));
        }
        if let Some(p) = std::env::var_os("XDG_RUNTIME_DIR") {
            candidates.push(PathBuf::from(p).join("containers/auth.json"));
        }
        if let Some(p) = std::env::var_os("HOME") {
            candidates.push(PathBuf::from(p).join(".docker/config.json"));
        }
        candidates.into_iter().find(|p| p.is_file())
    }

    /// Loads an auth file or pull secret. Warns (on stderr) when others can read it.
    pub fn load(path: &Path) -> Result<AuthFile, RegistryError> {
        let bad = |m: String| RegistryError::Config(format!("auth file {}: {m}", path.display()));
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o044 != 0 {
                    eprintln!(
                        "warning: auth file {} is readable by other users; run: chmod 600 {}",
                        path.display(),
                        path.display()
                    );
                }
            }
        }
        // Never echo the parser's view of the content: it may quote a secret.
        let raw: RawFile = serde_json::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "not a JSON auth file (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let mut entries = BTreeMap::new();
        for (key, e) in raw.auths {
            let creds = if let Some(a) = e.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|_| bad(format!("entry {key:?}: \"auth\" is not base64")))?;
                let text = String::from_utf8(decoded)
                    .map_err(|_| bad(format!("entry {key:?}: \"auth\" is not UTF-8")))?;
                let (u, p) = text
                    .split_once(':')
                    .ok_or_else(|| bad(format!("entry {key:?}: \"auth\" is not user:password")))?;
                Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                }
            } else if let (Some(u), Some(p)) = (e.username, e.password) {
                Credentials {
                    username: u,
                    password: p,
                }
            } else if let Some(t) = e.identitytoken {
                Credentials {
                    username: "<token>".into(),
                    password: t,
                }
            } else {
                continue;
            };
            entries.insert(normalize_key(&key), creds);
        }
        Ok(AuthFile {
            entries,
            path: Some(path.to_path_buf()),
        })
    }

    /// Credentials for a repository: the longest key matching `host/repo` component-wise.
    pub fn lookup(&self, host: &str, repository: &str) -> Option<&Credentials> {
        let host = normalize_key(host);
        let full = format!("{host}/{repository}");
        let mut candidate = full.as_str();
        loop {
            if let Some(c) = self.entries.get(candidate) {
                return Some(c);
            }
            match candidate.rfind('/') {
                Some(i) => candidate = &candidate[..i],
                None => return None,
            }
        }
    }

    /// Credentials for a host alone (used for token requests that name no repository).
    pub fn lookup_host(&self, host: &str) -> Option<&Credentials> {
        self.entries.get(&normalize_key(host))
    }
}

fn normalize_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses the first challenge of a `WWW-Authenticate` header.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = parse_params(rest);
            Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
            })
        }
        _ => None,
    }
}

fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_string(), &q[end + 1..]),
                None => (q.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            }
        };
        out.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
    }

    #[test]
    fn longest_prefix_wins_and_secrets_stay_hidden() {
        let dir = std::env::temp_dir().join(format!("ferry-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth.json");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"quay.io":{{"auth":"{}"}},"quay.io/org/team":{{"auth":"{}"}},"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
                b64("host:s3cret-host"),
                b64("team:s3cret-team"),
                b64("hub:s3cret-hub")
            ),
        )
        .unwrap();
        let f = AuthFile::load(&path).unwrap();
        assert_eq!(
            f.lookup("quay.io", "org/team/app").unwrap().username,
            "team"
        );
        assert_eq!(f.lookup("quay.io", "org/teamx").unwrap().username, "host");
        assert_eq!(
            f.lookup("docker.io", "library/busybox").unwrap().username,
            "hub"
        );
        assert!(f.lookup("ghcr.io", "x").is_none());
        let shown = format!("{f:?} {:?}", f.lookup("quay.io", "a"));
        assert!(!shown.contains("s3cret"), "{shown}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
