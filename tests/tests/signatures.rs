//! Sigstore signatures and OCI referrers travel with the images, checked as a cluster node
//! checks them: fixture images signed the way cosign signs (ECDSA P-256, simple-signing
//! payloads, `sha256-<hex>.sig` tags) and given referrers (the tag schema: the registries here
//! are distribution 2.8, which has no referrers API) are packed with their signatures verified,
//! pushed, and checked at the target by `tests/sigstore_check.py`, which shares no code with
//! ferry (Python's `cryptography`, plain HTTP). The referrers API itself is tested on the client
//! side against recorded responses: no registry that serves it can be installed here.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use ferry_e2e::{crd_problems, ferry, pack, push, skopeo_raw, Run, Workdir};
use ferry_fixtures::cosign::{self, CosignKey};
use ferry_fixtures::faults::{Fault, FaultProxy};
use ferry_fixtures::http::{Reply, Routes, StaticServer};
use ferry_fixtures::image::{self, Image, MultiImage};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::seed::{self, push_image, push_multi};
use ferry_format::index::{AttachmentKind, FailureKind};
use ferry_format::{Digest, Index};
use ferry_registry::referrers::ReferrersSource;
use ferry_registry::Repo;

const SBOM: &str = "application/spdx+json";

/// A source with a signed image, a signed multi-platform image (its index and each platform
/// signed), an unsigned image, and an SBOM referrer on the signed image; an empty target.
struct Signed {
    source: TestRegistry,
    target: TestRegistry,
    work: Workdir,
    config: PathBuf,
    key: PathBuf,
    foreign: PathBuf,
    app: Image,
    multi: MultiImage,
    plain: Image,
    referrer: Digest,
}

impl Signed {
    fn new() -> Signed {
        let source = TestRegistry::start().unwrap();
        let target = TestRegistry::start().unwrap();
        let c = seed::client().unwrap();
        let work = Workdir::new("ferry-sig-");
        let key = CosignKey::from_seed(1);
        let repo = |r: &str| Repo::new(source.host.clone(), format!("fixtures/{r}"));
        let identity = |r: &str| format!("{}/fixtures/{r}", source.host);
        let app = image::image("app", "amd64", vec![image::layer(11, 3000, true)], true);
        let plain = image::image("plain", "amd64", vec![image::layer(12, 2000, true)], true);
        let children = ["amd64", "arm64"]
            .iter()
            .map(|a| {
                let l = image::layer(13 ^ a.len() as u64, 2500, false);
                (a.to_string(), image::image("multi", a, vec![l], false))
            })
            .collect();
        let multi = image::multi(children, false);
        push_image(&c, &repo("app"), Some("1"), &app).unwrap();
        push_image(&c, &repo("plain"), Some("1"), &plain).unwrap();
        push_multi(&c, &repo("multi"), Some("1"), &multi).unwrap();
        cosign::sign(
            &c,
            &repo("app"),
            &app.manifest.digest,
            &identity("app"),
            &key,
        )
        .unwrap();
        cosign::sign(
            &c,
            &repo("multi"),
            &multi.index.digest,
            &identity("multi"),
            &key,
        )
        .unwrap();
        for (_, child) in &multi.children {
            let d = &child.manifest.digest;
            cosign::sign(&c, &repo("multi"), d, &identity("multi"), &key).unwrap();
        }
        let m = &app.manifest;
        let subject = (&m.digest, m.media_type.as_str(), m.bytes.len() as u64);
        let referrer = cosign::attach_referrer(
            &c,
            &repo("app"),
            subject,
            SBOM,
            b"{\"spdxVersion\":\"SPDX-2.3\"}",
        )
        .unwrap();
        let config = work.path("imageset.yaml");
        let images: String = ["app", "multi", "plain"]
            .iter()
            .map(|r| format!("    - name: {}/fixtures/{r}:1\n", source.host))
            .collect();
        std::fs::write(
            &config,
            format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n{images}"),
        )
        .unwrap();
        let key_path = work.path("cosign.pub");
        std::fs::write(&key_path, key.public_pem()).unwrap();
        let foreign = work.path("foreign.pub");
        std::fs::write(&foreign, CosignKey::from_seed(2).public_pem()).unwrap();
        Signed {
            source,
            target,
            work,
            config,
            key: key_path,
            foreign,
            app,
            multi,
            plain,
            referrer,
        }
    }

