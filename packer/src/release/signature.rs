//! Release signatures: fetching them from a signature store and verifying them offline
//! against an OpenPGP keyring.
//!
//! A store serves `<url>/sha256=<hex>/signature-1`, `-2`, ... for each release digest (the
//! first 404 ends the list). Each is an OpenPGP signed message (usually compressed) whose
//! literal data is an "atomic container signature" JSON document:
//! `{"critical": {"type": "atomic container signature", "image": {"docker-manifest-digest":
//! "sha256:..."}, "identity": {"docker-reference": "..."}}, "optional": {...}}`.
//!
//! A signature counts when it verifies against a key of the keyring *and* names the release
//! digest. OpenPGP is done by the `pgp` crate (rPGP); nothing here parses packets by hand.

use std::io::BufReader;

use anyhow::{anyhow, bail, Context, Result};
use ferry_format::Digest;
use pgp::composed::{Deserializable, Message, SignedPublicKey};
use pgp::types::KeyDetails;
use serde::Deserialize;

/// Default signature store (Red Hat's, as in the release payload's cluster-update-keys).
pub const DEFAULT_SIGNATURE_URL: &str =
    "https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release";
/// Signatures per release read at most (stores hold one or two).
pub const MAX_SIGNATURES: usize = 16;
/// Largest signature accepted (real ones are under 1 KiB).
pub const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;

/// Trusted OpenPGP public keys.
#[derive(Debug, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// A signature that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Fingerprint (hex) of the key that made it.
    pub fingerprint: String,
    /// `critical.identity.docker-reference`.
    pub identity: String,
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: PayloadImage,
    #[serde(default)]
    identity: Option<Identity>,
}

#[derive(Deserialize)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference", default)]
    reference: String,
}

impl Keyring {
    /// Reads keys from bytes: binary OpenPGP keys, or text holding one or more armored
    /// `PUBLIC KEY BLOCK`s anywhere in it (an `.asc` file, or a ConfigMap such as the release
    /// payload's `0000_90_cluster-update-keys_configmap.yaml`, whose blocks are indented).
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Keyring> {
        let mut keys = Vec::new();
        let text = std::str::from_utf8(bytes).ok();
        let armored = text.map(armored_blocks).unwrap_or_default();
        if !armored.is_empty() {
            for block in armored {
                let (iter, _) = SignedPublicKey::from_armor_many(block.as_bytes())
                    .with_context(|| format!("{origin}: unreadable armored key block"))?;
                for k in iter {
                    keys.push(k.with_context(|| format!("{origin}: unreadable key"))?);
                }
            }
        } else {
            let iter = SignedPublicKey::from_bytes_many(BufReader::new(bytes))
                .with_context(|| format!("{origin}: not OpenPGP public keys"))?;
            for k in iter {
                keys.push(k.with_context(|| format!("{origin}: unreadable key"))?);
            }
        }
        if keys.is_empty() {
            bail!("{origin} holds no OpenPGP public key (armored or binary)");
        }
        for k in &keys {
            k.verify().with_context(|| {
                format!("{origin}: key {} has invalid self-signatures", hex_fp(k))
            })?;
        }
        Ok(Keyring { keys })
    }

