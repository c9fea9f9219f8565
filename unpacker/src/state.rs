//! What a site has received, kept in the target registry itself so that any host at the site
//! can see it: the repository `<namespace>/ferry-state` holds one OCI artifact per stream
//! (tagged with the stream name) whose layers are the signed indexes of the archives pushed, in
//! order, each annotated with its archive id and sequence.

use anyhow::{Context, Result};
use ferry_format::index::Index;
use ferry_format::Digest;
use ferry_registry::{Client, RegistryError, Repo};
use serde_json::{json, Value};

use crate::target::Target;

pub const STATE_REPOSITORY: &str = "ferry-state";
pub const ARTIFACT_TYPE: &str = "application/vnd.ferry.state.v1+json";
pub const INDEX_LAYER_TYPE: &str = "application/vnd.ferry.index.v1+json";
const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";
const ANN_ID: &str = "io.ferry.archive-id";
const ANN_STREAM: &str = "io.ferry.stream";
const ANN_SEQUENCE: &str = "io.ferry.sequence";
const ANN_CREATED: &str = "org.opencontainers.image.created";

/// One archive recorded at the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub archive_id: String,
    pub sequence: u64,
    /// Digest of the index bytes stored as the layer.
    pub index: Digest,
}

/// The records of one stream, oldest first.
#[derive(Debug, Clone, Default)]
pub struct StreamState {
    pub stream: String,
    pub records: Vec<Record>,
    /// The artifact's layers as read (kept to append to them).
    layers: Vec<Value>,
}

impl StreamState {
    /// The most recent record.
    pub fn last(&self) -> Option<&Record> {
        self.records.last()
    }

    pub fn has(&self, archive_id: &str) -> bool {
        self.records.iter().any(|r| r.archive_id == archive_id)
    }

    /// A state with these records (as if read from a target).
    pub fn with_records(stream: &str, records: Vec<Record>) -> StreamState {
        StreamState {
            stream: stream.to_string(),
            records,
            layers: Vec::new(),
        }
    }
}

/// The state repository at a target.
pub fn state_repo(target: &Target) -> Repo {
    target.repo(STATE_REPOSITORY)
}

/// A stream name as a tag.
pub fn stream_tag(stream: &str) -> String {
    let t: String = stream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if t.starts_with(['.', '-']) {
        format!("_{}", &t[1..])
    } else {
        t
    }
}

/// Reads the state of a stream (empty when nothing was recorded).
pub fn read(client: &Client, target: &Target, stream: &str) -> Result<StreamState> {
    read_tag(client, target, &stream_tag(stream), stream)
}

/// Every stream recorded at the target.
pub fn read_all(client: &Client, target: &Target) -> Result<Vec<StreamState>> {
    let repo = state_repo(target);
    let tags = match client.list_tags(&repo) {
        Ok(t) => t,
        Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for tag in tags {
        let mut st = read_tag(client, target, &tag, &tag)?;
        if let Some(name) = st
            .layers
            .last()
            .and_then(|l| l["annotations"][ANN_STREAM].as_str())
        {
            st.stream = name.to_string();
        }
        out.push(st);
    }
    Ok(out)
}

/// The recorded index bytes of an archive (verified against their digest).
pub fn index_bytes(client: &Client, target: &Target, record: &Record) -> Result<Vec<u8>> {
    use std::io::Read;
    let repo = state_repo(target);
    let body = client.get_blob(&repo, &record.index)?;
    let mut bytes = Vec::new();
    body.reader
        .take(ferry_format::index::MAX_INDEX_BYTES)
        .read_to_end(&mut bytes)?;
    if Digest::of(&bytes) != record.index {
        anyhow::bail!(
            "the recorded index of archive {} in {repo} is damaged",
            record.archive_id
        );
    }
    Ok(bytes)
}

fn read_tag(client: &Client, target: &Target, tag: &str, stream: &str) -> Result<StreamState> {
    let repo = state_repo(target);
    let m = match client.get_manifest(&repo, tag) {
        Ok(m) => m,
        Err(RegistryError::NotFound { .. }) => {
            return Ok(StreamState {
                stream: stream.to_string(),
                ..StreamState::default()
            })
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the ferry state at {repo}:{tag}"))
        }
    };
    let doc: Value = serde_json::from_slice(&m.bytes)
        .with_context(|| format!("the ferry state at {repo}:{tag} is not JSON"))?;
    let layers = doc["layers"].as_array().cloned().unwrap_or_default();
    let mut records = Vec::new();
    for l in &layers {
        let a = &l["annotations"];
        let (Some(id), Some(seq), Some(d)) = (
            a[ANN_ID].as_str(),
            a[ANN_SEQUENCE].as_str().and_then(|s| s.parse().ok()),
            l["digest"].as_str().and_then(|d| d.parse().ok()),
        ) else {
            continue;
        };
        records.push(Record {
            archive_id: id.to_string(),
            sequence: seq,
            index: d,
        });
    }
    Ok(StreamState {
        stream: stream.to_string(),
        records,
        layers,
    })
}

/// The two blobs of an archive's record — the empty config and the signed index — put in the
/// state repository ahead of the record itself, which must wait until the whole archive
/// arrived: a push stages them beside its own uploads.
#[derive(Debug, Clone)]
pub struct Staged {
    empty: Digest,
    index: Digest,
    index_size: usize,
}

const EMPTY_CONFIG: &[u8] = b"{}";

/// Uploads the blobs of the record of the archive whose signed index is `index_bytes`.
pub fn stage(client: &Client, target: &Target, index_bytes: &[u8]) -> Result<Staged> {
    let repo = state_repo(target);
    let staged = Staged {
        empty: Digest::of(EMPTY_CONFIG),
        index: Digest::of(index_bytes),
        index_size: index_bytes.len(),
    };
    for (d, bytes) in [(&staged.empty, EMPTY_CONFIG), (&staged.index, index_bytes)] {
        if !client.blob_exists(&repo, d)? {
            client
                .upload_blob_bytes(&repo, d, bytes, None)
                .with_context(|| format!("cannot record the archive in {repo}"))?;
        }
    }
    Ok(staged)
}

/// Appends an archive that `state` does not record yet to its stream's record; its blobs are
/// `staged`.
pub fn record(
    client: &Client,
    target: &Target,
    state: &StreamState,
    index: &Index,
    staged: &Staged,
) -> Result<()> {
    let stream = index
        .stream
        .as_ref()
        .context("the archive names no stream")?;
    let repo = state_repo(target);
    let mut layers = state.layers.clone();
    layers.push(json!({
        "mediaType": INDEX_LAYER_TYPE,
        "digest": staged.index.to_string(),
        "size": staged.index_size,
        "annotations": {
            ANN_ID: index.archive_id,
            ANN_STREAM: stream.name,
            ANN_SEQUENCE: stream.sequence.to_string(),
            ANN_CREATED: ferry_format::time::now_rfc3339(),
        }
    }));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": ferry_format::manifest::OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_CONFIG_TYPE, "digest": staged.empty.to_string(), "size": EMPTY_CONFIG.len()},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest)?;
    client
        .put_manifest(
            &repo,
            &stream_tag(&stream.name),
            ferry_format::manifest::OCI_MANIFEST,
            &bytes,
        )
        .with_context(|| format!("cannot record the archive in {repo}"))?;
    Ok(())
}
