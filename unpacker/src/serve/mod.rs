//! `ferry-unpack serve`: the verified media served in place as a read-only registry, for sites
//! that have none. Nothing is extracted: manifests and blobs are read from the volumes by offset
//! and checked against the signed index ([`store`]); the distribution API is in [`api`], over a
//! small HTTP/1.1 layer ([`http`]), optionally in TLS ([`tls`]) and behind basic auth
//! ([`auth`]).
//!
//! A thread serves each connection (keep-alive), at most `max_connections` at once; each uses a
//! fixed buffer, so memory does not grow with the archives or with the clients. SIGTERM and
//! SIGINT stop accepting and let the requests in flight finish.

pub mod api;
pub mod auth;
pub mod http;
pub mod store;
pub mod tls;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use auth::Htpasswd;
use http::{Conn, ReadError, Request, Stream};
use store::Store;

/// How to serve.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub auth: Option<Htpasswd>,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// No access log.
    pub quiet: bool,
}

/// Set by SIGTERM or SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// What every connection thread shares.
struct Shared {
    store: Store,
    opts: ServeOptions,
    active: Mutex<usize>,
    idle: Condvar,
}

/// Serves until SIGTERM or SIGINT, then waits (at most 30 s) for the requests in flight.
/// `ready` is told the address bound (the port, when `listen` asked for port 0).
pub fn serve(store: Store, opts: ServeOptions, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let listener = TcpListener::bind(opts.listen)
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    listener.set_nonblocking(true)?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    ready(listener.local_addr()?);
    let shared = Arc::new(Shared {
        store,
        opts,
        active: Mutex::new(0),
        idle: Condvar::new(),
    });
    while !STOP.load(Ordering::SeqCst) {
        if !readable(&listener, 250) {
            continue;
        }
        match listener.accept() {
            Ok((stream, peer)) => spawn(&shared, stream, peer),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("ferry-unpack serve: accept failed: {e}"),
        }
    }
    drain(&shared);
    Ok(())
}

/// Waits up to `ms` for a connection to accept (so that a stop request is seen within that time,
/// while a connection is taken at once).
fn readable(listener: &TcpListener, ms: i32) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, ms) > 0 }
}

/// Starts a thread for a connection once a slot is free.
fn spawn(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let mut active = shared.active.lock().expect("lock");
    while *active >= shared.opts.max_connections.max(1) {
        active = shared.idle.wait(active).expect("lock");
    }
    *active += 1;
    drop(active);
    let s = shared.clone();
    std::thread::spawn(move || {
        connection(&s, stream, peer);
        *s.active.lock().expect("lock") -= 1;
        s.idle.notify_all();
    });
}

/// Waits for the connections in flight, at most 30 s.
fn drain(shared: &Shared) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut active = shared.active.lock().expect("lock");
    while *active > 0 && Instant::now() < deadline {
        active = shared
            .idle
            .wait_timeout(active, Duration::from_millis(200))
            .expect("lock")
            .0;
    }
    eprintln!(
        "ferry-unpack serve: stopped ({} connection(s) cut)",
        *active
    );
}

fn connection(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|_| stream.set_read_timeout(Some(Duration::from_secs(60))))
        .and_then(|_| stream.set_write_timeout(Some(Duration::from_secs(300))))
        .and_then(|_| stream.set_nodelay(true));
    if setup.is_err() {
        return;
    }
    match &shared.opts.tls {
        Some(config) => match rustls::ServerConnection::new(config.clone()) {
            Ok(tls) => requests(
                shared,
                Conn::new(rustls::StreamOwned::new(tls, stream)),
                peer,
            ),
            Err(e) => eprintln!("ferry-unpack serve: {peer}: TLS: {e}"),
        },
        None => requests(shared, Conn::new(stream), peer),
    }
}

/// Serves the requests of one connection until it closes.
fn requests<S: Stream>(shared: &Shared, mut conn: Conn<S>, peer: SocketAddr) {
    loop {
        let req = match conn.read_request() {
            Ok(r) => r,
            Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Bad(why)) => {
                let mut reply = api::Reply::error(400, "UNSUPPORTED", &why);
                reply.head.close = true;
                let _ = conn.respond(&reply.head, reply.body, true);
                log(shared, peer, "-", 400, 0, Instant::now(), Some(&why));
                return;
            }
        };
        let started = Instant::now();
        let reads = req.method == "GET" || req.method == "HEAD";
        let mut keep = !req.close && reads && !STOP.load(Ordering::SeqCst);
        if keep && req.body_len > 0 {
            keep = conn.discard_body(req.body_len).unwrap_or(false);
        }
        let mut reply = answer(shared, &req);
        reply.head.close = !keep;
        let body = std::mem::replace(&mut reply.body, http::Body::bytes(Vec::new()));
        let sent = conn.respond(&reply.head, body, req.method != "HEAD");
        let line = format!("{} {}", req.method, req.target);
        let note = match &sent {
            Err(e) => Some(format!(
                "{}; sending failed: {e}",
                reply.note.as_deref().unwrap_or("")
            )),
            Ok(_) => reply.note.clone(),
        };
        let bytes = sent.as_ref().map_or(0, |n| *n);
        log(
            shared,
            peer,
            &line,
            reply.head.status,
            bytes,
            started,
            note.as_deref(),
        );
        if sent.is_err() || !keep {
            return;
        }
    }
}

/// The reply to one request: a challenge without valid credentials, else the API's.
fn answer<'a>(shared: &'a Shared, req: &Request) -> api::Reply<'a> {
    if let Some(auth) = &shared.opts.auth {
        if !auth.allows(req.header("authorization")) {
            let mut r = api::Reply::error(401, "UNAUTHORIZED", "authentication required");
            r.head = r
                .head
                .header("WWW-Authenticate", "Basic realm=\"ferry-unpack serve\"");
            return r;
        }
    }
    api::handle(&shared.store, req)
}

fn log(
    shared: &Shared,
    peer: SocketAddr,
    line: &str,
    status: u16,
    bytes: u64,
    started: Instant,
    note: Option<&str>,
) {
    if shared.opts.quiet && note.is_none() {
        return;
    }
    let ms = started.elapsed().as_millis();
    match note {
        Some(n) => eprintln!("{peer} \"{line}\" {status} {bytes} {ms}ms: {n}"),
        None => eprintln!("{peer} \"{line}\" {status} {bytes} {ms}ms"),
    }
}
