//! Writing values into a binary's placeholders while it streams to disk, the way
//! `oc adm release extract --command` does: each placeholder (a NUL, a name, a NUL, a run of
//! `X`, a NUL) is matched exactly, its first occurrence gets the value and a terminating NUL
//! written from the placeholder's first byte on, and the rest of the binary passes through
//! unchanged. The binary's size never changes, so the value may be at most one byte shorter
//! than the placeholder.

use std::io::{self, Write};

/// The placeholders OpenShift's command binaries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Placeholder {
    /// The release image pullspec (the installer): `\0_RELEASE_IMAGE_LOCATION_\0`, 299 `X`, `\0`.
    ReleaseImage,
    /// The release version (the installer and oc): `\0_RELEASE_VERSION_LOCATION_\0`, 64 `X`, `\0`.
    ReleaseVersion,
}

impl Placeholder {
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::ReleaseImage => "release image",
            Placeholder::ReleaseVersion => "release version",
        }
    }

    /// The exact bytes matched.
    pub fn marker(self) -> Vec<u8> {
        let (name, xs) = match self {
            Placeholder::ReleaseImage => ("_RELEASE_IMAGE_LOCATION_", 299),
            Placeholder::ReleaseVersion => ("_RELEASE_VERSION_LOCATION_", 64),
        };
        let mut m = Vec::with_capacity(name.len() + xs + 3);
        m.push(0);
        m.extend_from_slice(name.as_bytes());
        m.push(0);
        m.resize(m.len() + xs, b'X');
        m.push(0);
        m
    }
}

/// A placeholder and the value it receives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Replacement {
    pub placeholder: Placeholder,
    pub value: String,
}

/// Why a value cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InjectError {
    #[error("the {name} value has {len} bytes; the binary's placeholder holds at most {max} (shorten the target's namespace)")]
    TooLong {
        name: &'static str,
        len: usize,
        max: usize,
    },
}

/// A writer that fills placeholders in what passes through it. [`Injector::finish`] says
/// which placeholders were never seen.
pub struct Injector<W: Write> {
    out: W,
    replacements: Vec<(Replacement, Vec<u8>, bool)>,
    /// Bytes received but not yet written: the tail that may hold the start of a placeholder.
    pending: Vec<u8>,
    longest: usize,
}

impl<W: Write> Injector<W> {
    /// Refuses a value longer than its placeholder allows.
    pub fn new(out: W, replacements: Vec<Replacement>) -> Result<Self, InjectError> {
        let mut with_markers = Vec::with_capacity(replacements.len());
        for r in replacements {
            let marker = r.placeholder.marker();
            let max = marker.len() - 1;
            if r.value.len() > max {
                return Err(InjectError::TooLong {
                    name: r.placeholder.name(),
                    len: r.value.len(),
                    max,
                });
            }
            with_markers.push((r, marker, false));
        }
        let longest = with_markers
            .iter()
            .map(|(_, m, _)| m.len())
            .max()
            .unwrap_or(0);
        Ok(Injector {
            out,
            replacements: with_markers,
            pending: Vec::new(),
            longest,
        })
    }

    fn remaining(&self) -> bool {
        self.replacements.iter().any(|(_, _, done)| !done)
    }

    /// Fills every placeholder found in `pending`, then writes all of it that cannot hold the
    /// start of a placeholder still missing.
    fn scan_and_flush(&mut self, last: bool) -> io::Result<()> {
        for (r, marker, done) in self.replacements.iter_mut().filter(|(_, _, d)| !d) {
            if let Some(at) = find(&self.pending, marker) {
                let v = r.value.as_bytes();
                self.pending[at..at + v.len()].copy_from_slice(v);
                self.pending[at + v.len()] = 0;
                *done = true;
            }
        }
        let keep = if last || !self.remaining() {
            0
        } else {
            self.longest - 1
        };
        let upto = self.pending.len().saturating_sub(keep);
        self.out.write_all(&self.pending[..upto])?;
        self.pending.drain(..upto);
        Ok(())
    }

    /// Writes what is left; returns the writer and the placeholders not found.
    pub fn finish(mut self) -> io::Result<(W, Vec<Placeholder>)> {
        self.scan_and_flush(true)?;
        self.out.flush()?;
        let missing = self
            .replacements
            .iter()
            .filter(|(_, _, done)| !done)
            .map(|(r, _, _)| r.placeholder)
            .collect();
        Ok((self.out, missing))
    }
}

