//! Retries: transient failures (server errors, throttling, lost connections) are retried with
//! exponential backoff and jitter, waiting at least what the registry asked for.

use std::time::Duration;

use crate::error::Result;
use crate::{Client, RegistryError};

impl Client {
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
}

fn jitter_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % max.max(1)
}
