//! ferry-pack: the command line. It parses the flags and runs the phases of `ferry_pack`:
//! load the config, check keys and bases (before any network use), plan, write.

mod keys;
mod list_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferry_format::sign::PrivateKey;
use ferry_pack::attach::sigstore::Key;
use ferry_pack::attach::{AttachOptions, ReferrerTypes};
use ferry_pack::base::Bases;
use ferry_pack::config::ImageSetConfig;
use ferry_pack::gather::{self, GatherOptions};
use ferry_pack::pack::media::{self, MediaPlan};
use ferry_pack::plan::Plan;
use ferry_pack::samples::SamplesInput;
use ferry_pack::{pack, release, units};
use ferry_registry::cli::RegistryArgs;
use serde::Serialize;

/// Pull the images an image set config names — additional images, OpenShift releases
/// (mirror.platform) and filtered operator catalogs (mirror.operators) — into a signed,
/// content-addressed archive for removable media.
///
/// The archive is a directory: `ferry-index.json` (what it holds, with sha256 + blake3 of every
/// blob), its SSHSIG signature `ferry-index.json.sig`, and tar volumes `ferry-vol-NNNN.tar` no
/// larger than --volume-size. Every blob is stored once, however many images share it.
///
/// Example:
///   ssh-keygen -t ed25519 -N '' -f ferry.key
///   ferry-pack --config imageset.yaml --to /media/usb/ferry --sign-key ferry.key
///
/// On the disconnected side, `ferry-unpack verify` checks the archive against ferry.key.pub and
/// `ferry-unpack push --manifests-dir DIR` copies it into the site's registry and writes the
/// cluster manifests. Releases and catalogs: docs/releases.md, docs/catalogs.md.
///
/// What a config could name: `ferry-pack list releases --channel stable-4.16` and
/// `ferry-pack list operators --catalog IMAGE [--package NAME]`.
#[derive(Parser, Debug)]
#[command(
    name = "ferry-pack",
    version,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// oc-mirror ImageSetConfiguration (mirror.openshift.io/v2alpha1 or v1alpha2).
    #[arg(long, short = 'c', value_name = "FILE", required = true)]
    config: Option<PathBuf>,

    /// Directory to write the archive to (created if missing; must not hold an archive).
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,

    /// OpenSSH ed25519 private key that signs the index (ssh-keygen -t ed25519). If it has a
    /// passphrase, it is asked for on the terminal, or read from the environment variable
    /// FERRY_SIGN_KEY_PASSPHRASE.
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,

    /// Largest volume file: a size (700MiB, 4.7GB) or a medium: fat32 (4 GiB - 1 byte, the
    /// largest file FAT32 holds), dvd, dvd-dl, bd. Blobs larger than a volume are split into
    /// numbered chunks. Default: the config's archiveSize (GiB), else fat32.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    volume_size: Option<u64>,

    /// Parity volumes beside the data volumes, so that lost or damaged volumes can be rebuilt
    /// at the far end (Reed-Solomon): a percentage of the data volumes (10%: one parity volume
    /// per ten, rounded up) or a number of volumes (2). Any that many missing or damaged
    /// volumes rebuild; each parity volume is as large as the largest data volume.
    #[arg(long, value_name = "N%|N", value_parser = units::parse_parity)]
    parity: Option<ferry_format::archive::write::Parity>,

    /// The size of the media the archive will be copied to (64GB, dvd, ...): --dry-run says
    /// how many media that is and which volumes go on each.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    media_size: Option<u64>,

    /// Parallel downloads.
    #[arg(long, short = 'j', default_value_t = 8, value_name = "N")]
    jobs: usize,

    /// Connections for one large blob: it is fetched in segments with ranged GETs, in
    /// parallel, and written at its offsets (one TCP stream over a long link is far slower
    /// than the link). Falls back to one stream where the registry does not honour Range.
    /// 1 turns this off.
    #[arg(long, default_value_t = 4, value_name = "N")]
    blob_connections: usize,

    /// Blobs from this size on are fetched over --blob-connections connections.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = units::parse_size)]
    blob_connections_from: u64,

    /// Keep only these platforms of multi-platform images and operator catalogs: an
    /// architecture (amd64, arm64, ppc64le, s390x) or os/arch[/variant]. Repeatable. Default:
    /// all platforms. (Release architectures come from mirror.platform.architectures.)
    #[arg(long = "arch", value_name = "ARCH")]
    arch: Vec<String>,

    /// Pack a delta: leave out every blob and manifest this earlier archive's index lists
    /// (OLD/ferry-index.json; its signature OLD/ferry-index.json.sig must verify). Repeatable.
    #[arg(long, value_name = "INDEX")]
    base: Vec<PathBuf>,

    /// Pack a delta against what the site registry holds, from `ferry-unpack inventory`.
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    base_inventory: Vec<PathBuf>,

    /// Public key that signed the --base indexes. Default: the public half of --sign-key.
    #[arg(long, value_name = "KEY.pub")]
    trust: Option<PathBuf>,

    /// The site's public key that signed the --base-inventory files (FILE.sig).
    #[arg(long, value_name = "KEY.pub")]
    trust_inventory: Option<PathBuf>,

    /// The delivery stream the archive belongs to; the site refuses a delta whose parent it
    /// has not received. Default: the config file's name without extension.
    #[arg(long, value_name = "NAME")]
    stream: Option<String>,

    /// Update service to ask for release channels (Cincinnati JSON API). Default: env
    /// UPDATE_URL_OVERRIDE, else the public OpenShift update service
    /// (https://api.openshift.com/api/upgrades_info/v1/graph).
    #[arg(long, value_name = "URL", help_heading = "Releases")]
    graph_url: Option<String>,

    /// Plan releases from a saved update graph instead of asking an update service: the JSON
    /// that `curl -H 'Accept: application/json' '<graph-url>?channel=stable-4.16&arch=amd64'`
    /// returns. Prefix ARCH= when packing several architectures; repeat for several channels
    /// (their graphs are merged; nodes name their channels). No network is used for graphs.
    #[arg(long, value_name = "[ARCH=]FILE", help_heading = "Releases")]
    graph_file: Vec<String>,

    /// Release signature store (serves <URL>/sha256=<hex>/signature-N). Default: env
    /// OCP_SIGNATURE_URL, else https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release.
    #[arg(long, value_name = "URL", help_heading = "Releases")]
    signature_url: Option<String>,

    /// OpenPGP public keys that release signatures must verify against: armored or binary, or
    /// a payload's 0000_90_cluster-update-keys_configmap.yaml. Default: the file named by env
    /// OCP_SIGNATURE_VERIFICATION_PK. Required to pack releases unless signatures are skipped.
    #[arg(long, value_name = "FILE", help_heading = "Releases")]
    release_keyring: Option<PathBuf>,

    /// With `platform.graph: true`: where to get the update service's graph data (a tar.gz).
    /// Default: https://api.openshift.com/api/upgrades_info/graph-data.
    #[arg(long, value_name = "URL", help_heading = "Releases")]
    graph_data_url: Option<String>,

    /// With `platform.graph: true`: the base image (with /bin/bash and cp) the graph-data image
    /// is built on. Default: registry.access.redhat.com/ubi9/ubi:latest (linux/amd64).
    #[arg(long, value_name = "IMAGE", help_heading = "Releases")]
    graph_base_image: Option<String>,

    /// Pack releases without fetching or verifying their signatures. The index records
    /// signatureCheck: skipped, and clusters with the default signature policy will refuse
    /// such releases.
    #[arg(long, help_heading = "Releases")]
    skip_release_signatures: bool,

    /// Leave cosign signatures (`sha256-<hex>.sig`) and signature referrers out. By default
    /// they are carried for every image and platform manifest, and pushed where clusters look.
    #[arg(long, help_heading = "Signatures")]
    remove_signatures: bool,

    /// Also carry cosign attestations (`sha256-<hex>.att`).
    #[arg(long, help_heading = "Signatures")]
    attestations: bool,

    /// Also carry cosign SBOMs (`sha256-<hex>.sbom`).
    #[arg(long, help_heading = "Signatures")]
    sboms: bool,

    /// OCI 1.1 referrers to carry, by artifactType (repeatable; `all` for every one, `none`
    /// for none). Default: sigstore signature bundles, unless --remove-signatures.
    #[arg(long, value_name = "TYPE", help_heading = "Signatures")]
    referrer_type: Vec<String>,

    /// Check cosign signatures against this public key (PEM `PUBLIC KEY`, as cosign.pub:
    /// ECDSA P-256 or ed25519). Repeatable. The index records which key verified each
    /// signature, and ferry-unpack writes a ClusterImagePolicy for the images it verified.
    #[arg(long, value_name = "KEY.pub", help_heading = "Signatures")]
    sigstore_key: Vec<PathBuf>,

    /// Refuse to pack an image whose manifest has no signature that verifies under a
    /// --sigstore-key (with --continue-on-error it is left out and listed in the failures).
    #[arg(long, help_heading = "Signatures")]
    require_signatures: bool,

    /// The Cluster Samples Operator's imagestreamtag-to-image ConfigMap (YAML or JSON; `oc get
    /// configmap imagestreamtag-to-image -n openshift-cluster-samples-operator -o yaml` on a
    /// connected cluster of the release): the images of its image streams are packed, and
    /// `ferry-unpack manifests` writes the samples Config that points them at the mirror and
    /// skips the streams not mirrored.
    #[arg(long, value_name = "FILE", help_heading = "Samples")]
    samples: Option<PathBuf>,
    /// With --samples: only these image streams (comma-separated or repeated).
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        requires = "samples",
        help_heading = "Samples"
    )]
    samples_include: Vec<String>,
    /// With --samples: leave these image streams out (they are skipped at the site).
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        requires = "samples",
        help_heading = "Samples"
    )]
    samples_exclude: Vec<String>,

    #[command(flatten)]
    registry: RegistryArgs,

    /// Pack everything that can be packed: images that fail are left out, the archive is
    /// marked incomplete in its signed index, and DIR/failures.json says what failed and why.
    /// Running the same command again fetches only what is missing. Exit status 3.
    #[arg(long)]
    continue_on_error: bool,

    /// Resolve the images and print what would be packed, without writing anything.
    #[arg(long)]
    dry_run: bool,

    /// Print the summary (or, with --dry-run, the plan) as JSON on stdout instead of text.
    #[arg(long)]
    json: bool,

    /// No progress lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// What an image set config could name: a channel's releases, a catalog's packages.
    #[command(subcommand)]
    List(list_cmd::List),
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let result = match cli.command.take() {
        Some(Command::List(l)) => list_cmd::run(l),
        None => run(cli),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("ferry-pack: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The config file (required by clap unless a subcommand runs).
fn config_path(cli: &Cli) -> &std::path::Path {
    cli.config.as_deref().expect("clap requires --config")
}

/// Runs the phases; returns whether the archive (or the plan) is complete.
fn run(cli: Cli) -> Result<bool> {
    let config = load_config(&cli)?;
    let release_opts = match gather::platform(&config) {
        Some(_) => Some(release_options(&cli)?),
        None => None,
    };
    let output = if cli.dry_run {
        None
    } else {
        Some(output(&cli)?)
    };
    // Bases are checked before any network use, so a wrong key fails at once.
    let bases = load_bases(&cli, output.as_ref().map(|(_, k)| k))?;
    let client = cli.registry.client()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cli.jobs.max(1))
        .build()?;
    let opts = GatherOptions {
        arch: cli.arch.clone(),
        releases: release_opts,
        attach: attach_options(&cli)?,
        samples: cli.samples.clone().map(|file| SamplesInput {
            file,
            include: cli.samples_include.clone(),
            exclude: cli.samples_exclude.clone(),
        }),
        keep_going: cli.continue_on_error,
        quiet: cli.quiet,
    };
    let (plan, notes) = pool
        .install(|| gather::gather(&client, &config, &opts))
        .with_context(|| config_path(&cli).display().to_string())?;
    for n in &notes {
        eprintln!("note: {n}");
    }
    match output {
        None => dry_run(&cli, &config, &plan, &bases),
        Some((to, sign_key)) => write(&cli, &config, &client, plan, bases, to, sign_key),
    }
}

/// What to carry with the images, and the keys to check signatures against.
fn attach_options(cli: &Cli) -> Result<AttachOptions> {
    let referrers = match cli.referrer_type.as_slice() {
        [] if cli.remove_signatures => ReferrerTypes::Only(Vec::new()),
        [] => AttachOptions::default().referrers,
        [one] if one == "all" => ReferrerTypes::All,
        [one] if one == "none" => ReferrerTypes::Only(Vec::new()),
        types => ReferrerTypes::Only(types.to_vec()),
    };
    let keys = cli
        .sigstore_key
        .iter()
        .map(|p| Key::load(p))
        .collect::<Result<Vec<_>>>()?;
    Ok(AttachOptions {
        signatures: !cli.remove_signatures,
        attestations: cli.attestations,
        sboms: cli.sboms,
        referrers,
        keys,
        require: cli.require_signatures,
        keep_going: cli.continue_on_error,
    })
}

/// Reads the config and refuses the sections this version cannot pack.
fn load_config(cli: &Cli) -> Result<ImageSetConfig> {
    let config = ImageSetConfig::load(config_path(cli))?;
    for note in config.notes() {
        eprintln!("note: {note}");
    }
    let unsupported = config.unsupported();
    if !unsupported.is_empty() {
        bail!(
            "{} asks for {}, which this version of ferry-pack cannot pack yet; \
             remove those sections (or pack them with oc-mirror) and keep the rest",
            config_path(cli).display(),
            unsupported
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        );
    }
    Ok(config)
}

/// Where to write, and the key that signs.
fn output(cli: &Cli) -> Result<(PathBuf, PrivateKey)> {
    let to = cli
        .to
        .clone()
        .context("--to DIR is required (or use --dry-run)")?;
    let key_path = cli.sign_key.as_ref().context(
        "--sign-key KEY is required: the index must be signed (make a key with: ssh-keygen -t ed25519 -N '' -f ferry.key)",
    )?;
    Ok((to, keys::load_signing_key(key_path)?))
}

/// The bases of a delta, each checked against its signature.
fn load_bases(cli: &Cli, sign_key: Option<&PrivateKey>) -> Result<Bases> {
    let mut bases = Bases::default();
    if !cli.base.is_empty() {
        let trusted = match &cli.trust {
            Some(p) => ferry_format::sign::load_public_key(p)?,
            None => sign_key.map(|k| k.public_key().clone()).context(
                "--base needs --trust KEY.pub (or --sign-key) to check the base indexes",
            )?,
        };
        for b in &cli.base {
            bases.add_index(b, &trusted)?;
        }
    }
    if !cli.base_inventory.is_empty() {
        let trusted = match &cli.trust_inventory {
            Some(p) => Some(ferry_format::sign::load_public_key(p)?),
            None => None,
        };
        for b in &cli.base_inventory {
            bases.add_inventory(b, trusted.as_ref())?;
        }
    }
    Ok(bases)
}

/// What `--dry-run --json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DryRun<'a> {
    releases: &'a [ferry_format::index::Release],
    catalogs: &'a [ferry_format::index::Catalog],
    images: &'a [ferry_format::index::Image],
    manifests: usize,
    blobs: usize,
    blob_bytes: u64,
    failures: &'a [ferry_format::index::Failure],
    /// The exact archive: volumes, index and signature, and the media they fill.
    archive: &'a MediaPlan,
}

