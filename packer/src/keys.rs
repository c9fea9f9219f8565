//! The signing key: loaded, and decrypted with a passphrase from `FERRY_SIGN_KEY_PASSPHRASE` or
//! asked for on the terminal (without echo). The prompt is the program's business, not the
//! format's.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use ferry_format::sign::{load_private_key, PrivateKey, SignError, PASSPHRASE_ENV};

pub fn load_signing_key(path: &Path) -> Result<PrivateKey> {
    if let Ok(pass) = std::env::var(PASSPHRASE_ENV) {
        return Ok(load_private_key(path, Some(&pass))?);
    }
    match load_private_key(path, None) {
        Err(SignError::NeedPassphrase { path: p }) if std::io::stdin().is_terminal() => {
            let pass =
                rpassword::prompt_password(format!("passphrase for {p}: ")).map_err(|e| {
                    SignError::ReadKey {
                        path: p.clone(),
                        msg: e.to_string(),
                    }
                })?;
            Ok(load_private_key(path, Some(&pass))?)
        }
        other => Ok(other?),
    }
}
