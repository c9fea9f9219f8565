//! Signatures and other artifacts attached to the images: found at the source, checked, and
//! carried with them.
//!
//! For every manifest an image brings from its source (its top manifest, and each platform
//! manifest of an index) ferry-pack looks for cosign's tag-based attachments in the same
//! repository — `sha256-<hex>.sig` always (unless `--remove-signatures`), `.att` and `.sbom`
//! when asked; only those in the repository's tag list where one page holds it — and for OCI
//! 1.1 referrers (the referrers API, or the `sha256-<hex>` index of the tag schema where the
//! registry has none) of the artifact types asked for. An attachment that does not exist is no
//! error; one that exists and cannot be fetched is.
//!
//! Each one found is resolved like an image (its manifest, config and layers join the plan)
//! and recorded in the index ([`ferry_format::index::Attachment`]). With `--sigstore-key`,
//! cosign signatures are checked ([`sigstore`]); with `--require-signatures`, an image whose
//! top manifest has no signature that verifies is refused (or, with `--continue-on-error`,
//! left out and listed in the failures).

pub mod sigstore;

use std::collections::{BTreeSet, HashMap, HashSet};

use anyhow::{bail, Context, Result};
use ferry_format::index::{Attachment, AttachmentKind, Failure, FailureKind, Image};
use ferry_format::manifest::Manifest;
use ferry_format::Digest;
use ferry_registry::referrers::fallback_tag;
use ferry_registry::{Client, FetchedManifest, Reference, RegistryError, Repo};
use rayon::prelude::*;

use crate::plan::{self, Plan, Wanted};
use sigstore::Key;

/// Artifact types of signatures kept as referrers: sigstore bundles and cosign's OCI 1.1
/// signature artifacts.
pub const SIGNATURE_ARTIFACT_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.cosign.artifact.sig.v1+json",
];

/// Which referrers to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferrerTypes {
    /// Every referrer, whatever its artifact type.
    All,
    /// Those of these artifact types (none when empty).
    Only(Vec<String>),
}

impl ReferrerTypes {
    fn wants(&self, artifact_type: Option<&str>) -> bool {
        match self {
            ReferrerTypes::All => true,
            ReferrerTypes::Only(types) => {
                artifact_type.is_some_and(|t| types.iter().any(|w| w == t))
            }
        }
    }

    fn none(&self) -> bool {
        matches!(self, ReferrerTypes::Only(t) if t.is_empty())
    }
}

/// What to carry and check.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Cosign signatures (`--remove-signatures` turns them off).
    pub signatures: bool,
    pub attestations: bool,
    pub sboms: bool,
    pub referrers: ReferrerTypes,
    /// Keys that signatures are checked against (`--sigstore-key`).
    pub keys: Vec<Key>,
    /// Refuse images whose top manifest has no signature that verifies.
    pub require: bool,
    /// Record what fails and go on (`--continue-on-error`).
    pub keep_going: bool,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            signatures: true,
            attestations: false,
            sboms: false,
            referrers: ReferrerTypes::Only(
                SIGNATURE_ARTIFACT_TYPES
                    .iter()
                    .map(|t| t.to_string())
                    .collect(),
            ),
            keys: Vec::new(),
            require: false,
            keep_going: false,
        }
    }
}

/// A manifest something may be attached to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Subject {
    registry: String,
    repository: String,
    digest: Digest,
    /// The subject image's repository at the target, when the config moved it.
    target_repository: Option<String>,
}

impl Subject {
    fn repo(&self) -> Repo {
        Repo::new(self.registry.clone(), self.repository.clone())
    }
}

/// An attachment found at the source.
struct Found {
    subject: Subject,
    kind: AttachmentKind,
    tag: Option<String>,
    artifact_type: Option<String>,
    manifest: FetchedManifest,
}

/// Finds, checks and resolves the attachments of every image of `plan` (on the current rayon
/// pool), adding them to the plan; then applies `--require-signatures`.
pub fn attach(client: &Client, plan: &mut Plan, opts: &AttachOptions) -> Result<()> {
    if opts.require && opts.keys.is_empty() {
        bail!("--require-signatures needs --sigstore-key KEY.pub to check the signatures against");
    }
    let subjects = subjects(plan);
    let tags = TagIndex::list(client, &subjects);
    let found: Vec<Result<Vec<Found>>> = subjects
        .par_iter()
        .map(|s| discover(client, &tags, s, opts))
        .collect();
    let found: Vec<Found> = found
        .into_iter()
        .collect::<Result<Vec<Vec<Found>>>>()?
        .into_iter()
        .flatten()
        .collect();
    let verified: Vec<Vec<String>> = found
        .par_iter()
        .map(|f| verified_by(client, f, &opts.keys))
        .collect::<Result<_>>()?;
    let wanted: Vec<Wanted> = found.iter().map(wanted).collect();
    let resolved = plan::resolve_all(client, &wanted, false).context("fetching attachments")?;
    plan.add_made(
        resolved.images,
        resolved.manifests,
        resolved.blobs,
        std::iter::empty(),
    );
    plan.attachments = found
        .into_iter()
        .zip(verified)
        .map(|(f, verified_by)| Attachment {
            kind: f.kind,
            registry: f.subject.registry,
            repository: f.subject.repository,
            subject: f.subject.digest,
            digest: f.manifest.digest,
            tag: f.tag,
            artifact_type: f.artifact_type,
            verified_by,
        })
        .collect();
    plan.attachments.sort_by(|a, b| {
        (&a.registry, &a.repository, &a.subject, &a.digest).cmp(&(
            &b.registry,
            &b.repository,
            &b.subject,
            &b.digest,
        ))
    });
    plan.sigstore_keys = opts.keys.iter().map(|k| k.record.clone()).collect();
    if opts.require {
        require_signed(plan, opts.keep_going)?;
    }
    Ok(())
}

