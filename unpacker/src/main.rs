//! ferry-unpack: the command line. All work is done by the `ferry_unpack` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use ferry_format::volume::human;
use ferry_registry::cli::RegistryArgs;
use ferry_unpack::media::{load_trust, Media};
use ferry_unpack::push::{self, PushOptions, Target};
use ferry_unpack::verify;

/// Verify a ferry archive offline and push it into the site's registry.
///
/// Typical use on the disconnected side:
///   ferry-unpack verify /media/usb/ferry --trust ferry.key.pub
///   ferry-unpack push   /media/usb/ferry --trust ferry.key.pub --to registry.site:5000/mirror
///
/// The trusted key is the public half of the key the archive was signed with; get it by a
/// channel other than the media.
#[derive(Parser, Debug)]
#[command(name = "ferry-unpack", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check the archive offline: the index signature, every volume byte and every blob's
    /// sha256 and blake3. Lists each problem by name; exits 1 if there is any. No network.
    Verify {
        /// The archive directory (holding ferry-index.json).
        dir: PathBuf,
        /// The trusted OpenSSH ed25519 public key (ssh-ed25519 AAAA...).
        #[arg(long, value_name = "KEY.pub")]
        trust: PathBuf,
        /// Volumes checked in parallel.
        #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
        jobs: usize,
    },
    /// Push the archive into a registry: blobs, then manifests, then tags. Verifies every blob
    /// while it streams; skips what the registry already holds, so a re-run after an
    /// interruption finishes the job. Source repository `<registry>/<repo>` becomes
    /// `<HOST>/<NAMESPACE>/<repo>`.
    Push {
        /// The archive directory (holding ferry-index.json).
        dir: PathBuf,
        /// The trusted OpenSSH ed25519 public key.
        #[arg(long, value_name = "KEY.pub")]
        trust: PathBuf,
        /// Target registry: HOST[:PORT][/NAMESPACE].
        #[arg(long, value_name = "TARGET")]
        to: String,
        /// Parallel uploads.
        #[arg(long, short = 'j', default_value_t = 8, value_name = "N")]
        jobs: usize,
        #[command(flatten)]
        registry: RegistryArgs,
        /// No progress lines.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry-unpack: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Verify { dir, trust, jobs } => {
            let key = load_trust(&trust)?;
            let media = Media::open(&dir, &key)?;
            let index = &media.index;
            println!(
                "archive {} made {} by {}: {} images, {} blobs, {} volumes",
                index.archive_id,
                index.created,
                index.tool,
                index.images.len(),
                index.blobs.len(),
                index.volumes.len()
            );
            println!(
                "signature: good (key {})",
                key.fingerprint(Default::default())
            );
            let report = verify::verify(&media, jobs);
            if report.ok() {
                println!(
                    "OK: {} volumes, {} blobs, {} verified in {:.1}s",
                    report.volumes,
                    report.blobs,
                    human(report.bytes),
                    report.seconds
                );
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &report.problems {
                    println!("PROBLEM: {p}");
                }
                let affected = verify::affected_images(&media, &report.bad_blobs);
                for a in &affected {
                    println!("AFFECTED IMAGE: {a}");
                }
                println!(
                    "FAILED: {} problem(s); {} blob(s) damaged or missing; {} of {} images affected",
                    report.problems.len(),
                    report.bad_blobs.len(),
                    affected.len(),
                    index.images.len()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Push {
            dir,
            trust,
            to,
            jobs,
            registry,
            quiet,
        } => {
            let key = load_trust(&trust)?;
            let media = Media::open(&dir, &key)?;
            let target = Target::parse(&to)?;
            let client = registry.client()?;
            let report = push::push(
                &media,
                &client,
                &PushOptions {
                    target,
                    jobs,
                    quiet,
                },
            )?;
            for (src, dst) in &report.images_done {
                println!("pushed {src} -> {dst}");
            }
            for (src, why) in &report.images_failed {
                println!("NOT PUSHED {src}: {why}");
            }
            println!(
                "{} images pushed, {} not; blobs: {} uploaded ({}), {} mounted, {} already there; manifests: {} pushed, {} already there; {} tags; {:.1}s",
                report.images_done.len(),
                report.images_failed.len(),
                report.blobs_uploaded,
                human(report.bytes_uploaded),
                report.blobs_mounted,
                report.blobs_skipped,
                report.manifests_pushed,
                report.manifests_skipped,
                report.tags_pushed,
                report.seconds
            );
            Ok(if report.images_failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
