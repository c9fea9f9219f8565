//! `ferry-unpack serve` with real clients: skopeo copies and inspects images out of it, and
//! `tests/registry_walk.py` (Python's urllib, no ferry code) walks the whole API — catalog and
//! tags page by page, every manifest and blob by digest, hashes checked. Also TLS with the test
//! CA, htpasswd, Range, writes refused, a flipped byte on the media, 32 clients at once with the
//! server's peak RSS, and a full archive served together with its delta.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_e2e::{copy_dir, digest_of, ferry, pack, Served, Workdir, World};
use ferry_fixtures::registry::{make_certificates, TestRegistry};
use ferry_fixtures::sets::{self, Seeded};
use ferry_format::Index;

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo").args(args).output().expect("skopeo")
}

fn inspect_raw(reference: &str, extra: &[&str]) -> Option<Vec<u8>> {
    let mut args = vec!["inspect", "--raw", "--retry-times=0"];
    args.extend_from_slice(extra);
    let r = format!("docker://{reference}");
    args.push(&r);
    let out = skopeo(&args);
    out.status.success().then_some(out.stdout)
}

fn walk(base: &str, creds: &str, ca: Option<&Path>) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("registry_walk.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(base).arg(creds);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    cmd.output().expect("python3 tests/registry_walk.py")
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-s", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl")
}

/// Every seeded image is at `host/ns` by digest and by tag, with its source digest.
fn assert_served(host: &str, ns: &str, seeded: &[Seeded], extra: &[&str]) {
    for s in seeded {
        let at = inspect_raw(&format!("{host}/{ns}/{}@{}", s.repository, s.digest), extra)
            .unwrap_or_else(|| panic!("{} not served", s.reference));
        assert_eq!(digest_of(&at), s.digest.to_string());
        if let Some(t) = &s.tag {
            let tagged = inspect_raw(&format!("{host}/{ns}/{}:{t}", s.repository), extra)
                .unwrap_or_else(|| panic!("tag {t} of {} not served", s.repository));
            assert_eq!(digest_of(&tagged), s.digest.to_string());
        }
    }
}

fn packed(w: &World) -> PathBuf {
    let archive = w.path("archive");
    let run = w.pack(&archive);
    assert!(run.ok, "{}", run.text());
    archive
}

#[test]
fn skopeo_and_an_independent_walk_pull_everything_from_serve() {
    let w = World::new();
    let archive = packed(&w);
    let served = Served::start(&[&archive], &w.pubkey(), &["--namespace", "mirror"]);
    let host = served.host.clone();
    assert_served(&host, "mirror", &w.seeded, &["--tls-verify=false"]);
    // skopeo pulls every blob of an image (and checks each digest) into a directory.
    let s = &w.seeded[0];
    let out = w.path("copied");
    let copy = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/mirror/{}@{}", s.repository, s.digest),
        &format!("dir:{}", out.display()),
    ]);
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );

    let walked = walk(&format!("http://{host}"), "", None);
    assert!(
        walked.status.success(),
        "{}",
        String::from_utf8_lossy(&walked.stderr)
    );
    let counts: serde_json::Value = serde_json::from_slice(&walked.stdout).unwrap();
    let index =
        Index::from_slice(&std::fs::read(archive.join("ferry-index.json")).unwrap()).unwrap();
    let repos: std::collections::BTreeSet<&str> =
        index.images.iter().map(|i| i.repository.as_str()).collect();
    assert_eq!(counts["repositories"], repos.len());
    // The walker starts from tags: every manifest below a tagged image, once per repository.
    let mut reachable = std::collections::BTreeSet::new();
    for img in index.images.iter().filter(|i| !i.tags.is_empty()) {
        for m in index.closure(&img.digest).manifests {
            reachable.insert((img.repository.clone(), m));
        }
    }
    assert_eq!(counts["manifests"], reachable.len(), "{counts}");
    assert!(counts["blobs"].as_u64().unwrap() > 0);

    check_ranges_and_writes(&host, &index);
    // The cluster manifests for the served address point at it.
    let dir = w.path("cluster");
    let m = ferry(
        "ferry-unpack",
        &[
            "manifests",
            archive.to_str().unwrap(),
            "--trust",
            &w.pubkey(),
            "--to",
            &format!("{host}/mirror"),
            "--manifests-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert!(m.ok, "{}", m.text());
    let mapping = std::fs::read_to_string(dir.join("mapping.txt")).unwrap();
    assert!(
        mapping
            .lines()
            .all(|l| l.contains(&format!("={host}/mirror/"))),
        "{mapping}"
    );
    let log = served.log();
    assert!(
        log.contains("\"GET /v2/_catalog?n=2\" 200"),
        "an access log line per request: {log}"
    );
    assert!(served.stop(), "SIGTERM ends serve cleanly");
}

/// `Range` gives 206 and the right bytes; a range past the end 416; writes 405.
fn check_ranges_and_writes(host: &str, index: &Index) {
    let img = &index.images[0];
    let m = index.manifest(&img.digest).unwrap();
    let blob = index
        .manifests
        .iter()
        .flat_map(|m| &m.blobs)
        .max_by_key(|d| index.blob(d).unwrap().size)
        .unwrap();
    let size = index.blob(blob).unwrap().size;
    let repo = index
        .images
        .iter()
        .find(|i| index.closure(&i.digest).blobs.contains(blob))
        .unwrap()
        .repository
        .clone();
    let url = format!("http://{host}/v2/mirror/{repo}/blobs/{blob}");
    let whole = curl(&[&url]).stdout;
    assert_eq!(whole.len() as u64, size);
    assert_eq!(digest_of(&whole), blob.to_string());
    let part = curl(&["-r", "1000-1999", "-w", "%{http_code}", &url]).stdout;
    assert_eq!(&part[part.len() - 3..], b"206");
    assert_eq!(&part[..part.len() - 3], &whole[1000..2000]);
    let past = curl(&[
        "-r",
        &format!("{size}-"),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ])
    .stdout;
    assert_eq!(past, b"416");
    let manifest_url = format!(
        "http://{host}/v2/mirror/{}/manifests/{}",
        img.repository, m.digest
    );
    let put = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "{}",
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &manifest_url,
    ])
    .stdout;
    assert_eq!(put, b"405");
    let delete = curl(&[
        "-X",
        "DELETE",
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &manifest_url,
    ])
    .stdout;
    assert_eq!(delete, b"405");
}

