//! Unit tests of the cluster manifests, on in-memory indexes.

use super::*;
use crate::testing::{blob, image, index_of, manifest};
use base64::Engine;
use ferry_format::index::{AttachmentKind, Catalog, GraphData, Release, SignatureCheck};

fn parse(f: &OutFile) -> Value {
    serde_saphyr::from_str(std::str::from_utf8(&f.bytes).unwrap()).unwrap()
}

fn file<'a>(files: &'a [OutFile], name: &str) -> &'a OutFile {
    files
        .iter()
        .find(|f| f.path == Path::new(name))
        .unwrap_or_else(|| panic!("{name} not among {:?}", paths(files)))
}

fn paths(files: &[OutFile]) -> Vec<String> {
    files.iter().map(|f| f.path.display().to_string()).collect()
}

/// A release (signed), a tagged and an untagged image, a rebuilt catalog and the graph data.
fn world() -> (Index, Signatures) {
    let rel = manifest(b"release", &[], &[]);
    let comp = manifest(b"component", &[], &[]);
    let app = manifest(b"app", &[], &[]);
    let cat = manifest(b"catalog", &[], &[]);
    let graph = manifest(b"graph", &[], &[]);
    let sig = Digest::of(b"signature bytes");
    let mut index = index_of(
        vec![
            image(
                "quay.io",
                "openshift-release-dev/ocp-release",
                &rel.digest,
                &["4.15.3-x86_64"],
            ),
            image(
                "quay.io",
                "openshift-release-dev/ocp-v4.0-art-dev",
                &comp.digest,
                &[],
            ),
            image("docker.io", "library/app", &app.digest, &["1.0"]),
            image(
                "registry.redhat.io",
                "ferry/catalogs/redhat-operator-index",
                &cat.digest,
                &["v4.15"],
            ),
            image(
                "registry.redhat.io",
                "openshift/graph-image",
                &graph.digest,
                &["latest"],
            ),
        ],
        vec![rel.clone(), comp, app, cat.clone(), graph.clone()],
        &[(&sig, 15)],
    );
    index.releases.push(Release {
        version: "4.15.3".into(),
        channels: vec!["stable-4.15".into()],
        architecture: "amd64".into(),
        registry: "quay.io".into(),
        repository: "openshift-release-dev/ocp-release".into(),
        digest: rel.digest.clone(),
        components: 1,
        component_digests: vec![],
        component_repositories: vec!["quay.io/openshift-release-dev/ocp-v4.0-art-dev".into()],
        signatures: vec![sig.clone()],
        signature_check: SignatureCheck::Verified,
        verified_by: vec!["567E".into()],
    });
    index.catalogs.push(Catalog {
        source: "registry.redhat.io/redhat/redhat-operator-index:v4.15".into(),
        source_digest: Digest::of(b"source catalog"),
        registry: "registry.redhat.io".into(),
        repository: "ferry/catalogs/redhat-operator-index".into(),
        tag: Some("v4.15".into()),
        digest: cat.digest.clone(),
        configs_dir: "/configs".into(),
        packages: vec![],
    });
    index.graph_data = Some(GraphData {
        url: "https://example/graph-data.tar.gz".into(),
        registry: "registry.redhat.io".into(),
        repository: "openshift/graph-image".into(),
        digest: graph.digest.clone(),
        files: 2,
    });
    index.blobs.push(blob(&Digest::of(b"unused"), 1));
    index.blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    let signatures = Signatures::from([(sig, b"signature bytes".to_vec())]);
    (index, signatures)
}

