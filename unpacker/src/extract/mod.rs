//! `ferry-unpack extract`: a command binary of a release payload (`openshift-install`,
//! `openshift-baremetal-install`, `oc`, `ccoctl`) taken from the verified media, with the
//! mirrored release image pullspec and the release version written into its placeholders as
//! `oc adm release extract --command` does, so that the installer installs exactly the
//! mirrored release. Nothing but the release image, its image-references and the one
//! component's layers is read; each is checked against the signed index.
//!
//! - [`payload`]: which release, its architecture and its components;
//! - [`layers`]: one file out of an image's layers (whiteouts honoured, never unpacked);
//! - [`inject`]: the placeholders filled while the binary streams to disk.

pub mod inject;
pub mod layers;
pub mod payload;

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ferry_format::archive::ArchiveSet;
use ferry_format::hash::DualHasher;
use ferry_format::index::Release;
use ferry_format::Digest;
use serde::Serialize;

use crate::target::Target;
use inject::{Injector, Placeholder, Replacement};

/// The commands a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    OpenshiftInstall,
    OpenshiftBaremetalInstall,
    Oc,
    Ccoctl,
}

impl std::str::FromStr for Command {
    type Err = String;
    fn from_str(s: &str) -> Result<Command, String> {
        Command::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Command::ALL.iter().map(|c| c.name()).collect();
                format!("{s:?}: expected one of {}", names.join(", "))
            })
    }
}

/// A component image and the file in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub component: &'static str,
    pub path: String,
}

impl Command {
    pub const ALL: [Command; 4] = [
        Command::OpenshiftInstall,
        Command::OpenshiftBaremetalInstall,
        Command::Oc,
        Command::Ccoctl,
    ];

    /// The file name written (and the `--command` value).
    pub fn name(self) -> &'static str {
        match self {
            Command::OpenshiftInstall => "openshift-install",
            Command::OpenshiftBaremetalInstall => "openshift-baremetal-install",
            Command::Oc => "oc",
            Command::Ccoctl => "ccoctl",
        }
    }

    /// Where the payload keeps the command, in the order tried: the `-artifacts` image's
    /// build for this machine (`host_arch`) first, as oc prefers, then the release
    /// architecture's own binary.
    pub fn sources(self, host_arch: &str) -> Vec<Source> {
        let src = |component, path: &str| Source {
            component,
            path: path.to_string(),
        };
        match self {
            Command::OpenshiftInstall => vec![
                src(
                    "installer-artifacts",
                    &format!("usr/share/openshift/linux_{host_arch}/openshift-install"),
                ),
                src("installer", "usr/bin/openshift-install"),
            ],
            Command::OpenshiftBaremetalInstall => {
                vec![src("baremetal-installer", "usr/bin/openshift-install")]
            }
            Command::Oc => vec![
                src(
                    "cli-artifacts",
                    &format!("usr/share/openshift/linux_{host_arch}/oc"),
                ),
                src("cli", "usr/bin/oc"),
            ],
            Command::Ccoctl => vec![src("cloud-credential-operator", "usr/bin/ccoctl")],
        }
    }

    /// The placeholders the command has (oc's InjectReleaseImage / InjectReleaseVersion).
    pub fn placeholders(self) -> &'static [Placeholder] {
        match self {
            Command::OpenshiftInstall | Command::OpenshiftBaremetalInstall => {
                &[Placeholder::ReleaseImage, Placeholder::ReleaseVersion]
            }
            Command::Oc => &[Placeholder::ReleaseVersion],
            Command::Ccoctl => &[],
        }
    }
}

/// This machine's architecture in the registry's words (`amd64`, `arm64`, ...).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// What to extract.
#[derive(Debug)]
pub struct Request<'a> {
    /// `VERSION` or `VERSION-ARCH`.
    pub release: &'a str,
    pub command: Command,
    pub to: &'a Path,
    /// Where the release is mirrored (its pullspec goes into the binary).
    pub target: &'a Target,
    /// The architecture taken from a `multi` release (and of the `-artifacts` builds).
    pub arch: &'a str,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Extracted {
    pub path: PathBuf,
    pub command: Command,
    pub release: String,
    pub architecture: String,
    pub component: String,
    pub component_digest: Digest,
    pub source_path: String,
    pub layer: Digest,
    pub size: u64,
    /// Of the file written (after injection).
    pub sha256: Digest,
    pub injected: Vec<Replacement>,
}

