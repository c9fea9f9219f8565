//! `ferry-unpack delete`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ferry_registry::cli::RegistryArgs;
use ferry_unpack::delete::{self, config::DeleteConfig, plan::Plan};
use ferry_unpack::target::Target;

/// Retire content from the site registry, safely, in two steps.
///
///   ferry-unpack delete --config delete.yaml --from HOST/NS --generate plan.json
///       reads oc-mirror's DeleteImageSetConfiguration, resolves it against the archives the
///       target recorded in NS/ferry-state and the live registry, and writes a plan: each
///       manifest to delete and why, what is kept back (shared with something kept) and why,
///       and the bytes garbage collection will free. Nothing is deleted.
///   ferry-unpack delete --execute plan.json --from HOST/NS
///       checks that the registry still looks as the plan saw it (else refuses), deletes in a
///       safe order (indexes before their children; never a manifest something kept needs),
///       and records the deletion. Interrupted? Run it again.
///
/// Then run the registry's garbage collection to free the space (printed at the end).
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The registry: HOST[:PORT][/NAMESPACE], as given to push.
    #[arg(long, value_name = "TARGET")]
    from: Target,
    #[command(flatten)]
    paths: super::PathLimit,
    /// The DeleteImageSetConfiguration (with --generate).
    #[arg(long, value_name = "FILE", requires = "generate")]
    config: Option<PathBuf>,
    /// Write the plan here (JSON) and delete nothing.
    #[arg(long, value_name = "PLAN", conflicts_with = "execute")]
    generate: Option<PathBuf>,
    /// Carry out a plan written by --generate.
    #[arg(long, value_name = "PLAN")]
    execute: Option<PathBuf>,
    /// Print the plan as JSON on stdout too.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn exec(a: Args) -> Result<ExitCode> {
    let client = a.registry.client()?;
    let target = a.paths.apply(&a.from);
    match (&a.generate, &a.execute) {
        (Some(out), None) => {
            let Some(config) = &a.config else {
                bail!("--generate needs --config delete.yaml");
            };
            let plan = delete::generate(&client, &target, &DeleteConfig::load(config)?)?;
            let bytes = serde_json::to_vec_pretty(&plan)?;
            std::fs::write(out, &bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if a.json {
                println!("{}", String::from_utf8_lossy(&bytes));
            }
            print_plan(&plan, out);
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let plan: Plan = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a ferry delete plan", path.display()))?;
            if plan.format != delete::plan::PLAN_FORMAT {
                bail!("{} is not a ferry delete plan", path.display());
            }
            let done = delete::execute::execute(&client, &target, &plan, &bytes, |i, n, what| {
                eprintln!("[{i}/{n}] deleted {what}");
            })?;
            println!(
                "deleted {} manifest(s) ({} already gone); {} in {} blob(s) are now unreferenced",
                done.deleted,
                done.already_gone,
                ferry_term::human(plan.unreferenced_bytes),
                plan.unreferenced_blobs.len()
            );
            println!("{}", delete::execute::gc_hint());
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("give --generate PLAN (with --config) or --execute PLAN"),
    }
}

fn print_plan(plan: &Plan, out: &std::path::Path) {
    for p in &plan.delete {
        println!("delete {}@{}  ({})", p.repository, p.digest, p.why);
    }
    for k in &plan.kept_back {
        println!("keep   {}@{}  ({})", k.repository, k.digest, k.why);
    }
    for n in plan.not_found.iter().chain(&plan.notes) {
        println!("note: {n}");
    }
    println!(
        "plan: {} manifest(s) to delete, {} kept back, {} in {} blob(s) freed by garbage collection -> {}",
        plan.delete.len(),
        plan.kept_back.len(),
        ferry_term::human(plan.unreferenced_bytes),
        plan.unreferenced_blobs.len(),
        out.display()
    );
    println!(
        "review it, then: ferry-unpack delete --execute {} --from {}",
        out.display(),
        plan.target
    );
}