/// Every manifest of every image that comes from a source registry (not the images ferry-pack
/// made, which have no signatures at their source), each once.
fn subjects(plan: &Plan) -> Vec<Subject> {
    let mut out = BTreeSet::new();
    for img in plan.images.iter().filter(|i| !plan.is_made(i.id())) {
        let children = plan
            .manifests
            .get(&img.digest)
            .map(|m| m.children.clone())
            .unwrap_or_default();
        for digest in std::iter::once(img.digest.clone()).chain(children) {
            out.insert(Subject {
                registry: img.registry.clone(),
                repository: img.repository.clone(),
                digest,
                target_repository: img.target_repository.clone(),
            });
        }
    }
    out.into_iter().collect()
}

/// A repository's tags listed in one page of fewer than this many are listed once, instead of
/// asking for each attachment tag (`sha256-<hex>.sig`, the tag schema's `sha256-<hex>`) in
/// turn, which is two requests per manifest, nearly all for tags that do not exist. A longer
/// list (a release's component repository can hold tens of thousands) is not read.
const LIST_TAGS_BELOW: usize = 1000;

/// The tags of the subjects' repositories, where each was listed whole in one page.
struct TagIndex(HashMap<Repo, HashSet<String>>);

impl TagIndex {
    /// Lists every repository of `subjects` once; one that cannot be listed whole is left out.
    fn list(client: &Client, subjects: &[Subject]) -> TagIndex {
        let repos: HashSet<Repo> = subjects.iter().map(Subject::repo).collect();
        let listed = repos
            .into_par_iter()
            .filter_map(|r| match client.tags_if_fewer_than(&r, LIST_TAGS_BELOW) {
                Ok(Some(tags)) => Some((r, tags.into_iter().collect())),
                _ => None,
            })
            .collect();
        TagIndex(listed)
    }

    /// Whether `tag` is known not to exist in `repo` (its whole tag list lacks it).
    fn lacks(&self, repo: &Repo, tag: &str) -> bool {
        self.0.get(repo).is_some_and(|tags| !tags.contains(tag))
    }
}

/// The tag-based attachments and the referrers of one subject.
fn discover(
    client: &Client,
    tags: &TagIndex,
    s: &Subject,
    opts: &AttachOptions,
) -> Result<Vec<Found>> {
    let repo = s.repo();
    let mut kinds = Vec::new();
    if opts.signatures {
        kinds.push(AttachmentKind::Signature);
    }
    if opts.attestations {
        kinds.push(AttachmentKind::Attestation);
    }
    if opts.sboms {
        kinds.push(AttachmentKind::Sbom);
    }
    let mut out = Vec::new();
    for kind in kinds {
        let tag = kind.tag_for(&s.digest);
        if tags.lacks(&repo, &tag) {
            continue;
        }
        let fetched = lookup_tag(client, &repo, &tag)
            .with_context(|| format!("{kind} {repo}:{tag} exists but cannot be fetched"))?;
        if let Some(manifest) = fetched {
            out.push(Found {
                subject: s.clone(),
                kind,
                tag: Some(tag),
                artifact_type: None,
                manifest,
            });
        }
    }
    if !opts.referrers.none() {
        out.extend(referrers(client, tags, s, &opts.referrers)?);
    }
    Ok(out)
}

