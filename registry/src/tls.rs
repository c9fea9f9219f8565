//! TLS: which certificate authorities the client trusts. One rule, as podman has it: the
//! system's CA store (`/etc/ssl/certs` and what `SSL_CERT_FILE` / `SSL_CERT_DIR` name), plus
//! the certificates of `--ca-file` when given. No roots are built into the program.

use std::sync::Arc;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::error::Result;
use crate::{ClientOptions, RegistryError};

/// The trusted roots, and how many came from the system store.
pub(crate) struct Roots {
    pub(crate) config: TlsConfig,
    pub(crate) system: usize,
}

pub(crate) fn tls_config(opts: &ClientOptions) -> Result<Roots> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    if let Some(ca) = &opts.ca_file {
        certs.extend(ca_file_certs(ca)?);
    }
    let native = rustls_native_certs::load_native_certs();
    let system = native.certs.len();
    certs.extend(
        native
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
    );
    let config = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::new_with_certs(&certs))
        .build();
    Ok(Roots { config, system })
}

fn ca_file_certs(ca: &std::path::Path) -> Result<Vec<Certificate<'static>>> {
    let pem = std::fs::read(ca).map_err(|e| {
        RegistryError::Config(format!("cannot read --ca-file {}: {e}", ca.display()))
    })?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(RegistryError::Config(format!(
            "--ca-file {} holds no PEM certificate",
            ca.display()
        )));
    }
    Ok(certs)
}
