//! Token auth against distribution's `auth: token` with a real JWT issuer; passphrase-protected
//! signing keys; secrets never in the logs, even with --verbose.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use base64::Engine as _;
use ferry_e2e::{bin, digest_of, ferry, keygen, Run};
use ferry_fixtures::registry::TestRegistry;
use ferry_fixtures::token::TokenIssuer;
use ferry_registry::auth::AuthFile;
use ferry_registry::{Client, ClientOptions, Repo};

const USER: &str = "token-user";
const PASSWORD: &str = "t0ken-Secret-for-ferry";

fn authfile(dir: &std::path::Path, host: &str) -> std::path::PathBuf {
    let p = dir.join("auth.json");
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &p,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn bearer_token_auth_pack_and_push_and_no_secret_in_verbose_logs() {
    let issuer = TokenIssuer::start(USER, PASSWORD).unwrap();
    let reg = TestRegistry::start_token_auth(&issuer).unwrap();
    let work = tempfile::tempdir().unwrap();
    let auth = authfile(work.path(), &reg.host);
    let client = Client::new(ClientOptions {
        auth: Some(AuthFile::load(&auth).unwrap()),
        ..Default::default()
    })
    .unwrap();
    let img = ferry_fixtures::image::image(
        "tok",
        "amd64",
        vec![ferry_fixtures::image::layer(91, 80_000, false)],
        false,
    );
    let digest = ferry_fixtures::seed::push_image(
        &client,
        &Repo::new(reg.host.clone(), "secure/app"),
        Some("1"),
        &img,
    )
    .unwrap();
    assert!(
        issuer.issued.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no token was issued"
    );

    let key = keygen(work.path(), "k");
    let cfg = work.path().join("isc.yaml");
    std::fs::write(
        &cfg,
        format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: {}/secure/app:1\n", reg.host),
    )
    .unwrap();
    let archive = work.path().join("archive");
    let (cfg_s, arc_s, key_s, auth_s) = (
        cfg.to_str().unwrap(),
        archive.to_str().unwrap(),
        key.to_str().unwrap(),
        auth.to_str().unwrap(),
    );

    let denied = ferry(
        "ferry-pack",
        &["--config", cfg_s, "--to", arc_s, "--sign-key", key_s],
    );
    assert!(!denied.ok);
    assert!(denied.stderr.contains("podman login"), "{}", denied.stderr);

    let packed = ferry(
        "ferry-pack",
        &[
            "--config",
            cfg_s,
            "--to",
            arc_s,
            "--sign-key",
            key_s,
            "--authfile",
            auth_s,
            "--verbose",
        ],
    );
    assert!(packed.ok, "{}", packed.text());
    assert!(
        packed.stderr.contains("debug: GET")
            && packed
                .stderr
                .contains("(token for repository:secure/app:pull)"),
        "{}",
        packed.stderr
    );
    let pubkey = format!("{key_s}.pub");
    let to = format!("{}/mirror", reg.host);
    let pushed = ferry(
        "ferry-unpack",
        &[
            "push",
            arc_s,
            "--trust",
            &pubkey,
            "--to",
            &to,
            "--authfile",
            auth_s,
            "--verbose",
        ],
    );
    assert!(pushed.ok, "{}", pushed.text());

    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ])
        .arg(format!("docker://{}/mirror/secure/app@{digest}", reg.host))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(digest_of(&out.stdout), digest.to_string());

    // Neither the password, its base64 form, nor any issued token reaches the logs or the media.
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for run in [&denied, &packed, &pushed] {
        for secret in [PASSWORD, b64.as_str(), "eyJ"] {
            assert!(!run.text().contains(secret), "secret {secret:?} in output");
        }
    }
    for f in std::fs::read_dir(&archive).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        for secret in [PASSWORD, b64.as_str()] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "secret in media"
            );
        }
    }
}

#[test]
fn passphrase_protected_signing_key() {
    let w = ferry_e2e::World::new();
    let key = w.path("locked.key");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "open sesame", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    let archive = w.path("archive");
    let run = |pass: Option<&str>| -> Run {
        let mut c = Command::new(bin("ferry-pack"));
        c.args([
            "--config",
            w.config.to_str().unwrap(),
            "--to",
            archive.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
            "-q",
        ])
        .env("REGISTRY_AUTH_FILE", "/nonexistent")
        .env_remove("FERRY_SIGN_KEY_PASSPHRASE");
        if let Some(p) = pass {
            c.env("FERRY_SIGN_KEY_PASSPHRASE", p);
        }
        c.output().unwrap().into()
    };
    let none = run(None);
    assert!(!none.ok);
    assert!(
        none.stderr.contains("FERRY_SIGN_KEY_PASSPHRASE"),
        "{}",
        none.stderr
    );
    let wrong = run(Some("wrong"));
    assert!(
        !wrong.ok && wrong.stderr.contains("wrong passphrase"),
        "{}",
        wrong.stderr
    );
    let right = run(Some("open sesame"));
    assert!(right.ok, "{}", right.text());

    // On a terminal (a pty from script(1)) the passphrase is asked for, without echo.
    let prompted = w.path("prompted");
    let cmd = format!(
        "{} --config {} --to {} --sign-key {} -q",
        bin("ferry-pack").display(),
        w.config.display(),
        prompted.display(),
        key.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(sleep 1; echo 'open sesame') | script -q -c '{cmd}' /dev/null"
        ))
        .env("REGISTRY_AUTH_FILE", "/nonexistent")
        .env_remove("FERRY_SIGN_KEY_PASSPHRASE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("passphrase for"), "{text}");
    assert!(
        !text.contains("open sesame"),
        "the passphrase was echoed: {text}"
    );
    assert!(prompted.join("ferry-index.json").exists(), "{text}");
    let pubkey = format!("{}.pub", key.display());
    let v = ferry(
        "ferry-unpack",
        &["verify", archive.to_str().unwrap(), "--trust", &pubkey],
    );
    assert!(v.ok, "{}", v.text());
}
