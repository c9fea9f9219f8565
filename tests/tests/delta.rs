//! Incremental media: full + delta + delta through real registries, the site's checks before
//! anything is pushed, and deltas packed against a site inventory.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ferry_e2e::{digest_of, ferry, keygen, skopeo_raw, Run, Workdir};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::sets::{self, Seeded};
use ferry_format::index::ParentKind;
use ferry_format::{Digest, Index};

struct Chain {
    source: TestRegistry,
    target: TestRegistry,
    versions: Vec<Vec<Seeded>>,
    work: Workdir,
}

impl Chain {
    fn new() -> Chain {
        let source = TestRegistry::start().unwrap();
        let target = TestRegistry::start().unwrap();
        let client = ferry_fixtures::seed::client().unwrap();
        let versions = sets::seed_chain(&client, &source.host).unwrap();
        let work = Workdir::new("ferry-delta-");
        for (i, v) in versions.iter().enumerate() {
            std::fs::write(
                work.path(&format!("v{}.yaml", i + 1)),
                sets::imageset_yaml(v),
            )
            .unwrap();
        }
        Chain {
            source,
            target,
            versions,
            work,
        }
    }

    /// Packs version `v` into `out`, with extra flags (bases).
    fn pack(&self, v: usize, out: &str, extra: &[&str]) -> Run {
        let cfg = self.work.path(&format!("v{v}.yaml"));
        let out = self.work.path(out);
        let mut args = vec![
            "--config",
            cfg.to_str().unwrap(),
            "--to",
            out.to_str().unwrap(),
            "--sign-key",
            self.work.key.to_str().unwrap(),
            "--stream",
            "prod",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        ferry("ferry-pack", &refs)
    }

    fn push(&self, dir: &str, ns: &str, extra: &[&str]) -> Run {
        let dir = self.work.path(dir);
        let to = format!("{}/{ns}", self.target.host);
        let pk = self.work.pubkey();
        let mut args = vec![
            "push",
            dir.to_str().unwrap(),
            "--trust",
            &pk,
            "--to",
            &to,
            "-q",
        ];
        args.extend_from_slice(extra);
        ferry("ferry-unpack", &args)
    }

    fn at_target(&self, s: &Seeded, ns: &str) -> Option<Vec<u8>> {
        skopeo_raw(&format!(
            "{}/{ns}/{}@{}",
            self.target.host, s.repository, s.digest
        ))
    }

    fn index_path(&self, dir: &str) -> String {
        self.work
            .path(dir)
            .join("ferry-index.json")
            .to_str()
            .unwrap()
            .to_string()
    }
}

fn index(dir: &Path) -> Index {
    Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap()
}

fn carried(i: &Index) -> BTreeSet<Digest> {
    i.blobs
        .iter()
        .filter(|b| b.carried())
        .map(|b| b.digest.clone())
        .collect()
}

fn listed(i: &Index) -> BTreeSet<Digest> {
    i.blobs.iter().map(|b| b.digest.clone()).collect()
}

fn volume_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tar"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn full_then_deltas_arrive_in_order_and_out_of_order_is_refused() {
    let c = Chain::new();
    assert!(c.pack(1, "a1", &[]).ok);
    let a1_index = c.index_path("a1");
    let d2 = c.pack(2, "d2", &["--base", &a1_index]);
    assert!(d2.ok, "{}", d2.text());
    let d2_index = c.index_path("d2");
    let d3 = c.pack(3, "d3", &["--base", &d2_index]);
    assert!(d3.ok, "{}", d3.text());
    let (a1, i2, i3) = (
        index(&c.work.path("a1")),
        index(&c.work.path("d2")),
        index(&c.work.path("d3")),
    );

