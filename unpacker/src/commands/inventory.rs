//! `ferry-unpack inventory`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ferry_format::inventory::INVENTORY_NAMESPACE;
use ferry_registry::cli::RegistryArgs;
use ferry_unpack::inventory;
use ferry_unpack::target::Target;

/// Write what a registry holds, for `ferry-pack --base-inventory` to pack a delta against.
///
/// The file lists the repositories, manifests, blobs and streams received. Sign it at the site
/// with the site's key, using OpenSSH (ferry-unpack carries no signing code):
///   ssh-keygen -Y sign -n ferry-inventory -f site.key FILE     (writes FILE.sig)
/// and give the packer the public half with --trust-inventory.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The registry: HOST[:PORT][/NAMESPACE].
    #[arg(long, value_name = "TARGET")]
    from: Target,
    #[command(flatten)]
    paths: super::PathLimit,
    /// Where to write the inventory (JSON).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// No longer here: sign with ssh-keygen (see above).
    #[arg(long, value_name = "KEY", hide = true)]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn exec(a: Args) -> Result<ExitCode> {
    let sign_with = sign_command(a.sign_key.as_deref(), &a.out);
    if a.sign_key.is_some() {
        bail!(
            "ferry-unpack does not sign: the disconnected side carries no signing code. Take the inventory without --sign-key, then sign it with OpenSSH:\n  {sign_with}"
        );
    }
    let client = a.registry.client()?;
    let inv = inventory::take(&client, &a.paths.apply(&a.from))?;
    std::fs::write(&a.out, inv.to_vec())
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "inventory of {}: {} repositories, {} manifests, {} blobs, {} stream(s) -> {}",
        inv.target,
        inv.repositories.len(),
        inv.repositories
            .iter()
            .map(|r| r.manifests.len())
            .sum::<usize>(),
        inv.blobs.len(),
        inv.streams.len(),
        a.out.display()
    );
    println!("sign it with the site key: {sign_with}");
    Ok(ExitCode::SUCCESS)
}

/// The OpenSSH command that signs an inventory the way `ferry-pack --trust-inventory` checks.
fn sign_command(key: Option<&std::path::Path>, out: &std::path::Path) -> String {
    format!(
        "ssh-keygen -Y sign -n {INVENTORY_NAMESPACE} -f {} {}",
        key.map_or("SITE_KEY".into(), |k| k.display().to_string()),
        out.display()
    )
}
