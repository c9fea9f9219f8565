//! What a push asks of the registry, counted by a proxy in front of a real one: a new blob
//! costs what a bare upload does (the POST that checks for it opens its upload session), a
//! re-run or a partly present target is checked with HEADs (which rewrite no links), a
//! registry that ignores mounts is never sent a blob it already holds, and a tagged manifest
//! goes up with its tag in one PUT.

use ferry_e2e::{keygen, Run};
use ferry_fixtures::faults::{Fault, FaultProxy, Stats};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::sets::{self, Seeded};
use serde_json::Value;

fn pack(
    work: &std::path::Path,
    name: &str,
    key: &std::path::Path,
    set: &[Seeded],
) -> std::path::PathBuf {
    let config = work.join(format!("{name}.yaml"));
    std::fs::write(&config, sets::imageset_yaml(set)).unwrap();
    let dir = work.join(name);
    let run = ferry_e2e::pack(&config, &dir, key, &[]);
    assert!(run.ok, "{}", run.text());
    dir
}

/// The `blobs` counts of a `push --json` run.
fn counts(run: &Run) -> Value {
    assert!(run.ok, "{}", run.text());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    report["blobs"].clone()
}

fn n(v: &Value, key: &str) -> usize {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}")) as usize
}

/// Blobs larger than the unpacker's in-memory limit (4 MiB): streamed from the media.
fn large_blobs(archive: &std::path::Path) -> usize {
    let index: Value =
        serde_json::from_slice(&std::fs::read(archive.join("ferry-index.json")).unwrap()).unwrap();
    index["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["size"].as_u64().unwrap() > 4 * 1024 * 1024)
        .count()
}

/// Requests for the images' repositories (not for the push's record in `ferry-state`) with
/// this method and a path containing `part`, from the `from`-th request the proxy saw on.
fn images(s: &Stats, from: usize, method: &str, part: &str) -> usize {
    let log = s.log.lock().unwrap();
    log[from..]
        .iter()
        .filter(|(m, p)| m == method && p.contains(part) && !p.contains("/ferry-state/"))
        .count()
}

/// How many requests the proxy has seen.
fn seen(s: &Stats) -> usize {
    s.log.lock().unwrap().len()
}

/// A source seeded with the standard set, an empty target, a signing key and a work folder.
struct World {
    _source: TestRegistry,
    target: TestRegistry,
    seeded: Vec<Seeded>,
    work: tempfile::TempDir,
    key: std::path::PathBuf,
}

impl World {
    fn new() -> World {
        let source = TestRegistry::start().unwrap();
        let target = TestRegistry::start().unwrap();
        let client = ferry_fixtures::seed::client().unwrap();
        let seeded = sets::seed_standard(&client, &source.host, None).unwrap();
        let work = tempfile::tempdir().unwrap();
        let key = keygen(work.path(), "k");
        World {
            _source: source,
            target,
            seeded,
            work,
            key,
        }
    }

    /// An archive of these images, named `name`.
    fn pack(&self, name: &str, set: &[Seeded]) -> std::path::PathBuf {
        pack(self.work.path(), name, &self.key, set)
    }

    /// A proxy that forwards to the target and logs every request, and the namespace
    /// `mirror` behind it to push to.
    fn counted_target(&self) -> (FaultProxy, String) {
        let proxy = FaultProxy::start(&self.target.host, vec![Fault::None], 0, None).unwrap();
        let to = format!("{}/mirror", proxy.host);
        (proxy, to)
    }
}

#[test]
fn a_new_blob_costs_two_requests() {
    let w = World::new();
    let (target, seeded, key) = (&w.target, &w.seeded, &w.key);
    let archive = w.pack("all", seeded);
    let (proxy, to) = w.counted_target();
    // One job: the order is fixed, so the counts below are exact.
    let c = counts(&ferry_e2e::push(&archive, key, &to, &["-j", "1", "--json"]));
    let (uploaded, mounted) = (n(&c, "uploaded"), n(&c, "mounted"));
    let s: &Stats = &proxy.stats;
    let (heads, posts) = (
        images(s, 0, "HEAD", "/blobs/"),
        images(s, 0, "POST", "/blobs/uploads/"),
    );
    let (patches, puts) = (
        images(s, 0, "PATCH", "/blobs/"),
        images(s, 0, "PUT", "/blobs/"),
    );
    eprintln!("{uploaded} uploaded, {mounted} mounted: {heads} HEAD, {posts} POST, {patches} PATCH, {puts} PUT");
    assert!(uploaded >= 8 && mounted >= 2, "{c}");
    // A HEAD for the first blob (before the registry was seen to link a blob into the
    // repository that holds it) and one before each mount from another repository: the blob
    // may be there already, and a mount would link it again.
    assert_eq!(heads, 1 + mounted, "{c}");
    // One POST per upload (it checked for the blob and opened the session), one per mount,
    // and the probe's two: a self-mount of a blob the repository holds, and of one it lacks.
    assert_eq!(posts, uploaded + mounted + 2, "{c}");
    assert_eq!(puts, uploaded, "{c}");
    // A streamed blob goes in the PUT that commits it too, with no PATCH before it.
    assert!(large_blobs(&archive) >= 1, "no blob was streamed");
    assert_eq!(patches, 0, "{c}");
    ferry_e2e::assert_all_at(&target.host, "mirror", seeded);

    // Again: everything is there, one HEAD per (repository, blob), nothing sent, and no
    // POST (a mount answered "there" rewrites the blob's link, which a re-run must not do
    // to content that clients pull).
    let before = seen(s);
    let again = counts(&ferry_e2e::push(&archive, key, &to, &["--json"]));
    assert_eq!(n(&again, "uploaded") + n(&again, "mounted"), 0, "{again}");
    assert_eq!(n(&again, "skipped"), uploaded + mounted, "{again}");
    let blob_requests = |method: &str| images(s, before, method, "/blobs/");
    assert_eq!(
        blob_requests("PUT") + blob_requests("PATCH"),
        0,
        "blobs were sent again"
    );
    assert_eq!(blob_requests("POST"), 0, "a re-run asked for mounts");
    assert_eq!(blob_requests("HEAD"), uploaded + mounted, "{again}");
}

#[test]
fn a_partly_present_target_goes_back_to_head_checks() {
    let w = World::new();
    let (target, seeded, key) = (&w.target, &w.seeded, &w.key);
    let all = w.pack("all", seeded);
    let (proxy, to) = w.counted_target();
    // Half the images first, then all of them: the second push meets blobs that are there.
    let half = w.pack("half", &seeded[seeded.len() / 2..]);
    counts(&ferry_e2e::push(&half, key, &to, &["--json"]));
    let before = seen(&proxy.stats);
    let c = counts(&ferry_e2e::push(&all, key, &to, &["-j", "1", "--json"]));
    let (uploaded, mounted, skipped) = (n(&c, "uploaded"), n(&c, "mounted"), n(&c, "skipped"));
    assert!(uploaded >= 3 && skipped >= 3, "{c}");
    let posts = images(&proxy.stats, before, "POST", "/blobs/uploads/");
    // One POST per upload and per mount, the probe's two after the first upload, and at most
    // one that found a blob present (after which the push checks with HEADs): never one per
    // skipped blob.
    let base = uploaded + mounted + 2;
    assert!(
        (base..=base + 1).contains(&posts),
        "{posts} POSTs for {c}: the push kept asking for self-mounts of present blobs"
    );
    ferry_e2e::assert_all_at(&target.host, "mirror", seeded);
}

#[test]
fn a_registry_that_ignores_mounts_is_never_sent_a_blob_it_holds() {
    let w = World::new();
    let (target, seeded, key) = (&w.target, &w.seeded, &w.key);
    // app-a first: its base layers are then at the target when the rest arrives.
    let first = w.pack("first", &seeded[..1]);
    let all = w.pack("all", seeded);
    let proxy = FaultProxy::start_ignoring_mounts(&target.host).unwrap();

    // The same two pushes, into a namespace of the registry itself and one behind the proxy.
    let direct = format!("{}/direct", target.host);
    let behind = format!("{}/behind", proxy.host);
    for to in [&direct, &behind] {
        let c = counts(&ferry_e2e::push(&first, key, to, &["--json"]));
        assert!(n(&c, "uploaded") >= 3, "{c}");
    }
    let honoured = counts(&ferry_e2e::push(&all, key, &direct, &["--json"]));
    let ignored = counts(&ferry_e2e::push(&all, key, &behind, &["--json"]));
    assert!(
        n(&honoured, "skipped") >= 3 && n(&honoured, "mounted") >= 2,
        "{honoured}"
    );
    // What app-a brought is skipped behind the proxy too; what would have been mounted is
    // uploaded instead.
    assert_eq!(n(&ignored, "skipped"), n(&honoured, "skipped"), "{ignored}");
    assert_eq!(n(&ignored, "mounted"), 0, "{ignored}");
    assert_eq!(
        n(&ignored, "uploaded"),
        n(&honoured, "uploaded") + n(&honoured, "mounted"),
        "{ignored} vs {honoured}"
    );
    ferry_e2e::assert_all_at(&target.host, "behind", seeded);
}

/// A tagged image manifest goes up under its tag, which sets both in one request (as a client
/// pushing `repo:tag` does): one manifest PUT per manifest and none for the tags after it.
/// A digest-only image and an index's children go by digest; every tag ends up at the target.
#[test]
fn a_tagged_manifest_and_its_tag_cost_one_put() {
    let w = World::new();
    let archive = w.pack("all", &w.seeded);
    let (proxy, to) = w.counted_target();
    let run = ferry_e2e::push(&archive, &w.key, &to, &["--json"]);
    assert!(run.ok, "{}", run.text());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let pushed = n(&report["manifests"], "pushed");
    let tagged: Vec<&Seeded> = w.seeded.iter().filter(|s| s.tag.is_some()).collect();
    assert!(
        tagged.len() >= 3 && tagged.len() < w.seeded.len(),
        "{:?}",
        w.seeded
    );
    assert_eq!(n(&report, "tagsPushed"), tagged.len(), "{report}");
    let puts = images(&proxy.stats, 0, "PUT", "/manifests/");
    assert_eq!(puts, pushed, "{pushed} manifests and {} tags", tagged.len());
    let log = proxy.stats.log.lock().unwrap().clone();
    for s in &tagged {
        let path = |r: &str| format!("/v2/mirror/{}/manifests/{r}", s.repository);
        let count = |r: &str| {
            log.iter()
                .filter(|(m, p)| m == "PUT" && *p == path(r))
                .count()
        };
        assert_eq!(count(s.tag.as_deref().unwrap()), 1, "{}", s.reference);
        assert_eq!(count(&s.digest.to_string()), 0, "{}", s.reference);
    }
    ferry_e2e::assert_all_at(&w.target.host, "mirror", &w.seeded);
}

/// Blobs go largest first, each connection taking the next one as it is free: with two jobs,
/// the first two blobs asked about are the two largest. (A push that split its list between
/// its workers started the second one in the middle of the list, and ended on one connection
/// working through the rest of its share while the others idled.)
#[test]
fn the_largest_blobs_start_first() {
    let w = World::new();
    let archive = w.pack("all", &w.seeded);
    let (proxy, to) = w.counted_target();
    counts(&ferry_e2e::push(
        &archive,
        &w.key,
        &to,
        &["-j", "2", "--json"],
    ));
    // Before the push has seen the target answer self-mounts, each blob starts with a HEAD
    // (and a blob needed elsewhere gets another before each mount: distinct digests count).
    ferry_e2e::assert_two_largest_first(&proxy.stats, "HEAD", &archive);
}

/// A streamed blob (over 4 MiB) whose bytes on the media fail the check is the media's fault,
/// not the target's: it is never committed from those bytes, and with a parity volume it is
/// read again rebuilt and pushed.
#[test]
fn a_streamed_blob_the_media_check_refuses_is_rebuilt_from_parity() {
    use ferry_format::Index;
    let w = World::new();
    let big: Vec<Seeded> = w
        .seeded
        .iter()
        .filter(|s| s.repository == "data/big")
        .cloned()
        .collect();
    assert_eq!(big.len(), 1, "the standard set has data/big");
    let config = w.work.path().join("big.yaml");
    std::fs::write(&config, sets::imageset_yaml(&big)).unwrap();
    let archive = w.work.path().join("big");
    let run = ferry_e2e::pack(&config, &archive, &w.key, &["--parity", "1"]);
    assert!(run.ok, "{}", run.text());
    let index =
        Index::from_slice(&std::fs::read(archive.join("ferry-index.json")).unwrap()).unwrap();
    let layer = index.blobs.iter().max_by_key(|b| b.size).unwrap();
    assert!(
        layer.size > 4 * 1024 * 1024,
        "{} is not streamed",
        layer.digest
    );
    let part = &layer.parts[0];
    let vol = archive.join(&index.volumes[part.volume as usize].name);
    let mut bytes = std::fs::read(&vol).unwrap();
    bytes[(part.offset + 1000) as usize] ^= 1;
    std::fs::write(&vol, bytes).unwrap();

    let to = format!("{}/mirror", w.target.host);
    let c = counts(&ferry_e2e::push(&archive, &w.key, &to, &["--json"]));
    assert_eq!(n(&c, "rebuilt"), 1, "{c}");
    ferry_e2e::assert_all_at(&w.target.host, "mirror", &big);
}