    // Each delta carries exactly what its base does not list, lists every image in full, and
    // its volumes stay within 2% of the bytes of those blobs.
    for (delta, base, dir) in [(&i2, &a1, "d2"), (&i3, &i2, "d3")] {
        assert_eq!(delta.images.len(), 4);
        let expected: BTreeSet<_> = listed(delta).difference(&listed(base)).cloned().collect();
        assert_eq!(carried(delta), expected);
        assert!(!expected.is_empty());
        let new_bytes: u64 = delta
            .blobs
            .iter()
            .filter(|b| b.carried())
            .map(|b| b.size)
            .sum();
        let vols = volume_bytes(&c.work.path(dir));
        assert!(
            vols as f64 <= 1.02 * new_bytes as f64,
            "{dir}: {vols} bytes for {new_bytes} new"
        );
        assert!(delta
            .blobs
            .iter()
            .filter(|b| !b.carried())
            .all(|b| b.base.as_deref() == Some(&base.archive_id)));
        assert_eq!(delta.parents[0].id, base.archive_id);
    }
    assert_eq!(a1.stream.as_ref().unwrap().sequence, 1);
    assert_eq!(i2.stream.as_ref().unwrap().sequence, 2);
    assert_eq!(i3.stream.as_ref().unwrap().sequence, 3);

    // verify lists what a delta brings and expects; --json gives the same.
    let pk = c.work.pubkey();
    let v = ferry(
        "ferry-unpack",
        &[
            "verify",
            c.work.path("d3").to_str().unwrap(),
            "--trust",
            &pk,
        ],
    );
    assert!(v.ok, "{}", v.text());
    assert!(
        v.stdout.contains(&format!(
            "expects {} blobs and manifests",
            i3.blobs.len() - carried(&i3).len()
        )),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains(&format!("from archive {}", i2.archive_id)),
        "{}",
        v.stdout
    );
    let j = ferry(
        "ferry-unpack",
        &[
            "verify",
            c.work.path("d3").to_str().unwrap(),
            "--trust",
            &pk,
            "--json",
        ],
    );
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["expected"][0]["parent"], i2.archive_id.as_str());
    assert_eq!(doc["carried"]["count"], carried(&i3).len());
    assert_eq!(doc["stream"]["sequence"], 3);

    // Full first.
    let p1 = c.push("a1", "mirror", &[]);
    assert!(p1.ok, "{}", p1.text());
    assert!(p1.stdout.contains("recorded archive"), "{}", p1.stdout);

    // The second delta before the first: refused, naming the archive to push first; nothing
    // of it reaches the target.
    let early = c.push("d3", "mirror", &[]);
    assert!(!early.ok);
    assert!(
        early.stderr.contains(&i2.archive_id) && early.stderr.contains("sequence 2"),
        "{}",
        early.stderr
    );
    for s in &c.versions[2] {
        assert!(
            c.at_target(s, "mirror").is_none(),
            "{} pushed early",
            s.reference
        );
    }

    // In order: everything arrives, digests equal the source's.
    let p2 = c.push("d2", "mirror", &[]);
    assert!(p2.ok, "{}", p2.text());
    let p3 = c.push("d3", "mirror", &[]);
    assert!(p3.ok, "{}", p3.text());
    for s in c.versions.iter().flatten() {
        let src = skopeo_raw(&format!("{}/{}@{}", c.source.host, s.repository, s.digest)).unwrap();
        let dst = c
            .at_target(s, "mirror")
            .unwrap_or_else(|| panic!("{} missing", s.reference));
        assert_eq!(digest_of(&src), digest_of(&dst));
        if let Some(t) = &s.tag {
            let tagged =
                skopeo_raw(&format!("{}/mirror/{}:{t}", c.target.host, s.repository)).unwrap();
            assert_eq!(digest_of(&tagged), s.digest.to_string());
        }
    }
}

#[test]
fn a_delta_whose_base_is_missing_changes_nothing_and_base_media_fills_the_gap() {
    let c = Chain::new();
    assert!(c.pack(1, "a1", &[]).ok);
    let a1_index = c.index_path("a1");
    assert!(c.pack(2, "d2", &["--base", &a1_index]).ok);
    let a1 = index(&c.work.path("a1"));

    // Without its parent recorded: refused by the sequence check.
    let gap = c.push("d2", "fresh", &[]);
    assert!(!gap.ok);
    assert!(
        gap.stderr.contains(&a1.archive_id) && gap.stderr.contains("--allow-gap"),
        "{}",
        gap.stderr
    );
    // Forcing past it: the base blobs are not there, so nothing is pushed.
    let forced = c.push("d2", "fresh", &["--allow-gap"]);
    assert!(!forced.ok);
    assert!(
        forced.stderr.contains("nothing was pushed") && forced.stderr.contains(&a1.archive_id),
        "{}",
        forced.stderr
    );
    let client = ferry_fixtures::seed::client().unwrap();
    let repos = client.list_repositories(&c.target.host).unwrap();
    assert!(
        repos.iter().all(|r| !r.starts_with("fresh/")),
        "target changed: {repos:?}"
    );

    // With the base archive's media at hand, the delta is complete.
    let a1_dir = c.work.path("a1");
    let with_base = c.push("d2", "fresh", &["--base-media", a1_dir.to_str().unwrap()]);
    assert!(with_base.ok, "{}", with_base.text());
    for s in &c.versions[1] {
        assert!(c.at_target(s, "fresh").is_some(), "{}", s.reference);
    }
}

