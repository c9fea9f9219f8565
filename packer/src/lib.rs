//! ferry-pack: the connected side. Reads an image set config, plans what to fetch, pulls it
//! in parallel straight into the volumes of a content-addressed archive, and signs the index.
//!
//! - [`config`]: oc-mirror's ImageSetConfiguration;
//! - [`base`]: the bases of a delta archive (earlier indexes, site inventories);
//! - [`gather`]: planning a whole config (releases, catalogs, images) into one plan;
//! - [`plan`]: resolving images to manifests and blobs, deduplicated;
//! - [`release`]: OpenShift releases (update graph, payloads, release signatures);
//! - [`attach`]: signatures, attestations, SBOMs and referrers carried with the images, and
//!   cosign signatures checked against sigstore keys;
//! - [`catalog`]: operator catalogs (file-based catalogs, filtering, the rebuilt index image);
//! - [`samples`]: the Cluster Samples Operator's images, from its imagestreamtag-to-image
//!   ConfigMap (`--samples`);
//! - [`derive`]: images made from a source image plus one deterministic layer;
//! - [`pack`]: fetching into the volumes, building and sealing the index;
//! - [`list`]: `ferry-pack list`: a channel's releases, a catalog's packages;
//! - [`units`]: byte sizes and media presets on the command line (`700MiB`, `fat32`, `dvd`).

pub mod attach;
pub mod base;
pub mod catalog;
pub mod config;
pub mod derive;
pub mod gather;
pub mod helm;
pub mod list;
pub mod pack;
pub mod plan;
pub mod release;
pub mod samples;
pub mod units;
