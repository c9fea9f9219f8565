//! Crash safety: ferry-pack and ferry-unpack push killed with SIGKILL at many points; each
//! re-run finishes the job, reusing what the killed runs finished.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_e2e::{bin, keygen, Run};
use ferry_fixtures::faults::{Fault, FaultProxy};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::sets;
use ferry_format::Index;

const KILLS: u32 = 20;

/// Runs a ferry binary to completion, or kills it (SIGKILL) after `kill_after`.
fn run(name: &str, args: &[&str], kill_after: Option<Duration>) -> Option<Run> {
    let mut child = Command::new(bin(name))
        .args(args)
        .env("REGISTRY_AUTH_FILE", "/nonexistent")
        .env("HOME", "/nonexistent")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(d) = kill_after {
        std::thread::sleep(d);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return None;
        }
    }
    Some(child.wait_with_output().unwrap().into())
}

fn volumes(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // A run killed before it created the directory left nothing.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".tar") {
            let bytes = std::fs::read(e.path()).unwrap();
            out.insert(name, blake3::hash(&bytes).to_hex().to_string());
        }
    }
    out
}

struct Slow {
    /// Held, not read: the registry runs as long as the test needs it.
    _source: TestRegistry,
    target: TestRegistry,
    /// Stalls every blob request, so that runs last long enough to be killed at many points.
    _src_proxy: FaultProxy,
    dst_proxy: FaultProxy,
    seeded: Vec<sets::Seeded>,
    work: tempfile::TempDir,
    key: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl Slow {
    fn new() -> Slow {
        let source = TestRegistry::start().unwrap();
        let target = TestRegistry::start().unwrap();
        let client = ferry_fixtures::seed::client().unwrap();
        let seeded = sets::seed_standard(&client, &source.host, None).unwrap();
        let stall = vec![Fault::Stall(Duration::from_millis(60))];
        let src_proxy =
            FaultProxy::start(&source.host, stall.clone(), u64::MAX, Some("/blobs/")).unwrap();
        let dst_proxy = FaultProxy::start(&target.host, stall, u64::MAX, Some("/blobs/")).unwrap();
        let work = tempfile::tempdir().unwrap();
        let key = keygen(work.path(), "k");
        let through = ferry_e2e::through(&seeded, &source.host, &src_proxy.host);
        let config = work.path().join("isc.yaml");
        std::fs::write(&config, sets::imageset_yaml(&through)).unwrap();
        Slow {
            _source: source,
            target,
            _src_proxy: src_proxy,
            dst_proxy,
            seeded,
            work,
            key,
            config,
        }
    }

    fn pack_args(&self, dir: &std::path::Path) -> Vec<String> {
        ferry_e2e::pack_args(&self.config, dir, &self.key, &["--jobs", "2"])
    }
}

#[test]
fn pack_killed_at_twenty_points_finishes_with_identical_volumes() {
    let s = Slow::new();
    let clean = s.work.path().join("clean");
    let args = s.pack_args(&clean);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let r = run("ferry-pack", &refs, None).unwrap();
    assert!(r.ok, "{}", r.text());
    let clean_volumes = volumes(&clean);
    // A warm second run sets the time scale (the first pays for cold caches).
    let first = started.elapsed();
    std::fs::remove_dir_all(&clean).unwrap();
    let started = Instant::now();
    assert!(run("ferry-pack", &refs, None).unwrap().ok);
    let duration = started.elapsed().min(first);

    // Twenty kill points spread over the run, each in its own directory, each followed by a
    // re-run that must finish with the same volumes a clean run wrote.
    let mut killed = 0;
    let mut reused_runs = 0;
    let mut dir = s.work.path().join("none");
    for i in 1..=KILLS {
        dir = s.work.path().join(format!("killed-{i}"));
        let args = s.pack_args(&dir);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        // Spread over the first 90% of a clean run, so that every point lands before the end.
        let at = duration * 9 * i / (10 * KILLS);
        if run("ferry-pack", &refs, Some(at)).is_some() {
            continue;
        }
        killed += 1;
        // Never a volume that looks complete but is not: a final name means final bytes.
        for (name, b3) in volumes(&dir) {
            assert_eq!(
                Some(&b3),
                clean_volumes.get(&name),
                "{name} looks complete but differs after a kill at {at:?}"
            );
        }
        assert!(!dir.join("ferry-index.json").exists());
        let rerun = run("ferry-pack", &refs, None).unwrap();
        assert!(rerun.ok, "re-run after a kill at {at:?}: {}", rerun.text());
        if rerun.stderr.contains("resuming:") {
            reused_runs += 1;
        }
        assert_eq!(
            volumes(&dir),
            clean_volumes,
            "volumes after a kill at {at:?} differ from a clean run"
        );
    }
    assert!(
        killed >= 15,
        "only {killed} runs were killed mid-way (run lasted {duration:?})"
    );
    assert!(
        reused_runs >= 5,
        "only {reused_runs} re-runs reused downloaded blobs"
    );
    let pubkey = format!("{}.pub", s.key.display());
    let v = ferry_e2e::ferry(
        "ferry-unpack",
        &["verify", dir.to_str().unwrap(), "--trust", &pubkey],
    );
    assert!(v.ok, "{}", v.text());
    eprintln!("pack: {killed} kills over a {duration:?} run, {reused_runs} re-runs reused blobs");
}

#[test]
fn push_killed_at_twenty_points_never_leaves_a_dangling_manifest() {
    let s = Slow::new();
    let archive = s.work.path().join("archive");
    let args = s.pack_args(&archive);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(run("ferry-pack", &refs, None).unwrap().ok);
    let index =
        Index::from_slice(&std::fs::read(archive.join("ferry-index.json")).unwrap()).unwrap();
    let pubkey = format!("{}.pub", s.key.display());
    let to = format!("{}/mirror", s.dst_proxy.host);
    let push_args = [
        "push",
        archive.to_str().unwrap(),
        "--trust",
        &pubkey,
        "--to",
        &to,
        "-j",
        "2",
    ];

    // Clean pushes elsewhere, to time it (the faster of two sets the time scale).
    let mut duration = Duration::MAX;
    for ns in ["clean", "clean2"] {
        let started = Instant::now();
        let clean_to = format!("{}/{ns}", s.dst_proxy.host);
        let clean = run(
            "ferry-unpack",
            &[
                "push",
                archive.to_str().unwrap(),
                "--trust",
                &pubkey,
                "--to",
                &clean_to,
                "-j",
                "2",
            ],
            None,
        )
        .unwrap();
        assert!(clean.ok, "{}", clean.text());
        duration = duration.min(started.elapsed());
    }

    let client = ferry_fixtures::seed::client().unwrap();
    let direct =
        |repo: &str| ferry_registry::Repo::new(s.target.host.clone(), format!("mirror/{repo}"));
    let mut killed = 0;
    for i in 1..=KILLS {
        // Each run is killed after a slice of a clean run's time; together they cover it.
        let at = duration * (1 + i % 3) / (KILLS + 2);
        if run("ferry-unpack", &push_args, Some(at)).is_none() {
            killed += 1;
        }
        // No manifest at the target whose blobs or children are missing.
        for img in &index.images {
            let repo = direct(&img.repository);
            for m in &index.manifests {
                if client
                    .manifest_digest(&repo, &m.digest.to_string())
                    .unwrap()
                    .is_none()
                {
                    continue;
                }
                for b in &m.blobs {
                    assert!(
                        client.blob_exists(&repo, b).unwrap(),
                        "kill {i}: {} has manifest {} without blob {b}",
                        repo,
                        m.digest
                    );
                }
                for c in &m.children {
                    assert!(
                        client
                            .manifest_digest(&repo, &c.to_string())
                            .unwrap()
                            .is_some(),
                        "kill {i}: index {} without child {c}",
                        m.digest
                    );
                }
            }
        }
    }
    assert!(
        killed >= 10,
        "only {killed} pushes were killed mid-way (run lasted {duration:?})"
    );

    // What is confirmed at the target is not uploaded again: the re-run moves exactly the
    // (repository, blob) pairs that are missing.
    let mut missing = std::collections::BTreeSet::new();
    for img in &index.images {
        let repo = direct(&img.repository);
        for b in &index.closure(&img.digest).blobs {
            if !client.blob_exists(&repo, b).unwrap() {
                missing.insert((repo.name.clone(), b.clone()));
            }
        }
    }
    let mut last_args = push_args.to_vec();
    last_args.push("--json");
    let last = run("ferry-unpack", &last_args, None).unwrap();
    assert!(last.ok, "{}", last.text());
    let report: serde_json::Value = serde_json::from_str(&last.stdout).expect("push --json");
    let moved = report["blobs"]["uploaded"].as_u64().unwrap()
        + report["blobs"]["mounted"].as_u64().unwrap();
    assert_eq!(
        moved as usize,
        missing.len(),
        "re-run moved {moved} blobs but {} (repo, blob) pairs were missing",
        missing.len()
    );
    assert_eq!(report["notPushed"].as_array().unwrap().len(), 0);
    assert_eq!(
        report["pushed"].as_array().unwrap().len(),
        index.images.len()
    );
    let missing = missing.len();
    ferry_e2e::assert_all_at(&s.target.host, "mirror", &s.seeded);
    eprintln!(
        "push: {killed} kills over a {duration:?} run; {missing} pairs missing before the last run"
    );
}
