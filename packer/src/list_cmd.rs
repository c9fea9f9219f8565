//! `ferry-pack list releases|operators`: flags and printing; the work is `ferry_pack::list`.

use std::path::PathBuf;

use anyhow::Result;
use ferry_pack::list::{self, OperatorListing, ReleaseListing};
use ferry_pack::release::ReleaseOptions;
use ferry_registry::cli::RegistryArgs;

/// What an image set config could name, read by the same code that plans a pack.
#[derive(clap::Subcommand, Debug)]
pub enum List {
    /// The versions of a release channel, and the one a channel entry without
    /// minVersion/maxVersion packs.
    ///
    /// Example:
    ///   ferry-pack list releases --channel stable-4.16
    ///   ferry-pack list releases --channel stable-4.16 --arch arm64 --graph-file graph.json
    ///   ferry-pack list releases --graph-file graph.json        (the channels it names)
    #[command(verbatim_doc_comment)]
    Releases(ReleasesArgs),

    /// The packages of an operator catalog with their default channel and each channel's
    /// head (what a package entry without versions packs); with --package, every bundle of
    /// every channel of that package.
    ///
    /// Example:
    ///   ferry-pack list operators --catalog registry.redhat.io/redhat/redhat-operator-index:v4.16
    ///   ferry-pack list operators --catalog ... --package advanced-cluster-management
    #[command(verbatim_doc_comment)]
    Operators(OperatorsArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReleasesArgs {
    /// The channel (stable-4.16, fast-4.16, eus-4.16, candidate-4.16). Without it, the
    /// channels the --graph-file names.
    #[arg(long, value_name = "NAME")]
    channel: Option<String>,

    /// Release architecture: amd64, arm64, ppc64le, s390x or multi.
    #[arg(long, default_value = "amd64", value_name = "ARCH")]
    arch: String,

    /// ocp or okd (as a channel's `type` in the config).
    #[arg(long = "type", default_value = "ocp", value_name = "TYPE")]
    kind: String,

    /// Update service (Cincinnati JSON API). Default: env UPDATE_URL_OVERRIDE, else the
    /// public OpenShift update service.
    #[arg(long, value_name = "URL")]
    graph_url: Option<String>,

    /// A saved update graph instead of asking an update service (repeatable; merged).
    #[arg(long, value_name = "FILE")]
    graph_file: Vec<PathBuf>,

    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args, Debug)]
pub struct OperatorsArgs {
    /// The catalog image, as a config's `mirror.operators[].catalog` names it.
    #[arg(long, value_name = "IMAGE")]
    catalog: String,

    /// One package: its channels and every bundle in them, by version.
    #[arg(long, value_name = "NAME")]
    package: Option<String>,

    /// The platform of a multi-platform catalog to read (they hold the same catalog).
    /// Default: the first.
    #[arg(long, value_name = "ARCH")]
    arch: Vec<String>,

    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(cmd: List) -> Result<bool> {
    match cmd {
        List::Releases(a) => releases(a),
        List::Operators(a) => operators(a),
    }
}

fn releases(a: ReleasesArgs) -> Result<bool> {
    let client = a.registry.client()?;
    let opts = ReleaseOptions {
        graph_url: a.graph_url.clone(),
        graph_files: a.graph_file.iter().map(|p| (None, p.clone())).collect(),
        quiet: true,
        ..ReleaseOptions::default()
    };
    let Some(channel) = &a.channel else {
        let channels = list::channels(&client, &opts, &a.arch)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&channels)?);
        } else {
            println!("channels in the graph ({}):", a.arch);
            for c in channels {
                println!("  {c}");
            }
        }
        return Ok(true);
    };
    let l = list::releases(&client, &opts, channel, &a.arch, &a.kind)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&l)?);
    } else {
        print_releases(&l);
    }
    Ok(true)
}

fn print_releases(l: &ReleaseListing) {
    println!(
        "channel {} ({}): {} release(s)",
        l.channel,
        l.architecture,
        l.releases.len()
    );
    let width = l
        .releases
        .iter()
        .map(|r| r.version.len())
        .max()
        .unwrap_or(0);
    for r in &l.releases {
        let risks = if r.conditional_risks.is_empty() {
            String::new()
        } else {
            format!("  (conditional: {})", r.conditional_risks.join(", "))
        };
        println!("  {:width$}  {}{risks}", r.version, r.payload);
    }
    println!(
        "a channel entry without minVersion/maxVersion packs: {}",
        l.default_selection.join(", ")
    );
}

fn operators(a: OperatorsArgs) -> Result<bool> {
    let client = a.registry.client()?;
    let l = list::operators(&client, &a.catalog, a.package.as_deref(), &a.arch)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&l)?);
    } else {
        print_operators(&l, a.package.is_some());
    }
    Ok(true)
}

fn print_operators(l: &OperatorListing, bundles: bool) {
    println!(
        "catalog {} ({}): {} package(s)",
        l.catalog,
        l.digest,
        l.packages.len()
    );
    for p in &l.packages {
        println!("{}  (default channel {})", p.name, p.default_channel);
        for c in &p.channels {
            let head = match (&c.head, &c.head_problem) {
                (Some(h), _) => format!("head {h}"),
                (None, Some(why)) => format!("no single head: {why}"),
                (None, None) => "empty".to_string(),
            };
            println!("  {}: {head}", c.name);
            if bundles {
                for b in &c.bundles {
                    let v = b.version.as_deref().unwrap_or("-");
                    println!("    {v:12}  {}", b.name);
                }
            }
        }
    }
}
