//! A small synchronous client for the Docker Registry HTTP API v2 / OCI distribution spec,
//! shared by the packer (pulls) and the unpacker (pushes). It knows registries, not OpenShift.
//!
//! Domain: [`reference`] (image references and their defaults), [`auth`] (auth files: Docker
//! and Podman `auth.json`, OpenShift pull secrets; challenges).
//!
//! The [`Client`] ([`client`]) and its calls, one file per resource: [`manifests`] (exact
//! bytes), [`blobs`] (streaming, `Range`), [`uploads`] (sessions, mounts), [`listing`] (tags and catalog),
//! [`referrers`] (OCI 1.1, with the tag schema) and [`web`] (plain URLs). How they reach the
//! wire: `transport` (one request), `tls` (system roots plus `--ca-file`), `token` (basic and
//! bearer auth), `gate` (per-host concurrency, lowered on 429), `retry` (backoff with jitter).
//!
//! [`layout`] is the other transport: an OCI image layout directory read as a repository
//! (`oci:///path` sources), through the same calls.
//!
//! Bodies are streamed: no call holds a blob in memory. Manifests are returned as the exact
//! bytes received, with their digest computed over those bytes.

pub mod auth;
pub mod blobs;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod error;
mod gate;
mod host;
pub mod layout;
pub mod listing;
pub mod manifests;
pub mod reference;
pub mod referrers;
mod retry;
mod tls;
mod token;
mod transport;
pub mod uploads;
pub mod web;

pub use blobs::{read_full, BlobBody};
pub use client::{Client, ClientOptions, Repo};
pub use error::RegistryError;
pub use manifests::{FetchedManifest, MAX_MANIFEST_BYTES};
pub use reference::Reference;
pub use retry::Tries;
pub use uploads::{Mount, Session};