#[test]
fn tls_and_htpasswd() {
    let w = World::new();
    let archive = packed(&w);
    let certs = w.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certificates(&certs).unwrap();
    // What a client trusts: the CA certificate alone (skopeo takes a *.key in the directory for
    // a client key).
    let trusted = w.path("trusted");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::copy(certs.join("ca.pem"), trusted.join("ca.crt")).unwrap();
    let users = w.path("users");
    let out = Command::new("htpasswd")
        .args(["-Bbn", "site", "pa55"])
        .output()
        .unwrap();
    std::fs::write(&users, out.stdout).unwrap();
    let served = Served::start(
        &[&archive],
        &w.pubkey(),
        &[
            "--tls-cert",
            certs.join("server.pem").to_str().unwrap(),
            "--tls-key",
            certs.join("server.key").to_str().unwrap(),
            "--htpasswd",
            users.to_str().unwrap(),
        ],
    );
    let cert_dir = format!("--cert-dir={}", trusted.display());
    let s = &w.seeded[0];
    let reference = format!("{}/{}@{}", served.host, s.repository, s.digest);
    let good = inspect_raw(&reference, &[&cert_dir, "--creds=site:pa55"]);
    assert_eq!(
        digest_of(&good.expect("accepted with the CA and the password")),
        s.digest.to_string()
    );
    assert!(inspect_raw(&reference, &[&cert_dir, "--creds=site:wrong"]).is_none());
    assert!(
        inspect_raw(&reference, &[&cert_dir]).is_none(),
        "no credentials"
    );
    assert!(
        inspect_raw(&reference, &["--creds=site:pa55"]).is_none(),
        "the CA is not trusted by default"
    );
    let copy = skopeo(&[
        "copy",
        "--src-tls-verify=true",
        &format!("--src-cert-dir={}", trusted.display()),
        "--src-creds=site:pa55",
        &format!("docker://{reference}"),
        &format!("dir:{}", w.path("tls-copy").display()),
    ]);
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let walked = walk(
        &format!("https://{}", served.host),
        "site:pa55",
        Some(&certs.join("ca.pem")),
    );
    assert!(
        walked.status.success(),
        "{}",
        String::from_utf8_lossy(&walked.stderr)
    );
    // Plain HTTP on an address that is not loopback is refused without --insecure-http.
    let refused = ferry(
        "ferry-unpack",
        &[
            "serve",
            archive.to_str().unwrap(),
            "--trust",
            &w.pubkey(),
            "--listen",
            "0.0.0.0:0",
        ],
    );
    assert!(
        !refused.ok && refused.stderr.contains("--insecure-http"),
        "{}",
        refused.text()
    );
}

