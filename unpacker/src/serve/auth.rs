//! HTTP basic auth against an htpasswd file, as `htpasswd -B` writes it (bcrypt entries only:
//! the other htpasswd schemes are MD5 or SHA-1 variants, refused with a message). A checked
//! (user, password) pair is remembered by its sha256, so that bcrypt's deliberate slowness is
//! paid once per client, not once per request.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use base64::Engine;
use ferry_format::Digest;

/// Users and their bcrypt hashes.
pub struct Htpasswd {
    users: BTreeMap<String, String>,
    accepted: Mutex<HashSet<Digest>>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --htpasswd {}", path.display()))?;
        Htpasswd::parse(&text).with_context(|| format!("--htpasswd {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Htpasswd> {
        let mut users = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                bail!("line {}: expected USER:HASH", n + 1);
            };
            if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
                bail!(
                    "line {}: the entry of {user:?} is not bcrypt; make the file with htpasswd -B",
                    n + 1
                );
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            bail!("no user in the file");
        }
        Ok(Htpasswd {
            users,
            accepted: Mutex::new(HashSet::new()),
        })
    }

    /// Whether an `Authorization` header carries a user and password of the file.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(encoded) = authorization.and_then(|a| a.strip_prefix("Basic ")) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(pair) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = pair.split_once(':') else {
            return false;
        };
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key = Digest::of(format!("{hash}\0{password}").as_bytes());
        if self.accepted.lock().expect("lock").contains(&key) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            self.accepted.lock().expect("lock").insert(key);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `htpasswd -Bbn -C 5 ferry s3cret` (Apache htpasswd 2.4).
    const ENTRY: &str = "ferry:$2y$05$3U0uvesksoDF5F75Q5qK/uHs0XLH0udv4M.XSbMcaJ3OrH2DPNVgm";

    fn basic(pair: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    #[test]
    fn bcrypt_entries_accept_their_password_only() {
        let h = Htpasswd::parse(&format!("# users\n{ENTRY}\n")).unwrap();
        assert!(h.allows(Some(&basic("ferry:s3cret"))));
        assert!(
            h.allows(Some(&basic("ferry:s3cret"))),
            "the second time from memory"
        );
        assert!(!h.allows(Some(&basic("ferry:wrong"))));
        assert!(!h.allows(Some(&basic("nobody:s3cret"))));
        assert!(!h.allows(None));
        assert!(!h.allows(Some("Bearer x")));
        assert!(
            Htpasswd::parse("ferry:$apr1$abc$def").is_err(),
            "MD5 entries are refused"
        );
        assert!(Htpasswd::parse("").is_err());
    }
}