impl<W: Write> Write for Injector<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.remaining() && self.pending.is_empty() {
            return self.out.write(buf);
        }
        self.pending.extend_from_slice(buf);
        self.scan_and_flush(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The first position of `needle` in `hay` (placeholders start with NUL: only NULs are tried).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let at = from + hay[from..].iter().position(|&b| b == first)?;
        if hay.len() - at < needle.len() {
            return None;
        }
        if &hay[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(value: &str) -> Replacement {
        Replacement {
            placeholder: Placeholder::ReleaseImage,
            value: value.into(),
        }
    }

    fn version(value: &str) -> Replacement {
        Replacement {
            placeholder: Placeholder::ReleaseVersion,
            value: value.into(),
        }
    }

    fn release_image_marker() -> Vec<u8> {
        Placeholder::ReleaseImage.marker()
    }

    fn release_version_marker() -> Vec<u8> {
        Placeholder::ReleaseVersion.marker()
    }

    /// Feeds `input` in chunks of `chunk` bytes.
    fn run(input: &[u8], chunk: usize, reps: Vec<Replacement>) -> (Vec<u8>, Vec<Placeholder>) {
        let mut inj = Injector::new(Vec::new(), reps).unwrap();
        for c in input.chunks(chunk) {
            inj.write_all(c).unwrap();
        }
        inj.finish().unwrap()
    }

    fn binary() -> Vec<u8> {
        let mut b = vec![7u8; 5000];
        b.extend_from_slice(b"\0_RELEASE_IMAGE_LOCATION_\0decoy\0");
        b.extend_from_slice(&release_image_marker());
        b.extend(vec![9u8; 333]);
        b.extend_from_slice(&release_version_marker());
        b.extend(vec![8u8; 4000]);
        b
    }

    #[test]
    fn values_land_at_the_placeholders_whatever_the_chunking() {
        let input = binary();
        let at = 5000 + 32;
        let v_at = at + release_image_marker().len() + 333;
        let pullspec = "mirror.site:5000/ocp/openshift-release-dev/ocp-release@sha256:0123";
        for chunk in [1, 7, 300, 301, 4096, 1 << 20] {
            let (out, missing) = run(&input, chunk, vec![image(pullspec), version("4.15.3")]);
            assert!(missing.is_empty(), "chunk {chunk}: {missing:?}");
            assert_eq!(out.len(), input.len(), "the size never changes");
            assert_eq!(&out[at..at + pullspec.len()], pullspec.as_bytes());
            assert_eq!(out[at + pullspec.len()], 0);
            assert_eq!(&out[v_at..v_at + 7], b"4.15.3\0");
            // Everything else is untouched.
            for (i, (a, b)) in input.iter().zip(&out).enumerate() {
                let in_image = (at..=at + pullspec.len()).contains(&i);
                let in_version = (v_at..v_at + 7).contains(&i);
                if !in_image && !in_version {
                    assert_eq!(a, b, "chunk {chunk}: byte {i} changed");
                }
            }
        }
    }

    #[test]
    fn a_missing_placeholder_is_reported_and_the_bytes_pass_unchanged() {
        let input = vec![3u8; 10_000];
        let (out, missing) = run(&input, 1000, vec![image("x"), version("4.15.3")]);
        assert_eq!(out, input);
        assert_eq!(
            missing,
            [Placeholder::ReleaseImage, Placeholder::ReleaseVersion]
        );
    }

    #[test]
    fn only_the_first_occurrence_is_filled() {
        let mut input = release_version_marker();
        input.extend(release_version_marker());
        let (out, missing) = run(&input, 10, vec![version("4.16.0")]);
        assert!(missing.is_empty());
        assert_eq!(&out[..7], b"4.16.0\0");
        assert_eq!(&out[93..], &release_version_marker()[..]);
    }

    #[test]
    fn a_value_longer_than_the_placeholder_is_refused() {
        // As in oc: the value may cover the whole placeholder but its last byte (the NUL).
        let e = Injector::new(Vec::new(), vec![version(&"x".repeat(93))])
            .err()
            .unwrap();
        assert_eq!(
            e,
            InjectError::TooLong {
                name: "release version",
                len: 93,
                max: 92
            }
        );
        assert!(Injector::new(Vec::new(), vec![image(&"y".repeat(326))]).is_err());
        assert!(Injector::new(Vec::new(), vec![image(&"y".repeat(325))]).is_ok());
    }
}
