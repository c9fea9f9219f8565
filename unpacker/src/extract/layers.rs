//! Finding one file in an image's layers on the media, as a container runtime would see it:
//! the top layer first, a whiteout (`.wh.NAME`) or an opaque directory (`.wh..wh..opq`) in an
//! upper layer hides what lower layers hold. Layers are streamed (gzip or plain tar, told by
//! their first bytes), never unpacked: the file found goes to a caller's sink, everything
//! else is read past. Each layer read is read to its end and checked against the signed
//! index, so a caller can trust what it received once [`find_file`] returns `Ok`.

use std::io::{self, BufRead, BufReader, Read};

use anyhow::{anyhow, bail, Context, Result};
use ferry_format::archive::ArchiveSet;
use ferry_format::manifest::Descriptor;
use ferry_format::Digest;

/// Where the file was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub layer: Digest,
    /// The file's size (bytes).
    pub size: u64,
}

/// What one layer says about the path.
#[derive(Debug, PartialEq, Eq)]
enum InLayer {
    File(u64),
    /// A whiteout of the path or of a directory above it.
    Deleted,
    /// A directory above the path is opaque: lower layers do not count.
    Opaque,
    Nothing,
}

/// Receives the file's bytes.
pub type Sink<'s> = dyn FnMut(&mut dyn Read) -> Result<()> + 's;

/// Looks for `path` (relative, as `usr/bin/oc`) in `layers` (bottom first, as a manifest
/// lists them) and streams it into `sink`. `None`: no layer has it (or an upper layer
/// deleted it).
pub fn find_file(
    archives: &ArchiveSet,
    layers: &[Descriptor],
    path: &str,
    sink: &mut Sink<'_>,
) -> Result<Option<Found>> {
    for layer in layers.iter().rev() {
        match scan_layer(archives, &layer.digest, path, sink)? {
            InLayer::File(size) => {
                return Ok(Some(Found {
                    layer: layer.digest.clone(),
                    size,
                }))
            }
            InLayer::Deleted | InLayer::Opaque => return Ok(None),
            InLayer::Nothing => {}
        }
    }
    Ok(None)
}

/// Streams one layer through, sending `path` to `sink` if it is there; then reads the rest
/// of the blob and checks it against the index.
fn scan_layer(
    archives: &ArchiveSet,
    digest: &Digest,
    path: &str,
    sink: &mut Sink<'_>,
) -> Result<InLayer> {
    let located = archives.locate(digest).ok_or_else(|| {
        anyhow!("layer {digest} is not on the media (for a delta, give --base-media with the archive that carries it)")
    })?;
    let mut blob = BufReader::with_capacity(1 << 20, located.reader("layer")?);
    let head: Vec<u8> = blob
        .fill_buf()
        .context("reading a layer")?
        .iter()
        .take(4)
        .copied()
        .collect();
    let walked = if head.starts_with(&[0x1f, 0x8b]) {
        walk(flate2::read::MultiGzDecoder::new(&mut blob), path, sink)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        bail!("layer {digest} is zstd-compressed; extract reads gzip and uncompressed layers only")
    } else {
        walk(&mut blob, path, sink)
    };
    // Whatever the walk made of it, the verdict on the bytes comes first: damaged media is
    // the likelier cause of a tar that does not parse.
    io::copy(&mut blob, &mut io::sink()).context("reading a layer")?;
    blob.into_inner()
        .verdict()
        .context("the layer does not match the signed index; run `ferry-unpack verify` (and `repair` if it has parity)")?;
    walked.with_context(|| format!("reading layer {digest}"))
}

/// Walks the tar entries (the caller reads the blob to its end for the hash).
fn walk<R: Read>(layer: R, path: &str, sink: &mut Sink<'_>) -> Result<InLayer> {
    let mut archive = tar::Archive::new(layer);
    let mut seen = InLayer::Nothing;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path_bytes();
        let name = normalise(&String::from_utf8_lossy(&raw)).to_string();
        if name == path {
            let kind = entry.header().entry_type();
            if matches!(seen, InLayer::File(_)) {
                bail!("{path} appears twice in one layer");
            }
            if !kind.is_file() {
                bail!("{path} is not a regular file in the image ({kind:?}); extract follows no links");
            }
            let size = entry.size();
            sink(&mut entry).with_context(|| format!("writing {path}"))?;
            seen = InLayer::File(size);
            continue;
        }
        if seen == InLayer::Nothing {
            seen = whiteout(&name, path);
        }
    }
    Ok(seen)
}

