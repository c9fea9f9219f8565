//! Walking what an index references: which image is which ([`ImageId`]), and everything an
//! image needs ([`Closure`]). Every reader of an index (push, verify, pack, the tests) walks
//! manifests through here.

use std::collections::BTreeSet;

use super::{Attachment, Catalog, GraphData, HelmChart, Image, Index, ManifestRecord, Release};
use crate::Digest;

/// Which image a record names: source registry, repository and top manifest digest. Two
/// records name the same image exactly when their ids are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    pub digest: &'a Digest,
}

impl Image {
    pub fn id(&self) -> ImageId<'_> {
        ImageId {
            registry: &self.registry,
            repository: &self.repository,
            digest: &self.digest,
        }
    }
}

impl Release {
    /// The release image.
    pub fn image_id(&self) -> ImageId<'_> {
        ImageId {
            registry: &self.registry,
            repository: &self.repository,
            digest: &self.digest,
        }
    }
}

impl Catalog {
    /// The rebuilt catalog image.
    pub fn image_id(&self) -> ImageId<'_> {
        ImageId {
            registry: &self.registry,
            repository: &self.repository,
            digest: &self.digest,
        }
    }
}

impl Attachment {
    /// The attachment's own image (its manifest, in its subject's repository).
    pub fn image_id(&self) -> ImageId<'_> {
        ImageId {
            registry: &self.registry,
            repository: &self.repository,
            digest: &self.digest,
        }
    }
}

impl HelmChart {
    /// The chart artifact.
    pub fn image_id(&self) -> ImageId<'_> {
        ImageId {
            registry: &self.registry,
            repository: &self.repository,
            digest: &self.digest,
        }
    }
}

impl GraphData {
    /// The graph-data image.
    pub fn image_id(&self) -> ImageId<'_> {
        ImageId {
            registry: &self.registry,
            repository: &self.repository,
            digest: &self.digest,
        }
    }
}

/// Everything one or more images need: their manifests in push order (every child before the
/// index that lists it) and the blobs (configs and layers) those manifests reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    /// Manifests, children first, each once.
    pub manifests: Vec<Digest>,
    pub blobs: BTreeSet<Digest>,
    seen: BTreeSet<Digest>,
}

impl Closure {
    /// Whether `d` (a manifest or a blob) is needed.
    pub fn contains(&self, d: &Digest) -> bool {
        self.seen.contains(d) || self.blobs.contains(d)
    }

    /// Adds everything below `root` that is not in the closure yet, looking manifests up in
    /// `manifests` (sorted by digest, as in an index). A digest that is not a manifest there is
    /// listed as a manifest without children (it was not carried).
    pub fn add(&mut self, manifests: &[ManifestRecord], root: &Digest) {
        self.add_with(root, |d| {
            lookup(manifests, d).map(|m| (m.children.as_slice(), m.blobs.as_slice()))
        })
    }

    /// Adds everything below `root`, asking `lookup` for a manifest's children and blobs (for
    /// manifests kept elsewhere than in an index, like a packer's plan).
    pub fn add_with<'a>(
        &mut self,
        root: &Digest,
        lookup: impl Fn(&Digest) -> Option<(&'a [Digest], &'a [Digest])>,
    ) {
        // Iterative depth-first post-order: (digest, whether its children are done). A digest
        // is marked when it is expanded, so that a child listed twice is still emitted before
        // every index that lists it.
        let mut stack: Vec<(Digest, bool)> = vec![(root.clone(), false)];
        while let Some((d, children_done)) = stack.pop() {
            let record = lookup(&d);
            if children_done {
                if let Some((_, blobs)) = record {
                    self.blobs.extend(blobs.iter().cloned());
                }
                self.manifests.push(d);
                continue;
            }
            if !self.seen.insert(d.clone()) {
                continue;
            }
            stack.push((d, true));
            if let Some((children, _)) = record {
                for c in children.iter().rev() {
                    if !self.seen.contains(c) {
                        stack.push((c.clone(), false));
                    }
                }
            }
        }
    }
}

fn lookup<'a>(manifests: &'a [ManifestRecord], d: &Digest) -> Option<&'a ManifestRecord> {
    manifests
        .binary_search_by(|m| m.digest.cmp(d))
        .ok()
        .map(|i| &manifests[i])
}

