//! `ferry-unpack verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use ferry_format::check::Depth;
use ferry_unpack::verify;

/// Check the archive offline: the index signature, every volume byte and every blob's sha256
/// and blake3. Lists each problem by name; exits 1 if there is any. No network. For a delta,
/// also says what it brings and what it expects the site to hold.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The archive directory (holding ferry-index.json).
    dir: PathBuf,
    /// The trusted OpenSSH ed25519 public key (ssh-ed25519 AAAA...).
    #[arg(long, value_name = "KEY.pub")]
    trust: PathBuf,
    /// Threads reading and hashing (default: all cores).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Also compute every blob's sha256 (its registry digest), not only the blake3 the signed
    /// index holds; slower. Push rechecks sha256 anyway while it streams.
    #[arg(long)]
    sha256: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long, short = 'q')]
    quiet: bool,
}

pub fn exec(a: Args) -> Result<ExitCode> {
    let (archives, key) = super::open(&a.dir, &a.trust, &[])?;
    let archive = archives.primary();
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let depth = if a.sha256 { Depth::Full } else { Depth::Blake3 };
    let report = verify::verify(archive, jobs, depth, a.quiet || a.json);
    let summary = verify::Summary::of(archive, &report);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!(
            "{}",
            summary.text(&key.fingerprint(Default::default()).to_string())
        );
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
