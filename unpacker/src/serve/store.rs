//! The archives as a registry's repositories: where `push --to HOST/NS` would put each image,
//! its tags, and the manifests and blobs each repository holds (its images' closures). Built
//! once from the signed indexes; bytes are read from the volumes on each request.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::Mutex;

use ferry_format::archive::{ArchiveSet, Located, ReadError};
use ferry_format::index::{AttachmentKind, Closure};
use ferry_format::Digest;
use serde_json::{json, Value};

use crate::target::Target;

/// One repository.
#[derive(Debug, Default)]
pub struct Repository {
    pub tags: BTreeMap<String, Digest>,
    pub manifests: BTreeSet<Digest>,
    pub blobs: BTreeSet<Digest>,
    /// Subject → its referrers (OCI 1.1 manifests whose `subject` it is).
    pub referrers: BTreeMap<Digest, Vec<Digest>>,
}

/// What a manifest request resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// Why a request finds nothing, or something that must not be served.
#[derive(Debug)]
pub enum Miss {
    /// No such repository, tag, manifest or blob.
    Unknown,
    /// The media holds other bytes than the signed index says (never served).
    Corrupt(String),
}

impl From<ReadError> for Miss {
    fn from(e: ReadError) -> Miss {
        match e {
            ReadError::NotCarried { .. } => Miss::Unknown,
            other => Miss::Corrupt(other.to_string()),
        }
    }
}

/// The registry view of a set of archives.
pub struct Store {
    pub archives: ArchiveSet,
    pub repositories: BTreeMap<String, Repository>,
    /// Blobs checked against their blake3 once (the media is read-only; a failed check is
    /// never cached).
    /// Blobs checked whole, and whether they are read rebuilt from parity.
    verified: Mutex<HashMap<Digest, bool>>,
}

impl Store {
    /// Lays the archives out as `push --to HOST/<namespace>` would. An archive later in the set
    /// wins a tag that an earlier one also names (a delta's tags are the newer).
    pub fn new(archives: ArchiveSet, target: Target) -> Store {
        let mut repositories: BTreeMap<String, Repository> = BTreeMap::new();
        let mut closures: BTreeMap<String, Closure> = BTreeMap::new();
        for archive in archives.all() {
            let index = archive.index();
            for img in &index.images {
                let name = target.repository(img.target_repository());
                let repo = repositories.entry(name.clone()).or_default();
                for t in &img.tags {
                    repo.tags.insert(t.clone(), img.digest.clone());
                }
                closures
                    .entry(name)
                    .or_default()
                    .add(&index.manifests, &img.digest);
            }
            for a in index
                .attachments
                .iter()
                .filter(|a| a.kind == AttachmentKind::Referrer)
            {
                let repo = repositories
                    .entry(target.repository(index.attachment_target_repository(a)))
                    .or_default();
                let list = repo.referrers.entry(a.subject.clone()).or_default();
                if !list.contains(&a.digest) {
                    list.push(a.digest.clone());
                }
            }
        }
        for (name, c) in closures {
            let repo = repositories.entry(name).or_default();
            repo.manifests.extend(c.manifests);
            repo.blobs.extend(c.blobs);
        }
        Store {
            archives,
            repositories,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Blobs some image lists that no archive of the set carries (a delta served without its
    /// base).
    pub fn absent_blobs(&self) -> usize {
        let all: BTreeSet<&Digest> = self
            .repositories
            .values()
            .flat_map(|r| r.blobs.iter().chain(&r.manifests))
            .collect();
        all.into_iter()
            .filter(|d| self.archives.locate(d).is_none())
            .count()
    }

    /// A manifest of `repo` by tag or digest: its exact stored bytes (sha256-checked).
    pub fn manifest(&self, repo: &str, reference: &str) -> Result<Manifest, Miss> {
        let r = self.repositories.get(repo).ok_or(Miss::Unknown)?;
        let digest = match reference.parse::<Digest>() {
            Ok(d) if r.manifests.contains(&d) => d,
            Ok(_) => return Err(Miss::Unknown),
            Err(_) => r.tags.get(reference).cloned().ok_or(Miss::Unknown)?,
        };
        let bytes = self.archives.read_small(&digest, "manifest")?;
        let media_type = self
            .archives
            .all()
            .find_map(|a| a.index().manifest(&digest).map(|m| m.media_type.clone()))
            .unwrap_or_else(|| ferry_format::manifest::OCI_MANIFEST.to_string());
        Ok(Manifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// A blob of `repo`, checked whole against its blake3 the first time it is asked for; one
    /// whose bytes do not match is read rebuilt from the parity volumes, when there are some.
    pub fn blob(&self, repo: &str, digest: &Digest) -> Result<Located<'_>, Miss> {
        let r = self.repositories.get(repo).ok_or(Miss::Unknown)?;
        if !r.blobs.contains(digest) && !r.manifests.contains(digest) {
            return Err(Miss::Unknown);
        }
        let located = self.archives.locate(digest).ok_or(Miss::Unknown)?;
        match self.verified.lock().expect("lock").get(digest) {
            Some(true) => return Ok(located.rebuilt().unwrap_or(located)),
            Some(false) => return Ok(located),
            None => {}
        }
        let checked = match check_whole(located) {
            Err(e) => match located.rebuilt() {
                Some(rebuilt) => check_whole(rebuilt)
                    .map_err(|again| Miss::Corrupt(format!("{e}; rebuilt from parity: {again}")))?,
                None => return Err(Miss::Corrupt(e)),
            },
            ok => ok.expect("matched"),
        };
        let rebuilt = checked.is_rebuilt() && !located.is_rebuilt();
        self.verified
            .lock()
            .expect("lock")
            .insert(digest.clone(), rebuilt);
        Ok(checked)
    }

    /// The referrers index of `subject` in `repo`, filtered by artifact type when asked.
    pub fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Value, Miss> {
        let r = self.repositories.get(repo).ok_or(Miss::Unknown)?;
        let mut manifests = Vec::new();
        for d in r.referrers.get(subject).into_iter().flatten() {
            let m = self.manifest(repo, &d.to_string())?;
            let doc: Value = serde_json::from_slice(&m.bytes).unwrap_or(Value::Null);
            let kind = doc["artifactType"]
                .as_str()
                .or(doc["config"]["mediaType"].as_str())
                .map(str::to_string);
            if artifact_type.is_some_and(|t| kind.as_deref() != Some(t)) {
                continue;
            }
            let mut desc = json!({
                "mediaType": m.media_type,
                "digest": m.digest.to_string(),
                "size": m.bytes.len(),
            });
            if let Some(k) = kind {
                desc["artifactType"] = Value::String(k);
            }
            if doc["annotations"].is_object() {
                desc["annotations"] = doc["annotations"].clone();
            }
            manifests.push(desc);
        }
        Ok(json!({
            "schemaVersion": 2,
            "mediaType": ferry_format::manifest::OCI_INDEX,
            "manifests": manifests,
        }))
    }
}

/// Reads a blob whole (large reads: blake3 hashes big inputs on several lanes at once) and
/// checks it against the signed index.
fn check_whole(located: Located<'_>) -> Result<Located<'_>, String> {
    let digest = &located.blob.digest;
    let mut reader = located.reader("blob").map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("blob {digest}: {e}")),
        }
    }
    reader.verdict().map_err(|e| e.to_string())?;
    Ok(located)
}
