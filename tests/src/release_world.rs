//! A release world: a source registry seeded with real-shaped OpenShift release payloads, a
//! target registry, a loopback update service and signature store serving the graph and
//! signatures made with a throwaway gpg key, and a work directory with a ferry signing key.
//! Shared by the release, install and extract tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_fixtures::gpg::GpgKey;
use ferry_fixtures::http::{Routes, StaticServer};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::release::{
    self, ReleaseSet, ReleaseSpec, CHANNEL, COMPONENT_REPO, RELEASE_REPO,
};

use crate::{digest_of, ferry, realdata, skopeo_raw, Run, Workdir};

pub struct ReleaseWorld {
    pub source: TestRegistry,
    pub target: TestRegistry,
    pub set: ReleaseSet,
    pub gpg: GpgKey,
    pub server: StaticServer,
    pub work: Workdir,
    pub keyring: PathBuf,
}

pub const VERSIONS: [&str; 4] = ["4.15.0", "4.15.1", "4.15.2", "4.15.3"];

impl ReleaseWorld {
    /// `components` of the real image-references' names (all 183 when `None`), each version
    /// for each of `arches`, with `multi` payloads too; a plain target registry.
    pub fn new(
        versions: &[&str],
        arches: &[&str],
        multi: bool,
        components: Option<usize>,
    ) -> ReleaseWorld {
        let mut names = release::component_names(&realdata()).expect("real image-references");
        assert_eq!(names.len(), 183);
        if let Some(n) = components {
            names.truncate(n);
        }
        let target = TestRegistry::start().expect("target registry");
        ReleaseWorld::seed(versions, arches, multi, names, target)
    }

    /// The same with the components named and the target given (TLS, auth, ...).
    pub fn seed(
        versions: &[&str],
        arches: &[&str],
        multi: bool,
        names: Vec<String>,
        target: TestRegistry,
    ) -> ReleaseWorld {
        let source = TestRegistry::start().expect("source registry");
        let spec = ReleaseSpec {
            versions: versions.iter().map(|s| s.to_string()).collect(),
            arches: arches.iter().map(|s| s.to_string()).collect(),
            multi,
            components: names,
        };
        let client = ferry_fixtures::seed::client().unwrap();
        let set = release::seed_releases(&client, &source.host, &spec).expect("seed releases");
        let gpg = GpgKey::generate("ferry release test").expect("gpg key");
        let mut routes: Routes = release::signature_routes(&set, &gpg, "/sigs")
            .unwrap()
            .into_iter()
            .collect();
        let mut graph_arches: Vec<&str> = arches.to_vec();
        if multi {
            graph_arches.push("multi");
        }
        for a in graph_arches {
            routes.insert(format!("/graph?arch={a}&channel={CHANNEL}"), set.graph(a));
        }
        let server = StaticServer::start(routes).unwrap();
        let work = Workdir::new("ferry-rel-");
        let keyring = gpg.write_public(&work.path("release-keys.asc")).unwrap();
        ReleaseWorld {
            source,
            target,
            set,
            gpg,
            server,
            work,
            keyring,
        }
    }

    /// Writes an image set config with a platform section.
    pub fn config(&self, name: &str, platform: &str) -> PathBuf {
        let p = self.work.path(name);
        std::fs::write(
            &p,
            format!(
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n{platform}"
            ),
        )
        .unwrap();
        p
    }

    pub fn pack_args(&self, config: &Path, to: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--config".into(),
            config.display().to_string(),
            "--to".into(),
            to.display().to_string(),
            "--sign-key".into(),
            self.work.key.display().to_string(),
            "--volume-size".into(),
            "4MiB".into(),
            "--graph-url".into(),
            format!("{}/graph", self.server.url()),
            "--signature-url".into(),
            format!("{}/sigs", self.server.url()),
            "--release-keyring".into(),
            self.keyring.display().to_string(),
            "-q".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    pub fn pack(&self, config: &Path, to: &Path, extra: &[&str]) -> Run {
        let args = self.pack_args(config, to, extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ferry("ferry-pack", &refs)
    }

    pub fn verify(&self, dir: &Path) -> Run {
        ferry(
            "ferry-unpack",
            &[
                "verify",
                dir.to_str().unwrap(),
                "--trust",
                &self.work.pubkey(),
            ],
        )
    }

    pub fn push(&self, dir: &Path, ns: &str, manifests: &Path) -> Run {
        self.push_with(dir, ns, manifests, &[])
    }

    /// `push` with `extra` flags (`--ca-file`, ...).
    pub fn push_with(&self, dir: &Path, ns: &str, manifests: &Path, extra: &[&str]) -> Run {
        let to = format!("{}/{ns}", self.target.host);
        let pubkey = self.work.pubkey();
        let mut args = vec![
            "push",
            dir.to_str().unwrap(),
            "--trust",
            &pubkey,
            "--to",
            &to,
            "--manifests-dir",
            manifests.to_str().unwrap(),
            "-q",
        ];
        args.extend_from_slice(extra);
        ferry("ferry-unpack", &args)
    }

    /// Asserts with skopeo that every release (by digest and tag) and every component of
    /// the given (version, arch) pairs is at `<target>/<ns>`, with its source digest.
    pub fn assert_at_target(&self, ns: &str, which: &[(String, String)]) {
        let mut refs: BTreeSet<(String, String)> = BTreeSet::new();
        let t = &self.target.host;
        for (v, a) in which {
            let r = self.set.get(v, a);
            refs.insert((
                format!("{t}/{ns}/{RELEASE_REPO}@{}", r.digest),
                r.digest.to_string(),
            ));
            refs.insert((
                format!("{t}/{ns}/{RELEASE_REPO}:{}", r.tag),
                r.digest.to_string(),
            ));
            for c in r.components.iter().chain(&r.children) {
                let repo = if r.children.contains(c) {
                    RELEASE_REPO
                } else {
                    COMPONENT_REPO
                };
                refs.insert((format!("{t}/{ns}/{repo}@{c}"), c.to_string()));
            }
        }
        let refs: Vec<(String, String)> = refs.into_iter().collect();
        let missing: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = refs
                .chunks(refs.len().div_ceil(4).max(1))
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .filter(|(r, d)| {
                                skopeo_raw(r).map(|b| digest_of(&b)) != Some(d.clone())
                            })
                            .map(|(r, _)| r.clone())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(
            missing.is_empty(),
            "{} of {} not at the target, e.g. {:?}",
            missing.len(),
            refs.len(),
            &missing[..missing.len().min(3)]
        );
    }
}
