//! `ferry-unpack serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use ferry_unpack::serve::{self, auth::Htpasswd, store::Store, ServeOptions};
use ferry_unpack::target::Target;

/// Serve archives as a read-only registry, straight from the media, for a site that has none.
///
/// The index signatures are checked at start; every manifest and blob is read from the volumes
/// by offset and checked against the signed index before it is sent (nothing is extracted).
/// Repositories appear where `push --to HOST:PORT/NAMESPACE` would put them, so
/// `ferry-unpack manifests --to HOST:PORT/NAMESPACE` writes the cluster manifests that point at
/// this server. Writes are refused (405). SIGTERM stops it after the requests in flight.
///   ferry-unpack serve /media/usb/ferry --trust ferry.key.pub --listen 0.0.0.0:5000 \
///       --namespace mirror --tls-cert server.pem --tls-key server.key --htpasswd users
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Archive directories: one, or a full archive and its deltas, or several streams. A tag
    /// that several name is served from the last one given.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// The trusted OpenSSH ed25519 public key.
    #[arg(long, value_name = "KEY.pub")]
    trust: PathBuf,
    /// Address to listen on (port 0: a free one, printed at start).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// Serve the repositories under this namespace, as push --to HOST/NAMESPACE would.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    #[command(flatten)]
    paths: super::PathLimit,
    /// TLS certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require HTTP basic auth against this file (bcrypt entries: htpasswd -B).
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// Serve plain HTTP on an address that is not loopback (credentials and content in clear).
    #[arg(long)]
    insecure_http: bool,
    /// Connections served at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_connections: usize,
    /// No access log (errors are still logged).
    #[arg(long, short = 'q')]
    quiet: bool,
}

pub fn exec(a: Args) -> Result<ExitCode> {
    let namespace = match &a.namespace {
        Some(ns) => format!("serve/{ns}").parse::<Target>()?.namespace,
        None => None,
    };
    if a.tls_cert.is_none() && !a.listen.ip().is_loopback() && !a.insecure_http {
        bail!(
            "--listen {} is not a loopback address: serve TLS (--tls-cert, --tls-key), or pass --insecure-http to serve plain HTTP anyway",
            a.listen
        );
    }
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(serve::tls::server_config(c, k)?),
        _ => None,
    };
    let auth = a.htpasswd.as_deref().map(Htpasswd::load).transpose()?;
    let (archives, _) = super::open(&a.dirs[0], &a.trust, &a.dirs[1..])?;
    let count = a.dirs.len();
    for line in ferry_unpack::repair::prepare_lost(&archives) {
        eprintln!("{line}");
    }
    let target = Target {
        host: String::new(),
        namespace: namespace.clone(),
        max_nested_paths: None,
    };
    let store = Store::new(archives, a.paths.apply(&target));
    let absent = store.absent_blobs();
    if absent > 0 {
        eprintln!(
            "warning: {absent} blob(s) and manifest(s) the images need are in none of the archives given (a delta without its base?); they will answer 404"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let repos = store.repositories.len();
    let opts = ServeOptions {
        listen: a.listen,
        tls,
        auth,
        max_connections: a.max_connections,
        quiet: a.quiet,
    };
    serve::serve(store, opts, |addr| {
        let ns = namespace.map(|n| format!("/{n}")).unwrap_or_default();
        eprintln!(
            "ferry-unpack serve: {repos} repositories from {count} archive(s) at {scheme}://{addr}{ns}"
        );
    })?;
    Ok(ExitCode::SUCCESS)
}
