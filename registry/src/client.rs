//! The registry client.
//!
//! One [`Client`] serves many hosts and threads (it is `Sync`): per host it remembers the URL
//! scheme and the auth state (basic credentials or bearer tokens per scope). Every call names
//! the repository it concerns, so errors say which image failed.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_format::manifest::ACCEPT;
use ferry_format::Digest;
use ureq::http::{self, Response};
use ureq::{Agent, Body, SendBody};

use crate::auth::{parse_challenge, AuthFile, Challenge};
use crate::reference::is_loopback;
use crate::RegistryError;

/// Largest manifest accepted (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

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

/// A manifest as received: exact bytes, announced media type, digest of the bytes.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// A blob body being received.
pub struct BlobBody {
    pub reader: Box<dyn Read + Send>,
    /// `Content-Length` of this body, when the registry sent one.
    pub size: Option<u64>,
    /// The blob offset this body starts at (non-zero only for an honoured `Range`).
    pub offset: u64,
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<String, String>,
}

struct HostState {
    base: String,
    auth: Mutex<AuthState>,
    gate: Gate,
}

/// Per-registry concurrency: at most `limit` requests in flight. A 429 halves the limit and
/// holds every request until its `Retry-After` has passed; successes raise it again slowly
/// (additive increase, multiplicative decrease).
struct Gate {
    state: Mutex<GateState>,
    wake: std::sync::Condvar,
}

struct GateState {
    limit: usize,
    inflight: usize,
    successes: usize,
    not_before: std::time::Instant,
}

const GATE_MAX: usize = 32;

impl Gate {
    fn new() -> Gate {
        Gate {
            state: Mutex::new(GateState {
                limit: GATE_MAX,
                inflight: 0,
                successes: 0,
                not_before: std::time::Instant::now(),
            }),
            wake: std::sync::Condvar::new(),
        }
    }

    /// Waits for a slot; the slot is freed when the permit drops.
    fn enter(&self) -> Permit<'_> {
        let mut g = self.state.lock().expect("lock");
        loop {
            let now = std::time::Instant::now();
            if g.inflight < g.limit && now >= g.not_before {
                g.inflight += 1;
                return Permit(self);
            }
            let wait = if now < g.not_before {
                g.not_before - now
            } else {
                Duration::from_millis(200)
            };
            g = self.wake.wait_timeout(g, wait).expect("lock").0;
        }
    }

    /// Adjusts the limit to what the registry answered.
    fn observe(&self, status: u16, retry_after: Option<u64>) {
        let mut g = self.state.lock().expect("lock");
        if status == 429 {
            if g.limit > 1 {
                eprintln!(
                    "registry throttles (429): lowering concurrency to {}",
                    g.limit / 2
                );
            }
            g.limit = (g.limit / 2).max(1);
            g.successes = 0;
            let hold =
                std::time::Instant::now() + Duration::from_secs(retry_after.unwrap_or(1).min(300));
            g.not_before = g.not_before.max(hold);
        } else if status < 400 {
            g.successes += 1;
            if g.successes >= 16 && g.limit < GATE_MAX {
                g.limit += 1;
                g.successes = 0;
            }
        }
    }
}

/// A slot of a [`Gate`].
struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.state.lock().expect("lock").inflight -= 1;
        self.0.wake.notify_all();
    }
}

enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a mut (dyn Read + Send + Sync), u64),
}

/// The client.
pub struct Client {
    agent: Agent,
    direct: Agent,
    opts: ClientOptions,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
}

type Result<T> = std::result::Result<T, RegistryError>;

