//! The ferry-unpack command line: refusals that say what to do.

use std::process::Command;

fn unpack(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry-unpack"))
        .args(args)
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
fn verify_of_a_directory_without_an_archive_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/realdata/oci/sshsig/id_ed25519.pub");
    let (ok, text) = unpack(&[
        "verify",
        dir.path().to_str().unwrap(),
        "--trust",
        key.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        text.contains("is ") && text.contains("a ferry archive"),
        "{text}"
    );
}

#[test]
fn a_trust_key_that_is_not_ed25519_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/realdata/oci/sshsig/id_rsa_3072.pub");
    let (ok, text) = unpack(&[
        "verify",
        dir.path().to_str().unwrap(),
        "--trust",
        key.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        text.contains("cannot read key") || text.contains("ed25519"),
        "{text}"
    );
}
