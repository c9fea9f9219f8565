//! Per-registry concurrency: at most `limit` requests in flight to one host, lowered when the
//! registry throttles (429) and raised again slowly as it answers.

use std::sync::Mutex;
use std::time::Duration;

/// Per-registry concurrency: at most `limit` requests in flight. A 429 halves the limit and
/// holds every request until its `Retry-After` has passed; successes raise it again slowly
/// (additive increase, multiplicative decrease).
pub(crate) struct Gate {
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
    pub(crate) fn new() -> Gate {
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
    pub(crate) fn enter(&self) -> Permit<'_> {
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
    pub(crate) fn observe(&self, status: u16, retry_after: Option<u64>) {
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
pub(crate) struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.state.lock().expect("lock").inflight -= 1;
        self.0.wake.notify_all();
    }
}