    fn pack(&self, dir: &str, extra: &[&str]) -> (Run, PathBuf) {
        let to = self.work.path(dir);
        (pack(&self.config, &to, &self.work.key, extra), to)
    }

    /// What the independent checker says of `repo@digest` at the target under namespace `ns`.
    fn node_check(&self, ns: &str, repo: &str, digest: &Digest, key: &Path) -> Run {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sigstore_check.py");
        Command::new("python3")
            .arg(script)
            .arg(&self.target.host)
            .arg(format!("{ns}/fixtures/{repo}"))
            .arg(digest.to_string())
            .arg(key)
            .arg(format!("{}/{ns}", self.target.host))
            .arg(&self.source.host)
            .output()
            .expect("python3 tests/sigstore_check.py")
            .into()
    }
}

fn index_of(dir: &Path) -> Index {
    Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap()
}

#[test]
fn signed_images_arrive_with_signatures_a_node_accepts() {
    let s = Signed::new();
    let key = s.key.to_str().unwrap();
    let (run, dir) = s.pack("archive", &["--sigstore-key", key, "--referrer-type", SBOM]);
    assert!(run.ok, "{}", run.text());
    let index = index_of(&dir);
    assert_eq!(index.sigstore_keys.len(), 1);
    let key_id = &index.sigstore_keys[0].id;
    let signatures: Vec<_> = index
        .attachments
        .iter()
        .filter(|a| a.kind == AttachmentKind::Signature)
        .collect();
    // app, the multi index and its two platforms; each verified under the key.
    assert_eq!(signatures.len(), 4, "{:?}", index.attachments);
    assert!(signatures.iter().all(|a| a.verified_by == [key_id.clone()]));
    let children: Vec<&Digest> = s
        .multi
        .children
        .iter()
        .map(|(_, i)| &i.manifest.digest)
        .collect();
    for d in children
        .iter()
        .copied()
        .chain([&s.multi.index.digest, &s.app.manifest.digest])
    {
        assert!(
            signatures.iter().any(|a| &a.subject == d),
            "no signature of {d}"
        );
    }
    let referrers: Vec<_> = index
        .attachments
        .iter()
        .filter(|a| a.kind == AttachmentKind::Referrer)
        .collect();
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0].digest, s.referrer);
    assert_eq!(referrers[0].artifact_type.as_deref(), Some(SBOM));

    let pubkey = s.work.pubkey();
    let verify = ferry(
        "ferry-unpack",
        &["verify", dir.to_str().unwrap(), "--trust", &pubkey],
    );
    assert!(verify.ok, "{}", verify.text());
    assert!(
        verify.stdout.contains(&format!(
            "signatures: 2 of 3 images signed, 2 verified at pack time by {key_id}"
        )),
        "{}",
        verify.stdout
    );
    assert!(
        verify
            .stdout
            .contains(&format!("not signed: {}/fixtures/plain:1", s.source.host)),
        "{}",
        verify.stdout
    );

    let manifests = s.work.path("cluster");
    let to = format!("{}/mirror", s.target.host);
    let pushed = push(
        &dir,
        &s.work.key,
        &to,
        &["--manifests-dir", manifests.to_str().unwrap()],
    );
    assert!(pushed.ok, "{}", pushed.text());

    // A node accepts the signed images (and each platform of the index) from the mirror...
    for (repo, d) in [
        ("app", &s.app.manifest.digest),
        ("multi", &s.multi.index.digest),
    ]
    .into_iter()
    .chain(children.iter().map(|d| ("multi", *d)))
    {
        let c = s.node_check("mirror", repo, d, &s.key);
        assert!(
            c.ok && c.stdout.contains("ACCEPTED"),
            "{repo}@{d}: {}",
            c.text()
        );
    }
    // ...and refuses the unsigned one, and a signature under another key.
    let c = s.node_check("mirror", "plain", &s.plain.manifest.digest, &s.key);
    assert!(!c.ok && c.stdout.contains("no signature"), "{}", c.text());
    let c = s.node_check("mirror", "app", &s.app.manifest.digest, &s.foreign);
    assert!(
        !c.ok && c.stdout.contains("does not verify"),
        "{}",
        c.text()
    );

    // The referrer is listed in the tag schema's index at the target.
    let tag = format!("sha256-{}", s.app.manifest.digest.hex());
    let raw = skopeo_raw(&format!("{}/mirror/fixtures/app:{tag}", s.target.host))
        .expect("referrers index at the target");
    let fallback: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let listed = fallback["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{fallback}");
    assert_eq!(listed[0]["digest"], s.referrer.to_string());
    assert_eq!(listed[0]["artifactType"], SBOM);

    check_cluster_image_policy(&s, &manifests, &index.sigstore_keys[0].pem);
}

