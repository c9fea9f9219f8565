//! `ferry-unpack manifests`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use ferry_unpack::target::Target;

/// Write the cluster manifests for an archive pushed (or to be pushed) to TARGET, offline:
/// ImageDigestMirrorSet (idms-ferry-<stream>.yaml), ImageTagMirrorSet (itms-...), with --icsp
/// the legacy ImageContentSourcePolicy (icsp-...), release signature ConfigMaps
/// (release-signatures/signature-sha256-<hex16>.yaml), CatalogSource and ClusterCatalog per
/// catalog (cs-..., cc-...), updateService.yaml, mapping.txt for `oc image mirror -f`,
/// releases.txt with each release's target pullspec and upgrade command, with
/// `ferry-pack --samples` the samples operator's Config (samples-operator-config.yaml), and
/// install-config-mirrors.yaml (imageDigestSources, with --ca-file the additionalTrustBundle)
/// to merge into install-config.yaml.
/// Apply with `oc apply -f DIR -R` after moving install-config-mirrors.yaml, releases.txt and
/// mapping.txt aside (they are not cluster objects).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The archive directory (holding ferry-index.json).
    dir: PathBuf,
    /// The trusted OpenSSH ed25519 public key.
    #[arg(long, value_name = "KEY.pub")]
    trust: PathBuf,
    /// The target the archive is pushed to: HOST[:PORT][/NAMESPACE], as given to push.
    #[arg(long, value_name = "TARGET")]
    to: Target,
    #[command(flatten)]
    paths: super::PathLimit,
    /// Where to write the manifests (created if missing).
    #[arg(long, value_name = "DIR")]
    manifests_dir: PathBuf,
    /// Also write the legacy ImageContentSourcePolicy.
    #[arg(long)]
    icsp: bool,
    /// The CA (PEM) that signed the mirror registry's certificate: written into
    /// install-config-mirrors.yaml as additionalTrustBundle.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// A base archive of this delta that carries what it does not (release signatures).
    #[arg(long, value_name = "DIR")]
    base_media: Vec<PathBuf>,
}

pub fn exec(a: Args) -> Result<ExitCode> {
    let (archives, _) = super::open(&a.dir, &a.trust, &a.base_media)?;
    let opts = super::manifest_options(a.icsp, a.ca_file.as_deref())?;
    let files = super::write_manifests(&archives, &a.paths.apply(&a.to), &a.manifests_dir, &opts)?;
    super::print_manifests(&a.manifests_dir, &files);
    Ok(ExitCode::SUCCESS)
}
