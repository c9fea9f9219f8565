//! The pack ceiling: every blob a profile's images name, fetched with one plain GET each (no
//! hashing, no retries, no Range), in parallel, each streamed to its own file and synced.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ferry_registry::{Client, ClientOptions, Repo};
use rayon::prelude::*;
use serde_json::{json, Value};

/// The unique blobs (config and layers) of `refs` (`REPO:TAG`), largest first: (repo, digest, size).
fn blobs_of(host: &str, refs: &[(String, String)]) -> Result<Vec<(String, String, u64)>> {
    let c = Client::new(ClientOptions::default())?;
    let mut found: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for (repo_name, tag) in refs {
        let repo = Repo::new(host, repo_name.clone());
        let mut todo = vec![tag.clone()];
        while let Some(r) = todo.pop() {
            let m: Value = serde_json::from_slice(&c.get_manifest(&repo, &r)?.bytes)?;
            if let Some(children) = m["manifests"].as_array() {
                todo.extend(
                    children
                        .iter()
                        .filter_map(|d| Some(d["digest"].as_str()?.to_string())),
                );
                continue;
            }
            let layers = m["layers"].as_array().context("manifest without layers")?;
            for d in layers.iter().chain(std::iter::once(&m["config"])) {
                let digest = d["digest"]
                    .as_str()
                    .context("descriptor digest")?
                    .to_string();
                let size = d["size"].as_u64().context("descriptor size")?;
                found.entry(digest).or_insert((repo_name.clone(), size));
            }
        }
    }
    let mut out: Vec<_> = found.into_iter().map(|(d, (r, s))| (r, d, s)).collect();
    out.sort_by_key(|b| std::cmp::Reverse(b.2));
    Ok(out)
}

/// Fetches every blob of `refs` from `host` into `out` on `jobs` threads; prints JSON figures.
pub fn get_raw(host: &str, refs: &[(String, String)], out: &Path, jobs: usize) -> Result<()> {
    let started = Instant::now();
    let blobs = blobs_of(host, refs)?;
    std::fs::create_dir_all(out)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections_per_host(64)
        .build()
        .into();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let bytes: u64 = pool.install(|| {
        // Largest first, each worker taking the next blob as it is free (par_bridge), so that
        // no worker is left with a run of blobs while the others idle.
        blobs
            .iter()
            .par_bridge()
            .map(|(repo, digest, size)| -> Result<u64> {
                let resp = agent
                    .get(format!("http://{host}/v2/{repo}/blobs/{digest}"))
                    .call()?;
                if resp.status().as_u16() != 200 {
                    bail!("GET {digest}: {}", resp.status());
                }
                let hex = digest.trim_start_matches("sha256:");
                let mut f = File::create(out.join(hex))?;
                let mut body = resp.into_body().into_reader();
                let mut buf = vec![0u8; 1 << 20];
                let mut got = 0u64;
                loop {
                    let n = body.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&buf[..n])?;
                    got += n as u64;
                }
                f.sync_all()?;
                if got != *size {
                    bail!("GET {digest}: {got} of {size} bytes");
                }
                Ok(got)
            })
            .try_reduce(|| 0, |a, b| Ok(a + b))
    })?;
    println!(
        "{}",
        json!({"blobs": blobs.len(), "bytes": bytes, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}