#[test]
fn mirror_sets_split_digest_and_tag_references() {
    let (index, sigs) = world();
    let target: Target = "reg.site:5000/mirror".parse().unwrap();
    let files = build(&index, &sigs, &target, &Options::default()).unwrap();
    assert!(
        !paths(&files).iter().any(|p| p.starts_with("icsp-")),
        "no ICSP unless asked"
    );
    let idms = parse(file(&files, "idms-ferry-site.yaml"));
    assert_eq!(idms["kind"], "ImageDigestMirrorSet");
    let sources: Vec<&str> = idms["spec"]["imageDigestMirrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        vec![
            "quay.io/openshift-release-dev/ocp-release",
            "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
        ],
        "a release image goes by digest even though it is tagged"
    );
    let itms = parse(file(&files, "itms-ferry-site.yaml"));
    let entries = itms["spec"]["imageTagMirrors"].as_array().unwrap();
    let pairs: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap(),
                e["mirrors"][0].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("docker.io/library/app", "reg.site:5000/mirror/library/app"),
            (
                "registry.redhat.io/redhat/redhat-operator-index",
                "reg.site:5000/mirror/ferry/catalogs/redhat-operator-index"
            ),
        ],
        "the catalog's source repository is sent to the rebuilt one; the graph image is not mirrored"
    );
    let with_icsp = build(
        &index,
        &sigs,
        &target,
        &Options {
            icsp: true,
            ..Options::default()
        },
    )
    .unwrap();
    let icsp = parse(file(&with_icsp, "icsp-ferry-site.yaml"));
    assert_eq!(
        icsp["spec"]["repositoryDigestMirrors"],
        idms["spec"]["imageDigestMirrors"]
    );
}

#[test]
fn releases_get_signature_maps_an_update_service_and_upgrade_commands() {
    let (index, sigs) = world();
    let target: Target = "reg.site:5000/mirror".parse().unwrap();
    let files = build(&index, &sigs, &target, &Options::default()).unwrap();
    let hex = index.releases[0].digest.hex();
    let cm = parse(file(
        &files,
        &format!("release-signatures/signature-sha256-{}.yaml", &hex[..16]),
    ));
    assert_eq!(cm["metadata"]["namespace"], "openshift-config-managed");
    let data = cm["binaryData"][format!("sha256-{hex}-1")]
        .as_str()
        .unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(decoded, b"signature bytes");
    let us = parse(file(&files, "updateService.yaml"));
    assert_eq!(
        us["spec"]["releases"],
        "reg.site:5000/mirror/openshift-release-dev/ocp-release"
    );
    let graph = index.graph_data.as_ref().unwrap();
    assert_eq!(
        us["spec"]["graphDataImage"],
        format!(
            "reg.site:5000/mirror/openshift/graph-image@{}",
            graph.digest
        )
    );
    let txt = String::from_utf8(file(&files, "releases.txt").bytes.clone()).unwrap();
    assert!(txt.contains(&format!(
        "upgrade:    oc adm upgrade --allow-explicit-upgrade --to-image=reg.site:5000/mirror/openshift-release-dev/ocp-release@{}",
        index.releases[0].digest
    )), "{txt}");
    assert!(
        txt.contains("mirrored under reg.site:5000/mirror/openshift-release-dev/ocp-v4.0-art-dev"),
        "{txt}"
    );
    // A signature that was not read is an error, not an empty map.
    assert!(build(&index, &Signatures::new(), &target, &Options::default()).is_err());
}

#[test]
fn catalogs_get_sources_and_mapping_leaves_out_what_is_not_at_the_source() {
    let (mut index, sigs) = world();
    let mut twin = index.catalogs[0].clone();
    twin.digest = Digest::of(b"another build");
    index.catalogs.push(twin);
    let target: Target = "reg.site:5000".parse().unwrap();
    let files = build(&index, &sigs, &target, &Options::default()).unwrap();
    let cs = parse(file(&files, "cs-redhat-operator-index-v4-15.yaml"));
    assert_eq!(cs["spec"]["sourceType"], "grpc");
    assert_eq!(
        cs["spec"]["image"],
        format!(
            "reg.site:5000/ferry/catalogs/redhat-operator-index@{}",
            index.catalogs[0].digest
        )
    );
    let twin_name = format!(
        "cs-redhat-operator-index-v4-15-{}.yaml",
        &index.catalogs[1].digest.hex()[..6]
    );
    file(&files, &twin_name);
    let cc = parse(file(&files, "cc-redhat-operator-index-v4-15.yaml"));
    assert_eq!(cc["spec"]["source"]["image"]["ref"], cs["spec"]["image"]);
    let mapping = String::from_utf8(file(&files, "mapping.txt").bytes.clone()).unwrap();
    let lines: Vec<&str> = mapping.lines().collect();
    assert_eq!(lines.len(), 3, "{mapping}");
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("graph-image") && !l.contains("catalogs/")),
        "{mapping}"
    );
    assert!(
        lines.contains(
            &format!(
                "docker.io/library/app@{}=reg.site:5000/library/app:1.0",
                index.images[2].digest
            )
            .as_str()
        ),
        "{mapping}"
    );
}

