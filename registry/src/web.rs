//! GETs of plain URLs that are not a registry API (an update graph, a signature store), with
//! the client's TLS settings, proxy rules and retries.

use crate::error::Result;
use crate::transport::{error_detail, read_limited};
use crate::{Client, RegistryError};

impl Client {
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
                .map_err(|e| self.transport_error("GET", url, &host, e))?;
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
}