fn api_host(host: &str) -> &str {
    if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        let tls = tls_config(&opts)?;
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
        })
    }

    fn agent_for(&self, host: &str) -> &Agent {
        if is_loopback(host) {
            &self.direct
        } else {
            &self.agent
        }
    }

    /// The scheme and host to use, decided once per host: HTTPS, or plain HTTP when asked for
    /// or when a loopback registry does not speak TLS.
    fn host_state(&self, host: &str) -> Result<Arc<HostState>> {
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
        let state = Arc::new(HostState {
            base,
            auth: Mutex::new(AuthState::default()),
            gate: Gate::new(),
        });
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

    /// Sends one request, answering an auth challenge once.
    fn exchange(
        &self,
        repo: &Repo,
        scope: &str,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        mut payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        let st = self.host_state(&repo.host)?;
        let url = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}{url}", st.base)
        };
        let shown_url = url.split('?').next().unwrap_or(&url).to_string();
        let agent = self.agent_for(&repo.host);
        for attempt in 0..2 {
            let auth = self.auth_header(&st, repo, scope)?;
            let mut req = http::Request::builder().method(method).uri(&url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(a) = &auth {
                req = req.header("Authorization", a.as_str());
            }
            let is_stream = matches!(payload, Payload::Stream(..));
            let permit = st.gate.enter();
            let result = match &mut payload {
                Payload::Empty => {
                    let req = req
                        .body(())
                        .map_err(|e| RegistryError::Protocol(e.to_string()))?;
                    agent.run(req)
                }
                Payload::Bytes(b) => {
                    let req = req
                        .header("Content-Length", b.len().to_string())
                        .body(*b)
                        .map_err(|e| RegistryError::Protocol(e.to_string()))?;
                    agent.run(req)
                }
                Payload::Stream(r, len) => {
                    let req = req
                        .header("Content-Length", len.to_string())
                        .body(SendBody::from_reader(*r))
                        .map_err(|e| RegistryError::Protocol(e.to_string()))?;
                    agent.run(req)
                }
            };
            drop(permit);
            let resp = result.map_err(|e| transport_error(method, &shown_url, &repo.host, e))?;
            if self.opts.verbose {
                let with_auth = if auth.is_some() {
                    " (authenticated)"
                } else {
                    ""
                };
                eprintln!(
                    "debug: {method} {shown_url}{with_auth} -> {}",
                    resp.status().as_u16()
                );
            }
            st.gate.observe(resp.status().as_u16(), retry_after(&resp));
            if resp.status().as_u16() == 401 && attempt == 0 && !is_stream {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if let Some(ch) = challenge {
                    let mut a = st.auth.lock().expect("lock");
                    a.challenge = Some(ch);
                    a.tokens.remove(scope);
                    continue;
                }
            }
            return Ok(resp);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// The Authorization header for a request in `scope`, fetching a bearer token if the host
    /// asked for one.
    fn auth_header(&self, st: &HostState, repo: &Repo, scope: &str) -> Result<Option<String>> {
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

    fn denied(&self, repo: &Repo, status: u16) -> RegistryError {
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
        creds: Option<crate::auth::Credentials>,
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
                .map_err(|e| transport_error("GET", realm, realm_host, e))?;
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

    /// Runs an idempotent call, retrying transient failures with exponential backoff and jitter.
    pub fn retry<T>(&self, what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempt = 0u32;
        loop {
            match f() {
                Err(e) if self.backoff(what, attempt, &e) => attempt += 1,
                other => return other,
            }
        }
    }

    /// After failed attempt number `attempt` (from 0): if the error is transient and retries
    /// remain, says so, waits (exponential backoff with jitter, at least the registry's
    /// `Retry-After`) and returns true.
    pub fn backoff(&self, what: &str, attempt: u32, e: &RegistryError) -> bool {
        if !e.is_transient() || attempt >= self.opts.retries {
            return false;
        }
        let base = 250u64 << attempt.min(6);
        let jitter = jitter_ms(base / 2 + 1);
        let asked = e.retry_after().unwrap_or(0).min(300) * 1000;
        let wait = Duration::from_millis((base + jitter).min(15_000).max(asked));
        eprintln!("retrying {what} in {wait:?}: {e}");
        std::thread::sleep(wait);
        true
    }

    /// GETs a plain HTTP(S) URL that is not a registry API (an update graph, a signature
    /// store), with the client's TLS settings, proxy rules and retries. `Ok(None)` on 404;
    /// bodies larger than `limit` bytes are refused.
    pub fn get_url(&self, url: &str, accept: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', '?']).next())
            .unwrap_or("")
            .to_string();
        let agent = self.agent_for(&host);
        self.retry(url, || {
            if self.opts.verbose {
                eprintln!("GET {}", url.split('?').next().unwrap_or(url));
            }
            let resp = agent
                .get(url)
                .header("Accept", accept)
                .call()
                .map_err(|e| transport_error("GET", url, &host, e))?;
            let status = resp.status().as_u16();
            match status {
                200 => read_limited(resp, limit, "GET", url).map(Some),
                404 | 410 => Ok(None),
                _ => {
                    let retry_after = resp
                        .headers()
                        .get("Retry-After")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse().ok());
                    let body = read_limited(resp, 64 * 1024, "GET", url).unwrap_or_default();
                    Err(RegistryError::Status {
                        method: "GET",
                        url: url.to_string(),
                        status,
                        detail: error_detail(&body),
                        retry_after,
                    })
                }
            }
        })
    }

    /// Fetches a manifest by tag or digest, exactly as the registry sends it.
    pub fn get_manifest(&self, repo: &Repo, reference: &str) -> Result<FetchedManifest> {
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
                        expected,
                        found: digest,
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
        let path = format!("/v2/{}/blobs/{digest}", repo.name);
        let scope = pull_scope(repo);
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 {
            &[("Range", range.as_str())]
        } else {
            &[]
        };
        let resp = self.exchange(repo, &scope, "GET", &path, headers, Payload::Empty)?;
        let resp = self.expect(
            resp,
            repo,
            "GET",
            &path,
            &[200, 206],
            &format!("blob {digest}"),
        )?;
        let start = if resp.status().as_u16() == 206 {
            header(&resp, "content-range")
                .and_then(|r| r.strip_prefix("bytes ")?.split('-').next()?.parse().ok())
                .unwrap_or(u64::MAX)
        } else {
            0
        };
        if start != 0 && start != offset {
            return Err(RegistryError::Protocol(format!(
                "{repo}: asked blob {digest} from byte {offset}, got a range from {start}"
            )));
        }
        let size = header(&resp, "content-length").and_then(|l| l.parse().ok());
        Ok(BlobBody {
            reader: Box::new(resp.into_body().into_reader()),
            size,
            offset: start,
        })
    }

    /// Whether a blob exists in a repository.
    pub fn blob_exists(&self, repo: &Repo, digest: &Digest) -> Result<bool> {
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

    /// Asks the registry to link a blob from another repository of the same host.
    /// Returns false when it did not (the caller then uploads).
    pub fn mount_blob(&self, repo: &Repo, digest: &Digest, from: &str) -> Result<bool> {
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={}",
            repo.name,
            encode(from)
        );
        let scope = format!("{} repository:{from}:pull", push_scope(repo));
        let resp = self.exchange(repo, &scope, "POST", &path, &[], Payload::Bytes(b""))?;
        match resp.status().as_u16() {
            201 => Ok(true),
            202 => {
                // The registry opened an upload instead; close it, the caller will start its own.
                if let Some(loc) = header(&resp, "location") {
                    let _ =
                        self.exchange(repo, &push_scope(repo), "DELETE", &loc, &[], Payload::Empty);
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn start_upload(&self, repo: &Repo) -> Result<String> {
        let path = format!("/v2/{}/blobs/uploads/", repo.name);
        let scope = push_scope(repo);
        self.retry(&format!("upload to {repo}"), || {
            let resp = self.exchange(repo, &scope, "POST", &path, &[], Payload::Bytes(b""))?;
            let resp = self.expect(resp, repo, "POST", &path, &[202], "upload session")?;
            header(&resp, "location").ok_or_else(|| {
                RegistryError::Protocol(format!("{repo}: upload started without a Location"))
            })
        })
    }

    /// Uploads a small blob held in memory (already verified by the caller) in one PUT.
    pub fn upload_blob_bytes(&self, repo: &Repo, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.retry(&format!("blob {digest} to {repo}"), || {
            let loc = self.start_upload(repo)?;
            let url = with_query(&loc, &format!("digest={digest}"));
            let resp = self.exchange(
                repo,
                &push_scope(repo),
                "PUT",
                &url,
                &[("Content-Type", "application/octet-stream")],
                Payload::Bytes(bytes),
            )?;
            self.expect(
                resp,
                repo,
                "PUT",
                "blob upload",
                &[201, 204],
                &format!("blob {digest}"),
            )?;
            Ok(())
        })
    }

    /// Streams a blob of `size` bytes from `reader`, then asks `check` whether what was read is
    /// right (the caller hashes as it reads). Only then is the upload committed under `digest`;
    /// otherwise it is cancelled and nothing appears at the target.
    pub fn upload_blob_stream(
        &self,
        repo: &Repo,
        digest: &Digest,
        size: u64,
        reader: &mut (dyn Read + Send + Sync),
        check: &mut dyn FnMut() -> std::result::Result<(), String>,
    ) -> Result<()> {
        let loc = self.start_upload(repo)?;
        let scope = push_scope(repo);
        let resp = self.exchange(
            repo,
            &scope,
            "PATCH",
            &loc,
            &[("Content-Type", "application/octet-stream")],
            Payload::Stream(reader, size),
        )?;
        let resp = self.expect(
            resp,
            repo,
            "PATCH",
            "blob upload",
            &[202, 204],
            &format!("blob {digest}"),
        )?;
        let loc = header(&resp, "location").unwrap_or(loc);
        if let Err(why) = check() {
            let _ = self.exchange(repo, &scope, "DELETE", &loc, &[], Payload::Empty);
            return Err(RegistryError::Protocol(format!(
                "blob {digest} not committed to {repo}: {why}"
            )));
        }
        let url = with_query(&loc, &format!("digest={digest}"));
        let resp = self.exchange(repo, &scope, "PUT", &url, &[], Payload::Bytes(b""))?;
        self.expect(
            resp,
            repo,
            "PUT",
            "blob upload",
            &[201, 204],
            &format!("blob {digest}"),
        )?;
        Ok(())
    }

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
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let first = format!("/v2/{}/tags/list?n=1000", repo.name);
        match self.paginate(repo, &pull_scope(repo), &first, "tag list", |p: Tags| {
            p.tags.unwrap_or_default()
        }) {
            // A repository whose manifests are all untagged answers 404 (NAME_UNKNOWN).
            Err(RegistryError::NotFound { .. }) => Ok(Vec::new()),
            other => other,
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
            let resp = self.retry(&format!("{what} of {repo}"), || {
                let resp = self.exchange(repo, scope, "GET", &path, &[], Payload::Empty)?;
                self.expect(resp, repo, "GET", &path, &[200], what)
            })?;
            let next = header(&resp, "link").and_then(|l| next_link(&l));
            let page: P = serde_json::from_slice(&read_limited(resp, 64 << 20, "GET", &path)?)
                .map_err(|e| RegistryError::Protocol(format!("{repo}: bad {what}: {e}")))?;
            let page = names(page);
            let empty = page.is_empty();
            out.extend(page);
            match next {
                Some(n) if !empty => path = n,
                _ => return Ok(out),
            }
        }
    }

    /// Maps an unexpected status to an error that names the object and says what to do.
    fn expect(
        &self,
        resp: Response<Body>,
        repo: &Repo,
        method: &'static str,
        path: &str,
        ok: &[u16],
        what: &str,
    ) -> Result<Response<Body>> {
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        match status {
            404 => Err(RegistryError::NotFound {
                host: repo.host.clone(),
                repo: repo.name.clone(),
                what: what.to_string(),
            }),
            401 | 403 => Err(self.denied(repo, status)),
            _ => {
                let after = retry_after(&resp);
                let detail = read_limited(resp, 4096, method, path)
                    .ok()
                    .map(|b| error_detail(&b))
                    .unwrap_or_default();
                Err(RegistryError::Status {
                    method,
                    url: format!("{}{}", repo.host, path.split('?').next().unwrap_or(path)),
                    status,
                    detail: format!("{what}: {detail}"),
                    retry_after: after,
                })
            }
        }
    }
}

fn pull_scope(repo: &Repo) -> String {
    format!("repository:{}:pull", repo.name)
}

fn push_scope(repo: &Repo) -> String {
    format!("repository:{}:pull,push", repo.name)
}

/// `Retry-After` in seconds (the HTTP-date form is treated as "a few seconds").
fn retry_after(resp: &Response<Body>) -> Option<u64> {
    let v = header(resp, "retry-after")?;
    Some(v.trim().parse().unwrap_or(5))
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
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

fn with_query(url: &str, q: &str) -> String {
    if url.contains('?') {
        format!("{url}&{q}")
    } else {
        format!("{url}?{q}")
    }
}

fn read_limited(
    resp: Response<Body>,
    limit: u64,
    method: &'static str,
    url: &str,
) -> Result<Vec<u8>> {
    resp.into_body()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| RegistryError::Transport {
            method,
            url: url.split('?').next().unwrap_or(url).to_string(),
            detail: format!("reading the body: {e}"),
        })
}

/// The registry's own error text (`{"errors":[{"code":..,"message":..}]}`), or a plain snippet.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) => e
            .errors
            .iter()
            .map(|i| format!("{} {}", i.code, i.message))
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string(),
    }
}

fn is_certificate_error(e: &ureq::Error) -> bool {
    let text = e.to_string();
    text.contains("certificate")
        || text.contains("UnknownIssuer")
        || text.contains("NotValidForName")
}

fn transport_error(method: &'static str, url: &str, host: &str, e: ureq::Error) -> RegistryError {
    let text = e.to_string();
    let hint = if text.contains("certificate")
        || text.contains("UnknownIssuer")
        || matches!(e, ureq::Error::Tls(_))
    {
        format!(" (the TLS certificate of {host} is not trusted: pass --ca-file with the CA that signed it)")
    } else if text.contains("onnection refused") {
        format!(" (is the registry at {host} running, and is the port right?)")
    } else {
        String::new()
    };
    RegistryError::Transport {
        method,
        url: url.to_string(),
        detail: format!("{text}{hint}"),
    }
}

fn tls_config(opts: &ClientOptions) -> Result<ureq::tls::TlsConfig> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let Some(ca) = &opts.ca_file else {
        return Ok(TlsConfig::builder().build());
    };
    let pem = std::fs::read(ca).map_err(|e| {
        RegistryError::Config(format!("cannot read --ca-file {}: {e}", ca.display()))
    })?;
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(RegistryError::Config(format!(
            "--ca-file {} holds no PEM certificate",
            ca.display()
        )));
    }
    // System roots plus the given CA(s): RootCerts::Specific replaces the roots otherwise.
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        certs.push(Certificate::from_der(c.as_ref()).to_owned());
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&certs))
        .build())
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn jitter_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % max.max(1)
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

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
