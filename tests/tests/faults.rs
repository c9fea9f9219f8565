//! Registry faults survived: pack and push through a proxy that injects 5xx, 429, resets,
//! stalls, truncated bodies and lying lengths end with the same result as without it. The same
//! proxy, faultless, shows the order in which a pack fetches blobs.

use ferry_e2e::{ferry, keygen, skopeo_raw};
use ferry_fixtures::faults::{standard_schedule, FaultProxy};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::sets;

#[test]
fn pack_and_push_through_injected_faults() {
    let source = TestRegistry::start().unwrap();
    let target = TestRegistry::start().unwrap();
    let client = ferry_fixtures::seed::client().unwrap();
    let seeded = sets::seed_standard(&client, &source.host, None).unwrap();
    let src_proxy = FaultProxy::start(&source.host, standard_schedule(), 40, None).unwrap();
    let dst_proxy = FaultProxy::start(&target.host, standard_schedule(), 40, None).unwrap();

    let work = tempfile::tempdir().unwrap();
    let key = keygen(work.path(), "k");
    let pubkey = format!("{}.pub", key.display());

    // The same job without faults, for the record (figures only: no time is asserted).
    let clean_cfg = work.path().join("clean.yaml");
    std::fs::write(&clean_cfg, sets::imageset_yaml(&seeded)).unwrap();
    let clean_dir = work.path().join("clean");
    let t = std::time::Instant::now();
    let clean = ferry_e2e::pack(&clean_cfg, &clean_dir, &key, &[]);
    assert!(clean.ok, "{}", clean.text());
    let clean_pack = t.elapsed();
    let t = std::time::Instant::now();
    let clean_to = format!("{}/clean", target.host);
    assert!(
        ferry(
            "ferry-unpack",
            &[
                "push",
                clean_dir.to_str().unwrap(),
                "--trust",
                &pubkey,
                "--to",
                &clean_to,
                "-q"
            ]
        )
        .ok
    );
    let clean_push = t.elapsed();

    // The config names the images through the faulty proxy.
    let through = ferry_e2e::through(&seeded, &source.host, &src_proxy.host);
    let config = work.path().join("isc.yaml");
    std::fs::write(&config, sets::imageset_yaml(&through)).unwrap();
    let archive = work.path().join("archive");
    let t = std::time::Instant::now();
    // The big layer (4.5 MiB) goes over 4 connections in ranged segments, through the faults.
    let split = ["--blob-connections-from", "1MiB"];
    let pack = ferry_e2e::pack(&config, &archive, &key, &split);
    assert!(pack.ok, "pack through faults failed: {}", pack.text());
    let faulty_pack = t.elapsed();
    let pack_faults = src_proxy.faults();
    assert!(
        pack_faults >= 5,
        "only {pack_faults} faults injected while packing"
    );
    assert!(pack.stderr.contains("retrying"), "{}", pack.stderr);
    // A blob cut off mid-body was resumed where it stopped (206 Partial Content).
    let resumed = src_proxy
        .stats
        .ranged
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        resumed >= 1,
        "no download was resumed with Range: {}",
        pack.stderr
    );
    // Every one of its 16 segments of 288 KiB was answered 206 at least once.
    assert!(
        resumed >= 16,
        "the big layer was not fetched in ranged segments ({resumed} ranged answers)"
    );
    // Its bytes are exactly those of the clean single-stream pack (the index records the
    // blake3 read back from the volumes, which verify checks again).
    assert_eq!(blob_hashes(&archive), blob_hashes(&clean_dir));
    let verify = ferry(
        "ferry-unpack",
        &["verify", archive.to_str().unwrap(), "--trust", &pubkey],
    );
    assert!(verify.ok, "{}", verify.text());

    let to = format!("{}/mirror", dst_proxy.host);
    let t = std::time::Instant::now();
    let push = ferry_e2e::push(&archive, &key, &to, &[]);
    assert!(push.ok, "push through faults failed: {}", push.text());
    let faulty_push = t.elapsed();
    let push_faults = dst_proxy.faults();
    assert!(
        push_faults >= 5,
        "only {push_faults} faults injected while pushing"
    );
    eprintln!(
        "faults injected: pack {pack_faults} in {} requests, {} retries, {faulty_pack:?} vs {clean_pack:?} clean; push {push_faults} in {} requests, {} retries, {faulty_push:?} vs {clean_push:?} clean",
        src_proxy.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        pack.stderr.matches("retrying").count(),
        dst_proxy.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        push.stderr.matches("retrying").count(),
    );

    // Same result as without faults: every manifest digest equal at the target (read directly).
    ferry_e2e::assert_all_at(&target.host, "mirror", &seeded);
}

