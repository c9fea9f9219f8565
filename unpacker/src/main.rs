//! ferry-unpack: the command line. All work is done by the `ferry_unpack` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ferry_format::check::Depth;
use ferry_format::volume::human;
use ferry_registry::cli::RegistryArgs;
use ferry_unpack::media::{load_trust, Media};
use ferry_unpack::push::{self, PushOptions, Target};
use ferry_unpack::{cluster, inventory, verify};

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
    /// For a delta, also says what it brings and what it expects the site to hold.
    Verify {
        /// The archive directory (holding ferry-index.json).
        dir: PathBuf,
        /// The trusted OpenSSH ed25519 public key (ssh-ed25519 AAAA...).
        #[arg(long, value_name = "KEY.pub")]
        trust: PathBuf,
        /// Threads reading and hashing (default: all cores).
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
        /// Also compute every blob's sha256 (its registry digest), not only the blake3 the
        /// signed index holds; slower. Push rechecks sha256 anyway while it streams.
        #[arg(long)]
        sha256: bool,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// No progress line.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Push the archive into a registry: blobs, then manifests, then tags. Verifies every blob
    /// while it streams; skips what the registry already holds, so a re-run after an
    /// interruption finishes the job. Source repository `<registry>/<repo>` becomes
    /// `<HOST>/<NAMESPACE>/<repo>`. A delta is pushed only if its parent archive arrived and
    /// everything it does not carry is at the target (or in --base-media); the archive is then
    /// recorded in `<NAMESPACE>/ferry-state`.
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
        /// A base archive of this delta, to take what the target lacks from. Repeatable.
        #[arg(long, value_name = "DIR")]
        base_media: Vec<PathBuf>,
        /// Push a delta even though the target has no record of its parent archive.
        #[arg(long)]
        allow_gap: bool,
        /// After a complete push, write the cluster manifests here (see `manifests`).
        #[arg(long, value_name = "DIR")]
        manifests_dir: Option<PathBuf>,
        /// With --manifests-dir: also write the legacy ImageContentSourcePolicy (clusters
        /// before 4.13).
        #[arg(long)]
        icsp: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        /// No progress lines.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Write the cluster manifests for an archive pushed (or to be pushed) to TARGET, offline:
    /// ImageDigestMirrorSet (idms-ferry-<stream>.yaml), ImageTagMirrorSet (itms-...), with
    /// --icsp the legacy ImageContentSourcePolicy (icsp-...), release signature ConfigMaps
    /// (release-signatures/signature-sha256-<hex16>.yaml), mapping.txt for `oc image mirror
    /// -f`, and releases.txt with each release's target pullspec and upgrade command.
    /// Apply with `oc apply -f DIR -R` (releases.txt and mapping.txt are not manifests).
    Manifests {
        /// The archive directory (holding ferry-index.json).
        dir: PathBuf,
        /// The trusted OpenSSH ed25519 public key.
        #[arg(long, value_name = "KEY.pub")]
        trust: PathBuf,
        /// The target the archive is pushed to: HOST[:PORT][/NAMESPACE], as given to push.
        #[arg(long, value_name = "TARGET")]
        to: String,
        /// Where to write the manifests (created if missing).
        #[arg(long, value_name = "DIR")]
        manifests_dir: PathBuf,
        /// Also write the legacy ImageContentSourcePolicy.
        #[arg(long)]
        icsp: bool,
        /// A base archive of this delta that carries what it does not (release signatures).
        #[arg(long, value_name = "DIR")]
        base_media: Vec<PathBuf>,
    },
    /// Write what a registry holds (repositories, manifests, blobs, streams received) to a file
    /// that `ferry-pack --base-inventory` packs a delta against.
    Inventory {
        /// The registry: HOST[:PORT][/NAMESPACE].
        #[arg(long, value_name = "TARGET")]
        from: String,
        /// Where to write the inventory (JSON).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Sign it (FILE.sig) with this OpenSSH ed25519 site key (a passphrase is asked for on
        /// the terminal, or read from FERRY_SIGN_KEY_PASSPHRASE).
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
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
        Command::Verify {
            dir,
            trust,
            jobs,
            sha256,
            json,
            quiet,
        } => {
            let key = load_trust(&trust)?;
            let media = Media::open(&dir, &key)?;
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let depth = if sha256 { Depth::Full } else { Depth::Blake3 };
            let report = verify::verify(&media, jobs, depth, quiet || json);
            let summary = verify::Summary::of(&media, &report);
            if json {
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
        Command::Push {
            dir,
            trust,
            to,
            jobs,
            base_media,
            allow_gap,
            manifests_dir,
            icsp,
            registry,
            quiet,
        } => {
            let (media, bases) = open_with_bases(&dir, &trust, &base_media)?;
            let target = Target::parse(&to)?;
            if let Some(d) = &manifests_dir {
                // Fail before pushing if the directory cannot be written.
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create --manifests-dir {}", d.display()))?;
            }
            let client = registry.client()?;
            let report = push::push(
                &media,
                &bases,
                &client,
                &PushOptions {
                    target,
                    jobs,
                    quiet,
                    allow_gap,
                },
            )?;
            if registry.verbose {
                let phases: Vec<String> = report
                    .phases
                    .iter()
                    .map(|(n, s)| format!("{n} {s:.2}s"))
                    .collect();
                eprintln!("debug: phases: {}", phases.join(", "));
            }
            for (src, dst) in &report.images_done {
                println!("pushed {src} -> {dst}");
            }
            for (src, why) in &report.images_failed {
                println!("NOT PUSHED {src}: {why}");
            }
            if let Some(s) = &report.recorded {
                println!(
                    "recorded archive {} as sequence {} of stream {:?} at the target",
                    media.index.archive_id, s.sequence, s.name
                );
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
            if let Some(d) = &manifests_dir {
                if report.images_failed.is_empty() {
                    let sources = push::Sources::new(&media, &bases);
                    let target = Target::parse(&to)?;
                    write_manifests(&media, &sources, &target, d, icsp)?;
                } else {
                    eprintln!(
                        "ferry-unpack: cluster manifests NOT written to {}: the push is incomplete; run it again",
                        d.display()
                    );
                }
            }
            Ok(if report.images_failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Manifests {
            dir,
            trust,
            to,
            manifests_dir,
            icsp,
            base_media,
        } => {
            let (media, bases) = open_with_bases(&dir, &trust, &base_media)?;
            let target = Target::parse(&to)?;
            let sources = push::Sources::new(&media, &bases);
            write_manifests(&media, &sources, &target, &manifests_dir, icsp)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inventory {
            from,
            out,
            sign_key,
            registry,
        } => {
            let target = Target::parse(&from)?;
            let key = match &sign_key {
                Some(p) => Some(ferry_format::sign::load_signing_key(p)?),
                None => None,
            };
            let client = registry.client()?;
            let inv = inventory::take(&client, &target)?;
            let bytes = inv.to_vec();
            std::fs::write(&out, &bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if let Some(k) = &key {
                let sig = ferry_format::sign::sign_in(
                    &bytes,
                    k,
                    ferry_format::inventory::INVENTORY_NAMESPACE,
                )?;
                let mut sig_path = out.clone().into_os_string();
                sig_path.push(".sig");
                std::fs::write(&sig_path, sig)?;
            }
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
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Builds and writes the cluster manifests, and says what was written.
fn write_manifests(
    media: &Media,
    sources: &push::Sources,
    target: &Target,
    dir: &std::path::Path,
    icsp: bool,
) -> Result<()> {
    let files = cluster::build(&media.index, sources, target, &cluster::Options { icsp })?;
    cluster::write(dir, &files)?;
    for f in &files {
        println!("wrote {}", dir.join(&f.path).display());
    }
    if let Some(r) = files
        .iter()
        .find(|f| f.path == std::path::Path::new("releases.txt"))
    {
        print!("{}", String::from_utf8_lossy(&r.bytes));
    }
    Ok(())
}

/// Opens an archive and its `--base-media` archives, all checked against the trusted key.
fn open_with_bases(
    dir: &std::path::Path,
    trust: &std::path::Path,
    base_media: &[PathBuf],
) -> Result<(Media, Vec<Media>)> {
    let key = load_trust(trust)?;
    let media = Media::open(dir, &key)?;
    let bases = base_media
        .iter()
        .map(|d| Media::open(d, &key).with_context(|| format!("--base-media {}", d.display())))
        .collect::<Result<Vec<_>>>()?;
    Ok((media, bases))
}
