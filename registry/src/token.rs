//! Authentication: answering a registry's challenge with basic credentials from the auth
//! file, or with a bearer token fetched for the request's scope (and cached per scope).

use crate::auth::{Challenge, Credentials};
use crate::error::Result;
use crate::host::HostState;
use crate::transport::{encode, read_limited, retry_after};
use crate::{Client, RegistryError, Repo};

impl Client {
    /// The Authorization header for a request in `scope`, fetching a bearer token if the host
    /// asked for one.
    pub(crate) fn auth_header(
        &self,
        st: &HostState,
        repo: &Repo,
        scope: &str,
    ) -> Result<Option<String>> {
        let challenge = {
            let a = st.auth.lock().expect("lock");
            if let Some(t) = a.tokens.get(scope) {
                return Ok(Some(format!("Bearer {t}")));
            }
            a.challenge.clone()
        };
        let creds = self
            .opts
            .auth
            .as_ref()
            .and_then(|f| {
                if repo.name.is_empty() {
                    f.lookup_host(&repo.host)
                } else {
                    f.lookup(&repo.host, &repo.name)
                }
            })
            .cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => match creds {
                Some(c) => Ok(Some(c.basic_header())),
                None => Err(self.denied(repo, 401)),
            },
            Some(Challenge::Bearer { realm, service }) => {
                let token = self.fetch_token(repo, &realm, service.as_deref(), scope, creds)?;
                st.auth
                    .lock()
                    .expect("lock")
                    .tokens
                    .insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    pub(crate) fn denied(&self, repo: &Repo, status: u16) -> RegistryError {
        let hint = match &self.opts.auth {
            Some(f) => format!(
                "the auth file {} has no working credentials for it; add them (podman login {}) or check the account's permissions",
                f.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                repo.host
            ),
            None => format!(
                "no credentials were given; log in (podman login {}) or pass --authfile FILE",
                repo.host
            ),
        };
        RegistryError::Denied {
            host: repo.host.clone(),
            repo: repo.name.clone(),
            status,
            hint,
        }
    }

    fn fetch_token(
        &self,
        repo: &Repo,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<Credentials>,
    ) -> Result<String> {
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = service {
            url.push_str(&format!("{sep}service={}", encode(s)));
            sep = '&';
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            url.push_str(&format!("{sep}scope={}", encode(s)));
            sep = '&';
        }
        let realm_host = realm
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("");
        let agent = self.agent_for(realm_host);
        let resp = self.retry(&format!("token for {repo}"), || {
            let mut req = agent.get(&url);
            if let Some(c) = &creds {
                req = req.header("Authorization", &c.basic_header());
            }
            let resp = req
                .call()
                .map_err(|e| self.transport_error("GET", realm, realm_host, e))?;
            if self.opts.verbose {
                eprintln!(
                    "debug: GET {realm} (token for {scope}) -> {}",
                    resp.status().as_u16()
                );
            }
            match resp.status().as_u16() {
                200 => Ok(resp),
                401 | 403 => Err(self.denied(repo, resp.status().as_u16())),
                s => Err(RegistryError::Status {
                    method: "GET",
                    url: realm.to_string(),
                    status: s,
                    detail: "token request failed".into(),
                    retry_after: retry_after(&resp),
                }),
            }
        })?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let bytes = read_limited(resp, 1 << 20, "GET", realm)?;
        let t: Token = serde_json::from_slice(&bytes).map_err(|_| {
            RegistryError::Protocol(format!("token endpoint {realm} sent no JSON token"))
        })?;
        t.token
            .or(t.access_token)
            .ok_or_else(|| RegistryError::Protocol(format!("token endpoint {realm} sent no token")))
    }
}

pub(crate) fn pull_scope(repo: &Repo) -> String {
    format!("repository:{}:pull", repo.name)
}

pub(crate) fn push_scope(repo: &Repo) -> String {
    format!("repository:{}:pull,push", repo.name)
}