/// digest -> blake3 of every blob an archive's index records.
fn blob_hashes(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap();
    index["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["digest"].as_str().unwrap().into(),
                b["blake3"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// A registry (or a proxy before it) that ignores `Range`: a large blob meant for several
/// connections is fetched in one stream instead, and the archive is the same.
#[test]
fn a_registry_that_ignores_ranges_gets_one_stream_per_blob() {
    let source = TestRegistry::start().unwrap();
    let client = ferry_fixtures::seed::client().unwrap();
    let seeded = sets::seed_standard(&client, &source.host, None).unwrap();
    let proxy = FaultProxy::start_without_ranges(&source.host).unwrap();
    let work = tempfile::tempdir().unwrap();
    let key = keygen(work.path(), "k");
    let direct_cfg = work.path().join("direct.yaml");
    std::fs::write(&direct_cfg, sets::imageset_yaml(&seeded)).unwrap();
    let split = ["--blob-connections-from", "1MiB", "--blob-connections", "3"];
    let direct = work.path().join("direct");
    let run = ferry_e2e::pack(&direct_cfg, &direct, &key, &split);
    assert!(run.ok, "{}", run.text());

    let through = ferry_e2e::through(&seeded, &source.host, &proxy.host);
    let config = work.path().join("isc.yaml");
    std::fs::write(&config, sets::imageset_yaml(&through)).unwrap();
    let archive = work.path().join("archive");
    let run = ferry_e2e::pack(&config, &archive, &key, &split);
    assert!(run.ok, "{}", run.text());
    let ranged = proxy
        .stats
        .ranged
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        ranged, 0,
        "the proxy strips Range, yet {ranged} answers were partial"
    );
    let pubkey = format!("{}.pub", key.display());
    let verify = ferry(
        "ferry-unpack",
        &["verify", archive.to_str().unwrap(), "--trust", &pubkey],
    );
    assert!(verify.ok, "{}", verify.text());
    assert_eq!(blob_hashes(&archive), blob_hashes(&direct));
}

/// `--continue-on-error`: what can be packed is packed, the index says the archive is
/// incomplete, failures.json says why, and running again fetches only what is missing.
#[test]
fn continue_on_error_packs_the_rest_and_a_rerun_fetches_only_what_is_missing() {
    use ferry_fixtures::faults::Fault;
    use std::sync::atomic::Ordering::Relaxed;
    let source = TestRegistry::start().unwrap();
    let target = TestRegistry::start().unwrap();
    let client = ferry_fixtures::seed::client().unwrap();
    let seeded = sets::seed_standard(&client, &source.host, None).unwrap();
    // The first three blob downloads fail with 500; after that the proxy forwards.
    let proxy =
        FaultProxy::start(&source.host, vec![Fault::Status(500)], 3, Some("/blobs/")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let key = keygen(work.path(), "k");
    let mut through = ferry_e2e::through(&seeded, &source.host, &proxy.host);
    let mut ghost = through[0].clone();
    ghost.reference = format!("{}/no/such-image:1", proxy.host);
    through.push(ghost);
    let config = work.path().join("isc.yaml");
    std::fs::write(&config, sets::imageset_yaml(&through)).unwrap();
    let archive = work.path().join("archive");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--to",
        archive.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
        "--volume-size",
        "1MiB",
        "--retries",
        "0",
        "--continue-on-error",
        "-q",
    ];

    let first = ferry("ferry-pack", &args);
    assert!(!first.ok);
    assert!(first.stderr.contains("INCOMPLETE"), "{}", first.stderr);
    let index =
        ferry_format::Index::from_slice(&std::fs::read(archive.join("ferry-index.json")).unwrap())
            .unwrap();
    assert!(index.incomplete);
    let failures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(archive.join("failures.json")).unwrap()).unwrap();
    let failures = failures.as_array().unwrap();
    let blob_failures = failures.iter().filter(|f| f["kind"] == "blob").count();
    assert_eq!(blob_failures, 3, "{failures:?}");
    assert!(failures
        .iter()
        .any(|f| f["kind"] == "image" && f["subject"].as_str().unwrap().contains("no/such-image")));
    let left_out: std::collections::BTreeSet<String> = failures
        .iter()
        .flat_map(|f| {
            f["images"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(index.images.len() + left_out.len(), seeded.len());

    // The incomplete archive verifies and pushes what it holds.
    let pubkey = format!("{}.pub", key.display());
    let v = ferry(
        "ferry-unpack",
        &["verify", archive.to_str().unwrap(), "--trust", &pubkey],
    );
    assert!(v.ok, "{}", v.text());
    assert!(v.stdout.contains("INCOMPLETE: image"), "{}", v.stdout);
    let to = format!("{}/partial", target.host);
    let p = ferry(
        "ferry-unpack",
        &[
            "push",
            archive.to_str().unwrap(),
            "--trust",
            &pubkey,
            "--to",
            &to,
            "-q",
        ],
    );
    assert!(p.ok, "{}", p.text());
    for s in &seeded {
        let name = s.reference.replacen(&source.host, &proxy.host, 1);
        let there = skopeo_raw(&format!(
            "{}/partial/{}@{}",
            target.host, s.repository, s.digest
        ))
        .is_some();
        assert_eq!(there, !left_out.contains(&name), "{}", s.reference);
    }

    // Again: only the three failed blobs are downloaded.
    let before = proxy.stats.matched.load(Relaxed);
    let second = ferry("ferry-pack", &args);
    assert!(
        second.stderr.contains("completing the incomplete archive"),
        "{}",
        second.stderr
    );
    assert!(
        archive.join("ferry-index.json").exists(),
        "{}",
        second.text()
    );
    assert_eq!(
        proxy.stats.matched.load(Relaxed) - before,
        3,
        "{}",
        second.stderr
    );
    let index =
        ferry_format::Index::from_slice(&std::fs::read(archive.join("ferry-index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index.images.len(),
        seeded.len(),
        "only the ghost image is still missing"
    );
    assert!(index.incomplete);

    // Without the image that does not exist, the archive completes.
    through.pop();
    std::fs::write(&config, sets::imageset_yaml(&through)).unwrap();
    let third = ferry("ferry-pack", &args);
    assert!(third.ok, "{}", third.text());
    assert!(!archive.join("failures.json").exists());
    let index =
        ferry_format::Index::from_slice(&std::fs::read(archive.join("ferry-index.json")).unwrap())
            .unwrap();
    assert!(!index.incomplete);
    assert!(
        ferry(
            "ferry-unpack",
            &["verify", archive.to_str().unwrap(), "--trust", &pubkey]
        )
        .ok
    );
}

/// Not a fault, but what a pack asks of its source, through the same counting proxy: blobs go
/// largest first, each connection taking the next one as it is free, so with two jobs the first
/// two blobs fetched are the two largest. (A split of the list between the workers started the
/// second one in its middle.)
#[test]
fn the_largest_blobs_are_fetched_first() {
    use ferry_fixtures::faults::Fault;
    let source = TestRegistry::start().unwrap();
    let client = ferry_fixtures::seed::client().unwrap();
    let seeded = sets::seed_standard(&client, &source.host, None).unwrap();
    let proxy = FaultProxy::start(&source.host, vec![Fault::None], 0, None).unwrap();
    let work = tempfile::tempdir().unwrap();
    let key = keygen(work.path(), "k");
    let through = ferry_e2e::through(&seeded, &source.host, &proxy.host);
    let config = work.path().join("isc.yaml");
    std::fs::write(&config, sets::imageset_yaml(&through)).unwrap();
    let archive = work.path().join("archive");
    let run = ferry_e2e::pack(&config, &archive, &key, &["-j", "2"]);
    assert!(run.ok, "{}", run.text());

    ferry_e2e::assert_two_largest_first(&proxy.stats, "GET", &archive);
}
