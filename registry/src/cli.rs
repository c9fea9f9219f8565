//! The registry flags both programs share (`--authfile`, `--ca-file`, `--plain-http`,
//! `--retries`), and turning them into a [`Client`].

use std::path::PathBuf;

use crate::auth::AuthFile;
use crate::{Client, ClientOptions, RegistryError};

/// How to reach registries.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registry credentials (Docker/Podman auth.json or an OpenShift pull secret). Default:
    /// $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// PEM file of CA certificates to trust besides the system ones.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Use plain HTTP for every registry (insecure; loopback registries fall back to it anyway).
    #[arg(long, alias = "insecure")]
    pub plain_http: bool,

    /// Retries of a failed registry call before giving up on it.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub retries: u32,

    /// Log every registry request (method, URL, status) to stderr. Secrets are never logged.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl RegistryArgs {
    /// Loads the auth file (given, or found where podman looks) and builds the client.
    pub fn client(&self) -> Result<Client, RegistryError> {
        let auth = match self.authfile.clone().or_else(AuthFile::default_path) {
            Some(p) => Some(AuthFile::load(&p)?),
            None => None,
        };
        Client::new(ClientOptions {
            auth,
            ca_file: self.ca_file.clone(),
            plain_http: self.plain_http,
            retries: self.retries,
            verbose: self.verbose,
            ..ClientOptions::default()
        })
    }
}
