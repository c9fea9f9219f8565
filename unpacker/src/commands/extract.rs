//! `ferry-unpack extract`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use ferry_unpack::extract::{self, Command};
use ferry_unpack::target::Target;

/// Write a release's command binary from the media, pinned to the mirrored release, offline.
///
/// As `oc adm release extract --command` does, the binary is taken from the release payload
/// (openshift-install from installer-artifacts or installer, openshift-baremetal-install from
/// baremetal-installer, oc from cli-artifacts or cli, ccoctl from cloud-credential-operator)
/// and the release image pullspec at the mirror (by digest) and the release version are
/// written into its placeholders. The installer then installs exactly the mirrored release:
///   ferry-unpack extract /media/usb/ferry --trust ferry.key.pub --release 4.15.3 \
///       --command openshift-install --to ./bin --mirror registry.site:5000/mirror
///   ./bin/openshift-install version     (prints "release image registry.site:5000/...")
///
/// Only the release image and the component's layers are read, each checked against the
/// signed index; nothing is written if a check fails.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The archive directory (holding ferry-index.json).
    dir: PathBuf,
    /// The trusted OpenSSH ed25519 public key.
    #[arg(long, value_name = "KEY.pub")]
    trust: PathBuf,
    /// The release: VERSION, or VERSION-ARCH when several architectures are carried
    /// (4.15.3-arm64, 4.15.3-multi).
    #[arg(long, value_name = "VERSION[-ARCH]")]
    release: String,
    /// openshift-install, openshift-baremetal-install, oc or ccoctl.
    #[arg(long, value_name = "COMMAND")]
    command: Command,
    /// The directory to write the binary into (created if missing).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Where the release is mirrored: HOST[:PORT][/NAMESPACE], as given to push.
    #[arg(long, value_name = "TARGET")]
    mirror: Target,
    #[command(flatten)]
    paths: super::PathLimit,
    /// The architecture of the binary: of the image taken from a multi release, and of the
    /// -artifacts builds (default: this machine's).
    #[arg(long, value_name = "ARCH", default_value = extract::host_arch())]
    arch: String,
    /// A base archive of this delta that carries what it does not.
    #[arg(long, value_name = "DIR")]
    base_media: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn exec(a: Args) -> Result<ExitCode> {
    let (archives, _) = super::open(&a.dir, &a.trust, &a.base_media)?;
    let target = a.paths.apply(&a.mirror);
    let done = extract::extract(
        &archives,
        &extract::Request {
            release: &a.release,
            command: a.command,
            to: &a.to,
            target: &target,
            arch: &a.arch,
        },
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({} bytes, {}) <- {} {} ({}), release {} ({})",
        done.path.display(),
        done.size,
        done.sha256,
        done.component,
        done.source_path,
        done.component_digest.short(),
        done.release,
        done.architecture
    );
    for r in &done.injected {
        println!("  {}: {}", r.placeholder.name(), r.value);
    }
    Ok(ExitCode::SUCCESS)
}
