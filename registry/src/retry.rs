//! Retries: transient failures (server errors, throttling, lost connections) are retried with
//! exponential backoff and jitter, waiting at least what the registry asked for.

use std::time::Duration;

use crate::error::Result;
use crate::{Client, RegistryError};

impl Client {
    /// Runs an idempotent call, retrying transient failures with exponential backoff and jitter.
    pub fn retry<T>(&self, what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let mut tries = Tries::default();
        loop {
            match f() {
                Err(e) if tries.again(self, what, &e, false) => {}
                other => return other,
            }
        }
    }

    /// After failed attempt number `attempt` (from 0): if the error is transient and retries
    /// remain, says so, waits (exponential backoff with jitter, at least the registry's
    /// `Retry-After`) and returns true.
    pub(crate) fn backoff(&self, what: &str, attempt: u32, e: &RegistryError) -> bool {
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
}

/// The tries of a download that resumes where it stopped. A try that brought bytes before it
/// failed starts the count afresh (up to [`Tries::MAX_RESUMES`] times): a link that drops every
/// few MiB still finishes a 5 GiB layer, and one that sends a byte at a time still gives up.
#[derive(Debug, Default)]
pub struct Tries {
    failed: u32,
    resumes: u32,
}

impl Tries {
    pub const MAX_RESUMES: u32 = 64;

    /// After a failed try (`progressed`: it received bytes): waits and returns true if the
    /// download should go on (transient error, retries left: exponential backoff with jitter).
    pub fn again(
        &mut self,
        client: &Client,
        what: &str,
        e: &RegistryError,
        progressed: bool,
    ) -> bool {
        if progressed && self.resumes < Self::MAX_RESUMES {
            self.resumes += 1;
            self.failed = 0;
        }
        let go = client.backoff(what, self.failed, e);
        self.failed += 1;
        go
    }
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
    use crate::ClientOptions;

    #[test]
    fn a_try_that_brought_bytes_starts_the_count_afresh() {
        let client = Client::new(ClientOptions {
            retries: 1,
            ..ClientOptions::default()
        })
        .unwrap();
        let e = RegistryError::Transport {
            method: "GET",
            url: "http://127.0.0.1:1/v2/r/blobs/x".into(),
            detail: "connection reset".into(),
        };
        assert!(e.is_transient());
        let mut t = Tries::default();
        assert!(t.again(&client, "x", &e, false), "one retry is allowed");
        assert!(!t.again(&client, "x", &e, false), "and only one");
        let mut t = Tries::default();
        assert!(t.again(&client, "x", &e, false));
        assert!(t.again(&client, "x", &e, true), "bytes arrived: a resume");
        assert!(
            !t.again(&client, "x", &e, false),
            "then one retry again, no more"
        );
    }
}