/// Extracts the command (see the module docs). Nothing is left in `to` on failure.
pub fn extract(archives: &ArchiveSet, req: &Request<'_>) -> Result<Extracted> {
    let release = payload::select(archives.index(), req.release)?;
    let payload = payload::open(archives, release, req.arch)?;
    let what = format!("release {} ({})", release.version, payload.architecture);
    let injected = values(req.command, release, req.target);
    let mut tried = Vec::new();
    for source in req.command.sources(req.arch) {
        let Some(digest) = payload.components.get(source.component) else {
            tried.push(format!("the payload has no {} component", source.component));
            continue;
        };
        let layers = payload::image_layers(archives, digest, &payload.architecture)
            .with_context(|| format!("reading component {}", source.component))?;
        let out = TempOut::create(req.to, req.command.name())?;
        let (found, sha256) = write_injected(archives, &layers, &source.path, &out.path, &injected)
            .with_context(|| format!("{what}: {} in {}", source.path, source.component))?;
        let Some(found) = found else {
            tried.push(format!("{} has no {}", source.component, source.path));
            continue;
        };
        let path = out.persist()?;
        return Ok(Extracted {
            path,
            command: req.command,
            release: release.version.clone(),
            architecture: payload.architecture.clone(),
            component: source.component.to_string(),
            component_digest: digest.clone(),
            source_path: source.path,
            layer: found.layer,
            size: found.size,
            sha256,
            injected,
        });
    }
    bail!("{what} has no {}: {}", req.command.name(), tried.join("; "))
}

/// The values for the command's placeholders: the release by digest at the target (the
/// manifest list's digest for `multi`, as oc does), and the version.
fn values(command: Command, release: &Release, target: &Target) -> Vec<Replacement> {
    command
        .placeholders()
        .iter()
        .map(|&placeholder| Replacement {
            placeholder,
            value: match placeholder {
                Placeholder::ReleaseImage => {
                    format!("{}@{}", target.mirror(&release.repository), release.digest)
                }
                Placeholder::ReleaseVersion => release.version.clone(),
            },
        })
        .collect()
}

/// Streams `path` from the layers into `out` through the injector. `None` when no layer has
/// the file; an error when a placeholder is missing.
fn write_injected(
    archives: &ArchiveSet,
    layers: &[ferry_format::manifest::Descriptor],
    path: &str,
    out: &Path,
    replacements: &[Replacement],
) -> Result<(Option<layers::Found>, Digest)> {
    let file = File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let tee = Tee {
        file: BufWriter::with_capacity(1 << 20, file),
        hash: DualHasher::new(),
    };
    let mut injector = Injector::new(tee, replacements.to_vec())?;
    let found = layers::find_file(archives, layers, path, &mut |r: &mut dyn Read| {
        std::io::copy(r, &mut injector)?;
        Ok(())
    })?;
    let (tee, missing) = injector.finish()?;
    if let (Some(_), Some(p)) = (&found, missing.first()) {
        bail!(
            "the binary has no {} placeholder ({:?}), so it cannot be pinned to the mirrored release; is it an OpenShift build of the command?",
            p.name(),
            String::from_utf8_lossy(&p.marker()[..30])
        );
    }
    tee.file
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok((found, tee.hash.finish().sha256))
}

/// Writes to the file and hashes what is written.
struct Tee {
    file: BufWriter<File>,
    hash: DualHasher,
}

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// `DIR/.NAME.ferry-tmp`, removed unless persisted as `DIR/NAME` (mode 0755).
struct TempOut {
    path: PathBuf,
    dest: PathBuf,
    keep: bool,
}

impl TempOut {
    fn create(dir: &Path, name: &str) -> Result<TempOut> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(TempOut {
            path: dir.join(format!(".{name}.ferry-tmp")),
            dest: dir.join(name),
            keep: false,
        })
    }

    fn persist(mut self) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&self.path, &self.dest)
            .with_context(|| format!("cannot write {}", self.dest.display()))?;
        self.keep = true;
        Ok(self.dest.clone())
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_by_their_names() {
        for c in Command::ALL {
            assert_eq!(c.name().parse::<Command>(), Ok(c));
        }
        let e = "kubectl".parse::<Command>().unwrap_err();
        assert!(
            e.contains("openshift-install, openshift-baremetal-install, oc, ccoctl"),
            "{e}"
        );
    }
}
