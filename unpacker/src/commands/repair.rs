//! `ferry-unpack repair`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use ferry_unpack::repair;

/// Rebuild lost or damaged volumes from the parity volumes (`ferry-pack --parity`).
///
/// Every volume is checked whole against the signed index first; only intact ones are used.
/// Each rebuilt volume is written as NAME.partial, checked against the index, then renamed;
/// a damaged original is kept as NAME.damaged. With --out, the rebuilt volumes go to another
/// directory (for read-only media: copy them beside the others afterwards). Push and serve
/// also rebuild on the fly; repair makes the media whole again.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The archive directory (holding ferry-index.json).
    dir: PathBuf,
    /// The trusted OpenSSH ed25519 public key (ssh-ed25519 AAAA...).
    #[arg(long, value_name = "KEY.pub")]
    trust: PathBuf,
    /// Write the rebuilt volumes here instead of into the archive directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(a: Args) -> Result<ExitCode> {
    let (archives, _) = super::open(&a.dir, &a.trust, &[])?;
    let archive = archives.primary();
    if !a.json {
        eprintln!(
            "checking {} volume(s) and {} parity volume(s) whole",
            archive.index().volumes.len(),
            archive
                .index()
                .parity
                .as_ref()
                .map_or(0, |p| p.volumes.len())
        );
    }
    let report = repair::repair(archive, a.out.as_deref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::SUCCESS)
}
