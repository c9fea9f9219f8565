//! A small synchronous client for the Docker Registry HTTP API v2 / OCI distribution spec,
//! shared by the packer (pulls) and the unpacker (pushes).
//!
//! - [`reference`]: image references (`registry/repo:tag@digest`) and their defaults;
//! - [`auth`]: auth files (Docker/Podman `auth.json`, OpenShift pull secrets) and challenges;
//! - [`client`]: the [`Client`]: ping, token/basic auth, manifests (exact bytes), streaming
//!   blobs, uploads and cross-repository mounts, with bounded retries on idempotent calls.
//!
//! Bodies are streamed: no call holds a blob in memory. Manifests are returned as the exact
//! bytes received, with their digest computed over those bytes.

pub mod auth;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod error;
pub mod progress;
pub mod reference;

pub use client::{Client, ClientOptions, FetchedManifest, Repo};
pub use error::RegistryError;
pub use reference::Reference;
