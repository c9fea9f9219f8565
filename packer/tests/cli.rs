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