/// Keeps the attachments whose image is among `images` and whose subject `brought` says the
/// other images still bring, and drops the images of the attachments that go.
pub fn retain_attached(
    images: &mut Vec<Image>,
    attachments: &mut Vec<Attachment>,
    brought: impl Fn(&Digest) -> bool,
) {
    let original = std::mem::take(attachments);
    let is_attachment = |i: &Image| original.iter().any(|a| a.image_id() == i.id());
    *attachments = original
        .iter()
        .filter(|a| brought(&a.subject) && images.iter().any(|i| a.image_id() == i.id()))
        .cloned()
        .collect();
    let kept = &*attachments;
    images.retain(|i| !is_attachment(i) || kept.iter().any(|a| a.image_id() == i.id()));
}

/// Everything below `root` in a list of manifest records sorted by digest.
pub fn closure_of(manifests: &[ManifestRecord], root: &Digest) -> Closure {
    let mut c = Closure::default();
    c.add(manifests, root);
    c
}

impl Index {
    /// Everything the image with top manifest `root` needs.
    pub fn closure(&self, root: &Digest) -> Closure {
        closure_of(&self.manifests, root)
    }

    /// Whether `img` is an attachment (a signature or referrer of another image).
    pub fn is_attachment(&self, img: &Image) -> bool {
        self.attachments.iter().any(|a| a.image_id() == img.id())
    }

    /// The attachments whose subject is `img`'s top manifest, in its repository.
    pub fn attachments_of<'a>(&'a self, img: &'a Image) -> impl Iterator<Item = &'a Attachment> {
        self.attachments.iter().filter(move |a| {
            a.subject == img.digest && a.registry == img.registry && a.repository == img.repository
        })
    }

    /// Drops the attachments whose image or subject is no longer in the index (an image left
    /// out takes its attachments with it), and their images.
    pub fn without_orphan_attachments(mut self) -> Index {
        if self.attachments.is_empty() {
            return self;
        }
        let mut subjects = Closure::default();
        for img in self.images.iter().filter(|i| !self.is_attachment(i)) {
            subjects.add(&self.manifests, &img.digest);
        }
        retain_attached(&mut self.images, &mut self.attachments, |d| {
            subjects.contains(d)
        });
        self
    }

    /// Whether the image with top manifest `root` needs any of `digests`.
    pub fn needs_any(&self, root: &Digest, digests: &BTreeSet<&Digest>) -> bool {
        let c = self.closure(root);
        c.manifests
            .iter()
            .chain(&c.blobs)
            .any(|d| digests.contains(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn record(digest: Digest, children: Vec<Digest>, blobs: Vec<Digest>) -> ManifestRecord {
        ManifestRecord {
            digest,
            media_type: String::new(),
            children,
            blobs,
        }
    }

    #[test]
    fn children_come_before_their_index_and_shared_ones_once() {
        // index -> (a, b); a and b share layer 9; a second index lists b again.
        let (index, a, b, other) = (d(1), d(2), d(3), d(4));
        let mut ms = vec![
            record(index.clone(), vec![a.clone(), b.clone()], vec![]),
            record(a.clone(), vec![], vec![d(8), d(9)]),
            record(b.clone(), vec![], vec![d(9)]),
            record(other.clone(), vec![b.clone()], vec![]),
        ];
        ms.sort_by(|x, y| x.digest.cmp(&y.digest));
        let mut c = closure_of(&ms, &index);
        assert_eq!(c.manifests, vec![a.clone(), b.clone(), index.clone()]);
        assert_eq!(c.blobs, BTreeSet::from([d(8), d(9)]));
        c.add(&ms, &other);
        assert_eq!(c.manifests, vec![a, b, index, other.clone()]);
        assert!(c.contains(&other) && c.contains(&d(9)) && !c.contains(&d(7)));
    }

    #[test]
    fn a_child_listed_by_a_sibling_index_still_comes_first() {
        // root -> (y, c) and y -> c: c must precede y, and both precede root.
        let (root, y, c) = (d(1), d(2), d(3));
        let mut ms = vec![
            record(root.clone(), vec![y.clone(), c.clone()], vec![]),
            record(y.clone(), vec![c.clone()], vec![]),
            record(c.clone(), vec![], vec![d(9)]),
        ];
        ms.sort_by(|x, y| x.digest.cmp(&y.digest));
        let got = closure_of(&ms, &root).manifests;
        let at = |x: &Digest| got.iter().position(|g| g == x).unwrap();
        assert_eq!(got.len(), 3);
        assert!(at(&c) < at(&y) && at(&y) < at(&root), "{got:?}");
    }
}