#[test]
fn a_flipped_byte_fails_that_blob_only() {
    let w = World::new();
    let archive = packed(&w);
    let index =
        Index::from_slice(&std::fs::read(archive.join("ferry-index.json")).unwrap()).unwrap();
    // A layer that exactly one image needs.
    let users = |d: &ferry_format::Digest| {
        index
            .images
            .iter()
            .filter(|i| index.closure(&i.digest).blobs.contains(d))
            .count()
    };
    let victim = index
        .blobs
        .iter()
        .filter(|b| index.manifest(&b.digest).is_none() && b.size > 1000 && b.parts.len() == 1)
        .find(|b| users(&b.digest) == 1)
        .expect("a layer of one image");
    let damaged = w.path("damaged");
    copy_dir(&archive, &damaged);
    let part = &victim.parts[0];
    let volume = damaged.join(&index.volumes[part.volume as usize].name);
    let mut bytes = std::fs::read(&volume).unwrap();
    bytes[(part.offset + 10) as usize] ^= 0xff;
    std::fs::write(&volume, bytes).unwrap();
    let served = Served::start(&[&damaged], &w.pubkey(), &["--namespace", "m"]);
    let hit = index
        .images
        .iter()
        .find(|i| index.closure(&i.digest).blobs.contains(&victim.digest))
        .unwrap();
    let copy = |img: &ferry_format::index::Image, to: &str| {
        skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--retry-times=0",
            &format!(
                "docker://{}/m/{}@{}",
                served.host, img.repository, img.digest
            ),
            &format!("dir:{}", w.path(to).display()),
        ])
    };
    assert!(
        !copy(hit, "hit").status.success(),
        "the damaged image is not served"
    );
    let others: Vec<_> = index
        .images
        .iter()
        .filter(|i| !index.closure(&i.digest).blobs.contains(&victim.digest))
        .collect();
    assert!(!others.is_empty());
    for (n, img) in others.iter().enumerate() {
        let c = copy(img, &format!("other{n}"));
        assert!(
            c.status.success(),
            "{}: {}",
            img.source,
            String::from_utf8_lossy(&c.stderr)
        );
    }
    let log = served.log();
    assert!(
        log.contains(&victim.digest.to_string()) && log.contains("corrupt"),
        "the log names the blob: {log}"
    );
}

#[test]
fn thirty_two_clients_at_once() {
    let w = World::new();
    let archive = packed(&w);
    let served = Served::start(&[&archive], &w.pubkey(), &["--quiet"]);
    let base = format!("http://{}", served.host);
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || walk(&base, "", None))
        })
        .collect();
    for c in clients {
        let out = c.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    eprintln!(
        "serve: 32 clients walked everything; peak RSS {} MiB",
        peak_kib / 1024
    );
    let archive_bytes: u64 = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        peak_kib * 1024 < 200 << 20,
        "peak RSS {peak_kib} KiB for an archive of {archive_bytes} bytes"
    );
}

#[test]
fn a_full_archive_and_its_delta_served_together() {
    let source = TestRegistry::start().unwrap();
    let client = ferry_fixtures::seed::client().unwrap();
    let versions = sets::seed_chain(&client, &source.host).unwrap();
    let work = Workdir::new("ferry-serve-chain-");
    let config = |v: usize| {
        let p = work.path(&format!("v{v}.yaml"));
        std::fs::write(&p, sets::imageset_yaml(&versions[v - 1])).unwrap();
        p
    };
    let v1 = work.path("v1");
    assert!(pack(&config(1), &v1, &work.key, &["--stream", "site"]).ok);
    let v2 = work.path("v2");
    let base = v1.join("ferry-index.json");
    let run = pack(
        &config(2),
        &v2,
        &work.key,
        &["--stream", "site", "--base", base.to_str().unwrap()],
    );
    assert!(run.ok, "{}", run.text());
    let served = Served::start(&[&v1, &v2], &work.pubkey(), &["--namespace", "site"]);
    assert_served(&served.host, "site", &versions[0], &["--tls-verify=false"]);
    assert_served(&served.host, "site", &versions[1], &["--tls-verify=false"]);
    let walked = walk(&format!("http://{}", served.host), "", None);
    assert!(
        walked.status.success(),
        "{}",
        String::from_utf8_lossy(&walked.stderr)
    );
    drop(served);
    // The delta alone: it says what it lacks, and what it carries is still served.
    let alone = Served::start(&[&v2], &work.pubkey(), &[]);
    assert!(
        alone.log().contains("are in none of the archives given"),
        "{}",
        alone.log()
    );
}
