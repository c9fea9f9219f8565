//! The end-to-end harness: locating the built binaries, running them, making keys, and
//! asking skopeo (the independent client) what a registry holds.

pub mod release_world;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::sets::{self, Seeded};

/// `../shared/realdata`, relative to the repository root.
pub fn realdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata")
}

/// Path of a workspace binary (`ferry-pack`, `ferry-unpack`), built next to the test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built; run `cargo build --workspace` first (or `bash .ci/run`)",
        p.display()
    );
    p
}

/// Result of running a command.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A ferry binary's command with loopback-only networking (proxies cleared) and no auth
/// file, for a test that drives the process itself (kills it, reads it as it runs).
pub fn ferry_command(name: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin(name));
    c.args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env("REGISTRY_AUTH_FILE", "/nonexistent")
        .env("HOME", "/nonexistent")
        .env_remove("XDG_RUNTIME_DIR");
    c
}

/// Runs a ferry binary (see [`ferry_command`]) to its end.
pub fn ferry(name: &str, args: &[&str]) -> Run {
    ferry_command(name, args)
        .output()
        .expect("run ferry")
        .into()
}

/// ferry-pack arguments for `config` into `to`, signed with `key`, in 1 MiB volumes (so that
/// the fixture's big layer is split), plus `extra`.
pub fn pack_args(config: &Path, to: &Path, key: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--config",
        config.to_str().expect("utf-8 path"),
        "--to",
        to.to_str().expect("utf-8 path"),
        "--sign-key",
        key.to_str().expect("utf-8 path"),
        "--volume-size",
        "1MiB",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs ferry-pack with [`pack_args`] (quietly).
pub fn pack(config: &Path, to: &Path, key: &Path, extra: &[&str]) -> Run {
    let mut extra = extra.to_vec();
    extra.push("-q");
    let args = pack_args(config, to, key, &extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ferry("ferry-pack", &refs)
}

/// Runs `ferry-unpack push DIR --trust KEY.pub --to TO -q` plus `extra`.
pub fn push(dir: &Path, key: &Path, to: &str, extra: &[&str]) -> Run {
    let pubkey = format!("{}.pub", key.display());
    let mut args = vec![
        "push",
        dir.to_str().expect("utf-8 path"),
        "--trust",
        &pubkey,
        "--to",
        to,
        "-q",
    ];
    args.extend_from_slice(extra);
    ferry("ferry-unpack", &args)
}

/// Asserts with skopeo that every seeded image is at `target_host/namespace`, by digest and
/// by tag, with its source digest.
pub fn assert_all_at(target_host: &str, namespace: &str, seeded: &[Seeded]) {
    for s in seeded {
        let at = skopeo_raw(&format!(
            "{target_host}/{namespace}/{}@{}",
            s.repository, s.digest
        ))
        .unwrap_or_else(|| panic!("{} missing at {target_host}/{namespace}", s.reference));
        assert_eq!(digest_of(&at), s.digest.to_string(), "{}", s.reference);
        if let Some(t) = &s.tag {
            let tagged = skopeo_raw(&format!("{target_host}/{namespace}/{}:{t}", s.repository))
                .unwrap_or_else(|| panic!("tag {t} of {} missing", s.repository));
            assert_eq!(
                digest_of(&tagged),
                s.digest.to_string(),
                "{}:{t}",
                s.repository
            );
        }
    }
}

/// Asserts that the first two distinct blobs a proxy saw asked for with `method` (on
/// `/blobs/DIGEST` paths, the push's `ferry-state` record aside) are the two largest layers or
/// configs of the archive in `dir`: what a pack or push that starts the largest first asks for
/// with two jobs.
pub fn assert_two_largest_first(stats: &ferry_fixtures::faults::Stats, method: &str, dir: &Path) {
    use ferry_format::{Digest, Index};
    let index = Index::from_slice(&std::fs::read(dir.join("ferry-index.json")).unwrap()).unwrap();
    let mut asked: Vec<Digest> = Vec::new();
    for (m, p) in stats.log.lock().unwrap().iter() {
        if m != method || !p.contains("/blobs/") || p.contains("/ferry-state/") {
            continue;
        }
        let d: Digest = p.rsplit('/').next().unwrap().parse().unwrap();
        if !asked.contains(&d) {
            asked.push(d);
        }
    }
    let size = |d: &Digest| {
        index
            .blob(d)
            .unwrap_or_else(|| panic!("{d} not in the index"))
            .size
    };
    let mut first: Vec<u64> = asked.iter().take(2).map(size).collect();
    let mut sizes: Vec<u64> = index
        .blobs
        .iter()
        .filter(|b| index.manifest(&b.digest).is_none())
        .map(|b| b.size)
        .collect();
    first.sort_unstable_by(|a, b| b.cmp(a));
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(
        first,
        sizes[..2],
        "the first two blobs asked for with {method}"
    );
}

/// Makes an ed25519 key pair with ssh-keygen; returns the private key path (`.pub` beside it).
pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen failed");
    key
}

/// `skopeo inspect --raw` of a reference: the manifest bytes, or None if it is not there.
pub fn skopeo_raw(reference: &str) -> Option<Vec<u8>> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--retry-times=0"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo (apt-get install -y skopeo)");
    out.status.success().then_some(out.stdout)
}