#[test]
fn repositories_of_references() {
    assert_eq!(mirrors::repository_of("r.io:5000/a/b:v1"), "r.io:5000/a/b");
    assert_eq!(mirrors::repository_of("r.io/a/b@sha256:00"), "r.io/a/b");
    assert_eq!(mirrors::repository_of("r.io:5000/a/b"), "r.io:5000/a/b");
}

#[test]
fn object_names_are_dns_labels() {
    assert_eq!(object_name("ferry-My_Stream.v2"), "ferry-my-stream-v2");
    assert_eq!(object_name("--"), "ferry");
    assert!(object_name(&"x".repeat(100)).len() <= 63);
}

/// `world()` plus sigstore: the app signed and verified under key K, the release signed and
/// verified too (the cluster's own policy covers it), a second key that verified nothing.
fn signed_world() -> (Index, Signatures) {
    use ferry_format::index::{Attachment, KeyAlgorithm, SigstoreKey};
    let (mut index, sigs) = world();
    let key = |id: &str| SigstoreKey {
        id: id.into(),
        algorithm: KeyAlgorithm::EcdsaP256,
        pem: format!("-----BEGIN PUBLIC KEY-----\n{id}\n-----END PUBLIC KEY-----\n"),
    };
    index.sigstore_keys = vec![
        key("sha256:aaaaaaaaaaaaaaaa"),
        key("sha256:bbbbbbbbbbbbbbbb"),
    ];
    for i in [0usize, 2] {
        let img = index.images[i].clone();
        let sig = manifest(format!("sig of {}", img.digest).as_bytes(), &[], &[]);
        let tag = AttachmentKind::Signature.tag_for(&img.digest);
        let mut sig_image = image(&img.registry, &img.repository, &sig.digest, &[&tag]);
        sig_image.source = format!("{}/{}:{tag}", img.registry, img.repository);
        index.images.push(sig_image);
        index.blobs.push(blob(&sig.digest, 100));
        index.manifests.push(sig.clone());
        index.attachments.push(Attachment {
            kind: AttachmentKind::Signature,
            registry: img.registry.clone(),
            repository: img.repository.clone(),
            subject: img.digest.clone(),
            digest: sig.digest.clone(),
            tag: Some(tag),
            artifact_type: None,
            verified_by: vec!["sha256:aaaaaaaaaaaaaaaa".into()],
        });
    }
    index.blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    index.manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    (index, sigs)
}

#[test]
fn a_cluster_image_policy_per_key_that_verified_non_release_images() {
    let (index, sigs) = signed_world();
    let target: Target = "reg.site:5000/mirror".parse().unwrap();
    let files = build(&index, &sigs, &target, &Options::default()).unwrap();
    let cips: Vec<&OutFile> = files
        .iter()
        .filter(|f| f.path.to_string_lossy().starts_with("cip-"))
        .collect();
    assert_eq!(
        cips.len(),
        1,
        "only the key that verified something: {:?}",
        paths(&files)
    );
    assert_eq!(cips[0].path, Path::new("cip-ferry-site-aaaaaaaaaaaa.yaml"));
    let cip = parse(cips[0]);
    assert_eq!(cip["kind"], "ClusterImagePolicy");
    assert_eq!(
        cip["spec"]["scopes"],
        serde_json::json!(["docker.io/library/app"]),
        "the release repository is the cluster's own policy's"
    );
    let key_data = cip["spec"]["policy"]["rootOfTrust"]["publicKey"]["keyData"]
        .as_str()
        .unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(key_data)
        .unwrap();
    assert_eq!(String::from_utf8(pem).unwrap(), index.sigstore_keys[0].pem);
    // Signatures are not mirror sources: the IDMS and ITMS are those of the unsigned world.
    let (plain, _) = world();
    let unsigned = build(&plain, &sigs, &target, &Options::default()).unwrap();
    for name in ["idms-ferry-site.yaml", "itms-ferry-site.yaml"] {
        assert_eq!(file(&files, name), file(&unsigned, name), "{name}");
    }
}

const CA: &str = "junk before\r\n-----BEGIN CERTIFICATE-----\r\nMIIBszCCAVmgAwIBAgIUY2E=\r\n-----END CERTIFICATE-----\r\n# a comment\n-----BEGIN CERTIFICATE-----\nMIIBtDCCAVqgAwIBAgIUZGI=\n-----END CERTIFICATE-----\n";

