//! Planning a whole image set config: its releases, its operator catalogs and its additional
//! images, resolved into one deduplicated [`Plan`] (what `pack` writes, or `--dry-run`
//! prints). Each source is planned by its own module; this one runs them in order and merges.

use std::collections::HashSet;

use anyhow::{bail, Result};
use ferry_registry::Client;

use crate::config::{ImageSetConfig, PlatformSection};
use crate::plan::{self, Plan, Wanted};
use crate::{catalog, release};

/// How to plan.
pub struct GatherOptions {
    /// Platforms to keep of multi-platform images and catalogs (`--arch`); empty keeps all.
    pub arch: Vec<String>,
    /// Release settings; needed when the config asks for releases.
    pub releases: Option<release::ReleaseOptions>,
    /// Signatures and other attachments to carry and check.
    pub attach: crate::attach::AttachOptions,
    /// The samples operator's images (`--samples`).
    pub samples: Option<crate::samples::SamplesInput>,
    /// Record what fails and go on (`--continue-on-error`).
    pub keep_going: bool,
    pub quiet: bool,
}

/// The releases section, when it asks for anything.
pub fn platform(config: &ImageSetConfig) -> Option<&PlatformSection> {
    config
        .mirror
        .platform
        .as_ref()
        .filter(|p| release::wants_releases(p))
}

/// Plans everything `config` asks for, on the current rayon pool. Returns the plan and the
/// notes to show (blocked images, foreign layers, selection remarks).
pub fn gather(
    client: &Client,
    config: &ImageSetConfig,
    opts: &GatherOptions,
) -> Result<(Plan, Vec<String>)> {
    let (mut wanted, mut notes) = plan::wanted_images(config, &opts.arch)?;
    let platform = platform(config);
    let helm = config
        .mirror
        .helm
        .as_ref()
        .filter(|h| !h.local.is_empty() || !h.repositories.is_empty());
    if wanted.is_empty()
        && platform.is_none()
        && config.mirror.operators.is_empty()
        && helm.is_none()
        && opts.samples.is_none()
    {
        bail!(
            "the config names no image to pack (mirror.additionalImages is empty or all blocked, \
             and there is no mirror.platform channel or release, mirror.operators catalog or \
             mirror.helm chart, and no --samples)"
        );
    }
    let releases = match (platform, &opts.releases) {
        (Some(p), Some(o)) => {
            say(opts, "planning releases...");
            let r = release::plan_releases(client, p, o)?;
            wanted.extend(r.wanted.iter().cloned());
            Some(r)
        }
        (Some(_), None) => bail!("internal error: releases asked for without release options"),
        _ => None,
    };
    let catalogs = plan_catalogs(client, config, opts, &mut wanted)?;
    let charts = match helm {
        Some(h) => {
            say(opts, "rendering Helm charts...");
            let c = crate::helm::plan_charts(client, h, &opts.arch)?;
            let known: HashSet<String> = wanted.iter().map(|w| w.source.clone()).collect();
            let blocked = plan::blocked_patterns(config)?;
            for w in &c.wanted {
                if plan::is_blocked(&blocked, &w.reference) {
                    notes.push(format!("blocked: {} (named by {})", w.source, w.reason));
                } else if !known.contains(&w.source) {
                    wanted.push(w.clone());
                }
            }
            Some(c)
        }
        None => None,
    };
    let samples = match &opts.samples {
        Some(input) => {
            let (w, record) =
                crate::samples::plan(input, &plan::blocked_patterns(config)?, &opts.arch)?;
            let known: HashSet<String> = wanted.iter().map(|w| w.source.clone()).collect();
            wanted.extend(w.into_iter().filter(|w| !known.contains(&w.source)));
            Some(record)
        }
        None => None,
    };
    say(opts, &format!("resolving {} image(s)...", wanted.len()));
    let mut plan = plan::resolve_all(client, &wanted, opts.keep_going)?;
    plan.samples = samples;
    if let Some(r) = releases {
        add_releases(&mut plan, r);
    }
    if let Some(c) = catalogs {
        plan.catalogs = c.catalogs;
        plan.add_made(c.images, c.manifests, c.blobs, c.inline);
        plan.notes.extend(c.notes);
        plan.failures.extend(c.failures);
    }
    if let Some(c) = charts {
        plan.charts = c.charts;
        plan.add_made(c.images, c.manifests, [], c.inline);
    }
    say(opts, "looking for signatures and other attachments...");
    crate::attach::attach(client, &mut plan, &opts.attach)?;
    notes.extend(plan.notes.iter().cloned());
    Ok((plan, notes))
}

fn say(opts: &GatherOptions, line: &str) {
    if !opts.quiet {
        eprintln!("{line}");
    }
}

/// Reads and filters every operator catalog; adds the images they name to `wanted`.
fn plan_catalogs(
    client: &Client,
    config: &ImageSetConfig,
    opts: &GatherOptions,
    wanted: &mut Vec<Wanted>,
) -> Result<Option<catalog::Planned>> {
    let operators = &config.mirror.operators;
    if operators.is_empty() {
        return Ok(None);
    }
    say(
        opts,
        &format!("reading {} operator catalog(s)...", operators.len()),
    );
    let c = catalog::plan_catalogs(client, operators, &opts.arch, opts.keep_going, opts.quiet)?;
    let known: HashSet<String> = wanted.iter().map(|w| w.source.clone()).collect();
    wanted.extend(
        c.wanted
            .iter()
            .filter(|w| !known.contains(&w.source))
            .cloned(),
    );
    Ok(Some(c))
}

/// Adds what releases bring besides their images: signatures, the graph-data image, records.
fn add_releases(plan: &mut Plan, r: release::Planned) {
    plan.inline.extend(r.inline);
    if let Some(g) = r.graph {
        plan.add_made([g.image], g.manifests, g.blobs, g.inline);
        plan.graph_data = Some(g.record);
    }
    plan.releases = r.releases;
    plan.notes.extend(r.notes);
    plan.failures.extend(r.failures);
}