/// A manifest by tag, `None` when there is no such tag.
fn lookup_tag(client: &Client, repo: &Repo, tag: &str) -> Result<Option<FetchedManifest>> {
    match client.get_manifest(repo, tag) {
        Ok(m) => Ok(Some(m)),
        Err(RegistryError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The referrers of a subject of the wanted artifact types, fetched.
fn referrers(
    client: &Client,
    tags: &TagIndex,
    s: &Subject,
    types: &ReferrerTypes,
) -> Result<Vec<Found>> {
    let repo = s.repo();
    let list = match client.referrers_api(&repo, &s.digest, None) {
        Ok(Some(list)) => Ok(list.descriptors),
        Ok(None) if tags.lacks(&repo, &fallback_tag(&s.digest)) => Ok(Vec::new()),
        Ok(None) => client
            .referrers_by_tag(&repo, &s.digest)
            .map(|r| r.descriptors),
        Err(e) => Err(e),
    }
    .with_context(|| format!("listing the referrers of {repo}@{}", s.digest))?;
    let mut out = Vec::new();
    for d in list
        .iter()
        .filter(|d| types.wants(d.artifact_type.as_deref()))
    {
        let manifest = client
            .get_manifest(&repo, &d.digest.to_string())
            .with_context(|| {
                format!(
                    "referrer {} of {repo}@{} exists but cannot be fetched",
                    d.digest, s.digest
                )
            })?;
        out.push(Found {
            subject: s.clone(),
            kind: AttachmentKind::Referrer,
            tag: None,
            artifact_type: d.artifact_type.clone(),
            manifest,
        });
    }
    Ok(out)
}

/// The image to resolve for an attachment: its repository, by digest, with its tag.
fn wanted(f: &Found) -> Wanted {
    let reference = Reference {
        registry: f.subject.registry.clone(),
        repository: f.subject.repository.clone(),
        tag: f.tag.clone(),
        digest: Some(f.manifest.digest.clone()),
    };
    Wanted {
        source: match &f.tag {
            Some(t) => format!("{}/{}:{t}", f.subject.registry, f.subject.repository),
            None => format!(
                "{}/{}@{}",
                f.subject.registry, f.subject.repository, f.manifest.digest
            ),
        },
        reference,
        reason: format!("{} of {}", f.kind, f.subject.digest),
        platforms: Vec::new(),
        // An attachment lands beside its subject, wherever the config put that.
        target: crate::plan::AtTarget {
            repository: f.subject.target_repository.clone(),
            tag: None,
        },
    }
}

/// The ids of the keys under which a cosign signature verifies: some layer's payload names the
/// subject and its signature verifies over the payload. Not a signature, or no keys: none.
fn verified_by(client: &Client, f: &Found, keys: &[Key]) -> Result<Vec<String>> {
    if f.kind != AttachmentKind::Signature || keys.is_empty() {
        return Ok(Vec::new());
    }
    let (m, _) = Manifest::parse(&f.manifest.bytes, &f.manifest.media_type)
        .with_context(|| format!("signature {}", f.manifest.digest))?;
    let Manifest::Image { layers, .. } = m else {
        return Ok(Vec::new());
    };
    let repo = f.subject.repo();
    let mut ids = BTreeSet::new();
    for layer in layers
        .iter()
        .filter(|l| l.media_type == sigstore::SIMPLE_SIGNING)
    {
        let Some(sig) = layer.annotations.get(sigstore::SIGNATURE_ANNOTATION) else {
            continue;
        };
        let payload = fetch_payload(client, &repo, &layer.digest, layer.size)?;
        let Ok(claim) = sigstore::claim(&payload) else {
            continue;
        };
        let Ok(sig) = sigstore::decode_signature(sig) else {
            continue;
        };
        if claim.digest != f.subject.digest {
            continue;
        }
        for k in keys.iter().filter(|k| k.verifies(&payload, &sig)) {
            ids.insert(k.record.id.clone());
        }
    }
    Ok(ids.into_iter().collect())
}

/// A signature payload, read whole and checked against its digest.
fn fetch_payload(client: &Client, repo: &Repo, digest: &Digest, size: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    if size > sigstore::MAX_PAYLOAD {
        bail!("signature payload {digest} in {repo} is {size} bytes, more than a payload can be");
    }
    let body = client.get_blob(repo, digest)?;
    let mut bytes = Vec::new();
    body.reader
        .take(sigstore::MAX_PAYLOAD + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading signature payload {digest} from {repo}"))?;
    if Digest::of(&bytes) != *digest {
        bail!("signature payload {digest} from {repo} has other bytes than its digest");
    }
    Ok(bytes)
}

/// `--require-signatures`: every image from a source (not an attachment, not one ferry-pack
/// made) needs a signature of its top manifest that verified.
fn require_signed(plan: &mut Plan, keep_going: bool) -> Result<()> {
    let attachment = |img: &Image| plan.attachments.iter().any(|a| a.image_id() == img.id());
    let signed = |img: &Image| {
        plan.attachments.iter().any(|a| {
            a.kind == AttachmentKind::Signature
                && a.subject == img.digest
                && a.registry == img.registry
                && a.repository == img.repository
                && a.verified()
        })
    };
    let unsigned: Vec<Image> = plan
        .images
        .iter()
        .filter(|i| !attachment(i) && !plan.is_made(i.id()) && !signed(i))
        .cloned()
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    let why = "no signature of its manifest verifies under the --sigstore-key keys (--require-signatures)";
    if !keep_going {
        let list: Vec<&str> = unsigned.iter().map(|i| i.source.as_str()).collect();
        bail!(
            "{} image(s) are not signed: {why}:\n  {}",
            list.len(),
            list.join("\n  ")
        );
    }
    for img in &unsigned {
        plan.failures.push(Failure {
            kind: FailureKind::Image,
            subject: img.source.clone(),
            reason: why.to_string(),
            images: vec![],
        });
    }
    let refused: BTreeSet<(String, String, Digest)> = unsigned
        .into_iter()
        .map(|i| (i.registry, i.repository, i.digest))
        .collect();
    plan.retain_images(|i| {
        !refused.contains(&(i.registry.clone(), i.repository.clone(), i.digest.clone()))
    });
    Ok(())
}