/// `./usr/bin/oc`, `/usr/bin/oc` and `usr/bin/oc/` all name `usr/bin/oc`.
fn normalise(name: &str) -> &str {
    let mut n = name;
    while let Some(rest) = n.strip_prefix("./").or_else(|| n.strip_prefix('/')) {
        n = rest;
    }
    n.trim_end_matches('/')
}

/// What a whiteout entry `name` means for `path`.
fn whiteout(name: &str, path: &str) -> InLayer {
    let (dir, base) = match name.rsplit_once('/') {
        Some((d, b)) => (d, b),
        None => ("", name),
    };
    let under = |d: &str| d.is_empty() || path.starts_with(&format!("{d}/"));
    if base == ".wh..wh..opq" {
        return if under(dir) {
            InLayer::Opaque
        } else {
            InLayer::Nothing
        };
    }
    let Some(hidden) = base.strip_prefix(".wh.") else {
        return InLayer::Nothing;
    };
    let hidden = if dir.is_empty() {
        hidden.to_string()
    } else {
        format!("{dir}/{hidden}")
    };
    if path == hidden || path.starts_with(&format!("{hidden}/")) {
        InLayer::Deleted
    } else {
        InLayer::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise("./usr/bin/oc"), "usr/bin/oc");
        assert_eq!(normalise("/usr/bin/oc"), "usr/bin/oc");
        assert_eq!(normalise("usr/bin/"), "usr/bin");
        assert_eq!(normalise("././usr"), "usr");
    }

    #[test]
    fn whiteouts_hide_the_path_or_its_directories() {
        let p = "usr/bin/oc";
        assert_eq!(whiteout("usr/bin/.wh.oc", p), InLayer::Deleted);
        assert_eq!(whiteout("usr/.wh.bin", p), InLayer::Deleted);
        assert_eq!(whiteout(".wh.usr", p), InLayer::Deleted);
        assert_eq!(whiteout("usr/bin/.wh.ocx", p), InLayer::Nothing);
        assert_eq!(whiteout("usr/bin/.wh..wh..opq", p), InLayer::Opaque);
        assert_eq!(whiteout("usr/.wh..wh..opq", p), InLayer::Opaque);
        assert_eq!(whiteout("usr/lib/.wh..wh..opq", p), InLayer::Nothing);
        assert_eq!(whiteout("usr/bin/kubectl", p), InLayer::Nothing);
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn walk_collect(layer: &[u8], path: &str) -> Result<(InLayer, Vec<u8>)> {
        let mut got = Vec::new();
        let seen = walk(layer, path, &mut |r: &mut dyn Read| {
            r.read_to_end(&mut got)?;
            Ok(())
        })?;
        Ok((seen, got))
    }

    #[test]
    fn the_file_is_streamed_and_the_rest_read_past() {
        let layer = tar_of(&[
            ("./usr/bin/kubectl", b"k"),
            ("./usr/bin/oc", b"the binary"),
            ("./usr/share/x", b"x"),
        ]);
        let (seen, got) = walk_collect(&layer, "usr/bin/oc").unwrap();
        assert_eq!(seen, InLayer::File(10));
        assert_eq!(got, b"the binary");
        let (seen, got) = walk_collect(&layer, "usr/bin/ccoctl").unwrap();
        assert_eq!(seen, InLayer::Nothing);
        assert!(got.is_empty());
    }

    #[test]
    fn twice_in_one_layer_and_links_are_refused() {
        let layer = tar_of(&[("usr/bin/oc", b"a"), ("usr/bin/oc", b"b")]);
        let e = walk_collect(&layer, "usr/bin/oc").unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "usr/bin/oc", "/etc/shadow").unwrap();
        let layer = b.into_inner().unwrap();
        let e = walk_collect(&layer, "usr/bin/oc").unwrap_err();
        assert!(e.to_string().contains("follows no links"), "{e}");
    }
}
