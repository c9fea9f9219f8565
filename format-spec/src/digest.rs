//! Content digests: `sha256:<64 lowercase hex>`, the only algorithm format v1 accepts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated sha256 content digest. Its 64 lowercase hex characters are held inline: an
/// index at catalog scale holds hundreds of thousands of digests, and a clone or a comparison
/// then costs no allocation and no pointer chase. Ordered as its text is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: [u8; 64],
}

/// Why a string is not a digest ferry accepts.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest {value:?}: {reason}")]
pub struct DigestError {
    value: String,
    reason: &'static str,
}

impl Digest {
    /// Builds a digest from 32 raw sha256 bytes.
    pub fn from_sha256_bytes(bytes: &[u8; 32]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (i, b) in bytes.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        Digest { hex }
    }

    /// Computes the sha256 digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        let out: [u8; 32] = sha2::Sha256::digest(bytes).into();
        Self::from_sha256_bytes(&out)
    }

    /// The 64 hex characters, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        std::str::from_utf8(&self.hex).expect("a digest is ASCII hex")
    }

    /// Path of this blob inside the `v2/` OCI layout.
    pub fn blob_path(&self) -> String {
        format!("v2/blobs/sha256/{}", self.hex())
    }

    /// A short form for messages (`sha256:0123456789ab`).
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.hex()[..12])
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| DigestError {
            value: s.chars().take(100).collect(),
            reason,
        };
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| err("only sha256 digests are supported"))?;
        if hex.len() != 64 {
            return Err(err("a sha256 digest has 64 hex characters"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("a digest is lowercase hex"));
        }
        let mut out = [0u8; 64];
        out.copy_from_slice(hex.as_bytes());
        Ok(Digest { hex: out })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "sha512:00",
            "sha256:abc",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} accepted");
        }
    }
}
