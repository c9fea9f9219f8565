//! Where images land at the target: `additionalImages[].targetRepo`/`targetTag`, and
//! `--max-nested-paths` for registries that limit path depth. Push, the cluster mirror sets,
//! mapping.txt, serve and the inventory must agree on every name; skopeo checks the target.

use std::path::Path;

use ferry_e2e::{digest_of, ferry, pack, push, skopeo_raw, Served, World};
use ferry_fixtures::sets::Seeded;

fn seeded<'a>(w: &'a World, repository: &str) -> &'a Seeded {
    w.seeded
        .iter()
        .find(|s| s.repository == repository && s.tag.is_some())
        .unwrap_or_else(|| panic!("no tagged {repository} in the standard set"))
}

fn manifests_text(dir: &Path, prefix: &str) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn target_repo_target_tag_and_nested_path_limits_agree_everywhere() {
    let w = World::new();
    let moved = seeded(&w, "ubi/app-a");
    let deep = seeded(&w, "multi/app");
    let config = w.path("paths.yaml");
    std::fs::write(
        &config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: {}\n      targetRepo: apps/a\n      targetTag: prod\n    - name: {}\n",
            moved.reference, deep.reference
        ),
    )
    .unwrap();
    let archive = w.path("archive");
    let run = pack(&config, &archive, &w.key, &[]);
    assert!(run.ok, "{}", run.text());

    let out = w.path("manifests");
    let to = format!("{}/mirror", w.target.host);
    let pushed = push(
        &archive,
        &w.key,
        &to,
        &[
            "--max-nested-paths",
            "2",
            "--manifests-dir",
            out.to_str().unwrap(),
        ],
    );
    assert!(pushed.ok, "{}", pushed.text());
    let t = &w.target.host;
    // targetRepo apps/a under the namespace is mirror/apps/a: three components, flattened.
    let at =
        skopeo_raw(&format!("{t}/mirror/apps-a:prod")).expect("moved image at mirror/apps-a:prod");
    assert_eq!(digest_of(&at), moved.digest.to_string());
    assert!(
        skopeo_raw(&format!(
            "{t}/mirror/ubi/app-a:{}",
            moved.tag.as_ref().unwrap()
        ))
        .is_none(),
        "nothing at the source path"
    );
    let tag = deep.tag.as_ref().unwrap();
    let at = skopeo_raw(&format!("{t}/mirror/multi-app:{tag}")).expect("deep image flattened");
    assert_eq!(digest_of(&at), deep.digest.to_string());

    // The mirror sets and mapping.txt name the same places.
    let sets = manifests_text(&out, "idms-") + &manifests_text(&out, "itms-");
    let source_repo = |s: &Seeded| {
        let r = &s.reference;
        r[..r.rfind(':').unwrap()].to_string()
    };
    for (s, mirror) in [(moved, "mirror/apps-a"), (deep, "mirror/multi-app")] {
        assert!(sets.contains(&source_repo(s)), "{sets}");
        assert!(sets.contains(&format!("{t}/{mirror}")), "{mirror}: {sets}");
    }
    let mapping = std::fs::read_to_string(out.join("mapping.txt")).unwrap();
    assert!(
        mapping.contains(&format!(
            "{}@{}={t}/mirror/apps-a:prod",
            source_repo(moved),
            moved.digest
        )),
        "{mapping}"
    );

    // serve with the same limit serves the same names.
    let served = Served::start(
        &[&archive],
        &w.pubkey(),
        &["--namespace", "mirror", "--max-nested-paths", "2"],
    );
    let got = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/mirror/apps-a:prod", served.host))
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(digest_of(&got.stdout), moved.digest.to_string());
    assert!(served.stop());

    // The inventory, taken with the same limit, finds both where push put them.
    let inv = w.path("site.json");
    let run = ferry(
        "ferry-unpack",
        &[
            "inventory",
            "--from",
            &to,
            "--max-nested-paths",
            "2",
            "--out",
            inv.to_str().unwrap(),
        ],
    );
    assert!(run.ok, "{}", run.text());
    let inv: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&inv).unwrap()).unwrap();
    let repos: Vec<&str> = inv["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for r in ["mirror/apps-a", "mirror/multi-app"] {
        assert!(repos.contains(&r), "{r} not in {repos:?}");
    }
}

#[test]
fn a_bad_target_repo_is_refused_and_a_limit_of_one_flattens_every_path() {
    let w = World::new();
    let img = seeded(&w, "ubi/app-a");
    let config = w.path("bad.yaml");
    std::fs::write(
        &config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: {}\n      targetRepo: Apps/A\n",
            img.reference
        ),
    )
    .unwrap();
    let run = ferry(
        "ferry-pack",
        &["--config", config.to_str().unwrap(), "--dry-run"],
    );
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("targetRepo \"Apps/A\" is not a repository path"),
        "{}",
        run.stderr
    );

    // A limit of one component: every repository becomes one name under no namespace path
    // (two source repositories that would merge are refused: a unit test of push::plan).
    let archive = w.path("archive");
    assert!(w.pack(&archive).ok);
    let pushed = push(
        &archive,
        &w.key,
        &format!("{}/m", w.target.host),
        &["--max-nested-paths", "1"],
    );
    assert!(pushed.ok, "{}", pushed.text());
    assert!(skopeo_raw(&format!(
        "{}/m-ubi-app-a:{}",
        w.target.host,
        img.tag.as_ref().unwrap()
    ))
    .is_some());
}