#[test]
fn a_delta_against_the_site_inventory_equals_one_against_the_pushed_index() {
    let c = Chain::new();
    assert!(c.pack(1, "a1", &[]).ok);
    assert!(c.push("a1", "mirror", &[]).ok);
    let site_key = keygen(c.work.dir.path(), "site.key");
    let inv = c.work.path("inventory.json");
    let to = format!("{}/mirror", c.target.host);
    let made = ferry(
        "ferry-unpack",
        &["inventory", "--from", &to, "--out", inv.to_str().unwrap()],
    );
    assert!(made.ok, "{}", made.text());
    // The site signs it with OpenSSH, as the command says (ferry-unpack carries no signing
    // code); the packer checks that signature.
    let hint = format!(
        "ssh-keygen -Y sign -n ferry-inventory -f SITE_KEY {}",
        inv.display()
    );
    assert!(made.stdout.contains(&hint), "{}", made.text());
    let signed = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "ferry-inventory", "-f"])
        .arg(&site_key)
        .arg(&inv)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let refused = ferry(
        "ferry-unpack",
        &[
            "inventory",
            "--from",
            &to,
            "--out",
            c.work.path("unused.json").to_str().unwrap(),
            "--sign-key",
            site_key.to_str().unwrap(),
        ],
    );
    assert!(
        !refused.ok && refused.stderr.contains("ssh-keygen -Y sign"),
        "{}",
        refused.text()
    );
    assert!(!c.work.path("unused.json").exists());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    assert_eq!(doc["streams"][0]["sequence"], 1);
    // The digest-only image is seen through the recorded archive.
    let by_digest = &c.versions[0][3];
    assert!(doc["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == by_digest.digest.to_string().as_str())));

    let a1_index = c.index_path("a1");
    assert!(c.pack(2, "by-index", &["--base", &a1_index]).ok);
    let site_pub = format!("{}.pub", site_key.display());
    let by_inv = c.pack(
        2,
        "by-inventory",
        &[
            "--base-inventory",
            inv.to_str().unwrap(),
            "--trust-inventory",
            &site_pub,
        ],
    );
    assert!(by_inv.ok, "{}", by_inv.text());
    let (x, y) = (
        index(&c.work.path("by-index")),
        index(&c.work.path("by-inventory")),
    );
    assert_eq!(carried(&x), carried(&y));
    assert_eq!(
        volume_bytes(&c.work.path("by-index")),
        volume_bytes(&c.work.path("by-inventory"))
    );
    assert_eq!(y.stream.as_ref().unwrap().sequence, 2);
    assert_eq!(y.parents[0].kind, ParentKind::Inventory);

    // A tampered inventory is refused.
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(&inv, text.replacen("\"size\"", "\"size\" ", 1)).unwrap();
    let bad = c.pack(
        2,
        "bad-inventory",
        &[
            "--base-inventory",
            inv.to_str().unwrap(),
            "--trust-inventory",
            &site_pub,
        ],
    );
    assert!(!bad.ok);
    assert!(bad.stderr.contains("does not verify"), "{}", bad.stderr);

    // The inventory delta pushes onto the site and completes version 2.
    let p = c.push("by-inventory", "mirror", &[]);
    assert!(p.ok, "{}", p.text());
    for s in &c.versions[1] {
        assert!(c.at_target(s, "mirror").is_some(), "{}", s.reference);
    }
}
