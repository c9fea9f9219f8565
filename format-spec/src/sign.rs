//! Index signatures: OpenSSH SSHSIG over the exact index bytes, namespace `ferry-index`,
//! sha512, ed25519 keys. The armored signature is the same that `ssh-keygen -Y sign` writes, so
//! an auditor can check it with `ssh-keygen -Y verify` and no ferry at all (see SPEC.md).
//!
//! Verification is always here; signing needs the feature `sign`, and decrypting a
//! passphrase-protected key the feature `encrypted-keys` (the disconnected side has neither).

use std::path::Path;

#[cfg(feature = "sign")]
use ssh_key::LineEnding;
use ssh_key::{Algorithm, HashAlg, SshSig};
pub use ssh_key::{PrivateKey, PublicKey};

use crate::SIGNATURE_NAMESPACE;

/// Why signing or verification failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read key {path}: {msg}")]
    ReadKey { path: String, msg: String },
    #[error("key {path} is {alg}; ferry signs with ed25519 keys (make one with: ssh-keygen -t ed25519 -f KEY)")]
    WrongAlgorithm { path: String, alg: String },
    #[error("key {path} is protected by a passphrase; run on a terminal to be asked for it, or set the environment variable FERRY_SIGN_KEY_PASSPHRASE")]
    NeedPassphrase { path: String },
    #[error("key {path} is protected by a passphrase, and this program is built without support for encrypted keys; sign with ssh-keygen -Y sign instead, or use an unencrypted key")]
    Encrypted { path: String },
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("cannot read what is to be signed: {0}")]
    Read(#[from] std::io::Error),
    #[error("signature is not an armored SSHSIG: {0}")]
    Malformed(String),
    #[error("signature namespace is {0:?}, expected {SIGNATURE_NAMESPACE:?}")]
    Namespace(String),
    #[error("signature was made by key {found}, not by the trusted key {trusted}")]
    WrongKey { found: String, trusted: String },
    #[error("signature does not match the index bytes: the index was altered after signing")]
    Mismatch,
}

/// The environment variable that holds a signing key's passphrase (read by the programs, which
/// also ask on a terminal; this crate never prompts).
pub const PASSPHRASE_ENV: &str = "FERRY_SIGN_KEY_PASSPHRASE";

/// Loads an OpenSSH ed25519 private key, decrypting it with `passphrase` when it is encrypted
/// (feature `encrypted-keys`; without it an encrypted key is refused with advice).
#[cfg(feature = "sign")]
pub fn load_private_key(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, SignError> {
    let p = path.display().to_string();
    let key = PrivateKey::read_openssh_file(path).map_err(|e| SignError::ReadKey {
        path: p.clone(),
        msg: e.to_string(),
    })?;
    let key = if key.is_encrypted() {
        decrypt(key, &p, passphrase)?
    } else {
        key
    };
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(SignError::WrongAlgorithm {
            path: p,
            alg: key.algorithm().to_string(),
        });
    }
    Ok(key)
}

#[cfg(feature = "encrypted-keys")]
fn decrypt(key: PrivateKey, path: &str, passphrase: Option<&str>) -> Result<PrivateKey, SignError> {
    let pass = passphrase.ok_or(SignError::NeedPassphrase {
        path: path.to_string(),
    })?;
    key.decrypt(pass).map_err(|e| SignError::ReadKey {
        path: path.to_string(),
        msg: format!("wrong passphrase or unsupported cipher ({e})"),
    })
}

#[cfg(all(feature = "sign", not(feature = "encrypted-keys")))]
fn decrypt(_: PrivateKey, path: &str, _: Option<&str>) -> Result<PrivateKey, SignError> {
    Err(SignError::Encrypted {
        path: path.to_string(),
    })
}

/// Loads an OpenSSH public key (`ssh-ed25519 AAAA... comment`).
pub fn load_public_key(path: &Path) -> Result<PublicKey, SignError> {
    let p = path.display().to_string();
    let key = PublicKey::read_openssh_file(path).map_err(|e| SignError::ReadKey {
        path: p.clone(),
        msg: e.to_string(),
    })?;
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(SignError::WrongAlgorithm {
            path: p,
            alg: key.algorithm().to_string(),
        });
    }
    Ok(key)
}

/// Signs `message` in the ferry index namespace, returning the armored signature.
#[cfg(feature = "sign")]
pub fn sign(message: &[u8], key: &PrivateKey) -> Result<String, SignError> {
    sign_in(message, key, SIGNATURE_NAMESPACE)
}

/// Signs `message` in a given SSHSIG namespace, returning the armored signature.
#[cfg(feature = "sign")]
pub fn sign_in(message: &[u8], key: &PrivateKey, namespace: &str) -> Result<String, SignError> {
    let sig = key
        .sign(namespace, HashAlg::Sha512, message)
        .map_err(|e| SignError::Sign(e.to_string()))?;
    sig.to_pem(LineEnding::LF)
        .map_err(|e| SignError::Sign(e.to_string()))
}