/// The volume size: --volume-size, else the config's archiveSize (GiB), else FAT32's largest
/// file; with a warning for a size that looks meant for FAT32 but does not fit.
fn volume_size(cli: &Cli, config: &ImageSetConfig) -> u64 {
    let size = cli
        .volume_size
        .or(config.archive_size.map(|g| g << 30))
        .unwrap_or(units::DEFAULT_VOLUME_SIZE);
    if let Some(w) = units::fat32_warning(size) {
        eprintln!("warning: {w}");
    }
    size
}

fn stream(cli: &Cli) -> String {
    cli.stream
        .clone()
        .unwrap_or_else(|| ferry_pack::base::default_stream(config_path(cli)))
}

fn dry_run(cli: &Cli, config: &ImageSetConfig, plan: &Plan, bases: &Bases) -> Result<bool> {
    let settings = media::MediaSettings {
        volume_size: volume_size(cli, config),
        parity: cli.parity.unwrap_or_default(),
        media_size: cli.media_size,
    };
    let archive = media::media_plan(plan, bases, &stream(cli), settings)?;
    if cli.json {
        let out = DryRun {
            releases: &plan.releases,
            catalogs: &plan.catalogs,
            images: &plan.images,
            manifests: plan.manifests.len(),
            blobs: plan.blobs.len(),
            blob_bytes: plan.blob_bytes(),
            failures: &plan.failures,
            archive: &archive,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(plan.failures.is_empty());
    }
    for r in &plan.releases {
        println!(
            "release {} ({}) {}/{}@{}: {} components, signatures {}, channels {}",
            r.version,
            r.architecture,
            r.registry,
            r.repository,
            r.digest,
            r.components,
            r.signature_check,
            r.channels.join(",")
        );
    }
    for line in pack::describe(&plan.images) {
        println!("{line}");
    }
    println!(
        "{} images, {} manifests, {} unique blobs, {}",
        plan.images.len(),
        plan.manifests.len(),
        plan.blobs.len(),
        ferry_term::human(plan.blob_bytes())
    );
    print_media_plan(&archive);
    Ok(plan.failures.is_empty())
}

fn print_media_plan(a: &MediaPlan) {
    let human = ferry_term::human;
    println!(
        "archive: {} volume(s) of at most {} bytes, {} bytes in all ({}; index {} bytes, signature {} bytes)",
        a.volumes.len(),
        a.volume_size,
        a.total_bytes,
        human(a.total_bytes),
        a.index_bytes,
        a.signature_bytes
    );
    if let Some(p) = a.parity_volumes.first() {
        println!(
            "parity: {} volume(s) of {} bytes ({} in all): any {} lost or damaged volume(s) can be rebuilt",
            a.parity_volumes.len(),
            p.size,
            human(p.size * a.parity_volumes.len() as u64),
            a.parity_volumes.len()
        );
    }
    if let (Some(media), false) = (&a.media, a.parity_volumes.is_empty()) {
        let most = media.iter().map(|m| m.volumes.len()).max().unwrap_or(0);
        if most > a.parity_volumes.len() {
            println!(
                "note: a medium holds up to {most} volumes, more than the {} parity volume(s) can rebuild; for one lost medium use --parity {most} or a --volume-size of one medium",
                a.parity_volumes.len()
            );
        }
    }
    for (n, m) in a.media.iter().flatten().enumerate() {
        println!(
            "medium {}: {} bytes ({}): the index, its signature, {}",
            n + 1,
            m.bytes,
            human(m.bytes),
            m.volumes.join(", ")
        );
    }
}

fn write(
    cli: &Cli,
    config: &ImageSetConfig,
    client: &ferry_registry::Client,
    plan: Plan,
    bases: Bases,
    to: PathBuf,
    sign_key: PrivateKey,
) -> Result<bool> {
    let opts = pack::PackOptions {
        to,
        volume_size: volume_size(cli, config),
        parity: cli.parity.unwrap_or_default(),
        jobs: cli.jobs,
        split: pack::Split {
            connections: cli.blob_connections.max(1),
            from: cli.blob_connections_from,
        },
        sign_key,
        quiet: cli.quiet || cli.json,
        bases,
        stream: stream(cli),
        continue_on_error: cli.continue_on_error,
    };
    let summary = pack::write_archive(client, plan, &opts)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
    }
    if summary.failures.is_empty() {
        return Ok(true);
    }
    for f in &summary.failures {
        eprintln!("FAILED {} {}: {}", f.kind, f.subject, f.reason);
    }
    eprintln!(
        "ferry-pack: the archive is INCOMPLETE ({} failure(s), listed in {}); run the same command again to fetch only what is missing",
        summary.failures.len(),
        summary.dir.join(pack::FAILURES_FILE).display()
    );
    Ok(false)
}