/// The ClusterImagePolicy validates against the real CRD, trusts the key and covers the signed
/// images' source repositories only.
fn check_cluster_image_policy(s: &Signed, manifests: &Path, pem: &str) {
    let cip = std::fs::read_dir(manifests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("cip-"))
        .expect("a ClusterImagePolicy");
    let bytes = std::fs::read(&cip).unwrap();
    let problems = crd_problems("clusterimagepolicies.config.openshift.io.crd.yaml", &bytes);
    assert!(problems.is_empty(), "{problems:?}");
    let doc: serde_json::Value =
        serde_saphyr::from_str(std::str::from_utf8(&bytes).unwrap()).unwrap();
    let scopes: Vec<&str> = doc["spec"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let src = &s.source.host;
    assert_eq!(
        scopes,
        [
            format!("{src}/fixtures/app"),
            format!("{src}/fixtures/multi")
        ]
    );
    let root = &doc["spec"]["policy"]["rootOfTrust"];
    assert_eq!(root["policyType"], "PublicKey");
    let key = base64::engine::general_purpose::STANDARD
        .decode(root["publicKey"]["keyData"].as_str().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(key).unwrap(), pem);
    assert_eq!(std::fs::read_to_string(&s.key).unwrap(), pem);
}

#[test]
fn removed_or_required_signatures() {
    let s = Signed::new();
    let key = s.key.to_str().unwrap();
    // --remove-signatures: nothing attached travels; a node then refuses the image.
    let (run, dir) = s.pack("bare", &["--remove-signatures"]);
    assert!(run.ok, "{}", run.text());
    assert!(index_of(&dir).attachments.is_empty());
    let to = format!("{}/bare", s.target.host);
    assert!(push(&dir, &s.work.key, &to, &[]).ok);
    let c = s.node_check("bare", "app", &s.app.manifest.digest, &s.key);
    assert!(!c.ok && c.stdout.contains("no signature"), "{}", c.text());

    // --require-signatures refuses the unsigned image, by name...
    let plain = format!("{}/fixtures/plain:1", s.source.host);
    let (run, dir) = s.pack("strict", &["--sigstore-key", key, "--require-signatures"]);
    assert!(!run.ok && run.stderr.contains(&plain), "{}", run.text());
    assert!(!dir.join("ferry-index.json").exists());
    // ...and every image under a key that signed none of them.
    let foreign = s.foreign.to_str().unwrap();
    let (run, _) = s.pack(
        "foreign",
        &["--sigstore-key", foreign, "--require-signatures"],
    );
    assert!(
        !run.ok && run.stderr.contains("3 image(s) are not signed"),
        "{}",
        run.text()
    );
    // With --continue-on-error the rest is packed and the unsigned image listed.
    let (run, dir) = s.pack(
        "strict-rest",
        &[
            "--sigstore-key",
            key,
            "--require-signatures",
            "--continue-on-error",
        ],
    );
    assert!(!run.ok, "an incomplete archive exits 3: {}", run.text());
    let index = index_of(&dir);
    assert!(index.incomplete);
    assert!(index
        .failures
        .iter()
        .any(|f| f.kind == FailureKind::Image && f.subject == plain));
    assert!(!index.images.iter().any(|i| i.source == plain));
    assert!(
        !index
            .blobs
            .iter()
            .any(|b| b.digest == s.plain.layers[0].digest),
        "the refused image's layer was packed"
    );
    assert!(index
        .attachments
        .iter()
        .any(|a| a.subject == s.app.manifest.digest));
}

#[test]
fn a_delta_brings_a_new_signature_of_an_image_the_site_has() {
    let s = Signed::new();
    let key = s.key.to_str().unwrap();
    let (run, full) = s.pack("full", &["--sigstore-key", key, "--referrer-type", "none"]);
    assert!(run.ok, "{}", run.text());
    let to = format!("{}/site", s.target.host);
    assert!(push(&full, &s.work.key, &to, &[]).ok);
    // The image is signed again, with another key: a new signature manifest under the tag.
    let c = seed::client().unwrap();
    let repo = Repo::new(s.source.host.clone(), "fixtures/app");
    let identity = format!("{}/fixtures/app", s.source.host);
    let resigned = cosign::sign(
        &c,
        &repo,
        &s.app.manifest.digest,
        &identity,
        &CosignKey::from_seed(2),
    )
    .unwrap();
    let base = full.join("ferry-index.json");
    let foreign = s.foreign.to_str().unwrap();
    let (run, delta) = s.pack(
        "delta",
        &[
            "--base",
            base.to_str().unwrap(),
            "--sigstore-key",
            key,
            "--sigstore-key",
            foreign,
            "--referrer-type",
            "none",
        ],
    );
    assert!(run.ok, "{}", run.text());
    let index = index_of(&delta);
    let carried: Vec<&Digest> = index
        .blobs
        .iter()
        .filter(|b| b.carried())
        .map(|b| &b.digest)
        .collect();
    // The new signature manifest and its config; the image is the site's, and so is the
    // payload (it names the image, not the key: the second signature is the same bytes).
    assert_eq!(carried.len(), 2, "{carried:?}");
    assert!(carried.contains(&&resigned));
    assert!(!carried.contains(&&s.app.manifest.digest));
    let sig = index
        .attachments
        .iter()
        .find(|a| a.subject == s.app.manifest.digest && a.kind == AttachmentKind::Signature)
        .unwrap();
    assert_eq!(sig.digest, resigned);
    assert_eq!(
        sig.verified_by.len(),
        2,
        "both keys verify a layer: {sig:?}"
    );
    assert!(push(&delta, &s.work.key, &to, &[]).ok);
    for k in [&s.key, &s.foreign] {
        let c = s.node_check("site", "app", &s.app.manifest.digest, k);
        assert!(c.ok, "{}: {}", k.display(), c.text());
    }
}

/// The client side of the referrers API, against responses recorded from a registry that
/// serves it (an OCI 1.1 index of descriptors with artifactType and annotations), and the tag
/// schema when the API answers 404.
#[test]
fn referrers_api_and_tag_schema_on_the_client() {
    let subject = Digest::of(b"subject manifest");
    let bundle = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let recorded = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1024,"artifactType":"{bundle}","annotations":{{"dev.sigstore.bundle.content":"message-signature","dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":712,"artifactType":"{SBOM}","annotations":{{"org.opencontainers.image.created":"2026-11-30T12:00:00Z"}}}}]}}"#,
        Digest::of(b"bundle"),
        Digest::of(b"sbom")
    );
    let mut routes = Routes::new();
    routes.insert("/v2/".into(), b"{}".to_vec());
    routes.insert(
        format!("/v2/org/app/referrers/{subject}"),
        recorded.clone().into_bytes(),
    );
    routes.insert(
        format!("/v2/org/old/manifests/sha256-{}", subject.hex()),
        recorded.into_bytes(),
    );
    let server = StaticServer::start(routes).unwrap();
    let host = format!("127.0.0.1:{}", server.port);
    let c = seed::client().unwrap();
    let api = c
        .referrers(&Repo::new(host.clone(), "org/app"), &subject, None)
        .unwrap();
    assert_eq!(api.source, ReferrersSource::Api);
    assert_eq!(api.descriptors.len(), 2);
    assert_eq!(api.of_type(bundle).count(), 1);
    assert_eq!(
        api.of_type(SBOM).next().unwrap().digest,
        Digest::of(b"sbom")
    );
    let annotations = &api.descriptors[0].annotations;
    assert_eq!(
        annotations["dev.sigstore.bundle.content"],
        "message-signature"
    );
    assert!(!api.filtered, "no OCI-Filters-Applied: the caller filters");
    // No referrers API (404): the tag schema's index is read instead.
    let old = c
        .referrers(&Repo::new(host.clone(), "org/old"), &subject, None)
        .unwrap();
    assert_eq!(old.source, ReferrersSource::TagSchema);
    assert_eq!(old.descriptors.len(), 2);
    // Neither: no referrers, no error.
    let none = c
        .referrers(&Repo::new(host.clone(), "org/none"), &subject, None)
        .unwrap();
    assert_eq!(
        (none.source, none.descriptors.len()),
        (ReferrersSource::TagSchema, 0)
    );
    let asked = server.requests();
    assert!(
        asked.contains(&format!("/v2/org/old/referrers/{subject}")),
        "{asked:?}"
    );
    // A repository whose API answered 404 goes to the tag schema directly the next time; one
    // whose API answered is still asked.
    let other = Digest::of(b"another subject manifest");
    let again = c
        .referrers(&Repo::new(host.clone(), "org/old"), &other, None)
        .unwrap();
    assert_eq!(again.source, ReferrersSource::TagSchema);
    c.referrers(&Repo::new(host.clone(), "org/app"), &other, None)
        .unwrap();
    let asked = server.requests();
    assert!(
        !asked.contains(&format!("/v2/org/old/referrers/{other}")),
        "{asked:?}"
    );
    assert!(
        asked.contains(&format!("/v2/org/old/manifests/sha256-{}", other.hex())),
        "{asked:?}"
    );
    assert!(
        asked.contains(&format!("/v2/org/app/referrers/{other}")),
        "{asked:?}"
    );
    // A 404 that says NAME_UNKNOWN is a registry with the API that does not know the
    // repository (yet): it is asked again for the next subject.
    let unknown = "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository name not known to registry\"}]}";
    for s in [&subject, &other] {
        let reply = Reply {
            status: 404,
            headers: vec![],
            body: unknown.as_bytes().to_vec(),
        };
        server.set_reply(&format!("/v2/org/new/referrers/{s}"), reply);
        let r = c
            .referrers(&Repo::new(host.clone(), "org/new"), s, None)
            .unwrap();
        assert_eq!(
            (r.source, r.descriptors.len()),
            (ReferrersSource::TagSchema, 0)
        );
    }
    let asked = server.requests();
    for s in [&subject, &other] {
        let api = format!("/v2/org/new/referrers/{s}");
        assert_eq!(asked.iter().filter(|p| **p == api).count(), 1, "{asked:?}");
    }
}

