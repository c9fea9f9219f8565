//! Progress of long transfers: counters shared by worker threads, and a reporter thread that
//! rewrites a status line (bytes, blobs, rate, ETA) on a terminal; silent when stderr is not a
//! terminal (the caller prints a final line).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::human;

/// Shared counters.
#[derive(Default)]
pub struct Counters {
    pub bytes: AtomicU64,
    pub items: AtomicU64,
    pub skipped: AtomicU64,
}

/// A running progress reporter; stops and prints a last line when dropped or finished.
pub struct Progress {
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    verb: &'static str,
    total_items: u64,
    total_bytes: u64,
    started: Instant,
}

impl Progress {
    /// Starts reporting `verb` (e.g. "pulled") against the given totals. Silent when `quiet`.
    pub fn start(verb: &'static str, total_items: u64, total_bytes: u64, quiet: bool) -> Progress {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tty = std::io::stderr().is_terminal();
        let handle = (!quiet && tty).then(|| {
            let counters = counters.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let every = Duration::from_millis(500);
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() < every {
                        continue;
                    }
                    last = Instant::now();
                    let line = status(verb, &counters, total_items, total_bytes, started);
                    eprint!("\r\x1b[2K{line}");
                }
                eprint!("\r\x1b[2K");
            })
        });
        Progress {
            counters,
            stop,
            handle,
            verb,
            total_items,
            total_bytes,
            started: Instant::now(),
        }
    }

    /// Stops the reporter and returns the final status line.
    pub fn finish(mut self) -> String {
        self.halt();
        status(
            self.verb,
            &self.counters,
            self.total_items,
            self.total_bytes,
            self.started,
        )
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.halt();
    }
}

fn status(verb: &str, c: &Counters, items: u64, bytes: u64, started: Instant) -> String {
    let done = c.bytes.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let rate = done as f64 / secs;
    let eta = if rate > 0.0 && bytes > done {
        format!(", ETA {:.0}s", (bytes - done) as f64 / rate)
    } else {
        String::new()
    };
    let skipped = c.skipped.load(Ordering::Relaxed);
    let skipped = if skipped > 0 {
        format!(" ({skipped} already there)")
    } else {
        String::new()
    };
    format!(
        "{verb} {}/{items} items{skipped}, {} of {}, {}/s{eta}",
        c.items.load(Ordering::Relaxed),
        human(done),
        human(bytes),
        human(rate as u64)
    )
}
