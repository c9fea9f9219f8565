//! `install-config-mirrors.yaml`: the part of `install-config.yaml` that points the installer
//! at the mirror. `imageDigestSources` lists the same sources and mirrors as the
//! ImageDigestMirrorSet (the installer pulls the release and its components by digest only;
//! tag mirrors reach the cluster through the ImageTagMirrorSet after install), and, when the
//! mirror's CA is given, `additionalTrustBundle` with `additionalTrustBundlePolicy: Always` so
//! that every node and the cluster proxy trust the mirror, not only the bootstrap machine.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::OutFile;

/// The CA certificates of a PEM file, normalised: only the `CERTIFICATE` blocks, `\n` line
/// ends. `source` names the file in errors.
pub fn trust_bundle(pem: &str, source: &str) -> Result<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = String::new();
    let mut inside = false;
    for line in pem.lines().map(str::trim_end) {
        if line == BEGIN {
            if inside {
                bail!("{source}: a certificate block is not closed before the next one");
            }
            inside = true;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
        if line == END {
            if !inside {
                bail!("{source}: {END} without {BEGIN}");
            }
            inside = false;
        }
    }
    if inside {
        bail!("{source}: the last certificate block is not closed");
    }
    if out.is_empty() {
        bail!("{source} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA that signed the mirror registry's certificate");
    }
    Ok(out)
}

/// The file, from the digest mirrors (source repository → mirror) and the trust bundle.
pub fn install_config(
    by_digest: &BTreeMap<String, String>,
    bundle: Option<&str>,
) -> Result<OutFile> {
    let sources: Vec<Value> = by_digest
        .iter()
        .map(|(s, m)| json!({"source": s, "mirrors": [m]}))
        .collect();
    let mut text = String::from(
        "# Merge these keys into install-config.yaml (written by ferry-unpack).\n\
         # imageDigestSources: the mirrors of the ImageDigestMirrorSet, in install-config's shape.\n",
    );
    text.push_str(&serde_saphyr::to_string(
        &json!({ "imageDigestSources": sources }),
    )?);
    if let Some(pem) = bundle {
        text.push_str("additionalTrustBundlePolicy: Always\nadditionalTrustBundle: |\n");
        for line in pem.lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    Ok(OutFile {
        path: "install-config-mirrors.yaml".into(),
        bytes: text.into_bytes(),
    })
}
