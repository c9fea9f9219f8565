//! `ferry-unpack push`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ferry_registry::cli::RegistryArgs;
use ferry_unpack::push::{self, PushOptions, PushReport};
use ferry_unpack::target::Target;
use serde::Serialize;

/// Push the archive into a registry: blobs, then manifests, then tags. Verifies every blob
/// while it streams; skips what the registry already holds, so a re-run after an interruption
/// finishes the job. Source repository `<registry>/<repo>` becomes `<HOST>/<NAMESPACE>/<repo>`.
/// A delta is pushed only if its parent archive arrived and everything it does not carry is at
/// the target (or in --base-media); the archive is then recorded in `<NAMESPACE>/ferry-state`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The archive directory (holding ferry-index.json).
    dir: PathBuf,
    /// The trusted OpenSSH ed25519 public key.
    #[arg(long, value_name = "KEY.pub")]
    trust: PathBuf,
    /// Target registry: HOST[:PORT][/NAMESPACE].
    #[arg(long, value_name = "TARGET")]
    to: Target,
    #[command(flatten)]
    paths: super::PathLimit,
    /// Parallel uploads.
    #[arg(long, short = 'j', default_value_t = 8, value_name = "N")]
    jobs: usize,
    /// A base archive of this delta, to take what the target lacks from. Repeatable.
    #[arg(long, value_name = "DIR")]
    base_media: Vec<PathBuf>,
    /// Push a delta even though the target has no record of its parent archive.
    #[arg(long)]
    allow_gap: bool,
    /// After a complete push, write the cluster manifests here (see `manifests`); --ca-file,
    /// when given, also goes into install-config-mirrors.yaml as the additionalTrustBundle.
    #[arg(long, value_name = "DIR")]
    manifests_dir: Option<PathBuf>,
    /// With --manifests-dir: also write the legacy ImageContentSourcePolicy (clusters before
    /// 4.13).
    #[arg(long)]
    icsp: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the report (and the manifests written) as JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// No progress lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// What `push --json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output<'a> {
    #[serde(flatten)]
    report: &'a PushReport,
    /// The cluster manifests written (with --manifests-dir, after a complete push).
    cluster_manifests: Vec<PathBuf>,
}

pub fn exec(a: Args) -> Result<ExitCode> {
    let (archives, _) = super::open(&a.dir, &a.trust, &a.base_media)?;
    let manifest_opts = super::manifest_options(a.icsp, a.registry.ca_file.as_deref())?;
    if let Some(d) = &a.manifests_dir {
        // Fail before pushing if the directory cannot be written.
        std::fs::create_dir_all(d)
            .with_context(|| format!("cannot create --manifests-dir {}", d.display()))?;
    }
    let client = a.registry.client()?;
    let opts = PushOptions {
        target: a.paths.apply(&a.to),
        jobs: a.jobs,
        quiet: a.quiet || a.json,
        allow_gap: a.allow_gap,
    };
    let report = push::push(&archives, &client, &opts)?;
    if a.registry.verbose {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|p| format!("{} {:.2}s", p.name, p.seconds))
            .collect();
        eprintln!("debug: phases: {}", phases.join(", "));
    }
    if !a.json {
        print!("{}", report.text());
    }
    let mut written = Vec::new();
    if let Some(d) = &a.manifests_dir {
        if report.complete() {
            let files = super::write_manifests(&archives, &opts.target, d, &manifest_opts)?;
            if !a.json {
                super::print_manifests(d, &files);
            }
            written = files.iter().map(|f| d.join(&f.path)).collect();
        } else {
            eprintln!(
                "ferry-unpack: cluster manifests NOT written to {}: the push is incomplete; run it again",
                d.display()
            );
        }
    }
    if a.json {
        let out = Output {
            report: &report,
            cluster_manifests: written,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(if report.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