    /// Fingerprints of the keys (upper-case hex), for messages and docs.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(hex_fp).collect()
    }

    /// Verifies one signature over `digest`. The error says why it does not count.
    pub fn verify(&self, signature: &[u8], digest: &Digest) -> Result<Verified> {
        let message = Message::from_bytes(BufReader::new(signature))
            .map_err(|e| anyhow!("not an OpenPGP message: {e}"))?;
        let mut message = message
            .decompress()
            .map_err(|e| anyhow!("cannot decompress the OpenPGP message: {e}"))?;
        if !message.is_signed() {
            bail!("the OpenPGP message is not signed");
        }
        let data = message
            .as_data_vec()
            .map_err(|e| anyhow!("cannot read the signed data: {e}"))?;
        let mut by = None;
        for key in &self.keys {
            if message.verify(key).is_ok() {
                by = Some(hex_fp(key));
                break;
            }
            if key.public_subkeys.iter().any(|s| message.verify(s).is_ok()) {
                by = Some(hex_fp(key));
                break;
            }
        }
        let Some(fingerprint) = by else {
            bail!(
                "not signed by a trusted key (keyring holds {})",
                self.fingerprints().join(", ")
            );
        };
        let payload: Payload = serde_json::from_slice(&data)
            .context("the signed data is not an atomic container signature")?;
        if payload.critical.kind != "atomic container signature" {
            bail!(
                "the signed data has type {:?}, not \"atomic container signature\"",
                payload.critical.kind
            );
        }
        if payload.critical.image.digest != digest.to_string() {
            bail!(
                "it signs {}, not this release ({digest})",
                payload.critical.image.digest
            );
        }
        Ok(Verified {
            fingerprint,
            identity: payload
                .critical
                .identity
                .map(|i| i.reference)
                .unwrap_or_default(),
        })
    }
}

fn hex_fp(k: &SignedPublicKey) -> String {
    hex::encode_upper(k.fingerprint().as_bytes())
}

/// The armored public key blocks in a text, with any common indentation removed.
fn armored_blocks(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
    const END: &str = "-----END PGP PUBLIC KEY BLOCK-----";
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t == BEGIN {
            current = Some(format!("{BEGIN}\n"));
        } else if let Some(block) = current.as_mut() {
            block.push_str(t);
            block.push('\n');
            if t == END {
                out.extend(current.take());
            }
        }
    }
    out
}

/// The URL of signature `n` (from 1) of a release digest in a store.
pub fn signature_url(store: &str, digest: &Digest, n: usize) -> String {
    format!(
        "{}/sha256={}/signature-{n}",
        store.trim_end_matches('/'),
        digest.hex()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realdata(p: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/realdata/release")
                .join(p),
        )
        .unwrap()
    }

    /// The real Red Hat signature of 4.15.0 verifies with the real key, and only for its digest.
    #[test]
    fn real_red_hat_signature_verifies() {
        let ring =
            Keyring::from_bytes(&realdata("verifier-public-key-redhat-release"), "key").unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(&realdata("release-signature-1.payload.json")).unwrap();
        let digest: Digest = payload["critical"]["image"]["docker-manifest-digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let sig = realdata("release-signature-1.gpg");
        let v = ring.verify(&sig, &digest).unwrap();
        assert_eq!(v.fingerprint, "567E347AD0044ADE55BA8A5F199E2F91FD431D51");
        assert!(v.identity.contains("ocp-release:4.15.0"));
        let other: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let e = ring.verify(&sig, &other).unwrap_err();
        assert!(format!("{e:#}").contains("not this release"), "{e:#}");
        // A flipped byte breaks it.
        let mut bad = sig.clone();
        let n = bad.len();
        bad[n - 20] ^= 1;
        assert!(ring.verify(&bad, &digest).is_err());
    }

    /// The keys can come straight from the payload's cluster-update-keys ConfigMap.
    #[test]
    fn keys_from_a_configmap() {
        let ring = Keyring::from_bytes(
            &realdata("0000_90_cluster-update-keys_configmap.yaml"),
            "cm",
        )
        .unwrap();
        assert!(ring
            .fingerprints()
            .contains(&"567E347AD0044ADE55BA8A5F199E2F91FD431D51".to_string()));
        let e = Keyring::from_bytes(b"hello", "junk").unwrap_err();
        assert!(format!("{e:#}").contains("junk"));
    }

    #[test]
    fn store_urls() {
        let d: Digest = format!("sha256:{}", "0a".repeat(32)).parse().unwrap();
        assert_eq!(
            signature_url("http://h/sigs/", &d, 2),
            format!("http://h/sigs/sha256={}/signature-2", "0a".repeat(32))
        );
    }
}