/// sha256 digest of bytes, as `sha256:<hex>`.
pub fn digest_of(bytes: &[u8]) -> String {
    ferry_format::Digest::of(bytes).to_string()
}

/// Copies an archive directory (flat) so that a test can damage its copy.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// The same images, named through another host (a proxy in front of their registry).
pub fn through(seeded: &[Seeded], from: &str, to: &str) -> Vec<Seeded> {
    seeded
        .iter()
        .map(|s| Seeded {
            reference: s.reference.replacen(from, to, 1),
            ..s.clone()
        })
        .collect()
}

/// A source registry seeded with the standard set, an empty target, and a working directory.
pub struct World {
    pub source: TestRegistry,
    pub target: TestRegistry,
    pub seeded: Vec<Seeded>,
    pub work: tempfile::TempDir,
    pub key: PathBuf,
    pub config: PathBuf,
}

impl World {
    pub fn new() -> World {
        let source = TestRegistry::start().expect("source registry");
        let target = TestRegistry::start().expect("target registry");
        let client = ferry_fixtures::seed::client().expect("client");
        let seeded = sets::seed_standard(&client, &source.host, Some(&realdata())).expect("seed");
        let work = tempfile::Builder::new()
            .prefix("ferry-e2e-")
            .tempdir()
            .expect("tempdir");
        let key = keygen(work.path(), "ferry.key");
        let config = work.path().join("imageset.yaml");
        std::fs::write(&config, sets::imageset_yaml(&seeded)).expect("write config");
        World {
            source,
            target,
            seeded,
            work,
            key,
            config,
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.work.path().join(p)
    }

    pub fn pubkey(&self) -> String {
        format!("{}.pub", self.key.display())
    }

    /// Packs the config into `dir` with 1 MiB volumes.
    pub fn pack(&self, dir: &Path) -> Run {
        pack(&self.config, dir, &self.key, &[])
    }

    pub fn verify(&self, dir: &Path) -> Run {
        ferry(
            "ferry-unpack",
            &["verify", dir.to_str().unwrap(), "--trust", &self.pubkey()],
        )
    }

    /// Pushes into `<target>/<namespace>`.
    pub fn push(&self, dir: &Path, namespace: &str) -> Run {
        let to = format!("{}/{namespace}", self.target.host);
        ferry(
            "ferry-unpack",
            &[
                "push",
                dir.to_str().unwrap(),
                "--trust",
                &self.pubkey(),
                "--to",
                &to,
                "--quiet",
            ],
        )
    }

    /// The target reference of a seeded image, by digest.
    pub fn target_ref(&self, s: &Seeded, namespace: &str) -> String {
        format!(
            "{}/{namespace}/{}@{}",
            self.target.host, s.repository, s.digest
        )
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

/// Validates a YAML document against the `openAPIV3Schema` of a real CRD in
/// `realdata/crds` (the version served by the document's apiVersion). Returns the problems.
pub fn crd_problems(crd_file: &str, document: &[u8]) -> Vec<String> {
    let crd_text = std::fs::read_to_string(realdata().join("crds").join(crd_file))
        .unwrap_or_else(|e| panic!("read CRD {crd_file}: {e}"));
    let crd: serde_json::Value = serde_saphyr::from_str(&crd_text).expect("CRD YAML");
    let doc: serde_json::Value =
        serde_saphyr::from_str(std::str::from_utf8(document).expect("utf-8")).expect("YAML");
    let kind = crd["spec"]["names"]["kind"].as_str().expect("CRD kind");
    assert_eq!(doc["kind"], kind, "document kind");
    let group = crd["spec"]["group"].as_str().expect("group");
    let api = doc["apiVersion"].as_str().expect("apiVersion");
    let (g, v) = api.split_once('/').expect("group/version");
    assert_eq!(g, group, "apiVersion group");
    let version = crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|x| x["name"] == v)
        .unwrap_or_else(|| panic!("{crd_file} serves no version {v}"));
    let schema = &version["schema"]["openAPIV3Schema"];
    assert!(schema.is_object(), "{crd_file} has no openAPIV3Schema");
    let validator = jsonschema::validator_for(schema).expect("schema compiles");
    validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// A test's private working directory, with an ed25519 signing key `ferry.key` in it.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    /// The private key (`.pub` beside it).
    pub key: PathBuf,
}

impl Workdir {
    pub fn new(prefix: &str) -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        let key = keygen(dir.path(), "ferry.key");
        Workdir { dir, key }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Path of the public key, as a string for command lines.
    pub fn pubkey(&self) -> String {
        format!("{}.pub", self.key.display())
    }
}

/// A running `ferry-unpack serve`, stopped with SIGTERM when dropped.
pub struct Served {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    log: Arc<Mutex<String>>,
}

impl Served {
    pub fn start(dirs: &[&Path], pubkey: &str, extra: &[&str]) -> Served {
        let mut cmd = Command::new(bin("ferry-unpack"));
        cmd.arg("serve");
        cmd.args(dirs);
        cmd.args(["--trust", pubkey, "--listen", "127.0.0.1:0"]);
        cmd.args(extra);
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferry-unpack serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.split("://").nth(1) {
                    let _ = tx.send(at.split('/').next().unwrap_or("").to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let host = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not start: {}", log.lock().unwrap()));
        Served { child, host, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM; returns whether it exited successfully.
    pub fn stop(mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