/// Release options from the flags and the environment (oc-mirror's variables).
fn release_options(cli: &Cli) -> Result<release::ReleaseOptions> {
    let mut graph_files = Vec::new();
    for g in &cli.graph_file {
        let (arch, path) = match g.split_once('=') {
            Some((a, p)) if release::ARCHITECTURES.contains(&a) => (Some(a.to_string()), p),
            _ => (None, g.as_str()),
        };
        graph_files.push((arch, PathBuf::from(path)));
    }
    let keyring = if cli.skip_release_signatures {
        eprintln!(
            "WARNING: --skip-release-signatures: release signatures are neither fetched nor \
             verified; nothing vouches for the release images, and clusters with the default \
             signature policy will refuse them"
        );
        None
    } else {
        let path = cli.release_keyring.clone().or_else(|| {
            std::env::var_os("OCP_SIGNATURE_VERIFICATION_PK")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        match path {
            Some(p) => {
                let bytes = std::fs::read(&p)
                    .with_context(|| format!("cannot read release keyring {}", p.display()))?;
                Some(release::signature::Keyring::from_bytes(
                    &bytes,
                    &p.display().to_string(),
                )?)
            }
            None => None,
        }
    };
    Ok(release::ReleaseOptions {
        graph_url: cli.graph_url.clone(),
        graph_files,
        signature_url: cli.signature_url.clone(),
        keyring,
        skip_signatures: cli.skip_release_signatures,
        graph_data_url: cli.graph_data_url.clone(),
        graph_base_image: cli.graph_base_image.clone(),
        keep_going: cli.continue_on_error,
        quiet: cli.quiet,
    })
}
