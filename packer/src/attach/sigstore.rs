//! Checking cosign signatures at pack time, as a cluster node will: the simple-signing payload
//! names the image's manifest digest (`critical.image.docker-manifest-digest`), and the
//! signature in the layer annotation `dev.cosignproject.cosign/signature` verifies over the
//! payload bytes under a trusted key (ECDSA P-256 with SHA-256, cosign's default, or ed25519).

use anyhow::{bail, Context, Result};
use base64::Engine;
use ferry_format::index::{KeyAlgorithm, SigstoreKey};
use ferry_format::Digest;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use serde_json::Value;

/// The media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of a cosign signature payload.
pub const COSIGN_TYPE: &str = "cosign container image signature";
/// Largest payload read into memory (real ones are a few hundred bytes).
pub const MAX_PAYLOAD: u64 = 64 * 1024;

/// A trusted sigstore public key.
#[derive(Debug, Clone)]
pub struct Key {
    pub record: SigstoreKey,
    verifier: Verifier,
}

#[derive(Debug, Clone)]
enum Verifier {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Key {
    /// Reads a PEM public key (`-----BEGIN PUBLIC KEY-----`, as `cosign generate-key-pair`
    /// writes `cosign.pub`): ECDSA P-256 or ed25519.
    pub fn from_pem(pem: &str, what: &str) -> Result<Key> {
        let (verifier, der) = if let Ok(k) = p256::PublicKey::from_public_key_pem(pem) {
            let der = k.to_public_key_der().context("re-encoding the key")?;
            (Verifier::EcdsaP256(k.into()), der)
        } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            let der = k.to_public_key_der().context("re-encoding the key")?;
            (Verifier::Ed25519(k), der)
        } else {
            bail!(
                "{what} is not a PEM public key (-----BEGIN PUBLIC KEY-----) for ECDSA P-256 or ed25519; cosign writes one as cosign.pub"
            );
        };
        let algorithm = match verifier {
            Verifier::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            Verifier::Ed25519(_) => KeyAlgorithm::Ed25519,
        };
        Ok(Key {
            record: SigstoreKey {
                id: Digest::of(der.as_bytes()).to_string(),
                algorithm,
                pem: pem.trim().to_string() + "\n",
            },
            verifier,
        })
    }

    /// Reads a key file.
    pub fn load(path: &std::path::Path) -> Result<Key> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --sigstore-key {}", path.display()))?;
        Key::from_pem(&pem, &format!("--sigstore-key {}", path.display()))
    }

    /// Whether `signature` (as decoded from the annotation) verifies over `payload`.
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match &self.verifier {
            Verifier::EcdsaP256(k) => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(signature));
                sig.is_ok_and(|s| k.verify(payload, &s).is_ok())
            }
            Verifier::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify(payload, &s).is_ok()),
        }
    }
}

/// What a simple-signing payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `critical.image.docker-manifest-digest`.
    pub digest: Digest,
    /// `critical.identity.docker-reference` (the source repository it was signed for).
    pub identity: String,
}

/// Reads a cosign simple-signing payload.
pub fn claim(payload: &[u8]) -> Result<Claim> {
    let v: Value = serde_json::from_slice(payload).context("the payload is not JSON")?;
    let critical = field(&v, "critical").context("the payload has no `critical` section")?;
    let kind = field(critical, "type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !kind.eq_ignore_ascii_case(COSIGN_TYPE) {
        bail!("the payload's critical.type is {kind:?}, not {COSIGN_TYPE:?}");
    }
    let digest = field(critical, "image")
        .and_then(|i| field(i, "docker-manifest-digest"))
        .and_then(Value::as_str)
        .context("the payload names no critical.image.docker-manifest-digest")?;
    let identity = field(critical, "identity")
        .and_then(|i| field(i, "docker-reference"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(Claim {
        digest: digest
            .parse()
            .context("critical.image.docker-manifest-digest")?,
        identity,
    })
}

/// A JSON object field, matched without regard to case (Go's decoder, which cosign and
/// containers/image use, matches keys that way: `Docker-manifest-digest` is seen in the wild).
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Decodes the base64 signature of a layer annotation.
pub fn decode_signature(annotation: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(annotation.trim())
        .context("the signature annotation is not base64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::LineEnding;

    fn payload(digest: &Digest) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"quay.io/x/app"}},"image":{{"Docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes()
    }

    #[test]
    fn ecdsa_signatures_verify_under_their_key_only() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pem = sk
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let key = Key::from_pem(&pem, "test").unwrap();
        assert_eq!(key.record.algorithm, KeyAlgorithm::EcdsaP256);
        assert!(key.record.id.starts_with("sha256:"));
        let d = Digest::of(b"manifest");
        let p = payload(&d);
        let sig: p256::ecdsa::Signature = sk.sign(&p);
        let der = sig.to_der();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
        assert!(key.verifies(&p, &decode_signature(&b64).unwrap()));
        let mut other = p.clone();
        other[10] ^= 1;
        assert!(!key.verifies(&other, der.as_bytes()), "an altered payload");
        let foreign = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let foreign_pem = foreign
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let foreign = Key::from_pem(&foreign_pem, "test").unwrap();
        assert!(!foreign.verifies(&p, der.as_bytes()), "another key");
        assert_ne!(foreign.record.id, key.record.id);
        let c = claim(&p).unwrap();
        assert_eq!(c.digest, d);
        assert_eq!(c.identity, "quay.io/x/app");
    }

    #[test]
    fn ed25519_keys_and_bad_payloads() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
        let pem = sk
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let key = Key::from_pem(&pem, "test").unwrap();
        assert_eq!(key.record.algorithm, KeyAlgorithm::Ed25519);
        let p = payload(&Digest::of(b"m"));
        use ed25519_dalek::Signer as _;
        let sig = sk.sign(&p);
        assert!(key.verifies(&p, &sig.to_bytes()));
        assert!(Key::from_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "x"
        )
        .is_err());
        assert!(claim(br#"{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"sha256:00"}}}"#).is_err());
        assert!(claim(br#"{"critical":{"type":"cosign container image signature"}}"#).is_err());
    }
}