/// Signs the bytes `message` yields in the ferry index namespace, reading them once: the
/// signature `sign` makes of the same bytes (ed25519 is deterministic), without holding a
/// catalog-scale index in memory.
#[cfg(feature = "sign")]
pub fn sign_stream(mut message: impl std::io::Read, key: &PrivateKey) -> Result<String, SignError> {
    use sha2::Digest as _;
    let mut hash = sha2::Sha512::new();
    std::io::copy(&mut message, &mut hash)?;
    sign_prehashed(&hash.finalize(), key, SIGNATURE_NAMESPACE)
}

/// An SSHSIG over a message of which `sha512` is the hash. What is signed is the blob of
/// PROTOCOL.sshsig: `"SSHSIG"`, then the namespace, the reserved field (empty), the hash
/// algorithm's name and the hash, each as an SSH string (a u32 big-endian length, the bytes).
#[cfg(feature = "sign")]
fn sign_prehashed(sha512: &[u8], key: &PrivateKey, namespace: &str) -> Result<String, SignError> {
    let mut signed = b"SSHSIG".to_vec();
    for field in [namespace.as_bytes(), b"", b"sha512", sha512] {
        let len = u32::try_from(field.len()).expect("short fields");
        signed.extend_from_slice(&len.to_be_bytes());
        signed.extend_from_slice(field);
    }
    let signature = try_sign(key, &signed)?;
    let public = key.public_key().key_data().clone();
    SshSig::new(public, namespace, HashAlg::Sha512, signature)
        .and_then(|sig| sig.to_pem(LineEnding::LF))
        .map_err(|e| SignError::Sign(e.to_string()))
}

/// `key`'s signature of `data` (generic so that the `Signer` supertrait's method is in reach
/// without depending on the `signature` crate).
#[cfg(feature = "sign")]
fn try_sign<S: ssh_key::SigningKey>(key: &S, data: &[u8]) -> Result<ssh_key::Signature, SignError> {
    key.try_sign(data)
        .map_err(|e| SignError::Sign(e.to_string()))
}

/// The length of an armored index signature: the same for every ed25519 key and message (a
/// fixed key, made from a constant seed, measures it).
#[cfg(feature = "sign")]
pub fn signature_len() -> usize {
    let key = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]));
    sign(b"any index", &key).map_or(0, |s| s.len())
}

/// Verifies an armored signature over `message` against the trusted key, in the ferry namespace.
pub fn verify(message: &[u8], armored: &[u8], trusted: &PublicKey) -> Result<(), SignError> {
    verify_in(message, armored, trusted, SIGNATURE_NAMESPACE)
}

/// Verifies an armored SSHSIG in a given namespace.
pub fn verify_in(
    message: &[u8],
    armored: &[u8],
    trusted: &PublicKey,
    namespace: &str,
) -> Result<(), SignError> {
    if armored.len() > 64 * 1024 {
        return Err(SignError::Malformed("larger than 64 KiB".into()));
    }
    let sig = SshSig::from_pem(armored).map_err(|e| SignError::Malformed(e.to_string()))?;
    if sig.namespace() != namespace {
        return Err(SignError::Namespace(sig.namespace().to_string()));
    }
    if sig.public_key() != trusted.key_data() {
        let found = PublicKey::from(sig.public_key().clone())
            .fingerprint(HashAlg::Sha256)
            .to_string();
        return Err(SignError::WrongKey {
            found,
            trusted: trusted.fingerprint(HashAlg::Sha256).to_string(),
        });
    }
    trusted
        .verify(namespace, message, &sig)
        .map_err(|_| SignError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realdata(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/realdata/oci/sshsig")
            .join(p)
    }

    /// The SSHSIG test vector from ssh-key's own test suite verifies with our code.
    #[test]
    fn verifies_real_sshsig_vector() {
        let key = load_public_key(&realdata("id_ed25519.pub")).unwrap();
        let sig = std::fs::read(realdata("sshsig_ed25519")).unwrap();
        verify_in(b"testing", &sig, &key, "example").unwrap();
        assert!(matches!(
            verify_in(b"testinG", &sig, &key, "example"),
            Err(SignError::Mismatch)
        ));
        assert!(matches!(
            verify(b"testing", &sig, &key),
            Err(SignError::Namespace(_))
        ));
    }

    /// A streamed signature is byte for byte the one ssh-key's SSHSIG makes of the same bytes
    /// (which `ssh-keygen -Y verify` accepts, see tests/volumes.rs), read in several pieces.
    #[cfg(feature = "sign")]
    #[test]
    fn a_streamed_signature_is_the_one_made_in_memory() {
        let key = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[5u8; 32]));
        let message: Vec<u8> = (0..3_000_017u32).map(|i| (i * 31 % 251) as u8).collect();
        let streamed = sign_stream(&message[..], &key).unwrap();
        assert_eq!(streamed, sign(&message, &key).unwrap());
        verify(&message, streamed.as_bytes(), key.public_key()).unwrap();
        let mut other = message.clone();
        other[2_000_000] ^= 1;
        assert_ne!(sign_stream(&other[..], &key).unwrap(), streamed);
    }

    #[test]
    fn non_ed25519_keys_are_refused() {
        assert!(matches!(
            load_public_key(&realdata("id_ecdsa_p256.pub")),
            Err(SignError::WrongAlgorithm { .. }) | Err(SignError::ReadKey { .. })
        ));
    }
}
