//! Parity volumes (`ferry-pack --parity`): a lost volume and a damaged one are found by
//! `verify`, pushed and served as they are (rebuilt as they are read, the registry and skopeo
//! checking every digest), and rebuilt byte for byte by `repair`; more losses than parity
//! volumes are named, with the images they take. The dry-run media plan counts the parity
//! volumes exactly.

use std::path::Path;

use ferry_e2e::{copy_dir, ferry, pack, push, Served, World};
use ferry_format::Index;
use serde_json::Value;

fn index_of(dir: &Path) -> Index {
    Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap()
}

fn verify_json(w: &World, dir: &Path) -> (bool, Value) {
    let run = ferry(
        "ferry-unpack",
        &[
            "verify",
            dir.to_str().unwrap(),
            "--trust",
            &w.pubkey(),
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}", run.text()));
    (run.ok, v)
}

fn repair(w: &World, dir: &Path, extra: &[&str]) -> ferry_e2e::Run {
    let key = w.pubkey();
    let mut args = vec!["repair", dir.to_str().unwrap(), "--trust", &key];
    args.extend_from_slice(extra);
    ferry("ferry-unpack", &args)
}

/// Flips one byte inside the data of the first blob part of volume `vi`.
fn flip_byte_in(dir: &Path, index: &Index, vi: usize) {
    let part = index
        .blobs
        .iter()
        .flat_map(|b| &b.parts)
        .find(|p| p.volume as usize == vi && p.size > 100)
        .expect("a part in the volume");
    let path = dir.join(&index.volumes[vi].name);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(part.offset + part.size / 2) as usize] ^= 0x5a;
    std::fs::write(&path, bytes).unwrap();
}

