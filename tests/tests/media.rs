//! The media plan: `ferry-pack --dry-run` says, from manifests alone, exactly what the archive
//! will be — volumes, index and signature bytes — and which volumes go on each medium; a real
//! pack then writes exactly that. The default volume size fits FAT32.

use ferry_e2e::{ferry, pack, World};
use ferry_format::Index;
use serde_json::Value;

fn dry_run(w: &World, extra: &[&str]) -> (Value, String) {
    let mut args = vec![
        "--config",
        w.config.to_str().unwrap(),
        "--dry-run",
        "--json",
        "-q",
    ];
    args.extend_from_slice(extra);
    let run = ferry("ferry-pack", &args);
    assert!(run.ok, "{}", run.text());
    (serde_json::from_str(&run.stdout).unwrap(), run.stderr)
}

#[test]
fn the_dry_run_media_plan_is_what_pack_writes() {
    let w = World::new();
    let (plan, _) = dry_run(&w, &["--volume-size", "1MiB", "--media-size", "3MiB"]);
    let archive = &plan["archive"];
    let dir = w.path("archive");
    let run = pack(&w.config, &dir, &w.key, &[]);
    assert!(run.ok, "{}", run.text());
    let index_bytes = std::fs::read(dir.join("ferry-index.json")).unwrap();
    let index = Index::from_slice(&index_bytes).unwrap();
    let planned: Vec<(String, u64)> = archive["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let written: Vec<(String, u64)> = index
        .volumes
        .iter()
        .map(|v| (v.name.clone(), v.size))
        .collect();
    assert_eq!(planned, written);
    for (name, size) in &written {
        assert_eq!(std::fs::metadata(dir.join(name)).unwrap().len(), *size);
    }
    assert_eq!(archive["indexBytes"], index_bytes.len() as u64);
    let sig = std::fs::metadata(dir.join("ferry-index.json.sig"))
        .unwrap()
        .len();
    assert_eq!(archive["signatureBytes"], sig);
    let total: u64 = written.iter().map(|(_, s)| s).sum::<u64>() + index_bytes.len() as u64 + sig;
    assert_eq!(archive["totalBytes"], total);
    // Media of 3 MiB: every volume once, in order, none over the size.
    let media = archive["media"].as_array().unwrap();
    assert!(media.len() >= 2, "{archive}");
    let listed: Vec<&str> = media
        .iter()
        .flat_map(|m| {
            m["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
        })
        .collect();
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(listed, names);
    assert!(media
        .iter()
        .all(|m| m["bytes"].as_u64().unwrap() <= 3 << 20));
}

#[test]
fn the_default_volumes_fit_fat32_and_4gib_says_it_does_not() {
    let w = World::new();
    let (plan, stderr) = dry_run(&w, &[]);
    assert_eq!(
        plan["archive"]["volumeSize"],
        (1u64 << 32) - 1,
        "the default is FAT32's largest file"
    );
    assert!(!stderr.contains("FAT32"), "{stderr}");
    let (plan, stderr) = dry_run(&w, &["--volume-size", "4GiB"]);
    assert_eq!(plan["archive"]["volumeSize"], 1u64 << 32);
    assert!(stderr.contains("do not fit FAT32"), "{stderr}");
    let (plan, _) = dry_run(&w, &["--volume-size", "dvd"]);
    assert_eq!(plan["archive"]["volumeSize"], 4_700_372_992u64);
}
