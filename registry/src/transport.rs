//! Sending one request: the agent, headers, body (bytes or a stream with its length), the
//! concurrency gate and one answer to an auth challenge; mapping statuses and transport
//! failures to errors that say what to do; small helpers for headers and bodies.

use std::io::Read;

use ureq::http::{self, Response};
use ureq::{Body, SendBody};

use crate::auth::parse_challenge;
use crate::error::Result;
use crate::{Client, RegistryError, Repo};

/// The body of a request.
pub(crate) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a mut (dyn Read + Send + Sync), u64),
}

impl Client {
    /// A transport failure, with what to do about the usual causes.
    pub(crate) fn transport_error(
        &self,
        method: &'static str,
        url: &str,
        host: &str,
        e: ureq::Error,
    ) -> RegistryError {
        let text = e.to_string();
        let hint = if text.contains("certificate")
            || text.contains("UnknownIssuer")
            || matches!(e, ureq::Error::Tls(_))
        {
            let store = if self.system_roots == 0 {
                "; no system CA certificates were found (install ca-certificates)"
            } else {
                ""
            };
            format!(" (the TLS certificate of {host} is not trusted: pass --ca-file with the CA that signed it{store})")
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

    /// Sends one request, answering an auth challenge once.
    pub(crate) fn exchange(
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
            let resp =
                result.map_err(|e| self.transport_error(method, &shown_url, &repo.host, e))?;
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

    /// Maps an unexpected status to an error that names the object and says what to do.
    pub(crate) fn expect(
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

/// `Retry-After` in seconds (the HTTP-date form is treated as "a few seconds").
pub(crate) fn retry_after(resp: &Response<Body>) -> Option<u64> {
    let v = header(resp, "retry-after")?;
    Some(v.trim().parse().unwrap_or(5))
}

pub(crate) fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) fn with_query(url: &str, q: &str) -> String {
    if url.contains('?') {
        format!("{url}&{q}")
    } else {
        format!("{url}?{q}")
    }
}

pub(crate) fn read_limited(
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
pub(crate) fn error_detail(body: &[u8]) -> String {
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

pub(crate) fn is_certificate_error(e: &ureq::Error) -> bool {
    let text = e.to_string();
    text.contains("certificate")
        || text.contains("UnknownIssuer")
        || text.contains("NotValidForName")
}

pub(crate) fn encode(s: &str) -> String {
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