#[test]
fn install_config_mirrors_match_the_idms_and_carry_the_ca() {
    let (index, sigs) = world();
    let target: Target = "reg.site:5000/mirror".parse().unwrap();
    let bundle = trust_bundle(CA, "ca.pem").unwrap();
    assert_eq!(
        bundle,
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUY2E=\n-----END CERTIFICATE-----\n\
         -----BEGIN CERTIFICATE-----\nMIIBtDCCAVqgAwIBAgIUZGI=\n-----END CERTIFICATE-----\n",
        "only the certificate blocks, with \\n line ends"
    );
    let opts = Options {
        trust_bundle: Some(bundle.clone()),
        ..Options::default()
    };
    let files = build(&index, &sigs, &target, &opts).unwrap();
    let ic = parse(file(&files, "install-config-mirrors.yaml"));
    let idms = parse(file(&files, "idms-ferry-site.yaml"));
    assert_eq!(ic["imageDigestSources"], idms["spec"]["imageDigestMirrors"]);
    assert_eq!(ic["additionalTrustBundle"], bundle.as_str());
    assert_eq!(ic["additionalTrustBundlePolicy"], "Always");

    let plain = build(&index, &sigs, &target, &Options::default()).unwrap();
    let ic = parse(file(&plain, "install-config-mirrors.yaml"));
    assert!(
        ic.get("additionalTrustBundle").is_none(),
        "no CA, no bundle"
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let e = trust_bundle("not a pem\n", "x.pem")
        .unwrap_err()
        .to_string();
    assert!(e.contains("x.pem holds no PEM certificate"), "{e}");
    let e = trust_bundle("-----BEGIN CERTIFICATE-----\nAAAA\n", "y.pem")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not closed"), "{e}");
}

#[test]
fn samples_config_points_at_the_mirror_and_skips_what_is_not_there() {
    use ferry_format::index::{SampleStream, Samples};
    let java = manifest(b"java", &[], &[]);
    let mut img = image(
        "registry.redhat.io",
        "ubi8/openjdk-8",
        &java.digest,
        &["latest"],
    );
    img.source = "registry.redhat.io/ubi8/openjdk-8:latest".into();
    let mut index = index_of(vec![img], vec![java], &[]);
    index.samples = Some(Samples {
        image_streams: vec![
            SampleStream {
                name: "java".into(),
                images: vec!["registry.redhat.io/ubi8/openjdk-8:latest".into()],
                mirrored: true,
                reason: None,
            },
            SampleStream {
                name: "mongodb".into(),
                images: vec!["registry.redhat.io/rhscl/mongodb-36-rhel7:latest".into()],
                mirrored: false,
                reason: Some("excluded by --samples-exclude".into()),
            },
        ],
    });
    let target: Target = "mirror.site:5000/ocp".parse().unwrap();
    let files = build(&index, &Signatures::new(), &target, &Options::default()).unwrap();
    let f = file(&files, "samples-operator-config.yaml");
    let v = parse(f);
    assert_eq!(v["kind"], "Config");
    assert_eq!(v["metadata"]["name"], "cluster");
    assert_eq!(v["spec"]["samplesRegistry"], "mirror.site:5000/ocp");
    assert_eq!(v["spec"]["managementState"], "Managed");
    assert_eq!(v["spec"]["skippedImagestreams"], json!(["mongodb"]));
    let text = String::from_utf8(f.bytes.clone()).unwrap();
    assert!(
        text.contains("# skipped: mongodb: excluded by --samples-exclude"),
        "{text}"
    );

    // Flattened by --max-nested-paths: not where the operator looks, so skipped too.
    let flat = target.clone().with_max_nested_paths(Some(2));
    let files = build(&index, &Signatures::new(), &flat, &Options::default()).unwrap();
    let v = parse(file(&files, "samples-operator-config.yaml"));
    assert_eq!(v["spec"]["skippedImagestreams"], json!(["java", "mongodb"]));

    // No samples recorded: no file.
    index.samples = None;
    let files = build(&index, &Signatures::new(), &target, &Options::default()).unwrap();
    assert!(!paths(&files).contains(&"samples-operator-config.yaml".to_string()));
}