/// Attachment tags are looked up in each repository's tag list, read once, instead of asked
/// for one by one (two requests per manifest, nearly all for tags that do not exist); a list
/// that does not fit one page below the bound is not used.
#[test]
fn attachment_tags_come_from_one_tag_list_per_repository() {
    let s = Signed::new();
    let proxy = FaultProxy::start(&s.source.host, vec![Fault::None], 0, None).unwrap();
    let config = s.work.path("through-proxy.yaml");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&config, text.replace(&s.source.host, &proxy.host)).unwrap();
    let to = s.work.path("listed");
    let run = pack(&config, &to, &s.work.key, &["--referrer-type", SBOM]);
    assert!(run.ok, "{}", run.text());
    let index = index_of(&to);
    let count = |kind| index.attachments.iter().filter(|a| a.kind == kind).count();
    assert_eq!(
        count(AttachmentKind::Signature),
        4,
        "{:?}",
        index.attachments
    );
    assert_eq!(
        count(AttachmentKind::Referrer),
        1,
        "{:?}",
        index.attachments
    );
    let log = proxy.stats.log.lock().unwrap().clone();
    let gets = |pred: &dyn Fn(&str) -> bool| {
        log.iter()
            .filter(|(m, p)| m == "GET" && pred(p))
            .map(|(_, p)| p.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(gets(&|p| p.ends_with("/tags/list")).len(), 3, "{log:?}");
    // Only the attachment tags that exist are fetched: 4 signatures and 1 tag-schema index.
    let sigs = gets(&|p| p.contains("/manifests/sha256-") && p.ends_with(".sig"));
    assert_eq!(sigs.len(), 4, "{sigs:?}");
    let plain = format!("/manifests/sha256-{}", s.plain.manifest.digest.hex());
    assert!(!sigs.iter().any(|p| p.contains(&plain)), "{sigs:?}");
    let schema = gets(&|p| p.contains("/manifests/sha256-") && !p.ends_with(".sig"));
    let app = format!("/manifests/sha256-{}", s.app.manifest.digest.hex());
    assert_eq!(schema.len(), 1, "{schema:?}");
    assert!(schema[0].ends_with(&app), "{schema:?}");

    // The bound: a list is used only when one page of fewer than the limit holds it.
    let c = seed::client().unwrap();
    let repo = Repo::new(s.source.host.clone(), "fixtures/app");
    let mut tags = c.tags_if_fewer_than(&repo, 10).unwrap().expect("3 tags");
    tags.sort();
    let d = s.app.manifest.digest.hex();
    assert_eq!(
        tags,
        [
            "1".to_string(),
            format!("sha256-{d}"),
            format!("sha256-{d}.sig")
        ]
    );
    assert_eq!(c.tags_if_fewer_than(&repo, 3).unwrap(), None, "a full page");
    assert_eq!(c.tags_if_fewer_than(&repo, 2).unwrap(), None, "a full page");
    let unknown = Repo::new(s.source.host.clone(), "fixtures/none");
    assert_eq!(c.tags_if_fewer_than(&unknown, 10).unwrap(), None);
    // A registry whose pages are shorter than asked says so with a Link to the next page.
    let server = StaticServer::start(Routes::new()).unwrap();
    let host = format!("127.0.0.1:{}", server.port);
    for (repo, link) in [("org/paged", true), ("org/whole", false)] {
        let next = format!("</v2/{repo}/tags/list?last=x&n=10>; rel=\"next\"");
        let reply = Reply {
            status: 200,
            headers: link
                .then(|| ("Link".to_string(), next))
                .into_iter()
                .collect(),
            body: br#"{"name":"r","tags":["x"]}"#.to_vec(),
        };
        server.set_reply(&format!("/v2/{repo}/tags/list?n=10"), reply);
        let got = c
            .tags_if_fewer_than(&Repo::new(host.clone(), repo), 10)
            .unwrap();
        assert_eq!(got, (!link).then(|| vec!["x".to_string()]), "{repo}");
    }
}

/// `ferry-unpack serve` answers the referrers API from what the archive carries.
#[test]
fn serve_answers_the_referrers_api() {
    let s = Signed::new();
    let (run, dir) = s.pack("archive", &["--referrer-type", SBOM]);
    assert!(run.ok, "{}", run.text());
    let served = ferry_e2e::Served::start(&[&dir], &s.work.pubkey(), &["--namespace", "m"]);
    let url = format!(
        "http://{}/v2/m/fixtures/app/referrers/{}",
        served.host, s.app.manifest.digest
    );
    let get = |u: &str| -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "30", u])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let all = get(&url);
    let listed = all["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{all}");
    assert_eq!(listed[0]["digest"], s.referrer.to_string());
    assert_eq!(listed[0]["artifactType"], SBOM);
    let other = get(&format!("{url}?artifactType=application/vnd.example"));
    assert!(other["manifests"].as_array().unwrap().is_empty(), "{other}");
    // The signature tag is served like any tag, next to the image.
    let tag = AttachmentKind::Signature.tag_for(&s.app.manifest.digest);
    let sig = skopeo_raw(&format!("{}/m/fixtures/app:{tag}", served.host)).expect("the .sig tag");
    assert!(String::from_utf8_lossy(&sig).contains("dev.cosignproject.cosign/signature"));
}
