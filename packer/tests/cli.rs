//! The ferry-pack command line: help that teaches, and clear refusals before any network use.

use std::process::Command;

fn pack(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry-pack"))
        .args(args)
        .env("REGISTRY_AUTH_FILE", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn help_shows_an_example() {
    let (ok, text) = pack(&["--help"]);
    assert!(ok);
    assert!(
        text.contains("--volume-size") && text.contains("ssh-keygen -t ed25519"),
        "{text}"
    );
}

#[test]
fn sections_ferry_cannot_pack_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("isc.yaml");
    let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/realdata/imageset/v2alpha1/sparse_manifest__isc-platforms-and-archs.yaml",
    );
    std::fs::copy(real, &cfg).unwrap();
    let (ok, text) = pack(&["--config", cfg.to_str().unwrap(), "--dry-run"]);
    assert!(!ok);
    // A sparse release (platform.platforms) is named; the channel and the additional image's
    // own platforms are packed.
    assert!(text.contains("mirror.platform.platforms"), "{text}");
    assert!(
        !text.contains("mirror.additionalImages") && !text.contains("mirror.platform.channels"),
        "{text}"
    );
}

#[test]
fn missing_sign_key_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("isc.yaml");
    std::fs::write(
        &cfg,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: 127.0.0.1:9/a:1\n",
    )
    .unwrap();
    let (ok, text) = pack(&[
        "--config",
        cfg.to_str().unwrap(),
        "--to",
        dir.path().join("out").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        text.contains("--sign-key") && text.contains("ssh-keygen"),
        "{text}"
    );
}

/// `list releases` on the real stable-4.13 graph (98 nodes, conditional edges), offline: the
/// versions of the channel in version order, each conditional edge's risks on its target, and
/// the newest as the default selection; worked out here from the JSON alone.
#[test]
fn list_releases_reads_a_real_saved_graph() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/realdata/release/graph-amd64-stable-4.13.json");
    let g: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let key = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    let mut want: Vec<(Vec<u64>, String, String)> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            n["metadata"]["io.openshift.upgrades.graph.release.channels"]
                .as_str()
                .unwrap_or("")
                .split(',')
                .any(|c| c == "stable-4.13")
        })
        .map(|n| {
            let v = n["version"].as_str().unwrap().to_string();
            (key(&v), v, n["payload"].as_str().unwrap().to_string())
        })
        .collect();
    want.sort();
    assert!(want.len() > 20);
    let mut risks: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for c in g["conditionalEdges"].as_array().unwrap() {
        for e in c["edges"].as_array().unwrap() {
            for r in c["risks"].as_array().unwrap() {
                risks
                    .entry(e["to"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(r["name"].as_str().unwrap().to_string());
            }
        }
    }

    let (ok, text) = pack(&[
        "list",
        "releases",
        "--channel",
        "stable-4.13",
        "--graph-file",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{text}");
    let l: serde_json::Value = serde_json::from_str(&text).unwrap();
    let got = l["releases"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (r, (_, v, payload)) in got.iter().zip(&want) {
        assert_eq!(r["version"], *v);
        assert_eq!(r["payload"], *payload);
        let expected: Vec<String> = risks.get(v).into_iter().flatten().cloned().collect();
        let listed: Vec<String> = r["conditionalRisks"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        assert_eq!(listed, expected, "risks into {v}");
    }
    assert_eq!(l["defaultSelection"][0], want.last().unwrap().1);
}

#[test]
fn list_needs_a_channel_or_a_saved_graph() {
    let (ok, text) = pack(&["list", "releases"]);
    assert!(!ok);
    assert!(
        text.contains("--channel") && text.contains("--graph-file"),
        "{text}"
    );
    // A subcommand does not take the pack flags.
    let (ok, text) = pack(&["--config", "x.yaml", "list", "releases"]);
    assert!(!ok, "{text}");
}
