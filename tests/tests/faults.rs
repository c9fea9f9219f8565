//! Registry faults survived: pack and push through a proxy that injects 5xx, 429, resets,
//! stalls, truncated bodies and lying lengths end with the same result as without it.

use ferry_e2e::{digest_of, ferry, keygen, skopeo_raw};
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
    // The config names the images through the faulty proxy.
    let through: Vec<_> = seeded
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.reference = s.reference.replacen(&source.host, &src_proxy.host, 1);
            s
        })
        .collect();
    let config = work.path().join("isc.yaml");
    std::fs::write(&config, sets::imageset_yaml(&through)).unwrap();
    let archive = work.path().join("archive");
    let pack = ferry(
        "ferry-pack",
        &[
            "--config",
            config.to_str().unwrap(),
            "--to",
            archive.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
            "--volume-size",
            "1MiB",
            "--quiet",
        ],
    );
    assert!(pack.ok, "pack through faults failed: {}", pack.text());
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

    let pubkey = format!("{}.pub", key.display());
    let to = format!("{}/mirror", dst_proxy.host);
    let push = ferry(
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
    assert!(push.ok, "push through faults failed: {}", push.text());
    let push_faults = dst_proxy.faults();
    assert!(
        push_faults >= 5,
        "only {push_faults} faults injected while pushing"
    );
    eprintln!(
        "faults injected: {pack_faults} while packing ({} requests), {push_faults} while pushing ({} requests)",
        src_proxy.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        dst_proxy.stats.requests.load(std::sync::atomic::Ordering::Relaxed)
    );

    // Same result as without faults: every manifest digest equal at the target (read directly).
    for s in &seeded {
        let dst = skopeo_raw(&format!(
            "{}/mirror/{}@{}",
            target.host, s.repository, s.digest
        ))
        .unwrap_or_else(|| panic!("{} missing", s.reference));
        assert_eq!(digest_of(&dst), s.digest.to_string());
        if let Some(t) = &s.tag {
            let tagged =
                skopeo_raw(&format!("{}/mirror/{}:{t}", target.host, s.repository)).unwrap();
            assert_eq!(digest_of(&tagged), s.digest.to_string());
        }
    }
}