fn bad_names(v: &Value, key: &str) -> Vec<String> {
    v["parity"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_lost_and_a_damaged_volume_are_pushed_served_and_repaired_from_two_parity_volumes() {
    let w = World::new();
    let archive = w.path("archive");
    let run = pack(&w.config, &archive, &w.key, &["--parity", "2"]);
    assert!(run.ok, "{}", run.text());
    let index = index_of(&archive);
    let parity = index.parity.as_ref().expect("parity recorded");
    assert_eq!(parity.volumes.len(), 2);
    assert!(index.volumes.len() >= 3, "{} volumes", index.volumes.len());
    let largest = index.volumes.iter().map(|v| v.size).max().unwrap();
    for p in &parity.volumes {
        assert_eq!(
            std::fs::metadata(archive.join(&p.name)).unwrap().len(),
            largest
        );
    }
    let (ok, v) = verify_json(&w, &archive);
    assert!(ok, "{v}");
    assert_eq!(v["parity"]["intact"], 2, "{v}");

    // The dry run planned exactly these parity volumes.
    let dry = ferry(
        "ferry-pack",
        &[
            "--config",
            w.config.to_str().unwrap(),
            "--dry-run",
            "--json",
            "-q",
            "--volume-size",
            "1MiB",
            "--parity",
            "2",
        ],
    );
    let plan: Value =
        serde_json::from_str(&dry.stdout).unwrap_or_else(|_| panic!("{}", dry.text()));
    let planned: Vec<(String, u64)> = plan["archive"]["parityVolumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let written: Vec<(String, u64)> = parity
        .volumes
        .iter()
        .map(|p| (p.name.clone(), p.size))
        .collect();
    assert_eq!(planned, written);

    // Lose the first volume (the most blobs) and damage one byte of another.
    let damaged = w.path("damaged");
    copy_dir(&archive, &damaged);
    let lost = index.volumes[0].name.clone();
    let hurt = index.volumes.len() - 2;
    std::fs::remove_file(damaged.join(&lost)).unwrap();
    flip_byte_in(&damaged, &index, hurt);
    let (ok, v) = verify_json(&w, &damaged);
    assert!(!ok, "damage is a failure: {v}");
    assert_eq!(v["parity"]["recoverable"], true, "{v}");
    assert_eq!(
        bad_names(&v, "badData"),
        vec![lost.clone(), index.volumes[hurt].name.clone()]
    );
    let text = w.verify(&damaged);
    assert!(text.stdout.contains("RECOVERABLE"), "{}", text.text());

    // Push the damaged media as it is: every image arrives, checked by skopeo.
    let pushed = push(
        &damaged,
        &w.key,
        &format!("{}/onthefly", w.target.host),
        &["--json"],
    );
    assert!(pushed.ok, "{}", pushed.text());
    let report: Value = serde_json::from_str(&pushed.stdout).unwrap();
    assert!(report["blobs"]["rebuilt"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["notPushed"].as_array().unwrap().len(), 0, "{report}");
    assert!(pushed.stderr.contains(&lost), "{}", pushed.stderr);
    ferry_e2e::assert_all_at(&w.target.host, "onthefly", &w.seeded);

    // Serve it as it is: a client walking every manifest and blob gets the right bytes.
    let served = Served::start(&[&damaged], &w.pubkey(), &[]);
    let walk = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("registry_walk.py"))
        .arg(format!("http://{}", served.host))
        .output()
        .unwrap();
    assert!(
        walk.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&walk.stderr),
        served.log()
    );
    assert!(served.stop());

    // Repair into another directory: the rebuilt volumes are the originals, byte for byte.
    let out = w.path("rebuilt");
    let run = repair(&w, &damaged, &["--out", out.to_str().unwrap(), "--json"]);
    assert!(run.ok, "{}", run.text());
    for name in [&lost, &index.volumes[hurt].name] {
        assert!(
            std::fs::read(out.join(name)).unwrap() == std::fs::read(archive.join(name)).unwrap(),
            "{name} rebuilt differs"
        );
    }
    // In place: the damaged original is kept aside, and the archive verifies again.
    let run = repair(&w, &damaged, &[]);
    assert!(run.ok, "{}", run.text());
    assert!(damaged
        .join(format!("{}.damaged", index.volumes[hurt].name))
        .exists());
    let (ok, v) = verify_json(&w, &damaged);
    assert!(ok, "{v}");
    let run = repair(&w, &damaged, &[]);
    assert!(run.stdout.contains("nothing to repair"), "{}", run.text());
}

#[test]
fn more_losses_than_parity_volumes_are_named_and_a_damaged_parity_volume_is_recomputed() {
    let w = World::new();
    let archive = w.path("archive");
    let run = pack(&w.config, &archive, &w.key, &["--parity", "1"]);
    assert!(run.ok, "{}", run.text());
    let index = index_of(&archive);
    let parity_name = index.parity.as_ref().unwrap().volumes[0].name.clone();

    // A damaged parity volume: the data is fine (verify passes, with a warning); repair
    // computes it again, identical.
    let spare = w.path("spare");
    copy_dir(&archive, &spare);
    let p = spare.join(&parity_name);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    let text = w.verify(&spare);
    assert!(text.ok, "{}", text.text());
    assert!(
        text.stdout
            .contains(&format!("WARNING: parity volume {parity_name}")),
        "{}",
        text.stdout
    );
    let run = repair(&w, &spare, &[]);
    assert!(run.ok, "{}", run.text());
    assert!(std::fs::read(&p).unwrap() == std::fs::read(archive.join(&parity_name)).unwrap());

    // Two lost volumes, one parity volume: not recoverable, and every message says which.
    let broken = w.path("broken");
    copy_dir(&archive, &broken);
    let (a, b) = (&index.volumes[0].name, &index.volumes[1].name);
    std::fs::remove_file(broken.join(a)).unwrap();
    // An interrupted copy: the second volume is cut short.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(broken.join(b))
        .unwrap();
    f.set_len(index.volumes[1].size / 2).unwrap();
    let (ok, v) = verify_json(&w, &broken);
    assert!(!ok);
    assert_eq!(v["parity"]["recoverable"], false, "{v}");
    assert_eq!(bad_names(&v, "badData"), vec![a.clone(), b.clone()]);
    assert!(!v["affectedImages"].as_array().unwrap().is_empty(), "{v}");
    let run = repair(&w, &broken, &[]);
    assert!(!run.ok);
    for needle in [a.as_str(), b.as_str(), "only 1 of 1 parity", "partial copy"] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(
        !broken.join(format!("{a}.partial")).exists(),
        "nothing half-written"
    );
    let pushed = push(
        &broken,
        &w.key,
        &format!("{}/partly", w.target.host),
        &["--json"],
    );
    assert!(!pushed.ok, "{}", pushed.text());
    assert!(
        pushed.stderr.contains("only 1 of 1 parity"),
        "{}",
        pushed.stderr
    );
    let report: Value = serde_json::from_str(&pushed.stdout).unwrap();
    assert!(
        !report["notPushed"].as_array().unwrap().is_empty(),
        "{report}"
    );
}
