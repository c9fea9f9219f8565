//! The [`Client`]: one value serves many hosts and threads (it is `Sync`). Per host it
//! remembers the URL scheme, the auth state (basic credentials or bearer tokens per scope) and
//! a concurrency gate. Every call names the repository it concerns, so errors say which image
//! failed.
//!
//! The calls live beside the resource they concern: [`crate::manifests`], [`crate::blobs`],
//! [`crate::uploads`], [`crate::listing`]; how a request is sent in [`crate::transport`] (TLS
//! in [`crate::tls`]), authenticated in [`crate::token`], throttled in [`crate::gate`] and
//! retried in [`crate::retry`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::Agent;

use crate::auth::AuthFile;
use crate::error::Result;
use crate::host::HostState;
use crate::reference::is_loopback;
use crate::tls::tls_config;
use crate::transport::{is_certificate_error, Payload};
use crate::RegistryError;

/// How the client connects and authenticates.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Credentials to offer when a registry asks.
    pub auth: Option<AuthFile>,
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Speak plain HTTP to every registry (loopback registries may always fall back to it).
    pub plain_http: bool,
    /// Retries of an idempotent call after a transient failure.
    pub retries: u32,
    pub user_agent: String,
    /// Log every request (method, URL without query, status) to stderr. Credentials, tokens
    /// and `Authorization` headers are never logged.
    pub verbose: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            auth: None,
            ca_file: None,
            plain_http: false,
            retries: 4,
            user_agent: format!("ferry/{}", env!("CARGO_PKG_VERSION")),
            verbose: false,
        }
    }
}

/// A repository on a registry host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repo {
    /// Host with optional port, as in references (`docker.io` is mapped to its API host).
    pub host: String,
    pub name: String,
}

impl Repo {
    pub fn new(host: impl Into<String>, name: impl Into<String>) -> Self {
        Repo {
            host: host.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.name)
    }
}

/// The client.
pub struct Client {
    agent: Agent,
    direct: Agent,
    pub(crate) opts: ClientOptions,
    /// How many CA certificates the system store gave (for error hints).
    pub(crate) system_roots: usize,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
}

fn api_host(host: &str) -> &str {
    if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        let roots = tls_config(&opts)?;
        let tls = roots.config;
        let build = |proxy: bool| -> Agent {
            let mut b = Agent::config_builder()
                .http_status_as_error(false)
                .tls_config(tls.clone())
                .user_agent(opts.user_agent.as_str())
                .max_idle_connections(64)
                .max_idle_connections_per_host(32)
                .timeout_connect(Some(Duration::from_secs(30)))
                .timeout_recv_response(Some(Duration::from_secs(600)))
                .max_redirects(5);
            if !proxy {
                b = b.proxy(None);
            }
            b.build().into()
        };
        Ok(Client {
            agent: build(true),
            direct: build(false),
            opts,
            hosts: Mutex::new(HashMap::new()),
            system_roots: roots.system,
        })
    }

    pub(crate) fn agent_for(&self, host: &str) -> &Agent {
        if is_loopback(host) {
            &self.direct
        } else {
            &self.agent
        }
    }

    /// The scheme and host to use, decided once per host: HTTPS, or plain HTTP when asked for
    /// or when a loopback registry does not speak TLS.
    pub(crate) fn host_state(&self, host: &str) -> Result<Arc<HostState>> {
        if let Some(s) = self.hosts.lock().expect("lock").get(host) {
            return Ok(s.clone());
        }
        let api = api_host(host);
        let base = if self.opts.plain_http {
            format!("http://{api}")
        } else if is_loopback(host) {
            let https = format!("https://{api}");
            match self.direct.get(format!("{https}/v2/")).call() {
                Ok(_) => https,
                // It speaks TLS but we do not trust it: stay on HTTPS so that the error says so.
                Err(e) if is_certificate_error(&e) => https,
                Err(_) => format!("http://{api}"),
            }
        } else {
            format!("https://{api}")
        };
        let state = Arc::new(HostState::new(base));
        Ok(self
            .hosts
            .lock()
            .expect("lock")
            .entry(host.to_string())
            .or_insert(state)
            .clone())
    }

    /// The scheme and host the client uses for a registry (`https://quay.io`). Only loopback
    /// registries are probed; any other host is HTTPS unless `plain_http` was asked for.
    pub fn base_url(&self, host: &str) -> Result<String> {
        Ok(self.host_state(host)?.base.clone())
    }

    /// Checks that a registry answers the v2 API (200, or 401 asking for credentials).
    pub fn ping(&self, host: &str) -> Result<()> {
        let repo = Repo::new(host, "");
        let resp = self.exchange(&repo, "", "GET", "/v2/", &[], Payload::Empty)?;
        match resp.status().as_u16() {
            200 | 401 => Ok(()),
            s => Err(RegistryError::Protocol(format!(
                "{host} does not look like a container registry: GET /v2/ answered {s}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_when_asked_for_or_on_loopback() {
        let c = Client::new(ClientOptions::default()).unwrap();
        assert_eq!(
            c.base_url("registry.example:5000").unwrap(),
            "https://registry.example:5000"
        );
        assert_eq!(
            c.base_url("10.1.2.3:5000").unwrap(),
            "https://10.1.2.3:5000"
        );
        assert_eq!(
            c.base_url("docker.io").unwrap(),
            "https://registry-1.docker.io"
        );
        let plain = Client::new(ClientOptions {
            plain_http: true,
            ..ClientOptions::default()
        })
        .unwrap();
        assert_eq!(
            plain.base_url("registry.example:5000").unwrap(),
            "http://registry.example:5000"
        );
    }
}
